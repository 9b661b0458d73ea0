"""The outbox: platform actions recorded in the decision's transaction, performed afterwards.

Each action has an idempotency key (recording it twice is a no-op), runs in id order per ticket
(an action waits while an earlier one of its ticket is still pending) while different tickets
proceed side by side (up to CONCURRENCY at once: platform calls are network round trips, and a
burst of quarantines must not wait in single file), is retried with
exponential backoff on retryable GatewayErrors (honouring `retry_after`) and is marked dead with
its error after MAX_ATTEMPTS or a non-retryable error. Pending rows survive a crash: the next
process picks them up. Delivery is at-least-once: a crash after the platform call but before
the row is marked done repeats that one call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.cards import card_for
from bot.core.clock import Clock, as_utc
from bot.core.gateway import Gateway, GatewayError
from bot.store.models import OutboxAction, Ticket
from bot.store.repos import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_DELAY_S = 5.0
MAX_DELAY_S = 3600.0
CONCURRENCY = 8  # tickets whose actions run at the same time
KINDS = ("delete_message", "post_card", "update_card", "post_text", "send_private", "timeout_member")


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones; the platform's hint wins."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, MAX_DELAY_S)
    return min(BASE_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S)


async def enqueue(
    session: AsyncSession, *, key: str, kind: str, platform: str, workspace_id: int | None,
    ticket_id: int | None, payload: dict[str, Any], now: datetime,
) -> bool:
    """Record an action in the caller's transaction; False when `key` was already recorded."""
    assert kind in KINDS, kind
    found = await session.execute(select(col(OutboxAction.id)).where(col(OutboxAction.idempotency_key) == key))
    if found.first() is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(OutboxAction(
                idempotency_key=key, kind=kind, platform=platform, workspace_id=workspace_id,
                ticket_id=ticket_id, payload=payload, created_at=now, next_attempt_at=now,
            ))
        return True
    except IntegrityError:
        return False


class Outbox:
    """Performs pending actions through the registered Gateways."""

    def __init__(self, store: Store, clock: Clock, gateways: Mapping[str, Gateway]) -> None:
        self.store = store
        self.clock = clock
        self.gateways = gateways
        self._wake = asyncio.Event()
        self._run_lock = asyncio.Lock()

    def wake(self) -> None:
        """New actions were committed: the worker looks now instead of at its next poll."""
        self._wake.set()

    async def run_due(self, limit: int = 500) -> int:
        """Perform every due action once (each ticket's in order, tickets side by side);
        returns how many were attempted."""
        async with self._run_lock:  # one runner at a time: the worker and an explicit retry
            now = self.clock.now()
            async with self.store.read() as session:
                found = await session.execute(
                    select(OutboxAction).where(col(OutboxAction.status) == "pending")
                    .order_by(col(OutboxAction.id)).limit(limit)
                )
                pending = list(found.scalars())
            queues: dict[object, list[OutboxAction]] = {}
            for action in pending:  # actions without a ticket are independent of each other
                key = action.ticket_id if action.ticket_id is not None else ("own", action.id)
                queues.setdefault(key, []).append(action)
            gate = asyncio.Semaphore(CONCURRENCY)
            counts = await asyncio.gather(*(self._run_queue(q, now, gate) for q in queues.values()))
            return sum(counts)

    async def _run_queue(self, actions: list[OutboxAction], now: datetime,
                         gate: asyncio.Semaphore) -> int:
        """One ticket's due actions in id order, stopping at the first that is not due yet or
        stays pending after failing (a dead one does not stop the rest: a card must still
        reach moderators when the removal was refused)."""
        attempted = 0
        async with gate:
            for action in actions:
                if as_utc(action.next_attempt_at) > now:
                    break
                attempted += 1
                if not await self._perform(action):
                    break
        return attempted

    async def run_forever(self, poll_s: float = 15.0) -> None:
        """The worker: run due actions, then sleep until woken or the next poll."""
        while True:
            try:
                await self.run_due()
            except Exception:  # the worker must outlive a bad row or a database hiccup
                log.exception("outbox run failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation
            # that stops this worker when the wake-up lands at the same moment.
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
            return {"deleted": True}
        if action.kind == "post_text":
            mid = await gateway.post_text(ws, p["channel_id"], p["text"], thread_id=p.get("thread_id"))
            return {"message_id": mid}
        if action.kind == "send_private":
            await gateway.send_private(ws, p["user_id"], p["text"], channel_id=p.get("channel_id"))
            return {"sent": True}
        if action.kind == "timeout_member":
            await gateway.timeout_member(ws, p["user_id"], int(p["seconds"]), p.get("reason", ""))
            return {"timed_out": True}
        async with self.store.read() as session:
            ticket = await session.get(Ticket, action.ticket_id) if action.ticket_id else None
            if ticket is None:
                return {"skipped": "ticket gone"}
            purpose = str(p.get("purpose", "ticket"))
            card = await card_for(session, ticket, purpose, self.clock.now())
        if action.kind == "post_card":
            mid = await gateway.post_card(ws, p["channel_id"], card, thread_id=p.get("thread_id"))
            return {"message_id": mid, "channel_id": p["channel_id"], "purpose": purpose}
        # update_card: the ticket's card shows its state now, whatever the event that asked.
        if not ticket.card_message_id or not ticket.card_channel_id:
            return {"skipped": "no card posted"}
        await gateway.update_card(ws, ticket.card_channel_id, ticket.card_message_id, card)
        return {"updated": True}

    async def _done(self, action: OutboxAction, result: dict[str, Any]) -> None:
        now = self.clock.now()
        async with self.store.write() as session:
            row = await session.get(OutboxAction, action.id)
            if row is None:
                return
            row.status, row.attempts, row.result, row.done_at = "done", row.attempts + 1, result, now
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
