"""Sharding: two shard holders on one database, against a fake Discord that shards as Discord
does: two real `veille run` processes (VEILLE_DISCORD_SHARD_IDS=0 and =1), and the same in one
test process, where what each holder scanned can be seen. Each guild's messages and
interactions reach only the holder of its shard, and are handled there once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.app import build_veille
from bot.core.service import Veille
from bot.core.types import Decision, MessageEvent
from bot.platforms.discord.client import DiscordOptions, VeilleClient
from bot.platforms.discord.runner import build_client
from bot.settings import Settings
from tests.cli import conftest as cli
from tests.cli.servers import fake_discord_thread
from tests.detectors.hash_images import photo_like, png_bytes
from tests.fakes import discord_payloads as p
from tests.platforms.discord.conftest import DiscordWorld
from tests.platforms.discord.helpers import answer_of

isolated, veille = cli.isolated, cli.veille  # the `veille run` tests' clean environment


@dataclass
class ShardHolder:
    """One process's worth of Veille: its own core and client, holding `shards`."""

    shards: tuple[int, ...]
    veille: Veille
    client: VeilleClient
    handled: list[str] = field(default_factory=list)  # guild ids of the messages it scanned


@asynccontextmanager
async def holding(
    world: DiscordWorld, count: int | None, ids: str | None
) -> AsyncIterator[ShardHolder]:
    """A core and client built from settings with VEILLE_DISCORD_SHARD_COUNT/_IDS, connected."""
    settings = Settings.model_validate(
        {**world.settings.model_dump(), "discord_shard_count": count, "discord_shard_ids": ids}
    )
    veille = await build_veille(settings, world.engine)
    veille.start()
    client = build_client(settings, veille, DiscordOptions(guild_ready_timeout=0.05))
    holder = ShardHolder(settings.discord_shards or (), veille, client)
    scan = veille.handle_message

    async def counted(event: MessageEvent) -> Decision:  # the real scan, noted per holder
        holder.handled.append(event.workspace_id)
        return await scan(event)

    veille.handle_message = counted  # type: ignore[method-assign]
    task = asyncio.create_task(client.start(world.fake.token))
    try:
        yield holder
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await veille.aclose()


async def test_each_guild_is_handled_once_by_the_holder_of_its_shard(world: DiscordWorld) -> None:
    fake = world.fake
    fake.shard_count = 2
    first = world.guild
    second = fake.add_guild("Second Space", shard=1 - p.shard_of(first.id, 2))
    second_general = fake.add_channel(second, "general")
    sam = fake.add_member(second, "sam")
    where = {first.id: (world.general, world.member), second.id: (second_general, sam)}
    guild_on = {p.shard_of(g.id, 2): g for g in (first, second)}
    assert set(guild_on) == {0, 1}

    async with holding(world, 2, "0") as zero, holding(world, 2, "1") as one:
        holders = {0: zero, 1: one}
        await fake.wait_for(
            lambda: all(
                h.client.get_guild(int(guild_on[s].id)) is not None for s, h in holders.items()
            )
        )
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
        for shard, holder in holders.items():  # each holds its own guild and not the other's
            assert [str(g.id) for g in holder.client.guilds] == [guild_on[shard].id]

        for guild in (first, second):
            channel, author = where[guild.id]
            await fake.post_message(guild, channel, author, f"hello from {guild.name}")
        await fake.wait_for(lambda: zero.handled and one.handled)

        answers = {}
        for guild in (first, second):
            channel, author = where[guild.id]
            interaction = await fake.slash(guild, channel, author, "help")
            answers[guild.id] = (interaction, await answer_of(fake, interaction))
        await asyncio.sleep(0.5)  # what a wrong holder might still do, given the time to do it

    for shard, holder in holders.items():
        assert holder.handled == [guild_on[shard].id]
    for interaction, answer in answers.values():
        assert answer["data"]["embeds"], answer
        callbacks = [c for c in fake.calls if c.path == interaction.callback_path]
        assert len(callbacks) == 1 and callbacks[0].status == 200
    delivered = [
        (shard, event, guild)
        for shard, event, guild in fake.gateway.delivered
        if event in ("MESSAGE_CREATE", "INTERACTION_CREATE")
    ]
    assert sorted(delivered) == sorted(
        (p.shard_of(g.id, 2), event, g.id)
        for g in (first, second)
        for event in ("MESSAGE_CREATE", "INTERACTION_CREATE")
    )


