"""Rate limits, help requests and the Gateway's error mapping, through the fake Discord."""

from __future__ import annotations

import discord
import pytest

from bot.core.gateway import Card, GatewayError
from bot.core.help import STOPNCII
from bot.core.types import MediaRef
from bot.store.models import Ticket
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes, card_in, custom_ids


async def test_a_429_is_waited_out_and_nothing_is_lost(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(6))
    # Discord answers the first card post and the first delete with 429 + Retry-After.
    fake.rate_limit("POST", f"/channels/{world.safety['id']}/messages", retry_after=0.05)
    fake.rate_limit("DELETE", f"/channels/{world.general['id']}/messages/\\d+", retry_after=0.05)

    posted = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("x.png", shape_png(6))]
    )

    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
    card = await card_in(world, world.safety)
    await card_in(world, world.quarantine)
    limited = [c for c in fake.calls if c.status == 429]
    assert {c.method for c in limited} == {"POST", "DELETE"}
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    assert f"veille:claim:{ticket.id}" in custom_ids(card.body)
    # Exactly one card: the retry did not post twice.
    assert len(fake.find_calls("POST", f"/channels/{world.safety['id']}/messages")) == 1
    actions = await world.settled(ticket.id)
    assert {row.status for row in actions} == {"done"}


async def test_a_long_rate_limit_becomes_a_retryable_gateway_error(world: DiscordWorld) -> None:
    await world.start_bot()
    assert world.client is not None
    world.client.http.max_ratelimit_timeout = 1.0  # discord.py gives up above this
    world.fake.rate_limit("POST", f"/channels/{world.general['id']}/messages", retry_after=5.0)
    with pytest.raises(GatewayError) as caught:
        await world.client.gateway.post_text(world.guild.id, world.general["id"], "hello")
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(5.0)


async def test_gateway_errors_and_idempotent_delete(world: DiscordWorld) -> None:
    await world.start_bot()
    assert world.client is not None
    gateway = world.client.gateway
    # Deleting a message that is already gone is success (the outbox may repeat a call).
    await gateway.delete_message(world.guild.id, world.general["id"], "123456789012345678")
    with pytest.raises(GatewayError) as caught:
        await gateway.post_card(world.guild.id, "123456789012345678", Card(title="x"))
    assert not caught.value.retryable
    big = world.fake.host_file("big.png", b"x" * 5000)
    with pytest.raises(GatewayError):
        await gateway.download(
            MediaRef(kind="attachment", url=big["url"], media_id=big["id"]), max_bytes=1000
        )
    small = world.fake.host_file("small.png", b"y" * 10)
    assert await gateway.download(MediaRef(kind="attachment", url=small["url"]), 1000) == b"y" * 10


async def test_timeout_and_spoiler_card(world: DiscordWorld) -> None:
    await world.start_bot()
    assert world.client is not None
    gateway = world.client.gateway
    await gateway.timeout_member(world.guild.id, world.member["user"]["id"], 600, "repeat")
    call = await world.fake.wait_call(
        "PATCH", f"/guilds/{world.guild.id}/members/{world.member['user']['id']}"
    )
    assert call.body["communication_disabled_until"]
    assert call.headers.get("X-Audit-Log-Reason") == "repeat"
    await gateway.post_card(
        world.guild.id,
        world.quarantine["id"],
        Card(title="preview", image_png=shape_png(7), image_name="p.png", spoiler=True),
    )
    posted = await card_in(world, world.quarantine)
    assert [name for name, _ in posted.files] == ["SPOILER_p.png"]
    # A spoiler image stays out of the embed, where Discord would show it unblurred.
    assert "image" not in posted.body["embeds"][0]


async def test_help_request_gets_a_private_answer_and_a_priority_ticket(
    world: DiscordWorld,
) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    posted = await fake.post_message(
        world.guild,
        world.general,
        world.member,
        "someone posted a fake nude photo of me, please help, how do I get it removed?",
    )

    dm = await fake.wait_call("POST", "/users/@me/channels")
    assert str(dm.body["recipient_id"]) == world.member["user"]["id"]
    channel_id = fake.dm_channels[world.member["user"]["id"]]["id"]
    sent = await fake.wait_call("POST", f"/channels/{channel_id}/messages")
    assert STOPNCII in (sent.body.get("content") or "")
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    assert ticket.kind == "help_request" and ticket.priority
    await card_in(world, world.safety)
    # The person asking for help is not punished: their message stays.
    assert not fake.find_calls("DELETE", f"/channels/{world.general['id']}/messages/\\d+")


async def test_connects_through_discord_api_url_and_gateway_bot(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    paths = [(c.method, c.path) for c in fake.calls]
    # REST at DISCORD_API_URL; the websocket address is the one GET /gateway/bot gave.
    assert paths.index(("GET", "/users/@me")) < paths.index(("GET", "/gateway/bot"))
    assert all(c.headers.get("Authorization") == f"Bot {fake.token}" for c in fake.calls)
    intents = discord.Intents._from_value(fake.identifies[-1]["intents"])
    assert intents.guilds and intents.guild_messages and intents.message_content
    assert not intents.members and not intents.presences  # no privileged intents it does not use


async def test_a_card_posted_again_with_its_outbox_key_is_the_same_card(
    world: DiscordWorld,
) -> None:
    """A crash after Discord made the card but before the outbox recorded its id repeats the
    post: the outbox key becomes an enforced nonce, so Discord returns the card it made."""
    from bot.core.gateway import Card

    await world.start_bot()
    await world.configure()
    assert world.client is not None
    gateway = world.client.gateway
    card = Card(title="#7 · detection · QUARANTINE", body="", fallback_text="#7")
    first = await gateway.post_card(world.guild.id, world.safety["id"], card, dedupe_key="7:card")
    again = await gateway.post_card(world.guild.id, world.safety["id"], card, dedupe_key="7:card")
    other = await gateway.post_card(world.guild.id, world.safety["id"], card, dedupe_key="8:card")
    assert first == again != other
    posted = [m for m in world.fake.messages.values() if m["channel_id"] == world.safety["id"]]
    assert len(posted) == 2
