"""Taking a ticket's message down after the fact — a report upheld, a known copy found by a
sweep — one way for both: deleted where the workspace removes and the platform lets Veille,
otherwise left up for the safety team; the author told why, with an Appeal button, when the
workspace notifies. A detection's own removal is part of its Decision (bot.core.decisions).
The caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import outbox
from bot.core.appeals import enqueue_notice
from bot.core.i18n import t
from bot.store import victims_repo
from bot.store.models import Ticket, Workspace

# What remove_message did: the message was already down, the workspace keeps messages up, the
# platform cannot delete (Slack without an admin token), or its deletion is queued.
Removal = Literal["already", "kept", "cannot_delete", "queued"]


def removes(ws: Workspace) -> bool:
    """Whether the workspace has Veille remove messages (its `delete` action)."""
    return bool((ws.actions or {}).get("delete", True))


def notifies(ws: Workspace) -> bool:
    """Whether the workspace has Veille tell an author their message was removed."""
    return bool((ws.actions or {}).get("notify", True))


async def remove_message(
    session: AsyncSession,
    ws: Workspace,
    ticket: Ticket,
    now: datetime,
    *,
    can_delete: bool,
    by_moderator: bool,
    ask_safety_team: bool = True,
) -> Removal:
    """Queue the deletion of `ticket`'s message and the notice to its author. Where the
    platform cannot delete, the safety channel is asked to remove it by hand
    (`ask_safety_team`; a sweep's copy ticket is its own ask)."""
    assert ticket.id is not None and ws.id is not None
    if ticket.message_removed:
        return "already"
    if not removes(ws):
        return "kept"
    if not can_delete:
        if ask_safety_team and ws.safety_channel_id:
            await outbox.post_text(
                session,
                ws,
                ws.safety_channel_id,
                t(
                    "core.alert.cannot_delete",
                    ws.locale,
                    id=ticket.id,
                    channel=ticket.channel_id,
                    message=ticket.message_id,
                ),
                key=f"{ticket.id}:cannot_delete",
                ticket_id=ticket.id,
                now=now,
            )
        return "cannot_delete"
    await outbox.delete_message(
        session,
        ws,
        ticket.channel_id,
        ticket.message_id,
        key=f"{ticket.id}:delete",
        ticket_id=ticket.id,
        now=now,
    )
    await victims_repo.mark_removed(session, ws.id, ticket.channel_id, ticket.message_id, now)
    if notifies(ws) and ticket.author_id:
        await enqueue_notice(session, ws, ticket, now, by_moderator=by_moderator)
    return "queued"
