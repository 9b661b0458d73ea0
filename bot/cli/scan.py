"""`veille scan PATH|URL... [--json] [--text-file FILE]`: scan offline, outside any chat.

One result per input, in the JSON-lines contract of the Foundation issue. An unreadable input
gets an `error` in its own result and never stops the run. Exit status: 0 nothing flagged,
1 something at REVIEW or above, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import EXIT_FLAGGED, EXIT_OK, EXIT_USAGE, console, fail, get_settings, stdout
from bot.core.i18n import t
from bot.settings import Settings
from detectors.base import DetectorError, TextInput
from detectors.fusion import Severity, Verdict

if TYPE_CHECKING:  # the scanner pulls in Pillow and the media stack: load it only to scan
    from bot.core.scanner import Scanner

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif",
                  ".heic", ".svg", ".jfif"}


@dataclass
class ScanResult:
    source: str
    kind: str  # image | url | text
    verdict: Verdict | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return self.verdict.severity if self.verdict else Severity.NONE

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "source": self.source,
            "kind": self.kind,
            "severity": self.severity.name,
            "categories": list(verdict.categories) if verdict else [],
            "scores": {k: round(v, 4) for k, v in verdict.scores.items()} if verdict else {},
            "matches": [
                {"bank": m.bank, "kind": m.kind, "distance": m.distance} for m in verdict.matches
            ] if verdict else [],
            "reasons": list(verdict.reasons) if verdict else [],
            "error": self.error,
        }


def expand_inputs(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """(kind, source) pairs: URLs as given, folders walked recursively for image-like files."""
    expanded: list[tuple[str, str]] = []
    for item in inputs:
        if "://" in item or item.lower().startswith(("javascript:", "data:", "mailto:")):
            expanded.append(("url", item))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            expanded.extend(("image", str(p)) for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            expanded.append(("image", item))
    return expanded


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or OSError/ValueError with a readable message."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"too large: {size} bytes, the limit is {max_bytes}")
    return path.read_bytes()


async def scan_image_bytes(scanner: Scanner, data: bytes, source: str, settings: Settings) -> Verdict:
    from bot.core.scanner import prepare_image

    prepared = await asyncio.to_thread(
        prepare_image, data, source=source, max_pixels=settings.max_image_pixels
    )
    [scan] = await scanner.scan_images([prepared])
    return scan.verdict


async def scan_path(scanner: Scanner, source: str, settings: Settings) -> ScanResult:
    from bot.media.decode import MediaError

    result = ScanResult(source, "image")
    try:
        data = await asyncio.to_thread(read_file, Path(source), settings.fetch_max_bytes)
        result.verdict = await scan_image_bytes(scanner, data, source, settings)
    except MediaError as exc:
        result.error = str(exc)
    except (OSError, ValueError) as exc:
        result.error = f"unreadable: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
    return result


async def scan_url(scanner: Scanner, fetcher: Any, url: str, settings: Settings) -> ScanResult:
    """A URL is one result: the worst verdict over the image(s) it points to or unfurls to."""
    from bot.media.decode import MediaError

    result = ScanResult(url, "url")
    fetched = await fetcher.fetch_media(url)
    verdicts: list[Verdict] = []
    errors: list[str] = []
    for item in fetched:
        if item.error or item.data is None:
            errors.append(item.error or "no content")
            continue
        try:
            verdicts.append(await scan_image_bytes(scanner, item.data, item.final_url or url, settings))
        except MediaError as exc:
            errors.append(f"{item.final_url or item.url}: {exc}")
    if verdicts:
        result.verdict = max(verdicts, key=lambda v: v.severity)
        result.notes = errors
    else:
        result.error = "; ".join(errors) or "no image found at this address"
    return result


@asynccontextmanager
async def open_fetcher(settings: Settings) -> AsyncIterator[Any]:
    from bot.media.fetch import SafeFetcher

    fetcher = SafeFetcher(
        max_bytes=settings.fetch_max_bytes,
        timeout_s=settings.fetch_timeout_s,
        allow_loopback=settings.fetch_allow_loopback,
    )
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def load_bank(settings: Settings) -> Any:
    """The hash banks from the database, or None (with a note) when it is not migrated yet."""
    if "hashes" not in settings.detector_names:
        return None
    from bot.store import engine as store
    from bot.store.hash_repo import load_bank as load

    engine = store.create_engine(settings.database_url)
    try:
        await store.check_migrated(engine)
        async with store.session_factory(engine)() as session:
            return await load(session)
    except store.DatabaseNotMigrated as exc:
        console.print(f"[yellow]![/] hash banks not loaded: {exc} (run `veille db upgrade`)")
        return None
    finally:
        await engine.dispose()


async def run_scan(
    settings: Settings, inputs: list[str], text_file: Path | None, reply_context: bool, as_json: bool
) -> int:
    from bot.core.suite import build_scanner

    try:
        scanner = await build_scanner(settings, await load_bank(settings))
    except DetectorError as exc:
        fail(t("cli.config_error", settings.default_locale, detail=str(exc)))

    items = expand_inputs(inputs)
    lines: list[str] = []
    if text_file is not None:
        try:
            lines = (await asyncio.to_thread(text_file.read_text, "utf-8", "replace")).splitlines()
        except OSError as exc:
            fail(f"{text_file}: {exc.strerror}")
    results: list[ScanResult] = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task(t("cli.scanning", settings.default_locale), total=len(items) + len(lines))
        async with open_fetcher(settings) as fetcher:
            for kind, source in items:
                if kind == "url":
                    result = await scan_url(scanner, fetcher, source, settings)
                else:
                    result = await scan_path(scanner, source, settings)
                results.append(result)
                emit(result, as_json)
                progress.advance(task)
        texts = [
            TextInput(line, replies_to_image=reply_context, addresses_image_ai=reply_context,
                      source=f"{text_file}:{number}")
            for number, line in enumerate(lines, start=1) if line.strip()
        ]
        for text, verdict in zip(texts, await scanner.scan_texts(texts), strict=True):
            result = ScanResult(text.source, "text", verdict)
            results.append(result)
            emit(result, as_json)
            progress.advance(task)
    summarise(results, as_json, settings.default_locale)
    return EXIT_FLAGGED if any(r.severity >= Severity.REVIEW for r in results) else EXIT_OK


def emit(result: ScanResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))


def summarise(results: list[ScanResult], as_json: bool, locale: str) -> None:
    flagged = sum(r.severity >= Severity.REVIEW for r in results)
    errors = sum(r.error is not None for r in results)
    if not as_json:
        table = Table("source", "severity", "categories", "reasons / error", show_lines=False)
        colours = {Severity.NONE: "green", Severity.REVIEW: "yellow",
                   Severity.QUARANTINE: "red", Severity.CRITICAL: "bold red"}
        for r in results:
            detail = r.error or "; ".join(r.verdict.reasons[:3] if r.verdict else [])
            table.add_row(r.source, f"[{colours[r.severity]}]{r.severity.name}[/]",
                          ", ".join(r.verdict.categories if r.verdict else []), detail)
        stdout.print(table)
    console.print(t("cli.scan_summary", locale, total=len(results), flagged=flagged, errors=errors))


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("inputs", nargs=-1)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
    @click.option("--text-file", type=click.Path(path_type=Path), default=None,
                  help="Also scan each line of FILE as one chat message.")
    @click.option("--reply-context", is_flag=True,
                  help="Treat text lines as replies to an image addressed to an image AI.")
    @click.option("--detectors", default=None, help="Comma-separated detectors (default: VEILLE_DETECTORS).")
    def scan(inputs: tuple[str, ...], as_json: bool, text_file: Path | None, reply_context: bool,
             detectors: str | None) -> None:
        """Scan image files, folders and URLs (and text lines) with the detector suite."""
        if not inputs and text_file is None:
            fail("nothing to scan: give files, folders or URLs, or --text-file FILE", EXIT_USAGE)
        overrides = {"detectors": detectors} if detectors else {}
        settings = get_settings(**overrides)
        raise SystemExit(asyncio.run(run_scan(settings, list(inputs), text_file, reply_context, as_json)))
