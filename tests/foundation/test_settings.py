"""The one Settings object and its documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _aliases() -> list[str]:
    names = []
    for field in Settings.model_fields.values():
        choices = getattr(field.validation_alias, "choices", [])
        names.extend(c for c in choices if isinstance(c, str) and c.isupper())
    return names


def test_every_variable_is_documented_in_env_example() -> None:
    example = (ROOT / "deploy" / ".env.example").read_text("utf-8")
    missing = [name for name in _aliases() if f"\n{name}=" not in example]
    assert missing == []


def test_architecture_contract_names_exist() -> None:
    contract = {
        "VEILLE_DATABASE_URL",
        "VEILLE_SECRET_KEY",
        "VEILLE_CLIP_MODEL",
        "VEILLE_CLIP_PRETRAINED",
        "VEILLE_DEVICE",
        "VEILLE_FETCH_ALLOW_LOOPBACK",
        "DISCORD_TOKEN",
        "DISCORD_API_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_API_URL",
        "VEILLE_SLACK_MODE",
        "VEILLE_HTTP_PORT",
    }
    assert contract <= set(_aliases())


def test_env_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-file\nVEILLE_SLACK_MODE=http\n")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-env")
    settings = Settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-file"
    assert settings.slack_configured  # http mode needs the signing secret, which came from env
    assert "xoxb-from-file" not in repr(settings)  # secrets never print


def test_clip_threads_default_to_half_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert Settings(_env_file=None).inference_threads == 1  # type: ignore[call-arg]
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert Settings(_env_file=None).inference_threads == 8  # type: ignore[call-arg]
    assert Settings(_env_file=None, torch_threads=3).inference_threads == 3  # type: ignore[call-arg]
