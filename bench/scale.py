"""scale: events per second decided by 1, 2 and 4 `veille run --role worker` processes on one
PostgreSQL, against the fake Discord (tests/fakes: its CDN serves the images, its REST API takes
the removals and cards), with the hashes and text detectors so that the run fits a small machine.

For each worker count: a fresh database (migrated, one workspace set up, BANKED images banked
with `veille hashes add`), the workers started and idle (each logs that it is claiming), then
EVENTS message events recorded at once as a gateway records them (the rows `inbox.record` writes,
no owner, in one transaction), and the clock runs from that commit until every event is decided (`inbox.status` done:
events per second) and then until every platform action is made (`acted_s`).
A fifth of the images are re-encoded banked ones: each must be removed once and carded once.
Duplicate actions — a message deleted twice, a card posted twice — are counted and must be 0.

Run it alone (`python -m bench.scale`: it starts a throwaway PostgreSQL through
scripts/with_postgres.sh) or in `make bench`. What limits the ratio is printed with it: the
machine's cores are shared by the workers, the PostgreSQL server and the fake Discord.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.images import jpeg_bytes, photo_like

ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2, 4)
EVENTS = 200
BANKED = 8  # distinct banked images; every fifth event re-shares one of them
READY_WITHIN_S = 120.0
DONE_WITHIN_S = 600.0  # recorded -> every event decided and acted on


def run(quick: bool = False) -> dict[str, Any]:
    """For `make bench`: this module in a child, under a throwaway PostgreSQL server."""
    command = [sys.executable, "-m", "bench.scale", "--json"] + (["--quick"] if quick else [])
    if not os.environ.get("VEILLE_TEST_POSTGRES_URL"):
        command = ["bash", str(ROOT / "scripts" / "with_postgres.sh"), *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("{"):
        return {"error": (done.stderr or done.stdout)[-2000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _env(base: Path, db_url: str, discord: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEILLE_", "SLACK_"))}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "VEILLE_DATABASE_URL": db_url,
        "VEILLE_DATA_DIR": str(base / "data"),
        "VEILLE_DETECTORS": "hashes,text",
        "VEILLE_SECRET_KEY": "bench-" + "k" * 26,
        "VEILLE_LOCALE": "en",
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_URL": discord.base_url,
    }


async def _database(server: str, name: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(server.replace("+asyncpg", "") + "/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{server}/{name}"


async def _record(db_url: str, events: list[Any]) -> None:
    """The rows a gateway's `inbox.record` writes for these events (pending, claimed by no one),
    all in one transaction: the workers see the whole burst at the same moment, so the clock
    that starts at its commit times their work alone."""
    from bot.core import inbox
    from bot.core.clock import utcnow
    from bot.store import engine as store
    from bot.store.models import InboxEvent

    engine = store.create_engine(db_url)
    try:
        async with store.session_factory(engine)() as session, session.begin():
            now = utcnow()
            session.add_all(
                InboxEvent(key=inbox.event_key(e), payload=inbox.to_json(e), received_at=now)
                for e in events
            )
    finally:
        await engine.dispose()


async def _progress(db_url: str) -> tuple[int, int, int, int]:
    """(events done, events dead, tickets, platform actions still pending)."""
    from sqlalchemy import func, select

    from bot.store import engine as store
    from bot.store.models import InboxEvent, OutboxAction, Ticket

    engine = store.create_engine(db_url)
    try:
        async with store.session_factory(engine)() as session:

            async def count(status: str) -> int:
                found = await session.scalar(
                    select(func.count()).select_from(InboxEvent).where(InboxEvent.status == status)  # type: ignore[arg-type]
                )
                return int(found or 0)

            tickets = await session.scalar(select(func.count()).select_from(Ticket))
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxAction)
                .where(OutboxAction.status == "pending")  # type: ignore[arg-type]
            )
            return await count("done"), await count("dead"), int(tickets or 0), int(pending or 0)
    finally:
        await engine.dispose()


def _events(
    discord: Any, thread: Any, guild: Any, channel: Any, member: Any, count: int
) -> list[Any]:
    """`count` posted messages (hosted by the fake) as the Discord adapter would translate them;
    every fifth carries a re-encoded banked image, the rest a fresh photo, all with a line of
    chat for the text detector."""
    from bot.core.types import Actor, MediaRef, MessageEvent, Platform

    events = []
    for n in range(count):
        seed = 1000 + (n // 5) % BANKED if n % 5 == 0 else 5000 + n
        data = jpeg_bytes(photo_like(seed, (640, 480)), quality=80 if n % 5 else 70)
        posted = thread.call(
            lambda data=data, n=n: discord.post_message(
                guild, channel, member, f"photo {n} from the weekend", files=[(f"{n}.jpg", data)]
            )
        )
        [attachment] = posted["attachments"]
        events.append(
            MessageEvent(
                Platform.DISCORD,
                guild.id,
                channel["id"],
                posted["id"],
                Actor(member["user"]["id"], member["user"]["username"]),
                text=posted["content"],
                media=(
                    MediaRef(
                        "attachment",
                        attachment["url"],
                        media_id=attachment["id"],
                        filename=attachment["filename"],
                        content_type=attachment["content_type"],
                        size=attachment["size"],
                    ),
                ),
            )
        )
    return events


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(workers: int, events_n: int, server: str, scratch: Path) -> dict[str, Any]:
    from tests.cli.servers import fake_discord_thread, set_up_discord_guild

    base = scratch / f"w{workers}"
    base.mkdir()
    db_url = asyncio.run(_database(server, f"veille_scale_{workers}_{uuid.uuid4().hex[:6]}"))
    processes: list[subprocess.Popen[str]] = []
    with fake_discord_thread() as (discord, thread):
        guild = discord.add_guild("Bench")
        general = discord.add_channel(guild, "general")
        safety = discord.add_channel(guild, "safety")
        quarantine = discord.add_channel(guild, "quarantine")
        member = discord.add_member(guild, "mel")
        env = _env(base, db_url, discord)
        cli = [sys.executable, "-m", "bot.cli"]
        subprocess.run([*cli, "db", "upgrade"], cwd=base, env=env, check=True, capture_output=True)
        banked = []
        for k in range(BANKED):
            path = base / f"banked-{k}.png"
            photo_like(1000 + k, (640, 480)).save(path)
            banked.append(str(path))
        subprocess.run(
            [*cli, "hashes", "add", *banked, "--bank", "operator-list"],
            cwd=base,
            env=env,
            check=True,
            capture_output=True,
        )
        asyncio.run(set_up_discord_guild(db_url, guild.id, "Bench", safety["id"], quarantine["id"]))
        events = _events(discord, thread, guild, general, member, events_n)
        try:
            for n in range(workers):
                processes.append(
                    subprocess.Popen(
                        [*cli, "run", "--role", "worker"],
                        cwd=base,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=(base / f"worker{n}.err").open("w"),
                        text=True,
                    )
                )
            deadline = time.monotonic() + READY_WITHIN_S
            while not all(
                "claiming recorded events" in (base / f"worker{n}.err").read_text()
                for n in range(workers)
            ):
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(
                        "a worker did not start: " + (base / "worker0.err").read_text()
                    )
                time.sleep(0.2)
            load = os.getloadavg()[0]
            cpu_before = sum(_cpu_s(p.pid) for p in processes)
            started = time.monotonic()
            asyncio.run(_record(db_url, events))
            recorded = time.monotonic()
            deadline = recorded + DONE_WITHIN_S
            elapsed = acted = 0.0
            while time.monotonic() < deadline:
                done, dead, tickets, pending = asyncio.run(_progress(db_url))
                if not elapsed and done + dead >= events_n:
                    elapsed = time.monotonic() - recorded  # every event decided
                if elapsed and not pending:
                    acted = time.monotonic() - recorded  # and every removal and card made
                    break
                time.sleep(0.25)
            cpu = sum(_cpu_s(p.pid) for p in processes) - cpu_before
            time.sleep(3)  # room for a repeated action to show
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()

        async def calls() -> list[Any]:
            return list(discord.calls)

        seen = thread.call(calls)
    deletes: dict[str, int] = {}
    for call in seen:
        if call.method == "DELETE" and call.path.startswith(f"/channels/{general['id']}/messages/"):
            deletes[call.path] = deletes.get(call.path, 0) + 1
    cards = [
        c
        for c in seen
        if c.method == "POST"
        and c.path == f"/channels/{safety['id']}/messages"
        and (c.body or {}).get("embeds")
    ]
    expected = len([n for n in range(events_n) if n % 5 == 0])
    return {
        "workers": workers,
        "events": events_n,
        "decided": done,
        "dead": dead,
        "seconds": round(elapsed, 2),
        "acted_s": round(acted, 2),
        "record_s": round(recorded - started, 2),
        "events_per_s": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        # What the machine's other work cannot change much: the workers' own CPU per event.
        "worker_cpu_ms_per_event": round(1000 * cpu / max(done, 1), 1),
        "load_before": round(load, 2),
        "tickets": tickets,
        "removed": len(deletes),
        "expected_removals": expected,
        "duplicate_actions": sum(n - 1 for n in deletes.values()) + max(0, len(cards) - tickets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer events, 1 and 2 workers")
    parser.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = parser.parse_args()
    server = os.environ.get("VEILLE_TEST_POSTGRES_URL", "")
    if not server:  # start a throwaway PostgreSQL server around this very command
        os.execvp(
            "bash",
            [
                "bash",
                str(ROOT / "scripts" / "with_postgres.sh"),
                sys.executable,
                "-m",
                "bench.scale",
                *sys.argv[1:],
            ],
        )
    counts = WORKERS[:2] if args.quick else WORKERS
    events_n = 60 if args.quick else EVENTS
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for workers in counts:
            runs.append(_one(workers, events_n, server, Path(scratch)))
            if not args.json:
                print(runs[-1], flush=True)
    base = runs[0]["events_per_s"] or 1.0
    result = {
        "events": events_n,
        "cores": os.cpu_count(),
        **{f"workers_{r['workers']}_events_per_s": r["events_per_s"] for r in runs},
        **{f"workers_{r['workers']}_ratio": round(r["events_per_s"] / base, 2) for r in runs[1:]},
        **{f"workers_{r['workers']}_cpu_ms_per_event": r["worker_cpu_ms_per_event"] for r in runs},
        "duplicate_actions": sum(r["duplicate_actions"] for r in runs),
        "all_removed_once": all(
            r["removed"] == r["expected_removals"] and r["decided"] == r["events"] for r in runs
        ),
        "limit": (
            f"{os.cpu_count()} cores shared by the workers, the PostgreSQL server and the fake "
            "Discord: past that many workers the ratio cannot grow"
        ),
        "runs": runs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
