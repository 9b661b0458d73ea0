"""The settings a message is decided under are cached for a moment (bot/core/settings_cache.py):
a change made in this process applies to the very next message, one made by another process
within MAX_AGE_S, and the hot path itself reads no settings while the entry is valid."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import settings_cache
from bot.core.service import Veille
from bot.core.settings_cache import DecisionContext, SettingsCache
from bot.core.types import SetupInput
from bot.store import repos
from bot.store.engine import session_factory, transaction
from bot.store.models import Workspace
from detectors.base import BankScope
from tests.core.conftest import ADMIN, WS, message, shapes_png
from tests.core.recording_gateway import RecordingGateway

SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")  # the veille fixture's loop
RED = shapes_png(red=0.9, seed=3)


def _context(name: str = "A") -> DecisionContext:
    return DecisionContext(
        Workspace(id=1, platform="discord", external_id="x", name=name), {}, BankScope(1)
    )


def test_an_entry_is_valid_for_its_generation_and_age_only() -> None:
    cache = SettingsCache(max_age_s=60)
    cache.put(("discord", "x"), 3, _context())
    assert cache.get(("discord", "x"), 3) is not None
    assert cache.get(("discord", "x"), 4) is None  # a write committed since: read again
    assert cache.get(("discord", "x"), 4) is None  # and the stale entry is gone
    cache.put(("discord", "x"), 4, _context("A"))
    assert cache.get(("discord", "x"), 4, name="B") is None  # renamed: the row must update
    old = SettingsCache(max_age_s=0.0)
    old.put(("discord", "x"), 1, _context())
    assert old.get(("discord", "x"), 1) is None  # older than its age: read again


def test_the_least_recently_used_community_goes_first() -> None:
    cache = SettingsCache(max_age_s=60, size=2)
    for name in ("a", "b"):
        cache.put(("discord", name), 0, _context())
    assert cache.get(("discord", "a"), 0) is not None  # a is now the most recent
    cache.put(("discord", "c"), 0, _context())
    assert cache.get(("discord", "b"), 0) is None
    assert cache.get(("discord", "a"), 0) is not None
    assert cache.get(("discord", "c"), 0) is not None


@SESSION_LOOP
async def test_only_the_hot_path_keeps_the_cache(veille: Veille, gateway: RecordingGateway) -> None:
    before = veille.store.generation
    async with veille.store.write(touches_settings=False):
        pass
    assert veille.store.generation == before
    async with veille.store.write():
        pass
    assert veille.store.generation == before + 1


@SESSION_LOOP
async def test_a_channel_allow_listed_here_applies_to_the_next_message(
    veille: Veille, gateway: RecordingGateway
) -> None:
    first = await veille.handle_message(message("m1", images=[RED], gateway=gateway))
    assert first.delete  # the channel is scanned, and its settings are now cached
    await veille.save_setup("discord", WS, ADMIN, SetupInput(allow_channel_ids=("general",)))
    second = await veille.handle_message(message("m2", images=[RED], gateway=gateway))
    assert not second.delete and not second.ticket_ids


@SESSION_LOOP
async def test_a_change_by_another_process_applies_within_the_cache_age(
    engine: AsyncEngine, gateway: RecordingGateway, veille: Veille
) -> None:
    first = await veille.handle_message(message("m1", images=[RED], gateway=gateway))
    assert first.delete
    generation = veille.store.generation
    # Another process allow-lists the channel: its write does not move this process's
    # generation, so only the entry's age makes this process read the settings again.
    async with transaction(session_factory(engine)) as session:
        row = await repos.get_workspace(session, "discord", WS)
        assert row is not None and row.id is not None
        await repos.set_channel_override(session, row.id, "general", allow_listed=True)
    await asyncio.sleep(settings_cache.MAX_AGE_S + 0.05)
    later = await veille.handle_message(message("m2", images=[RED], gateway=gateway))
    assert veille.store.generation == generation
    assert not later.delete and not later.ticket_ids
