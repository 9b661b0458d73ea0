"""Repositories for the core: workspaces, tickets, the audit trail, media, offenders, scans.

`Store` serialises writers inside one process: SQLite allows one writer at a time and a deferred
transaction that reads then writes can fail at once with SQLITE_BUSY under WAL, which
busy_timeout does not cover. Readers never wait. Unique keys still guard against a second process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from bot.store.engine import session_factory
from bot.store.models import (
    ChannelOverride,
    MediaItem,
    Offender,
    ScanRecord,
    Ticket,
    TicketEvent,
    Workspace,
)

log = logging.getLogger(__name__)

BOT_ACTOR, BOT_NAME = "veille", "Veille"  # who an audit event names when Veille itself acted


class Store:
    """Sessions on one engine: `read()` for queries, `write()` for one committed transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.factory = session_factory(engine)
        self._write_lock = asyncio.Lock()
        # Bumped after every committed write that may have changed a community's settings:
        # what is cached of them in this process (Veille._decision_context) is read again.
        self.generation = 0

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        session = self.factory()
        try:
            yield session
        finally:
            await uninterrupted(session.close())

    @asynccontextmanager
    async def write(self, *, touches_settings: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction: committed on success, rolled back on error. Every write counts as
        one that may change a community's settings unless it says otherwise: only the hot path
        of a message (its inbox row, its Decision) passes `touches_settings=False`.

        A stop cancels tasks wherever they are; one that lands in the commit or in the hand-back
        of the connection waits for it to finish, so a commit's outcome is never left uncertain
        and the pool never resets a connection halfway (it would log an error and drop it)."""
        async with self._write_lock:
            session = self.factory()
            attempted = False
            try:
                yield session
                attempted = True
                await uninterrupted(session.commit())
            finally:
                # Counted once a commit was attempted, even if a stop was raised after it: a
                # spare bump only makes the settings cache read again.
                if attempted and touches_settings:
                    self.generation += 1
                await uninterrupted(session.close())  # rolls back what was not committed


Leased = TypeVar("Leased", bound=Any)
Result = TypeVar("Result")


STOP_GRACE_S = 10.0  # how long a stop waits for a commit in flight before cutting it short


async def uninterrupted(step: Awaitable[Result], grace_s: float = STOP_GRACE_S) -> Result:
    """Await `step` to its end even when this task is cancelled meanwhile, then let the
    cancellation go on (raised even when the step failed or finished at the same moment): for
    the few awaits (a commit, a connection's hand-back) that must not be cut in two. A step
    still running `grace_s` after the cancellation (a stalled database server) is cancelled."""
    task = asyncio.ensure_future(step)
    me = asyncio.current_task()
    requests = me.cancelling() if me is not None else 0
    loop = asyncio.get_running_loop()
    stopped_at: float | None = None
    while not task.done():
        try:
            if stopped_at is None:
                await asyncio.shield(task)
                continue
            left = stopped_at + grace_s - loop.time()
            if left <= 0:
                log.warning("a stop waited %.0f s for a database step: cutting it short", grace_s)
                task.cancel()
                left = grace_s
            await asyncio.wait({task}, timeout=left)
        except asyncio.CancelledError:
            if stopped_at is None and not task.done():  # this task was cancelled, not the step
                stopped_at = loop.time()
        except Exception:  # the step's own error: task.result() raises it below
            pass
    if stopped_at is not None or (me is not None and me.cancelling() > requests):
        if not task.cancelled() and task.exception() is not None:
            log.warning("a database step failed during a stop: %r", task.exception())
        raise asyncio.CancelledError
    return task.result()


def table_of(model: type[Any]) -> Table:
    """The Core table of a model: statements on it skip the ORM's per-statement work (a
    quarter of a hot-path statement's cost through aiosqlite), for rows nothing holds in a
    session."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def insert_new(
    session: AsyncSession, model: type[Any], values: dict[str, Any], unique: Sequence[str]
) -> int | None:
    """One INSERT … ON CONFLICT (`unique`) DO NOTHING: the new row's id, or None when the unique
    key already held a row (a duplicate delivery, or another process a moment before). No read
    first and no savepoint: the hot path of every scanned message. PostgreSQL answers the id
    with RETURNING; SQLite from the cursor (the rows it changed, its last rowid), which spares
    a fetch, one more trip to aiosqlite's thread."""
    from sqlalchemy.dialects import postgresql, sqlite

    bind = session.bind
    table = table_of(model)
    if bind is not None and bind.dialect.name == "postgresql":
        statement = (
            postgresql.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(unique))
            .returning(table.c.id)
        )
        return (await session.execute(statement)).scalar_one_or_none()
    result = await session.execute(
        sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(unique))
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult for INSERT
        return None
    return int(result.lastrowid)  # type: ignore[attr-defined]


