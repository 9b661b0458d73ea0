"""Shared fixtures: settings on a temporary data dir and a real database migrated by Alembic:
an SQLite file, or — when VEILLE_TEST_POSTGRES_URL names a PostgreSQL server (`.ci/run`
starts a throwaway one) — a fresh PostgreSQL database for each test."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.store import engine as store

ROOT = Path(__file__).resolve().parents[1]
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


# Nothing a test does may land in the checkout. The default data dir (`.veille`, relative to the
# working directory: the checkout when pytest runs from it) is a throwaway folder for the whole
# run, so a test that builds Settings without `data_dir` writes its caches there; and the run
# fails when it leaves a new file that git ignores (a cache, a database, a .env) in the checkout.
# New files only: on a fresh clone every leftover is new, and a developer's own files (a cache a
# script rewrites meanwhile) are not the tests'. Tool caches are the tools' own; bench/results
# is written by `make bench`, not by tests.
NOT_LEFTOVERS = (".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", "bench/results")
_run: dict[str, object] = {}


def ignored_files(root: Path = ROOT) -> set[str] | None:
    """Files git ignores under `root`, tool caches aside; None without git."""
    excludes = [f":(exclude){p}" for p in NOT_LEFTOVERS]
    excludes += [":(exclude,glob)**/__pycache__/**", ":(exclude,glob)*.egg-info/**"]
    try:
        listed = subprocess.run(
            [
                "git",
                "ls-files",
                "--others",
                "--ignored",
                "--exclude-standard",
                "-z",
                "--",
                ".",
                *excludes,
            ],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return set(filter(None, listed.decode("utf-8", "replace").split("\0")))


def pytest_configure(config: pytest.Config) -> None:
    data_dir = tempfile.mkdtemp(prefix="veille-tests-")
    _run.update(data_dir=data_dir, before=ignored_files(), saved=os.environ.get("VEILLE_DATA_DIR"))
    os.environ["VEILLE_DATA_DIR"] = data_dir


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = _run.get("before")
    after = ignored_files() if isinstance(before, set) else None
    if isinstance(before, set) and after is not None:
        left = sorted(after - before)
        if left:
            shown = "\n  ".join(left[:20]) + ("\n  …" if len(left) > 20 else "")
            session.config.get_terminal_writer().line(
                f"\nThe tests left files in the checkout (use tmp_path):\n  {shown}", red=True
            )
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = _run.pop("saved", None)
    if isinstance(saved, str):
        os.environ["VEILLE_DATA_DIR"] = saved
    else:
        os.environ.pop("VEILLE_DATA_DIR", None)
    data_dir = _run.pop("data_dir", None)
    if isinstance(data_dir, str):
        shutil.rmtree(data_dir, ignore_errors=True)
