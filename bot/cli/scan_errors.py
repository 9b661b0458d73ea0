"""Why one `veille scan` input was not scanned, in the person's language.

A result's `error` stays in English (the decoder's and fetcher's own words) because scripts read
`--json`; beside it the result keeps what it means as catalogue keys (`Said`), which the table
says in VEILLE_LOCALE. The fetcher's messages are templates (bot/media/messages.py): a message is
matched back to its template, and `scan.fetch.<TEMPLATE>` says it again with the same values.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from bot.core.i18n import t
from bot.media import messages

# A catalogue key and its values; a value may itself be a Said (said in the same language).
Said = tuple[str, dict[str, Any]]


class FileTooLarge(ValueError):
    """A file over VEILLE_FETCH_MAX_BYTES."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"too large: more than {limit} bytes (VEILLE_FETCH_MAX_BYTES)")
        self.limit = limit


class NotRegularFile(ValueError):
    """A device, a FIFO or a socket: never opened."""

    def __init__(self) -> None:
        super().__init__("not a regular file")


def say(said: Said, locale: str) -> str:
    key, values = said
    return t(
        key,
        locale,
        **{
            name: say(value, locale) if _is_said(value) else value for name, value in values.items()
        },
    )


def _is_said(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], dict)
    )


def file_error(exc: BaseException) -> Said:
    """What a file that could not be read means (before any decoding)."""
    if isinstance(exc, FileTooLarge):
        return "scan.error.too_large", {"limit": exc.limit}
    if isinstance(exc, NotRegularFile):
        return "scan.error.not_regular", {}
    if isinstance(exc, FileNotFoundError):
        return "scan.error.not_found", {}
    if isinstance(exc, IsADirectoryError):
        return "scan.error.directory", {}
    if isinstance(exc, PermissionError):
        return "scan.error.permission", {}
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return "scan.error.unreadable", {"detail": detail or type(exc).__name__}


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """(the template as a pattern, its catalogue key) for every message of the fetcher."""
    found = []
    for name, template in vars(messages).items():
        if not name.isupper() or not isinstance(template, str):
            continue
        pattern, last = "", 0
        for field in re.finditer(r"\{(\w+)(?::[^}]*)?\}", template):
            pattern += re.escape(template[last : field.start()]) + f"(?P<{field.group(1)}>.+?)"
            last = field.end()
        pattern += re.escape(template[last:])
        literal = len(re.sub(r"\{[^}]*\}", "", template))
        found.append((literal, re.compile(pattern + r"\Z", re.DOTALL), f"scan.fetch.{name}"))
    # The most specific first: "refused: {detail}" must not take "refused: {address} is …".
    return [(pattern, key) for _, pattern, key in sorted(found, key=lambda f: -f[0])]


def _known(key: str) -> bool:
    return t(key, "en") != key


def fetch_error(text: str) -> Said:
    """The fetcher's English message as a Said; the message itself when no template matches."""
    for pattern, key in _templates():
        match = pattern.match(text)
        if match and _known(key):
            values: dict[str, Any] = dict(match.groupdict())
            if "kind" in values:  # "a loopback", "a shared (CGNAT)": an address range's kind
                word = values["kind"].removeprefix("a ").split(" ")[0].replace("-", "_")
                if _known(f"scan.address_kind.{word}"):
                    values["kind"] = (f"scan.address_kind.{word}", {})
            return key, values
    return "scan.error.as_is", {"text": text}