async def claim_free(
    session: AsyncSession,
    model: type[Leased],
    condition: Any,
    *,
    owner: str,
    now: datetime,
    until: datetime,
    limit: int,
) -> list[Leased]:
    """Up to `limit` rows of `model` (a table with `id`, `claimed_by`, `lease_until`) meeting
    `condition` that nobody holds — never claimed, or their holder's lease ran out — oldest
    first, now held by `owner` until `until`. One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
    LOCKED) … RETURNING: on PostgreSQL concurrent claimants skip each other's rows instead of
    queueing on them; on SQLite (no FOR UPDATE) it runs under the single write lock. Either way
    each row goes to one claimant."""
    free = or_(col(model.lease_until).is_(None), col(model.lease_until) < now)
    candidates = (
        select(model.id)
        .where(condition, free)
        .order_by(col(model.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.scalars(
        update(model)
        .where(col(model.id).in_(candidates), condition, free)
        .values(claimed_by=owner, lease_until=until)
        .returning(model)
    )
    return sorted(claimed.all(), key=lambda row: row.id)


async def get_workspace(session: AsyncSession, platform: str, external_id: str) -> Workspace | None:
    found = await session.execute(
        select(Workspace).where(
            col(Workspace.platform) == platform, col(Workspace.external_id) == external_id
        )
    )
    return found.scalar_one_or_none()


async def ensure_workspace(
    session: AsyncSession, platform: str, external_id: str, *, name: str = "", locale: str = "en"
) -> Workspace:
    """The workspace row, created with defaults the first time a platform id is seen."""
    workspace = await get_workspace(session, platform, external_id)
    if workspace is not None:
        if name and workspace.name != name:
            workspace.name = name
        return workspace
    try:
        async with session.begin_nested():
            workspace = Workspace(
                platform=platform, external_id=external_id, name=name, locale=locale
            )
            session.add(workspace)
        return workspace
    except IntegrityError:  # another process created it first
        existing = await get_workspace(session, platform, external_id)
        assert existing is not None
        return existing


async def channel_override(
    session: AsyncSession, workspace_id: int, channel_id: str
) -> ChannelOverride | None:
    found = await session.execute(
        select(ChannelOverride).where(
            col(ChannelOverride.workspace_id) == workspace_id,
            col(ChannelOverride.channel_id) == channel_id,
        )
    )
    return found.scalar_one_or_none()


async def set_channel_override(
    session: AsyncSession,
    workspace_id: int,
    channel_id: str,
    *,
    sensitivity: str | None = None,
    allow_listed: bool | None = None,
) -> ChannelOverride:
    row = await channel_override(session, workspace_id, channel_id)
    if row is None:
        row = ChannelOverride(workspace_id=workspace_id, channel_id=channel_id)
        session.add(row)
    if sensitivity is not None:
        row.sensitivity = sensitivity or None
    if allow_listed is not None:
        row.allow_listed = allow_listed
    return row


async def channel_overrides(session: AsyncSession, workspace_id: int) -> list[ChannelOverride]:
    found = await session.execute(
        select(ChannelOverride).where(col(ChannelOverride.workspace_id) == workspace_id)
    )
    return list(found.scalars())


async def find_ticket(
    session: AsyncSession, workspace_id: int, channel_id: str, message_id: str, media_key: str
) -> Ticket | None:
    found = await session.execute(
        select(Ticket).where(
            col(Ticket.workspace_id) == workspace_id,
            col(Ticket.channel_id) == channel_id,
            col(Ticket.message_id) == message_id,
            col(Ticket.media_key) == media_key,
        )
    )
    return found.scalar_one_or_none()


async def open_ticket(session: AsyncSession, ticket: Ticket) -> tuple[Ticket, bool]:
    """Insert `ticket` unless its (workspace, channel, message, media) already has one.
    Returns the stored ticket and whether it is new; the unique key decides under races."""
    existing = await find_ticket(
        session, ticket.workspace_id, ticket.channel_id, ticket.message_id, ticket.media_key
    )
    if existing is not None:
        return existing, False
    try:
        async with session.begin_nested():
            session.add(ticket)
        return ticket, True
    except IntegrityError:
        again = await find_ticket(
            session, ticket.workspace_id, ticket.channel_id, ticket.message_id, ticket.media_key
        )
        assert again is not None
        return again, False


async def ticket_in(session: AsyncSession, workspace_id: int, ticket_id: int) -> Ticket | None:
    ticket = await session.get(Ticket, ticket_id)
    return ticket if ticket is not None and ticket.workspace_id == workspace_id else None


async def list_tickets(
    session: AsyncSession, workspace_id: int, status: str | None, limit: int
) -> list[Ticket]:
    """Tickets newest first; status "open" means not resolved (open, claimed or escalated),
    "all" or None means every ticket. Priority tickets (help requests) come first."""
    query = select(Ticket).where(col(Ticket.workspace_id) == workspace_id)
    if status == "open":
        query = query.where(col(Ticket.status) != "resolved")
    elif status and status != "all":
        query = query.where(col(Ticket.status) == status)
    query = query.order_by(
        col(Ticket.priority).desc(), col(Ticket.created_at).desc(), col(Ticket.id).desc()
    )
    found = await session.execute(query.limit(limit))
    return list(found.scalars())


async def count_tickets(session: AsyncSession, workspace_id: int) -> dict[str, int]:
    found = await session.execute(
        select(col(Ticket.status), func.count())
        .where(col(Ticket.workspace_id) == workspace_id)
        .group_by(Ticket.status)
    )
    return {status: count for status, count in found.all()}


def audit(
    session: AsyncSession,
    *,
    workspace_id: int | None,
    ticket_id: int | None,
    actor_id: str = BOT_ACTOR,
    actor_name: str = BOT_NAME,
    action: str,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime,
) -> TicketEvent:
    """Add one audit event; the actor defaults to Veille itself (bot.core.audit takes an Actor)."""
    event = TicketEvent(
        ticket_id=ticket_id,
        workspace_id=workspace_id,
        actor_id=actor_id,
        actor_name=actor_name[:200],
        action=action,
        note=note,
        data=data or {},
        at=at,
    )
    session.add(event)
    return event


async def ticket_events(session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    found = await session.execute(
        select(TicketEvent)
        .where(col(TicketEvent.ticket_id) == ticket_id)
        .order_by(col(TicketEvent.id))
    )
    return list(found.scalars())


async def media_item(session: AsyncSession, sha256: str) -> MediaItem | None:
    found = await session.execute(select(MediaItem).where(col(MediaItem.sha256) == sha256))
    return found.scalar_one_or_none()


async def record_media(
    session: AsyncSession,
    *,
    sha256: str,
    mime: str,
    width: int | None,
    height: int | None,
    verdict: dict[str, Any] | None,
    verdict_key: str | None,
    pdq: str | None,
    pdq_quality: int | None,
    seen_at: datetime,
    counted: bool = True,
    signature: str | None = None,
) -> MediaItem:
    """Upsert the verdict cache row for `sha256`; a cached verdict keeps its key, a stored
    signature is kept (`signature` fills one only where there was none)."""
    item = await media_item(session, sha256)
    if item is None:
        item = MediaItem(sha256=sha256, first_seen_at=seen_at, seen_count=0)
        session.add(item)
    item.mime = mime or item.mime
    item.width = width if width is not None else item.width
    item.height = height if height is not None else item.height
    if verdict is not None:
        item.verdict, item.verdict_key = verdict, verdict_key
    if pdq:
        item.pdq, item.pdq_quality = pdq, pdq_quality
    if signature and not item.signature:
        item.signature = signature
    if counted:
        item.seen_count = (item.seen_count or 0) + 1
    item.last_seen_at = seen_at
    await session.flush()
    return item


async def touch_media(session: AsyncSession, sha256: str, seen_at: datetime) -> bool:
    """Count one more sighting of a known image in one UPDATE (the hot path of a viral repeat
    answered from the verdict cache); False when there is no row for it yet."""
    media = table_of(MediaItem)
    result = await session.execute(
        update(media)
        .where(media.c.sha256 == sha256)
        .values(seen_count=func.coalesce(media.c.seen_count, 0) + 1, last_seen_at=seen_at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_verdicts(session: AsyncSession, sha256s: Sequence[str]) -> None:
    """Drop cached verdicts: a bank changed, so these images must go through the detectors again."""
    if sha256s:
        await session.execute(
            update(MediaItem)
            .where(col(MediaItem.sha256).in_(list(sha256s)))
            .values(verdict=None, verdict_key=None)
        )


async def trim_verdicts(session: AsyncSession, older_than: datetime) -> int:
    """Forget cached verdicts of media not seen since `older_than` (rows stay: tickets link them)."""
    result = await session.execute(
        update(MediaItem)
        .where(col(MediaItem.last_seen_at) < older_than, col(MediaItem.verdict).is_not(None))
        .values(verdict=None, verdict_key=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)  # a CursorResult for UPDATE


async def count_offence(
    session: AsyncSession, workspace_id: int, user_id: str, at: datetime
) -> int:
    """Count one more offence for the author; returns the new count."""
    found = await session.execute(
        select(Offender).where(
            col(Offender.workspace_id) == workspace_id, col(Offender.user_id) == user_id
        )
    )
    offender = found.scalar_one_or_none()
    if offender is None:
        offender = Offender(workspace_id=workspace_id, user_id=user_id, count=0)
        session.add(offender)
    offender.count += 1
    offender.last_at = at
    return offender.count


async def record_scan(
    session: AsyncSession,
    workspace_id: int,
    channel_id: str,
    kind: str,
    severity: str,
    categories: list[str],
    at: datetime,
) -> None:
    """One scan, for the digests (a Core INSERT: no unit of work on every message's path)."""
    await session.execute(
        insert(table_of(ScanRecord)).values(
            workspace_id=workspace_id,
            channel_id=channel_id,
            kind=kind,
            severity=severity,
            categories=categories,
            at=at,
        )
    )
