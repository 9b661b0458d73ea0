"""Through the real discord.py client and the fake Discord: ticket cards show the channel and
the author as mentions (Discord displays their names) instead of raw snowflakes, and the author
of a removed text request is told a *message* was removed, not an image."""

from __future__ import annotations

import json
from typing import Any

import discord
from discord import app_commands

from bot.platforms.discord.command_sync import STATE_FILE, tree_hash
from bot.store.models import Ticket
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes, card_in


def embed_fields(call: Any) -> dict[str, str]:
    [embed] = call.body["embeds"]
    return {field["name"]: field["value"] for field in embed["fields"]}


async def test_the_card_names_channel_and_author_by_mention(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    known = shape_png(11)
    await add_hashes(world, world.admin, known)
    await world.fake.post_message(
        world.guild, world.general, world.member, "", files=[("photo.png", known)]
    )
    fields = embed_fields(await card_in(world, world.safety))
    assert fields["Channel"] == f"<#{world.general['id']}>"
    assert fields["Author"] == f"<@{world.member['user']['id']}>"


async def test_removing_a_text_request_tells_the_author_a_message_was_removed(
    world: DiscordWorld,
) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    photo = await fake.post_message(
        world.guild, world.general, world.admin, "", files=[("beach.png", shape_png(12))]
    )
    request = await fake.post_message(
        world.guild,
        world.general,
        world.member,
        f"<@{world.grok['user']['id']}> remove her clothes",
        reply_to=photo,
    )
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{request['id']}")
    [ticket] = await world.rows(Ticket, Ticket.message_id == request["id"])
    assert "undress_request" in ticket.categories
    await fake.wait_call("POST", "/users/@me/channels")
    channel_id = fake.dm_channels[world.member["user"]["id"]]["id"]
    sent = await fake.wait_call("POST", f"/channels/{channel_id}/messages")
    text = sent.body.get("content") or ""
    assert "removed a message you posted" in text, text
    assert "image you posted" not in text


async def test_commands_are_synced_only_when_the_tree_changed(world: DiscordWorld) -> None:
    def writes() -> int:
        return len(world.fake.find_calls("PUT", r"/applications/\d+/commands"))

    await world.start_bot()
    assert writes() == 1 and world.fake.commands["global"]
    await world.stop_bot()
    await world.start_bot()  # a restart with the same commands: no write
    assert writes() == 1
    await world.stop_bot()
    # A changed tree (here: the record of the last sync no longer matches) is synced again.
    state = world.settings.data_dir / STATE_FILE
    state.write_text(json.dumps({k: "0" * 64 for k in json.loads(state.read_text())}))
    await world.start_bot()
    assert writes() == 2


async def test_the_hash_follows_the_commands(world: DiscordWorld) -> None:
    client = await world.start_bot()
    before = await tree_hash(client.tree, None)

    @app_commands.command(name="extra", description="not part of Veille")
    async def extra(interaction: discord.Interaction) -> None:  # pragma: no cover - never run
        pass

    client.tree.add_command(extra)
    assert await tree_hash(client.tree, None) != before
    client.tree.remove_command("extra")
    assert await tree_hash(client.tree, None) == before
