"""Hash banks in the database (HashEntry rows): load them into a HashBank, add, remove, import lists,
bank a confirmed ticket's image and allow-list a false positive.

Every function works inside the caller's AsyncSession and only flushes: the caller commits, so
banking a confirmed ticket joins the ticket's own transaction. Adding is idempotent on
(owner, bank, kind, value), the table's unique constraint: the owner is a community
(`workspace_id`) or the operator (None), and each owner's banks are its own.

Accepted import formats (`import_csv`), UTF-8, one record a line, `#` comments and blank lines
skipped:
- plain lists, one hex hash a line: 32 hex characters are MD5; 64 are PDQ *or* SHA-256, so a
  plain list of 64-character hashes needs `kind="pdq"` or `kind="sha256"`;
- CSV/TSV/semicolon files with a header naming a value column (`signal_value`, `hash`, `value`,
  `hash_value`, `indicator`) and optionally a type column (`signal_type`, `hash_type`, `kind`,
  `type`; values like `pdq`, `HASH_PDQ`, `photo_md5`, `sha256`) and a `quality` column — so
  ThreatExchange/HMA-style `signal_type,signal_value` exports load as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.store.models import HashEntry
from detectors.hashes import (
    DEFAULT_MIN_QUALITY,
    EXACT_LENGTHS,
    SOURCES,
    HashBank,
    ImageSignature,
    neardup_parts,
    normalise_value,
)

VALUE_COLUMNS = ("signal_value", "hash", "value", "hash_value", "indicator")
KIND_COLUMNS = ("signal_type", "hash_type", "kind", "type")
BATCH = 1000


@dataclass(frozen=True)
class NewHash:
    kind: str  # pdq | md5 | sha256 | neardup
    value: str
    quality: int | None = None


@dataclass
class AddResult:
    added: list[HashEntry] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


async def load_bank(session: AsyncSession, **bank_options: int) -> HashBank:
    """Every stored entry in a new HashBank (plain column rows: 10^6 ORM objects would be slow)."""
    rows = await session.execute(
        select(HashEntry.id, HashEntry.bank, HashEntry.kind, HashEntry.value, HashEntry.source,  # type: ignore[call-overload]
               HashEntry.workspace_id, HashEntry.child_abuse)
    )
    return HashBank(rows.all(), **bank_options)  # type: ignore[arg-type]


async def add_entries(
    session: AsyncSession, bank: str, hashes: Iterable[NewHash], *, source: str = "imported",
    added_by: str = "", ticket_id: int | None = None, workspace_id: int | None = None,
    note: str | None = None, child_abuse: bool = False,
) -> AddResult:
    """Store `hashes` in the `bank` of `workspace_id` (None: the operator's); values must be
    valid (detectors.hashes.normalise_value). Those already in that owner's bank, or repeated in
    `hashes`, count as duplicates; another owner's identical entry does not."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (expected one of {', '.join(SOURCES)})")
    if child_abuse and (workspace_id is not None or source == "allow"):
        raise ValueError("only the operator's imported lists can be marked as child abuse")
    result = AddResult()
    items = list(hashes)
    for start in range(0, len(items), BATCH):
        batch: dict[tuple[str, str], NewHash] = {}
        for item in items[start : start + BATCH]:
            key = (item.kind, normalise_value(item.kind, item.value))
            if key in batch:
                result.duplicates += 1
            else:
                batch[key] = item
        existing = {tuple(row) for row in (await session.execute(
            select(HashEntry.kind, HashEntry.value).where(  # type: ignore[call-overload]
                HashEntry.bank == bank, owned_by(workspace_id),
                tuple_(HashEntry.kind, HashEntry.value).in_(list(batch)),
            )
        )).all()}
        result.duplicates += len(existing)
        fresh = [
            HashEntry(bank=bank, kind=kind, value=value, quality=item.quality, source=source,
                      added_by=added_by, ticket_id=ticket_id, workspace_id=workspace_id, note=note,
                      child_abuse=child_abuse)
            for (kind, value), item in batch.items() if (kind, value) not in existing
        ]
        session.add_all(fresh)
        await session.flush()
        result.added.extend(fresh)
    return result


def owned_by(workspace_id: int | None) -> Any:
    """The SQL condition "entries of this owner" (None: the operator's)."""
    column = col(HashEntry.workspace_id)
    return column.is_(None) if workspace_id is None else column == workspace_id


async def remove_entries(
    session: AsyncSession, ids: Sequence[int] = (), *, bank: str | None = None,
    value: str | None = None,
) -> list[int]:
    """Delete entries by id, or every entry of `bank` with `value` (any kind). Returns the ids."""
    if ids:
        condition = HashEntry.id.in_(list(ids))  # type: ignore[union-attr]
    elif bank is not None and value is not None:
        condition = (HashEntry.bank == bank) & (HashEntry.value == value.strip().lower())
    else:
        raise ValueError("give entry ids, or a bank and a value")
    found = list((await session.execute(select(HashEntry.id).where(condition))).scalars())  # type: ignore[call-overload]
    if found:
        await session.execute(delete(HashEntry).where(HashEntry.id.in_(found)))  # type: ignore[union-attr]
    return found


SignatureLike = ImageSignature | str | Mapping[str, object] | None


def signature_hashes(
    signature: SignatureLike, sha256: str = "", md5: str = "", *,
    with_neardup: bool = True, min_quality: int = DEFAULT_MIN_QUALITY,
) -> list[NewHash]:
    """The bank entries one image yields: digests always, PDQ only at quality ≥ `min_quality`.
    `signature` may be an ImageSignature, its `to_str()` form or the HashDetector's extras."""
    if isinstance(signature, str):
        signature = ImageSignature.from_str(signature)
    elif isinstance(signature, Mapping):
        signature = ImageSignature.from_extras(signature)
    hashes = [NewHash(k, v) for k, v in (("sha256", sha256), ("md5", md5)) if v]
    if signature is not None:
        if signature.quality >= min_quality:
            hashes.append(NewHash("pdq", signature.pdq, signature.quality))
        if with_neardup:  # windows and keypoints: one row each (HashEntry.value ≤ 2,048)
            hashes += [NewHash("neardup", part, signature.quality)
                       for part in neardup_parts(signature.neardup)]
    return hashes


async def bank_confirmed(
    session: AsyncSession, signature: SignatureLike, sha256: str,
    ticket_id: int | None, added_by: str, workspace_id: int | None, *,
    bank: str = "confirmed", md5: str = "",
) -> AddResult:
    """Bank a confirmed ticket's image: SHA-256 (and MD5), PDQ and its near-duplicate parts."""
    return await add_entries(
        session, bank, signature_hashes(signature, sha256, md5), source="confirmed",
        added_by=added_by, ticket_id=ticket_id, workspace_id=workspace_id,
    )


async def allow_list(
    session: AsyncSession, signature: SignatureLike, sha256: str, added_by: str, *,
    bank: str = "allow", ticket_id: int | None = None, workspace_id: int | None = None,
    note: str | None = None,
) -> AddResult:
    """Allow-list a false positive by SHA-256 and PDQ only: a moderator cleared this image, not
    every crop that shares a window with it, so no near-duplicate entry is stored."""
    return await add_entries(
        session, bank, signature_hashes(signature, sha256, with_neardup=False), source="allow",
        added_by=added_by, ticket_id=ticket_id, workspace_id=workspace_id, note=note,
    )


async def bank_counts(session: AsyncSession, bank: str | None = None) -> list[tuple[str, str, str, int]]:
    """(bank, kind, source, count) rows, sorted."""
    query = select(HashEntry.bank, HashEntry.kind, HashEntry.source, func.count()).group_by(  # type: ignore[call-overload]
        HashEntry.bank, HashEntry.kind, HashEntry.source
    ).order_by(HashEntry.bank, HashEntry.kind, HashEntry.source)
    if bank is not None:
        query = query.where(HashEntry.bank == bank)
    return [(b, k, s, int(n)) for b, k, s, n in (await session.execute(query)).all()]


async def list_entries(session: AsyncSession, bank: str | None = None) -> list[HashEntry]:
    query = select(HashEntry).order_by(HashEntry.id)  # type: ignore[arg-type]
    if bank is not None:
        query = query.where(HashEntry.bank == bank)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars())


