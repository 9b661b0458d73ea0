"""`veille scan PATH|URL... [--json] [--text-file FILE]`: scan offline, outside any chat.

One result per input, in the JSON-lines contract of the Foundation issue (`ScanResult.to_json`).
An unreadable input gets an `error` in its own result and never stops the run. Exit status:
0 everything scanned and nothing flagged, 1 something at REVIEW or above, 2 usage or
configuration error, 3 nothing flagged but some input could not be scanned.

This module only walks inputs and prints: bytes become verdicts in bot.core.scanner (shared with
the chat pipeline) and URLs are fetched through bot.media.fetch (the SSRF guard). Errors inside
results stay in English, like the fetcher's and decoder's, because scripts read them; what a
person reads on the terminal (table headers, notes, the summary) follows VEILLE_LOCALE.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.cli.common import (
    EXIT_FLAGGED,
    EXIT_OK,
    EXIT_UNSCANNED,
    EXIT_USAGE,
    console,
    fail,
    get_settings,
    schema_state,
)
from bot.cli.scan_errors import FileTooLarge, NotRegularFile, Said, fetch_error, file_error
from bot.core.i18n import plural, t
from bot.core.verdict import Severity, Verdict
from bot.media.sniff import sniff_mime
from bot.settings import Settings
from detectors.base import DetectorError, TextInput

if TYPE_CHECKING:  # the scanner pulls in Pillow and the media stack: load it only to scan
    from bot.core.scanner import PreparedImage, Scanner
    from bot.media.fetch import SafeFetcher

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".avif",
    ".heic",
    ".svg",
    ".jfif",
}
URL_PREFIXES = ("javascript:", "data:", "mailto:", "file:")
NO_IMAGE_AT_URL = "no image found at this address"
NO_IMAGE_DETECTOR = "not scanned: no image detector is configured (VEILLE_DETECTORS={names})"
NO_TEXT_DETECTOR = "not scanned: no text detector is configured (VEILLE_DETECTORS={names})"


@dataclass
class ScanResult:
    """One input's outcome: a verdict, or an error (never both missing once scanned)."""

    source: str
    kind: str  # image | url | text
    verdict: Verdict | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # partial failures (one of a page's images)
    # What `error` means as catalogue keys: the human table says it in the person's language;
    # `error` itself stays English for scripts.
    said: list[Said] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return self.verdict.severity if self.verdict else Severity.NONE

    def to_json(self) -> dict[str, Any]:
        """The contract: source, kind, severity, categories, scores (fused), detectors (each
        detector's own scores: an additive key), matches, reasons, error."""
        verdict = self.verdict
        return {
            "source": self.source,
            "kind": self.kind,
            "severity": self.severity.name,
            "categories": list(verdict.categories) if verdict else [],
            "scores": {k: round(v, 4) for k, v in verdict.scores.items()} if verdict else {},
            "detectors": {
                name: {k: round(v, 4) for k, v in found.items()}
                for name, found in verdict.detector_scores.items()
                if found
            }
            if verdict
            else {},
            "matches": [
                {"bank": m.bank, "kind": m.kind, "distance": m.distance} for m in verdict.matches
            ]
            if verdict
            else [],
            "reasons": list(verdict.reasons) if verdict else [],
            "error": self.error,
        }


def is_url(item: str) -> bool:
    return "://" in item or item.lower().startswith(URL_PREFIXES)


SKIPPED_NAMES_SHOWN = 5


_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB header sizes Pillow reads


