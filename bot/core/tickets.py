"""Ticket steps moderators take: claim, unclaim, note, escalate, resolve, confirm, false positive,
reopen, reveal. Each writes an audit event with its actor and asks the outbox to refresh the
ticket's card. The caller has checked permissions and owns the transaction.

Confirming banks the image's signature (the next post of it is quarantined by the bank); a false
positive allow-lists it, drops the kept bytes and tells the author.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import appeals, outbox, quarantine, reports
from bot.core.cards import card_for
from bot.core.crypto import EvidenceCipher, EvidenceUnreadable
from bot.core.errors import EvidenceKeyMissing, VeilleError
from bot.core.gateway import Reply
from bot.core.i18n import t
from bot.core.markup import inert
from bot.core.types import Actor
from bot.store import repos, victims_repo
from bot.store.models import Evidence, MediaItem, Ticket, TicketEvent, Workspace


@dataclass
class Outcome:
    """What a step did: the reply for the actor and the bank entries to add to the live bank."""

    reply: Reply
    bank_entries: list[Any] = field(default_factory=list)


def _mark_acted(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now
    if ticket.first_action_at is None:  # digests measure time to first action
        ticket.first_action_at = now


async def refresh_card(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, event: TicketEvent, now: datetime
) -> None:
    """Ask the outbox to re-render the ticket's card (a no-op when no card was ever posted)."""
    if not workspace.safety_channel_id:
        return
    await session.flush()
    await outbox.enqueue(
        session, key=f"{ticket.id}:card:{event.id}", kind="update_card",
        platform=workspace.platform, workspace_id=workspace.id, ticket_id=ticket.id,
        payload={"workspace": workspace.external_id}, now=now,
    )


async def perform(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, actor: Actor, action: str,
    note: str | None, *, now: datetime, cipher: EvidenceCipher | None, can_delete: bool = True,
) -> Outcome:
    """Apply `action` to `ticket`. Raises VeilleError (localised) for a step that makes no
    sense in the ticket's state, so nothing is written."""
    lang = workspace.locale
    assert ticket.id is not None
    if action == "note" and not (note or "").strip():
        return Outcome(Reply(open_modal="note"))  # the adapter opens its modal, then calls again
    if action == "resolve" and not (note or "").strip():
        return Outcome(Reply(open_modal="resolve"))
    if action == "reveal":
        return await _reveal(session, workspace, ticket, actor, now, cipher)
    if ticket.status == "resolved" and action not in ("reopen", "note"):
        raise VeilleError(t("core.ticket.resolved_already", lang, id=ticket.id), code="resolved")
    if ticket.kind == "help_request" and action in ("confirm", "false_positive"):
        raise VeilleError(t("core.ticket.not_for_help", lang), code="invalid_action")
    if ticket.status == "appealed" and action not in ("uphold", "reverse", "note"):
        raise VeilleError(t("victims.appeal.decide_first", lang, id=ticket.id), code="appealed")

    outcome = Outcome(Reply())
    data: dict[str, Any] = {}
    if action == "claim":
        ticket.status, ticket.assignee_id = "claimed", actor.user_id
    elif action == "unclaim":
        if ticket.status != "claimed":
            raise VeilleError(t("core.ticket.not_claimed", lang, id=ticket.id), code="not_claimed")
        data["was"] = ticket.assignee_id
        ticket.status, ticket.assignee_id = "open", None
    elif action == "escalate":
        ticket.status = "escalated"
        await _alert(session, workspace, ticket, t("core.ticket.escalated_alert", lang, id=ticket.id,
                     who=inert(actor.display_name or actor.user_id, workspace.platform)), now,
                     "escalate")
    elif action == "reopen":
        if ticket.status != "resolved":
            raise VeilleError(t("core.ticket.not_resolved", lang, id=ticket.id), code="not_resolved")
        ticket.status, ticket.resolution, ticket.resolved_at = "open", None, None
    elif action in ("uphold", "reverse"):
        data = await appeals.decide(session, workspace, ticket, actor, action, note, now)
        outcome.bank_entries = data.pop("allow_entries", [])
        await outbox.withdraw_preview(session, ticket, now)
    elif action in ("resolve", "confirm", "false_positive"):
        ticket.status, ticket.resolved_at = "resolved", now
        await outbox.withdraw_preview(session, ticket, now)
        ticket.resolution = {"resolve": "resolved", "confirm": "confirmed"}.get(action, action)
        ticket.resolution_note = note or ticket.resolution_note
        if action == "confirm":
            outcome.bank_entries = await _bank(session, workspace, ticket, actor)
            data["banked"] = len(outcome.bank_entries)
            if ticket.kind == "report":  # a report upheld: the message comes down too
                data["removal"] = await _remove_reported(session, workspace, ticket, now, can_delete)
        elif action == "false_positive" and ticket.kind != "report":
            # A dismissed report allow-lists nothing: people's reports are claims, not scores.
            outcome.bank_entries = await _allow(session, workspace, ticket, actor, now)
            data["allow_listed"] = len(outcome.bank_entries)
    elif action != "note":
        raise VeilleError(t("core.ticket.unknown_action", lang, action=action), code="invalid_action")
    _mark_acted(ticket, now)
    event = repos.audit(session, workspace_id=workspace.id, ticket_id=ticket.id, actor=actor,
                        action=action, note=note, data=data, at=now)
    await refresh_card(session, workspace, ticket, event, now)
    if ticket.kind == "report" and action in ("resolve", "confirm", "false_positive"):
        await reports.tell_reporters(session, workspace, ticket, event.id, now)
    # The same card as the channel's, so Reveal is offered when the original was kept.
    outcome.reply = Reply(text=t(f"core.ticket.done.{action}", lang, id=ticket.id),
                          card=await card_for(session, ticket, "update", now))
    return outcome


