"""The outbox: a crash between decision and action is repaired, failures retried or dead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.clock import ManualClock, as_utc
from bot.core.gateway import GatewayError
from bot.core.outbox import MAX_ATTEMPTS, backoff
from bot.core.service import Veille
from bot.settings import Settings
from bot.store.models import OutboxAction, Ticket
from tests.core.conftest import SAFETY, ColourModel, make_veille, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def actions(veille: Veille) -> dict[str, OutboxAction]:
    async with veille.store.read() as session:
        found = await session.execute(select(OutboxAction).order_by(OutboxAction.id))  # type: ignore[arg-type]
        return {a.idempotency_key.split(":", 1)[1]: a for a in found.scalars()}


async def test_a_crash_between_decision_and_action_is_repaired_after_restart(
    veille: Veille,
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    colour: ColourModel,
) -> None:
    dead_platform = RecordingGateway()
    veille.gateways.clear()  # the process "dies" before any platform call
    veille.register_gateway(dead_platform)
    event = message("m1", images=[shapes_png(red=1.0)], gateway=dead_platform)
    decision = await veille.handle_message(event)
    assert dead_platform.named("delete_message") == []
    await veille.aclose()

    platform = RecordingGateway(files=dict(dead_platform.files))
    restarted = await make_veille(settings, engine, clock, platform, colour)
    try:
        assert await restarted.retry_outbox() >= 3
        assert [c.args["message_id"] for c in platform.named("delete_message")] == ["m1"]
        assert any(c.args["channel_id"] == SAFETY for c in platform.named("post_card"))
        assert all(a.status == "done" for a in (await actions(restarted)).values())
        # Idempotent: running again, and the same event again, repeat nothing.
        await restarted.retry_outbox()
        again = await restarted.handle_message(event)
        await restarted.retry_outbox()
        assert again.ticket_ids == decision.ticket_ids
        assert len(platform.named("delete_message")) == 1
        assert len(platform.named("post_card")) == 2  # the ticket card and the preview, once each
    finally:
        await restarted.aclose()


async def test_retryable_errors_back_off_and_keep_the_ticket_order(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    gateway.failures["delete_message"] = [
        GatewayError("rate limited", retryable=True, retry_after=30),
        GatewayError("503", retryable=True),
    ]
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    await veille.retry_outbox()
    delete = (await actions(veille))["delete"]
    assert (
        delete.status == "pending" and delete.attempts == 1 and delete.last_error == "rate limited"
    )
    assert as_utc(delete.next_attempt_at) == clock.now() + timedelta(seconds=30)
    assert gateway.named("post_card") == []  # the card waits behind the removal of its ticket

    await veille.retry_outbox()  # not due yet: nothing happens
    assert (await actions(veille))["delete"].attempts == 1
    clock.advance(timedelta(seconds=31))
    await veille.retry_outbox()
    delete = (await actions(veille))["delete"]
    assert delete.attempts == 2 and delete.last_error == "503"
    assert as_utc(delete.next_attempt_at) == clock.now() + timedelta(seconds=backoff(2))
    clock.advance(timedelta(seconds=backoff(2)))
    await veille.retry_outbox()
    assert (await actions(veille))["delete"].status == "done"
    assert gateway.named("delete_message") and gateway.named("post_card")


async def test_a_non_retryable_error_is_dead_with_its_error(
    veille: Veille, gateway: RecordingGateway
) -> None:
    gateway.failures["delete_message"] = [GatewayError("missing permission", retryable=False)]
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    await veille.retry_outbox()
    found = await actions(veille)
    assert found["delete"].status == "dead" and found["delete"].last_error == "missing permission"
    assert found["card"].status == "done"  # a dead action does not block the rest of its ticket
    async with veille.store.read() as session:
        [ticket] = (await session.execute(select(Ticket))).scalars().all()
    assert not ticket.message_removed


async def test_retryable_errors_give_up_after_max_attempts(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    gateway.failures["delete_message"] = [GatewayError("down") for _ in range(MAX_ATTEMPTS + 2)]
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    for _ in range(MAX_ATTEMPTS):
        await veille.retry_outbox()
        clock.advance(timedelta(hours=2))
    delete = (await actions(veille))["delete"]
    assert (
        delete.status == "dead" and delete.attempts == MAX_ATTEMPTS and delete.last_error == "down"
    )


async def test_actions_wait_for_their_platform_gateway(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    veille.gateways.clear()  # e.g. the adapter is still connecting
    await veille.retry_outbox()
    assert (await actions(veille))["delete"].status == "pending"
    veille.register_gateway(gateway)
    clock.advance(timedelta(minutes=5))
    await veille.retry_outbox()
    assert (await actions(veille))["delete"].status == "done"


async def test_tickets_are_acted_on_side_by_side_not_in_single_file(
    veille: Veille, gateway: RecordingGateway
) -> None:
    """A slow platform call for one ticket must not hold back the removal of another: here the
    first removal only returns once the second has started, which single file never reaches."""
    second_started = asyncio.Event()
    record = gateway.delete_message

    async def delete_message(workspace_id: str, channel_id: str, message_id: str) -> None:
        if message_id == "m2":
            second_started.set()
        else:
            await second_started.wait()
        await record(workspace_id, channel_id, message_id)

    gateway.delete_message = delete_message  # type: ignore[method-assign]
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    await veille.handle_message(message("m2", images=[shapes_png(red=0.9)], gateway=gateway))
    async with asyncio.timeout(10):
        await veille.retry_outbox()
    assert sorted(c.args["message_id"] for c in gateway.named("delete_message")) == ["m1", "m2"]
    assert all(a.status == "done" for a in (await actions(veille)).values())


async def test_two_processes_on_one_database_perform_each_action_once(
    veille: Veille,
    gateway: RecordingGateway,
    settings: Settings,
    db_url: str,
    clock: ManualClock,
    colour: ColourModel,
) -> None:
    """Two cores with their own engines on one SQLite file (what two `veille run` are), both
    working the outbox at once: every action is performed by exactly one of them."""
    from bot.store import engine as store

    other_engine = store.create_engine(db_url)
    other_platform = RecordingGateway(files=dict(gateway.files))
    other = await make_veille(settings, other_engine, clock, other_platform, colour)
    try:
        for n in range(6):
            await veille.handle_message(
                message(f"m{n}", images=[shapes_png(red=1.0, seed=n)], gateway=gateway)
            )
        other_platform.files.update(gateway.files)
        slow = gateway.delete_message

        async def delete_message(workspace_id: str, channel_id: str, message_id: str) -> None:
            await asyncio.sleep(0.02)  # both processes are in flight at the same time
            await slow(workspace_id, channel_id, message_id)

        gateway.delete_message = delete_message  # type: ignore[method-assign]
        for _ in range(3):
            await asyncio.gather(veille.retry_outbox(), other.retry_outbox())
        deleted = [
            c.args["message_id"]
            for p in (gateway, other_platform)
            for c in p.named("delete_message")
        ]
        assert sorted(deleted) == [f"m{n}" for n in range(6)]  # each once, none twice
        cards = [c for p in (gateway, other_platform) for c in p.named("post_card")]
        assert len(cards) == 12  # a ticket card and a preview per ticket, once each
        assert all(a.status == "done" for a in (await actions(veille)).values())
        async with veille.store.read() as session:
            from bot.store.models import OutboxLease

            assert (await session.execute(select(OutboxLease))).scalars().all() == []  # released
    finally:
        await other.aclose()
        await other_engine.dispose()


async def test_a_lease_left_by_a_crashed_process_expires(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    from bot.core.outbox import LEASE_S
    from bot.store.models import OutboxLease

    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    [ticket_id] = {a.ticket_id for a in (await actions(veille)).values()}
    async with veille.store.write() as session:  # a process that died holding the queue
        session.add(
            OutboxLease(
                queue=f"t:{ticket_id}",
                owner="dead-host:1:x",
                until=clock.now() + timedelta(seconds=LEASE_S),
            )
        )
    assert await veille.retry_outbox() == 0 and gateway.named("delete_message") == []
    clock.advance(timedelta(seconds=LEASE_S + 1))
    await veille.retry_outbox()
    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m1"]


class Hanging:
    """An image detector built for the test that never answers: the process "dies" mid-scan."""

    name = "colour"
    version = "1"
    kind = "image"

    async def load(self) -> None:
        return None

    async def detect(self, items: object) -> list[object]:
        await asyncio.Event().wait()
        return []


async def test_an_event_cut_short_by_a_crash_is_replayed_once_after_restart(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    colour: ColourModel,
    veille: Veille,
    gateway: RecordingGateway,
) -> None:
    """Discord never delivers a message twice: an event received but not decided when the
    process died must not be lost. The inbox keeps it; the next process replays it."""
    from bot.app import build_veille
    from bot.core.inbox import REPLAY_AGE_S
    from bot.core.scanner import Scanner
    from bot.store.models import InboxEvent

    dying = await build_veille(
        settings, engine, gateways=[gateway], clock=clock, scanner=Scanner([Hanging()])
    )  # type: ignore[list-item]
    event = message("m9", images=[shapes_png(red=1.0, seed=9)], gateway=gateway)
    work = asyncio.create_task(dying.handle_message(event))
    await asyncio.sleep(0.3)  # recorded, then stuck scanning
    work.cancel()  # kill -9 after the event was received, before any decision
    await asyncio.gather(work, return_exceptions=True)
    await dying.aclose()
    async with veille.store.read() as session:
        [row] = (await session.execute(select(InboxEvent))).scalars().all()
    assert row.status == "pending"

    assert await veille.replay_inbox() == 0  # too fresh: a live process may still be on it
    clock.advance(timedelta(seconds=REPLAY_AGE_S + 1))
    assert await veille.replay_inbox() == 1
    await veille.retry_outbox()
    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m9"]
    assert await veille.replay_inbox() == 0  # decided: never replayed again
    await veille.handle_message(event)  # and a late duplicate delivery changes nothing
    await veille.retry_outbox()
    assert len(gateway.named("delete_message")) == 1


async def test_a_card_post_tried_again_is_told_it_may_already_exist(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    """The outbox notes when a card post begins; a later try of the same post (its answer was
    lost, or the process died after it) is a `repeat`, so Slack looks for the card first."""
    gateway.failures["post_card"] = [GatewayError("timed out", retryable=True)]
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    await veille.retry_outbox()
    card = (await actions(veille))["card"]
    assert card.status == "pending" and card.started_at is not None
    clock.advance(timedelta(seconds=backoff(1) + 1))
    await veille.retry_outbox()
    posts = gateway.named("post_card")
    assert [c.args["repeat"] for c in posts] == [True, False]  # the card again, then the preview
    assert (await actions(veille))["card"].status == "done"
