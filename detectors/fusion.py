"""Fusion: every detector's scores for one input into one Verdict (ARCHITECTURE: Severity table)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path

from detectors.base import (
    HELP_REQUEST,
    KNOWN_CONTENT,
    MINOR_PRESENT,
    SEXUAL,
    SEXUALISED_EDIT,
    SYNTHETIC,
    UNDRESS_REQUEST,
    Detection,
    HashMatch,
)


class Severity(IntEnum):
    NONE = 0
    REVIEW = 1
    QUARANTINE = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        return cls[value.upper()]


@dataclass(frozen=True)
class Tier:
    review: float
    block: float


# Defaults for scores in [0, 1]; `veille calibrate` overrides the image ones per model and tag.
DEFAULT_TIERS: dict[str, Tier] = {
    SEXUAL: Tier(0.5, 0.8),
    SEXUALISED_EDIT: Tier(0.5, 0.8),
    MINOR_PRESENT: Tier(0.5, 0.8),
    SYNTHETIC: Tier(0.7, 0.95),
    KNOWN_CONTENT: Tier(0.5, 0.5),
    UNDRESS_REQUEST: Tier(0.5, 0.75),
    HELP_REQUEST: Tier(0.5, 0.8),
}


@dataclass(frozen=True)
class Thresholds:
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))

    def review(self, category: str) -> float:
        return self.tiers.get(category, Tier(0.5, 0.8)).review

    def block(self, category: str) -> float:
        return self.tiers.get(category, Tier(0.5, 0.8)).block

    def with_overrides(self, overrides: Mapping[str, Tier]) -> Thresholds:
        return Thresholds({**self.tiers, **overrides})

    def shifted(self, delta: float) -> Thresholds:
        """Move every tier by `delta` (negative is stricter): sensitivity presets use this."""
        return Thresholds(
            {
                name: Tier(_clamp(t.review + delta), _clamp(t.block + delta))
                for name, t in self.tiers.items()
            }
        )

    @classmethod
    def load(cls, path: Path, model: str, pretrained: str) -> Thresholds:
        """Defaults, overridden by what `veille calibrate` stored for this model and tag."""
        base = cls()
        if not path.exists():
            return base
        stored = json.loads(path.read_text("utf-8"))
        entry = stored.get(calibration_key(model, pretrained), {})
        return base.with_overrides(
            {name: Tier(float(t["review"]), float(t["block"])) for name, t in entry.items()}
        )


def calibration_key(model: str, pretrained: str) -> str:
    return f"{model}|{pretrained}"


def _clamp(value: float) -> float:
    return min(max(value, 0.01), 0.999)


@dataclass(frozen=True)
class FusionContext:
    """What the message around an input says: an image answering an undress request is high risk."""

    answers_undress_request: bool = False


@dataclass
class Verdict:
    severity: Severity
    categories: list[str]
    scores: dict[str, float]
    matches: list[HashMatch]
    reasons: list[str]
    detector_versions: dict[str, str]

    @property
    def flagged(self) -> bool:
        return self.severity >= Severity.REVIEW

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.name,
            "categories": list(self.categories),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "matches": [asdict(m) for m in self.matches],
            "reasons": list(self.reasons),
            "detector_versions": dict(self.detector_versions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Verdict:
        return cls(
            severity=Severity.parse(str(data["severity"])),
            categories=list(data.get("categories", [])),  # type: ignore[call-overload]
            scores={k: float(v) for k, v in dict(data.get("scores", {})).items()},  # type: ignore[call-overload]
            matches=[HashMatch(**m) for m in data.get("matches", [])],  # type: ignore[attr-defined]
            reasons=list(data.get("reasons", [])),  # type: ignore[call-overload]
            detector_versions=dict(data.get("detector_versions", {})),  # type: ignore[call-overload]
        )


def fuse(
    detections: Iterable[tuple[str, str, Detection]],
    thresholds: Thresholds | None = None,
    context: FusionContext | None = None,
) -> Verdict:
    """Fuse (detector name, version, detection) triples for one input into a Verdict."""
    thresholds = thresholds or Thresholds()
    context = context or FusionContext()
    scores: dict[str, float] = {}
    reasons: list[str] = []
    matches: list[HashMatch] = []
    versions: dict[str, str] = {}
    for name, version, detection in detections:
        versions[name] = version
        for category, value in detection.scores.items():
            scores[category] = max(scores.get(category, 0.0), float(value))
        reasons.extend(detection.reasons)
        matches.extend(detection.matches)

    allowed = [m for m in matches if m.source == "allow"]
    blocking = [m for m in matches if m.source != "allow"]
    if allowed:
        # A moderator ruled this image a false positive: the allow-list suppresses every signal.
        return Verdict(
            Severity.NONE, [], scores, matches, [*reasons, "allow-listed by moderators"], versions
        )
    if blocking:
        scores[KNOWN_CONTENT] = 1.0

    def over(category: str, level: str) -> bool:
        limit = thresholds.review(category) if level == "review" else thresholds.block(category)
        return scores.get(category, 0.0) >= limit

    categories = [c for c in scores if over(c, "review")]
    severity = Severity.NONE
    sexual_review = over(SEXUAL, "review") or over(SEXUALISED_EDIT, "review")
    sexual_block = over(SEXUAL, "block") or over(SEXUALISED_EDIT, "block")

    if sexual_review or over(UNDRESS_REQUEST, "review") or over(HELP_REQUEST, "review"):
        severity = Severity.REVIEW
    if sexual_block or over(UNDRESS_REQUEST, "block") or blocking:
        severity = Severity.QUARANTINE
    if context.answers_undress_request and (sexual_review or over(SYNTHETIC, "review")):
        severity = max(severity, Severity.QUARANTINE)
        reasons.append("image posted in answer to an undress request")
    if over(MINOR_PRESENT, "review") and sexual_review:
        severity = Severity.CRITICAL
        reasons.append("a minor may be present in sexualised content")
    # `synthetic` and `minor_present` alone never flag and never clear: they only escalate.
    return Verdict(severity, categories, scores, matches, reasons, versions)
