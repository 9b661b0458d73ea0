"""Notices with reasons and appeals (EU DSA Art. 17 statement of reasons, Art. 20 complaints).

The private notice to an author whose message was removed says what was removed, why (the
categories in plain words) and who decided (Veille's detectors or a moderator), with an
"Appeal" button. An appeal reopens the ticket as `appealed`; it is decided — upheld or
reversed — by a moderator other than the one who decided the ticket, and the outcome is sent
to the author. A reversal restores nothing by itself: it allow-lists the media and says so.
Every step is audited. The caller owns the transaction and checks roles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core import banks, outbox
from bot.core.actions import ACTIONS
from bot.core.audit import audit
from bot.core.errors import VeilleError
from bot.core.gateway import Button
from bot.core.i18n import normalise_locale, t
from bot.core.reasons import category_name
from bot.core.types import Actor
from bot.store import repos, victims_repo
from bot.store.models import Appeal, Ticket, TicketEvent, Workspace

DECISIONS = ("confirm", "false_positive", "resolve", "uphold", "reverse")
APPEAL = ACTIONS["appeal"]  # the author's button on a removal notice
BOT = repos.BOT_ACTOR


def notice_text(
    ws: Workspace, ticket: Ticket, *, by_moderator: bool, lang: str | None = None
) -> str:
    """What was removed, why, who decided, and how to contest it."""
    lang = lang or ws.locale
    categories = ", ".join(category_name(c, lang) for c in ticket.categories) or t(
        "victims.notice.no_category", lang
    )
    who = t("victims.notice.by_moderator" if by_moderator else "victims.notice.by_detectors", lang)
    return t(
        "victims.notice.removed",
        lang,
        channel=f"<#{ticket.channel_id}>",
        categories=categories,
        who=who,
        id=ticket.id,
    )


async def enqueue_notice(
    session: AsyncSession,
    ws: Workspace,
    ticket: Ticket,
    now: datetime,
    *,
    by_moderator: bool,
    key: str | None = None,
    text: str | None = None,
) -> None:
    """The removal notice to the ticket's author, privately, with its Appeal button."""
    assert ticket.id is not None
    body = notice_text(ws, ticket, by_moderator=by_moderator)
    await outbox.send_private(
        session,
        ws,
        ticket.author_id,
        f"{text}\n\n{body}" if text else body,
        key=key or f"{ticket.id}:notice",
        ticket_id=ticket.id,
        now=now,
        channel_id=ticket.channel_id,
        buttons=[Button(APPEAL.name, t(APPEAL.label_key, ws.locale), ticket.id, APPEAL.style)],
    )


async def decided_by(session: AsyncSession, ticket_id: int) -> str:
    """Who made the decision being contested: the last moderator who decided, else Veille."""
    rows = await session.execute(
        select(col(TicketEvent.actor_id))
        .where(col(TicketEvent.ticket_id) == ticket_id, col(TicketEvent.action).in_(DECISIONS))
        .order_by(col(TicketEvent.id).desc())
        .limit(1)
    )
    found = rows.scalar_one_or_none()
    return str(found) if found else BOT


def _appealable(ticket: Ticket) -> bool:
    return ticket.kind not in ("help_request",) and (
        ticket.message_removed
        or ticket.resolution == "confirmed"
        or ticket.severity in ("QUARANTINE", "CRITICAL")
    )


async def file_appeal(
    session: AsyncSession,
    ws: Workspace,
    ticket: Ticket,
    actor: Actor,
    statement: str,
    now: datetime,
) -> tuple[Appeal, TicketEvent]:
    """Record the author's appeal; the ticket becomes `appealed`. Raises VeilleError (in the
    author's language) when they are not its author, it was not acted on, or it was appealed."""
    assert ticket.id is not None and ws.id is not None
    lang = normalise_locale(actor.locale) if actor.locale else ws.locale
    if actor.user_id != ticket.author_id:
        raise VeilleError(t("victims.appeal.not_yours", lang, id=ticket.id), code="not_author")
    if not _appealable(ticket):
        raise VeilleError(t("victims.appeal.nothing", lang, id=ticket.id), code="not_appealable")
    if await victims_repo.appeal_of(session, ticket.id) is not None:
        raise VeilleError(t("victims.appeal.already", lang, id=ticket.id), code="appealed")
    appeal = Appeal(
        ticket_id=ticket.id,
        workspace_id=ws.id,
        author_id=actor.user_id,
        statement=statement.strip()[:2000],
        decided_by=await decided_by(session, ticket.id),
        locale=lang,
        created_at=now,
    )
    session.add(appeal)
    ticket.status, ticket.updated_at = "appealed", now
    event = audit(
        session,
        workspace_id=ws.id,
        ticket_id=ticket.id,
        actor=actor,
        action="appeal",
        note=appeal.statement,
        at=now,
        data={"decided_by": appeal.decided_by},
    )
    if ws.safety_channel_id:
        decider = (
            t("victims.notice.by_detectors", ws.locale)
            if appeal.decided_by == BOT
            else f"<@{appeal.decided_by}>"
        )
        await outbox.post_text(
            session,
            ws,
            ws.safety_channel_id,
            t("victims.appeal.alert", ws.locale, id=ticket.id, decided=decider),
            key=f"{ticket.id}:appeal_alert",
            ticket_id=ticket.id,
            now=now,
        )
    return appeal, event


async def decide(
    session: AsyncSession,
    ws: Workspace,
    ticket: Ticket,
    actor: Actor,
    verdict: str,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Uphold or reverse the ticket's appeal. Returns audit data (and `allow_entries` on a
    reversal: the allow-list entries the live bank must learn)."""
    assert ticket.id is not None
    lang = ws.locale
    appeal = await victims_repo.appeal_of(session, ticket.id)
    if appeal is None or appeal.status != "pending" or ticket.status != "appealed":
        raise VeilleError(t("victims.appeal.none_pending", lang, id=ticket.id), code="not_appealed")
    if actor.user_id == appeal.decided_by:
        raise VeilleError(t("victims.appeal.own_decision", lang, id=ticket.id), code="own_decision")
    appeal.status = "upheld" if verdict == "uphold" else "reversed"
    appeal.outcome_by, appeal.outcome_note, appeal.decided_at = actor.user_id, note, now
    ticket.status, ticket.resolved_at = "resolved", now
    data: dict[str, Any] = {"appeal": appeal.status}
    if verdict == "uphold":
        ticket.resolution = "upheld"
    else:
        ticket.resolution = "reversed"
        data["allow_entries"] = await banks.allow_list_ticket(
            session, ticket, actor.display_name or actor.user_id, now, note="appeal reversed"
        )
    await outbox.send_private(
        session,
        ws,
        appeal.author_id,
        t(f"victims.appeal.{appeal.status}", appeal.locale, id=ticket.id)
        + (f"\n> {note}" if note else ""),
        key=f"{ticket.id}:appeal_outcome",
        ticket_id=ticket.id,
        now=now,
    )
    return data
