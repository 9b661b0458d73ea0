"""The store on its own terms: plain ids and names in, rows out, writers one at a time.

bot/store imports nothing from the core (tests/foundation/test_layers.py), so these tests build
no core object: the audit trail takes who acted as an id and a name, and the core's
bot.core.audit is the one place an Actor becomes them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
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


async def _cancelled_at(engine: AsyncEngine, target: object, name: str) -> asyncio.Task[None]:
    """A write whose task is cancelled (a stop) at the moment `name` fires on `target`: the
    await that follows is the commit, or the connection's reset as the pool takes it back."""
    from sqlalchemy import event

    store = repos.Store(engine)
    armed = {"on": False}
    tasks: list[asyncio.Task[None]] = []

    def cancel_now(*_args: object) -> None:
        if armed["on"]:
            armed["on"] = False
            tasks[0].cancel()

    event.listen(target, name, cancel_now)

    async def writer() -> None:
        async with store.write() as session:
            ws = await repos.ensure_workspace(session, "discord", "guild-cancelled")
            await session.flush()
            repos.audit(session, workspace_id=ws.id, ticket_id=None, action="opened", at=NOW)
            armed["on"] = True

    task = asyncio.create_task(writer())
    tasks.append(task)
    await asyncio.gather(task, return_exceptions=True)
    event.remove(target, name, cancel_now)
    return task


async def test_a_stop_during_commit_or_handback_finishes_it(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop cancels tasks wherever they are. Landing in a commit, the commit still completes
    (its outcome stays certain); landing while the pool resets the connection, the pool logs no
    error and keeps no connection checked out. The task still ends cancelled. (On SQLite the
    hand-back after a commit no longer awaits anything, see engine._rollback_if_open; on the
    PostgreSQL pass it awaits the pool's rollback, which `repos.uninterrupted` finishes.)"""
    from sqlalchemy.orm import Session

    for target, name in ((Session, "before_commit"), (engine.sync_engine.pool, "reset")):
        async with repos.Store(engine).write() as session:  # a clean slate for each case
            await session.execute(TicketEvent.__table__.delete())
        with caplog.at_level(logging.ERROR):
            task = await _cancelled_at(engine, target, name)
        assert task.cancelled(), name
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], name
        async with repos.Store(engine).read() as session:
            actions = (await session.execute(select(TicketEvent.action))).scalars().all()
        assert actions == ["opened"], name
        assert engine.sync_engine.pool.checkedout() == 0, name


async def test_an_sqlite_connection_is_rolled_back_on_hand_back_only_when_open(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit leaves nothing to undo, so handing the connection back costs no rollback; a
    transaction left open on a connection (written around SQLAlchemy) is rolled back, and its
    write lock released."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the hand-back rule is SQLite's (PostgreSQL keeps the pool's reset)")
    import aiosqlite

    store = repos.Store(engine)
    async with store.write() as session:  # the pool's first connection is set up (and reset)
        ws = await repos.ensure_workspace(session, "discord", "guild-open")
    rollbacks: list[object] = []
    original = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        rollbacks.append(self)
        await original(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    async with store.write() as session:
        repos.audit(session, workspace_id=ws.id, ticket_id=None, action="committed", at=NOW)
    assert rollbacks == []  # committed: nothing to roll back on hand-back

    def write_around(sync_connection: Any) -> None:
        cursor = sync_connection.connection.dbapi_connection.cursor()
        cursor.execute(
            "INSERT INTO ticket_events (workspace_id, actor_id, actor_name, action, data, at) "
            "VALUES (?, 'x', 'x', 'left-open', '{}', '2026-12-01 09:00:00')",
            (ws.id,),
        )
        cursor.close()

    async with engine.connect() as connection:
        await connection.run_sync(write_around)
    assert len(rollbacks) == 1
    async with store.write() as session:  # the lock was released: this write does not wait
        repos.audit(session, workspace_id=ws.id, ticket_id=None, action="after", at=NOW)
    async with store.read() as session:
        actions = (await session.execute(select(TicketEvent.action))).scalars().all()
    assert actions == ["committed", "after"]


async def test_uninterrupted_keeps_a_cancellation_even_when_the_step_fails() -> None:
    """The step runs to its end under a cancellation; the cancellation then goes on, even when
    the step failed meanwhile (a cancellation lost there would leave a stop waiting forever)."""
    release = asyncio.Event()
    finished: list[str] = []

    async def step(fail: bool) -> str:
        await release.wait()
        finished.append("step")
        if fail:
            raise ValueError("the step's own error")
        return "done"

    for fail in (False, True):
        release.clear()
        task = asyncio.create_task(repos.uninterrupted(step(fail)))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # still waiting for the step
        release.set()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled(), fail
    assert finished == ["step", "step"]
    release.set()
    assert await repos.uninterrupted(step(False)) == "done"
    with pytest.raises(ValueError):
        await repos.uninterrupted(step(True))


async def test_a_stop_waits_for_a_stalled_step_only_so_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A step that never ends (a database server gone quiet) does not hold a stop forever: past
    the grace it is cancelled, said in the log, and the stop goes on."""
    never = asyncio.Event()

    async def stalled() -> None:
        await never.wait()

    inner = asyncio.ensure_future(stalled())
    task = asyncio.create_task(repos.uninterrupted(inner, grace_s=0.05))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert task.cancelled() and inner.cancelled()
    assert "cutting it short" in caplog.text


async def test_insert_new_answers_the_new_rows_id_and_none_for_a_duplicate(
    engine: AsyncEngine,
) -> None:
    """SQLite answers from the cursor (rows changed, last rowid), PostgreSQL with RETURNING:
    both give the id of the row written, and None when the key already held one, even after
    another table's insert moved the connection's last rowid."""
    from bot.store.models import InboxEvent

    store = repos.Store(engine)

    def fresh(key: str) -> dict[str, Any]:
        return {"key": key, "payload": "{}", "received_at": NOW}

    async with store.write() as session:
        first = await repos.insert_new(session, InboxEvent, fresh("a"), ("key",))
        second = await repos.insert_new(session, InboxEvent, fresh("b"), ("key",))
        again = await repos.insert_new(session, InboxEvent, fresh("a"), ("key",))
        await repos.ensure_workspace(session, "discord", "guild-ids")
        await session.flush()  # another row, another last rowid
        after_other = await repos.insert_new(session, InboxEvent, fresh("b"), ("key",))
    assert first is not None and second is not None and first != second
    assert again is None and after_other is None
    async with store.read() as session:
        keys = dict((await session.execute(select(InboxEvent.id, InboxEvent.key))).all())
    assert keys == {first: "a", second: "b"}
