"""`/veille` subcommands, the App Home tab and `file_shared`, through Socket Mode with the real core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from tests.fakes.slack_server import TEAM_ID, FakeSlack
from tests.platforms.slack.world import SlackWorld, eventually, open_world
from tests.tiny_clip import flagged_image, png_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> AsyncIterator[SlackWorld]:
    async with open_world(settings, engine, fake_slack, tiny_clip, mode="socket") as w:
        await w.setup()
        yield w


def _ephemerals_to(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return [c.args for c in world.slack.called("chat.postEphemeral") if c.args.get("user") == user]


async def _file_shared(world: SlackWorld, seed: int) -> str:
    """A file shared in #general, announced only by a file_shared event; returns its message ts."""
    file = world.slack.add_file("shared.png", png_bytes(flagged_image(seed)))
    file.channel, file.ts, file.user = "CGEN", world.slack.next_ts(), "UMEMBER"
    world.slack.messages[("CGEN", file.ts)] = {"ts": file.ts, "user": "UMEMBER", "files": []}
    await world.send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": f"Ev{file.id}",
            "event": {
                "type": "file_shared",
                "file_id": file.id,
                "user_id": "UMEMBER",
                "channel_id": "CGEN",
                "event_ts": file.ts,
            },
        },
    )
    return file.ts


async def test_file_shared_is_scanned_and_its_message_event_is_not_scanned_twice(
    world: SlackWorld,
) -> None:
    ts = await _file_shared(world, seed=7)
    ticket = (await eventually(world.tickets))[0]
    assert ticket.message_id == ts
    # Slack also sends the message event for the same file: it must not make a second scan.
    file_json = world.slack.file_json(list(world.slack.files.values())[0])
    await world.send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": "EvDup",
            "event": {
                "type": "message",
                "subtype": "file_share",
                "channel": "CGEN",
                "user": "UMEMBER",
                "ts": ts,
                "text": "",
                "files": [file_json],
                "channel_type": "channel",
            },
        },
    )
    await world.command("UMOD", "status")  # a later request, handled after the duplicate
    await eventually(lambda: _ephemerals_to(world, "UMOD"))
    assert len(await world.tickets()) == 1
    assert len(world.slack.downloads) == 1


async def test_tickets_are_for_moderators_only(world: SlackWorld) -> None:
    await _file_shared(world, seed=8)
    ticket = (await eventually(world.tickets))[0]
    await world.command("UMEMBER", "tickets")
    refusal = await eventually(lambda: _ephemerals_to(world, "UMEMBER"))
    assert "moderator" in refusal[0]["text"].lower()
    await world.command("UMOD", "tickets")
    listing = await eventually(lambda: _ephemerals_to(world, "UMOD"))
    assert f"#{ticket.id}" in json.dumps(listing[0])
    await world.command("UMOD", f"ticket {ticket.id}")
    shown = await eventually(lambda: _ephemerals_to(world, "UMOD")[1:])
    assert f"veille:claim:{ticket.id}" in json.dumps(shown[0]["blocks"])


async def test_replies_follow_the_workspace_language(world: SlackWorld) -> None:
    await world.setup(locale="fr")
    await world.command("UMEMBER", "frobnicate")
    usage = await eventually(lambda: _ephemerals_to(world, "UMEMBER"))
    assert "Commandes Veille" in usage[0]["text"]
    await world.command("UMEMBER", "status")
    refusal = await eventually(lambda: _ephemerals_to(world, "UMEMBER")[1:])
    assert "modérat" in refusal[0]["text"].lower()


async def test_app_home_lists_open_tickets_for_moderators(world: SlackWorld) -> None:
    await _file_shared(world, seed=9)
    ticket = (await eventually(world.tickets))[0]
    for user in ("UMOD", "UMEMBER"):
        await world.send(
            "events_api",
            {
                "type": "event_callback",
                "team_id": TEAM_ID,
                "event_id": f"EvHome{user}",
                "event": {
                    "type": "app_home_opened",
                    "user": user,
                    "channel": f"D{user}",
                    "tab": "home",
                },
            },
        )
    published = await eventually(
        lambda: (
            len(world.slack.called("views.publish")) == 2 and world.slack.called("views.publish")
        )
    )
    views = {c.args["user_id"]: json.dumps(c.args["view"]) for c in published}
    assert f"#{ticket.id}" in views["UMOD"]
    assert f"#{ticket.id}" not in views["UMEMBER"] and "moderator" in views["UMEMBER"].lower()


