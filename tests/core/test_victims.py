"""Victims first, in the core: reports with a 48-hour clock, sweeps for known copies, /protect
with no bytes kept, removal notices with reasons, and appeals decided by another moderator."""

from __future__ import annotations

import asyncio
import base64
import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import ManualClock, as_utc
from bot.core.errors import NotFound, VeilleError
from bot.core.service import Veille
from bot.core.types import Actor, ReportForm
from bot.core.verdict import Severity
from bot.settings import Settings
from bot.store.models import Appeal, HashEntry, Report, Sighting, Ticket, TicketEvent
from tests.core.conftest import MOD, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")

VICTIM = Actor("victim-1", "Vic", locale="fr")
FRIEND = Actor("friend-2", "Fern")
MOD2 = Actor("mod-2", "Noor", role_ids=frozenset({"role-mod"}))
FORM = ReportForm("intimate_me", good_faith=True, contact="vic@example.org")


def reencoded(data: bytes, quality: int = 70, scale: float = 0.8) -> bytes:
    """The same picture re-saved as a JPEG at another size: other bytes, same image."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


async def rows(veille: Veille, model: type, *where: object) -> list:
    async with veille.store.read() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def test_a_report_opens_a_priority_ticket_due_in_48_hours(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    posted = message("m1", images=[shapes_png(seed=4)], gateway=gateway)
    await veille.handle_message(posted)  # clean: no ticket
    reply = await veille.report_message("discord", WS, VICTIM, posted, FORM)
    ticket = (await rows(veille, Ticket, col(Ticket.id) == reply.extras["ticket_id"]))[0]
    assert ticket.kind == "report" and ticket.priority and ticket.status == "open"
    assert as_utc(ticket.due_at) == clock.now() + timedelta(hours=48)
    assert ticket.author_id == "poster-1" and ticket.sha256  # the reported message's image
    assert "ticket n°" in reply.text and "StopNCII" in reply.text  # French; about herself: guidance
    await veille.retry_outbox()
    card = gateway.named("post_card")[-1].args["card"]
    assert any("48 h" in value for _, value in card.fields)
    assert any(value == VICTIM.user_id for _, value in card.fields)  # moderators see who
    assert not [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"]

    again = await veille.report_message(
        "discord", WS, FRIEND, posted, ReportForm("someone_i_know", good_faith=True)
    )
    assert again.extras["ticket_id"] == ticket.id  # one ticket per reported message
    assert len(await rows(veille, Report, col(Report.ticket_id) == ticket.id)) == 2
    with pytest.raises(VeilleError) as refused:
        await veille.report_message("discord", WS, FRIEND, posted, ReportForm("other"))
    assert refused.value.code == "good_faith"


async def test_the_36_hour_alert_fires_once_and_reporters_hear_the_outcome(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    posted = message("m2", images=[shapes_png(seed=5)], gateway=gateway)
    tid = (await veille.report_message("discord", WS, VICTIM, posted, FORM)).extras["ticket_id"]
    clock.advance(timedelta(hours=35))
    assert await veille.check_report_deadlines() == 0
    clock.advance(timedelta(hours=1, minutes=1))
    assert await veille.check_report_deadlines() == 1
    clock.advance(timedelta(hours=4))
    assert await veille.check_report_deadlines() == 0
    await veille.retry_outbox()
    alerts = [c for c in gateway.named("post_text") if "36" in c.args["text"]]
    assert len(alerts) == 1 and f"#{tid}" in alerts[0].args["text"]

    await veille.ticket_action("discord", WS, MOD, "confirm", tid)
    await veille.retry_outbox()
    told = [c for c in gateway.named("send_private") if c.args["user_id"] == VICTIM.user_id]
    assert told and "retiré" in told[-1].args["text"]  # in the reporter's language
    assert any(c.args["message_id"] == "m2" for c in gateway.named("delete_message"))
    notice = [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"]
    assert notice and notice[-1].args["buttons"][0].action == "appeal"
    assert "moderator" in notice[-1].args["text"]  # who decided


async def test_confirming_a_ticket_sweeps_an_earlier_copy_still_posted(
    veille: Veille, gateway: RecordingGateway
) -> None:
    original = shapes_png(red=0.6, seed=11)
    # An earlier, re-encoded copy posted elsewhere: to review only, so it is still up.
    await veille.handle_message(
        message("early", images=[reencoded(original)], gateway=gateway, channel="random")
    )
    flagged = await veille.handle_message(message("m3", images=[original], gateway=gateway))
    assert flagged.severity == Severity.REVIEW
    assert len(await rows(veille, Sighting)) == 2
    await veille.ticket_action("discord", WS, MOD, "confirm", flagged.ticket_ids[0])
    await veille.retry_outbox()
    source = (await rows(veille, Ticket, col(Ticket.id) == flagged.ticket_ids[0]))[0]
    assert source.sweep["found"] == 2 and source.sweep["removed"] == 2  # itself and the copy
    deleted = {c.args["message_id"] for c in gateway.named("delete_message")}
    assert {"early", "m3"} <= deleted
    assert any("🧹" in c.args["text"] for c in gateway.named("post_text"))


async def test_protect_keeps_only_hashes_and_catches_a_reencoded_copy(
    veille: Veille, gateway: RecordingGateway, settings: Settings
) -> None:
    photo = shapes_png(seed=21, size=256)
    reply = await veille.protect("discord", WS, VICTIM, photo, label="vacances")
    pid = reply.extras["protection_id"]
    entries = await rows(veille, HashEntry, col(HashEntry.bank) == f"protected:{pid}")
    assert {e.kind for e in entries} >= {"sha256", "pdq"} and {e.source for e in entries} == {
        "protected"
    }
    chunk = photo[200:248]
    stored = " ".join(e.value for e in entries)
    assert chunk.hex() not in stored and base64.b64encode(chunk).decode()[:40] not in stored
    if settings.database_url.startswith("sqlite"):  # the file itself holds no image bytes
        database = Path(settings.database_url.split("///", 1)[1])
        assert photo[200:264] not in await asyncio.to_thread(database.read_bytes)

    copy = await veille.handle_message(message("m4", images=[reencoded(photo)], gateway=gateway))
    assert copy.severity == Severity.QUARANTINE and copy.delete

    listed = await veille.protections("discord", WS, VICTIM)
    assert [p["id"] for p in listed.extras["protections"]] == [pid]
    with pytest.raises(NotFound):
        await veille.withdraw_protection("discord", WS, FRIEND, pid)  # not hers
    await veille.withdraw_protection("discord", WS, VICTIM, pid)
    assert not await rows(veille, HashEntry, col(HashEntry.bank) == f"protected:{pid}")
    later = await veille.handle_message(
        message("m5", images=[reencoded(photo, 60)], gateway=gateway)
    )
    assert later.severity == Severity.NONE


async def test_an_appeal_goes_to_another_moderator_and_its_outcome_to_the_author(
    veille: Veille, gateway: RecordingGateway
) -> None:
    author = Actor("poster-1", "Pat")
    decided = await veille.handle_message(
        message("m6", images=[shapes_png(red=1.0, seed=8)], gateway=gateway)
    )
    tid = decided.ticket_ids[0]
    await veille.retry_outbox()
    notice = [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"][-1]
    assert notice.args["buttons"][0].ticket_id == tid
    assert "automated" in notice.args["text"] and "sexual content" in notice.args["text"]

    with pytest.raises(NotFound):
        await veille.ticket_action("discord", "", FRIEND, "appeal", tid)  # not the author
    assert (await veille.ticket_action("discord", "", author, "appeal", tid)).open_modal == "appeal"
    await veille.ticket_action("discord", "", author, "appeal", tid, note="It is my own art")
    ticket = (await rows(veille, Ticket, col(Ticket.id) == tid))[0]
    assert ticket.status == "appealed"
    with pytest.raises(VeilleError):
        await veille.ticket_action("discord", "", author, "appeal", tid, note="again")

    reply = await veille.ticket_action("discord", WS, MOD2, "reverse", tid)
    assert reply.ok
    await veille.retry_outbox()
    appeal = (await rows(veille, Appeal, col(Appeal.ticket_id) == tid))[0]
    assert appeal.status == "reversed" and appeal.outcome_by == MOD2.user_id
    outcome = [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"][-1]
    assert "reversed" in outcome.args["text"]
    allow = await rows(veille, HashEntry, col(HashEntry.source) == "allow")
    assert allow
    trail = [e.action for e in await rows(veille, TicketEvent, col(TicketEvent.ticket_id) == tid)]
    assert trail[-2:] == ["appeal", "reverse"]


async def test_the_moderator_who_decided_cannot_decide_the_appeal(
    veille: Veille, gateway: RecordingGateway
) -> None:
    tid = (
        await veille.handle_message(
            message("m7", images=[shapes_png(red=0.6, seed=9)], gateway=gateway)
        )
    ).ticket_ids[0]
    await veille.ticket_action("discord", WS, MOD, "confirm", tid)
    await veille.retry_outbox()
    author = Actor("poster-1", "Pat")
    await veille.ticket_action("discord", WS, author, "appeal", tid, note="not me")
    with pytest.raises(VeilleError) as refused:
        await veille.ticket_action("discord", WS, MOD, "uphold", tid)
    assert refused.value.code == "own_decision"
    await veille.ticket_action("discord", WS, MOD2, "uphold", tid)
    await veille.retry_outbox()
    outcome = [c for c in gateway.named("send_private") if c.args["user_id"] == "poster-1"][-1]
    assert "upheld" in outcome.args["text"]


async def test_a_sweep_cut_short_by_a_stop_runs_again_in_another_process(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock
) -> None:
    """The sweep is recorded before it runs and its record goes with its actions: a process
    that banked an image and died before sweeping leaves the record, which another process
    runs once its lease lapses, so the copy still posted comes down."""
    from bot.core import banks, sweep
    from bot.store.models import PendingSweep

    original = shapes_png(red=0.6, seed=13)
    await veille.handle_message(
        message("early-copy", images=[reencoded(original)], gateway=gateway, channel="random")
    )
    flagged = await veille.handle_message(message("m13", images=[original], gateway=gateway))
    [ticket] = await rows(veille, Ticket, col(Ticket.id) == flagged.ticket_ids[0])
    async with veille.store.write() as session:  # what a confirm banks, in a process that dies
        entries = await banks.bank_ticket(session, ticket, "Mo")
    await sweep.record(
        veille.store,
        ticket.workspace_id,
        entries,
        cause="confirm",
        source_ticket_id=ticket.id,
        actor=MOD,
        owner="dead-host:1:x",
        now=clock.now(),
    )
    assert await veille.resume_sweeps() == 0  # its holder may still be sweeping
    clock.advance(timedelta(seconds=sweep.SWEEP_LEASE_S + 1))
    assert await veille.resume_sweeps() == 1
    await veille.retry_outbox()
    assert "early-copy" in {c.args["message_id"] for c in gateway.named("delete_message")}
    [source] = await rows(veille, Ticket, col(Ticket.id) == ticket.id)
    assert source.sweep is not None and source.sweep["found"] >= 1
    assert await rows(veille, PendingSweep) == []  # done with its actions
    assert await veille.resume_sweeps() == 0


async def test_a_sweep_that_ran_leaves_no_record(veille: Veille, gateway: RecordingGateway) -> None:
    from bot.store.models import PendingSweep

    flagged = await veille.handle_message(
        message("m14", images=[shapes_png(red=0.6, seed=14)], gateway=gateway)
    )
    await veille.ticket_action("discord", WS, MOD, "confirm", flagged.ticket_ids[0])
    await veille.wait_for_sweeps()
    assert await rows(veille, PendingSweep) == []
