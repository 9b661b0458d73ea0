"""The inbox: every platform event recorded before any work on it, and the work queue of the
gateway and worker roles.

Discord does not deliver a message event twice, and Slack retries only for seconds, so an event
that was received but not decided when the process died would be lost. `record()` writes the
neutral MessageEvent first; the Decision's transaction marks it done (`mark_done`), or `settle()` does
when it was exempt. Each pending row is held by at most one process at a time, under a lease
(`claimed_by`, `lease_until`):
- a process that decides events itself (role `all`) records each one already held by itself;
  if it dies, the lease lapses and `Veille.replay_inbox` (any process) claims and decides it;
- a gateway records events unheld; workers `claim()` them, oldest first, each row going to
  one worker (FOR UPDATE SKIP LOCKED on PostgreSQL, the single write lock on SQLite). A worker
  killed mid-job leaves its lease to lapse, then another worker claims the event again; a
  worker that stops cleanly `release()`s what it held.
Delivery is thus at least once; the unique ticket and outbox keys make deciding an event twice
harmless. An event that fails MAX_ATTEMPTS times is marked dead with its error rather than
replayed forever.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.clock import as_utc
from bot.core.types import Actor, MediaRef, MessageEvent, Platform, RepliedMessage
from bot.store import repos
from bot.store.models import InboxEvent
from bot.store.repos import Store

REPLAY_AGE_S = 60.0  # the default lease (VEILLE_INBOX_LEASE_S): longer than any one scan
MAX_ATTEMPTS = 3


def to_json(event: MessageEvent) -> dict[str, Any]:
    data = asdict(event)
    data["platform"] = str(event.platform)
    data["created_at"] = event.created_at.isoformat() if event.created_at else None
    data["author"] = event.author.to_json()
    if event.reply_to is not None:
        data["reply_to"]["author"] = event.reply_to.author.to_json()
    return data


def from_json(data: dict[str, Any]) -> MessageEvent:
    actor = Actor.from_json
    reply = data.get("reply_to")
    created = data.get("created_at")
    return MessageEvent(
        **{
            **data,
            "platform": Platform(data["platform"]),
            "author": actor(data["author"]),
            "media": tuple(MediaRef(**ref) for ref in data.get("media") or ()),
            "reply_to": RepliedMessage(**{**reply, "author": actor(reply["author"])})
            if reply
            else None,
            "created_at": datetime.fromisoformat(created) if created else None,
        }
    )


def event_key(event: MessageEvent) -> str:
    """One key per distinct delivery: the same message delivered twice shares it, an edit that
    changed its text or media does not."""
    content = json.dumps([event.text, [ref.key for ref in event.media]], ensure_ascii=False)
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{event.platform}:{event.workspace_id}:{event.channel_id}:{event.message_id}:{digest}"[
        :300
    ]


async def record(
    store: Store,
    event: MessageEvent,
    now: datetime,
    *,
    owner: str | None = None,
    lease_s: float = REPLAY_AGE_S,
) -> int | None:
    """The pending row for `event` (created now), or None when this delivery is already done
    or being decided by another process. With `owner` the caller decides it now and holds it
    for `lease_s`; without, it waits for a worker's `claim` (the gateway role)."""
    key = event_key(event)
    lease = now + timedelta(seconds=lease_s) if owner is not None else None
    try:
        async with store.write(touches_settings=False) as session:
            fresh = {
                "key": key,
                "payload": to_json(event),
                "received_at": now,
                "claimed_by": owner,
                "lease_until": lease,
            }
            new_id = await repos.insert_new(session, InboxEvent, fresh, ("key",))
            if new_id is not None:
                return new_id  # the usual case: one statement
            found = await session.execute(select(InboxEvent).where(col(InboxEvent.key) == key))
            row = found.scalar_one_or_none()
            if row is None:  # recorded and purged between the two statements
                return None
            if row.status != "pending" or owner is None:
                return None  # done, dead, or already waiting for a worker
            held = row.lease_until is not None and as_utc(row.lease_until) > now
            if held and row.claimed_by != owner:
                return None  # another process is deciding this very delivery now
            row.claimed_by, row.lease_until = owner, lease
            return row.id
    except IntegrityError:  # another process recorded the same delivery at the same moment
        return None


async def claim(
    store: Store, owner: str, now: datetime, *, lease_s: float, limit: int = 16
) -> list[tuple[int, MessageEvent]]:
    """Up to `limit` pending events nobody holds (never claimed, or their holder's lease ran
    out: it crashed), oldest first, now held by `owner` for `lease_s` (`repos.claim_free`)."""
    async with store.write() as session:
        rows = await repos.claim_free(
            session,
            InboxEvent,
            col(InboxEvent.status) == "pending",
            owner=owner,
            now=now,
            until=now + timedelta(seconds=lease_s),
            limit=limit,
        )
        return [(int(row.id or 0), from_json(row.payload)) for row in rows]


async def settle(store: Store, inbox_id: int | None) -> None:
    """Mark the event done on its own (an exempt message: no Decision to commit with it)."""
    if inbox_id is None:
        return
    async with store.write(touches_settings=False) as session:
        await mark_done(session, inbox_id)


async def mark_done(session: AsyncSession, inbox_id: int | None) -> None:
    """Mark the event done inside the caller's transaction: the Decision's own (decisions.commit),
    so the decision and the end of its event commit together, with one write fewer per event."""
    if inbox_id is not None:
        events = repos.table_of(InboxEvent)
        await session.execute(update(events).where(events.c.id == inbox_id).values(status="done"))


async def failed(store: Store, inbox_id: int | None, error: str) -> None:
    """Count a failed attempt; the row stays pending for a replay, or is dead after MAX_ATTEMPTS."""
    if inbox_id is None:
        return
    async with store.write() as session:
        row = await session.get(InboxEvent, inbox_id)
        if row is not None and row.status == "pending":
            row.attempts += 1
            row.last_error = error[:2000]
            if row.attempts >= MAX_ATTEMPTS:
                row.status = "dead"


async def release(store: Store, owner: str) -> int:
    """Hand back the events `owner` still holds undecided (a worker stopping): the next claim
    takes them at once instead of after the lease. Returns how many."""
    async with store.write() as session:
        released = await session.execute(
            update(InboxEvent)
            .where(col(InboxEvent.status) == "pending", col(InboxEvent.claimed_by) == owner)
            .values(claimed_by=None, lease_until=None)
        )
        return int(released.rowcount or 0)  # type: ignore[attr-defined]


async def backlog(store: Store, now: datetime, older_than: timedelta) -> tuple[int, int]:
    """(events still undecided `older_than` after they were received, events dead): what
    `veille doctor` warns about (no worker running, a message that keeps failing)."""
    async with store.read() as session:
        stale = await session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(
                col(InboxEvent.status) == "pending",
                col(InboxEvent.received_at) < now - older_than,
            )
        )
        dead = await session.scalar(
            select(func.count()).select_from(InboxEvent).where(col(InboxEvent.status) == "dead")
        )
    return int(stale or 0), int(dead or 0)
