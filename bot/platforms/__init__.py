"""The chat platforms Veille can run on: one descriptor each (bot/platforms/base.py).

This tuple is the one place a platform is registered: bot/app.py starts, `veille run`,
`doctor`, `init` and the preflight checks ask, and the log redacts what it lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.platforms.base import PlatformDescriptor
from bot.platforms.discord.descriptor import DISCORD
from bot.platforms.slack.descriptor import SLACK

if TYPE_CHECKING:
    from bot.settings import Settings

PLATFORMS: tuple[PlatformDescriptor, ...] = (DISCORD, SLACK)


def configured(settings: Settings) -> list[PlatformDescriptor]:
    """The platforms `settings` configures, in registration order."""
    return [platform for platform in PLATFORMS if platform.configured(settings)]


def secrets(settings: Settings) -> list[str]:
    """Every platform secret `settings` holds, for redaction (bot/log.py)."""
    return [
        value.get_secret_value()
        for platform in PLATFORMS
        for value in platform.secrets(settings)
        if value is not None
    ]
