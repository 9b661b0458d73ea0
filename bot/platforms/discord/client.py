"""The discord.py client Veille runs on Discord: connection, intents, and event wiring.

It only translates: messages become `MessageEvent`s for `Veille.handle_message`, interactions
go to the command tree and the `TicketButton` dynamic items, and the core acts back on Discord
through `DiscordGateway`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands

from bot.platforms.discord.events import AiApps, to_event, worth_rescanning
from bot.platforms.discord.gateway import DiscordGateway

if TYPE_CHECKING:
    from bot.core.service import Veille

log = logging.getLogger(__name__)


def apply_api_url(api_url: str | None) -> None:
    """Point discord.py's REST client at `api_url` (e.g. a proxy or a test server).

    discord.py builds every REST URL from the class attribute `Route.BASE` (its own
    `_set_api_version` sets it the same way), so this is process-wide: one Discord API per
    process. The gateway address is not configured: it comes from GET /gateway/bot.
    """
    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")


@dataclass(frozen=True)
class DiscordOptions:
    """Adapter options that are not secrets. `sync_guild_ids`: also sync the commands to these
    guilds (instant, unlike global commands); `guild_ready_timeout`: discord.py's wait for
    late GUILD_CREATEs before `on_ready`."""

    ai_apps: AiApps = field(default_factory=AiApps)
    sync_guild_ids: tuple[int, ...] = ()
    guild_ready_timeout: float = 2.0
    max_ratelimit_timeout: float = 60.0


def intents() -> discord.Intents:
    """Guilds, guild messages and message content: what scanning needs. No member intent:
    message and interaction payloads carry the author's roles."""
    value = discord.Intents.none()
    value.guilds = True
    value.guild_messages = True
    value.message_content = True
    value.dm_messages = True
    return value


class VeilleClient(discord.AutoShardedClient):
    """AutoShardedClient because it asks GET /gateway/bot for the gateway address and shard
    count (plain `Client` always dials the hard-coded wss://gateway.discord.gg).

    `shard_count` and `shard_ids` (VEILLE_DISCORD_SHARD_COUNT/_IDS) split the guilds between
    processes: Discord sends a guild's events and interactions only to the connection of shard
    (guild_id >> 22) % shard_count, so each process handles its own guilds and nothing else.
    Neither: Discord's recommended count, all shards in this process."""

    def __init__(
        self,
        veille: Veille,
        options: DiscordOptions | None = None,
        *,
        shard_count: int | None = None,
        shard_ids: tuple[int, ...] | None = None,
    ) -> None:
        self.options = options or DiscordOptions()
        super().__init__(
            shard_count=shard_count,
            # None is discord.py's own default (all shards); its type stub just does not say so.
            shard_ids=list(shard_ids) if shard_ids is not None else None,  # type: ignore[arg-type]
            intents=intents(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=self.options.guild_ready_timeout,
            max_ratelimit_timeout=self.options.max_ratelimit_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.veille = veille
        self.open_modals: set[str] = set()  # custom ids of the modals this process opened
        self.tree: app_commands.CommandTree[VeilleClient] = app_commands.CommandTree(self)
        self.gateway = DiscordGateway(self)

    async def setup_hook(self) -> None:
        """Runs once after login, before the gateway connects: register and sync commands."""
        from bot.platforms.discord.actions import TicketButton
        from bot.platforms.discord.commands import register_commands
        from bot.platforms.discord.translator import VeilleTranslator

        self.veille.register_gateway(self.gateway)
        self.add_dynamic_items(TicketButton)
        register_commands(self.tree)
        await self.tree.set_translator(VeilleTranslator())
        from bot.platforms.discord.command_sync import sync_if_changed

        data_dir = self.veille.settings.data_dir
        await sync_if_changed(self.tree, self.application_id, data_dir)
        for guild_id in self.options.sync_guild_ids:
            self.tree.copy_global_to(guild=discord.Object(id=guild_id))
            await sync_if_changed(
                self.tree, self.application_id, data_dir, guild=discord.Object(id=guild_id)
            )

    async def launch_shards(self) -> None:
        """discord.py's own, except that the gateway address always comes from GET /gateway/bot:
        given a shard count, discord.py would dial the hard-coded wss://gateway.discord.gg,
        past DISCORD_API_URL (a proxy, the test server)."""
        if self.is_closed():
            return
        recommended, url, _ = await self.http.get_bot_gateway()
        if self.shard_count is None:
            self.shard_count = recommended
        elif self.shard_count < recommended:
            log.warning(
                "discord: %d shards configured, Discord recommends %d (VEILLE_DISCORD_SHARD_COUNT)",
                self.shard_count,
                recommended,
            )
        self._connection.shard_count = self.shard_count
        shard_ids = self.shard_ids or list(range(self.shard_count))
        self._connection.shard_ids = shard_ids
        log.info("discord: holding shards %s of %d", shard_ids, self.shard_count)
        for shard_id in shard_ids:
            await self.launch_shard(yarl.URL(url), shard_id, initial=shard_id == shard_ids[0])

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A modal opened before a restart (a moderator's note, a person's report) is submitted
        to no live modal, and discord.py drops it: Veille's modals carry everything in their
        custom ids, so the submission is resumed from there instead of failing."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id") or "")
        if not custom_id or custom_id in self.open_modals:
            return  # discord.py hands it to the modal this process opened
        from bot.platforms.discord.actions import resume_note
        from bot.platforms.discord.replies import modal_values
        from bot.platforms.discord.victims import resume_report

        values = modal_values(list(data.get("components") or []))
        try:
            if not await resume_note(interaction, custom_id, values):
                await resume_report(interaction, custom_id, values)
        except Exception:  # one bad submission must not stop the dispatch
            log.exception("resuming modal %s failed", custom_id)

    async def on_ready(self) -> None:
        log.info("discord: connected as %s, in %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self._handle(message, edited=False)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Edits are rescanned when they change the text or add media (events.worth_rescanning)."""
        if worth_rescanning(payload.cached_message, payload.message):
            await self._handle(payload.message, edited=True)

    async def _handle(self, message: discord.Message, *, edited: bool) -> None:
        if message.guild is None or self.user is None or message.author.id == self.user.id:
            return  # DMs are not moderated; our own posts (quarantine previews) never are
        event = to_event(message, self.options.ai_apps, edited=edited)
        try:
            await self.veille.handle_message(event)
        except Exception:  # one bad message must not stop the event loop's dispatch
            log.exception("handle_message failed for message %s", message.id)

    async def close(self) -> None:
        await self.gateway.close()
        await super().close()
