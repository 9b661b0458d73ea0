"""Hash banks in the database (HashEntry rows): read every entry, add, remove, count and import
lists of values that are already valid.

Every function works inside the caller's AsyncSession and only flushes: the caller commits, so
banking a confirmed ticket joins the ticket's own transaction. Adding is idempotent on
(owner, bank, kind, value), the table's unique constraint: the owner is a community
(`workspace_id`) or the operator (None), and each owner's banks are its own.

What a hash *is* (kinds, lengths, list formats, an image's entries) is `detectors/hash_lists.py`'s
business; this module takes its values as plain `HashValue`s, so the store knows no detector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.store.models import HashEntry, HashRemoval

# Where an entry comes from. protected: /protect (bot/core/protect.py); allow entries never block.
SOURCES = ("confirmed", "imported", "allow", "protected")
BATCH = 1000


class HashValue(Protocol):
    """One entry to add: a valid, normalised value of its kind (detectors.hash_lists.NewHash)."""

    @property
    def kind(self) -> str: ...

    @property
    def value(self) -> str: ...

    @property
    def quality(self) -> int | None: ...


@dataclass
class AddResult:
    added: list[HashEntry] = field(default_factory=list)
    duplicates: int = 0


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


async def entry_rows(session: AsyncSession) -> Sequence[Any]:
    """Every stored entry as plain column rows (id, bank, kind, value, source, workspace_id,
    child_abuse; attribute access), for a HashBank: 10^6 ORM objects would be slow."""
    return (await session.execute(_entry_columns())).all()


def _entry_columns() -> Any:
    return select(
        HashEntry.id,
        HashEntry.bank,
        HashEntry.kind,
        HashEntry.value,
        HashEntry.source,  # type: ignore[call-overload]
        HashEntry.workspace_id,
        HashEntry.child_abuse,
    )


async def add_entries(
    session: AsyncSession,
    bank: str,
    hashes: Iterable[HashValue],
    *,
    source: str = "imported",
    added_by: str = "",
    ticket_id: int | None = None,
    workspace_id: int | None = None,
    note: str | None = None,
    child_abuse: bool = False,
) -> AddResult:
    """Store `hashes` in the `bank` of `workspace_id` (None: the operator's); values must be
    valid and normalised (detectors.hash_lists.NewHash is). Those already in that owner's bank,
    or repeated in `hashes`, count as duplicates; another owner's identical entry does not."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (expected one of {', '.join(SOURCES)})")
    if child_abuse and (workspace_id is not None or source == "allow"):
        raise ValueError("only the operator's imported lists can be marked as child abuse")
    result = AddResult()
    items = list(hashes)
    for start in range(0, len(items), BATCH):
        batch: dict[tuple[str, str], HashValue] = {}
        for item in items[start : start + BATCH]:
            key = (item.kind, item.value)
            if key in batch:
                result.duplicates += 1
            else:
                batch[key] = item
        existing = {
            tuple(row)
            for row in (
                await session.execute(
                    select(HashEntry.kind, HashEntry.value).where(  # type: ignore[call-overload]
                        HashEntry.bank == bank,
                        owned_by(workspace_id),
                        tuple_(HashEntry.kind, HashEntry.value).in_(list(batch)),
                    )
                )
            ).all()
        }
        result.duplicates += len(existing)
        fresh = [
            HashEntry(
                bank=bank,
                kind=kind,
                value=value,
                quality=item.quality,
                source=source,
                added_by=added_by,
                ticket_id=ticket_id,
                workspace_id=workspace_id,
                note=note,
                child_abuse=child_abuse,
            )
            for (kind, value), item in batch.items()
            if (kind, value) not in existing
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
    session: AsyncSession,
    ids: Sequence[int] = (),
    *,
    bank: str | None = None,
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
        session.add_all(HashRemoval(entry_id=entry_id) for entry_id in found)
    return found


@dataclass(frozen=True)
class BankChanges:
    """What changed in the stored banks since a process last looked (`changes_since`)."""

    added: Sequence[Any]  # entry rows, as `entry_rows` gives them
    removed: list[int]  # entry ids
    last_entry: int  # the marks to pass next time
    last_removal: int


async def bank_marks(session: AsyncSession) -> tuple[int, int]:
    """The highest entry id and removal id now: where `changes_since` starts."""
    last_entry = await session.scalar(select(func.max(HashEntry.id)))  # type: ignore[arg-type]
    last_removal = await session.scalar(select(func.max(HashRemoval.id)))  # type: ignore[arg-type]
    return int(last_entry or 0), int(last_removal or 0)


async def changes_since(
    session: AsyncSession, last_entry: int, last_removal: int, limit: int = 50_000
) -> BankChanges:
    """Entries added after `last_entry` and removals logged after `last_removal`, in id order
    (ids only grow, so a process that keeps the marks sees each change once)."""
    added = (
        await session.execute(
            _entry_columns()
            .where(col(HashEntry.id) > last_entry)
            .order_by(col(HashEntry.id))
            .limit(limit)
        )
    ).all()
    removals = (
        await session.execute(
            select(HashRemoval.id, HashRemoval.entry_id)  # type: ignore[call-overload]
            .where(col(HashRemoval.id) > last_removal)
            .order_by(col(HashRemoval.id))
            .limit(limit)
        )
    ).all()
    return BankChanges(
        added,
        [row.entry_id for row in removals],
        int(added[-1].id) if added else last_entry,
        int(removals[-1].id) if removals else last_removal,
    )


async def bank_counts(
    session: AsyncSession, bank: str | None = None
) -> list[tuple[str, str, str, int]]:
    """(bank, kind, source, count) rows, sorted."""
    query = (
        select(col(HashEntry.bank), col(HashEntry.kind), col(HashEntry.source), func.count())
        .group_by(HashEntry.bank, HashEntry.kind, HashEntry.source)
        .order_by(HashEntry.bank, HashEntry.kind, HashEntry.source)
    )
    if bank is not None:
        query = query.where(col(HashEntry.bank) == bank)
    return [(b, k, s, int(n)) for b, k, s, n in (await session.execute(query)).all()]


async def list_entries(session: AsyncSession, bank: str | None = None) -> list[HashEntry]:
    query = select(HashEntry).order_by(HashEntry.id)  # type: ignore[arg-type]
    if bank is not None:
        query = query.where(HashEntry.bank == bank)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars())


async def import_hashes(
    session: AsyncSession,
    records: Iterable[tuple[int, HashValue | str]],
    bank: str,
    source: str = "imported",
    added_by: str = "",
    *,
    progress: Callable[[int], None] | None = None,
    child_abuse: bool = False,
) -> ImportReport:
    """Import a parsed hash list: `records` are (line number, value or why the line is invalid),
    as detectors.hash_lists.read_hash_list yields them. Invalid lines are reported with their
    numbers and never stop the import; `progress(lines_done)` is called after each batch."""
    report = ImportReport()
    pending: list[HashValue] = []

    async def flush() -> None:
        result = await add_entries(
            session, bank, pending, source=source, added_by=added_by, child_abuse=child_abuse
        )
        report.added += len(result.added)
        report.duplicates += result.duplicates
        pending.clear()

    last = 0
    for number, parsed in records:
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
