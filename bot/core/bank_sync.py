"""Keeping a process's in-memory HashBank in step with the stored banks.

Every process matches against its own HashBank (bot/core/banks.py loads it at start). Entries
banked by another process — a worker confirming a copy, a gateway answering `/hashes add` or
`/protect`, the `veille hashes` CLI — reach it here: every POLL_S the sync reads the entries
added since the highest id it has seen and the removals logged since the last one it has seen
(`hash_removals`, written by every deletion), and applies them. Ids only grow, so each change is
read once and the cost of a poll is two indexed range reads, whatever the size of the banks.
Before each decision the core also asks for a poll no older than FRESH_S (`fresh`), so a worker
matches a hash banked elsewhere within half a second of its commit, on SQLite and PostgreSQL
alike, without LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.store import hash_repo
from bot.store.repos import Store
from detectors.hashes import HashBank

log = logging.getLogger(__name__)

POLL_S = 2.0
FRESH_S = 0.5  # how old a poll may be when a message is decided (`fresh`)


class BankSync:
    """Applies stored changes to `bank`, which was loaded after `marks` were read
    (`hash_repo.bank_marks`): marks first, so nothing committed in between is missed (an
    entry both loaded and read again is replaced by itself)."""

    def __init__(self, store: Store, bank: HashBank, marks: tuple[int, int]) -> None:
        self.store = store
        self.bank = bank
        self.last_entry, self.last_removal = marks
        self._polled_at = time.monotonic()
        self._lock = asyncio.Lock()

    async def fresh(self, max_age_s: float = FRESH_S) -> None:
        """Poll now unless a poll finished within `max_age_s`: a message decided right after
        another process banked its image meets the new entry, not a bank up to POLL_S old.
        Concurrent callers share one poll."""
        if time.monotonic() - self._polled_at < max_age_s:
            return
        async with self._lock:
            if time.monotonic() - self._polled_at >= max_age_s:
                await self.poll()

    async def poll(self) -> tuple[int, int]:
        """Apply what changed since the last poll; returns (added, removed)."""
        async with self.store.read() as session:
            changes = await hash_repo.changes_since(session, self.last_entry, self.last_removal)
        if changes.added:
            errors = self.bank.add(changes.added)
            for error in errors:
                log.warning("bank sync skipped an entry: %s", error)
        removed = self.bank.remove(changes.removed) if changes.removed else 0
        self.last_entry, self.last_removal = changes.last_entry, changes.last_removal
        self._polled_at = time.monotonic()
        if changes.added or removed:
            log.info(
                "bank sync: %d entries added, %d removed by other processes",
                len(changes.added),
                removed,
            )
        return len(changes.added), removed

    async def run(self, every_s: float = POLL_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.poll()
            except Exception:  # a database hiccup: the next poll catches up
                log.warning("bank sync failed; retrying in %.0f s", every_s, exc_info=True)