def looks_like_image(path: Path) -> bool:
    """An image by its name, or by its first bytes in a format the decoder reads (a photo saved
    without an extension, or under a wrong one, is scanned too; a camera's RAW file, TIFF-like,
    is not taken in). A file that cannot be read counts as one, so its error shows."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    from bot.media.decode import PILLOW_FORMATS

    try:
        with path.open("rb") as handle:
            head = handle.read(1024)
    except OSError:
        return True
    mime = sniff_mime(head)
    if mime == "image/bmp":  # "BM" alone starts many a text file
        return len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    return mime in PILLOW_FORMATS


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def expand_inputs(inputs: Iterable[str], locale: str) -> list[tuple[str, str]]:
    """(kind, source) pairs in order: URLs as given (the fetcher vets them), folders walked
    recursively for images (by name or by content; hidden files and folders, links to nothing,
    FIFOs and devices left out), anything else as a file (unreadable ones get errors). The
    regular files a walk leaves out as not images are named on stderr."""
    expanded: list[tuple[str, str]] = []
    for item in inputs:
        if is_url(item):
            expanded.append(("url", item))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            images: list[Path] = []
            skipped: list[Path] = []
            for file in files:
                (images if looks_like_image(file) else skipped).append(file)
            if not images:
                console.print(
                    f"[yellow]![/] {escape(t('scan.no_images_in_folder', locale, folder=item))}"
                )
            if skipped:
                names = ", ".join(str(p.relative_to(path)) for p in skipped[:SKIPPED_NAMES_SHOWN])
                more = len(skipped) - SKIPPED_NAMES_SHOWN
                if more > 0:
                    names += " " + t("scan.and_more", locale, n=more)
                count = plural("scan.count.files", len(skipped), locale)
                said = t("scan.not_images_skipped", locale, files=count, folder=item, names=names)
                console.print(f"[yellow]![/] {escape(said)}")
            expanded.extend(("image", str(p)) for p in images)
        else:
            expanded.append(("image", item))
    return expanded


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; ValueError/OSError otherwise.

    Reads at most `max_bytes + 1` bytes, so a device (/dev/zero) or a growing file cannot make
    the scan read forever; FIFOs and devices are refused before opening (a FIFO would block)."""
    if not path.is_file():
        if path.exists():
            raise NotRegularFile
        raise FileNotFoundError(2, "No such file or directory")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(max_bytes)
    return data