async def test_add_note_opens_a_modal_and_stores_the_note(world: SlackWorld) -> None:
    await _file_shared(world, seed=10)
    ticket = (await eventually(world.tickets))[0]
    await world.press("UMOD", f"veille:note:{ticket.id}", "CSAFE", "1.0")
    opened = await eventually(lambda: world.slack.called("views.open"))
    view = opened[0].args["view"]
    assert view["callback_id"] == "veille:modal:note"
    await world.submit(
        "UMOD", view, {"note": {"note": {"type": "plain_text_input", "value": "author warned"}}}
    )
    await world.command("UMOD", f"ticket {ticket.id}")
    shown = await eventually(
        lambda: [e for e in _ephemerals_to(world, "UMOD") if "author warned" in json.dumps(e)]
    )
    assert shown


async def test_reveal_sends_the_original_to_the_moderator_only(world: SlackWorld) -> None:
    await _file_shared(world, seed=11)
    ticket = (await eventually(world.tickets))[0]
    await world.press("UMOD", f"veille:reveal:{ticket.id}", "CSAFE", "1.0")
    upload = await eventually(
        lambda: [
            c
            for c in world.slack.called("files.completeUploadExternal")
            if c.args.get("channel_id") == "DUMOD"
        ]
    )
    file_id = json.loads(upload[0].args["files"])[0]["id"]
    assert world.slack.files[file_id].data == png_bytes(flagged_image(11))
    # The DM copy is deleted after the reveal window (a fraction of a second in this world).
    await eventually(
        lambda: [c for c in world.slack.called("files.delete") if c.args.get("file") == file_id]
    )
    assert file_id not in world.slack.files
    await world.press("UMEMBER", f"veille:reveal:{ticket.id}", "CSAFE", "1.0")
    await eventually(lambda: _ephemerals_to(world, "UMEMBER"))
    assert not [
        c
        for c in world.slack.called("files.completeUploadExternal")
        if c.args.get("channel_id") == "DUMEMBER"
    ]


async def test_scan_scores_a_link_without_acting(world: SlackWorld) -> None:
    file = world.slack.add_file("linked.png", png_bytes(flagged_image(12)))
    await world.command("UMOD", f"scan {world.slack.base_url}public/{file.id}")
    answer = await eventually(lambda: _ephemerals_to(world, "UMOD"))
    assert "sexual" in answer[0]["text"]
    assert await world.tickets() == [] and world.slack.called("chat.delete") == []


async def test_digest_posts_in_the_safety_channel(world: SlackWorld) -> None:
    await world.command("UMOD", "digest")
    posted = await eventually(
        lambda: [
            c for c in world.slack.called("chat.postMessage") if c.args.get("channel") == "CSAFE"
        ]
    )
    assert posted[0].args["blocks"]


async def test_a_link_in_a_message_is_fetched_by_the_core_without_the_slack_token(
    world: SlackWorld,
) -> None:
    file = world.slack.add_file("elsewhere.png", png_bytes(flagged_image(13)))
    ts = await world.message("CGEN", "UMEMBER", text=f"lol {world.slack.base_url}public/{file.id}")
    tickets = await eventually(world.tickets)
    assert tickets[0].message_id == ts and tickets[0].media_key.endswith(f"/public/{file.id}")
    assert world.slack.downloads == []  # not fetched as a Slack-hosted file


async def test_a_member_cannot_open_the_setup_modal(world: SlackWorld) -> None:
    """The modal is pre-filled with the safety channel and moderator groups: a member is refused
    before it opens, privately, and the refusal is audited."""
    opened_before = len(world.slack.called("views.open"))
    await world.command("UMEMBER", "setup")
    refusal = await eventually(lambda: _ephemerals_to(world, "UMEMBER"))
    assert len(world.slack.called("views.open")) == opened_before
    assert refusal and refusal[0]["text"]
    await world.command("UADMIN", "setup")
    await eventually(lambda: len(world.slack.called("views.open")) > opened_before)


async def test_a_web_api_error_that_is_not_json_does_not_break_the_command(
    world: SlackWorld,
) -> None:
    """users.info answering a proxy's plain-text 502 page must not crash `/veille`: the person is
    treated as a plain member and still gets an answer."""
    world.slack.html_errors["users.info"] = 502
    await world.command("UNEWCOMER", "help")
    assert await eventually(lambda: _ephemerals_to(world, "UNEWCOMER"))
