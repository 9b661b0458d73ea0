"""`veille db upgrade | current | revision`."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click

from bot.cli.common import get_settings, stdout
from bot.core.i18n import t
from bot.store import engine as store


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _current(url: str) -> str | None:
    eng = store.create_engine(url)
    try:
        return await store.current_revision(eng)
    finally:
        await eng.dispose()


def register(cli: click.Group) -> None:
    @cli.group()
    def db() -> None:
        """Database schema migrations."""

    @db.command()
    @click.option("--revision", default="head", show_default=True)
    def upgrade(revision: str) -> None:
        """Create or migrate the database schema (a no-op when up to date)."""
        settings = get_settings()
        url = settings.database_url
        before = asyncio.run(_current(url))
        store.upgrade(url, revision)
        after = asyncio.run(_current(url))
        key = "cli.db_already" if before == after else "cli.db_upgraded"
        stdout.print(t(key, settings.default_locale, url=_redact_url(url), revision=after))

    @db.command()
    def current() -> None:
        """Print the database's revision and the code's head revision."""
        settings = get_settings()
        url = settings.database_url
        stdout.print(
            t(
                "cli.db_current",
                settings.default_locale,
                database=asyncio.run(_current(url)) or "-",
                code=store.head_revision(url),
            )
        )

    @db.command()
    @click.option("-m", "--message", required=True)
    def revision(message: str) -> None:
        """Autogenerate a migration from the models (for developers)."""
        from alembic import command

        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
            store.upgrade(url)
            command.revision(store.alembic_config(url), message=message, autogenerate=True)
