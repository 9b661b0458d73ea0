"""Sweeping for known copies (TAKE IT DOWN Act: a reported image *and its known identical
copies* come down within 48 hours).

When an image is banked in a workspace — a ticket confirmed, a report upheld, `/hashes add`,
`/protect` — Veille looks through what it has seen there (the signatures of media scanned
within the workspace's retention window, `Sighting` rows) for copies and near-copies still
posted. Each one found is removed (when the workspace removes and the platform lets Veille)
and gets a ticket of kind `copy`; otherwise it gets a ticket for a moderator. The source
ticket records what the sweep found and did (`Ticket.sweep`, the audit trail, a line in the
safety channel).

Matching reuses the hash bank (`detectors.hashes.HashBank`) built from the new entries only,
so a sweep costs one bank query per sighting, run in a worker thread.

A sweep is recorded (`PendingSweep`, held by its process for SWEEP_LEASE_S) before it runs,
and the row is deleted in the very transaction that acts on what it found: a crash between
the banking and that transaction leaves the row, and another process (`claim`) runs it again
once the lease lapses, so a copy is not left up because Veille stopped at the wrong moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core import outbox, removal
from bot.core.audit import audit
from bot.core.gateway import Gateway
from bot.core.i18n import t
from bot.core.types import Actor
from bot.store import repos, victims_repo
from bot.store.models import HashEntry, PendingSweep, Sighting, Ticket, Workspace
from detectors.base import KNOWN_CONTENT
from detectors.hashes import BankEntry, HashBank, ImageSignature

log = logging.getLogger(__name__)

SWEEP_LEASE_S = 120.0  # longer than any one sweep: a live process is never overtaken
MAX_SWEEP_ATTEMPTS = 3


@dataclass
class SweepResult:
    found: int = 0
    removed: int = 0
    tickets: list[int] = field(default_factory=list)
    searched: int = 0
    truncated: bool = False

    def as_json(self, now: datetime, cause: str) -> dict[str, Any]:
        return {
            "at": now.isoformat(),
            "cause": cause,
            "found": self.found,
            "removed": self.removed,
            "tickets": self.tickets,
            "searched": self.searched,
            "truncated": self.truncated,
        }


@dataclass(frozen=True)
class _Hit:
    sighting: Sighting
    reason: str


def _entries(raw: Sequence[Any]) -> list[BankEntry]:
    """Blocking entries as plain values (rows may be detached from their session)."""
    out = []
    for entry in raw:
        if getattr(entry, "source", "") == "allow" or getattr(entry, "id", None) is None:
            continue
        out.append(
            BankEntry(
                int(entry.id),
                str(entry.bank),
                str(entry.kind),
                str(entry.value),
                str(entry.source),
                getattr(entry, "workspace_id", None),
            )
        )
    return out


def _match(entries: list[BankEntry], found: list[tuple[Sighting, str | None]]) -> list[_Hit]:
    """The sightings any of `entries` matches (blocking; runs in a worker thread)."""
    bank = HashBank(entries)
    hits = []
    for sighting, signature in found:
        try:
            parsed = ImageSignature.from_str(signature) if signature else None
        except ValueError:
            parsed = None
        explained = bank.match_explained(parsed, sighting.sha256)
        if explained:
            hits.append(_Hit(sighting, explained[0][1]))
    return hits


async def sweep(
    store: repos.Store,
    workspace_id: int,
    new_entries: Sequence[Any],
    *,
    now: datetime,
    gateways: Mapping[str, Gateway],
    cause: str,
    source_ticket_id: int | None = None,
    actor: Actor | None = None,
    pending_id: int | None = None,
) -> SweepResult:
    """Find and act on copies of `new_entries` (just-banked hash entries) in the workspace;
    `pending_id`, the sweep's record, is deleted with the actions (or by `finished`)."""
    result = SweepResult()
    entries = _entries(new_entries)
    if not entries:
        return result
    async with store.read() as session:
        ws = await session.get(Workspace, workspace_id)
        if ws is None:
            return result
        since = now - timedelta(days=max(1, ws.retention_days))
        found = await victims_repo.sightings_since(session, workspace_id, since)
        removed = await victims_repo.removed_messages(session, workspace_id)
    result.searched = len(found)
    result.truncated = len(found) >= victims_repo.SWEEP_LIMIT
    if result.truncated:
        log.warning(
            "sweep in workspace %s read only the %d most recent sightings",
            workspace_id,
            victims_repo.SWEEP_LIMIT,
        )
    candidates = [(s, sig) for s, sig in found if (s.channel_id, s.message_id) not in removed]
    hits = await asyncio.to_thread(_match, entries, candidates) if candidates else []
    async with store.write() as session:
        ws = await session.get(Workspace, workspace_id)
        assert ws is not None and ws.id is not None
        if pending_id is not None:  # done in this transaction, or not at all
            record = await session.get(PendingSweep, pending_id)
            if record is not None:
                await session.delete(record)
        source = await session.get(Ticket, source_ticket_id) if source_ticket_id else None
        gateway = gateways.get(ws.platform)
        can_remove = removal.removes(ws) and (gateway is None or gateway.can_delete_messages)
        done_messages: set[tuple[str, str]] = set()
        for hit in hits:
            where = (hit.sighting.channel_id, hit.sighting.message_id)
            if where in done_messages:
                continue  # two images of one message: one removal
            done_messages.add(where)
            result.found += 1
            ticket_id, removed_now = await _act_on(session, ws, hit, source, can_remove, now)
            if ticket_id is not None and ticket_id not in result.tickets:
                result.tickets.append(ticket_id)
            result.removed += int(removed_now)
        summary = result.as_json(now, cause)
        if source is not None:
            source.sweep = summary
            source.updated_at = now
        event = audit(
            session,
            workspace_id=ws.id,
            ticket_id=source.id if source else None,
            actor=actor,
            action="sweep",
            at=now,
            data=summary,
        )
        if source is not None:
            await outbox.refresh_card(session, ws, source, event, now)
        if result.found and ws.safety_channel_id:
            await session.flush()
            await outbox.post_text(
                session,
                ws,
                ws.safety_channel_id,
                t(
                    "victims.sweep.summary",
                    ws.locale,
                    found=result.found,
                    removed=result.removed,
                    source=f"#{source.id}"
                    if source
                    else t(f"victims.sweep.cause.{cause}", ws.locale),
                    tickets=", ".join(f"#{i}" for i in result.tickets) or "-",
                ),
                key=f"sweep:{event.id}:summary",
                ticket_id=source.id if source else None,
                now=now,
            )
    return result


