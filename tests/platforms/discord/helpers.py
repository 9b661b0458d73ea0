"""What the tests do through the fake Discord, in Discord's own terms (commands, buttons, cards)."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord_server import Call, FakeDiscord, FakeInteraction
from tests.platforms.discord.conftest import DiscordWorld

JSON = dict[str, Any]


def custom_ids(message_or_body: JSON) -> list[str]:
    """Every component custom id in a message (or a message body the bot sent)."""
    found: list[str] = []
    for row in message_or_body.get("components") or []:
        for component in row.get("components", []):
            if "custom_id" in component:
                found.append(component["custom_id"])
    return found


def components(message_or_body: JSON) -> list[JSON]:
    return [c for row in message_or_body.get("components") or [] for c in row.get("components", [])]


async def answer_of(fake: FakeDiscord, interaction: FakeInteraction) -> JSON:
    """What the bot answered: the callback's data, or the follow-up after a deferral."""
    call = await fake.wait_call("POST", interaction.callback_path)
    body = call.body or {}
    if body.get("type") == 5:  # deferred: the real answer is a follow-up webhook message
        follow = await fake.wait_call("POST", interaction.webhook_path)
        return {"type": 5, "data": follow.body or {}, "files": follow.files}
    return {"type": body.get("type"), "data": body.get("data") or {}, "files": call.files}


def is_ephemeral(answer: JSON) -> bool:
    return bool((answer["data"].get("flags") or 0) & 64)


def text_of(answer: JSON) -> str:
    data = answer["data"]
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


async def add_hashes(world: DiscordWorld, who: JSON, image: bytes) -> JSON:
    """`/hashes add image:<file>` as Discord sends it: the file uploaded, then resolved."""
    attachment = world.fake.host_file("known.png", image)
    interaction = await world.fake.slash(
        world.guild,
        world.general,
        who,
        "hashes",
        [
            {
                "type": 1,
                "name": "add",
                "options": [{"type": 11, "name": "image", "value": attachment["id"]}],
            }
        ],
        resolved={"attachments": {attachment["id"]: attachment}},
    )
    return await answer_of(world.fake, interaction)


async def card_in(world: DiscordWorld, channel: JSON, *, count: int = 1) -> Call:
    """The `count`-th message the bot posted in `channel`."""
    return await world.fake.wait_call("POST", f"/channels/{channel['id']}/messages", count=count)


async def press(
    world: DiscordWorld, who: JSON, channel: JSON, message_id: str, custom_id: str
) -> JSON:
    """`who` presses a button on a message the bot posted; returns the bot's answer."""
    message = world.fake.messages[message_id]
    interaction = await world.fake.click(world.guild, channel, who, message, custom_id)
    return await answer_of(world.fake, interaction)
