"""The gateway and worker roles in process, on the test database (SQLite, then PostgreSQL in
the second pass): a gateway records and decides nothing, workers claim each event once, an event
held by a worker that died is claimed again when its lease lapses, a stopping worker hands its
events back, and a bank change made by one process reaches another's HashBank."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import inbox
from bot.core.bank_sync import BankSync
from bot.core.clock import ManualClock
from bot.core.service import Veille
from bot.settings import Settings
from bot.store import engine as store
from bot.store import hash_repo
from bot.store.models import InboxEvent, Ticket
from bot.store.repos import Store
from detectors.hash_lists import NewHash
from detectors.hashes import HashBank
from tests.core.conftest import ColourModel, make_veille, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def role_veille(
    role: str,
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
) -> Veille:
    return await make_veille(
        settings.model_copy(update={"role": role}), engine, clock, gateway, colour
    )


async def inbox_rows(veille: Veille) -> list[InboxEvent]:
    async with veille.store.read() as session:
        return list((await session.execute(select(InboxEvent))).scalars())


async def test_a_gateway_records_events_and_decides_none_of_them(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
) -> None:
    front = await role_veille("gateway", settings, engine, clock, gateway, colour)
    try:
        decision = await front.handle_message(
            message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
        )
        again = await front.handle_message(  # the same delivery twice: one row
            message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
        )
    finally:
        await front.aclose()
    assert decision.queued and again.queued and decision.ticket_ids == []
    assert colour.batches == []  # nothing was scanned
    [row] = await inbox_rows(veille)
    assert (row.status, row.claimed_by, row.lease_until) == ("pending", None, None)
    async with veille.store.read() as session:
        assert (await session.execute(select(Ticket))).scalars().all() == []


async def test_workers_claim_each_event_once_and_decide_it(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
    db_url: str,
) -> None:
    """Two workers, each with its own engine (two processes), claiming at the same moment."""
    front = await role_veille("gateway", settings, engine, clock, gateway, colour)
    other_engine = store.create_engine(db_url)
    workers = [
        await role_veille("worker", settings, engine, clock, gateway, colour),
        await role_veille("worker", settings, other_engine, clock, gateway, colour),
    ]
    try:
        for n in range(12):
            red = 1.0 if n % 3 == 0 else 0.0  # four harmful images among twelve
            await front.handle_message(
                message(f"m{n}", images=[shapes_png(red=red, seed=n)], gateway=gateway)
            )
        claims = await asyncio.gather(
            *(
                inbox.claim(w.store, w.owner, clock.now(), lease_s=60, limit=8)
                for w in workers
                for _ in range(2)
            )
        )
        ids = [row_id for claimed in claims for row_id, _ in claimed]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 12  # each to one claimant
        by_id = {row_id: event for claimed in claims for row_id, event in claimed}
        # The worker that claimed each decides it (what _work_forever does).
        for worker, claimed in zip([w for w in workers for _ in range(2)], claims, strict=True):
            for row_id, event in claimed:
                await worker._decide_recorded(row_id, event)
        assert {e.message_id for e in by_id.values()} == {f"m{n}" for n in range(12)}
        for worker in workers:
            await worker.retry_outbox()
    finally:
        for core in (front, *workers):
            await core.aclose()
        await other_engine.dispose()
    assert all(row.status == "done" for row in await inbox_rows(veille))
    deleted = sorted(c.args["message_id"] for c in gateway.named("delete_message"))
    assert deleted == ["m0", "m3", "m6", "m9"]  # each harmful one removed once


async def test_the_worker_loop_decides_what_a_gateway_recorded(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
) -> None:
    front = await role_veille("gateway", settings, engine, clock, gateway, colour)
    worker = await role_veille("worker", settings, engine, clock, gateway, colour)
    try:
        await front.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
        worker.start()
        for _ in range(400):  # up to 20 s: the worker polls every 0.2 s
            if gateway.named("delete_message"):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.aclose()
        await front.aclose()
    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m1"]
    assert [row.status for row in await inbox_rows(veille)] == ["done"]


async def test_an_event_held_by_a_dead_worker_is_claimed_again_after_its_lease(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
) -> None:
    front = await role_veille("gateway", settings, engine, clock, gateway, colour)
    survivor = await role_veille("worker", settings, engine, clock, gateway, colour)
    try:
        await front.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
        # A worker claims it and dies (kill -9: no release, no decision).
        [(row_id, _)] = await inbox.claim(
            survivor.store, "dead-host:1:x", clock.now(), lease_s=60, limit=8
        )
        assert await inbox.claim(survivor.store, survivor.owner, clock.now(), lease_s=60) == []
        clock.advance(timedelta(seconds=61))
        [(again, event)] = await inbox.claim(
            survivor.store, survivor.owner, clock.now(), lease_s=60
        )
        assert again == row_id
        await survivor._decide_recorded(again, event)
        await survivor.retry_outbox()
    finally:
        await survivor.aclose()
        await front.aclose()
    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m1"]


async def test_a_stopping_worker_hands_its_events_back(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
) -> None:
    front = await role_veille("gateway", settings, engine, clock, gateway, colour)
    leaving = await role_veille("worker", settings, engine, clock, gateway, colour)
    try:
        await front.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
        assert len(await inbox.claim(leaving.store, leaving.owner, clock.now(), lease_s=60)) == 1
    finally:
        await leaving.aclose()  # never decided it: released, not left to its lease
        await front.aclose()
    [row] = await inbox_rows(veille)
    assert (row.status, row.claimed_by, row.lease_until) == ("pending", None, None)
    assert len(await inbox.claim(veille.store, veille.owner, clock.now(), lease_s=60)) == 1


async def test_a_process_decides_inline_and_another_leaves_its_event_alone(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    """Role `all`: the recording process holds the event while it decides it, so a replay in
    another process does not take it from under it."""
    event = message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
    held = await inbox.record(veille.store, event, clock.now(), owner="other:1:y", lease_s=60)
    assert held is not None
    assert await inbox.record(veille.store, event, clock.now(), owner=veille.owner) is None
    assert await veille.replay_inbox() == 0
    clock.advance(timedelta(seconds=61))
    assert await veille.replay_inbox() == 1


async def test_bank_changes_reach_another_process_within_one_poll(
    engine: AsyncEngine, db_url: str
) -> None:
    """One process banks and withdraws entries; another process's HashBank follows."""
    from bot.core import banks

    writer = Store(engine)
    other_engine = store.create_engine(db_url)
    reader = Store(other_engine)
    try:
        async with reader.read() as session:
            marks = await hash_repo.bank_marks(session)
            bank: HashBank = await banks.load_bank(session)
        sync = BankSync(reader, bank, marks)
        value = "ab" * 32
        async with writer.write() as session:
            result = await hash_repo.add_entries(
                session, "confirmed", [NewHash("sha256", value)], source="confirmed"
            )
        assert len(bank) == 0  # not seen until the poll
        assert await sync.poll() == (1, 0)
        assert len(bank) == 1
        async with writer.write() as session:
            await hash_repo.remove_entries(session, [e.id for e in result.added if e.id])
        assert await sync.poll() == (0, 1)
        assert len(bank) == 0
        assert await sync.poll() == (0, 0)  # each change is read once
    finally:
        await other_engine.dispose()


async def test_a_decision_meets_what_another_process_banked_a_moment_ago(
    engine: AsyncEngine, db_url: str
) -> None:
    """`fresh` polls when the last poll is older than asked: a worker deciding a message just
    after a gateway banked its image sees the entry without waiting for the periodic poll."""
    from bot.core import banks

    other_engine = store.create_engine(db_url)
    try:
        reader = Store(other_engine)
        async with reader.read() as session:
            marks = await hash_repo.bank_marks(session)
            bank: HashBank = await banks.load_bank(session)
        sync = BankSync(reader, bank, marks)
        async with Store(engine).write() as session:
            await hash_repo.add_entries(session, "confirmed", [NewHash("sha256", "cd" * 32)])
        await sync.fresh(max_age_s=60)  # polled moments ago (at start): not again
        assert len(bank) == 0
        await sync.fresh(max_age_s=0)
        assert len(bank) == 1
    finally:
        await other_engine.dispose()
