"""The one logger setup: structured key=value or JSON lines, with secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

# Token shapes that must never reach a log line even if nobody registered them.
_TOKEN_PATTERNS = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}"
    r"|[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"
    r"|(?i:bearer|bot)\s+[A-Za-z0-9._-]{20,})"
)
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    """Replaces registered secret values and token-shaped strings in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_PATTERNS.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class QuietLibraries(logging.Filter):
    """Drops the chatter some libraries send straight to the root logger: open_clip's and ONNX
    Runtime's INFO lines (several hundred while an export is quantised) and the quantiser's
    advice to pre-process the model. Warnings and errors of everyone else pass; VEILLE_LOG_LEVEL=
    DEBUG shows everything."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug or record.name != "root":
            return True
        library = "site-packages" in record.pathname or "dist-packages" in record.pathname
        if library and record.levelno < logging.WARNING:
            return False
        return not (
            library and "quantization" in record.pathname and record.levelno < logging.ERROR
        )


class QuietNotices(logging.Filter):
    """Drops library notices that are not about Veille: those the platforms name (their
    descriptors' `quiet_notices`: discord.py's voice-support warning, as Veille never joins
    voice) and APScheduler's job bookkeeping ("Adding job tentatively", "Added job",
    "Scheduler started"). VEILLE_LOG_LEVEL=DEBUG shows them."""

    def __init__(
        self, debug: bool = False, notices: Iterable[tuple[str, str]] | None = None
    ) -> None:
        super().__init__()
        self.debug = debug
        if notices is None:
            from bot.platforms import PLATFORMS

            notices = [notice for platform in PLATFORMS for notice in platform.quiet_notices]
        self.notices = tuple(notices)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.debug:
            return True
        for prefix, text in self.notices:
            if record.name.startswith(prefix) and text in str(record.msg):
                return False
        return not (record.name.startswith("apscheduler") and record.levelno < logging.WARNING)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    debug = level.upper() == "DEBUG"
    handler.addFilter(QuietLibraries(debug=debug))
    handler.addFilter(QuietNotices(debug=debug))
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    from bot.platforms import PLATFORMS

    chatty = [name for platform in PLATFORMS for name in platform.quiet_loggers]
    for noisy in (*chatty, "aiosqlite", "urllib3", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def secrets_of(settings: Settings) -> list[str]:
    """What `setup_logging` must redact: the secret key and every platform's secrets (their
    descriptors' `secrets`)."""
    from bot.platforms import secrets

    key = [settings.secret_key.get_secret_value()] if settings.secret_key is not None else []
    return key + secrets(settings)


def fields(**values: object) -> dict[str, dict[str, object]]:
    """`log.info("scanned", extra=fields(sha=..., ms=...))`: structured fields on a record."""
    return {"fields": values}
