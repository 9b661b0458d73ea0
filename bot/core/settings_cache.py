"""What deciding a message reads of its community — the workspace row, its channel rules and the
banks it sees — kept in memory for a moment, so a busy channel costs no settings reads.

An entry is used while two things hold: no write that may change settings has committed in this
process since it was read (`Store.generation`: every write counts unless it is the message hot
path's own, which says so), and it is younger than MAX_AGE_S, the same half second in which a
worker meets a hash another process banked (bot/core/bank_sync.py): a change an admin makes
through another process (a gateway answering the setup wizard, the CLI) applies within it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.bank_sync import FRESH_S
from bot.store.models import ChannelOverride, Workspace
from detectors.base import BankScope

MAX_AGE_S = FRESH_S
MAX_ENTRIES = 4096  # communities kept; the least recently used one goes first


@dataclass(frozen=True)
class DecisionContext:
    workspace: Workspace
    overrides: Mapping[str, ChannelOverride]  # channel id -> its rule
    scope: BankScope

    def override(self, channel_id: str) -> ChannelOverride | None:
        return self.overrides.get(channel_id)


class SettingsCache:
    def __init__(self, max_age_s: float = MAX_AGE_S, size: int = MAX_ENTRIES) -> None:
        self.max_age_s = max_age_s
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[int, float, DecisionContext]] = (
            OrderedDict()
        )

    def get(self, key: tuple[str, str], generation: int, name: str = "") -> DecisionContext | None:
        """The cached context of `key` (platform, external id) if still valid at `generation`;
        None when it must be read again (also when the community was renamed: the row updates)."""
        found = self._entries.get(key)
        if found is None:
            return None
        seen, loaded_at, context = found
        fresh = seen == generation and time.monotonic() - loaded_at < self.max_age_s
        if not fresh or (name and context.workspace.name != name):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return context

    def put(self, key: tuple[str, str], generation: int, context: DecisionContext) -> None:
        """Keep `context`, read after `generation` was taken (a write committed meanwhile
        makes it stale at once: the generation moved on)."""
        self._entries[key] = (generation, time.monotonic(), context)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
