"""Issue 6's Done-when, end to end in both modes: Slack payloads through Socket Mode envelopes
or signed HTTP requests → Bolt → the real Veille core and database → the fake Slack Web API.

"Flagged" images are tiny-CLIP red circles (tests/tiny_clip.py); a later re-post is caught by
the hash bank that a moderator's Confirm filled.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.types import Platform
from bot.settings import Settings
from tests.fakes.slack_server import TEAM_ID, FakeSlack
from tests.platforms.slack.world import SlackWorld, eventually, open_world
from tests.tiny_clip import flagged_image, png_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")

MODES = ["socket", "http"]


@pytest.fixture(params=MODES)
async def world(
    request: pytest.FixtureRequest,
    settings: Settings,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    tiny_clip: Any,
) -> AsyncIterator[SlackWorld]:
    async with open_world(settings, engine, fake_slack, tiny_clip, mode=request.param) as w:
        await w.setup()
        yield w


@pytest.fixture(params=MODES)
async def world_without_admin(
    request: pytest.FixtureRequest,
    settings: Settings,
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    tiny_clip: Any,
) -> AsyncIterator[SlackWorld]:
    async with open_world(
        settings, engine, fake_slack, tiny_clip, mode=request.param, admin=False
    ) as w:
        await w.setup()
        yield w


def _buttons(card: dict[str, Any]) -> list[str]:
    blocks = card["blocks"] if isinstance(card["blocks"], list) else json.loads(card["blocks"])
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def _flag(world: SlackWorld, seed: int = 1, user: str = "UMEMBER") -> tuple[str, int]:
    """A member posts a flagged image in #general; returns the message ts and the ticket id."""
    file = world.slack.add_file(f"photo{seed}.png", png_bytes(flagged_image(seed)))
    ts = await world.message("CGEN", user, text="look", files=[file])
    tickets = await eventually(world.tickets)
    ticket = [t for t in tickets if t.message_id == ts][0]
    assert ticket.id is not None
    return ts, ticket.id


async def test_flagged_file_is_deleted_with_the_admin_token_and_ticketed(world: SlackWorld) -> None:
    ts, ticket_id = await _flag(world)
    slack = world.slack
    deleted = await eventually(lambda: slack.called("chat.delete"))
    assert (deleted[0].args["channel"], deleted[0].args["ts"]) == ("CGEN", ts)
    assert deleted[0].token == slack.admin_token
    assert ("CGEN", ts) not in slack.messages
    assert slack.downloads and all(authorised for _, authorised in slack.downloads)

    card = (await eventually(world.card_posts))[0]
    assert f"veille:confirm:{ticket_id}" in _buttons(card)
    ticket = (await world.tickets())[0]
    assert ticket.severity in ("QUARANTINE", "CRITICAL") and ticket.channel_id == "CGEN"
    assert ticket.author_id == "UMEMBER"
    # The blurred preview goes to the quarantine channel through the files upload v2 path.
    previews = await eventually(
        lambda: [
            c
            for c in slack.called("files.completeUploadExternal")
            if c.args.get("channel_id") == "CQUAR"
        ]
    )
    assert previews


async def test_without_admin_token_a_tombstone_an_alert_and_a_request_to_the_author(
    world_without_admin: SlackWorld,
) -> None:
    world = world_without_admin
    slack = world.slack
    ts, _ = await _flag(world)
    tombstone = await eventually(
        lambda: [
            c
            for c in slack.called("chat.postMessage")
            if c.args.get("channel") == "CGEN" and c.args.get("thread_ts") == ts
        ]
    )
    assert tombstone[0].args["text"]
    asked = await eventually(
        lambda: [
            c
            for c in slack.calls
            if c.method in ("chat.postEphemeral", "conversations.open")
            and "UMEMBER" in (c.args.get("user"), c.args.get("users"))
        ]
    )
    assert asked
    assert await eventually(world.card_posts)
    alert = await eventually(
        lambda: [
            c
            for c in slack.called("chat.postMessage")
            if c.args.get("channel") == "CSAFE" and not c.args.get("blocks")
        ]
    )
    assert "CGEN" in alert[0].args["text"]
    assert slack.called("chat.delete") == []
    assert ("CGEN", ts) in slack.messages  # still there: only the author or an admin can delete


