"""`make test` leaves nothing in the checkout: the default data dir points outside it for the
whole run (tests/conftest.py), and the run fails when an ignored file appears in the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.conftest import ROOT, ignored_files


def test_the_default_data_dir_is_outside_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)  # as when `make test` runs a test that builds Settings itself
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    cache = settings.cache_dir.resolve()
    assert not cache.is_relative_to(ROOT), cache


def test_ignored_files_are_listed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    try:
        subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no git here")
    (repo / ".gitignore").write_text(".veille/\n*.db\n.venv/\n")
    (repo / "kept.py").write_text("")
    (repo / ".venv").mkdir()
    (repo / ".venv" / "tool.py").write_text("")
    assert ignored_files(repo) == set()

    (repo / ".veille" / "cache").mkdir(parents=True)
    (repo / ".veille" / "cache" / "a.npz").write_bytes(b"x")
    (repo / "veille.db").write_bytes(b"")
    assert ignored_files(repo) == {".veille/cache/a.npz", "veille.db"}
