"""`veille scan`'s human output: a table of what needs a look (flagged and failed inputs; every
input with --all), sources shortened from the left so rows stay distinct, the summary on
stderr, and log lines kept out of the table (held during the scan, printed after it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.table import Table

from bot.cli.common import console, stdout
from bot.cli.scan_errors import say
from bot.core.i18n import plural, t
from bot.core.reasons import category_name, readable_reason
from bot.core.verdict import Severity

if TYPE_CHECKING:
    from bot.cli.scan import ScanResult

COLOURS = {
    "NONE": "green",
    "REVIEW": "yellow",
    "QUARANTINE": "red",
    "CRITICAL": "bold red",
    "ERROR": "bold magenta",
}
ELLIPSIS = "…"


def _suffix(source: str, parts: int) -> str:
    pieces = source.split("/")
    return source if parts >= len(pieces) else ELLIPSIS + "/".join(pieces[-parts:])


def shorten_sources(sources: Sequence[str], width: int) -> list[str]:
    """Each source cut from the left to at most `width` characters, keeping whole path parts
    and as many as it takes for no two different sources to read the same."""
    shown = []
    for source in sources:
        if len(source) <= width:
            shown.append(source)
            continue
        others = {o for o in sources if o != source}
        parts = 1
        while parts < source.count("/") + 1 and any(
            _suffix(o, parts) == _suffix(source, parts) for o in others
        ):
            parts += 1
        while parts < source.count("/") and len(_suffix(source, parts + 1)) <= width:
            parts += 1  # room to spare: show more of the path
        text = _suffix(source, parts)
        if len(text) > width:  # one part longer than the column: keep its end
            text = ELLIPSIS + text[-(width - 1) :]
        shown.append(text)
    return shown


def _error_text(result: ScanResult, locale: str) -> str:
    """English: the decoder's and fetcher's own words (they name the detail). Other languages:
    the catalogue's sentences for what the error means."""
    if locale != "en" and result.said:
        return "; ".join(say(said, locale) for said in result.said)
    return result.error or ""


def label(result: ScanResult) -> str:
    return "ERROR" if result.error is not None else result.severity.name


def summarise(results: list[ScanResult], as_json: bool, locale: str, show_all: bool) -> None:
    """Without --json a table on stdout; always the summary line on stderr."""
    flagged = sum(r.severity >= Severity.REVIEW for r in results)
    errors = sum(r.error is not None for r in results)
    if not as_json:
        rows = [
            r for r in results if show_all or r.error is not None or r.severity >= Severity.REVIEW
        ]
        if rows:
            width = max(24, (stdout.width or 80) * 2 // 5)
            table = Table(
                t("scan.col_source", locale),
                t("scan.col_result", locale),
                t("scan.col_categories", locale),
                t("scan.col_detail", locale),
            )
            table.columns[0].no_wrap = True
            table.columns[1].no_wrap = True
            table.columns[3].overflow = "fold"  # an error's path or URL is folded, not cut short
            for r, source in zip(
                rows, shorten_sources([r.source for r in rows], width), strict=True
            ):
                name = label(r)
                reasons = [
                    readable_reason(x, locale) for x in (r.verdict.reasons[:3] if r.verdict else [])
                ]
                detail = _error_text(r, locale) if r.error is not None else "; ".join(reasons)
                categories = ", ".join(
                    category_name(c, locale) for c in (r.verdict.categories if r.verdict else [])
                )
                table.add_row(
                    source,
                    f"[{COLOURS[name]}]{t(f'scan.label.{name}', locale)}[/]",
                    categories,
                    detail,
                )
            stdout.print(table)
        hidden = len(results) - len(rows)
        if hidden:
            console.print(t("scan.hidden", locale, clean=hidden))
        elif not rows and results:
            console.print(t("scan.all_clean", locale))
    console.print(
        t(
            "scan.summary",
            locale,
            scanned=plural("scan.count.scanned", len(results), locale),
            flagged=plural("scan.count.flagged", flagged, locale),
            errors=plural("scan.count.errors", errors, locale),
        )
    )


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logs_after_the_table(enabled: bool) -> Iterator[_Held]:
    """Hold the log records of the scan (the root handlers' filters still apply: secrets are
    redacted); `replay()` them on stderr once the table is printed."""
    root = logging.getLogger()
    held = _Held()
    if not enabled:
        yield held
        return
    handlers = root.handlers[:]
    for handler in handlers:
        for f in handler.filters:
            held.addFilter(f)
    root.handlers[:] = [held]
    try:
        yield held
    finally:
        root.handlers[:] = handlers


def replay(held: _Held, locale: str) -> None:
    root = logging.getLogger()
    if not held.records:
        return
    console.print(t("scan.logs", locale))
    for record in held.records:
        for handler in root.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
