from __future__ import annotations

from pathlib import Path

import pytest

PLATFORM_VARS = (
    "DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_ADMIN_TOKEN",
    "VEILLE_SECRET_KEY",
    "VEILLE_DATABASE_URL",
    "VEILLE_DETECTORS",
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory and environment, as a newcomer's machine has."""
    monkeypatch.chdir(tmp_path)
    for name in PLATFORM_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VEILLE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}")
    return tmp_path
