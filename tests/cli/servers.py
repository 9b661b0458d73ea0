"""The local fake Discord and Slack (tests/fakes) served from a background thread, so that a
`veille` subprocess can talk to them while the test waits on it. Loopback only."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack

T = TypeVar("T")


class ServerThread:
    """An event loop in a daemon thread; `call()` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def fake_discord() -> Iterator[FakeDiscord]:
    """A fake Discord whose bot token is `fake.token`; `fake.base_url` is DISCORD_API_URL."""
    thread = ServerThread()
    fake: Any = thread.call(_make_discord)
    try:
        yield fake
    finally:
        thread.call(fake.close)
        thread.stop()


@contextmanager
def fake_discord_thread() -> Iterator[tuple[FakeDiscord, ServerThread]]:
    """fake_discord, with the thread whose loop runs it (`thread.call` runs its coroutines)."""
    thread = ServerThread()
    fake: Any = thread.call(_make_discord)
    try:
        yield fake, thread
    finally:
        thread.call(fake.close)
        thread.stop()


@contextmanager
def fake_slack() -> Iterator[tuple[FakeSlack, str]]:
    """A fake Slack workspace and its SLACK_API_URL."""
    thread = ServerThread()
    fake, url = thread.call(_make_slack)
    try:
        yield fake, url
    finally:
        thread.call(fake.stop)
        thread.stop()


def start_run(
    cwd: Any, env: dict[str, str], discord: FakeDiscord, *, count: int = 1, within: float = 90
) -> list[subprocess.Popen[str]]:
    """`count` real `veille run` processes, returned once each has identified to the fake
    Discord gateway (the caller stops them)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    deadline = time.monotonic() + within
    while len(discord.identifies) < count and time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            outputs = [p.communicate() for p in processes]
            raise AssertionError(f"veille run stopped before connecting: {outputs}")
        time.sleep(0.2)
    if len(discord.identifies) < count:
        for process in processes:
            process.kill()
            process.communicate()
        raise AssertionError("veille run never identified to the gateway")
    return processes


async def _make_discord() -> FakeDiscord:
    fake = FakeDiscord()  # its asyncio.Condition must be made on the thread's loop
    await fake.start()
    return fake


async def _make_slack() -> tuple[FakeSlack, str]:
    fake = FakeSlack()
    return fake, await fake.start()


async def set_up_discord_guild(
    db_url: str, guild: str, name: str, safety: str, quarantine: str
) -> None:
    """What `/veille setup` leaves for a guild: its workspace row with the safety and
    quarantine channels chosen, written before a `veille run` process starts."""
    from bot.store import engine as store
    from bot.store.models import Workspace

    engine = store.create_engine(db_url)
    try:
        async with store.session_factory(engine)() as session, session.begin():
            session.add(
                Workspace(
                    platform="discord",
                    external_id=guild,
                    name=name,
                    safety_channel_id=safety,
                    quarantine_channel_id=quarantine,
                    setup_completed=True,
                )
            )
    finally:
        await engine.dispose()
