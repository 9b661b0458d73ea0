"""Alembic migrations against a real SQLite file: upgrade, round trip, models == migrations."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import bot.store.models as models
from bot.store import engine as store
from tests.conftest import sqlite_only


async def _tables(url: str) -> set[str]:
    eng = store.create_engine(url)
    async with eng.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await eng.dispose()
    return names


async def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    await asyncio.to_thread(store.upgrade, db_url)
    tables = await _tables(db_url)
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    eng = store.create_engine(db_url)
    await store.check_migrated(eng)  # does not raise at head
    await eng.dispose()


async def test_unmigrated_database_is_refused(db_url: str) -> None:
    eng = store.create_engine(db_url)
    with pytest.raises(store.DatabaseNotMigrated, match="empty"):
        await store.check_migrated(eng)
    await eng.dispose()


async def test_downgrade_upgrade_round_trip(db_url: str) -> None:
    await asyncio.to_thread(store.upgrade, db_url)
    await asyncio.to_thread(store.downgrade, db_url, "base")
    assert await _tables(db_url) <= {"alembic_version"}
    await asyncio.to_thread(store.upgrade, db_url)
    assert "tickets" in await _tables(db_url)


async def test_models_and_migrations_agree(db_url: str) -> None:
    await asyncio.to_thread(store.upgrade, db_url)
    eng = store.create_engine(db_url)
    async with eng.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata
            )
        )
    await eng.dispose()
    assert diff == [], f"models differ from migrations: {diff}"


@sqlite_only
async def test_sqlite_pragmas_are_on(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert (journal, fks, timeout) == ("wal", 1, 5000)


async def test_one_message_cannot_open_two_tickets_for_one_media(engine) -> None:  # type: ignore[no-untyped-def]
    factory = store.session_factory(engine)
    async with store.transaction(factory) as session:
        workspace = models.Workspace(platform="discord", external_id="g1")
        session.add(workspace)
        await session.flush()
        ws_id = workspace.id
    ticket = {"workspace_id": ws_id, "channel_id": "c", "message_id": "m", "media_key": "a1"}
    async with store.transaction(factory) as session:
        session.add(models.Ticket(**ticket))
    with pytest.raises(IntegrityError):
        async with store.transaction(factory) as session:
            session.add(models.Ticket(**ticket))
    async with store.transaction(factory) as session:  # another media of the same message is fine
        session.add(models.Ticket(**{**ticket, "media_key": "a2"}))
