"""The loop-lag watchdog: logs every stall of the event loop over a threshold, with what ran.

One event loop serves every community; a blocking call in any of them (a parser gone quadratic,
a decode on the loop) freezes them all. A heartbeat task on the loop records when it last ran; a
daemon thread watches the heartbeat and, once it is overdue, captures the loop thread's stack
(the code that is blocking it, not whatever runs after). When the loop wakes up, the heartbeat
logs the stall's length with that stack.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)

STALL_THRESHOLD_S = 0.1
BEAT_S = 0.02


class LoopWatchdog:
    """`start()` on the running loop, `await aclose()` to stop. `stalls` keeps recent stalls
    as (seconds, what was running) for tests and the status card."""

    def __init__(self, threshold_s: float = STALL_THRESHOLD_S, beat_s: float = BEAT_S) -> None:
        self.threshold_s = threshold_s
        self.beat_s = beat_s
        self.stalls: list[tuple[float, str]] = []
        self._beat = time.monotonic()
        self._captured: str | None = None
        self._loop_thread = 0
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(
            self._heartbeat(), name="veille-watchdog"
        )
        self._thread = threading.Thread(target=self._watch, name="veille-watchdog", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)
            self._thread = None

    async def _heartbeat(self) -> None:
        while True:
            before = time.monotonic()
            self._beat = before
            await asyncio.sleep(self.beat_s)
            lag = time.monotonic() - before - self.beat_s
            if lag > self.threshold_s:
                running = self._captured or "(not captured)"
                self.stalls = [*self.stalls[-49:], (lag, running)]
                log.warning("event loop stalled for %d ms; running:\n%s", lag * 1000, running)
            self._captured = None

    def _watch(self) -> None:
        while not self._stop.wait(self.beat_s / 2):
            overdue = time.monotonic() - self._beat - self.beat_s
            if overdue > self.threshold_s and self._captured is None:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._captured = "".join(traceback.format_stack(frame)[-8:]).rstrip()
