"""Revision 0002 (hash banks scoped to communities) on a real SQLite file holding 0001 data:
every entry keeps its owner, one that came from a ticket gets the ticket's workspace back, and
two communities may then bank the same value."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from bot.store import engine as store


async def test_existing_entries_keep_their_workspace(db_url: str) -> None:
    await asyncio.to_thread(store.upgrade, db_url, "0001")
    eng = store.create_engine(db_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with eng.begin() as conn:
        for wid, ext in ((1, "g1"), (2, "g2")):
            await conn.execute(
                text(
                    "INSERT INTO workspaces (id, platform, external_id, name, locale, timezone, "
                    "moderator_role_ids, moderator_user_ids, admin_role_ids, allow_role_ids, sensitivity, "
                    "actions, digest_schedule, retention_days, sla_hours, setup_completed, created_at, "
                    "updated_at) VALUES (:id, 'discord', :ext, '', 'en', 'UTC', '[]', '[]', '[]', '[]', "
                    "'standard', '{}', 'off', 30, 24, true, :now, :now)"
                ),
                {"id": wid, "ext": ext, "now": now},
            )
        await conn.execute(
            text(
                "INSERT INTO tickets (id, workspace_id, kind, channel_id, message_id, media_key, author_id, "
                "status, severity, priority, categories, scores, reasons, message_removed, created_at, "
                "updated_at) VALUES (7, 2, 'detection', 'c', 'm', '', 'a', 'resolved', 'REVIEW', false, '[]', "
                "'{}', '[]', false, :now, :now)"
            ),
            {"now": now},
        )
        rows = [
            (1, "confirmed", "a" * 64, 1, None),
            (2, "confirmed", "b" * 64, None, 7),
            (3, "programme", "c" * 64, None, None),
        ]
        for eid, bank, value, wid, tid in rows:
            await conn.execute(
                text(
                    "INSERT INTO hash_entries (id, bank, kind, value, source, added_by, ticket_id, "
                    "workspace_id, added_at) VALUES (:id, :bank, 'sha256', :value, 'confirmed', '', :tid, "
                    ":wid, :now)"
                ),
                {"id": eid, "bank": bank, "value": value, "tid": tid, "wid": wid, "now": now},
            )
        if conn.dialect.name == "postgresql":  # explicit ids do not move PostgreSQL's sequences
            for table in ("workspaces", "tickets", "hash_entries"):  # fixed names, not input
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                )
    await eng.dispose()

    await asyncio.to_thread(store.upgrade, db_url)
    eng = store.create_engine(db_url)
    async with eng.begin() as conn:
        owners = dict((await conn.execute(text("SELECT id, workspace_id FROM hash_entries"))).all())
        assert owners == {
            1: 1,
            2: 2,
            3: None,
        }  # 2 came from workspace 2's ticket; 3 is the operator's
        await conn.execute(
            text(  # the same value in community 2's own bank of that name
                "INSERT INTO hash_entries (bank, kind, value, source, added_by, workspace_id, added_at) "
                "VALUES ('confirmed', 'sha256', :value, 'confirmed', '', 2, :now)"
            ),
            {"value": "a" * 64, "now": now},
        )
    await eng.dispose()
    await asyncio.to_thread(store.downgrade, db_url, "0001")  # and back, duplicates folded
