"""The inbox: every platform event recorded before any work on it, replayed if that work never
finished (a crash mid-scan, a kill -9 before the decision was committed).

Discord does not deliver a message event twice, and Slack retries only for seconds, so an event
that was received but not decided when the process died would be lost. `record()` writes the
neutral MessageEvent first; `settle()` marks it done once its Decision is committed (or it was
exempt). `Veille` replays rows still pending after REPLAY_AGE_S — old enough that no live
process is still scanning them — through the same `handle_message`, whose unique ticket keys
make a replay of half-finished work harmless. An event that fails MAX_ATTEMPTS times is marked
dead with its error rather than replayed forever.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.core.types import Actor, MediaRef, MessageEvent, Platform, RepliedMessage
from bot.store.models import InboxEvent
from bot.store.repos import Store

REPLAY_AGE_S = 60.0
MAX_ATTEMPTS = 3


def to_json(event: MessageEvent) -> dict[str, Any]:
    data = asdict(event)
    data["platform"] = str(event.platform)
    data["created_at"] = event.created_at.isoformat() if event.created_at else None
    for actor in (data["author"], (data.get("reply_to") or {}).get("author")):
        if actor is not None:
            actor["role_ids"] = sorted(actor["role_ids"])
    return data


def from_json(data: dict[str, Any]) -> MessageEvent:
    def actor(raw: dict[str, Any]) -> Actor:
        return Actor(**{**raw, "role_ids": frozenset(raw.get("role_ids") or ())})

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


async def record(store: Store, event: MessageEvent, now: datetime) -> int | None:
    """The pending row for `event` (created now), or None when this delivery is already done."""
    key = event_key(event)
    try:
        async with store.write() as session:
            found = await session.execute(select(InboxEvent).where(col(InboxEvent.key) == key))
            row = found.scalar_one_or_none()
            if row is None:
                row = InboxEvent(key=key, payload=to_json(event), received_at=now)
                session.add(row)
                await session.flush()
            return row.id if row.status == "pending" else None
    except IntegrityError:  # another process recorded the same delivery at the same moment
        return None


async def settle(store: Store, inbox_id: int | None) -> None:
    if inbox_id is None:
        return
    async with store.write() as session:
        row = await session.get(InboxEvent, inbox_id)
        if row is not None:
            row.status = "done"


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


async def due(store: Store, now: datetime, limit: int = 100) -> list[MessageEvent]:
    """Events still pending REPLAY_AGE_S after they were received."""
    cutoff = now - timedelta(seconds=REPLAY_AGE_S)
    async with store.read() as session:
        found = await session.execute(
            select(InboxEvent)
            .where(col(InboxEvent.status) == "pending", col(InboxEvent.received_at) <= cutoff)
            .order_by(col(InboxEvent.id))
            .limit(limit)
        )
        return [from_json(row.payload) for row in found.scalars()]
