"""What the bot lacks in the channels chosen in the setup wizard, read from discord.py's cache
(roles and channel permission overwrites from GUILD_CREATE): said to the admin, never enforced."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import discord

from bot.core.i18n import t

# What Veille does in each place: posts cards with buttons and previews; deletes and times out
# anywhere in the server.
CHANNEL_NEEDS = (
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
)
GUILD_NEEDS = ("manage_messages",)
TIMEOUT_NEEDS = ("moderate_members",)


def missing_permissions(
    interaction: discord.Interaction[Any],
    channel_ids: Iterable[str | None],
    *,
    timeout: bool,
    locale: str,
) -> list[str]:
    """One localised line per place where the bot lacks a permission; [] when all is well.
    `channel_ids` are the channels chosen (None: not chosen yet); `timeout`: whether the
    workspace times out offenders. Plain values, so this module does not import the wizard."""
    guild = interaction.guild
    if guild is None or guild.me is None:
        return []
    me = guild.me
    problems: list[str] = []
    for channel_id in channel_ids:
        channel = guild.get_channel(int(channel_id)) if channel_id else None
        if channel is None:
            continue
        perms = channel.permissions_for(me)
        lacking = [name for name in CHANNEL_NEEDS if not getattr(perms, name)]
        if lacking:
            problems.append(
                t(
                    "discord.wizard.missing_in",
                    locale,
                    channel=f"<#{channel.id}>",
                    permissions=", ".join(_label(n, locale) for n in lacking),
                )
            )
    needs = GUILD_NEEDS + (TIMEOUT_NEEDS if timeout else ())
    lacking = [name for name in needs if not getattr(me.guild_permissions, name)]
    if lacking:
        problems.append(
            t(
                "discord.wizard.missing_server",
                locale,
                permissions=", ".join(_label(n, locale) for n in lacking),
            )
        )
    return problems


def _label(permission: str, locale: str) -> str:
    return t(f"discord.perm.{permission}", locale)
