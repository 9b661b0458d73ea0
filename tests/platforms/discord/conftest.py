"""The Discord world for end-to-end tests: a fake Discord with one guild, the real core on a
migrated SQLite file, and the real discord.py client connected over 127.0.0.1.

Async fixtures here run on the test's own event loop (loop_scope="function"): the fake's
sockets and the client must share one loop.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
import pytest_asyncio
from PIL import Image, ImageDraw
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import build_veille
from bot.core.service import Veille
from bot.core.types import Actor, Platform, SetupInput
from bot.platforms.discord.client import DiscordOptions, VeilleClient
from bot.platforms.discord.events import AiApps
from bot.platforms.discord.runner import build_client
from bot.settings import Settings
from bot.store import engine as store
from bot.store.models import OutboxAction
from tests.fakes import discord_payloads as p
from tests.fakes.discord_server import FakeDiscord, FakeGuild
from tests.tiny_clip import tiny_clip_settings

JSON = dict[str, Any]


def shape_png(seed: int, size: int = 128) -> bytes:
    """A generated picture of a few coloured shapes; each seed gives a visibly different one."""
    image = Image.new("RGB", (size, size), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))
    draw = ImageDraw.Draw(image)
    for i in range(5):
        x, y = (seed * 13 + i * 29) % size, (seed * 7 + i * 41) % size
        draw.ellipse(
            (x, y, x + size // 3, y + size // 4), fill=((i * 80) % 256, 255 - seed % 256, i * 60)
        )
        draw.rectangle(
            (y // 2, x // 2, y // 2 + size // 5, x // 2 + size // 3), fill=(255, i * 70, seed % 256)
        )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class DiscordWorld:
    """The fake server's guild and people, plus the bot under test (restartable)."""

    fake: FakeDiscord
    settings: Settings
    engine: AsyncEngine
    guild: FakeGuild
    general: JSON
    safety: JSON
    quarantine: JSON
    locked: JSON  # a channel where the bot may not post
    mod_role: JSON
    admin: JSON
    moderator: JSON
    member: JSON
    grok: JSON  # an image-AI app
    veille: Veille | None = None
    scanner: Any = None  # a Scanner built for the test; None: the configured detectors
    client: VeilleClient | None = None
    _task: asyncio.Task[None] | None = None
    clients: list[VeilleClient] = field(default_factory=list)

    def actor(self, member: JSON) -> Actor:
        """The Actor the adapter derives for `member` (used only to arrange state)."""
        perms = self.fake.permissions(self.guild, member)
        return Actor(
            user_id=member["user"]["id"],
            display_name=member["user"]["username"],
            role_ids=frozenset(member["roles"]),
            is_platform_admin=bool(perms & (p.MANAGE_GUILD | p.ADMINISTRATOR)),
        )

    async def start_bot(self) -> VeilleClient:
        """A new core and a new client on the same database: what a restart is."""
        # Reloads the hash bank (into the given scanner's hash detector, when there is one).
        self.veille = await build_veille(self.settings, self.engine, scanner=self.scanner)
        self.veille.start()
        options = DiscordOptions(
            ai_apps=AiApps(ids=frozenset({self.grok["user"]["id"]})),
            guild_ready_timeout=0.05,
            max_ratelimit_timeout=30,
        )
        self.client = build_client(self.settings, self.veille, options)
        identified = len(self.fake.identifies)
        self._task = asyncio.create_task(self.client.start(self.fake.token))
        await self.fake.wait_for(
            lambda: len(self.fake.identifies) > identified and self.fake.sockets
        )
        return self.client

    async def stop_bot(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.veille is not None:
            await self.veille.aclose()
        self.client, self._task, self.veille = None, None, None

    async def configure(self) -> None:
        """Arrange: the admin has run setup (safety, quarantine, moderator role)."""
        assert self.veille is not None
        await self.veille.save_setup(
            Platform.DISCORD,
            self.guild.id,
            self.actor(self.admin),
            SetupInput(
                safety_channel_id=self.safety["id"],
                quarantine_channel_id=self.quarantine["id"],
                moderator_role_ids=(self.mod_role["id"],),
            ),
        )

    async def settled(self, ticket_id: int) -> list[OutboxAction]:
        """The ticket's outbox actions once none is pending (polled: the worker is independent)."""

        async def _poll() -> list[OutboxAction]:
            while True:
                rows = await self.rows(OutboxAction, OutboxAction.ticket_id == ticket_id)
                if rows and all(row.status != "pending" for row in rows):
                    return rows
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(_poll(), 15)

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with store.session_factory(self.engine)() as session:
            return list((await session.execute(select(model).where(*where))).scalars().all())


@pytest_asyncio.fixture(loop_scope="function")
async def world(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DiscordWorld]:
    """Detectors: hashes and text; `parametrize("world", ["clip"], indirect=True)` adds the
    tiny CLIP model of tests/tiny_clip.py (red circles score as `sexual`), `["nsfw"]` the
    bundled open_nsfw model (what runs where no hub is reachable)."""
    monkeypatch.chdir(tmp_path)
    detectors = {"detectors": "hashes,text"}
    if getattr(request, "param", None) == "clip":
        detectors = {
            "detectors": "clip,hashes,text",
            **tiny_clip_settings(),
            "device": "cpu",
            "clip_backend": "torch",
        }
    if getattr(request, "param", None) == "nsfw":
        detectors = {"detectors": "nsfw,hashes,text"}
    await asyncio.to_thread(store.upgrade, db_url)
    engine = store.create_engine(db_url)
    fake = FakeDiscord()
    await fake.start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-not-for-production",
        **detectors,
        discord_token=SecretStr(fake.token),
        discord_api_url=fake.base_url,
        fetch_allow_loopback=True,
        batch_wait_ms=1,
    )
    guild = fake.add_guild("Safe Space")
    mod_role = fake.add_role(guild, "Moderators", p.MEMBER_PERMISSIONS, position=2)
    admin_role = fake.add_role(guild, "Admins", p.MEMBER_PERMISSIONS | p.MANAGE_GUILD, position=3)
    bot_role_id = next(r for r in fake.guilds[guild.id].members[fake.bot_user["id"]]["roles"])
    world = DiscordWorld(
        fake=fake,
        settings=settings,
        engine=engine,
        guild=guild,
        general=fake.add_channel(guild, "general"),
        safety=fake.add_channel(guild, "safety"),
        quarantine=fake.add_channel(guild, "quarantine"),
        locked=fake.add_channel(
            guild,
            "announcements",
            [p.overwrite(bot_role_id, deny=p.SEND_MESSAGES | p.ATTACH_FILES)],
        ),
        mod_role=mod_role,
        admin=fake.add_member(guild, "ada", [admin_role["id"]]),
        moderator=fake.add_member(guild, "mo", [mod_role["id"]]),
        member=fake.add_member(guild, "mel"),
        grok=fake.add_member(guild, "grok", bot=True),
    )
    original_base = discord.http.Route.BASE  # DISCORD_API_URL is process-wide: put it back
    yield world
    discord.http.Route.BASE = original_base
    await world.stop_bot()
    await fake.close()
    await engine.dispose()
