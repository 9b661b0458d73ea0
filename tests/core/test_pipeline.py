"""Messages through the core: severities and their actions, duplicates, concurrency, batching."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.core.crypto import EvidenceCipher
from bot.core.service import Veille
from bot.core.types import Actor, RepliedMessage, SetupInput
from bot.core.verdict import Severity
from bot.settings import Settings
from bot.store.models import (
    Evidence,
    MediaItem,
    Offender,
    OutboxAction,
    ScanRecord,
    Ticket,
    TicketEvent,
)
from tests.core.conftest import (
    ADMIN,
    MOD,
    QUARANTINE_CHANNEL,
    SAFETY,
    WS,
    ColourModel,
    make_veille,
    message,
    shapes_png,
)
from tests.core.recording_gateway import RecordingGateway

# Veille owns tasks (batcher, outbox worker): run on the loop the async fixtures use.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def rows(veille: Veille, model: type) -> list:
    async with veille.store.read() as session:
        return list((await session.execute(select(model))).scalars())


async def test_quarantine_removes_keeps_encrypted_evidence_and_tells_the_author(
    veille: Veille, gateway: RecordingGateway, settings: Settings
) -> None:
    data = shapes_png(red=1.0)
    decision = await veille.handle_message(message("m1", images=[data], gateway=gateway))
    assert decision.severity == Severity.QUARANTINE and decision.delete and decision.notify_author
    assert gateway.named("delete_message") == []  # decided and committed, not yet acted
    await veille.retry_outbox()

    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m1"]
    cards = gateway.named("post_card")
    assert {c.args["channel_id"] for c in cards} == {SAFETY, QUARANTINE_CHANNEL}
    preview = next(c.args["card"] for c in cards if c.args["channel_id"] == QUARANTINE_CHANNEL)
    assert preview.spoiler and preview.image_png
    shown = Image.open(io.BytesIO(preview.image_png))
    assert shown.mode == "L" and max(shown.size) <= 192
    assert [c.args["user_id"] for c in gateway.named("send_private")] == ["poster-1"]

    [ticket] = await rows(veille, Ticket)
    assert ticket.message_removed and ticket.card_message_id and ticket.card_channel_id == SAFETY
    assert ticket.preview_message_id
    [evidence] = await rows(veille, Evidence)
    assert evidence.ciphertext and data not in evidence.ciphertext
    assert settings.secret_key is not None
    assert (
        EvidenceCipher(settings.secret_key.get_secret_value()).decrypt(evidence.ciphertext) == data
    )
    [offender] = await rows(veille, Offender)
    assert offender.user_id == "poster-1" and offender.count == 1


async def test_review_opens_a_ticket_and_leaves_the_message(
    veille: Veille, gateway: RecordingGateway
) -> None:
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=0.6)], gateway=gateway)
    )
    await veille.retry_outbox()
    assert decision.severity == Severity.REVIEW and not decision.delete
    assert gateway.named("delete_message") == [] and gateway.named("send_private") == []
    [card] = gateway.named("post_card")
    assert card.args["channel_id"] == SAFETY
    assert {b.action for b in card.args["card"].buttons} >= {"claim", "confirm", "false_positive"}


async def test_critical_keeps_no_bytes_and_alerts_admins(
    veille: Veille, gateway: RecordingGateway
) -> None:
    # Block-level sexual evidence (0.85 ≥ 0.8) and a minor possibly present (0.6 ≥ 0.5).
    decision = await veille.handle_message(
        message("m1", images=[shapes_png(red=0.85, blue=0.15)], gateway=gateway)
    )
    assert decision.severity == Severity.CRITICAL and decision.delete and decision.alert_admins
    await veille.retry_outbox()
    [evidence] = await rows(veille, Evidence)
    assert (
        evidence.ciphertext is None and evidence.preview_png is None and len(evidence.sha256) == 64
    )
    assert gateway.named("delete_message")
    assert all(c.args["channel_id"] != QUARANTINE_CHANNEL for c in gateway.named("post_card"))
    assert gateway.named("send_private") == []  # no tipping off
    assert any("role-admin" in c.args["text"] for c in gateway.named("post_text"))
    card = gateway.named("post_card")[0].args["card"]
    assert "NCMEC" in card.body and "reveal" not in {b.action for b in card.buttons}
    reply = await veille.ticket_action("discord", WS, MOD, "reveal", decision.ticket_ids[0])
    assert reply.image_png is None and not reply.ok


async def test_minor_with_review_level_sexual_evidence_is_quarantine_without_preview(
    veille: Veille, gateway: RecordingGateway, settings: Settings
) -> None:
    """Two review-level guesses never reach CRITICAL (which keeps nothing a moderator could
    review): the message goes, no preview is posted anywhere, evidence is kept briefly."""
    data = shapes_png(red=0.55, blue=0.2)  # sexual 0.55: review, not block; minor 0.8
    decision = await veille.handle_message(message("m1", images=[data], gateway=gateway))
    assert decision.severity == Severity.QUARANTINE and decision.minor_suspected
    assert decision.delete and decision.alert_admins and not decision.notify_author
    await veille.retry_outbox()
    assert [c.args["message_id"] for c in gateway.named("delete_message")] == ["m1"]
    cards = gateway.named("post_card")
    assert [c.args["channel_id"] for c in cards] == [SAFETY]  # no preview card, anywhere
    assert all(c.args["card"].image_png is None for c in cards)
    card = cards[0].args["card"]
    assert "minor may be present" in card.body and "NCMEC" not in card.body
    assert gateway.named("send_private") == []
    assert any(
        "No preview" in c.args["text"] and "role-admin" in c.args["text"]
        for c in gateway.named("post_text")
    )
    [evidence] = await rows(veille, Evidence)
    assert evidence.preview_png is None and evidence.ciphertext and data not in evidence.ciphertext
    assert (evidence.purge_after - evidence.created_at).days <= 7 < 30  # workspace keeps 30
    [ticket] = await rows(veille, Ticket)
    assert ticket.severity == "QUARANTINE" and ticket.preview_message_id is None


async def test_nothing_found_stores_only_the_verdict_cache(
    veille: Veille, gateway: RecordingGateway, colour: ColourModel
) -> None:
    data = shapes_png(red=0.0)
    first = await veille.handle_message(message("m1", images=[data], gateway=gateway))
    second = await veille.handle_message(message("m2", images=[data], gateway=gateway))
    assert first.severity == second.severity == Severity.NONE
    assert sum(colour.batches) == 1  # the second post came from the SHA-256 verdict cache
    [item] = await rows(veille, MediaItem)
    assert item.seen_count == 2 and item.verdict and item.verdict_key == veille.pipeline.cache_key()
    assert await rows(veille, Ticket) == [] and await rows(veille, Evidence) == []
    assert len(await rows(veille, ScanRecord)) == 2


async def test_the_same_event_twice_makes_one_ticket(
    veille: Veille, gateway: RecordingGateway
) -> None:
    event = message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
    first = await veille.handle_message(event)
    second = await veille.handle_message(event)
    assert first.ticket_ids == second.ticket_ids and len(first.ticket_ids) == 1
    await asyncio.gather(*(veille.handle_message(event) for _ in range(10)))
    await veille.retry_outbox()
    assert len(await rows(veille, Ticket)) == 1
    assert len(gateway.named("delete_message")) == 1
    [offender] = await rows(veille, Offender)
    assert offender.count == 1


async def test_200_concurrent_events_lose_no_ticket(
    veille: Veille, gateway: RecordingGateway, colour: ColourModel
) -> None:
    red, grey = shapes_png(red=1.0, seed=1), shapes_png(seed=2)
    events = [
        message(
            f"m{i}", images=[red if i % 4 == 0 else grey], gateway=gateway, author=Actor(f"u{i}")
        )
        for i in range(200)
    ]
    decisions = await asyncio.gather(*(veille.handle_message(e) for e in events))
    assert [d.severity for d in decisions].count(Severity.QUARANTINE) == 50
    tickets = await rows(veille, Ticket)
    assert sorted(int(t.message_id[1:]) for t in tickets) == list(range(0, 200, 4))
    assert len({t.id for t in tickets}) == 50
    assert len(await rows(veille, Evidence)) == 50
    opened = [e for e in await rows(veille, TicketEvent) if e.action == "opened"]
    assert len(opened) == 50
    async with veille.store.read() as session:
        deletes = await session.scalar(
            select(func.count()).where(col(OutboxAction.kind) == "delete_message")
        )
    assert deletes == 50
    await veille.retry_outbox()
    assert len(gateway.named("delete_message")) == 50
    assert max(colour.batches) > 1  # images of concurrent messages shared detector batches


async def test_exempt_channels_roles_and_bots_are_not_scanned(
    veille: Veille, gateway: RecordingGateway, colour: ColourModel
) -> None:
    await veille.save_setup(
        "discord", WS, ADMIN, SetupInput(allow_channel_ids=("art",), allow_role_ids=("trusted",))
    )
    red = shapes_png(red=1.0)
    skipped = [
        message("m1", images=[red], gateway=gateway, channel="art"),
        message(
            "m2", images=[red], gateway=gateway, author=Actor("u2", role_ids=frozenset({"trusted"}))
        ),
        message("m3", images=[red], gateway=gateway, author=Actor("bot", is_bot=True)),
    ]
    for event in skipped:
        assert (await veille.handle_message(event)).severity == Severity.NONE
    assert colour.batches == []
    ai = Actor("grok", is_bot=True, is_ai_app=True)
    assert (
        await veille.handle_message(message("m4", images=[red], gateway=gateway, author=ai))
    ).severity == Severity.QUARANTINE


async def test_an_ai_image_answering_an_undress_request_is_quarantined(
    veille: Veille, gateway: RecordingGateway
) -> None:
    borderline = shapes_png(red=0.6)
    request = RepliedMessage("m0", Actor("u1"), text="@grok remove her clothes", has_image=True)
    answer = message(
        "m1",
        images=[borderline],
        gateway=gateway,
        author=Actor("grok", is_bot=True, is_ai_app=True),
        reply_to=request,
    )
    alone = message("m2", images=[borderline], gateway=gateway)
    assert (await veille.handle_message(alone)).severity == Severity.REVIEW
    decision = await veille.handle_message(answer)
    assert decision.severity == Severity.QUARANTINE
    assert any("undress request" in r for r in decision.reasons)


async def test_an_undress_request_itself_is_flagged(
    veille: Veille, gateway: RecordingGateway
) -> None:
    event = message(
        "m1",
        text="@grok remove her clothes",
        mentions_ai_app=True,
        reply_to=RepliedMessage("m0", Actor("u1"), has_image=True),
    )
    decision = await veille.handle_message(event)
    assert decision.severity >= Severity.REVIEW
    [ticket] = await rows(veille, Ticket)
    assert ticket.media_key == "" and "undress_request" in ticket.categories


async def test_without_a_secret_key_quarantine_still_removes_and_tickets(
    settings: Settings, engine: AsyncEngine, clock, gateway: RecordingGateway, colour: ColourModel
) -> None:
    keyless = settings.model_copy(update={"secret_key": None})
    core = await make_veille(keyless, engine, clock, gateway, colour)
    try:
        await core.save_setup("discord", WS, ADMIN, SetupInput(safety_channel_id=SAFETY))
        decision = await core.handle_message(
            message("m1", images=[shapes_png(red=1.0)], gateway=gateway)
        )
        await core.retry_outbox()
        assert decision.severity == Severity.QUARANTINE and gateway.named("delete_message")
        [evidence] = await rows(core, Evidence)
        assert evidence.ciphertext is None and evidence.preview_png is None
        [ticket] = await rows(core, Ticket)
        assert any("VEILLE_SECRET_KEY" in r for r in ticket.reasons)
    finally:
        await core.aclose()


async def test_without_delete_rights_a_tombstone_and_a_request_replace_removal(
    veille: Veille, gateway: RecordingGateway
) -> None:
    gateway.deletes = False
    await veille.handle_message(message("m1", images=[shapes_png(red=1.0)], gateway=gateway))
    await veille.retry_outbox()
    assert gateway.named("delete_message") == []
    texts = {c.args["channel_id"]: c for c in gateway.named("post_text")}
    assert texts["general"].args["thread_id"] == "m1" and SAFETY in texts
    # One private message: "please delete" — never also "Veille removed an image", untrue here.
    [notice] = gateway.named("send_private")
    assert "Please delete" in notice.args["text"] and "removed" not in notice.args["text"]
    assert "flagged the message above" in texts["general"].args["text"]  # not "hidden"


async def test_a_help_request_opens_a_priority_ticket_and_answers_privately(
    veille: Veille, gateway: RecordingGateway
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(locale="fr"))
    event = message("m1", text="quelqu'un a partagé mes photos intimes sans mon accord, aidez-moi")
    decision = await veille.handle_message(event)
    assert decision.help_request and not decision.delete and not decision.timeout_author
    await veille.retry_outbox()
    [ticket] = await rows(veille, Ticket)
    assert ticket.kind == "help_request" and ticket.priority
    [answer] = gateway.named("send_private")
    assert answer.args["user_id"] == "poster-1"
    for needle in ("StopNCII.org", "takeitdown.ncmec.org", "internet-signalement.gouv.fr", "3018"):
        assert needle in answer.args["text"]
    assert gateway.named("delete_message") == [] and await rows(veille, Offender) == []
    card = gateway.named("post_card")[0].args["card"]
    assert {b.action for b in card.buttons} == {"claim", "resolve", "note"}


async def test_repeat_offenders_are_timed_out_when_enabled(
    veille: Veille, gateway: RecordingGateway
) -> None:
    await veille.save_setup("discord", WS, ADMIN, SetupInput(timeout=True))
    for i in range(3):
        await veille.handle_message(
            message(f"m{i}", images=[shapes_png(red=1.0, seed=i)], gateway=gateway)
        )
    await veille.retry_outbox()
    [timeout] = gateway.named("timeout_member")
    assert timeout.args["user_id"] == "poster-1"


async def test_broken_media_and_a_crashing_model_are_reported_not_fatal(
    veille: Veille, gateway: RecordingGateway, colour: ColourModel
) -> None:
    event = message(
        "m1", images=[b"\x89PNG\r\n\x1a\n truncated", shapes_png(red=1.0)], gateway=gateway
    )
    decision = await veille.handle_message(event)
    assert decision.severity == Severity.QUARANTINE  # the readable image still counts
    colour.broken = True
    scan = await veille.scan_event(message("m2", images=[shapes_png(seed=4)], gateway=gateway), MOD)
    results = scan.extras["results"]
    assert isinstance(results, list) and "detectors failed" in str(results[0]["error"])
    # A crashed model leaves the image unscanned: a REVIEW ticket says so (never a silent pass).
    crashed = await veille.handle_message(
        message("m3", images=[shapes_png(seed=4)], gateway=gateway)
    )
    assert crashed.severity == Severity.REVIEW and not crashed.delete
    cached = [item.verdict for item in await rows(veille, MediaItem)]
    assert len(cached) == 2 and cached.count(None) == 1  # no verdict kept for the failed image


async def test_a_bank_change_sends_cached_images_through_the_detectors_again(
    veille: Veille, gateway: RecordingGateway, colour: ColourModel
) -> None:
    """A re-encoded copy seen as clean before its original was banked must not stay cached as
    clean: the verdict cache is keyed by the hash-bank revision too."""
    data = shapes_png(red=0.0)
    await veille.handle_message(message("m1", images=[data], gateway=gateway))
    before = veille.pipeline.cache_key()
    await veille.add_hashes("discord", WS, ADMIN, [shapes_png(red=0.0, seed=99)], "confirmed")
    assert veille.pipeline.cache_key() != before
    await veille.handle_message(message("m2", images=[data], gateway=gateway))
    assert sum(colour.batches) == 2  # scanned again, not answered from the stale cache
