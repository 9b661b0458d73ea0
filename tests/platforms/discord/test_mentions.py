"""Through the real discord.py client and the fake Discord: every message Veille sends carries
`allowed_mentions` with nothing allowed, so no quoted text can ping anyone."""

from __future__ import annotations

from bot.store.models import HashEntry
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes, card_in


async def test_veille_pings_no_one(world: DiscordWorld) -> None:
    await world.start_bot()
    await world.configure()
    known = shape_png(3)
    await add_hashes(world, world.admin, known)
    assert await world.rows(HashEntry)
    await world.fake.post_message(
        world.guild, world.general, world.member, "@everyone look", files=[("photo.png", known)]
    )
    await card_in(world, world.safety)
    sent = [
        c
        for c in world.fake.find_calls("POST", r"/channels/\d+/messages")
        if isinstance(c.body, dict)
    ]
    assert sent
    assert all(c.body.get("allowed_mentions") == {"parse": []} for c in sent), [
        c.body for c in sent
    ]
