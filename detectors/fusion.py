"""Fusion: every detector's scores for one input into one Verdict (ARCHITECTURE: Severity table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.core.verdict import (  # the types fusion makes; their home is the core
    Severity,
    Thresholds,
    Verdict,
)
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


@dataclass(frozen=True)
class FusionContext:
    """What the message around an input says: an image answering an undress request is high risk."""

    answers_undress_request: bool = False


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
            [
                *(
                    (name, versions[name], Detection(dict(own)))
                    for name, own in per_detector.items()
                ),
                ("", "", Detection(reasons=list(reasons), matches=blocking)),
            ],
            thresholds,
            context,
        )
        by_operator = any(m.owner == "operator" for m in allowed)
        operator_hit = not by_operator and any(m.owner == "operator" for m in blocking)
        if unsuppressed.severity < Severity.CRITICAL and not operator_hit:
            return Verdict(
                Severity.NONE,
                [],
                scores,
                matches,
                [*reasons, "allow-listed by moderators"],
                versions,
                per_detector,
            )
        return replace(
            unsuppressed,
            matches=matches,
            detector_versions=versions,
            detector_scores=per_detector,
            reasons=[
                *unsuppressed.reasons,
                "allow-list entry overruled (operator list or critical)",
            ],
        )
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
    return Verdict(
        severity, categories, scores, matches, reasons, versions, per_detector, minor_suspected
    )
