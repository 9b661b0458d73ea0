"""`veille hashes import|add|list|remove`: manage the known-content hash banks from a shell.

Every sub-command needs a migrated database (`veille db upgrade`). Exit status: 0 done, 1 some
images or entries could not be handled (each is reported), 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli.common import (
    EXIT_FLAGGED,
    EXIT_OK,
    EXIT_USAGE,
    console,
    fail,
    get_settings,
    missing_sqlite_file,
    schema_state,
    stdout,
)
from bot.core.i18n import plural, t
from bot.settings import Settings
from bot.store import engine as store
from bot.store import hash_repo

if TYPE_CHECKING:  # Pillow and pdqhash load only when an image is hashed
    from detectors.hashes import ImageSignature

T = TypeVar("T")
MAX_INVALID_SHOWN = 50


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A committed-on-success session on a migrated database, or exit 2 saying what to run.
    A SQLite file that does not exist is not created (nor its folder): `hashes list` only reads."""
    locale = settings.default_locale
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:
        fail(t("cli.not_migrated", locale, detail=t("doctor.db_missing", locale, path=missing)))
    engine = store.create_engine(settings.database_url)
    try:
        current = await store.current_revision(engine)
        head = store.head_revision(settings.database_url)
        if current != head:
            fail(t("cli.not_migrated", locale, detail=schema_state(current, head, locale)))
        async with store.transaction(store.session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def _run(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _session(settings) as session:
            return await work(session)

    return asyncio.run(main())


def _check_bank(bank: str, locale: str) -> None:
    if not 1 <= len(bank) <= 64:
        fail(t("hashes.bad_bank", locale))


def _line_numbers(lines: list[int], locale: str) -> str:
    """[1, 2, 3, 5] -> "lines 1–3, 5" (at most ten ranges, then "…")."""
    ranges: list[list[int]] = []
    for line in sorted(lines):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in ranges[:10]]
    text = ", ".join(parts) + (", …" if len(ranges) > 10 else "")
    return plural("hashes.lines", len(lines), locale, numbers=text)


def grouped_invalid(invalid: list[tuple[int, str]], locale: str) -> list[str]:
    """One message per distinct reason, with the lines it applies to: a plain list of
    64-hex hashes without --kind is one problem, not one per line."""
    by_reason: dict[str, list[int]] = {}
    for line, reason in invalid:
        by_reason.setdefault(reason, []).append(line)
    return [
        t("hashes.invalid_lines", locale, lines=_line_numbers(lines, locale), reason=reason)
        for reason, lines in by_reason.items()
    ]


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _signature_of(path: Path, max_pixels: int, max_bytes: int) -> tuple[ImageSignature, str, str]:
    """(ImageSignature, sha256, md5) of an image file. Raises OSError/ValueError when unreadable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from detectors.hashes import compute_signature

    if path.stat().st_size > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    data = path.read_bytes()
    try:
        with Image.open(path) as probe:
            if probe.width * probe.height > max_pixels:
                raise ValueError(f"{probe.width}×{probe.height} pixels is over the limit")
            image = ImageOps.exif_transpose(probe).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ValueError("not an image Pillow can read") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return compute_signature(image), sha256, md5


def register(cli: click.Group) -> None:
    """Adds the `hashes` command group to the `veille` group."""

    @cli.group()
    def hashes() -> None:
        """Known-content hash banks: import lists, bank images, list and remove entries."""

    from bot.cli import hashes_sharing

    hashes_sharing.register(hashes)

    @hashes.command(name="import")
    @click.argument("file", type=click.Path(path_type=Path))
    @click.option("--bank", required=True, help="Bank to add to (created on first use).")
    @click.option(
        "--kind",
        type=click.Choice(["auto", "pdq", "md5", "sha256"]),
        default="auto",
        show_default=True,
        help="Hash kind when the file has no signal_type column "
        "(64-hex plain lists need pdq or sha256).",
    )
    @click.option(
        "--source",
        type=click.Choice(["imported", "allow"]),
        default="imported",
        show_default=True,
        help="allow: the hashes suppress matches (false positives).",
    )
    @click.option(
        "--child-abuse",
        is_flag=True,
        help="The list is of child sexual abuse material (a hash-sharing programme's): "
        "a match is CRITICAL — removed at once, no image kept, admins alerted.",
    )
    def import_(file: Path, bank: str, kind: str, source: str, child_abuse: bool) -> None:
        """Import a hash list: plain one-hash-per-line, or CSV with signal_type,signal_value."""
        from detectors.hash_lists import read_hash_list

        settings = get_settings()
        locale = settings.default_locale
        _check_bank(bank, locale)
        if child_abuse and source == "allow":
            fail(t("hashes.child_abuse_allow", locale))
        try:
            total = _count_lines(file)
        except OSError as exc:
            fail(t("hashes.unreadable_file", locale, file=file, detail=exc.strerror or exc))
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        with progress:
            task = progress.add_task(t("hashes.importing", locale, file=file.name), total=total)
            report = _run(
                settings,
                lambda s: hash_repo.import_hashes(
                    s,
                    read_hash_list(file, kind),
                    bank,
                    source,
                    "cli",
                    child_abuse=child_abuse,
                    progress=lambda done: progress.update(task, completed=done),
                ),
            )
        messages = grouped_invalid(report.invalid, locale)
        for message in messages[:MAX_INVALID_SHOWN]:
            console.print(f"[yellow]![/] {message}")
        if len(messages) > MAX_INVALID_SHOWN:
            console.print(t("hashes.more_invalid", locale, count=len(messages) - MAX_INVALID_SHOWN))
        stdout.print(
            t(
                "hashes.imported",
                locale,
                file=file.name,
                added=report.added,
                bank=bank,
                duplicates=report.duplicates,
                invalid=len(report.invalid),
            )
        )
        raise SystemExit(EXIT_FLAGGED if report.invalid else EXIT_OK)

    @hashes.command()
    @click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--bank", required=True, help="Bank to add to (created on first use).")
    @click.option("--allow", is_flag=True, help="Allow-list these images (false positives).")
    def add(images: tuple[Path, ...], bank: str, allow: bool) -> None:
        """Bank image files: SHA-256, MD5, PDQ and crop-robust windows and keypoints (--allow: digests and PDQ only)."""
        from bot.core import banks
        from detectors.hashes import DEFAULT_MIN_QUALITY

        settings = get_settings()
        locale = settings.default_locale
        _check_bank(bank, locale)

        async def work(session: AsyncSession) -> int:
            ok = 0
            for path in images:
                try:
                    signature, sha256, md5 = await asyncio.to_thread(
                        _signature_of, path, settings.max_image_pixels, settings.fetch_max_bytes
                    )
                except (OSError, ValueError) as exc:
                    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    console.print(
                        f"[red]✗[/] {t('hashes.image_unreadable', locale, file=path, detail=detail)}"
                    )
                    continue
                if allow:  # digests and PDQ: this image was cleared, not its crops
                    result = await banks.allow_list(
                        session, signature, sha256, "cli", bank=bank, md5=md5
                    )
                else:
                    result = await banks.bank_confirmed(
                        session, signature, sha256, None, "cli", None, bank=bank, md5=md5
                    )
                quality = signature.quality
                stdout.print(
                    t(
                        "hashes.image_added",
                        locale,
                        file=path,
                        added=len(result.added),
                        bank=bank,
                        duplicates=result.duplicates,
                        quality=quality,
                    )
                )
                if quality < DEFAULT_MIN_QUALITY:
                    console.print(
                        f"[yellow]![/] {t('hashes.image_low_quality', locale, file=path, quality=quality, minimum=DEFAULT_MIN_QUALITY)}"
                    )
                ok += 1
            return ok

        ok = _run(settings, work)
        console.print(t("hashes.images_summary", locale, ok=ok, total=len(images)))
        raise SystemExit(EXIT_OK if ok == len(images) else EXIT_FLAGGED)

    @hashes.command(name="list")
    @click.option("--bank", default=None, help="Show this bank's entries instead of the counts.")
    @click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
    def list_(bank: str | None, as_json: bool) -> None:
        """Banks with entry counts by kind and source, or the entries of one --bank."""
        settings = get_settings()
        locale = settings.default_locale
        if bank is None:
            counts = _run(settings, hash_repo.bank_counts)
            if as_json:
                click.echo(
                    json.dumps(
                        [{"bank": b, "kind": k, "source": s, "count": n} for b, k, s, n in counts]
                    )
                )
                return
            if not counts:
                stdout.print(t("hashes.no_entries", locale))
                return
            table = Table(
                *(t(f"hashes.col.{c}", locale) for c in ("bank", "kind", "source", "count"))
            )
            for b, k, s, n in counts:
                table.add_row(b, k, s, str(n))
            stdout.print(table)
            return
        entries = _run(settings, lambda s: hash_repo.list_entries(s, bank))
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            "id": e.id,
                            "bank": e.bank,
                            "kind": e.kind,
                            "value": e.value,
                            "quality": e.quality,
                            "source": e.source,
                            "added_by": e.added_by,
                            "ticket_id": e.ticket_id,
                            "workspace_id": e.workspace_id,  # the owning community; null: the operator
                            "added_at": e.added_at.isoformat() if e.added_at else None,
                        }
                        for e in entries
                    ]
                )
            )
            return
        if not entries:
            stdout.print(t("hashes.no_entries", locale))
            return
        table = Table(
            *(
                t(f"hashes.col.{c}", locale)
                for c in ("id", "kind", "source", "value", "added_by", "added_at")
            )
        )
        for e in entries:
            value = e.value if len(e.value) <= 64 else f"{e.value[:40]}… ({len(e.value)} chars)"
            table.add_row(
                str(e.id),
                e.kind,
                e.source,
                value,
                e.added_by,
                e.added_at.strftime("%Y-%m-%d %H:%M") if e.added_at else "",
            )
        stdout.print(table)

    @hashes.command()
    @click.argument("ids", nargs=-1, type=int)
    @click.option("--bank", default=None, help="With --value: remove this value from this bank.")
    @click.option("--value", default=None, help="The hash value (hex) to remove.")
    def remove(ids: tuple[int, ...], bank: str | None, value: str | None) -> None:
        """Remove entries by ID, or by --bank NAME --value HEX."""
        settings = get_settings()
        locale = settings.default_locale
        by_value = bank is not None and value is not None
        if (bool(ids) and (bank is not None or value is not None)) or (not ids and not by_value):
            fail(t("hashes.remove_usage", locale), EXIT_USAGE)
        removed = _run(settings, lambda s: hash_repo.remove_entries(s, ids, bank=bank, value=value))
        if not removed:
            console.print(t("hashes.nothing_removed", locale))
            raise SystemExit(EXIT_FLAGGED)
        stdout.print(plural("hashes.removed_n", len(removed), locale))
