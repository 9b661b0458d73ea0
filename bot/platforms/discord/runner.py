"""Starting Veille on Discord from Settings: `start(settings, veille)` is what bot/app.py
calls; `build_client` is shared with the tests."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord

from bot.core.ai_apps import AiApps
from bot.platforms.discord.client import DiscordOptions, VeilleClient, apply_api_url
from bot.platforms.discord.gateway import DiscordGateway

if TYPE_CHECKING:
    from bot.core.service import Veille
    from bot.settings import Settings


def build_client(
    settings: Settings, veille: Veille, options: DiscordOptions | None = None
) -> VeilleClient:
    """A client ready to `start(token)`, holding the shards of VEILLE_DISCORD_SHARD_COUNT/_IDS.
    Applies DISCORD_API_URL before anything talks REST."""
    apply_api_url(settings.discord_api_url)
    if options is None:
        options = DiscordOptions(ai_apps=AiApps.from_setting(settings.ai_apps))
    return VeilleClient(
        veille, options, shard_count=settings.discord_shard_count, shard_ids=settings.discord_shards
    )


async def start(settings: Settings, veille: Veille, options: DiscordOptions | None = None) -> None:
    """The platform entry point bot/app.py calls: log in, sync the commands, connect, and run
    until the client is closed."""
    if settings.discord_token is None:
        raise RuntimeError("DISCORD_TOKEN is not set")
    client = build_client(settings, veille, options)
    async with client:
        await client.start(settings.discord_token.get_secret_value())


async def start_worker(settings: Settings, veille: Veille) -> None:
    """The worker role's Discord: REST only (downloads, removals, cards, DMs), logged in but
    never connected to the gateway, so it receives no events and holds no shard."""
    if settings.discord_token is None:
        raise RuntimeError("DISCORD_TOKEN is not set")
    apply_api_url(settings.discord_api_url)
    client = discord.Client(intents=discord.Intents(guilds=True))  # never sent: no gateway
    async with client:
        await client.login(settings.discord_token.get_secret_value())
        gateway = DiscordGateway(client)
        veille.register_gateway(gateway)
        try:
            await asyncio.Event().wait()
        finally:
            await gateway.close()
