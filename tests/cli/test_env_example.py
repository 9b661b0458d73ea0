"""`cp deploy/.env.example .env` is what the example's header suggests: every variable is listed
there, most of them empty, and an empty value must mean "not set" — not a token, not a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.cli.conftest import REPO, Veille

EXAMPLE = REPO / "deploy" / ".env.example"


@pytest.fixture
def from_example(veille: Veille, tmp_path: Path) -> Veille:
    """A checkout where `.env` is the example and nothing Veille reads is in the environment."""
    shutil.copy(EXAMPLE, tmp_path / ".env")
    env = {
        k: v for k, v in veille.env.items() if not k.startswith(("VEILLE_", "DISCORD_", "SLACK_"))
    }
    return Veille(tmp_path, env)


def test_copied_example_then_run_exits_2_with_the_guidance(from_example: Veille) -> None:
    result = from_example("run")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "No chat platform is configured" in result.stderr
    assert "DISCORD_TOKEN" in result.stderr and "veille init" in result.stderr


def test_copied_example_then_doctor_sees_no_platform(from_example: Veille) -> None:
    result = from_example("doctor", "--no-model", "--offline")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "Discord, Slack" not in result.stdout
    assert "no Discord or Slack token is set" in result.stdout


def test_empty_values_are_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DISCORD_TOKEN",
        "SLACK_BOT_TOKEN",
        "VEILLE_CLIP_PROMPTS",
        "VEILLE_SECRET_KEY",
        "VEILLE_HTTP_PORT",
        "VEILLE_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_APP_TOKEN", "")  # empty in the environment too
    monkeypatch.setenv("VEILLE_HTTP_PORT", "  ")
    settings = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    assert settings.discord_token is None and settings.slack_bot_token is None
    assert settings.slack_app_token is None and settings.secret_key is None
    assert settings.clip_prompts is None  # not Path("") — the current folder
    assert settings.http_port == 3000
    assert not settings.discord_configured and not settings.slack_configured
    assert Settings(discord_token="").discord_token is None  # a blank flag as well
