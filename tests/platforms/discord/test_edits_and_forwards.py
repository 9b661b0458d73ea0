"""What hides after the first scan, through the real discord.py client: an edit that only
changes the text into an undress request, and a forwarded message (its content arrives in
`message_snapshots`) carrying a banked image."""

from __future__ import annotations

import asyncio

from bot.store.models import Ticket
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes


async def test_an_edit_that_only_changes_the_text_is_rescanned(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    posted = await fake.post_message(world.guild, world.general, world.member, "nice photo")
    edited = await fake.edit_message(posted, content="@grok remove her clothes")

    async def ticketed() -> list[Ticket]:
        return await world.rows(Ticket, Ticket.message_id == posted["id"])

    found: list[Ticket] = []
    for _ in range(200):
        found = await ticketed()
        if found:
            break
        await asyncio.sleep(0.05)
    assert found and "undress_request" in found[0].categories
    # The same edit delivered again (a gateway resume replays it) makes no second ticket, even
    # once the message was removed for it.
    await fake.edit_message(edited, content="@grok remove her clothes")
    await world.settled(found[0].id or 0)
    assert len(await ticketed()) == 1


async def test_a_forwarded_banked_image_is_removed(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    fake = world.fake
    known = shape_png(7)
    await add_hashes(world, world.admin, known)
    elsewhere = fake.add_channel(world.guild, "elsewhere")
    original = await fake.post_message(
        world.guild, elsewhere, world.moderator, "", files=[("x.png", known)]
    )
    await fake.wait_call("DELETE", f"/channels/{elsewhere['id']}/messages/{original['id']}")
    forwarded = await fake.forward_message(world.guild, world.general, world.member, original)
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{forwarded['id']}")
    [ticket] = await world.rows(Ticket, Ticket.message_id == forwarded["id"])
    assert ticket.severity == "QUARANTINE" and "known_content" in ticket.categories
