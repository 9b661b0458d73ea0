"""Issue 19's Slack half, end to end: the real Bolt app over Socket Mode (and HTTP for the
report), the real core on a migrated SQLite file, and the fake Slack.

A member reports a message with the `veille_report` shortcut; `/veille protect` (or a photo sent
to Veille in a DM) banks only hashes; confirming a ticket sweeps an earlier copy; an automated
removal's notice carries an Appeal button that reaches a different moderator.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.clock import as_utc
from bot.core.i18n import t
from bot.core.reports import REASONS
from bot.settings import Settings
from bot.store.models import Ticket
from tests.fakes.slack_server import TEAM_ID, FakeSlack
from tests.platforms.slack.world import SlackWorld, eventually, open_world
from tests.tiny_clip import flagged_image, png_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _world(
    settings: Settings, engine: AsyncEngine, slack: FakeSlack, clip: Any, mode: str
) -> AsyncIterator[SlackWorld]:
    slack.add_user("UAUTHOR", name="Ari")
    slack.add_user("UMOD2", name="Noor")
    slack.usergroups["SMODS"] = ["UMOD", "UMOD2"]
    slack.channels["CGEN"] |= {"UAUTHOR", "UFR"}
    async with open_world(settings, engine, slack, clip, mode=mode) as w:
        await w.setup()
        yield w


@pytest.fixture
async def world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> AsyncIterator[SlackWorld]:
    async for w in _world(settings, engine, fake_slack, tiny_clip, "socket"):
        yield w


@pytest.fixture(params=["socket", "http"])
async def any_world(
    request: pytest.FixtureRequest,
    settings: Settings,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    tiny_clip: Any,
) -> AsyncIterator[SlackWorld]:
    async for w in _world(settings, engine, fake_slack, tiny_clip, request.param):
        yield w


# ------------------------------------------------------------------------------- helpers
def photo(seed: int, width: int = 320, height: int = 240) -> Image.Image:
    """A benign, photo-like image (smooth colour waves): rich enough for PDQ to trust."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    pixels = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(6):
            fx, fy, phase = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 6.28)
            pixels[..., channel] += np.sin(2 * np.pi * (fx * x + fy * y) + phase)
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()) * 255
    return Image.fromarray(pixels.astype("uint8"))


