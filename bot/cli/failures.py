"""What a person reads when a command fails: one localised message with the fix, and an exit
status (2: the configuration must change, 1: something at run time went wrong), never a
traceback. `VEILLE_LOG_LEVEL=DEBUG` (or `veille --debug`) prints the traceback as well.

`explain()` maps the exceptions the common mistakes raise — a rejected token, an unreachable
platform, a port in use, a database that is missing, behind or unreachable, a bad setting —
to a `Failure`; anything else becomes a short "unexpected error" that says how to see more.
"""

from __future__ import annotations

import errno
import traceback

from pydantic import ValidationError

from bot.core.i18n import t

EXIT_RUNTIME = 1
EXIT_CONFIG = 2


class Failure(Exception):
    """A failure already put into words: raised by a command, shown by `bot.cli.main`."""

    def __init__(self, message: str, code: int = EXIT_CONFIG) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, then its causes and contexts (discord.py wraps a 401 in LoginFailure, aiohttp an
    OSError in ClientConnectorError)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def config_problems(exc: ValidationError, locale: str) -> str:
    """Each invalid setting as `NAME=value: what is expected`, in the person's language."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "?"
        kind = error.get("type", "")
        key = f"failure.expected_{kind}"
        expected = t(key, locale, **(error.get("ctx") or {}))
        if expected == key:  # a rule we have no words for: pydantic's own text
            expected = error["msg"]
        value = error.get("input")
        shown = f"{name}={value}" if isinstance(value, str | int | float) else name
        lines.append(t("failure.problem_line", locale, setting=shown, expected=expected))
    return "\n".join(lines)


def explain(exc: BaseException, locale: str) -> Failure:
    """The message and exit status for `exc` (never raises)."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, ValidationError):
        return Failure(t("failure.bad_setting", locale, problems=config_problems(exc, locale)))
    chain = _chain(exc)
    from detectors.base import DetectorError

    for item in chain:
        if isinstance(item, DetectorError):  # missing CLIP weights and the like
            return Failure(t("cli.config_error", locale, detail=str(item)))
    from bot.platforms import PLATFORMS

    for platform in PLATFORMS:  # a platform refusing its token (each says how it knows)
        for item in chain:
            message = platform.explain_failure(item, locale)
            if message is not None:
                return Failure(message)
    from bot.store.engine import DatabaseNotMigrated

    for item in chain:
        if isinstance(item, DatabaseNotMigrated):
            return Failure(t("cli.not_migrated", locale, detail=str(item)))
    for item in chain:
        if isinstance(item, OSError) and item.errno == errno.EADDRINUSE:
            return Failure(
                t("failure.port_in_use", locale, detail=item.strerror or str(item)), EXIT_RUNTIME
            )
    if isinstance(exc, OSError) and _raised_in(exc, "bot/store/"):  # the SQLite folder
        return Failure(
            t(
                "failure.database",
                locale,
                detail=f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            ),
            EXIT_RUNTIME,
        )
    for item in chain:  # a URL SQLAlchemy cannot read, or a dialect it does not know
        if type(item).__name__ in ("ArgumentError", "NoSuchModuleError"):
            return Failure(t("failure.bad_db_url", locale, detail=_one_line(item)))
    for item in chain:  # the database driver of the URL is not installed
        if isinstance(item, ModuleNotFoundError) and (
            item.name in ("asyncpg", "aiosqlite", "psycopg", "aiomysql", "MySQLdb")
            or _raised_in(item, "sqlalchemy/dialects")
        ):
            return Failure(t("failure.db_driver", locale, module=item.name or "?"))
    for item in chain:
        if type(item).__name__ in ("OperationalError", "InterfaceError"):
            detail = str(getattr(item, "orig", None) or item).splitlines()[0]
            return Failure(t("failure.database", locale, detail=detail), EXIT_RUNTIME)
    for item in chain:
        if isinstance(item, ConnectionError | TimeoutError) or type(item).__name__ in (
            "ClientConnectorError",
            "ServerDisconnectedError",
            "ClientConnectionError",
        ):
            return Failure(t("failure.unreachable", locale, detail=_one_line(item)), EXIT_RUNTIME)
    if isinstance(exc, PermissionError):
        return Failure(t("failure.permission", locale, path=exc.filename or "?"), EXIT_RUNTIME)
    return Failure(t("failure.unexpected", locale, detail=_one_line(exc)), EXIT_RUNTIME)


def _raised_in(exc: BaseException, part: str) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any(part in frame.filename.replace("\\", "/") for frame in frames)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
