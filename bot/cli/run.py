"""`veille run`: start the configured chat platforms."""

from __future__ import annotations

import asyncio

import click

from bot.cli.common import EXIT_USAGE, fail, get_settings
from bot.core.i18n import t


def register(cli: click.Group) -> None:
    @cli.command()
    def run() -> None:
        """Start Veille on every configured platform (Discord, Slack)."""
        settings = get_settings()
        if not (settings.discord_configured or settings.slack_configured):
            fail(t("cli.no_platform", settings.default_locale), EXIT_USAGE)
        from bot.app import run_forever
        from bot.store.engine import DatabaseNotMigrated

        try:
            asyncio.run(run_forever(settings))
        except DatabaseNotMigrated as exc:
            fail(t("cli.not_migrated", settings.default_locale, detail=str(exc)), EXIT_USAGE)
        except KeyboardInterrupt:
            pass