def read_text_lines(text_file: Path, locale: str) -> list[str]:
    """The lines of `--text-file` (`-` is stdin), or exit 2 when it cannot be read."""
    if str(text_file) == "-":
        return sys.stdin.read().splitlines()
    try:
        if text_file.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        return text_file.read_text("utf-8", "replace").splitlines()
    except OSError as exc:
        fail(t("scan.text_file_unreadable", locale, file=text_file, detail=exc.strerror or exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _missing_sqlite_file(url: Any) -> Path | None:
    """The file of a SQLite URL when it does not exist yet; None otherwise."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).expanduser()
    return None if path.exists() else path


async def load_bank(settings: Settings) -> Any:
    """The hash banks from the database, or None (with a note) when there is no migrated
    database yet: scanning works on a fresh clone. A database that cannot be read (bad URL,
    missing driver, server down) is a configuration error: exit 2."""
    if "hashes" not in settings.detector_names:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.core.banks import load_bank as load
    from bot.store import engine as store

    locale = settings.default_locale
    try:
        url = make_url(settings.database_url)
    except (SQLAlchemyError, ValueError) as exc:
        fail(t("scan.database_error", locale, url="?", detail=_describe(exc)))
    shown = url.render_as_string(hide_password=True)
    missing = await asyncio.to_thread(_missing_sqlite_file, url)
    if missing is not None:  # never create a database (or its folder) just to scan
        note = t("scan.no_database", locale, path=missing)
        console.print(f"[yellow]![/] {t('scan.banks_not_loaded', locale, detail=note)}")
        return None
    try:
        engine = store.create_engine(settings.database_url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        fail(t("scan.database_error", locale, url=shown, detail=_describe(exc)))
    try:
        current = await store.current_revision(engine)
        head = store.head_revision(settings.database_url)
        if current != head:
            detail = schema_state(current, head, locale)
            console.print(f"[yellow]![/] {t('scan.banks_not_loaded', locale, detail=detail)}")
            return None
        async with store.session_factory(engine)() as session:
            return await load(session)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        fail(t("scan.database_error", locale, url=shown, detail=_describe(exc)))
    finally:
        await engine.dispose()


class ScanRun:
    """One `veille scan` invocation: feeds inputs to the Scanner in order and prints results.

    Files are decoded one at a time and detected in batches of up to VEILLE_BATCH_SIZE images
    and VEILLE_MAX_IMAGE_PIXELS decoded pixels, so a folder costs few detector calls while
    memory stays bounded by about two maximal images (the queued batch and the next file)."""

    def __init__(
        self, scanner: Scanner, settings: Settings, as_json: bool, progress: Progress, task: Any
    ) -> None:
        self.scanner = scanner
        self.settings = settings
        self.as_json = as_json
        self.progress = progress
        self.task = task
        self.results: list[ScanResult] = []
        self._pending: list[tuple[ScanResult, PreparedImage | None]] = []
        self._pending_pixels = 0
        names = ",".join(settings.detector_names)
        self._no_image = None if scanner.image_detectors else NO_IMAGE_DETECTOR.format(names=names)
        self._no_text = None if scanner.text_detectors else NO_TEXT_DETECTOR.format(names=names)
        self._no_image_said: list[Said] = [("scan.error.no_image_detector", {"names": names})]
        self._no_text_said: list[Said] = [("scan.error.no_text_detector", {"names": names})]

    def _record(self, result: ScanResult) -> None:
        self.results.append(result)
        if self.as_json:
            click.echo(json.dumps(result.to_json(), ensure_ascii=False))
        self.progress.advance(self.task)

    async def _prepare(self, data: bytes, source: str) -> PreparedImage:
        from bot.core.scanner import prepare_image

        return await asyncio.to_thread(
            prepare_image, data, source=source, max_pixels=self.settings.max_image_pixels
        )

    async def image_file(self, source: str) -> None:
        """Decode one file and queue it for the next detector batch (errors are recorded)."""
        from bot.media.decode import MediaError

        result = ScanResult(source, "image", error=self._no_image)
        prepared = None
        if result.error is not None:
            result.said = self._no_image_said
        else:
            try:
                data = await asyncio.to_thread(
                    read_image_file, Path(source), self.settings.fetch_max_bytes
                )
                prepared = await self._prepare(data, source)
            except MediaError as exc:
                result.error, result.said = str(exc), [(f"unscanned.{exc.code}", {})]
            except (OSError, ValueError) as exc:
                result.error, result.said = f"unreadable: {_describe(exc)}", [file_error(exc)]
            except Exception as exc:  # a decoder bug must not stop the run (contract)
                log.exception("decoding %s failed", source)
                result.error = f"scan failed: {_describe(exc)}"
                result.said = [("scan.error.failed", {"detail": _describe(exc)})]
        pixels = prepared.width * prepared.height * len(prepared.frames) if prepared else 0
        if self._pending and (
            len(self._pending) >= self.settings.batch_size
            or self._pending_pixels + pixels > self.settings.max_image_pixels
        ):
            await self.flush()
        self._pending.append((result, prepared))
        self._pending_pixels += pixels

    async def flush(self) -> None:
        """Run the detectors on the queued images and record their results in input order."""
        batch, self._pending, self._pending_pixels = self._pending, [], 0
        ready = [(result, prepared) for result, prepared in batch if prepared is not None]
        await self._detect(ready)
        for result, _ in batch:
            self._record(result)

    async def _detect(self, ready: list[tuple[ScanResult, PreparedImage]]) -> None:
        if not ready:
            return
        try:
            scans = await self.scanner.scan_images([prepared for _, prepared in ready])
        except Exception as exc:  # a detector failure must not stop the run (contract)
            if len(ready) > 1:  # find the image that fails: the others still get verdicts
                for item in ready:
                    await self._detect([item])
                return
            log.exception("detectors failed on %s", ready[0][0].source)
            ready[0][0].error = f"scan failed: {_describe(exc)}"
            ready[0][0].said = [("scan.error.detectors", {"detail": _describe(exc)})]
            return
        for (result, _), scan in zip(ready, scans, strict=True):
            result.verdict = scan.verdict

    async def url(self, fetcher: SafeFetcher, url: str) -> None:
        """One result for a URL: the worst verdict over the image(s) it is or unfurls to."""
        from bot.media.decode import MediaError

        await self.flush()
        result = ScanResult(url, "url", error=self._no_image)
        if result.error is not None:
            result.said = self._no_image_said
        else:
            verdicts: list[Verdict] = []
            errors: list[str] = []
            said: list[Said] = []
            try:
                for item in await fetcher.fetch_media(url):
                    if item.error or item.data is None:
                        errors.append(item.error or "no content")
                        said.append(
                            fetch_error(item.error) if item.error else ("scan.error.no_content", {})
                        )
                        continue
                    try:
                        prepared = await self._prepare(item.data, item.final_url or url)
                        [scan] = await self.scanner.scan_images([prepared])
                        verdicts.append(scan.verdict)
                    except MediaError as exc:
                        errors.append(f"{item.final_url or item.url}: {exc}")
                        said.append(
                            (
                                "scan.error.at",
                                {
                                    "url": item.final_url or item.url,
                                    "reason": (f"unscanned.{exc.code}", {}),
                                },
                            )
                        )
            except Exception as exc:  # fetcher and decoder report failures; this is a bug
                log.exception("scanning %s failed", url)
                errors.append(f"scan failed: {_describe(exc)}")
                said.append(("scan.error.failed", {"detail": _describe(exc)}))
            if verdicts:
                result.verdict = max(verdicts, key=lambda v: v.severity)
                result.notes = errors
            else:
                result.error = "; ".join(errors) or NO_IMAGE_AT_URL
                result.said = said or [("scan.error.no_image_at_url", {})]
        self._record(result)

    async def texts(self, lines: list[str], source: str, reply_context: bool) -> None:
        """Each non-empty line is one chat message; its source is `FILE:LINE`."""
        await self.flush()
        texts = [
            TextInput(
                line,
                replies_to_image=reply_context,
                addresses_image_ai=reply_context,
                source=f"{source}:{number}",
            )
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]
        if self._no_text is not None:
            for text in texts:
                self._record(
                    ScanResult(text.source, "text", error=self._no_text, said=self._no_text_said)
                )
            return
        for text, verdict in zip(texts, await self.scanner.scan_texts(texts), strict=True):
            self._record(ScanResult(text.source, "text", verdict))


async def run_scan(
    settings: Settings,
    inputs: list[str],
    text_file: Path | None,
    reply_context: bool,
    as_json: bool,
    show_all: bool = False,
) -> int:
    """Scan everything and print results; returns the exit status (exits 2 on configuration)."""
    from bot.core.suite import build_scanner
    from bot.media.fetch import SafeFetcher

    locale = settings.default_locale
    lines = read_text_lines(text_file, locale) if text_file is not None else []
    items = expand_inputs(inputs, locale)
    try:
        scanner = await build_scanner(settings, await load_bank(settings))
    except DetectorError as exc:
        fail(t("cli.config_error", locale, detail=str(exc)))
    from bot.cli.scan_table import logs_after_the_table, replay, summarise

    progress = Progress(  # on stderr (console), gone once done: stdout keeps only results
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with logs_after_the_table(not as_json) as held, progress:
        total = len(items) + sum(1 for line in lines if line.strip())
        run = ScanRun(
            scanner,
            settings,
            as_json,
            progress,
            progress.add_task(t("cli.scanning", locale), total=total),
        )
        async with SafeFetcher(
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            allow_loopback=settings.fetch_allow_loopback,
        ) as fetcher:
            for kind, source in items:
                if kind == "url":
                    await run.url(fetcher, source)
                else:
                    await run.image_file(source)
            await run.flush()
        if text_file is not None:
            await run.texts(lines, str(text_file), reply_context)
    summarise(run.results, as_json, locale, show_all)
    replay(held, locale)
    if any(r.severity >= Severity.REVIEW for r in run.results):
        return EXIT_FLAGGED
    # An input that could not be scanned is not a clean one: a script that reads 0 as "all
    # clean" must not be told so while a file was corrupt or a URL refused.
    return EXIT_UNSCANNED if any(r.error for r in run.results) else EXIT_OK


def register(cli: click.Group) -> None:
    """Adds `scan` to the `veille` group."""

    @cli.command()
    @click.argument("inputs", nargs=-1)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON lines).")
    @click.option(
        "--text-file",
        type=click.Path(path_type=Path, allow_dash=True),
        default=None,
        help="Also scan each non-empty line of FILE (- for stdin) as one chat message.",
    )
    @click.option(
        "--reply-context",
        is_flag=True,
        help="Treat text lines as replies to an image addressed to an image AI.",
    )
    @click.option(
        "--detectors", default=None, help="Comma-separated detectors (default: VEILLE_DETECTORS)."
    )
    @click.option(
        "--all",
        "show_all",
        is_flag=True,
        help="List every input in the table, not only flagged and failed ones.",
    )
    def scan(
        inputs: tuple[str, ...],
        as_json: bool,
        text_file: Path | None,
        reply_context: bool,
        detectors: str | None,
        show_all: bool,
    ) -> None:
        """Scan image files, folders and URLs (and text lines) with the detector suite.

        Exit 0: all scanned, nothing flagged; 1: something flagged; 2: usage or configuration
        error; 3: nothing flagged, but some input could not be scanned."""
        overrides = {"detectors": detectors} if detectors else {}
        settings = get_settings(**overrides)
        if not inputs and text_file is None:
            fail(t("scan.nothing_to_scan", settings.default_locale), EXIT_USAGE)
        raise SystemExit(
            asyncio.run(
                run_scan(settings, list(inputs), text_file, reply_context, as_json, show_all)
            )
        )
