"""Composition root: settings → engine → hash bank → detectors → Veille → outbox worker →
scheduler → platform adapters. The only module that knows every part."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.clock import Clock
from bot.core.gateway import Gateway
from bot.core.scanner import Scanner
from bot.core.service import Veille
from bot.settings import Settings
from bot.store import engine as store

log = logging.getLogger(__name__)
DRAIN_S = 20.0  # seconds SIGTERM waits for the outbox run in progress (systemd waits 90)


# What a gateway process loads: enough to answer interactions (a moderator's scan, a report's
# check, /protect's hashes) without the image models, which only the workers need.
GATEWAY_DETECTORS = ("hashes", "text")


async def load_bank(engine: AsyncEngine) -> Any:
    """Every stored hash-bank entry, in the HashBank the hashes detector matches against."""
    return (await load_bank_and_marks(engine))[0]


async def load_bank_and_marks(engine: AsyncEngine) -> tuple[Any, tuple[int, int]]:
    """The HashBank, and the store's marks read just before it was loaded (bot/core/bank_sync.py
    follows later changes from there)."""
    from bot.core import banks
    from bot.store import hash_repo

    async with store.session_factory(engine)() as session:
        marks = await hash_repo.bank_marks(session)
        return await banks.load_bank(session), marks


def for_role(settings: Settings) -> Settings:
    """The settings a process of `settings.role` runs with: a gateway keeps only the
    GATEWAY_DETECTORS it is configured with (hashes always, for /protect and reports)."""
    if settings.role != "gateway":
        return settings
    kept = [name for name in settings.detector_names if name in GATEWAY_DETECTORS]
    if "hashes" not in kept:
        kept.insert(0, "hashes")
    return settings.model_copy(update={"detectors": ",".join(kept)})


async def build_veille(
    settings: Settings,
    engine: AsyncEngine | None = None,
    *,
    gateways: Iterable[Gateway] = (),
    scanner: Scanner | None = None,
    clock: Clock | None = None,
    fetcher: Any = None,
) -> Veille:
    """A ready Veille: detectors built and loaded from `settings` (unless `scanner` is given),
    the hash bank loaded from the database, links fetched by the SSRF-safe fetcher.
    Raises detectors.base.DetectorError when a configured detector cannot load."""
    from bot.core.suite import build_scanner
    from bot.media.fetch import SafeFetcher

    engine = engine or store.create_engine(settings.database_url)
    bank, marks = None, None
    if "hashes" in settings.detector_names:
        bank, marks = await load_bank_and_marks(engine)
    if scanner is None:
        scanner = await build_scanner(settings, bank)
    else:  # a given scanner brings its own HashDetector: share its bank so confirmations reach it
        given = next(
            (getattr(d, "bank", None) for d in scanner.detectors if d.name == "hashes"), None
        )
        if given is not None and given is not bank:
            bank, marks = given, None  # not loaded here: no marks to follow changes from
    if fetcher is None:
        fetcher = SafeFetcher(
            max_bytes=settings.fetch_max_bytes,
            timeout_s=settings.fetch_timeout_s,
            allow_loopback=settings.fetch_allow_loopback,
        )
    veille = Veille(
        settings, engine, scanner, fetcher=fetcher, bank=bank, bank_marks=marks, clock=clock
    )
    for gateway in gateways:
        veille.register_gateway(gateway)
    return veille


def _platform_starters(settings: Settings) -> list[tuple[str, Any]]:
    """`start(settings, veille)` of each configured platform (bot/platforms/__init__.py)
    whose adapter can be imported."""
    from bot.platforms import configured

    starters = []
    for platform in configured(settings):
        try:
            runner = importlib.import_module(platform.runner)
        except ImportError as exc:
            log.error("%s is configured but its adapter cannot be imported: %s", platform.name, exc)
            continue
        # A worker connects for REST only: it acts and downloads, it receives no events.
        entry = "start_worker" if settings.role == "worker" else "start"
        start = getattr(runner, entry, None)
        if not callable(start):
            log.error("%s has no %s(settings, veille)", platform.runner, entry)
            continue
        starters.append((platform.name, start))
    return starters


async def _start_scheduler(veille: Veille) -> Any:
    try:
        from bot.core.scheduler import VeilleScheduler
    except ImportError:
        log.warning("no scheduler available: digests and housekeeping will not run")
        return None
    scheduler = VeilleScheduler(veille.store, veille.gateways, veille.clock, veille)
    await scheduler.start()
    return scheduler


async def run_forever(
    settings: Settings,
    *,
    before_platforms: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run Veille until the platforms stop. Raises DatabaseNotMigrated on an old schema
    (`veille run` turns it into exit status 2) and RuntimeError when no platform can start.
    `before_platforms` runs once the detectors are loaded, before any platform starts (veille
    run checks the tokens there); what it raises stops the start."""
    settings = for_role(settings)
    engine = store.create_engine(settings.database_url)
    await store.check_migrated(engine)
    try:
        veille = await build_veille(settings, engine)
        if before_platforms is not None:
            await before_platforms()
    except BaseException:
        await engine.dispose()
        raise
    starters = _platform_starters(settings)
    if not starters:
        await engine.dispose()
        raise RuntimeError("no configured chat platform could be started")
    veille.start()  # first: actions a crash left pending are retried straight away
    stop = _stop_on_signals()
    scheduler = None
    tasks: list[asyncio.Task[Any]] = []
    try:
        if settings.role != "worker":  # digests post once (DigestRun), whoever runs them
            scheduler = await _start_scheduler(veille)
        tasks = [
            asyncio.create_task(start(settings, veille), name=f"veille-{name}")
            for name, start in starters
        ]
        stopper = asyncio.create_task(stop.wait(), name="veille-stop")
        live = set(tasks)
        while live:
            done, _ = await asyncio.wait({*live, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                break
            for task in done:
                task.result()  # surface the failure that stopped a platform
            live -= done
        # Some starters return once connected and serve in the background: run until stopped.
        await stopper
        log.info("stopping: finishing the platform actions in flight")
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        # The outbox drains while the platform clients are still up (its actions need them);
        # events arriving meanwhile are recorded and acted on at the next start.
        await veille.aclose(drain_s=DRAIN_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (systemd, docker stop, Ctrl-C): `run_forever` then
    drains in-flight outbox work and returns, so `veille run` exits 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass
    return stop
