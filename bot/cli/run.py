"""`veille run`: start the configured chat platforms.

Everything a person can get wrong is checked before any platform is dialled, local things
first: a platform configured, the database at the code's revision, the secret key, the
detectors loadable (bot/app.py), then the tokens accepted, each platform reachable and the HTTP
port free (bot/cli/preflight.py). Each stops with one message (bot/cli/failures.py)."""

from __future__ import annotations

import asyncio

import click

from bot.cli.common import (
    EXIT_USAGE,
    console,
    fail,
    get_settings,
    missing_sqlite_file,
    schema_state,
)
from bot.cli.failures import EXIT_RUNTIME, Failure
from bot.core.i18n import t
from bot.settings import Settings


async def _check_database(settings: Settings) -> None:
    from bot.store import engine as store

    locale = settings.default_locale
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:  # said, not created: `veille db upgrade` creates it
        raise Failure(
            t("cli.not_migrated", locale, detail=t("doctor.db_missing", locale, path=missing))
        )
    try:
        engine = store.create_engine(settings.database_url)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise Failure(
            t("failure.database", locale, detail=f"{exc.strerror}: {exc.filename}"), EXIT_RUNTIME
        ) from exc
    try:
        current = await store.current_revision(engine)
        head = store.head_revision(settings.database_url)
    finally:
        await engine.dispose()
    if current != head:
        raise Failure(t("cli.not_migrated", locale, detail=schema_state(current, head, locale)))


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--role",
        type=click.Choice(["all", "gateway", "worker"]),
        default=None,
        help="all: one process does everything (default, VEILLE_ROLE). gateway: holds the "
        "platform connections and records events. worker: scans, decides and acts on them.",
    )
    def run(role: str | None) -> None:
        """Start Veille on every configured chat platform."""
        settings = get_settings()
        if role is not None:
            settings = settings.model_copy(update={"role": role})
        locale = settings.default_locale
        from bot.platforms import PLATFORMS, configured

        for platform in PLATFORMS:
            problem = platform.incomplete(settings, locale)
            if problem is not None:
                fail(problem)
        platforms = [platform.title for platform in configured(settings)]
        if not platforms:
            fail(t("cli.no_platform", locale), EXIT_USAGE)
        asyncio.run(_check_database(settings))
        if settings.secret_key is None and settings.evidence != "hashes-only":
            # Without a key every quarantine would silently keep hashes only: say it up front.
            fail(t("failure.no_secret_key", locale), EXIT_USAGE)
        from bot.app import run_forever
        from bot.cli.preflight import check_platforms

        if settings.role == "all":
            console.print(t("cli.starting", locale, platforms=", ".join(platforms)))
        else:
            names = ", ".join(platforms)
            console.print(t("cli.starting_role", locale, role=settings.role, platforms=names))
        try:
            # What is local first (the detectors load: no weights is exit 2), then the network.
            asyncio.run(run_forever(settings, before_platforms=lambda: check_platforms(settings)))
        except KeyboardInterrupt:
            pass
