"""Tickets as moderators use them: steps and their audit trail, banking, allow-listing,
permissions, reveal, listing with the SLA, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.core.clock import ManualClock
from bot.core.errors import NotFound, PermissionDenied, VeilleError
from bot.core.service import Veille
from bot.core.types import Actor, SetupInput
from bot.core.verdict import Severity
from bot.settings import Settings
from bot.store.models import Evidence, HashEntry, Ticket, TicketEvent
from tests.core.conftest import (
    ADMIN,
    MEMBER,
    MOD,
    QUARANTINE_CHANNEL,
    WS,
    ColourModel,
    make_veille,
    message,
    shapes_png,
)
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def events(veille: Veille, ticket_id: int | None = None) -> list[TicketEvent]:
    async with veille.store.read() as session:
        query = select(TicketEvent).order_by(TicketEvent.id)  # type: ignore[arg-type]
        if ticket_id is not None:
            query = query.where(col(TicketEvent.ticket_id) == ticket_id)
        return list((await session.execute(query)).scalars())


async def ticket(veille: Veille, ticket_id: int) -> Ticket:
    async with veille.store.read() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


async def flagged(
    veille: Veille, gateway: RecordingGateway, red: float = 0.6, mid: str = "m1"
) -> int:
    decision = await veille.handle_message(
        message(mid, images=[shapes_png(red=red)], gateway=gateway)
    )
    await veille.retry_outbox()
    return decision.ticket_ids[0]


async def test_each_step_is_audited_and_the_card_follows_the_state(
    veille: Veille, gateway: RecordingGateway
) -> None:
    tid = await flagged(veille, gateway)
    reply = await veille.ticket_action("discord", WS, MOD, "claim", tid)
    assert reply.card is not None and "unclaim" in {b.action for b in reply.card.buttons}
    assert (await veille.ticket_action("discord", WS, MOD, "note", tid)).open_modal == "note"
    await veille.ticket_action("discord", WS, MOD, "note", tid, note="looks like a deepfake")
    await veille.ticket_action("discord", WS, MOD, "escalate", tid)
    await veille.retry_outbox()
    found = await ticket(veille, tid)
    assert (
        found.status == "escalated" and found.assignee_id == MOD.user_id and found.first_action_at
    )
    trail = [(e.action, e.actor_id) for e in await events(veille, tid)]
    assert trail == [
        ("opened", "veille"),
        ("claim", "mod-1"),
        ("note", "mod-1"),
        ("escalate", "mod-1"),
    ]
    updates = gateway.named("update_card")
    assert len(updates) == 3 and updates[-1].args["message_id"] == found.card_message_id
    assert "claim" in {b.action for b in updates[-1].args["card"].buttons}  # escalated: claimable
    assert any("escalated" in c.args["text"] for c in gateway.named("post_text"))
    with pytest.raises(VeilleError):
        await veille.ticket_action("discord", WS, MOD, "reopen", tid)  # not resolved yet


async def test_a_confirmed_ticket_banks_its_hash_and_the_bank_quarantines_the_next_post(
    veille: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=0.6, seed=7)
    first = await veille.handle_message(message("m1", images=[image], gateway=gateway))
    assert first.severity == Severity.REVIEW
    reply = await veille.ticket_action("discord", WS, MOD, "confirm", first.ticket_ids[0])
    assert reply.ok
    async with veille.store.read() as session:
        banked = list((await session.execute(select(HashEntry))).scalars())
    assert {e.kind for e in banked} >= {"sha256", "pdq"} and {e.source for e in banked} == {
        "confirmed"
    }
    again = await veille.handle_message(message("m2", images=[image], gateway=gateway))
    assert again.severity == Severity.QUARANTINE and again.delete
    assert (await ticket(veille, again.ticket_ids[0])).scores["known_content"] == 1.0


async def test_a_false_positive_is_allow_listed_released_and_the_author_told(
    veille: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=1.0, seed=3)
    tid = (await veille.handle_message(message("m9", images=[image], gateway=gateway))).ticket_ids[
        0
    ]
    await veille.retry_outbox()
    gateway.calls.clear()
    await veille.ticket_action("discord", WS, MOD, "false_positive", tid, note="a tomato")
    await veille.retry_outbox()
    found = await ticket(veille, tid)
    assert found.status == "resolved" and found.resolution == "false_positive"
    async with veille.store.read() as session:
        evidence = (
            await session.execute(select(Evidence).where(col(Evidence.ticket_id) == tid))
        ).scalar_one()
    assert evidence.ciphertext is None and evidence.preview_png is None and evidence.purged_at
    told = gateway.named("send_private")
    assert [c.args["user_id"] for c in told] == ["poster-1"] and "nothing wrong" in told[0].args[
        "text"
    ]
    again = await veille.handle_message(message("m10", images=[image], gateway=gateway))
    assert again.severity == Severity.NONE and again.ticket_ids == []
    reopened = await veille.ticket_action("discord", WS, MOD, "reopen", tid)
    assert reopened.ok and (await ticket(veille, tid)).status == "open"


async def test_members_are_refused_in_their_language_and_the_refusal_is_audited(
    veille: Veille, gateway: RecordingGateway
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(locale="fr"))
    tid = await flagged(veille, gateway)
    with pytest.raises(PermissionDenied) as refused:
        await veille.ticket_action("discord", WS, MEMBER, "claim", tid)
    assert "modérateur" in str(refused.value)
    with pytest.raises(PermissionDenied):
        await veille.list_tickets("discord", WS, MEMBER)
    with pytest.raises(PermissionDenied):
        await veille.save_setup("discord", WS, MOD, SetupInput(sensitivity="relaxed"))
    denied = [e for e in await events(veille) if e.action == "denied"]
    assert [(e.actor_id, e.data["operation"], e.ticket_id) for e in denied] == [
        ("user-9", "claim", tid),
        ("user-9", "list_tickets", None),
        ("mod-1", "setup", None),
    ]
    assert (await ticket(veille, tid)).status == "open"
    assert (await veille.workspace("discord", WS)).sensitivity == "standard"


async def test_critical_tickets_need_an_admin_to_close(
    veille: Veille, gateway: RecordingGateway
) -> None:
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=0.85, blue=0.15)], gateway=gateway)
    )
    assert decision.severity == Severity.CRITICAL
    tid = decision.ticket_ids[0]
    with pytest.raises(PermissionDenied):
        await veille.ticket_action("discord", WS, MOD, "false_positive", tid)
    admin = Actor("a2", role_ids=frozenset({"role-admin"}))
    assert (await veille.ticket_action("discord", WS, admin, "confirm", tid)).ok


async def test_reveal_returns_the_original_to_moderators_and_is_audited(
    veille: Veille, gateway: RecordingGateway
) -> None:
    image = shapes_png(red=1.0, seed=5)
    decision = await veille.handle_message(message("m1", images=[image], gateway=gateway))
    tid = decision.ticket_ids[0]
    reply = await veille.ticket_action("discord", WS, MOD, "reveal", tid)
    assert reply.image_png == image and reply.ephemeral and reply.extras["mime"] == "image/png"
    with pytest.raises(PermissionDenied):
        await veille.ticket_action("discord", WS, MEMBER, "reveal", tid)
    assert [e.actor_id for e in await events(veille, tid) if e.action == "reveal"] == ["mod-1"]
    with pytest.raises(NotFound):
        await veille.ticket_action("discord", WS, MOD, "reveal", tid + 100)


async def test_a_changed_secret_key_gives_a_clear_refusal_and_is_audited(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock,
    gateway: RecordingGateway,
    colour: ColourModel,
    veille: Veille,
) -> None:
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=1.0, seed=6)], gateway=gateway)
    )
    tid = decision.ticket_ids[0]
    rotated = await make_veille(
        settings.model_copy(update={"secret_key": SecretStr("another")}),
        engine,
        clock,
        gateway,
        colour,
    )
    try:
        reply = await rotated.ticket_action("discord", WS, MOD, "reveal", tid)
        assert not reply.ok and reply.image_png is None
        assert "another VEILLE_SECRET_KEY" in reply.text and "recorded" in reply.text
        failed = [e for e in await events(rotated, tid) if e.action == "reveal_failed"]
        assert [(e.actor_id, e.data["reason"]) for e in failed] == [("mod-1", "wrong_key")]
    finally:
        await rotated.aclose()


async def test_listing_filters_and_shows_the_sla(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    first = await flagged(veille, gateway, mid="m1")
    await flagged(veille, gateway, mid="m2")
    await veille.ticket_action("discord", WS, MOD, "resolve", first, note="handled")
    open_list = await veille.list_tickets("discord", WS, MOD)
    assert open_list.extras["ticket_ids"] == [first + 1]
    assert (await veille.list_tickets("discord", WS, MOD, status="all")).extras["ticket_ids"] == [
        first + 1,
        first,
    ]
    clock.advance(timedelta(hours=30))
    late = await veille.list_tickets("discord", WS, MOD)
    assert late.card is not None and "⚠" in late.card.body
    shown = await veille.show_ticket("discord", WS, MOD, first)
    assert shown.extras["events"] == ["opened", "resolve"] and "handled" in shown.text


async def test_retention_purges_evidence_bytes_but_keeps_hashes(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(retention_days=7))
    await flagged(veille, gateway, red=1.0)
    assert await veille.purge_expired_evidence() == 0
    clock.advance(timedelta(days=8))
    assert await veille.purge_expired_evidence() == 1
    async with veille.store.read() as session:
        evidence = (await session.execute(select(Evidence))).scalar_one()
    assert evidence.ciphertext is None and len(evidence.sha256) == 64


async def _preview_id(veille: Veille) -> str:
    async with veille.store.read() as session:
        [ticket] = (await session.execute(select(Ticket))).scalars().all()
    assert ticket.preview_message_id  # posted in the quarantine channel
    return ticket.preview_message_id


async def test_the_blurred_preview_is_deleted_at_resolution(
    veille: Veille, gateway: RecordingGateway
) -> None:
    tid = await flagged(veille, gateway, red=1.0)
    await veille.retry_outbox()
    preview = await _preview_id(veille)
    await veille.ticket_action("discord", WS, MOD, "false_positive", tid)
    await veille.retry_outbox()
    deletes = [
        (c.args["channel_id"], c.args["message_id"]) for c in gateway.named("delete_message")
    ]
    assert (QUARANTINE_CHANNEL, preview) in deletes
    async with veille.store.read() as session:
        assert (await session.get(Ticket, tid)).preview_message_id is None  # type: ignore[union-attr]


async def test_the_blurred_preview_is_deleted_when_retention_ends(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(retention_days=7))
    await flagged(veille, gateway, red=1.0)
    await veille.retry_outbox()
    preview = await _preview_id(veille)
    clock.advance(timedelta(days=8))
    assert await veille.purge_expired_evidence() == 1
    await veille.retry_outbox()
    assert (QUARANTINE_CHANNEL, preview) in [
        (c.args["channel_id"], c.args["message_id"]) for c in gateway.named("delete_message")
    ]


async def test_status_help_and_added_hashes(veille: Veille, gateway: RecordingGateway) -> None:
    status = await veille.status("discord", WS, MOD)
    assert status.card is not None and dict(status.card.fields)["Open tickets"] == "0"
    help_card = veille.help("fr").card
    assert help_card is not None and "aide" in help_card.title
    image = shapes_png(seed=11)
    reply = await veille.add_hashes("discord", WS, ADMIN, [image, b"not an image"], "imported-list")
    assert "1 unreadable" in reply.text
    decision = await veille.handle_message(message("m1", images=[image], gateway=gateway))
    assert decision.severity == Severity.QUARANTINE


async def test_authorise_returns_the_settings_or_refuses(veille: Veille) -> None:
    view = await veille.authorise("discord", WS, ADMIN, "setup")
    assert view.safety_channel_id == "safety" and view.moderator_role_ids == ("role-mod",)
    with pytest.raises(PermissionDenied):
        await veille.authorise("discord", WS, MOD, "setup")
