"""Purged evidence leaves nothing behind in the SQLite file: with `secure_delete` on, the freed
pages of a purged ciphertext are zeroed, so none of its bytes can be carved out of the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.core.clock import ManualClock
from bot.core.service import Veille
from bot.core.types import SetupInput
from bot.store.models import Evidence
from tests.conftest import sqlite_only
from tests.core.conftest import ADMIN, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pieces(blob: bytes, size: int = 32) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob) - size, size)]


@sqlite_only
async def test_purged_ciphertext_no_longer_appears_in_the_file(
    veille: Veille, gateway: RecordingGateway, clock: ManualClock, db_url: str
) -> None:
    async with veille.store.read() as session:
        assert (await session.execute(text("PRAGMA secure_delete"))).scalar_one() == 1
    await veille.save_setup("discord", WS, ADMIN, SetupInput(retention_days=7))
    for index in range(3):
        decision = await veille.handle_message(
            message(
                f"m{index}", images=[shapes_png(red=1.0, seed=index, size=256)], gateway=gateway
            )
        )
        assert decision.delete
    async with veille.store.read() as session:
        kept = [e.ciphertext for e in (await session.execute(select(Evidence))).scalars()]
    assert all(kept) and len(kept) == 3 and sum(len(c or b"") for c in kept) > 3_000
    chunks = [p for c in kept for p in pieces(c or b"")]

    def file_bytes() -> bytes:
        path = Path(db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    async with veille.store.write() as session:
        await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    before = file_bytes()
    assert sum(chunk in before for chunk in chunks) == len(chunks)  # the test can see them
    clock.advance(timedelta(days=8))
    assert await veille.purge_expired_evidence() == 3
    async with veille.store.write() as session:
        await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    after = file_bytes()
    assert [chunk for chunk in chunks if chunk in after] == []
