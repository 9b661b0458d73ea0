"""The stateless scanning unit shared by the pipeline and `veille scan`: bytes → decoded frames →
every image detector (batched) → one Verdict per image; text → the text detectors → a Verdict.

It knows nothing about chats, tickets or the database: callers bring the bytes and store results.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.core.verdict import Thresholds, Verdict
from bot.media.decode import MediaError, decode_image
from detectors.base import BankScope, Detection, Detector, ImageInput, TextInput, versions_key
from detectors.fusion import FusionContext, fuse


@dataclass(frozen=True)
class PreparedImage:
    """A decoded image ready for the detectors: one ImageInput per sampled frame."""

    sha256: str
    md5: str
    mime: str
    width: int
    height: int
    frames: tuple[ImageInput, ...]


@dataclass
class ImageScan:
    """A verdict for one image, with what the detectors want stored (PDQ hash, quality...)."""

    sha256: str
    verdict: Verdict
    extras: dict[str, object] = field(default_factory=dict)


def digest(data: bytes) -> tuple[str, str]:
    """SHA-256 and MD5 of `data`: SHA-256 keys the verdict cache, MD5 serves imported hash lists."""
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data, usedforsecurity=False).hexdigest()


def prepare_image(
    data: bytes, *, source: str = "", max_pixels: int = 40_000_000, scope: BankScope | None = None
) -> PreparedImage:
    """Decode `data` (blocking: call it in a thread); its frames are matched against the bank
    entries `scope` sees. Raises MediaError with a readable message."""
    sha256, md5 = digest(data)
    decoded = decode_image(data, max_pixels=max_pixels)
    frames = tuple(ImageInput(frame, sha256, source, md5, scope) for frame in decoded.frames)
    return PreparedImage(sha256, md5, decoded.mime, decoded.width, decoded.height, frames)


def merge_frames(detections: Sequence[Detection]) -> Detection:
    """One Detection for an animated image: the highest score per category over its frames."""
    if len(detections) == 1:
        return detections[0]
    merged = Detection()
    seen_reasons: set[str] = set()
    seen_matches: set[tuple[str, str, int | None]] = set()
    for detection in detections:
        for category, value in detection.scores.items():
            merged.scores[category] = max(merged.scores.get(category, 0.0), value)
        for reason in detection.reasons:
            if reason not in seen_reasons:
                seen_reasons.add(reason)
                merged.reasons.append(reason)
        for match in detection.matches:
            key = (match.bank, match.kind, match.entry_id)
            if key not in seen_matches:
                seen_matches.add(key)
                merged.matches.append(match)
        for name, extra in detection.extras.items():
            merged.extras.setdefault(name, extra)
    return merged


class Scanner:
    """Runs a fixed set of loaded detectors; thresholds decide the verdicts."""

    def __init__(self, detectors: Sequence[Detector], thresholds: Thresholds | None = None) -> None:
        self.detectors = list(detectors)
        self.image_detectors = [d for d in self.detectors if d.kind == "image"]
        self.text_detectors = [d for d in self.detectors if d.kind == "text"]
        self.thresholds = thresholds or Thresholds()
        self.versions_key = versions_key(self.detectors)

    async def load(self) -> None:
        await asyncio.gather(*(detector.load() for detector in self.detectors))

    async def detect_images(
        self, images: Sequence[PreparedImage]
    ) -> list[list[tuple[str, str, Detection]]]:
        """Run every image detector once over all frames of all `images` (one batch each)."""
        frames = [frame for image in images for frame in image.frames]
        per_image: list[list[tuple[str, str, Detection]]] = [[] for _ in images]
        if not frames:
            return per_image
        results = await asyncio.gather(*(d.detect(frames) for d in self.image_detectors))
        for detector, detections in zip(self.image_detectors, results, strict=True):
            start = 0
            for index, image in enumerate(images):
                chunk = detections[start : start + len(image.frames)]
                start += len(image.frames)
                per_image[index].append((detector.name, detector.version, merge_frames(chunk)))
        return per_image

    async def scan_images(
        self,
        images: Sequence[PreparedImage],
        context: FusionContext | None = None,
        thresholds: Thresholds | None = None,
    ) -> list[ImageScan]:
        detections = await self.detect_images(images)
        scans = []
        for image, found in zip(images, detections, strict=True):
            extras: dict[str, object] = {}
            for _name, _version, detection in found:
                extras.update(detection.extras)
            verdict = fuse(found, thresholds or self.thresholds, context or FusionContext())
            scans.append(ImageScan(image.sha256, verdict, extras))
        return scans

    async def scan_texts(
        self, texts: Sequence[TextInput], thresholds: Thresholds | None = None
    ) -> list[Verdict]:
        """One Verdict per text (undress requests, help requests)."""
        if not texts:
            return []
        results = await asyncio.gather(*(d.detect(texts) for d in self.text_detectors))
        verdicts = []
        for index in range(len(texts)):
            found = [
                (d.name, d.version, r[index])
                for d, r in zip(self.text_detectors, results, strict=True)
            ]
            verdicts.append(fuse(found, thresholds or self.thresholds))
        return verdicts


__all__ = [
    "ImageScan",
    "MediaError",
    "PreparedImage",
    "Scanner",
    "digest",
    "merge_frames",
    "prepare_image",
]
