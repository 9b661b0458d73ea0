"""A gateway and two workers, real `veille run --role` processes on one database (PostgreSQL in
the PostgreSQL pass, the SQLite file otherwise), against the fake Discord: the gateway records,
the workers scan, decide and act; every banked image is removed once and carded once, every
clean one left alone, and a worker killed (-9) mid-job loses nothing: its event is claimed again
once its lease lapses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.store import engine as store
from tests.cli.conftest import CLEARED_VARS, REPO
from tests.cli.servers import fake_discord_thread, set_up_discord_guild
from tests.detectors.hash_images import photo_like, png_bytes
from tests.fakes.discord_server import Call

LEASE_S = 4  # VEILLE_INBOX_LEASE_S: how long the killed worker's event waits to be taken over
BANKED = (71, 72, 73, 74)
CLEAN = (81, 82, 83)


def _env(base: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {
        **env,
        "VEILLE_DATABASE_URL": db_url,
        "VEILLE_DATA_DIR": str(base / "data"),
        "VEILLE_DETECTORS": "hashes,text",
        "VEILLE_LOCALE": "en",
        "VEILLE_SECRET_KEY": "k" * 32,
        "VEILLE_INBOX_LEASE_S": str(LEASE_S),
    }


def _veille(base: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def _start(base: Path, env: dict[str, str], role: str, log: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--role", role],
        cwd=base,
        env=env,
        stdout=(base / f"{log}.out").open("w"),
        stderr=(base / f"{log}.err").open("w"),
        text=True,
    )


def _wait(until: object, within: float, what: str, processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + within
    while not until():  # type: ignore[operator]
        dead = [p.args for p in processes if p.poll() is not None]
        assert not dead, f"{what}: stopped early: {dead}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.2)


def test_a_gateway_and_two_workers_act_once_and_survive_a_killed_worker(
    tmp_path: Path, db_url: str
) -> None:
    env = _env(tmp_path, db_url)
    _veille(tmp_path, env, "db", "upgrade")
    for seed in BANKED:
        image = tmp_path / f"banked-{seed}.png"
        photo_like(seed).save(image)
        _veille(tmp_path, env, "hashes", "add", str(image), "--bank", "operator-list")
    processes: list[subprocess.Popen[str]] = []
    with fake_discord_thread() as (discord, thread):
        guild = discord.add_guild("Many Workers")
        general = discord.add_channel(guild, "general")
        safety = discord.add_channel(guild, "safety")
        quarantine = discord.add_channel(guild, "quarantine")
        member = discord.add_member(guild, "mel")
        asyncio.run(
            set_up_discord_guild(db_url, guild.id, guild.name, safety["id"], quarantine["id"])
        )
        env = {**env, "DISCORD_TOKEN": discord.token, "DISCORD_API_URL": discord.base_url}

        def post(seed: int) -> str:
            posted = thread.call(
                lambda: discord.post_message(
                    guild, general, member, "", files=[(f"{seed}.png", png_bytes(photo_like(seed)))]
                )
            )
            return str(posted["id"])

        def calls() -> list[Call]:
            async def copy() -> list[Call]:
                return list(discord.calls)

            return thread.call(copy)

        try:
            gateway = _start(tmp_path, env, "gateway", "gateway")
            processes.append(gateway)
            _wait(lambda: discord.identifies, 90, "identified", processes)
            time.sleep(3)  # READY and guild_ready_timeout
            # One worker that dies (SIGKILL) right after scanning its first event, before
            # deciding anything: the event stays claimed by a dead process.
            doomed = _start(
                tmp_path, {**env, "VEILLE_FAILPOINT": "after-detection"}, "worker", "doomed"
            )
            first = post(BANKED[0])
            doomed.wait(90)
            assert doomed.returncode == -signal.SIGKILL
            workers = [_start(tmp_path, env, "worker", f"worker{n}") for n in (1, 2)]
            processes += workers
            banked = [first] + [post(seed) for seed in BANKED[1:]]
            clean = [post(seed) for seed in CLEAN]

            def removed() -> set[str]:
                return {
                    c.path.rsplit("/", 1)[1]
                    for c in calls()
                    if c.method == "DELETE" and c.path.startswith(f"/channels/{general['id']}/")
                }

            _wait(lambda: removed() >= set(banked), 120, "removed every banked image", processes)
            _wait(
                lambda: len(_cards(calls(), safety["id"])) >= len(banked), 60, "carded", processes
            )
            time.sleep(LEASE_S + 3)  # what a second claimant might still do, given the time
            seen = calls()
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            codes = [p.wait(60) for p in processes]
    errors = {
        log: (tmp_path / f"{log}.err").read_text() for log in ("gateway", "worker1", "worker2")
    }
    deletes = [c.path.rsplit("/", 1)[1] for c in seen if c.method == "DELETE"]
    assert sorted(deletes) == sorted(banked), errors  # each banked image removed once
    assert not set(deletes) & set(clean)
    assert len(_cards(seen, safety["id"])) == len(banked), errors  # one card per ticket
    assert codes == [0, 0, 0], errors  # SIGTERM: each drained and exited 0
    assert all("Traceback" not in text for text in errors.values()), errors
    assert "failpoint after-detection" in (tmp_path / "doomed.err").read_text()
    tickets, pending = asyncio.run(_counts(db_url))
    assert (tickets, pending) == (len(banked), 0)
    # The gateway never scanned: it downloaded nothing; each image was fetched by the worker
    # that decided it (the killed worker's first image twice: once before it died).
    reads = discord.cdn_reads
    assert len(reads) == len(banked) + len(clean) + 1, reads


def _cards(calls: list[Call], channel: str) -> list[Call]:
    return [
        c
        for c in calls
        if c.method == "POST"
        and c.path == f"/channels/{channel}/messages"
        and (c.body or {}).get("embeds")
    ]


async def _counts(db_url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from bot.store.models import InboxEvent, Ticket

    engine = store.create_engine(db_url)
    try:
        async with store.session_factory(engine)() as session:
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
            pending = await session.scalar(
                select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "pending")  # type: ignore[arg-type]
            )
        return int(tickets or 0), int(pending or 0)
    finally:
        await engine.dispose()


def test_doctor_says_the_role_and_the_shards_this_process_holds(tmp_path: Path) -> None:
    env = {
        **_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"),
        "DISCORD_TOKEN": "not-checked-offline",
        "VEILLE_ROLE": "worker",
        "VEILLE_DISCORD_SHARD_COUNT": "4",
        "VEILLE_DISCORD_SHARD_IDS": "0,1",
        "COLUMNS": "250",
    }
    for locale, role, shards in (
        ("en", "worker: claims the events", "shards 0,1 of 4 in this process"),
        ("fr", "worker : prend les événements", "shards 0,1 sur 4 dans ce processus"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "doctor", "--no-model", "--offline"],
            cwd=tmp_path,
            env={**env, "VEILLE_LOCALE": locale},
            capture_output=True,
            text=True,
            timeout=120,
        )
        flat = " ".join(done.stdout.split())
        assert role in flat and shards in flat, done.stdout
        assert "PostgreSQL" in flat  # workers on SQLite: the warning to move on
        assert "Traceback" not in done.stderr


def test_doctor_warns_about_events_no_worker_decided(tmp_path: Path) -> None:
    """A gateway records, nothing claims: after five minutes `veille doctor` says so."""
    from datetime import timedelta

    from bot.core import inbox
    from bot.core.clock import utcnow
    from bot.core.types import Actor, MessageEvent, Platform
    from bot.store.repos import Store

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"
    env = {**_env(tmp_path, db_url), "DISCORD_TOKEN": "not-checked-offline"}
    _veille(tmp_path, env, "db", "upgrade")

    async def record() -> None:
        engine = store.create_engine(db_url)
        try:
            event = MessageEvent(Platform.DISCORD, "g1", "c1", "m1", Actor("u1", "Ulla"), text="hi")
            await inbox.record(Store(engine), event, utcnow() - timedelta(minutes=6))
        finally:
            await engine.dispose()

    asyncio.run(record())
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor", "--no-model", "--offline"],
        cwd=tmp_path,
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    flat = " ".join(done.stdout.split())
    assert "more than 5 minutes ago and still undecided: 1" in flat, done.stdout
    assert "veille run --role worker" in flat