def jpeg(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def reencoded(data: bytes) -> bytes:
    """The same photo resized and saved again, as a re-share through another app does."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return jpeg(image.resize((image.width * 3 // 4, image.height * 3 // 4)), quality=70)


def dms_to(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return [
        c.args
        for c in world.slack.called("chat.postMessage")
        if c.args.get("channel") == f"D{user}"
    ]


def ephemerals_to(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return [c.args for c in world.slack.called("chat.postEphemeral") if c.args.get("user") == user]


def posts_in(world: SlackWorld, channel: str, needle: str) -> list[dict[str, Any]]:
    return [
        c.args
        for c in world.slack.called("chat.postMessage")
        if c.args.get("channel") == channel and needle in json.dumps(c.args)
    ]


async def ticket_where(world: SlackWorld, **match: Any) -> Ticket:
    async def probe() -> Ticket | None:
        found = [
            tk for tk in await world.tickets() if all(getattr(tk, k) == v for k, v in match.items())
        ]
        return found[0] if found else None

    return await eventually(probe)


async def post_photo(
    world: SlackWorld, user: str, data: bytes, name: str = "photo.jpg", channel: str = "CGEN"
) -> str:
    file = world.slack.add_file(name, data, mimetype="image/jpeg")
    return await world.message(channel, user, text="", files=[file])


async def report(
    world: SlackWorld, reporter: str, ts: str, *, reason: str = "intimate_me", channel: str = "CGEN"
) -> dict[str, Any]:
    """The reporter picks "Report to Veille" on the message and submits the form; returns the
    opened view."""
    opened = len(world.slack.called("views.open"))
    await world.send("interactive", world.slack.message_shortcut(reporter, channel, ts))
    await eventually(lambda: len(world.slack.called("views.open")) > opened)
    view = world.slack.opened_views()[-1]
    values = {
        "reason": {"reason": {"type": "static_select", "selected_option": {"value": reason}}},
        "contact": {"contact": {"type": "plain_text_input", "value": "mel@example.org"}},
        "details": {"details": {"type": "plain_text_input", "value": None}},
        "good_faith": {
            "good_faith": {"type": "checkboxes", "selected_options": [{"value": "good_faith"}]}
        },
    }
    assert (await world.submit(reporter, view, values)).get("response_action") is None
    return view


async def card_ts(world: SlackWorld, ticket_id: int) -> str:
    """The ts of the ticket's card in the safety channel."""

    def probe() -> str | None:
        for (channel, ts), message in world.slack.messages.items():
            if channel == "CSAFE" and f':{ticket_id}"' in json.dumps(message.get("blocks")):
                return ts
        return None

    return await eventually(probe)


# ------------------------------------------------------------------------------- reports
async def test_a_report_opens_a_priority_ticket_with_its_due_time_and_a_36_hour_alert(
    any_world: SlackWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = any_world
    ts = await post_photo(world, "UAUTHOR", jpeg(photo(1)))
    await world.send("interactive", world.slack.message_shortcut("UMEMBER", "CGEN", ts))
    view = (await eventually(world.slack.opened_views))[0]
    assert view["callback_id"] == "veille_report_submit"
    assert view["private_metadata"].startswith(f"CGEN|{ts}")
    select = next(b["element"] for b in view["blocks"] if b["block_id"] == "reason")
    assert [o["value"] for o in select["options"]] == list(REASONS)
    assert select["options"][0]["text"]["text"] == t("victims.reason.intimate_me", "en")
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {
        "reason": "static_select",
        "contact": "plain_text_input",
        "details": "plain_text_input",
        "good_faith": "checkboxes",
    }

    refused = await world.submit("UMEMBER", view, {})  # no reason, no good faith
    assert refused["response_action"] == "errors"
    assert set(refused["errors"]) == {"reason", "good_faith"}
    assert await world.tickets() == [] or all(tk.kind != "report" for tk in await world.tickets())

    await report(world, "UMEMBER", ts)
    ticket = await ticket_where(world, kind="report", message_id=ts)
    assert [c.args["latest"] for c in world.slack.called("conversations.history")] == [ts]
    assert ticket.priority and ticket.author_id == "UAUTHOR" and ticket.channel_id == "CGEN"
    assert ticket.due_at is not None
    assert as_utc(ticket.due_at) - as_utc(ticket.created_at) == timedelta(hours=48)
    assert ticket.id is not None
    card = (await eventually(lambda: posts_in(world, "CSAFE", f"veille:claim:{ticket.id}")))[0]
    assert t("victims.card.due", "en") in json.dumps(card["blocks"])
    ack = await eventually(
        lambda: [d for d in dms_to(world, "UMEMBER") if f"#{ticket.id}" in d["text"]]
    )
    assert "48" in ack[0]["text"]
    assert not dms_to(world, "UAUTHOR")  # the reported author is not told who reported

    # The controlled clock: 36 hours and a minute later for the whole core (the outbox too,
    # which delivers what is due by its own clock).
    late = as_utc(ticket.created_at) + timedelta(hours=36, minutes=1)
    monkeypatch.setattr(world.veille.clock, "now", lambda: late)
    assert await world.veille.check_report_deadlines(now=late) == 1
    alert = await eventually(
        lambda: [
            p
            for p in posts_in(world, "CSAFE", f"#{ticket.id}")
            if not p.get("blocks") and "36" in p["text"]
        ]
    )
    later = late + timedelta(minutes=5)
    monkeypatch.setattr(world.veille.clock, "now", lambda: later)
    assert await world.veille.check_report_deadlines(now=later) == 0
    assert (
        len(
            [
                p
                for p in posts_in(world, "CSAFE", f"#{ticket.id}")
                if not p.get("blocks") and "36" in p["text"]
            ]
        )
        == len(alert)
        == 1
    )

    told = len(dms_to(world, "UMEMBER"))
    await world.press(
        "UMOD", f"veille:false_positive:{ticket.id}", "CSAFE", await card_ts(world, ticket.id)
    )
    done = await eventually(lambda: dms_to(world, "UMEMBER")[told:])
    assert f"#{ticket.id}" in done[0]["text"]


async def test_a_french_workspace_gets_the_form_and_the_answer_in_french(world: SlackWorld) -> None:
    """Also a reply in a thread: Slack only has it in the thread (conversations.replies)."""
    await world.setup(locale="fr")
    root = await world.message("CGEN", "UAUTHOR", text="regardez")
    file = world.slack.add_file("photo.jpg", jpeg(photo(2)), mimetype="image/jpeg")
    ts = await world.message("CGEN", "UAUTHOR", files=[file], thread_ts=root)
    view = await report(world, "UFR", ts, reason="someone_i_know")
    assert view["title"]["text"] == t("victims.form.title", "fr")
    labels = json.dumps(view, ensure_ascii=False)
    for reason in REASONS:
        assert t(f"victims.reason.{reason}", "fr") in labels
    assert t("victims.form.good_faith_option", "fr") in labels
    ticket = await ticket_where(world, kind="report", message_id=ts)
    assert ticket.thread_id == root and ticket.sha256  # the reply itself, its image scanned
    assert [
        (c.args["ts"], c.args["latest"])
        for c in world.slack.called("conversations.replies")
        if c.args.get("latest")
    ] == [(root, ts)]
    ack = await eventually(lambda: dms_to(world, "UFR"))
    assert ack[0]["text"].startswith(
        t("victims.report.received", "fr", id=ticket.id, hours=48)[:20]
    )


# ------------------------------------------------------------------------------- /protect
def _traces(data: bytes) -> list[bytes]:
    """A distinctive chunk of the image as raw bytes, hex and base64: any of them found means
    the image was written somewhere."""
    chunk = data[len(data) // 2 : len(data) // 2 + 48]
    return [chunk, chunk.hex().encode(), base64.b64encode(chunk)[:40]]


def _everything_written(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


async def test_protect_banks_only_hashes_and_a_reencoded_copy_is_quarantined(
    world: SlackWorld,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    original = jpeg(photo(3))
    await world.command("UMEMBER", "protect")
    view = (await eventually(world.slack.opened_views))[0]
    assert view["callback_id"] == "veille_protect_submit"
    element = next(b["element"] for b in view["blocks"] if b.get("block_id") == "file")
    assert element["type"] == "file_input" and element["max_files"] == 1
    assert set(element["filetypes"]) == {"jpg", "jpeg", "png", "gif", "webp"}
    refused = await world.submit(
        "UMEMBER", view, {"file": {"file": {"type": "file_input", "files": []}}}
    )
    assert list(refused["errors"]) == ["file"]

    upload = world.slack.upload("UMEMBER", "me.jpg", original)
    await world.submit(
        "UMEMBER",
        view,
        {
            "file": {"file": world.slack.file_input_value(upload)},
            "label": {"label": {"type": "plain_text_input", "value": "beach"}},
        },
    )
    done = await eventually(lambda: ephemerals_to(world, "UMEMBER"))
    assert "#" in done[0]["text"] and done[0]["channel"] == "CGEN"
    deleted = await eventually(
        lambda: [c for c in world.slack.called("files.delete") if c.args.get("file") == upload.id]
    )
    assert deleted[0].token == world.slack.admin_token and upload.id not in world.slack.files

    # No copy anywhere: the database file (and its journal), the data dir, the logs.
    traces = _traces(original)
    written = _everything_written(tmp_path)
    if world.veille.settings.database_url.startswith("sqlite"):  # PostgreSQL: no file here
        assert any(p.name.startswith("veille.db") for p, _ in written)
    for path, content in written:
        assert not any(trace in content for trace in traces), f"image bytes in {path}"
    logged = "\n".join(r.getMessage() for r in caplog.records).encode("utf-8", "replace")
    assert not any(trace in logged for trace in traces)

    await world.command("UMEMBER", "protect list")
    listing = await eventually(lambda: ephemerals_to(world, "UMEMBER")[1:])
    assert "beach" in listing[0]["text"]

    ts = await post_photo(world, "UAUTHOR", reencoded(original), name="copy.jpg")
    ticket = await ticket_where(world, message_id=ts)
    assert "known_content" in ticket.categories
    assert await eventually(
        lambda: [c for c in world.slack.called("chat.delete") if c.args.get("ts") == ts]
    )

    protection_id = listing[0]["text"].split("#", 1)[1].split()[0].strip(":,.)")
    await world.command("UMEMBER", f"protect withdraw {protection_id}")
    withdrawn = await eventually(lambda: ephemerals_to(world, "UMEMBER")[2:])
    assert f"#{protection_id}" in withdrawn[0]["text"]


async def test_a_photo_sent_to_veille_in_a_dm_is_protected_not_scanned(world: SlackWorld) -> None:
    data = png_bytes(flagged_image(41))  # would be quarantined if it were scanned as a post
    file = world.slack.add_file("me.png", data)
    await world.message(
        "DUMEMBER", "UMEMBER", text="please protect this", files=[file], channel_type="im"
    )
    answer = await eventually(lambda: dms_to(world, "UMEMBER"))
    assert "#" in answer[0]["text"]
    await eventually(
        lambda: [c for c in world.slack.called("files.delete") if c.args.get("file") == file.id]
    )
    # Slack also announces the file with file_shared: it must not be scanned either.
    await world.send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": "EvDmFile",
            "event": {
                "type": "file_shared",
                "file_id": file.id,
                "user_id": "UMEMBER",
                "channel_id": "DUMEMBER",
                "event_ts": file.ts,
            },
        },
    )
    await world.command("UMEMBER", "protect list")
    listing = await eventually(lambda: ephemerals_to(world, "UMEMBER"))
    assert "please protect this" in listing[0]["text"]
    assert await world.tickets() == [] and world.slack.called("chat.delete") == []


# ------------------------------------------------------------------------------- sweeps
async def test_confirming_a_report_sweeps_an_earlier_copy_still_posted(world: SlackWorld) -> None:
    data = jpeg(photo(4))
    earlier = await post_photo(world, "UAUTHOR", data, name="first.jpg")
    later = await post_photo(world, "UFR", reencoded(data), name="again.jpg")
    await report(world, "UMEMBER", later, reason="someone_i_know")
    ticket = await ticket_where(world, kind="report", message_id=later)
    assert ticket.id is not None
    await world.press(
        "UMOD", f"veille:confirm:{ticket.id}", "CSAFE", await card_ts(world, ticket.id)
    )
    swept = await eventually(
        lambda: [
            c
            for c in world.slack.called("chat.delete")
            if (c.args["channel"], c.args["ts"]) == ("CGEN", earlier)
        ]
    )
    assert swept[0].token == world.slack.admin_token
    assert ("CGEN", earlier) not in world.slack.messages


# ------------------------------------------------------------------------------- appeals
async def test_an_appeal_reaches_another_moderator_and_the_outcome_reaches_the_author(
    world: SlackWorld,
) -> None:
    file = world.slack.add_file("flagged.png", png_bytes(flagged_image(42)))
    ts = await world.message("CGEN", "UMEMBER", text="look", files=[file])
    ticket = await ticket_where(world, message_id=ts)
    assert ticket.id is not None
    appeal_id = f"veille:appeal:{ticket.id}"
    notice = await eventually(
        lambda: [d for d in dms_to(world, "UMEMBER") if appeal_id in json.dumps(d.get("blocks"))]
    )
    blocks = notice[0]["blocks"]
    blocks = blocks if isinstance(blocks, list) else json.loads(blocks)
    assert [b["type"] for b in blocks] == ["section", "actions"]
    assert blocks[1]["elements"][0]["action_id"] == appeal_id

    await world.press(
        "UMOD", f"veille:confirm:{ticket.id}", "CSAFE", await card_ts(world, ticket.id)
    )
    await ticket_where(world, id=ticket.id, resolution="confirmed")

    await world.press("UMEMBER", appeal_id, "DUMEMBER", notice[0].get("ts", "1.0"))
    view = (
        await eventually(
            lambda: [
                v for v in world.slack.opened_views() if v["callback_id"] == "veille:modal:appeal"
            ]
        )
    )[0]
    assert view["title"]["text"] == t("victims.form.appeal_title", "en", ticket=ticket.id)[:24]
    assert t("victims.form.appeal_label", "en") in json.dumps(view)
    await world.submit(
        "UMEMBER",
        view,
        {"note": {"note": {"type": "plain_text_input", "value": "it is a painting"}}},
    )
    await ticket_where(world, id=ticket.id, status="appealed")
    await eventually(
        lambda: [p for p in posts_in(world, "CSAFE", f"#{ticket.id}") if "<@UMOD>" in p["text"]]
    )
    assert await eventually(
        lambda: [
            d
            for d in dms_to(world, "UMEMBER")
            if d["text"] == t("victims.appeal.received", "en", id=ticket.id)
        ]
    )

    await world.press("UMOD", f"veille:uphold:{ticket.id}", "CSAFE", "1.0")
    refusal = await eventually(
        lambda: [e for e in ephemerals_to(world, "UMOD") if f"#{ticket.id}" in e["text"]]
    )
    assert refusal
    assert (await ticket_where(world, id=ticket.id)).status == "appealed"

    told = len(dms_to(world, "UMEMBER"))
    await world.press("UMOD2", f"veille:reverse:{ticket.id}", "CSAFE", "1.0")
    await ticket_where(world, id=ticket.id, resolution="reversed")
    outcome = await eventually(lambda: dms_to(world, "UMEMBER")[told:])
    assert outcome[0]["text"].startswith(t("victims.appeal.reversed", "en", id=ticket.id)[:30])


async def test_handoff_is_answered_privately(world: SlackWorld) -> None:
    file = world.slack.add_file("flagged.png", png_bytes(flagged_image(43)))
    ts = await world.message("CGEN", "UMEMBER", files=[file])
    ticket = await ticket_where(world, message_id=ts)
    await world.command("UADMIN", f"handoff {ticket.id} pharos")
    summary = await eventually(lambda: ephemerals_to(world, "UADMIN"))
    assert f"{ticket.id}" in summary[0]["text"]
    await world.command("UADMIN", "handoff")
    usage = await eventually(lambda: ephemerals_to(world, "UADMIN")[1:])
    assert "/veille handoff" in usage[0]["text"]