async def test_moderator_confirms_then_the_bank_catches_the_repost(world: SlackWorld) -> None:
    _, ticket_id = await _flag(world, seed=3)
    card_ts = "0"
    await eventually(world.card_posts)
    for (channel, ts), message in world.slack.messages.items():
        if channel == "CSAFE" and f"veille:confirm:{ticket_id}" in json.dumps(
            message.get("blocks")
        ):
            card_ts = ts
    await world.press("UMOD", f"veille:confirm:{ticket_id}", "CSAFE", card_ts)

    async def confirmed() -> bool:
        return any(t.id == ticket_id and t.resolution == "confirmed" for t in await world.tickets())

    assert await eventually(confirmed)
    # The card in the safety channel is kept up to date with the ticket.
    assert await eventually(
        lambda: [
            c
            for c in world.slack.called("chat.update")
            if (c.args["channel"], c.args["ts"]) == ("CSAFE", card_ts)
        ]
    )
    # The same bytes posted again, by someone else, elsewhere: the bank knows them now.
    again = world.slack.add_file("again.png", png_bytes(flagged_image(3)))
    ts2 = await world.message("CGEN", "UFR", files=[again])
    tickets = await eventually(lambda: _second(world, ts2))
    assert "known_content" in tickets.categories


async def _second(world: SlackWorld, ts: str) -> Any:
    found = [t for t in await world.tickets() if t.message_id == ts]
    return found[0] if found else None


async def test_a_members_button_press_is_refused(world: SlackWorld) -> None:
    _, ticket_id = await _flag(world, seed=5)
    await world.press("UMEMBER", f"veille:confirm:{ticket_id}", "CSAFE", "1.0")
    refusal = await eventually(
        lambda: [
            c
            for c in world.slack.called("chat.postEphemeral")
            if c.args.get("user") == "UMEMBER" and c.args.get("channel") == "CSAFE"
        ]
    )
    assert "moderator" in refusal[0].args["text"].lower()
    ticket = [t for t in await world.tickets() if t.id == ticket_id][0]
    assert ticket.status == "open" and ticket.resolution is None


async def test_setup_modal_checks_membership_then_stores_the_settings(world: SlackWorld) -> None:
    await world.command("UADMIN", "setup")
    opened = await eventually(lambda: world.slack.called("views.open"))
    view = opened[0].args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert view["callback_id"] == "veille:setup"
    values: dict[str, Any] = {
        "safety": {"value": {"type": "conversations_select", "selected_conversation": "COUT"}},
        "quarantine": {"value": {"type": "conversations_select", "selected_conversation": "CQUAR"}},
        "groups": {
            "value": {"type": "multi_static_select", "selected_options": [{"value": "SMODS"}]}
        },
        "users": {"value": {"type": "multi_users_select", "selected_users": ["UFR"]}},
        "sensitivity": {"value": {"type": "static_select", "selected_option": {"value": "strict"}}},
        "digest": {"value": {"type": "static_select", "selected_option": {"value": "weekly:mon"}}},
        "digest_time": {"value": {"type": "timepicker", "selected_time": "08:30"}},
        "timezone": {"value": {"type": "plain_text_input", "value": "Europe/Paris"}},
        "language": {"value": {"type": "static_select", "selected_option": {"value": "fr"}}},
    }
    refused = await world.submit("UADMIN", view, values)
    assert refused["response_action"] == "errors" and "safety" in refused["errors"]
    assert "COUT" in refused["errors"]["safety"]

    values["safety"]["value"]["selected_conversation"] = "CSAFE"
    values["timezone"]["value"]["value"] = "Europe/Atlantis"
    refused = await world.submit("UADMIN", view, values)
    assert list(refused["errors"]) == ["timezone"]

    values["timezone"]["value"]["value"] = "Europe/Paris"
    accepted = await world.submit("UADMIN", view, values)
    assert accepted.get("response_action") is None
    stored = await world.veille.workspace(Platform.SLACK, TEAM_ID)
    assert (stored.safety_channel_id, stored.quarantine_channel_id) == ("CSAFE", "CQUAR")
    assert stored.moderator_role_ids == ("SMODS",) and stored.moderator_user_ids == ("UFR",)
    assert (stored.sensitivity, stored.digest_schedule, stored.timezone, stored.locale) == (
        "strict",
        "weekly:mon@08:30",
        "Europe/Paris",
        "fr",
    )


