"""What every sub-command shares: exit codes, settings loading, console output, the locale."""

from __future__ import annotations

import sys
from typing import NoReturn

from pydantic import ValidationError
from rich.console import Console

from bot.core.i18n import t
from bot.log import setup_logging
from bot.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FLAGGED = 1
EXIT_USAGE = 2

console = Console(stderr=True, highlight=False, soft_wrap=True)  # guidance keeps its own line breaks
stdout = Console(highlight=False, soft_wrap=True)


def secrets_of(settings: Settings) -> list[str]:
    values = [
        settings.secret_key, settings.discord_token, settings.slack_bot_token,
        settings.slack_app_token, settings.slack_signing_secret, settings.slack_admin_token,
    ]
    return [v.get_secret_value() for v in values if v is not None]


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment and .env, or exit 2 with a readable message."""
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        fail(t("cli.config_error", None, detail=problems))
    setup_logging(settings.log_level, settings.log_format, secrets_of(settings))
    return settings


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[bold red]✗[/] {message}")
    sys.exit(code)
