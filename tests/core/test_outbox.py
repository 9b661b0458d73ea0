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
    veille: Veille, settings: Settings, engine: AsyncEngine, clock: ManualClock,
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
    assert delete.status == "pending" and delete.attempts == 1 and delete.last_error == "rate limited"
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
    assert delete.status == "dead" and delete.attempts == MAX_ATTEMPTS and delete.last_error == "down"


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
