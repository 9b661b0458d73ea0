"""Policy: pure functions from workspace settings and verdicts to what should happen.

No I/O here: the pipeline loads the workspace and its overrides and passes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.types import Decision, MessageEvent
from bot.core.verdict import Severity, Thresholds, Verdict
from bot.workspace_settings import DEFAULT_SENSITIVITY, SENSITIVITIES
from detectors.base import HELP_REQUEST, UNDRESS_REQUEST

# What each sensitivity preset (declared in bot/workspace_settings.py) means: presets move
# every tier, negative is stricter (flags more). Relaxed suits art communities. A test checks
# that every declared preset has its shift.
SENSITIVITY_SHIFT: dict[str, float] = {"relaxed": 0.1, "standard": 0.0, "strict": -0.15}
# A repeat offender is timed out (when the workspace enabled timeouts) from this count on.
REPEAT_LIMIT = 3
TIMEOUT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ChannelRule:
    """A channel override as the policy sees it."""

    sensitivity: str | None = None
    allow_listed: bool = False


def effective_sensitivity(workspace_sensitivity: str, channel: ChannelRule | None) -> str:
    chosen = channel.sensitivity if channel and channel.sensitivity else workspace_sensitivity
    return chosen if chosen in SENSITIVITIES else DEFAULT_SENSITIVITY


def thresholds_for(base: Thresholds, sensitivity: str) -> Thresholds:
    """The two-tier thresholds under a sensitivity preset."""
    shift = SENSITIVITY_SHIFT.get(sensitivity, 0.0)
    return base if shift == 0.0 else base.shifted(shift)


def exempt(event: MessageEvent, allow_role_ids: Iterable[str], channel: ChannelRule | None) -> bool:
    """Messages Veille never scans: other bots (image-AI apps are scanned: their answers to undress
    requests are the risk), allow-listed channels and authors with an allow-listed role."""
    if event.author.is_bot and not event.author.is_ai_app:
        return True
    if channel is not None and channel.allow_listed:
        return True
    return bool(set(event.author.role_ids) & set(allow_role_ids))


def is_help_request(verdict: Verdict | None) -> bool:
    """Someone asking for help about their own images: never punished."""
    return (
        verdict is not None
        and HELP_REQUEST in verdict.categories
        and UNDRESS_REQUEST not in verdict.categories
    )


def decide(
    verdicts: Iterable[Verdict],
    text_verdict: Verdict | None,
    actions: Mapping[str, Any],
    offender_count: int,
) -> Decision:
    """The Decision for one message. `offender_count` includes this message when it is flagged.

    REVIEW leaves the message; QUARANTINE removes it (if the workspace allows deleting) and tells
    the author; CRITICAL, and QUARANTINE where a minor may be present, always remove it and
    alert admins, without telling the author (no tipping off while a report may be made)."""
    media = list(verdicts)
    help_request = is_help_request(text_verdict)
    severity = max((v.severity for v in media), default=Severity.NONE)
    reasons = [reason for v in media for reason in v.reasons if v.flagged]
    if text_verdict is not None and text_verdict.flagged and not help_request:
        severity = max(severity, text_verdict.severity)
        reasons.extend(text_verdict.reasons)
    if help_request and severity < Severity.REVIEW:
        assert text_verdict is not None
        return Decision(Severity.REVIEW, help_request=True, reasons=list(text_verdict.reasons))
    decision = Decision(severity, reasons=reasons, help_request=help_request)
    # A minor may be present next to review-level sexual evidence: removed like CRITICAL and
    # without telling the author (a report may follow), but the evidence is kept for review.
    decision.minor_suspected = severity == Severity.QUARANTINE and any(
        v.minor_suspected for v in media
    )
    urgent = severity == Severity.CRITICAL or decision.minor_suspected
    if severity >= Severity.QUARANTINE:
        decision.delete = urgent or bool(actions.get("delete", True))
        decision.notify_author = not urgent and bool(actions.get("notify", True))
        decision.timeout_author = bool(actions.get("timeout", False)) and (
            severity == Severity.CRITICAL or offender_count >= REPEAT_LIMIT
        )
    decision.alert_admins = urgent
    return decision
