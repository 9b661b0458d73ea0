"""The verdict types the whole core reads: a severity, the thresholds (two tiers per category,
per detector where several score one category) and the Verdict fusion makes for one input.

They live in the core because tickets, policy, cards and both adapters read them; fusion
(`detectors/fusion.py`) makes them from detector scores and is their only producer in
`detectors/`. This module imports nothing from the core but `detectors.base` constants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    # open_nsfw's own probability scale: 0 of 96 benign test inputs scored above 0.28 (issue 13's
    # study; tests/detectors/test_nsfw.py keeps every sample photo below review).
    f"nsfw.{SEXUAL}": Tier(0.6, 0.9),
}


@dataclass(frozen=True)
class Thresholds:
    """Tiers per category, and per detector where one category has several scorers: the key
    `"<detector>.<category>"` (e.g. `nsfw.sexual`) wins over the plain category for that
    detector's score, so each model keeps thresholds fitted to its own score scale."""

    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))

    def tier(self, category: str, detector: str | None = None) -> Tier:
        if detector is not None and f"{detector}.{category}" in self.tiers:
            return self.tiers[f"{detector}.{category}"]
        return self.tiers.get(category, Tier(0.5, 0.8))

    def review(self, category: str, detector: str | None = None) -> float:
        return self.tier(category, detector).review

    def block(self, category: str, detector: str | None = None) -> float:
        return self.tier(category, detector).block

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
        """Defaults, overridden by what `veille calibrate` stored: CLIP's tiers for this model
        and tag as the category tiers, other detectors' under `"<detector>.<category>"`."""
        base = cls()
        if not path.exists():
            return base
        stored = json.loads(path.read_text("utf-8"))
        overrides = {
            name: Tier(float(t["review"]), float(t["block"]))
            for name, t in stored.get(calibration_key(model, pretrained), {}).items()
        }
        for key, entry in stored.items():
            if key.startswith(DETECTOR_KEY_PREFIX):
                detector = key[len(DETECTOR_KEY_PREFIX) :]
                overrides.update(
                    {
                        f"{detector}.{name}": Tier(float(t["review"]), float(t["block"]))
                        for name, t in entry.items()
                    }
                )
        return base.with_overrides(overrides)


DETECTOR_KEY_PREFIX = "detector|"


def calibration_key(model: str, pretrained: str) -> str:
    """Where CLIP's calibrated tiers are stored: they depend on the model and its weights."""
    return f"{model}|{pretrained}"


def detector_calibration_key(detector: str) -> str:
    """Where a bundled detector's calibrated tiers are stored (its weights are fixed)."""
    return f"{DETECTOR_KEY_PREFIX}{detector}"


def _clamp(value: float) -> float:
    return min(max(value, 0.01), 0.999)


@dataclass
class Verdict:
    severity: Severity
    categories: list[str]
    scores: dict[str, float]  # fused: the highest score per category over the detectors
    matches: list[HashMatch]
    reasons: list[str]
    detector_versions: dict[str, str]
    detector_scores: dict[str, dict[str, float]] = field(default_factory=dict)  # each its own
    # A minor may be present next to review-level sexual evidence: removed and kept encrypted,
    # but no preview is shown anywhere (ARCHITECTURE: Severity table).
    minor_suspected: bool = False

    @property
    def flagged(self) -> bool:
        return self.severity >= Severity.REVIEW

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.name,
            "categories": list(self.categories),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "detectors": {
                name: {k: round(v, 4) for k, v in found.items()}
                for name, found in self.detector_scores.items()
            },
            "matches": [asdict(m) for m in self.matches],
            "reasons": list(self.reasons),
            "detector_versions": dict(self.detector_versions),
            "minor_suspected": self.minor_suspected,
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
            detector_scores={
                name: {k: float(v) for k, v in dict(found).items()}
                for name, found in dict(data.get("detectors", {})).items()  # type: ignore[call-overload]
            },
            minor_suspected=bool(data.get("minor_suspected", False)),
        )
