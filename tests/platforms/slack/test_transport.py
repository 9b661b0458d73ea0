"""How payloads reach the app: signed HTTP requests (bad or stale signatures get 401 and never
reach a listener) and Socket Mode envelopes (each one acknowledged with its envelope id)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.slack import runner
from bot.settings import Settings
from tests.fakes.slack_server import TEAM_ID, FakeSlack
from tests.platforms.slack.world import SlackWorld, eventually, open_world

pytestmark = pytest.mark.asyncio(loop_scope="session")

COMMAND = {
    "command": "/veille",
    "text": "help",
    "team_id": TEAM_ID,
    "user_id": "UMEMBER",
    "channel_id": "CGEN",
    "trigger_id": "trig-1",
    "api_app_id": "AVEILLE",
}


@pytest.fixture
async def http_world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> AsyncIterator[SlackWorld]:
    async with open_world(settings, engine, fake_slack, tiny_clip, mode="http") as w:
        yield w


@pytest.fixture
async def socket_world(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> AsyncIterator[SlackWorld]:
    async with open_world(settings, engine, fake_slack, tiny_clip, mode="socket") as w:
        yield w


async def test_a_signed_request_is_served(http_world: SlackWorld) -> None:
    status, _ = await http_world.post("slash_commands", COMMAND)
    assert status == 200
    assert await eventually(lambda: http_world.slack.called("chat.postEphemeral"))


@pytest.mark.parametrize("how", ["wrong secret", "stale timestamp"])
async def test_a_bad_or_stale_signature_gets_401_and_reaches_no_listener(
    http_world: SlackWorld, how: str
) -> None:
    if how == "wrong secret":
        status, _ = await http_world.post("slash_commands", COMMAND, secret="not-the-secret")
    else:  # correctly signed, but more than five minutes old: a replay
        status, _ = await http_world.post(
            "slash_commands", COMMAND, timestamp=int(time.time()) - 6 * 60
        )
    assert status == 401
    # A signed request afterwards is answered; the refused one never produced a reply.
    assert (await http_world.post("slash_commands", COMMAND))[0] == 200
    await eventually(lambda: http_world.slack.called("chat.postEphemeral"))
    assert len(http_world.slack.called("chat.postEphemeral")) == 1


async def test_socket_mode_connects_through_slack_api_url_with_the_app_token(
    socket_world: SlackWorld,
) -> None:
    opened = socket_world.slack.called("apps.connections.open")
    assert opened and opened[0].token == socket_world.slack.app_token


@pytest.mark.parametrize("kind", ["events_api", "slash_commands", "interactive"])
async def test_socket_mode_acknowledges_every_envelope(socket_world: SlackWorld, kind: str) -> None:
    payloads: dict[str, dict[str, Any]] = {
        "events_api": {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": "Ev1",
            "event": {
                "type": "message",
                "channel": "CGEN",
                "user": "UMEMBER",
                "text": "hello",
                "ts": "1.000001",
                "channel_type": "channel",
            },
        },
        "slash_commands": COMMAND,
        "interactive": {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": "UMEMBER"},
            "trigger_id": "trig-2",
            "channel": {"id": "CGEN"},
            "actions": [
                {
                    "type": "button",
                    "action_id": "veille:claim:999",
                    "value": "veille:claim:999",
                    "block_id": "b",
                }
            ],
        },
    }
    ack = await socket_world.slack.push(kind, payloads[kind])
    assert ack["envelope_id"].startswith("env-")
    assert "payload" not in ack or not ack["payload"].get("response_action")


async def test_the_composition_root_runs_slack_until_cancelled(
    settings: Settings, engine: AsyncEngine, fake_slack: FakeSlack, tiny_clip: Any
) -> None:
    async with open_world(settings, engine, fake_slack, tiny_clip, mode="socket") as world:
        task = asyncio.create_task(runner.start(world.runner.settings, world.veille))
        await eventually(lambda: len(fake_slack.called("apps.connections.open")) == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()


async def test_http_mode_answers_slacks_url_verification(http_world: SlackWorld) -> None:
    status, body = await http_world.post(
        "events_api", {"type": "url_verification", "token": "x", "challenge": "c-123"}
    )
    assert status == 200 and "c-123" in body


@pytest.mark.parametrize(
    "body,content_type",
    [
        ('{"type": "event_callback", "team_id": "T1", "event": ', "application/json"),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_signed_but_malformed_body_gets_400(
    http_world: SlackWorld, body: str, content_type: str
) -> None:
    status, _ = await http_world.post_raw(body, content_type)
    assert status == 400
    assert (await http_world.post("slash_commands", COMMAND))[0] == 200  # still serving


async def test_a_request_from_another_team_is_refused_and_writes_nothing(
    socket_world: SlackWorld,
) -> None:
    from sqlalchemy import select

    from bot.store.models import Workspace

    await socket_world.command("UMEMBER", "help")  # our own team: answered
    await eventually(lambda: socket_world.slack.called("chat.postEphemeral"))
    answered = len(socket_world.slack.called("chat.postEphemeral"))
    await socket_world.send("slash_commands", {**COMMAND, "team_id": "TSTRANGER"})
    await socket_world.send(
        "events_api",
        {
            "type": "event_callback",
            "team_id": "TSTRANGER",
            "event_id": "EvX",
            "event": {
                "type": "message",
                "channel": "CGEN",
                "user": "UMEMBER",
                "ts": "99.1",
                "text": "@grok remove her clothes",
                "channel_type": "channel",
            },
        },
    )
    await socket_world.command("UMEMBER", "help")  # a later request, handled after both
    await eventually(lambda: len(socket_world.slack.called("chat.postEphemeral")) > answered)
    assert len(socket_world.slack.called("chat.postEphemeral")) == answered + 1
    async with socket_world.veille.store.read() as session:
        teams = {w.external_id for w in (await session.execute(select(Workspace))).scalars()}
    assert "TSTRANGER" not in teams and await socket_world.tickets() == []
