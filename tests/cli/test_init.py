"""`veille init` as a person runs it: in a terminal (a pseudo-terminal here), answering each
question. Slack's other secrets are not asked once Slack is skipped; with --force an empty
answer removes a token; the language is asked and written; "Next:" names doctor and prepare."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

from dotenv import dotenv_values

from tests.cli.conftest import Veille


def in_terminal(
    veille: Veille, args: list[str], dialogue: list[tuple[str, str]], **extra_env: str
) -> tuple[int, str]:
    """Run `veille ARGS` on a pseudo-terminal; answer each prompt containing `expect` with
    `answer`, in order. Returns the exit status and everything the terminal showed."""
    env = {**veille.env, **extra_env, "COLUMNS": "100", "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader whose controlling terminal is the pty
        os.chdir(veille.cwd)
        os.execve(sys.executable, [sys.executable, "-m", "bot.cli", *args], env)
    shown, pending = "", list(dialogue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode("utf-8", "replace")
            except OSError:  # the child closed the terminal: it has finished
                break
            if not chunk:
                break
            shown += chunk
        if pending and pending[0][0] in shown.rsplit("\n", 1)[-1]:
            expect, answer = pending.pop(0)
            shown += "\n"  # the next prompt starts after this one
            os.write(fd, (answer + "\n").encode())
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert not pending, f"never asked {pending[0][0]!r}:\n{shown}"
    return os.waitstatus_to_exitcode(status), shown


def test_skipping_slack_skips_its_other_secrets_and_next_names_doctor_and_prepare(
    veille: Veille, tmp_path: Path
) -> None:
    code, shown = in_terminal(
        veille,
        ["init"],
        [
            ("Language", ""),
            ("Discord bot token", "discord-token-1234567890"),
            ("Slack bot token", ""),
            ("Database URL", ""),
            ("Detectors", "nsfw,hashes,text"),
        ],
        LANG="en_GB.UTF-8",
    )
    assert code == 0, shown
    assert "app-level token" not in shown and "signing secret" not in shown
    assert "CLIP" not in shown  # no CLIP questions without the clip detector
    assert "veille doctor" in shown and "veille prepare" in shown
    values = dotenv_values(tmp_path / ".env")
    assert values["DISCORD_TOKEN"] == "discord-token-1234567890"
    assert values["VEILLE_DETECTORS"] == "nsfw,hashes,text"
    assert values["VEILLE_LOCALE"] == "en"
    assert "SLACK_APP_TOKEN" not in values and "VEILLE_SLACK_MODE" not in values


def test_force_with_an_empty_answer_removes_a_token(veille: Veille, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DISCORD_TOKEN=old-discord-token\nSLACK_BOT_TOKEN=xoxb-old\n"
        "SLACK_APP_TOKEN=xapp-old\nVEILLE_SECRET_KEY=" + "k" * 43 + "\n"
    )
    code, shown = in_terminal(
        veille,
        ["init", "--force"],
        [
            ("Language", "en"),
            ("Discord bot token", ""),
            ("Slack bot token", ""),
            ("Database URL", ""),
            ("Detectors", ""),
            ("CLIP model", ""),
            ("CLIP weights", ""),
        ],
    )
    assert code == 0, shown
    assert "Enter to remove it" in shown
    values = dotenv_values(env_file)
    assert "DISCORD_TOKEN" not in values and "SLACK_BOT_TOKEN" not in values
    assert "SLACK_APP_TOKEN" not in values  # Slack went, its app token with it
    assert values["VEILLE_SECRET_KEY"] == "k" * 43  # never rotated


def test_without_force_enter_keeps_a_token(veille: Veille, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("VEILLE_LOCALE=fr\nSLACK_BOT_TOKEN=xoxb-kept\n")
    code, shown = in_terminal(
        veille,
        ["init"],
        [
            ("Jeton du bot Discord", ""),
            ("Jeton d'application Slack", "xapp-new"),
            ("URL de la base", ""),
            ("Détecteurs", ""),
            ("Modèle CLIP", ""),
            ("Poids CLIP", ""),
        ],
    )
    assert code == 0, shown
    assert "Ensuite" in shown and "veille doctor" in shown
    values = dotenv_values(env_file)
    assert values["SLACK_BOT_TOKEN"] == "xoxb-kept"
    assert values["SLACK_APP_TOKEN"] == "xapp-new" and values["VEILLE_SLACK_MODE"] == "socket"
    assert "SLACK_SIGNING_SECRET" not in values  # Socket Mode: not asked


def test_lang_fr_writes_veille_locale_fr(veille: Veille, tmp_path: Path) -> None:
    result = veille("init", "-y", "--discord-token", "d" * 30, LANG="fr_FR.UTF-8")
    assert result.returncode == 0, result.stderr
    assert "Ensuite" in result.stderr and "veille prepare" in result.stderr
    assert dotenv_values(tmp_path / ".env")["VEILLE_LOCALE"] == "fr"
    # and Veille then speaks French (VEILLE_LOCALE empty in the environment: .env decides)
    run = veille("run", VEILLE_LOCALE="")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "La base de données n'est pas prête" in run.stderr
