"""Fusion: every detector's scores for one input into one Verdict (ARCHITECTURE: Severity table)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
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
                detector = key[len(DETECTOR_KEY_PREFIX):]
                overrides.update({
                    f"{detector}.{name}": Tier(float(t["review"]), float(t["block"]))
                    for name, t in entry.items()
                })
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


@dataclass(frozen=True)
class FusionContext:
    """What the message around an input says: an image answering an undress request is high risk."""

    answers_undress_request: bool = False


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


def fuse(
    detections: Iterable[tuple[str, str, Detection]],
    thresholds: Thresholds | None = None,
    context: FusionContext | None = None,
) -> Verdict:
    """Fuse (detector name, version, detection) triples for one input into a Verdict.

    Each detector's score is compared with its own tier. A category passes review when any
    detector's score passes its review tier, and passes block when one passes its block tier or
    two detectors independently pass review (two models agreeing is strong evidence)."""
    thresholds = thresholds or Thresholds()
    context = context or FusionContext()
    scores: dict[str, float] = {}
    per_detector: dict[str, dict[str, float]] = {}
    reasons: list[str] = []
    matches: list[HashMatch] = []
    versions: dict[str, str] = {}
    for name, version, detection in detections:
        versions[name] = version
        own = per_detector.setdefault(name, {})
        for category, value in detection.scores.items():
            own[category] = max(own.get(category, 0.0), float(value))
            scores[category] = max(scores.get(category, 0.0), float(value))
        reasons.extend(detection.reasons)
        matches.extend(detection.matches)

    allowed = [m for m in matches if m.source == "allow"]
    blocking = [m for m in matches if m.source != "allow"]
    if allowed:
        # A moderator ruled this image a false positive (the hash detector reports only the allow
        # entries of the community scanned, or the operator's). It clears that community's own
        # and subscribed banks and the models' scores, but never a CRITICAL verdict, and a
        # community's entry never clears an operator list's match.
        unsuppressed = fuse(
            [*((name, versions[name], Detection(dict(own))) for name, own in per_detector.items()),
             ("", "", Detection(reasons=list(reasons), matches=blocking))],
            thresholds, context,
        )
        by_operator = any(m.owner == "operator" for m in allowed)
        operator_hit = not by_operator and any(m.owner == "operator" for m in blocking)
        if unsuppressed.severity < Severity.CRITICAL and not operator_hit:
            return Verdict(
                Severity.NONE, [], scores, matches, [*reasons, "allow-listed by moderators"], versions,
                per_detector,
            )
        return replace(unsuppressed, matches=matches, detector_versions=versions,
                       detector_scores=per_detector, reasons=[
                           *unsuppressed.reasons, "allow-list entry overruled (operator list or critical)"])
    if blocking:
        scores[KNOWN_CONTENT] = 1.0

    def passing(category: str, level: str) -> int:
        """How many detectors' scores for `category` pass their own `level` tier."""
        count = 0
        for name, own in per_detector.items():
            if category in own:
                tier = thresholds.tier(category, name)
                count += own[category] >= (tier.review if level == "review" else tier.block)
        if category == KNOWN_CONTENT and blocking:
            count = max(count, 1)
        return count

    def over(category: str, level: str) -> bool:
        if level == "review":
            return passing(category, "review") >= 1
        return passing(category, "block") >= 1 or passing(category, "review") >= 2

    categories = [c for c in scores if over(c, "review")]
    severity = Severity.NONE
    sexual_review = over(SEXUAL, "review") or over(SEXUALISED_EDIT, "review")
    sexual_block = over(SEXUAL, "block") or over(SEXUALISED_EDIT, "block")
    minor = over(MINOR_PRESENT, "review")
    child_abuse_match = any(m.child_abuse for m in blocking)
    minor_suspected = False

    if sexual_review or over(UNDRESS_REQUEST, "review") or over(HELP_REQUEST, "review"):
        severity = Severity.REVIEW
    if sexual_block or over(UNDRESS_REQUEST, "block") or blocking:
        severity = Severity.QUARANTINE
    if context.answers_undress_request and (sexual_review or over(SYNTHETIC, "review")):
        severity = max(severity, Severity.QUARANTINE)
        reasons.append("image posted in answer to an undress request")
    # CRITICAL destroys the only copy a moderator could review and points admins at
    # child-protection reporting: it needs strong evidence, never two review-level guesses.
    if child_abuse_match:
        severity = Severity.CRITICAL
        reasons.append("matches a child-abuse hash list")
    elif minor and sexual_block:
        severity = Severity.CRITICAL
        reasons.append("a minor may be present in sexualised content")
    elif minor and sexual_review:
        severity = max(severity, Severity.QUARANTINE)
        minor_suspected = True
        reasons.append("a minor may be present: preview withheld")
    # `synthetic` and `minor_present` alone never flag and never clear: they only escalate.
    return Verdict(severity, categories, scores, matches, reasons, versions, per_detector,
                   minor_suspected)
