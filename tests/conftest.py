"""Shared fixtures: settings on a temporary data dir and a real database migrated by Alembic:
an SQLite file, or — when VEILLE_TEST_POSTGRES_URL names a PostgreSQL server (`.ci/run`
starts a throwaway one) — a fresh PostgreSQL database for each test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.store import engine as store

POSTGRES = os.environ.get("VEILLE_TEST_POSTGRES_URL", "")  # postgresql+asyncpg://user@host:port
# For tests of SQLite's own behaviour (pragmas, the file's bytes): skipped in the PostgreSQL pass.
sqlite_only = pytest.mark.skipif(bool(POSTGRES), reason="SQLite's own behaviour")


async def _postgres(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES.replace("+asyncpg", "") + "/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    if not POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"
        return
    name = f"veille_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings isolated from the developer's .env and environment."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    yield Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-not-for-production",
        detectors="hashes,text",
    )


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A real SQLite file, migrated to head through Alembic."""
    await asyncio.to_thread(store.upgrade, db_url)
    eng = store.create_engine(db_url)
    yield eng
    await eng.dispose()
