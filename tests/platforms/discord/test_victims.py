"""Victims first (issue 19) on Discord, end to end: the real discord.py client and the fake
Discord. A member reports a message; /protect banks only hashes; a confirmed ticket sweeps an
earlier copy; an author appeals from a DM and a different moderator decides."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.core.clock import ManualClock, as_utc, utcnow
from bot.core.handoff import SERVICES
from bot.core.i18n import t
from bot.core.reports import REASONS
from bot.platforms.discord.victims import _pieces
from bot.store.models import Appeal, Protection, Report, Sighting, Ticket
from tests.conftest import POSTGRES
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import (
    add_hashes,
    answer_of,
    card_in,
    components,
    custom_ids,
    is_ephemeral,
    press,
    text_of,
)

JSON = dict[str, Any]
REPORT = "Report to Veille"


def photo_png(seed: int, size: int = 256) -> bytes:
    """A benign generated "photo": coloured shapes on smooth noise (PDQ needs some texture)."""
    base = Image.open(io.BytesIO(shape_png(seed, size))).convert("RGB")
    noise = np.random.default_rng(seed).integers(0, 40, (size, size, 3), dtype=np.uint8)
    mixed = np.clip(np.asarray(base, dtype=np.int16) + noise - 20, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(mixed).save(out, "PNG")
    return out.getvalue()


def reencoded(data: bytes, *, quality: int = 70, scale: float = 0.8) -> bytes:
    """The same picture as someone would re-share it: resized and saved again as JPEG."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


async def open_report(
    world: DiscordWorld, who: JSON, message: JSON, *, locale: str = "en-US"
) -> JSON:
    """`who` picks "Report to Veille" on `message`; returns the modal the bot opened."""
    fake = world.fake
    interaction = await fake.slash(
        world.guild,
        world.general,
        who,
        REPORT,
        command_type=3,
        target_id=message["id"],
        resolved={"messages": {message["id"]: message}},
        locale=locale,
    )
    opened = await answer_of(fake, interaction)
    assert opened["type"] == 9, opened  # MODAL
    return opened["data"]


async def report(
    world: DiscordWorld, who: JSON, message: JSON, reason: str = "fake_me", **fields: Any
) -> JSON:
    """Report `message` through the form; returns the bot's answer to the submission."""
    modal = await open_report(world, who, message)
    values = {"reason": [reason], "good_faith": True, **fields}
    submitted = await world.fake.submit_modal(
        world.guild, world.general, who, modal["custom_id"], values, modal=modal
    )
    return await answer_of(world.fake, submitted)


async def bot_post(
    world: DiscordWorld, containing: str, *, channel: JSON | None = None, dm: JSON | None = None
) -> JSON:
    """The first message the bot posted in `channel`, or in its DM with the member `dm`,
    whose text has `containing`."""
    fake = world.fake

    def found() -> JSON | None:
        target = channel or (fake.dm_channels.get(dm["user"]["id"]) if dm else None)
        calls = fake.find_calls("POST", f"/channels/{target['id']}/messages") if target else []
        return next(
            (c.response for c in calls if containing in (c.response or {}).get("content", "")), None
        )

    return await fake.wait_for(found)  # type: ignore[no-any-return]


