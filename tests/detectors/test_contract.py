"""The contract every detector the registry can build must keep (ThreatExchange-style shared
test): one Detection per input in order, scores in [0, 1], deterministic, awkward inputs
survived, a stable name and a version. The detectors are the registry's: one registered in
detectors.registry.BUILDERS is tested here, built from one DetectorDeps that offers everything
(the tiny CLIP model of tests/tiny_clip.py, an empty hash bank)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from detectors.base import (
    CATEGORIES,
    Detection,
    Detector,
    DetectorError,
    ImageInput,
    TextInput,
    validate_unique_names,
)
from detectors.clip import ClipConfig
from detectors.hashes import HashBank, HashDetector
from detectors.registry import BUILDERS, DetectorDeps, build_detectors
from tests.tiny_clip import CHECKPOINT, CONFIG, PROMPTS, benign_image, flagged_image

# Registered detectors that cannot be built without the network (weights only on a hub), with
# the reason their contract test is skipped. Every detector today builds offline.
NOT_OFFLINE: dict[str, str] = {}


def offline_deps(tmp_path: Path) -> DetectorDeps:
    """Everything a builder may ask for, with nothing from the network."""
    clip = ClipConfig(
        str(CONFIG),
        str(CHECKPOINT),
        device="cpu",
        cache_dir=tmp_path,
        prompts_dir=PROMPTS,
        batch_size=4,
    )
    return DetectorDeps(clip=clip, bank=HashBank())


def make(name: str, tmp_path: Path) -> Detector:
    if name in NOT_OFFLINE:
        pytest.skip(f"{name} cannot be built offline: {NOT_OFFLINE[name]}")
    [detector] = build_detectors([name], offline_deps(tmp_path))
    return detector


def awkward_images() -> list[ImageInput]:
    rgba = flagged_image(3).convert("RGBA")
    rgba.putalpha(128)
    palette = benign_image(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    images = [
        flagged_image(1),
        benign_image(2).resize((640, 480)),
        benign_image(5).convert("L"),
        rgba,
        palette,
        Image.new("RGB", (1, 1), (200, 10, 10)),
        Image.new("RGB", (4000, 3), (10, 200, 10)),
        Image.new("RGB", (3, 4000), (10, 10, 200)),
        Image.new("LA", (17, 33), (100, 50)),
        flagged_image(6).convert("1"),
    ]
    return [
        ImageInput(image, f"{i:064x}", f"test-{i}", f"{i:032x}") for i, image in enumerate(images)
    ]


def awkward_texts() -> list[TextInput]:
    return [
        TextInput(""),
        TextInput("   \n\t "),
        TextInput("hello " * 20_000),
        TextInput(
            "🤖👙🔥 ça va ? ¿qué tal? Grüße — ☃ \u200b\u202e مرحبا 你好", replies_to_image=True
        ),
        TextInput("@grok " + "x" * 5000, addresses_image_ai=True),
        TextInput("\x00\x01 control characters \ufffd"),
    ]


def check_detections(detections: Sequence[Detection], n: int) -> None:
    assert len(detections) == n
    for detection in detections:
        assert isinstance(detection, Detection)
        for category, score in detection.scores.items():
            assert category in CATEGORIES
            assert isinstance(score, float) and math.isfinite(score) and 0.0 <= score <= 1.0
        assert all(isinstance(reason, str) and reason for reason in detection.reasons)


def snapshot(detections: Sequence[Detection]) -> list[object]:
    return [(d.scores, d.reasons, d.matches) for d in detections]


@pytest.mark.parametrize("name", sorted(BUILDERS))
async def test_detector_contract(name: str, tmp_path: Path) -> None:
    detector = make(name, tmp_path)
    assert isinstance(detector, Detector)
    assert detector.name == name
    assert isinstance(detector.version, str) and detector.version.strip()
    assert detector.kind in ("image", "text")
    await detector.load()
    await detector.load()  # idempotent

    items: list[Any] = awkward_images() if detector.kind == "image" else awkward_texts()
    first = await detector.detect(items)
    check_detections(first, len(items))
    second = await detector.detect(items)
    assert snapshot(second) == snapshot(first)  # deterministic
    assert await detector.detect([]) == []
    # One at a time gives what the batch gave: batching must not change the answer.
    alone = [(await detector.detect([item]))[0] for item in items[:3]]
    for single, batched in zip(alone, first[:3], strict=True):
        assert single.scores.keys() == batched.scores.keys()
        for category, score in single.scores.items():
            assert score == pytest.approx(batched.scores[category], abs=1e-4)


async def test_every_buildable_detector_has_a_unique_name(tmp_path: Path) -> None:
    detectors = []
    for name in sorted(BUILDERS):
        try:
            detectors.append(make(name, tmp_path))
        except pytest.skip.Exception:
            continue
    validate_unique_names(detectors)
    assert [d.name for d in detectors] == sorted(d.name for d in detectors)
    assert "clip" in [d.name for d in detectors]


def test_registry_refuses_unknown_and_repeated_names(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match=f"'nudenet'.*valid names: {', '.join(BUILDERS)}$"):
        build_detectors(["clip", "nudenet"], offline_deps(tmp_path))
    with pytest.raises(DetectorError, match="listed twice.*clip"):
        build_detectors(["clip", " CLIP "], offline_deps(tmp_path))
    with pytest.raises(DetectorError, match="needs a ClipConfig"):
        build_detectors(["clip"])


def test_builders_use_what_the_deps_give_them(tmp_path: Path) -> None:
    """The live bank is the one the hashes detector matches against; without one it gets its
    own empty bank."""
    bank = HashBank()
    [given] = build_detectors(["hashes"], DetectorDeps(bank=bank))
    [alone] = build_detectors(["hashes"])
    assert isinstance(given, HashDetector) and isinstance(alone, HashDetector)
    assert given.bank is bank
    assert isinstance(alone.bank, HashBank) and alone.bank is not bank
