"""The store on its own terms: plain ids and names in, rows out, writers one at a time.

bot/store imports nothing from the core (tests/foundation/test_layers.py), so these tests build
no core object: the audit trail takes who acted as an id and a name, and the core's
bot.core.audit is the one place an Actor becomes them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.audit import audit as core_audit
from bot.core.types import Actor
from bot.store import repos
from bot.store.models import TicketEvent

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def test_audit_takes_plain_ids_and_defaults_to_veille(engine: AsyncEngine) -> None:
    store = repos.Store(engine)
    async with store.write() as session:
        ws = await repos.ensure_workspace(session, "discord", "guild-1")
        await session.flush()
        repos.audit(session, workspace_id=ws.id, ticket_id=None, action="opened", at=NOW)
        repos.audit(
            session,
            workspace_id=ws.id,
            ticket_id=None,
            actor_id="U1",
            actor_name="n" * 300,
            action="claim",
            at=NOW,
        )
        core_audit(
            session,
            workspace_id=ws.id,
            ticket_id=None,
            actor=Actor("U2", display_name="Mod"),
            action="note",
            note="seen",
            at=NOW,
        )
        core_audit(session, workspace_id=ws.id, ticket_id=None, actor=None, action="sweep", at=NOW)
    async with store.read() as session:
        rows = (
            (
                await session.execute(
                    select(TicketEvent).order_by(TicketEvent.id)  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
    assert [(r.actor_id, r.actor_name, r.action) for r in rows] == [
        ("veille", "Veille", "opened"),
        ("U1", "n" * 200, "claim"),
        ("U2", "Mod", "note"),
        ("veille", "Veille", "sweep"),
    ]


async def test_writers_take_turns(engine: AsyncEngine) -> None:
    """Two writers of one Store never hold a transaction at the same time (SQLite's one
    writer): the second starts only when the first has committed."""
    store = repos.Store(engine)
    inside: list[str] = []

    async def writer(name: str) -> None:
        async with store.write() as session:
            inside.append(f"{name} in")
            await repos.ensure_workspace(session, "slack", f"T-{name}")
            await asyncio.sleep(0.01)
            inside.append(f"{name} out")

    await asyncio.gather(writer("a"), writer("b"))
    assert inside == ["a in", "a out", "b in", "b out"]
