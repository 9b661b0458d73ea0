"""The loop-lag watchdog logs a stall over 100 ms with the code that blocked the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.core.watchdog import LoopWatchdog


def a_blocking_parser() -> None:
    # What html.parser did to a hostile page, in miniature. Long enough (0.6 s, where 0.1 s is
    # a stall) that the watching thread gets a turn during it on a busy CI machine too: a run of
    # the PostgreSQL pass once left it no turn in 0.3 s.
    time.sleep(0.6)


async def test_a_stall_is_logged_with_what_was_running(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog()
    watchdog.start()
    try:
        await asyncio.sleep(0.1)
        assert watchdog.stalls == []  # an idle loop is not a stall
        with caplog.at_level(logging.WARNING, logger="bot.core.watchdog"):
            a_blocking_parser()
            await asyncio.sleep(0.1)
    finally:
        await watchdog.aclose()
    [(lag, running)] = watchdog.stalls
    assert 0.55 <= lag < 1.5
    assert "a_blocking_parser" in running
    assert any("stalled" in r.message and "a_blocking_parser" in r.message for r in caplog.records)
