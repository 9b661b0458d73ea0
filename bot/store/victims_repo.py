"""Rows of the victims' workflows: sightings (where scanned images were posted), reports,
appeals and protections. Plain ids in, rows out: the rules live in bot/core."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.store.models import Appeal, MediaItem, Protection, Report, Sighting, Ticket, Workspace
from bot.store.repos import insert_new

SWEEP_LIMIT = 20_000  # most recent sightings a sweep reads; more is logged, never silent


async def record_sighting(
    session: AsyncSession,
    *,
    workspace_id: int,
    channel_id: str,
    message_id: str,
    thread_id: str | None,
    author_id: str,
    media_key: str,
    sha256: str,
    seen_at: datetime,
) -> None:
    """Remember that `sha256` was posted in this message (once per message and media: the same
    delivery again, or racing itself from another process, leaves the first row). The row links
    the image's MediaItem when there is one (looked up inside the INSERT)."""
    media_item_id = (
        select(col(MediaItem.id)).where(col(MediaItem.sha256) == sha256).scalar_subquery()
    )
    await insert_new(
        session,
        Sighting,
        {
            "workspace_id": workspace_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "thread_id": thread_id,
            "author_id": author_id,
            "media_key": media_key[:500],
            "sha256": sha256,
            "media_item_id": media_item_id,
            "seen_at": seen_at,
        },
        ("workspace_id", "channel_id", "message_id", "media_key"),
    )


async def sightings_since(
    session: AsyncSession, workspace_id: int, since: datetime, limit: int = SWEEP_LIMIT
) -> list[tuple[Sighting, str | None]]:
    """Sightings still posted (not removed by Veille) since `since`, newest first, with their
    media's signature (`ImageSignature.to_str()`, None when it could not be hashed)."""
    rows = await session.execute(
        select(Sighting, MediaItem.signature)  # type: ignore[call-overload]
        .outerjoin(MediaItem, col(MediaItem.id) == col(Sighting.media_item_id))
        .where(
            col(Sighting.workspace_id) == workspace_id,
            col(Sighting.seen_at) >= since,
            col(Sighting.removed_at).is_(None),
        )
        .order_by(col(Sighting.seen_at).desc())
        .limit(limit)
    )
    return [(sighting, signature) for sighting, signature in rows.all()]


async def sightings_of_message(
    session: AsyncSession, workspace_id: int, channel_id: str, message_id: str
) -> list[tuple[Sighting, MediaItem | None]]:
    rows = await session.execute(
        select(Sighting, MediaItem)  # type: ignore[call-overload]
        .outerjoin(MediaItem, col(MediaItem.id) == col(Sighting.media_item_id))
        .where(
            col(Sighting.workspace_id) == workspace_id,
            col(Sighting.channel_id) == channel_id,
            col(Sighting.message_id) == message_id,
        )
    )
    return [(s, m) for s, m in rows.all()]


async def mark_removed(
    session: AsyncSession, workspace_id: int, channel_id: str, message_id: str, at: datetime
) -> None:
    for sighting, _ in await sightings_of_message(session, workspace_id, channel_id, message_id):
        if sighting.removed_at is None:
            sighting.removed_at = at


async def purge_sightings(session: AsyncSession, now: datetime) -> int:
    """Forget sightings past each workspace's retention (days)."""
    purged = 0
    query = select(col(Workspace.id), col(Workspace.retention_days))
    for ws_id, days in (await session.execute(query)).all():
        result = await session.execute(
            delete(Sighting).where(
                col(Sighting.workspace_id) == ws_id,
                col(Sighting.seen_at) < now - timedelta(days=days),
            )
        )
        purged += result.rowcount or 0  # type: ignore[attr-defined]
    return purged


async def removed_messages(session: AsyncSession, workspace_id: int) -> set[tuple[str, str]]:
    """(channel, message) of every message Veille removed or is removing in the workspace."""
    rows = await session.execute(
        select(Ticket.channel_id, Ticket.message_id).where(  # type: ignore[call-overload]
            col(Ticket.workspace_id) == workspace_id, col(Ticket.message_removed).is_(True)
        )
    )
    return {(c, m) for c, m in rows.all()}


async def reports_of(session: AsyncSession, ticket_id: int) -> list[Report]:
    rows = await session.execute(
        select(Report).where(col(Report.ticket_id) == ticket_id).order_by(col(Report.id))
    )
    return list(rows.scalars())


async def report_by(session: AsyncSession, ticket_id: int, reporter_id: str) -> Report | None:
    rows = await session.execute(
        select(Report).where(
            col(Report.ticket_id) == ticket_id, col(Report.reporter_id) == reporter_id
        )
    )
    return rows.scalar_one_or_none()


async def reports_since(
    session: AsyncSession, workspace_id: int, reporter_id: str, since: datetime
) -> int:
    rows = await session.execute(
        select(Report.id).where(  # type: ignore[call-overload]
            col(Report.workspace_id) == workspace_id,
            col(Report.reporter_id) == reporter_id,
            col(Report.created_at) >= since,
        )
    )
    return len(rows.all())


async def reports_nearing_due(session: AsyncSession, alert_before: datetime) -> list[Ticket]:
    """Unresolved report tickets due before `alert_before` and not alerted yet."""
    rows = await session.execute(
        select(Ticket)
        .where(
            col(Ticket.kind) == "report",
            col(Ticket.status) != "resolved",
            col(Ticket.due_at).is_not(None),
            col(Ticket.due_at) <= alert_before,
            col(Ticket.due_alerted_at).is_(None),
        )
        .order_by(col(Ticket.id))
    )
    return list(rows.scalars())


async def appeal_of(session: AsyncSession, ticket_id: int) -> Appeal | None:
    rows = await session.execute(select(Appeal).where(col(Appeal.ticket_id) == ticket_id))
    return rows.scalar_one_or_none()


async def protections_of(
    session: AsyncSession, workspace_id: int, owner_id: str
) -> list[Protection]:
    rows = await session.execute(
        select(Protection)
        .where(
            col(Protection.workspace_id) == workspace_id,
            col(Protection.owner_id) == owner_id,
            col(Protection.withdrawn_at).is_(None),
        )
        .order_by(col(Protection.id))
    )
    return list(rows.scalars())


def protected_bank(protection_id: int) -> str:
    """The hash bank holding one protection's hashes (owned by its workspace)."""
    return f"protected:{protection_id}"


async def tickets_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Ticket]:
    if not ids:
        return []
    rows = await session.execute(select(Ticket).where(col(Ticket.id).in_(list(ids))))
    return list(rows.scalars())
