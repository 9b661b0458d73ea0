"""The audit trail as the core writes it: who acted is a core `Actor` (None: Veille itself).

The store's `repos.audit` takes plain ids and names so that bot/store imports nothing from the
core; this is the one place that turns an Actor into them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.types import Actor
from bot.store import repos
from bot.store.models import TicketEvent


def audit(
    session: AsyncSession,
    *,
    workspace_id: int | None,
    ticket_id: int | None,
    actor: Actor | None,
    action: str,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime,
) -> TicketEvent:
    """Add one audit event to the caller's transaction; `actor=None` is Veille itself."""
    if actor is None:
        return repos.audit(
            session,
            workspace_id=workspace_id,
            ticket_id=ticket_id,
            action=action,
            note=note,
            data=data,
            at=at,
        )
    return repos.audit(
        session,
        workspace_id=workspace_id,
        ticket_id=ticket_id,
        actor_id=actor.user_id,
        actor_name=actor.display_name,
        action=action,
        note=note,
        data=data,
        at=at,
    )
