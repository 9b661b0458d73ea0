"""The outbox: platform actions recorded in the decision's transaction, performed afterwards.

Each action has an idempotency key (recording it twice is a no-op), runs in id order per ticket
(an action waits while an earlier one of its ticket is still pending) while different tickets
proceed side by side (up to CONCURRENCY at once: platform calls are network round trips, and a
burst of quarantines must not wait in single file), is retried with
exponential backoff on retryable GatewayErrors (honouring `retry_after`) and is marked dead with
its error after MAX_ATTEMPTS or a non-retryable error. Pending rows survive a crash: the next
process picks them up. Delivery is at-least-once: a crash after the platform call but before
the row is marked done repeats that one call.

Several processes may share one database (two `veille run`, a restart overlapping the old
process): a queue (one ticket's actions, or one lone action) is performed only by the process
holding its lease (`outbox_leases`: taken by primary key or a conditional UPDATE, renewed before
each action, released when the queue is done, expiring after LEASE_S if its holder died), and
each action is re-read under the lease, so an action is performed once, not once per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.cards import card_for
from bot.core.clock import Clock, as_utc
from bot.core.failpoints import failpoint
from bot.core.gateway import Button, Gateway, GatewayError
from bot.store.models import OutboxAction, OutboxLease, Ticket, TicketEvent, Workspace
from bot.store.repos import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_DELAY_S = 5.0
MAX_DELAY_S = 3600.0
CONCURRENCY = 8  # tickets whose actions run at the same time
# A queue's lease: renewed before each action, so it only lapses when its holder stopped (a
# crash) or one platform call hung longer than this; then another process takes the queue over.
LEASE_S = 90.0
KINDS = (
    "delete_message",
    "post_card",
    "update_card",
    "post_text",
    "send_private",
    "timeout_member",
    "delete_preview",
)


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones; the platform's hint wins."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, MAX_DELAY_S)
    return min(BASE_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S)


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    platform: str,
    workspace_id: int | None,
    ticket_id: int | None,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """Record an action in the caller's transaction; False when `key` was already recorded."""
    assert kind in KINDS, kind
    found = await session.execute(
        select(col(OutboxAction.id)).where(col(OutboxAction.idempotency_key) == key)
    )
    if found.first() is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                OutboxAction(
                    idempotency_key=key,
                    kind=kind,
                    platform=platform,
                    workspace_id=workspace_id,
                    ticket_id=ticket_id,
                    payload=payload,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        return True
    except IntegrityError:
        return False


async def withdraw_preview(session: AsyncSession, ticket: Ticket, now: datetime) -> bool:
    """Queue the removal of the blurred preview a ticket posted (at resolution, or when its
    evidence reaches the end of its retention): even blurred, it must not outlive the case.
    False when the ticket never had a preview."""
    found = await session.execute(
        select(OutboxAction).where(col(OutboxAction.idempotency_key) == f"{ticket.id}:preview")
    )
    posted = found.scalar_one_or_none()
    if posted is None:
        return False
    return await enqueue(
        session,
        key=f"{ticket.id}:preview_delete",
        kind="delete_preview",
        platform=posted.platform,
        workspace_id=posted.workspace_id,
        ticket_id=ticket.id,
        payload={
            "workspace": posted.payload["workspace"],
            "channel_id": posted.payload["channel_id"],
        },
        now=now,
    )


class Outbox:
    """Performs pending actions through the registered Gateways."""

    def __init__(self, store: Store, clock: Clock, gateways: Mapping[str, Gateway]) -> None:
        self.store = store
        self.clock = clock
        self.gateways = gateways
        self._wake = asyncio.Event()
        self._run_lock = asyncio.Lock()
        self._stopping = False
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def wake(self) -> None:
        """New actions were committed: the worker looks now instead of at its next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Let the worker finish the run in progress (no action cut between its platform call
        and its commit, which would repeat it after restart), then return."""
        self._stopping = True
        self._wake.set()

    async def run_due(self, limit: int = 500) -> int:
        """Perform every due action once (each ticket's in order, tickets side by side);
        returns how many were attempted."""
        async with self._run_lock:  # one runner at a time: the worker and an explicit retry
            now = self.clock.now()
            async with self.store.read() as session:
                found = await session.execute(
                    select(OutboxAction)
                    .where(col(OutboxAction.status) == "pending")
                    .order_by(col(OutboxAction.id))
                    .limit(limit)
                )
                pending = list(found.scalars())
            queues: dict[str, list[OutboxAction]] = {}
            for action in pending:  # actions without a ticket are independent of each other
                key = f"t:{action.ticket_id}" if action.ticket_id is not None else f"a:{action.id}"
                queues.setdefault(key, []).append(action)
            gate = asyncio.Semaphore(CONCURRENCY)
            counts = await asyncio.gather(
                *(self._run_queue(key, q, now, gate) for key, q in queues.items())
            )
            return sum(counts)

    async def _run_queue(
        self, queue: str, actions: list[OutboxAction], now: datetime, gate: asyncio.Semaphore
    ) -> int:
        """One ticket's due actions in id order, stopping at the first that is not due yet or
        stays pending after failing (a dead one does not stop the rest: a card must still
        reach moderators when the removal was refused). Only under the queue's lease; each
        action is re-read under it, since another process may have performed it meanwhile."""
        attempted = 0
        async with gate:
            if not await self._claim(queue):
                return 0
            try:
                for listed in actions:
                    action = await self._still_pending(listed.id)
                    if action is None:
                        continue
                    if as_utc(action.next_attempt_at) > now:
                        break
                    if attempted and not await self._claim(queue):  # renew; lost: stop here
                        break
                    attempted += 1
                    if not await self._perform(action):
                        break
            finally:
                await self._release(queue)
        return attempted

    async def _claim(self, queue: str) -> bool:
        """Take or renew `queue`'s lease; False when another live process holds it."""
        now = self.clock.now()
        until = now + timedelta(seconds=LEASE_S)
        try:
            async with self.store.write() as session:
                taken = await session.execute(
                    update(OutboxLease)
                    .where(
                        col(OutboxLease.queue) == queue,
                        or_(col(OutboxLease.owner) == self.owner, col(OutboxLease.until) < now),
                    )
                    .values(owner=self.owner, until=until)
                )
                if taken.rowcount:  # type: ignore[attr-defined]
                    return True
                if await session.get(OutboxLease, queue) is not None:
                    return False  # held by a live process
                session.add(OutboxLease(queue=queue, owner=self.owner, until=until))
            return True
        except IntegrityError:  # another process created it first
            return False

    async def _release(self, queue: str) -> None:
        try:
            async with self.store.write() as session:
                await session.execute(
                    delete(OutboxLease).where(
                        col(OutboxLease.queue) == queue, col(OutboxLease.owner) == self.owner
                    )
                )
        except Exception:  # the lease expires by itself; never let this hide the real work
            log.warning("could not release outbox lease %s", queue, exc_info=True)

    async def _still_pending(self, action_id: int | None) -> OutboxAction | None:
        async with self.store.read() as session:
            row = await session.get(OutboxAction, action_id)
            return row if row is not None and row.status == "pending" else None

    async def run_forever(self, poll_s: float = 15.0) -> None:
        """The worker: run due actions, then sleep until woken or the next poll."""
        while not self._stopping:
            try:
                await self.run_due()
            except Exception:  # the worker must outlive a bad row or a database hiccup
                log.exception("outbox run failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation
            # that stops this worker when the wake-up lands at the same moment.
            if self._stopping:
                break
            try:
                async with asyncio.timeout(poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _perform(self, action: OutboxAction) -> bool:
        """Run one action; False when it stays pending (to be retried later)."""
        gateway = self.gateways.get(action.platform)
        try:
            if gateway is None:
                raise GatewayError(f"no gateway registered for {action.platform}", retryable=True)
            result = await self._call(gateway, action)
        except GatewayError as exc:
            return not await self._failed(action, str(exc), exc.retryable, exc.retry_after)
        except Exception as exc:  # an adapter bug: retry, then give up with the error kept
            log.exception("outbox action %s failed", action.idempotency_key)
            return not await self._failed(action, f"{type(exc).__name__}: {exc}", True, None)
        await self._done(action, result)
        return True

    async def _call(self, gateway: Gateway, action: OutboxAction) -> dict[str, Any]:
        p = action.payload
        ws = str(p["workspace"])
        if action.kind == "delete_message":
            await gateway.delete_message(ws, p["channel_id"], p["message_id"])
            failpoint("mid-outbox")  # deleted on the platform, the row still pending
            return {"deleted": True}
        if action.kind == "post_text":
            mid = await gateway.post_text(
                ws, p["channel_id"], p["text"], thread_id=p.get("thread_id")
            )
            return {"message_id": mid}
        if action.kind == "send_private":
            buttons = tuple(
                Button(str(a), str(label), int(tid), style)  # an author's Appeal
                for a, label, tid, style in p.get("buttons") or ()
            )
            if buttons:
                await gateway.send_private(
                    ws, p["user_id"], p["text"], channel_id=p.get("channel_id"), buttons=buttons
                )
            else:
                await gateway.send_private(
                    ws, p["user_id"], p["text"], channel_id=p.get("channel_id")
                )
            return {"sent": True}
        if action.kind == "timeout_member":
            await gateway.timeout_member(ws, p["user_id"], int(p["seconds"]), p.get("reason", ""))
            return {"timed_out": True}
        async with self.store.read() as session:
            ticket = await session.get(Ticket, action.ticket_id) if action.ticket_id else None
            if ticket is None:
                return {"skipped": "ticket gone"}
            if action.kind == "delete_preview":  # its id is known only once it was posted
                preview = ticket.preview_message_id
                if not preview:
                    return {"skipped": "no preview posted"}
                await gateway.delete_message(ws, p["channel_id"], preview)
                return {"deleted": True}
            purpose = str(p.get("purpose", "ticket"))
            card = await card_for(session, ticket, purpose, self.clock.now())
        if action.kind == "post_card":
            mid = await gateway.post_card(
                ws,
                p["channel_id"],
                card,
                thread_id=p.get("thread_id"),
                dedupe_key=action.idempotency_key,
                repeat=await self._begin(action),
            )
            failpoint("after-card-post")  # the card exists, its id not yet stored
            return {"message_id": mid, "channel_id": p["channel_id"], "purpose": purpose}
        # update_card: the ticket's card shows its state now, whatever the event that asked.
        if not ticket.card_message_id or not ticket.card_channel_id:
            return {"skipped": "no card posted"}
        await gateway.update_card(ws, ticket.card_channel_id, ticket.card_message_id, card)
        return {"updated": True}

    async def _begin(self, action: OutboxAction) -> bool:
        """Note that a try of `action` begins (committed before the platform call); True when
        an earlier try began and never finished — the post may exist (a crash after it, or its
        answer lost), so a platform without an idempotent post looks for it first."""
        if action.started_at is not None:
            return True
        async with self.store.write() as session:
            row = await session.get(OutboxAction, action.id)
            if row is not None and row.started_at is None:
                row.started_at = self.clock.now()
        return False

    async def _done(self, action: OutboxAction, result: dict[str, Any]) -> None:
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(OutboxAction, action.id)
            if row is None:
                return
            row.status, row.attempts, row.result, row.done_at = (
                "done",
                row.attempts + 1,
                result,
                now,
            )
            row.last_error = None
            ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
            if ticket is None:
                return
            if row.kind == "delete_message":
                ticket.message_removed = True
            elif row.kind == "post_card" and result.get("purpose") == "ticket":
                ticket.card_channel_id = str(result["channel_id"])
                ticket.card_message_id = str(result["message_id"])
            elif row.kind == "post_card" and result.get("purpose") == "preview":
                ticket.preview_message_id = str(result["message_id"])
            elif row.kind == "delete_preview" and result.get("deleted"):
                ticket.preview_message_id = None

    async def _failed(
        self, action: OutboxAction, error: str, retryable: bool, retry_after: float | None
    ) -> bool:
        """Count a failed attempt; True when the action stays pending."""
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(OutboxAction, action.id)
            if row is None:
                return False
            row.attempts += 1
            row.last_error = error[:2000]
            if not retryable or row.attempts >= MAX_ATTEMPTS:
                row.status = "dead"
                log.warning("outbox action %s is dead: %s", row.idempotency_key, error)
                return False
            row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts, retry_after))
            return True


# The actions the core queues, built here once: their payloads are what `Outbox._call` reads.


async def _queue(
    session: AsyncSession,
    workspace: Workspace,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    ticket_id: int | None,
    now: datetime,
) -> bool:
    """`enqueue` for one of the workspace's actions (its platform, row and external id)."""
    return await enqueue(
        session,
        key=key,
        kind=kind,
        platform=workspace.platform,
        workspace_id=workspace.id,
        ticket_id=ticket_id,
        payload={"workspace": workspace.external_id, **payload},
        now=now,
    )


async def delete_message(
    session: AsyncSession,
    workspace: Workspace,
    channel_id: str,
    message_id: str,
    *,
    key: str,
    ticket_id: int | None,
    now: datetime,
) -> bool:
    """Queue the removal of a message (a deleted one counts as done)."""
    payload = {"channel_id": channel_id, "message_id": message_id}
    return await _queue(
        session, workspace, "delete_message", payload, key=key, ticket_id=ticket_id, now=now
    )


async def post_text(
    session: AsyncSession,
    workspace: Workspace,
    channel_id: str,
    text: str,
    *,
    key: str,
    ticket_id: int | None,
    now: datetime,
    thread_id: str | None = None,
) -> bool:
    """Queue a plain message to one of the workspace's channels (an alert, a summary)."""
    payload: dict[str, Any] = {"channel_id": channel_id, "text": text}
    if thread_id is not None:
        payload["thread_id"] = thread_id
    return await _queue(
        session, workspace, "post_text", payload, key=key, ticket_id=ticket_id, now=now
    )


async def send_private(
    session: AsyncSession,
    workspace: Workspace,
    user_id: str,
    text: str,
    *,
    key: str,
    ticket_id: int | None,
    now: datetime,
    channel_id: str | None = None,
    buttons: Sequence[Button] = (),
) -> bool:
    """Queue a private message to one person (`channel_id`: where they met Veille, for
    platforms that answer there); `buttons` ride along, such as an author's Appeal."""
    payload: dict[str, Any] = {"user_id": user_id}
    if channel_id is not None:
        payload["channel_id"] = channel_id
    payload["text"] = text
    if buttons:
        payload["buttons"] = [[b.action, b.label, b.ticket_id, b.style] for b in buttons]
    return await _queue(
        session, workspace, "send_private", payload, key=key, ticket_id=ticket_id, now=now
    )


async def post_ticket_card(
    session: AsyncSession, workspace: Workspace, ticket_id: int, now: datetime
) -> bool:
    """Queue a new ticket's card to the safety channel, once (False without a safety channel)."""
    if not workspace.safety_channel_id:
        return False
    payload = {"channel_id": workspace.safety_channel_id, "purpose": "ticket"}
    return await _queue(
        session,
        workspace,
        "post_card",
        payload,
        key=f"{ticket_id}:card",
        ticket_id=ticket_id,
        now=now,
    )


async def post_preview_card(
    session: AsyncSession, workspace: Workspace, ticket_id: int, channel_id: str, now: datetime
) -> bool:
    """Queue a quarantined ticket's blurred preview card to `channel_id`, once."""
    payload = {"channel_id": channel_id, "purpose": "preview"}
    return await _queue(
        session,
        workspace,
        "post_card",
        payload,
        key=f"{ticket_id}:preview",
        ticket_id=ticket_id,
        now=now,
    )


async def timeout_member(
    session: AsyncSession,
    workspace: Workspace,
    user_id: str,
    seconds: int,
    reason: str,
    *,
    key: str,
    ticket_id: int | None,
    now: datetime,
) -> bool:
    """Queue a time-out of a member (where the platform has them)."""
    payload = {"user_id": user_id, "seconds": seconds, "reason": reason}
    return await _queue(
        session, workspace, "timeout_member", payload, key=key, ticket_id=ticket_id, now=now
    )


async def refresh_card(
    session: AsyncSession, workspace: Workspace, ticket: Ticket, event: TicketEvent, now: datetime
) -> None:
    """Ask the outbox to re-render the ticket's card after `event` (a no-op when no card was
    ever posted)."""
    if not workspace.safety_channel_id:
        return
    await session.flush()
    await _queue(
        session,
        workspace,
        "update_card",
        {},
        key=f"{ticket.id}:card:{event.id}",
        ticket_id=ticket.id,
        now=now,
    )