# -- importing lists -------------------------------------------------------------------------


def _kind_of(label: str) -> str | None:
    """A type label from a hash-sharing export (`pdq`, `HASH_PDQ`, `photo_md5`...) as our kind."""
    flat = "".join(c for c in label.lower() if c.isalnum())
    for kind in ("pdq", "sha256", "md5"):
        if kind in flat:
            return kind
    return None


def _plain_kind(value: str, forced: str) -> str:
    if forced != "auto":
        return forced
    if len(value) == EXACT_LENGTHS["md5"]:
        return "md5"
    if len(value) == 64:
        raise ValueError("64 hex characters may be PDQ or SHA-256: pass --kind pdq|sha256 "
                         "or add a signal_type column")
    raise ValueError(f"{len(value)} characters is no hash length Veille knows (32 or 64 hex)")


def parse_hash_lines(lines: Iterable[str], kind: str = "auto") -> Iterator[tuple[int, NewHash | str]]:
    """(line number, NewHash or the reason the line is invalid) for every record line."""
    if kind not in ("auto", "pdq", "md5", "sha256"):
        raise ValueError(f"unknown kind {kind!r}")
    numbered = ((n, line.strip()) for n, line in enumerate(lines, start=1))
    records = ((n, line) for n, line in numbered if line and not line.startswith("#"))
    first = next(records, None)
    if first is None:
        return
    header_no, header = first
    delimiter = next((d for d in ("\t", ";", ",") if d in header), ",")
    columns = [c.strip().lower() for c in next(csv.reader([header], delimiter=delimiter))]
    value_col = next((columns.index(c) for c in VALUE_COLUMNS if c in columns), None)
    if value_col is None:  # no header: a plain list (its first line is a record too)
        for number, line in ((header_no, header), *records):
            value = line.split(delimiter)[0].strip().strip('"')
            try:
                found = _plain_kind(value, kind)
                yield number, NewHash(found, normalise_value(found, value))
            except ValueError as exc:
                yield number, str(exc)
        return
    kind_col = next((columns.index(c) for c in KIND_COLUMNS if c in columns), None)
    quality_col = columns.index("quality") if "quality" in columns else None
    for number, line in records:
        cells = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
        try:
            if len(cells) <= value_col:
                raise ValueError("missing the hash column")
            value = cells[value_col]
            row_kind = kind
            if kind_col is not None and kind_col < len(cells) and cells[kind_col]:
                label = _kind_of(cells[kind_col])
                if label is None:
                    raise ValueError(f"unsupported signal type {cells[kind_col]!r}")
                row_kind = label if kind == "auto" else kind
            row_kind = _plain_kind(value, row_kind)
            quality = None
            if quality_col is not None and quality_col < len(cells) and cells[quality_col]:
                quality = int(cells[quality_col])
            yield number, NewHash(row_kind, normalise_value(row_kind, value), quality)
        except ValueError as exc:
            yield number, str(exc)


async def import_csv(
    session: AsyncSession, path: Path, bank: str, source: str = "imported", added_by: str = "", *,
    kind: str = "auto", progress: Callable[[int], None] | None = None, child_abuse: bool = False,
) -> ImportReport:
    """Import a hash list (formats in the module docstring). Invalid lines are reported with
    their numbers and never stop the import; `progress(lines_done)` is called after each batch.
    Raises OSError when the file cannot be read."""
    report = ImportReport()
    pending: list[NewHash] = []

    async def flush() -> None:
        result = await add_entries(session, bank, pending, source=source, added_by=added_by,
                                   child_abuse=child_abuse)
        report.added += len(result.added)
        report.duplicates += result.duplicates
        pending.clear()

    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        last = 0
        for number, parsed in parse_hash_lines(handle, kind):
            last = number
            if isinstance(parsed, str):
                report.invalid.append((number, parsed))
                continue
            pending.append(parsed)
            if len(pending) >= BATCH:
                await flush()
                if progress is not None:
                    progress(number)
        await flush()
        if progress is not None:
            progress(last)
    return report
