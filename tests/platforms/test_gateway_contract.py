"""One contract for every `bot.core.gateway.Gateway`: each test runs against the real
DiscordGateway on the fake Discord (tests/fakes/discord_server.py, a real discord.py client
over 127.0.0.1) and the real SlackGateway on the fake Slack (tests/fakes/slack_server.py).

What the core relies on, whatever the platform: every method does what it says, a message
already gone counts as deleted, a repeated post with the same dedupe key is safe, and failures
reach the outbox as `GatewayError` with `retryable` (and `retry_after` for a rate limit) right.
A third platform is held to it by adding its `Harness` to `HARNESSES`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import discord
import pytest
import pytest_asyncio
from aiohttp import web

from bot.core.gateway import Button, Card, Gateway, GatewayError
from bot.core.types import MediaRef
from bot.core.verdict import Severity
from bot.settings import Settings
from tests.fakes.discord_server import API, FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.platforms.slack.conftest import shape_png, slack_settings

pytestmark = pytest.mark.asyncio(loop_scope="function")

JSON = dict[str, Any]
IMAGE = shape_png(3)
SOURCE = Path(__file__).read_text(encoding="utf-8")


class Harness(Protocol):
    """A platform's Gateway on its fake, and the fake's view of what the Gateway did."""

    gateway: Gateway
    workspace: str
    channel: str  # a channel the bot may post in
    missing_channel: str  # a channel id the platform does not know
    user: str  # a member of the workspace
    dedupes: bool  # whether a repeated post with the same dedupe key returns the first message

    def hosted(self, data: bytes) -> MediaRef: ...
    def missing_file(self) -> MediaRef: ...
    async def member_message(self) -> str: ...
    def message(self, message_id: str) -> JSON | None: ...  # as the platform holds it
    def private_messages(self, user: str) -> list[JSON]: ...
    def timed_out(self, user: str) -> bool | None: ...  # None: the platform has no timeouts
    def rate_limit_next_post(self, retry_after: float) -> None: ...
    def fail_posts(self, status: int) -> None: ...  # until `stop_failing()`
    def stop_failing(self) -> None: ...


# ---------------------------------------------------------------------------- Discord
class ScriptedDiscord(FakeDiscord):
    """The fake Discord, plus scripted server errors (matching calls answer 5xx)."""

    def __init__(self) -> None:
        super().__init__()
        self.server_errors: list[tuple[str, re.Pattern[str], int]] = []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API) :]
        for rule in self.server_errors:
            if rule[0] == request.method and rule[1].fullmatch(path):
                return web.json_response(
                    {"message": f"{rule[2]}: Server Error", "code": 0}, status=rule[2]
                )
        return await super()._rest(request)


class DiscordHarness:
    dedupes = True

    def __init__(self, fake: ScriptedDiscord, client: discord.Client) -> None:
        from bot.platforms.discord.gateway import DiscordGateway

        self.fake = fake
        self.client = client
        self.gateway: Gateway = DiscordGateway(client)
        self.guild = next(iter(fake.guilds.values()))
        self.workspace = self.guild.id
        self.channel = next(iter(self.guild.channels))
        self.missing_channel = "999999999999999999"
        self.member = next(m for m in self.guild.members.values() if m["user"]["username"] == "mel")
        self.user = self.member["user"]["id"]

    def hosted(self, data: bytes) -> MediaRef:
        attachment = self.fake.host_file("photo.png", data)
        return MediaRef(
            kind="attachment",
            url=attachment["url"],
            media_id=attachment["id"],
            size=attachment["size"],
        )

    def missing_file(self) -> MediaRef:
        return MediaRef(
            kind="attachment", url=f"http://127.0.0.1:{self.fake.port}/cdn/gone.png", media_id="1"
        )

    async def member_message(self) -> str:
        channel = self.guild.channels[self.channel]
        message = await self.fake.post_message(self.guild, channel, self.member, "hello")
        return str(message["id"])

    def message(self, message_id: str) -> JSON | None:
        return self.fake.messages.get(message_id)

    def private_messages(self, user: str) -> list[JSON]:
        dm = self.fake.dm_channels.get(user)
        return [m for m in self.fake.messages.values() if dm and m["channel_id"] == dm["id"]]

    def timed_out(self, user: str) -> bool | None:
        return bool(self.guild.members[user].get("communication_disabled_until"))

    def rate_limit_next_post(self, retry_after: float) -> None:
        self.fake.rate_limit("POST", r"/channels/\d+/messages", retry_after=retry_after)

    def fail_posts(self, status: int) -> None:
        self.fake.server_errors.append(("POST", re.compile(r"/channels/\d+/messages"), status))

    def stop_failing(self) -> None:
        self.fake.server_errors.clear()


async def discord_harness(settings: Settings) -> AsyncIterator[DiscordHarness]:
    from bot.platforms.discord.client import apply_api_url, intents

    fake = ScriptedDiscord()
    await fake.start()
    guild = fake.add_guild("Safe Space")
    fake.add_channel(guild, "general")
    fake.add_member(guild, "mel")
    original_base = discord.http.Route.BASE  # DISCORD_API_URL is process-wide: put it back
    apply_api_url(fake.base_url)
    # max_ratelimit_timeout: a longer Retry-After raises RateLimited instead of sleeping.
    client = discord.AutoShardedClient(
        intents=intents(),
        chunk_guilds_at_startup=False,
        guild_ready_timeout=0.05,
        max_ratelimit_timeout=30,
    )
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 15)
        yield DiscordHarness(fake, client)
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await fake.close()
        discord.http.Route.BASE = original_base


# ---------------------------------------------------------------------------- Slack
class ScriptedSlack(FakeSlack):
    """The fake Slack, plus a channel that does not exist (Slack: channel_not_found)."""

    MISSING = "CGONE"

    def _m_chat_postMessage(self, args: dict[str, Any], token: str) -> dict[str, Any]:
        if args.get("channel") == self.MISSING:
            return {"error": "channel_not_found"}
        return super()._m_chat_postMessage(args, token)


class SlackHarness:
    dedupes = False  # Slack has no idempotent post: the core accepts a second one

    def __init__(self, fake: FakeSlack, settings: Settings) -> None:
        from bot.platforms.slack.app import create_gateway

        self.fake = fake
        self.slack_gateway = create_gateway(slack_settings(settings, fake))
        self.gateway: Gateway = self.slack_gateway
        self.workspace = "T0VEILLE"
        self.channel = "CGEN"
        self.missing_channel = ScriptedSlack.MISSING
        self.user = "UMEMBER"

    def hosted(self, data: bytes) -> MediaRef:
        info = self.fake.file_json(self.fake.add_file("photo.png", data))
        return MediaRef(
            kind="attachment", url=info["url_private"], media_id=info["id"], size=info["size"]
        )

    def missing_file(self) -> MediaRef:
        info = self.fake.file_json(self.fake.add_file("gone.png", IMAGE))
        del self.fake.files[info["id"]]
        return MediaRef(kind="attachment", url=info["url_private"], media_id=info["id"])

    async def member_message(self) -> str:
        ts = self.fake.next_ts()
        self.fake.messages[(self.channel, ts)] = {"ts": ts, "text": "hello", "user": self.user}
        return ts

    def message(self, message_id: str) -> JSON | None:
        return self.fake.messages.get((self.channel, message_id))

    def private_messages(self, user: str) -> list[JSON]:
        return [m for (channel, _), m in self.fake.messages.items() if channel == "D" + user]

    def timed_out(self, user: str) -> bool | None:
        return None

    def rate_limit_next_post(self, retry_after: float) -> None:
        self.fake.rate_limit_next["chat.postMessage"] = retry_after

    def fail_posts(self, status: int) -> None:
        self.fake.html_errors["chat.postMessage"] = status

    def stop_failing(self) -> None:
        self.fake.html_errors.clear()


async def slack_harness(settings: Settings) -> AsyncIterator[SlackHarness]:
    fake = ScriptedSlack()
    await fake.start()
    fake.add_user("UMEMBER", name="Mel")
    fake.channels["CGEN"] = {"UBOTVEILLE", "UMEMBER"}
    harness = SlackHarness(fake, settings)
    try:
        yield harness
    finally:
        await harness.slack_gateway.close()
        await fake.stop()


HARNESSES: dict[str, Callable[[Settings], AsyncIterator[Any]]] = {
    "discord": discord_harness,
    "slack": slack_harness,
}


@pytest_asyncio.fixture(loop_scope="function", params=sorted(HARNESSES))
async def platform(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Harness]:
    async for harness in HARNESSES[request.param](settings):
        yield harness


def card(title: str, *buttons: Button) -> Card:
    return Card(
        title=title,
        body="A photo was quarantined.",
        severity=Severity.QUARANTINE,
        fields=(("Channel", "general"),),
        buttons=buttons,
        fallback_text=title,
    )


def shown(message: JSON | None) -> str:
    """Everything a message carries (text, embeds, blocks), to look for what was posted."""
    assert message is not None, "the platform holds no such message"
    return json.dumps(message)


# ---------------------------------------------------------------------------- the contract
async def test_download_returns_the_bytes_and_refuses_what_it_cannot_have(
    platform: Harness,
) -> None:
    assert await platform.gateway.download(platform.hosted(IMAGE), len(IMAGE)) == IMAGE
    with pytest.raises(GatewayError) as too_big:
        await platform.gateway.download(platform.hosted(IMAGE), len(IMAGE) - 1)
    with pytest.raises(GatewayError) as gone:
        await platform.gateway.download(platform.missing_file(), len(IMAGE))
    assert too_big.value.retryable is False and gone.value.retryable is False


async def test_delete_message_and_a_message_already_gone_counts_as_deleted(
    platform: Harness,
) -> None:
    assert platform.gateway.can_delete_messages
    message_id = await platform.member_message()
    await platform.gateway.delete_message(platform.workspace, platform.channel, message_id)
    assert platform.message(message_id) is None
    await platform.gateway.delete_message(platform.workspace, platform.channel, message_id)


async def test_post_card_then_update_card(platform: Harness) -> None:
    claim = Button("claim", "Claim", 7, "primary")
    message_id = await platform.gateway.post_card(
        platform.workspace, platform.channel, card("Ticket #7", claim)
    )
    posted = shown(platform.message(message_id))
    assert "Ticket #7" in posted and claim.custom_id in posted
    await platform.gateway.update_card(
        platform.workspace, platform.channel, message_id, card("Ticket #7 — claimed")
    )
    updated = shown(platform.message(message_id))
    assert "claimed" in updated and claim.custom_id not in updated


async def test_a_post_repeated_with_its_dedupe_key_is_safe(platform: Harness) -> None:
    first = await platform.gateway.post_card(
        platform.workspace, platform.channel, card("Ticket #8"), dedupe_key="outbox:8"
    )
    again = await platform.gateway.post_card(
        platform.workspace, platform.channel, card("Ticket #8"), dedupe_key="outbox:8"
    )
    assert (again == first) is platform.dedupes
    assert "Ticket #8" in shown(platform.message(again))


async def test_post_text(platform: Harness) -> None:
    message_id = await platform.gateway.post_text(
        platform.workspace, platform.channel, "Digest: 3 tickets this week"
    )
    assert "Digest: 3 tickets" in shown(platform.message(message_id))


async def test_send_private_with_and_without_buttons_reaches_the_person(platform: Harness) -> None:
    await platform.gateway.send_private(
        platform.workspace, platform.user, "Your photo was removed."
    )
    appeal = Button("appeal", "Appeal", 9)
    await platform.gateway.send_private(
        platform.workspace, platform.user, "You may appeal.", buttons=(appeal,)
    )
    sent = [shown(m) for m in platform.private_messages(platform.user)]
    assert len(sent) == 2 and "Your photo was removed." in sent[0]
    assert "You may appeal." in sent[1] and appeal.custom_id in sent[1]


async def test_timeout_member(platform: Harness) -> None:
    await platform.gateway.timeout_member(platform.workspace, platform.user, 600, "undress request")
    assert platform.timed_out(platform.user) in (True, None)  # None: no timeouts on the platform


async def test_acting_on_something_that_does_not_exist_is_not_retryable(platform: Harness) -> None:
    with pytest.raises(GatewayError) as caught:
        await platform.gateway.update_card(
            platform.workspace, platform.channel, "1234567890", card("Ticket #404")
        )
    assert caught.value.retryable is False
    with pytest.raises(GatewayError) as unknown_channel:
        await platform.gateway.post_text(platform.workspace, platform.missing_channel, "hello")
    assert unknown_channel.value.retryable is False


async def test_a_server_error_is_retryable(platform: Harness) -> None:
    platform.fail_posts(503)
    with pytest.raises(GatewayError) as caught:
        await platform.gateway.post_text(platform.workspace, platform.channel, "hello")
    assert caught.value.retryable is True
    platform.stop_failing()  # what the outbox's retry then meets
    assert await platform.gateway.post_text(platform.workspace, platform.channel, "hello")


async def test_a_rate_limit_is_retryable_after_what_the_platform_said(platform: Harness) -> None:
    platform.rate_limit_next_post(45)
    with pytest.raises(GatewayError) as caught:
        await platform.gateway.post_card(platform.workspace, platform.channel, card("Ticket #9"))
    assert caught.value.retryable is True and caught.value.retry_after == pytest.approx(45)


async def test_every_gateway_method_is_in_the_contract() -> None:
    """A method added to Gateway must get a test above (and an answer on every platform)."""
    methods = {name for name in vars(Gateway) if not name.startswith("_")} - {"platform"}
    assert {m for m in methods if f"gateway.{m}" not in SOURCE} == set()
