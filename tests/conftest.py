"""Shared fixtures: settings on a temporary data dir and a real SQLite file migrated by Alembic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.store import engine as store


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"


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
