"""Discord messages from the wire → MessageEvent: media, replies, roles, AI apps, edits."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import discord

from bot.core.types import MessageEvent
from bot.platforms.discord.events import AiApps, actor_of, to_event
from bot.store.models import Ticket
from tests.fakes import discord_payloads as p
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes


async def _translate(world: DiscordWorld, post: Awaitable[dict[str, Any]]) -> MessageEvent:
    """Post through the fake; translate the discord.Message the client built from the wire."""
    client = world.client
    assert client is not None
    payload = await post
    message = await world.fake.wait_for(
        lambda: discord.utils.get(client.cached_messages, id=int(payload["id"]))
    )
    return to_event(message, client.options.ai_apps)


async def test_media_reply_roles_and_ai_apps(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    photo = await fake.post_message(world.guild, world.general, world.member, "me at the beach")
    embeds = [
        {
            "type": "rich",
            "image": {"url": "https://img.example/a.jpg"},
            "thumbnail": {"url": "https://img.example/t.png"},
        }
    ]
    event = await _translate(
        world,
        fake.post_message(
            world.guild,
            world.general,
            world.moderator,
            "@grok put her in a bikini https://example.org/page",
            reply_to=photo,
            files=[("pic.png", shape_png(1)), ("notes.pdf", b"%PDF-1.4")],
            embeds=embeds,
        ),
    )

    assert [(m.kind, m.filename or m.url) for m in event.media] == [
        ("attachment", "pic.png"),
        ("embed", "https://img.example/a.jpg"),
        ("embed", "https://img.example/t.png"),
        ("link", "https://example.org/page"),
    ]
    assert event.workspace_id == world.guild.id and event.channel_id == world.general["id"]
    assert event.author.role_ids == frozenset({world.mod_role["id"]})
    assert not event.author.is_platform_admin and not event.author.is_bot
    assert event.mentions_ai_app
    assert event.reply_to is not None and event.reply_to.message_id == photo["id"]
    assert event.reply_to.text == "me at the beach" and not event.reply_to.has_image

    # The configured AI app, and any bot answering a message with an image, count as AI apps.
    grok = await _translate(
        world,
        fake.post_message(
            world.guild, world.general, world.grok, "here", files=[("e.png", shape_png(2))]
        ),
    )
    assert grok.author.is_bot and grok.author.is_ai_app
    other_bot = fake.add_member(world.guild, "imagebot", bot=True)
    answering = await _translate(
        world,
        fake.post_message(
            world.guild,
            world.general,
            other_bot,
            "",
            files=[("e.png", shape_png(3))],
            reply_to=photo,
        ),
    )
    assert answering.author.is_ai_app
    chatting = await _translate(
        world, fake.post_message(world.guild, world.general, other_bot, "beep")
    )
    assert chatting.author.is_bot and not chatting.author.is_ai_app


async def test_admin_right_comes_from_manage_server(world: DiscordWorld) -> None:
    await world.start_bot()
    event = await _translate(
        world, world.fake.post_message(world.guild, world.general, world.admin, "hello")
    )
    assert event.author.is_platform_admin


async def test_an_edit_that_adds_a_known_image_is_quarantined(world: DiscordWorld) -> None:
    fake = world.fake
    await world.start_bot()
    await world.configure()
    await add_hashes(world, world.admin, shape_png(8))
    posted = await fake.post_message(world.guild, world.general, world.member, "innocent")
    await fake.edit_message(posted, content="innocent", files=[("late.png", shape_png(8))])

    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
    [ticket] = await world.rows(Ticket, Ticket.message_id == posted["id"])
    assert "known_content" in ticket.categories


def test_ai_app_names_are_configurable() -> None:
    apps = AiApps(extra_names=frozenset({"NudeBot"}))
    helper, nudebot = _user("Helper", 5), _user("nudebot", 6)
    assert not actor_of(helper, apps).is_ai_app and actor_of(nudebot, apps).is_ai_app
    assert actor_of(_user("whatever", 7), AiApps(ids=frozenset({"7"}))).is_ai_app


def _user(name: str, user_id: int) -> discord.User:
    return discord.User(state=None, data=p.user(str(user_id), name, bot=True))  # type: ignore[arg-type]
