"""Ticket steps moderators take: claim, unclaim, note, escalate, resolve, confirm, false positive,
reopen, reveal, uphold, reverse — one handler each, run in the states bot.core.actions declares
for it. Each writes an audit event with its actor and asks the outbox to refresh the
ticket's card. The caller has checked permissions and owns the transaction.

Confirming banks the image's signature (the next post of it is quarantined by the bank) and, for
a report, takes the message down (bot.core.removal); a false positive allow-lists it and drops
the kept bytes (both in bot.core.banks), and tells the author.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import appeals, banks, outbox, quarantine, removal, reports
from bot.core.actions import action_named, refusal
from bot.core.audit import audit
from bot.core.cards import card_for
from bot.core.crypto import EvidenceCipher, EvidenceUnreadable
from bot.core.errors import EvidenceKeyMissing, VeilleError
from bot.core.gateway import Reply
from bot.core.i18n import t
from bot.core.markup import inert
from bot.core.outbox import refresh_card
from bot.core.types import Actor
from bot.store.models import Ticket, Workspace


@dataclass
class Outcome:
    """What a step did: the reply for the actor and the bank entries to add to the live bank."""

    reply: Reply
    bank_entries: list[Any] = field(default_factory=list)


def _mark_acted(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now
    if ticket.first_action_at is None:  # digests measure time to first action
        ticket.first_action_at = now


async def perform(
    session: AsyncSession,
    workspace: Workspace,
    ticket: Ticket,
    actor: Actor,
    action: str,
    note: str | None,
    *,
    now: datetime,
    cipher: EvidenceCipher | None,
    can_delete: bool = True,
) -> Outcome:
    """Apply `action` to `ticket`. Raises VeilleError (localised) for a step that makes no
    sense in the ticket's state, so nothing is written. Which states an action runs in is
    declared in bot.core.actions; what it does is its handler below."""
    lang = workspace.locale
    assert ticket.id is not None
    spec, handler = action_named(action), _HANDLERS.get(action)
    if spec is None or handler is None:
        raise VeilleError(
            t("core.ticket.unknown_action", lang, action=action), code="invalid_action"
        )
    if spec.form is not None and not (note or "").strip():
        return Outcome(Reply(open_modal=action))  # the adapter opens its form, then calls again
    refused = refusal(spec, ticket.kind, ticket.status)
    if refused is not None:
        key, code = refused
        raise VeilleError(t(key, lang, id=ticket.id, action=action), code=code)

    step = Step(session, workspace, ticket, actor, action, note, now, cipher, can_delete)
    finished = await handler(step)
    if finished is not None:  # a step with its own reply and audit (reveal)
        return finished
    _mark_acted(ticket, now)
    event = audit(
        session,
        workspace_id=workspace.id,
        ticket_id=ticket.id,
        actor=actor,
        action=action,
        note=note,
        data=step.data,
        at=now,
    )
    await refresh_card(session, workspace, ticket, event, now)
    if ticket.kind == "report" and spec.tells_reporters:
        await reports.tell_reporters(session, workspace, ticket, event.id, now)
    # The same card as the channel's, so Reveal is offered when the original was kept.
    step.outcome.reply = Reply(
        text=t(spec.done_key, lang, id=ticket.id),
        card=await card_for(session, ticket, "update", now),
    )
    return step.outcome


@dataclass
class Step:
    """One action being applied: what a handler reads, and the audit data and bank entries
    it leaves for `perform` to record."""

    session: AsyncSession
    workspace: Workspace
    ticket: Ticket
    actor: Actor
    action: str
    note: str | None
    now: datetime
    cipher: EvidenceCipher | None
    can_delete: bool
    data: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=lambda: Outcome(Reply()))


# A handler changes the ticket; it returns an Outcome only when it answers and audits itself.
Handler = Callable[[Step], Awaitable[Outcome | None]]


async def _claim(step: Step) -> None:
    step.ticket.status, step.ticket.assignee_id = "claimed", step.actor.user_id


async def _unclaim(step: Step) -> None:
    step.data["was"] = step.ticket.assignee_id
    step.ticket.status, step.ticket.assignee_id = "open", None


async def _escalate(step: Step) -> None:
    ticket, workspace, lang = step.ticket, step.workspace, step.workspace.locale
    ticket.status = "escalated"
    who = inert(step.actor.display_name or step.actor.user_id, workspace.platform)
    await _alert(
        step.session,
        workspace,
        ticket,
        t("core.ticket.escalated_alert", lang, id=ticket.id, who=who),
        step.now,
        "escalate",
    )


async def _reopen(step: Step) -> None:
    ticket = step.ticket
    ticket.status, ticket.resolution, ticket.resolved_at = "open", None, None


async def _decide_appeal(step: Step) -> None:
    """Uphold or reverse (appeals.decide checks the appeal and who decides it)."""
    data = await appeals.decide(
        step.session, step.workspace, step.ticket, step.actor, step.action, step.note, step.now
    )
    step.outcome.bank_entries = data.pop("allow_entries", [])
    step.data = data
    await outbox.withdraw_preview(step.session, step.ticket, step.now)


async def _resolve(step: Step) -> None:
    """Resolve, confirm or false positive: the ticket is decided and its preview withdrawn."""
    session, workspace, ticket, now = step.session, step.workspace, step.ticket, step.now
    ticket.status, ticket.resolved_at = "resolved", now
    await outbox.withdraw_preview(session, ticket, now)
    ticket.resolution = {"resolve": "resolved", "confirm": "confirmed"}.get(
        step.action, step.action
    )
    ticket.resolution_note = step.note or ticket.resolution_note
    if step.action == "confirm":
        step.outcome.bank_entries = await banks.bank_ticket(
            session, ticket, step.actor.display_name or step.actor.user_id
        )
        step.data["banked"] = len(step.outcome.bank_entries)
        if ticket.kind == "report":  # a report upheld: the message comes down too
            step.data["removal"] = await removal.remove_message(
                session, workspace, ticket, now, can_delete=step.can_delete, by_moderator=True
            )
    elif step.action == "false_positive" and ticket.kind != "report":
        # A dismissed report allow-lists nothing: people's reports are claims, not scores.
        step.outcome.bank_entries = await _allow(session, workspace, ticket, step.actor, now)
        step.data["allow_listed"] = len(step.outcome.bank_entries)


async def _note(step: Step) -> None:
    """The note itself is the audit event `perform` writes."""


async def _reveal_step(step: Step) -> Outcome:
    return await _reveal(
        step.session, step.workspace, step.ticket, step.actor, step.now, step.cipher
    )


# Every moderator action of bot.core.actions has its handler here (the author's appeal is
# bot.core.appeals.file_appeal); tests/core/test_tickets.py checks the two agree.
_HANDLERS: dict[str, Handler] = {
    "claim": _claim,
    "unclaim": _unclaim,
    "escalate": _escalate,
    "reopen": _reopen,
    "uphold": _decide_appeal,
    "reverse": _decide_appeal,
    "resolve": _resolve,
    "confirm": _resolve,
    "false_positive": _resolve,
    "note": _note,
    "reveal": _reveal_step,
}


async def _reveal(
    session: AsyncSession,
    workspace: Workspace,
    ticket: Ticket,
    actor: Actor,
    now: datetime,
    cipher: EvidenceCipher | None,
) -> Outcome:
    """The original bytes for an ephemeral reply; the reveal is audited even when nothing is kept."""
    assert ticket.id is not None
    lang = workspace.locale
    evidence = await quarantine.evidence_of(session, ticket.id)
    try:
        original = quarantine.reveal(evidence, cipher)
    except (EvidenceKeyMissing, EvidenceUnreadable) as exc:
        # A missing or changed VEILLE_SECRET_KEY: say so plainly, and keep the attempt on record.
        reason = "no_key" if isinstance(exc, EvidenceKeyMissing) else "wrong_key"
        audit(
            session,
            workspace_id=workspace.id,
            ticket_id=ticket.id,
            actor=actor,
            action="reveal_failed",
            data={"reason": reason},
            at=now,
        )
        return Outcome(Reply(text=t(f"core.ticket.reveal_{reason}", lang, id=ticket.id), ok=False))
    audit(
        session,
        workspace_id=workspace.id,
        ticket_id=ticket.id,
        actor=actor,
        action="reveal",
        data={"bytes": len(original) if original else 0},
        at=now,
    )
    if original is None:
        return Outcome(Reply(text=t("core.ticket.nothing_to_reveal", lang, id=ticket.id), ok=False))
    mime = evidence.mime if evidence else ""
    return Outcome(
        Reply(
            text=t("core.ticket.revealed", lang, id=ticket.id),
            image_png=original,
            ephemeral=True,
            extras={"mime": mime},
        )
    )


async def _allow(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, actor: Actor, now: datetime
) -> list[Any]:
    """Allow-list the image, release the evidence (drop its bytes) and tell the author."""
    assert ticket.id is not None
    allowed = await banks.allow_list_ticket(
        session, ticket, actor.display_name or actor.user_id, now
    )
    if ticket.author_id and (ticket.message_removed or ticket.severity != "REVIEW"):
        await outbox.send_private(
            session,
            workspace,
            ticket.author_id,
            t("core.author.false_positive", workspace.locale),
            key=f"{ticket.id}:fp_author",
            ticket_id=ticket.id,
            now=now,
            channel_id=ticket.channel_id,
        )
    return allowed


async def _alert(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, text: str, now: datetime, why: str
) -> None:
    if not workspace.safety_channel_id:
        return
    await outbox.post_text(
        session,
        workspace,
        workspace.safety_channel_id,
        text,
        key=f"{ticket.id}:alert:{why}:{now.isoformat()}",
        ticket_id=ticket.id,
        now=now,
    )
