"""Several processes started at once on one database (a gateway and its workers, each running
`veille db upgrade` first) migrate it once: the others wait for the first and find it at head.
On PostgreSQL a transaction-scoped advisory lock (migrations/env.py) is what makes it so;
without it two of three concurrent upgrades failed here on a duplicate type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.engine import head_revision
from tests.conftest import POSTGRES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not POSTGRES, reason="the PostgreSQL pass: SQLite runs one process")
def test_three_upgrades_at_once_all_succeed(db_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VEILLE_DATABASE_URL": db_url,
        "VEILLE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
    }
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in upgrades]
    assert [p.returncode for p in upgrades] == [0, 0, 0], outputs
    current = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert current.returncode == 0, current
    assert head_revision(db_url) in current.stdout and "0000" not in current.stdout, current.stdout
