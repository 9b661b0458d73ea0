"""What every sub-command shares: exit codes, settings loading, console output, the locale."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError
from rich.console import Console

from bot.core.i18n import t
from bot.log import secrets_of, setup_logging
from bot.settings import Settings, fallback_locale, load_settings

EXIT_OK = 0
EXIT_FLAGGED = 1
EXIT_USAGE = 2
# `veille scan`: nothing flagged, but some input could not be scanned (so not "all clean").
EXIT_UNSCANNED = 3

console = Console(
    stderr=True, highlight=False, soft_wrap=True
)  # guidance keeps its own line breaks
stdout = Console(highlight=False, soft_wrap=True)


class _Session:
    """What `bot.cli.main` needs to word a failure: the language, and whether to show the
    traceback (VEILLE_LOG_LEVEL=DEBUG or `veille --debug`)."""

    locale: str | None = None
    debug: bool = False
    secrets: tuple[str, ...] = ()


session = _Session()


def current_locale() -> str:
    return session.locale or fallback_locale()


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment and .env, or exit 2 with a readable message."""
    if session.debug:
        overrides.setdefault("log_level", "DEBUG")
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        from bot.cli.failures import explain

        report(exc)
        sys.exit(explain(exc, current_locale()).code)
    session.locale = settings.default_locale
    session.debug = session.debug or settings.log_level.upper() == "DEBUG"
    session.secrets = tuple(secrets_of(settings))
    setup_logging(settings.log_level, settings.log_format, secrets_of(settings))
    return settings


def report(exc: BaseException) -> int:
    """Print the one message for `exc` (the traceback too in debug mode); its exit status."""
    from bot.cli.failures import explain

    if session.debug:
        logging.getLogger("veille").debug("failure", exc_info=exc)
        if not logging.getLogger().handlers:
            traceback.print_exception(exc, file=sys.stderr)
    from bot.log import RedactingFilter

    failure = explain(exc, current_locale())
    message = RedactingFilter(session.secrets).redact(failure.message)
    console.print("[bold red]✗[/] ", end="")
    console.print(message, markup=False)
    return failure.code


def missing_sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist yet (None otherwise): commands that only
    read must say so rather than create an empty database as a side effect."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url)
    except Exception:  # not a URL: the command that opens it says so
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).expanduser()
    return None if path.exists() else path


def schema_state(current: str | None, head: str | None, locale: str) -> str:
    """The schema's state in words ("it has no tables yet, this version … needs 0004")."""
    state = (
        t("failure.db_empty", locale)
        if current is None
        else t("failure.db_at", locale, current=current)
    )
    return t("failure.db_needs", locale, state=state, head=head)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[bold red]✗[/] {message}")
    sys.exit(code)
