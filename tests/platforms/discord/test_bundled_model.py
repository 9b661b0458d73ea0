"""`VEILLE_DETECTORS=nsfw,hashes,text`: Veille protects a server with no model hub at all — the
bundled open_nsfw model scores every image (a real photo passes), banked copies are removed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store.models import MediaItem, Ticket
from tests.platforms.discord.conftest import DiscordWorld, shape_png
from tests.platforms.discord.helpers import add_hashes


@pytest.mark.parametrize("world", ["nsfw"], indirect=True)
async def test_bundled_model_scores_photos_and_the_bank_still_removes(world: DiscordWorld) -> None:
    import matplotlib

    await world.start_bot()
    await world.configure()
    assert world.veille is not None
    assert [d.name for d in world.veille.scanner.detectors] == ["nsfw", "hashes", "text"]
    photo = (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()
    fake = world.fake
    await fake.post_message(
        world.guild, world.general, world.member, "my grandma", files=[("grace.jpg", photo)]
    )
    item = None
    for _ in range(200):  # scanned and recorded as clean: the nsfw score is in the verdict
        items = await world.rows(MediaItem)
        if items and items[0].verdict:
            item = items[0]
            break
        await asyncio.sleep(0.05)
    assert item is not None and item.verdict is not None
    assert item.verdict["severity"] == "NONE" and "nsfw" in item.verdict["detectors"]
    assert await world.rows(Ticket) == []

    known = shape_png(4)
    await add_hashes(world, world.admin, known)
    posted = await fake.post_message(
        world.guild, world.general, world.member, "", files=[("again.png", known)]
    )
    await fake.wait_call("DELETE", f"/channels/{world.general['id']}/messages/{posted['id']}")