async def test_a_member_cannot_save_the_setup(world: SlackWorld) -> None:
    values = {
        "safety": {"value": {"type": "conversations_select", "selected_conversation": "CGEN"}},
        "language": {"value": {"type": "static_select", "selected_option": {"value": "fr"}}},
    }
    refused = await world.submit(
        "UMEMBER", {"type": "modal", "callback_id": "veille:setup"}, values
    )
    assert refused["response_action"] == "errors"
    assert (await world.veille.workspace(Platform.SLACK, TEAM_ID)).safety_channel_id == "CSAFE"


async def test_help_request_gets_a_private_answer_and_a_priority_ticket(world: SlackWorld) -> None:
    text = "someone made a deepfake of me with grok and it's everywhere, please help"
    ts = await world.message("DUMEMBER", "UMEMBER", text=text, channel_type="im")
    ticket = await eventually(lambda: _second(world, ts))
    assert ticket.priority and ticket.kind == "help_request"
    answer = await eventually(lambda: [c for c in world.slack.calls if _private_to(c, "UMEMBER")])
    assert "stopncii.org" in json.dumps(answer[0].args)
    assert not [
        c
        for c in world.slack.called("chat.postMessage")  # nothing public about it
        if c.args.get("channel") == "CGEN"
    ]


def _private_to(call: Any, user: str) -> bool:
    """An ephemeral message to `user`, or a post in the DM the fake opens with them."""
    if call.method == "chat.postEphemeral":
        return call.args.get("user") == user
    return call.method == "chat.postMessage" and call.args.get("channel") == f"D{user}"


async def test_slash_help_answers_privately(world: SlackWorld) -> None:
    await world.command("UMEMBER", "help")
    answer = await eventually(lambda: world.slack.called("chat.postEphemeral"))
    assert answer[0].args["user"] == "UMEMBER" and "/veille" in json.dumps(answer[0].args)


async def test_an_image_ai_apps_answer_is_scanned_other_bots_are_not(world: SlackWorld) -> None:
    """The core's AI-app rule on Slack: Grok (a bot message with its bot profile) answering an
    undress request in a thread with an image is scanned; a deploy bot's image is not."""
    request_ts = await world.message("CGEN", "UMEMBER", text="@grok remove her clothes")
    posted: dict[str, str] = {}
    for seed, name, bot_id in ((21, "Grok", "BGROK"), (22, "Deploy notifier", "BDEPLOY")):
        file = world.slack.add_file(f"answer{seed}.png", png_bytes(flagged_image(seed)))
        ts = world.slack.next_ts()
        file.channel, file.ts, file.user = "CGEN", ts, bot_id
        event = {
            "type": "message",
            "subtype": "bot_message",
            "channel": "CGEN",
            "ts": ts,
            "bot_id": bot_id,
            "username": name,
            "bot_profile": {"name": name},
            "text": "",
            "thread_ts": request_ts if name == "Grok" else None,
            "files": [world.slack.file_json(file)],
            "channel_type": "channel",
        }
        event = {k: v for k, v in event.items() if v is not None}
        world.slack.messages[("CGEN", ts)] = {**event, "blocks": None}
        await world.send(
            "events_api",
            {
                "type": "event_callback",
                "team_id": TEAM_ID,
                "api_app_id": "AVEILLE",
                "event_id": f"Ev{ts}",
                "event": event,
            },
        )
        posted[name] = ts
    tickets = await eventually(lambda: _tickets_for(world, posted["Grok"]))
    assert tickets[0].severity in ("QUARANTINE", "CRITICAL")
    await world.command("UMOD", "status")  # handled after both bot messages
    assert await _tickets_for(world, posted["Deploy notifier"]) == []


async def _tickets_for(world: SlackWorld, ts: str) -> list[Any]:
    return [t for t in await world.tickets() if t.message_id == ts]