async def test_unset_the_client_holds_every_shard_discord_recommends(world: DiscordWorld) -> None:
    """Neither variable: GET /gateway/bot's count, every shard in this one process."""
    world.fake.shard_count = 2
    second = world.fake.add_guild("Second Space", shard=1 - p.shard_of(world.guild.id, 2))
    async with holding(world, None, None) as holder:
        # discord.py waits 5 s before identifying each shard after the first.
        await world.fake.wait_for(lambda: len(holder.client.guilds) == 2, within=20)
        assert sorted(tuple(i["shard"]) for i in world.fake.identifies) == [(0, 2), (1, 2)]
        assert {str(g.id) for g in holder.client.guilds} == {world.guild.id, second.id}


def test_shard_settings_are_checked() -> None:
    def load(**env: object) -> Settings:
        return Settings(_env_file=None, **env)  # type: ignore[arg-type, call-arg]

    assert load(discord_shard_count=4, discord_shard_ids="3, 1,1").discord_shards == (1, 3)
    assert load(discord_shard_count=4).discord_shards is None  # all four in this process
    with pytest.raises(ValidationError, match="between 0 and 1 .*; 2 is not"):
        load(discord_shard_count=2, discord_shard_ids="0,2")
    with pytest.raises(ValidationError, match="need VEILLE_DISCORD_SHARD_COUNT"):
        load(discord_shard_ids="0")
    with pytest.raises(ValidationError, match="comma-separated numbers"):
        load(discord_shard_count=2, discord_shard_ids="zero")
    with pytest.raises(ValidationError):
        load(discord_shard_count=0)


def test_two_veille_run_processes_each_handle_their_own_shard(
    veille: cli.Veille, tmp_path: Path
) -> None:
    assert veille("db", "upgrade").returncode == 0
    banked = tmp_path / "banked.png"
    photo_like(78).save(banked)
    assert veille("hashes", "add", str(banked), "--bank", "operator-list").returncode == 0
    with fake_discord_thread() as (discord, thread):
        discord.shard_count = 2
        guilds = [discord.add_guild(f"Shard {shard}", shard=shard) for shard in (0, 1)]
        people = [(discord.add_channel(g, "general"), discord.add_member(g, "mel")) for g in guilds]
        env = {
            **veille.env,
            "VEILLE_SECRET_KEY": "k" * 32,
            "VEILLE_DETECTORS": "hashes,text",
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_URL": discord.base_url,
            "VEILLE_DISCORD_SHARD_COUNT": "2",
        }
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=veille.cwd,
                text=True,
                env={**env, "VEILLE_DISCORD_SHARD_IDS": str(shard)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for shard in (0, 1)
        ]
        try:
            _until(
                lambda: len(discord.identifies) == 2 and "global" in discord.commands,
                processes,
                within=90,
            )
            time.sleep(1)  # READY and guild_ready_timeout in both
            posted = [
                thread.call(
                    lambda g=g, c=c, m=m: discord.post_message(
                        g, c, m, "", files=[("again.png", png_bytes(photo_like(78)))]
                    )
                )
                for g, (c, m) in zip(guilds, people, strict=True)
            ]
            slashes = [
                thread.call(lambda g=g, c=c, m=m: discord.slash(g, c, m, "help"))
                for g, (c, m) in zip(guilds, people, strict=True)
            ]
            paths = [f"/channels/{m['channel_id']}/messages/{m['id']}" for m in posted]
            _until(
                lambda: (
                    all(discord.find_calls("DELETE", path) for path in paths)
                    and all(discord.find_calls("POST", i.callback_path) for i in slashes)
                ),
                processes,
                within=60,
            )
            time.sleep(3)  # what a wrong process might still do, given the time to do it
            deletes = [len(discord.find_calls("DELETE", path)) for path in paths]
            answers = [
                len([c for c in discord.calls if c.path == i.callback_path]) for i in slashes
            ]
            delivered = sorted(
                (shard, event, guild)
                for shard, event, guild in discord.gateway.delivered
                if event in ("MESSAGE_CREATE", "INTERACTION_CREATE")
            )
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            outputs = [process.communicate(timeout=60) for process in processes]
    assert sorted(tuple(i["shard"]) for i in discord.identifies) == [(0, 2), (1, 2)]
    assert deletes == [1, 1] and answers == [1, 1], outputs
    assert delivered == sorted(
        (shard, event, guilds[shard].id)
        for shard in (0, 1)
        for event in ("MESSAGE_CREATE", "INTERACTION_CREATE")
    )
    for shard, (_, err) in enumerate(outputs):
        assert "Traceback" not in err, err
        assert f"holding shards [{shard}] of 2" in err, err


def _until(
    condition: Callable[[], object], processes: list[subprocess.Popen[str]], *, within: float
) -> None:
    """Wait for `condition` while the processes run; fail with their output if one stops."""
    deadline = time.monotonic() + within
    while not condition():
        if any(process.poll() is not None for process in processes):
            raise AssertionError(f"veille run stopped: {[p.communicate() for p in processes]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)