async def until(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll a condition on the bot's database (the fake cannot see it) until it holds."""

    async def _poll() -> Any:
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(_poll(), within)


def controlled_clock(world: DiscordWorld) -> ManualClock:
    """The core's one clock made a ManualClock (world.start_bot builds a wall clock): the
    outbox then sends what the core queued at the time the test moved it to."""
    assert world.veille is not None
    clock = ManualClock(utcnow())
    world.veille.clock = world.veille.outbox.clock = clock
    return clock


async def test_report_opens_a_priority_ticket_due_in_48_hours(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    clock = controlled_clock(world)
    eve = world.fake.add_member(world.guild, "eve")
    fake = world.fake
    posted = await fake.post_message(
        world.guild, world.general, eve, "here you go", files=[("edit.png", shape_png(21))]
    )

    ack = await report(
        world,
        world.member,
        posted,
        "fake_me",
        contact="mel@example.org",
        details="an edited photo of me",
    )

    assert ack["type"] == 5 and is_ephemeral(ack)  # deferred, then the private answer
    [ticket] = await world.rows(Ticket, Ticket.kind == "report")
    assert ticket.message_id == posted["id"] and ticket.priority and ticket.due_at is not None
    assert ticket.due_at - ticket.created_at == timedelta(hours=48)
    [row] = await world.rows(Report, Report.ticket_id == ticket.id)
    assert (row.reporter_id, row.reason, row.good_faith, row.contact, row.details) == (
        world.member["user"]["id"],
        "fake_me",
        True,
        "mel@example.org",
        "an edited photo of me",
    )
    assert text_of(ack).startswith(t("victims.report.received", "en", id=ticket.id, hours=48))
    card = await card_in(world, world.safety)  # the ticket card, with the time left
    fields = {f["name"]: f["value"] for f in card.body["embeds"][0]["fields"]}
    assert fields[t("victims.card.due", "en")] == t("victims.card.due_in", "en", hours="48.0")
    assert f"veille:confirm:{ticket.id}" in custom_ids(card.body)
    assert world.member["user"]["id"] not in str(
        fake.find_calls("POST", f"/channels/{world.general['id']}/messages")
    )  # the reporter stays private
    # 36 hours later, still unresolved: the safety channel is alerted, once.
    before = len(fake.find_calls("POST", f"/channels/{world.safety['id']}/messages"))
    late = as_utc(ticket.created_at) + timedelta(hours=36, minutes=1)
    clock.set(late)
    assert await world.veille.check_report_deadlines(now=late) == 1  # type: ignore[union-attr]
    alert = await card_in(world, world.safety, count=before + 1)
    assert alert.body["content"].startswith(
        t("victims.report.due_alert", "en", id=ticket.id, hours=12)[:30]
    )
    assert await world.veille.check_report_deadlines(now=late) == 0  # type: ignore[union-attr]
    # Resolving it tells the reporter privately.
    resolved = await answer_of(
        fake,
        await fake.slash(
            world.guild,
            world.safety,
            world.moderator,
            "ticket",
            [
                {
                    "type": 1,
                    "name": "resolve",
                    "options": [
                        {"type": 4, "name": "ticket_id", "value": ticket.id},
                        {"type": 3, "name": "note", "value": "removed, author warned"},
                    ],
                }
            ],
        ),
    )
    assert is_ephemeral(resolved)
    await bot_post(world, t("victims.report.done.resolved", "en", id=ticket.id), dm=world.member)
    assert len(fake.find_calls("POST", f"/channels/{world.safety['id']}/messages")) == before + 1


async def test_the_report_form_speaks_french(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    eve = world.fake.add_member(world.guild, "eve")
    commands = {c["name"]: c for c in world.fake.commands["global"]}
    assert commands[REPORT]["type"] == 3
    assert commands[REPORT]["name_localizations"]["fr"] == "Signaler à Veille"
    assert commands[REPORT]["dm_permission"] is False
    assert commands["protect"]["name_localizations"]["fr"] == "proteger"
    posted = await world.fake.post_message(world.guild, world.general, eve, "voilà")

    modal = await open_report(world, world.member, posted, locale="fr")

    assert modal["title"] == "Signaler à Veille"
    fields = {c["component"]["custom_id"]: c for c in modal["components"] if c["type"] == 18}
    assert set(fields) == {"reason", "contact", "details", "good_faith"}
    assert fields["reason"]["label"] == t("victims.form.reason", "fr")
    assert [o["label"] for o in fields["reason"]["component"]["options"]] == [
        t(f"victims.reason.{r}", "fr") for r in REASONS
    ]
    assert fields["good_faith"]["component"]["type"] == 23  # a checkbox
    assert fields["good_faith"]["description"] == t("victims.form.good_faith_option", "fr")
    # A French label longer than Discord's 45 characters is cut at a word, shown whole below.
    details, shown = t("victims.form.details", "fr"), fields["details"]
    assert len(shown["label"]) <= 45 and details in (shown["label"], shown.get("description"))


async def test_a_report_without_good_faith_is_refused(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    eve = world.fake.add_member(world.guild, "eve")
    posted = await world.fake.post_message(world.guild, world.general, eve, "x")
    modal = await open_report(world, world.member, posted)
    submitted = await world.fake.submit_modal(
        world.guild,
        world.general,
        world.member,
        modal["custom_id"],
        {"reason": ["other"]},
        modal=modal,
    )
    refused = await answer_of(world.fake, submitted)
    assert is_ephemeral(refused)
    assert text_of(refused) == t("victims.report.good_faith_needed", "en")
    assert not await world.rows(Ticket, Ticket.kind == "report")


async def test_protect_refuses_a_photo_over_20_mb_without_reading_it(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    upload = {**fake.host_file("big.png", photo_png(71)), "size": 21 * 1024 * 1024}
    protect = [{"type": 11, "name": "image", "value": upload["id"]}]
    for options in (protect, [*protect, {"type": 4, "name": "withdraw", "value": 1}]):
        refused = await answer_of(
            fake,
            await fake.slash(
                world.guild,
                world.general,
                world.member,
                "protect",
                options,
                resolved={"attachments": {upload["id"]: upload}},
            ),
        )
        assert is_ephemeral(refused) and refused["type"] == 4
    assert not fake.cdn_reads and not await world.rows(Protection)


def _leaks(chunk: bytes) -> tuple[bytes, ...]:
    """The forms a chunk of image bytes could take in a file or a log: raw, hex, base64."""
    return (chunk, chunk.hex().encode(), base64.b64encode(chunk)[:32])


def _files_holding(root: Path, needles: tuple[bytes, ...]) -> tuple[list[Path], list[Path]]:
    """Every file under `root` (the SQLite database and journal, the data dir; on PostgreSQL
    the data dir only) and those holding any of `needles`."""
    files = [f for f in root.rglob("*") if f.is_file()]
    return files, [f for f in files if any(n in f.read_bytes() for n in needles)]


async def test_protect_banks_only_hashes_and_quarantines_a_reencoded_copy(
    world: DiscordWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await world.start_bot()
    await world.configure()
    eve = world.fake.add_member(world.guild, "eve")
    fake = world.fake
    photo = photo_png(31)
    upload = fake.host_file("me.png", photo)

    answer = await answer_of(
        fake,
        await fake.slash(
            world.guild,
            world.general,
            world.member,
            "protect",
            [
                {"type": 11, "name": "image", "value": upload["id"]},
                {"type": 3, "name": "label", "value": "beach"},
            ],
            resolved={"attachments": {upload["id"]: upload}},
        ),
    )

    assert is_ephemeral(answer)
    [protection] = await world.rows(Protection)
    assert protection.owner_id == world.member["user"]["id"] and protection.entries >= 1
    # No image bytes anywhere: not in the database file, the data dir, or the logs.
    chunk = photo[len(photo) // 2 : len(photo) // 2 + 48]
    searched, leaking = await asyncio.to_thread(_files_holding, tmp_path, _leaks(chunk))
    assert (POSTGRES or any(f.suffix == ".db" for f in searched)) and not leaking
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert not any(leak in logged for leak in _leaks(chunk))
    assert not any(photo in data for call in fake.calls for _, data in call.files)
    # A re-encoded copy posted later is quarantined.
    copy = await fake.post_message(
        world.guild, world.general, eve, "", files=[("copy.jpg", reencoded(photo))]
    )
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{copy['id']}")
    assert await until(lambda: world.rows(Ticket, Ticket.message_id == copy["id"]))
    # The person lists and withdraws their protection.
    listed = await answer_of(
        fake, await fake.slash(world.guild, world.general, world.member, "protect")
    )
    assert is_ephemeral(listed) and f"{protection.id}" in text_of(listed)
    withdrawn = await answer_of(
        fake,
        await fake.slash(
            world.guild,
            world.general,
            world.member,
            "protect",
            [{"type": 4, "name": "withdraw", "value": protection.id}],
        ),
    )
    assert is_ephemeral(withdrawn)
    assert (await world.rows(Protection))[0].withdrawn_at is not None
    again = await fake.post_message(
        world.guild, world.general, eve, "", files=[("again.jpg", reencoded(photo, quality=60))]
    )
    await until(lambda: world.rows(Sighting, Sighting.message_id == again["id"]))
    assert not await world.rows(Ticket, Ticket.message_id == again["id"])
    assert not fake.find_calls("DELETE", rf"/channels/\d+/messages/{again['id']}")


async def test_confirming_a_report_sweeps_an_earlier_copy(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    eve = world.fake.add_member(world.guild, "eve")
    fake = world.fake
    photo = photo_png(41)
    earlier = await fake.post_message(world.guild, world.general, eve, "", files=[("a.png", photo)])
    await until(lambda: world.rows(Sighting, Sighting.message_id == earlier["id"]))
    later = await fake.post_message(
        world.guild, world.general, eve, "", files=[("b.jpg", reencoded(photo))]
    )
    await report(world, world.member, later, "intimate_me")
    [ticket] = await world.rows(Ticket, Ticket.kind == "report")
    card = await card_in(world, world.safety)
    assert f"veille:confirm:{ticket.id}" in custom_ids(card.body)

    confirmed = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:confirm:{ticket.id}"
    )

    assert is_ephemeral(confirmed)
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{earlier['id']}")
    assert earlier["id"] not in fake.messages
    [swept] = await world.rows(Ticket, Ticket.id == ticket.id)
    assert swept.sweep, "the ticket lists what the sweep found and did"


async def test_an_appeal_goes_to_another_moderator_and_the_author_hears_the_outcome(
    world: DiscordWorld,
) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    other_mod = fake.add_member(world.guild, "max", [world.mod_role["id"]])
    await add_hashes(world, world.admin, shape_png(51))
    posted = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(51))]
    )
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    card = await card_in(world, world.safety)
    # The automated removal's notice: a DM with an Appeal button.
    notice = await bot_post(world, t("victims.notice.by_detectors", "en"), dm=world.member)
    [button] = [c for c in components(notice) if c["custom_id"] == f"veille:appeal:{ticket.id}"]
    assert button["label"] == t("core.button.appeal", "en")
    # A moderator confirms: the decision the author will contest is theirs.
    await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:confirm:{ticket.id}"
    )

    opened = await answer_of(
        fake, await fake.click_dm(world.member, notice, f"veille:appeal:{ticket.id}")
    )
    assert opened["type"] == 9
    modal = opened["data"]
    assert modal["title"] == t("victims.form.appeal_title", "en", ticket=ticket.id)
    submitted = await fake.submit_modal(
        None, {}, world.member, modal["custom_id"], {"note": "it is my own drawing"}, modal=modal
    )
    received = await answer_of(fake, submitted)
    assert is_ephemeral(received)
    [appealed] = await world.rows(Ticket, Ticket.id == ticket.id)
    assert appealed.status == "appealed"
    [appeal] = await world.rows(Appeal, Appeal.ticket_id == ticket.id)
    assert appeal.statement == "it is my own drawing"
    assert appeal.decided_by == world.moderator["user"]["id"]
    told = t("victims.appeal.alert", "en", id=ticket.id, decided=f"<@{appeal.decided_by}>")
    await bot_post(world, told, channel=world.safety)
    shown = await fake.wait_for(
        lambda: [
            c
            for c in fake.find_calls(
                "PATCH", f"/channels/{world.safety['id']}/messages/{card.response['id']}"
            )
            if f"veille:reverse:{ticket.id}" in custom_ids(c.body or {})
        ]
    )
    assert t("victims.card.appeal", "en") in str(shown[-1].body)  # the card shows the appeal

    own = await press(
        world, world.moderator, world.safety, card.response["id"], f"veille:reverse:{ticket.id}"
    )
    assert is_ephemeral(own)
    assert text_of(own) == t("victims.appeal.own_decision", "en", id=ticket.id)
    [still] = await world.rows(Ticket, Ticket.id == ticket.id)
    assert still.status == "appealed"
    reversed_ = await press(
        world, other_mod, world.safety, card.response["id"], f"veille:reverse:{ticket.id}"
    )
    assert is_ephemeral(reversed_)
    [decided] = await world.rows(Appeal, Appeal.ticket_id == ticket.id)
    assert decided.status == "reversed" and decided.outcome_by == other_mod["user"]["id"]
    await bot_post(world, t("victims.appeal.reversed", "en", id=ticket.id), dm=world.member)


async def test_handoff_summary_for_admins_only(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    eve = world.fake.add_member(world.guild, "eve")
    fake = world.fake
    posted = await fake.post_message(
        world.guild, world.general, eve, "", files=[("p.png", shape_png(61))]
    )
    await report(world, world.member, posted, "intimate_me", contact="mel@example.org")
    [ticket] = await world.rows(Ticket, Ticket.kind == "report")
    handoff = [
        {
            "type": 1,
            "name": "handoff",
            "options": [
                {"type": 4, "name": "ticket_id", "value": ticket.id},
                {"type": 3, "name": "service", "value": "pharos"},
            ],
        }
    ]
    services = {
        o["name"]: o
        for o in next(c for c in fake.commands["global"] if c["name"] == "ticket")["options"]
    }["handoff"]
    assert [c["value"] for c in services["options"][1]["choices"]] == list(SERVICES)

    summary = await answer_of(
        fake, await fake.slash(world.guild, world.safety, world.admin, "ticket", handoff)
    )

    assert summary["type"] == 5 and is_ephemeral(summary)
    name = t("handoff.service.pharos", "en")
    assert text_of(summary).startswith(t("handoff.title", "en", service=name, id=ticket.id))
    token = list(fake.interactions.values())[-1]["token"]  # the summary's follow-ups
    pieces = fake.find_calls("POST", rf"/webhooks/\d+/{token}")
    assert pieces and all(len(c.body["content"]) <= 2000 and c.body["flags"] & 64 for c in pieces)
    whole = "".join(c.body["content"] for c in pieces)
    assert "mel@example.org" not in whole and world.member["user"]["id"] not in whole
    refused = await answer_of(
        fake, await fake.slash(world.guild, world.general, world.member, "ticket", handoff)
    )
    assert is_ephemeral(refused) and name not in text_of(refused)


def test_a_long_summary_is_cut_at_line_ends_into_messages() -> None:
    text = "\n".join(f"line {n}: " + "x" * (n % 90) for n in range(200)) + "\n" + "y" * 4500
    pieces = _pieces(text, 1900)
    assert "".join(pieces) == text and all(len(piece) <= 1900 for piece in pieces)
    assert all(piece.endswith("\n") for piece in pieces[:-3])  # whole lines, then the long one in 3
