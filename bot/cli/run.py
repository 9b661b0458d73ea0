"""`veille run`: start the configured chat platforms."""

from __future__ import annotations

import asyncio

import click

from bot.cli.common import EXIT_USAGE, console, fail, get_settings
from bot.core.i18n import t
from bot.settings import Settings


async def _check_database(settings: Settings) -> None:
    from bot.store import engine as store

    engine = store.create_engine(settings.database_url)
    try:
        await store.check_migrated(engine)
    finally:
        await engine.dispose()


def register(cli: click.Group) -> None:
    @cli.command()
    def run() -> None:
        """Start Veille on every configured platform (Discord, Slack)."""
        settings = get_settings()
        locale = settings.default_locale
        if not (settings.discord_configured or settings.slack_configured):
            fail(t("cli.no_platform", locale), EXIT_USAGE)
        from bot.store.engine import DatabaseNotMigrated

        try:
            asyncio.run(_check_database(settings))
        except DatabaseNotMigrated as exc:
            fail(t("cli.not_migrated", locale, detail=str(exc)), EXIT_USAGE)
        platforms = [p for p, ok in (("Discord", settings.discord_configured),
                                     ("Slack", settings.slack_configured)) if ok]
        console.print(t("cli.starting", locale, platforms=", ".join(platforms)))
        from bot.app import run_forever
        from detectors.base import DetectorError

        try:
            asyncio.run(run_forever(settings))
        except KeyboardInterrupt:
            pass
        except DetectorError as exc:  # missing CLIP weights and the like: guidance, no traceback
            fail(t("cli.config_error", locale, detail=str(exc)), EXIT_USAGE)