async def _reveal(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, actor: Actor, now: datetime,
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
        repos.audit(session, workspace_id=workspace.id, ticket_id=ticket.id, actor=actor,
                    action="reveal_failed", data={"reason": reason}, at=now)
        return Outcome(Reply(text=t(f"core.ticket.reveal_{reason}", lang, id=ticket.id), ok=False))
    repos.audit(session, workspace_id=workspace.id, ticket_id=ticket.id, actor=actor,
                action="reveal", data={"bytes": len(original) if original else 0}, at=now)
    if original is None:
        return Outcome(Reply(text=t("core.ticket.nothing_to_reveal", lang, id=ticket.id), ok=False))
    mime = evidence.mime if evidence else ""
    return Outcome(Reply(text=t("core.ticket.revealed", lang, id=ticket.id), image_png=original,
                         ephemeral=True, extras={"mime": mime}))


async def _media_of(session: AsyncSession, ticket: Ticket) -> MediaItem | None:
    if ticket.media_item_id is None:
        return None
    return await session.get(MediaItem, ticket.media_item_id)


async def _bank(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, actor: Actor
) -> list[Any]:
    """Put the ticket's image into the confirmed bank; the cached verdict is dropped so the
    next post of the same bytes meets the bank."""
    from bot.store import hash_repo

    if ticket.kind == "report":  # every image of the reported message
        items = [(s.sha256, m) for s, m in await victims_repo.sightings_of_message(
            session, ticket.workspace_id, ticket.channel_id, ticket.message_id)]
    else:
        items = [(ticket.sha256, await _media_of(session, ticket))] if ticket.sha256 else []
    added: list[Any] = []
    for sha256, item in items:
        if item is None or not sha256:
            continue
        result = await hash_repo.bank_confirmed(
            session, item.signature, sha256, ticket.id, actor.display_name or actor.user_id,
            workspace.id,
        )
        added.extend(result.added)
    await repos.forget_verdicts(session, [sha for sha, _ in items if sha])
    return added


async def _remove_reported(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, now: datetime, can_delete: bool,
) -> str:
    """An upheld report: the reported message is removed (when the workspace removes) and its
    author told why, with an Appeal button. Returns what was done."""
    assert ticket.id is not None and workspace.id is not None
    if ticket.message_removed:
        return "already"
    if not (workspace.actions or {}).get("delete", True):
        return "kept"
    if not can_delete:  # Slack without an admin token: the safety team removes it by hand
        if workspace.safety_channel_id:
            await outbox.enqueue(
                session, key=f"{ticket.id}:cannot_delete", kind="post_text",
                platform=workspace.platform, workspace_id=workspace.id, ticket_id=ticket.id,
                now=now, payload={"workspace": workspace.external_id,
                                  "channel_id": workspace.safety_channel_id,
                                  "text": t("core.alert.cannot_delete", workspace.locale,
                                            id=ticket.id, channel=ticket.channel_id,
                                            message=ticket.message_id)})
        return "cannot_delete"
    await outbox.enqueue(session, key=f"{ticket.id}:delete", kind="delete_message",
                         platform=workspace.platform, workspace_id=workspace.id,
                         ticket_id=ticket.id, now=now,
                         payload={"workspace": workspace.external_id,
                                  "channel_id": ticket.channel_id, "message_id": ticket.message_id})
    await victims_repo.mark_removed(session, workspace.id, ticket.channel_id, ticket.message_id, now)
    if (workspace.actions or {}).get("notify", True) and ticket.author_id:
        await appeals.enqueue_notice(session, workspace, ticket, now, by_moderator=True)
    return "queued"


async def _allow(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, actor: Actor, now: datetime
) -> list[Any]:
    """Allow-list the image, release the evidence (drop its bytes) and tell the author."""
    from bot.store import hash_repo

    assert ticket.id is not None
    item = await _media_of(session, ticket)
    allowed: list[Any] = []
    if item is not None and ticket.sha256:
        result = await hash_repo.allow_list(
            session, item.signature, ticket.sha256, actor.display_name or actor.user_id,
            ticket_id=ticket.id, workspace_id=workspace.id,
        )
        await repos.forget_verdicts(session, [ticket.sha256])
        allowed = list(result.added)
    evidence: Evidence | None = await quarantine.evidence_of(session, ticket.id)
    if evidence is not None:
        quarantine.destroy(evidence, now)
    if ticket.author_id and (ticket.message_removed or ticket.severity != "REVIEW"):
        await outbox.enqueue(
            session, key=f"{ticket.id}:fp_author", kind="send_private", platform=workspace.platform,
            workspace_id=workspace.id, ticket_id=ticket.id, now=now,
            payload={"workspace": workspace.external_id, "user_id": ticket.author_id,
                     "channel_id": ticket.channel_id,
                     "text": t("core.author.false_positive", workspace.locale)},
        )
    return allowed


async def _alert(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, text: str, now: datetime, why: str
) -> None:
    if not workspace.safety_channel_id:
        return
    await outbox.enqueue(
        session, key=f"{ticket.id}:alert:{why}:{now.isoformat()}", kind="post_text",
        platform=workspace.platform, workspace_id=workspace.id, ticket_id=ticket.id, now=now,
        payload={"workspace": workspace.external_id, "channel_id": workspace.safety_channel_id,
                 "text": text},
    )
