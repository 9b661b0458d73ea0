"""The async engine (aiosqlite by default), SQLite pragmas, sessions and the migration check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class DatabaseNotMigrated(RuntimeError):
    """The database schema is missing or older than this code."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Purged evidence must not survive in free pages: SQLite's default (often off) leaves freed
    # ciphertext readable in the file. ON zeroes every freed or rewritten cell. (PostgreSQL:
    # freed tuples stay until VACUUM; the retention job relies on autovacuum, see README.)
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _rollback_if_open(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    """The hand-back of an SQLite connection to the pool: roll back only a transaction still
    open. The default reset rolls back every time, and after a commit (every write) or the
    session's own rollback there is nothing left to undo, yet each costs one more trip to
    aiosqlite's thread (a tenth of a clean message's database time). sqlite3 knows whether a
    transaction is open without a trip (`in_transaction`)."""
    if state.terminate_only or state.transaction_was_reset or not state.asyncio_safe:
        return  # discarded, already reset, or garbage-collected (nothing can be awaited)
    try:
        still_open = record.driver_connection.in_transaction
    except ValueError:  # aiosqlite's connection already closed: nothing is open on it
        return
    if still_open:
        dbapi_connection.rollback()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; on SQLite with WAL, busy_timeout, foreign keys and secure_delete on
    every connection, and a connection handed back rolled back only when a transaction is
    still open on it (_rollback_if_open)."""
    ensure_sqlite_dir(url)
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True)
    engine = create_async_engine(url, pool_reset_on_return=None)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    event.listen(engine.sync_engine.pool, "reset", _rollback_if_open)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on error, for a one-shot command that
    is the only writer in its process; a running Veille writes through `repos.Store.write()`,
    whose lock SQLite needs."""
    async with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def check_migrated(engine: AsyncEngine) -> None:
    """Raise DatabaseNotMigrated unless the database is at the head revision."""
    url = engine.url.render_as_string(hide_password=False)
    current, head = await current_revision(engine), head_revision(url)
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise DatabaseNotMigrated(f"the database is {state}, this version needs {head}")


def upgrade(url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` (synchronous: call it outside the event loop)."""
    from alembic import command

    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)