async def record(
    store: repos.Store,
    workspace_id: int,
    entries: Sequence[Any],
    *,
    cause: str,
    source_ticket_id: int | None,
    actor: Actor | None,
    owner: str,
    now: datetime,
) -> int | None:
    """The sweep's record, held by `owner` while it runs (None: it could not be written; the
    sweep still runs, only without a second chance)."""
    try:
        async with store.write() as session:
            row = PendingSweep(
                workspace_id=workspace_id,
                entry_ids=[int(e.id) for e in entries if getattr(e, "id", None) is not None],
                cause=cause,
                source_ticket_id=source_ticket_id,
                actor=actor.to_json() if actor else None,
                claimed_by=owner,
                lease_until=now + timedelta(seconds=SWEEP_LEASE_S),
                created_at=now,
            )
            session.add(row)
            await session.flush()
            return row.id
    except Exception:
        log.warning("could not record a sweep in workspace %s", workspace_id, exc_info=True)
        return None


async def finished(store: repos.Store, pending_id: int | None, *, failed: bool = False) -> None:
    """The sweep ended: its record goes (a sweep that found nothing to act on, or failed
    MAX_SWEEP_ATTEMPTS times); a failure before that counts an attempt and keeps it, to be
    claimed again after its lease."""
    if pending_id is None:
        return
    async with store.write() as session:
        row = await session.get(PendingSweep, pending_id)
        if row is None:
            return
        if failed and row.attempts + 1 < MAX_SWEEP_ATTEMPTS:
            row.attempts += 1
            return
        if failed:
            log.error("sweep %s failed %d times: given up", pending_id, MAX_SWEEP_ATTEMPTS)
        await session.delete(row)


@dataclass(frozen=True)
class Resumed:
    """A recorded sweep claimed to run again: its workspace, entries, cause, source, actor."""

    pending_id: int
    workspace_id: int
    entries: list[HashEntry]
    cause: str
    source_ticket_id: int | None
    actor: Actor | None


async def claim(store: repos.Store, owner: str, now: datetime, limit: int = 8) -> list[Resumed]:
    """Recorded sweeps whose holder stopped before acting (its lease ran out), now held by
    `owner`; their entries read again (an entry withdrawn since is left out)."""
    async with store.write() as session:
        rows = await repos.claim_free(
            session,
            PendingSweep,
            col(PendingSweep.attempts) < MAX_SWEEP_ATTEMPTS,
            owner=owner,
            now=now,
            until=now + timedelta(seconds=SWEEP_LEASE_S),
            limit=limit,
        )
        resumed = []
        for row in rows:
            found = await session.scalars(
                select(HashEntry).where(col(HashEntry.id).in_(row.entry_ids or [-1]))
            )
            resumed.append(
                Resumed(
                    int(row.id or 0),
                    row.workspace_id,
                    list(found),
                    row.cause,
                    row.source_ticket_id,
                    Actor.from_json(row.actor) if row.actor else None,
                )
            )
        return resumed


async def _act_on(
    session: Any,
    ws: Workspace,
    hit: _Hit,
    source: Ticket | None,
    can_remove: bool,
    now: datetime,
) -> tuple[int | None, bool]:
    """Remove or ticket one copy; returns its ticket id and whether a removal was queued."""
    assert ws.id is not None
    s = hit.sighting
    own = source is not None and (source.channel_id, source.message_id) == (
        s.channel_id,
        s.message_id,
    )
    if own:
        ticket = source
    else:
        label = f"copy of ticket #{source.id}" if source is not None else "copy of a banked image"
        row = Ticket(
            workspace_id=ws.id,
            kind="copy",
            channel_id=s.channel_id,
            message_id=s.message_id,
            thread_id=s.thread_id,
            media_key=s.media_key,
            author_id=s.author_id,
            media_item_id=s.media_item_id,
            sha256=s.sha256,
            severity="QUARANTINE" if can_remove else "REVIEW",
            priority=True,
            categories=[KNOWN_CONTENT],
            scores={KNOWN_CONTENT: 1.0},
            reasons=[f"{label}: {hit.reason}"],
            created_at=now,
            updated_at=now,
        )
        ticket, is_new = await repos.open_ticket(session, row)
        if is_new:
            await session.flush()
            audit(
                session,
                workspace_id=ws.id,
                ticket_id=ticket.id,
                actor=None,
                action="opened",
                at=now,
                data={
                    "severity": ticket.severity,
                    "sweep": True,
                    "source": source.id if source else None,
                },
            )
            assert ticket.id is not None
            await outbox.post_ticket_card(session, ws, ticket.id, now)
    assert ticket is not None and ticket.id is not None
    # Where Veille cannot remove it, the copy ticket's card is the safety team's ask.
    done = await removal.remove_message(
        session,
        ws,
        ticket,
        now,
        can_delete=can_remove,
        by_moderator=source is not None,
        ask_safety_team=False,
    )
    return ticket.id, done == "queued"
