"""`veille run`, `veille db upgrade` and `veille init` as a newcomer meets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from dotenv import dotenv_values

from bot.cli import cli


def veille(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a subprocess: exit codes and output exactly as users see them."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        timeout=120,
    )


def test_run_without_tokens_exits_2_with_guidance(workdir: Path) -> None:
    result = veille("run", cwd=workdir)
    assert result.returncode == 2
    for hint in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "veille init"):
        assert hint in result.stderr


def test_run_guidance_is_localised(workdir: Path) -> None:
    result = veille("run", cwd=workdir, env={"VEILLE_LOCALE": "fr"})
    assert result.returncode == 2
    assert "Aucune plateforme" in result.stderr


def test_run_refuses_unmigrated_database(workdir: Path) -> None:
    result = veille("run", cwd=workdir, env={"DISCORD_TOKEN": "x" * 30})
    assert result.returncode == 2
    assert "veille db upgrade" in result.stderr


def test_db_upgrade_creates_schema_then_is_a_no_op(workdir: Path) -> None:
    first = veille("db", "upgrade", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout and (workdir / "veille.db").exists()
    second = veille("db", "upgrade", cwd=workdir)
    assert second.returncode == 0
    assert "already up to date" in second.stdout


def test_invalid_setting_is_a_clear_usage_error(workdir: Path) -> None:
    result = veille("run", cwd=workdir, env={"VEILLE_SLACK_MODE": "carrier-pigeon"})
    assert result.returncode == 2
    assert "slack_mode" in result.stderr.lower() or "VEILLE_SLACK_MODE" in result.stderr


def test_init_non_interactive_writes_env_and_keeps_the_key(workdir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "-y", "--discord-token", "tok-discord-123456"])
    assert result.exit_code == 0, result.output
    env_file = workdir / ".env"
    values = dotenv_values(env_file)
    assert values["DISCORD_TOKEN"] == "tok-discord-123456"
    assert len(values["VEILLE_SECRET_KEY"] or "") >= 32
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    key = values["VEILLE_SECRET_KEY"]
    again = runner.invoke(
        cli, ["init", "-y", "--slack-bot-token", "xoxb-1", "--slack-app-token", "xapp-1"]
    )
    assert again.exit_code == 0, again.output
    values = dotenv_values(env_file)
    assert values["VEILLE_SECRET_KEY"] == key  # never rotated: evidence is encrypted with it
    assert values["DISCORD_TOKEN"] == "tok-discord-123456"
    assert values["VEILLE_SLACK_MODE"] == "socket"


def test_init_without_terminal_or_flags_refuses(workdir: Path) -> None:
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 2
    assert not (workdir / ".env").exists()


def test_scan_without_inputs_is_a_usage_error(workdir: Path) -> None:
    result = veille("scan", cwd=workdir)
    assert result.returncode == 2
