"""kill -9 at five points of one banked image's way through a real `veille run` (Discord fake,
real SQLite file): after detection, before the commit, after the commit, mid-outbox (the
message deleted, its row not yet done) and after the card post (the card made, its id not yet
stored). The process dies by SIGKILL at the failpoint (bot/core/failpoints.py), is restarted
without it, and then nothing is lost and nothing is posted twice:

- the message is deleted: exactly one DELETE succeeds. Delivery is at-least-once, so a crash
  between the DELETE and its row being marked done (mid-outbox) repeats that DELETE once; the
  repeat meets 404 Unknown Message, which the gateway counts as deleted. Every other point
  sends exactly one DELETE.
- exactly one card in the safety channel and one preview in the quarantine channel, and no
  other bot message twice: each post the outbox recorded as done made exactly one message.
  After the card post, the repeat POST carries the same enforced nonce and Discord answers with
  the card it already made.
- exactly one ticket; every inbox event and outbox action done (none pending, none dead); no
  traceback in either run's log.

What the restart waits for, which sets this file's pace (the scenarios run side by side, each
with its own fake Discord and database, so the file takes about the slowest one):
- an event left undecided (after detection, before the commit; after the commit too, where the
  inbox row was never settled) is replayed only once it is inbox.REPLAY_AGE_S (60 s) old;
- a queue whose holder died mid-action (mid-outbox, after the card post) is taken over only when
  its lease (outbox.LEASE_S, 90 s) has lapsed: the new process has a new owner id and waits.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session

from bot.core import failpoints
from bot.core.failpoints import ENV, POINTS
from bot.store.models import Workspace
from tests.cli.conftest import CLEARED_VARS, REPO
from tests.cli.servers import ServerThread, fake_discord_thread
from tests.detectors.hash_images import photo_like, png_bytes
from tests.fakes.discord_server import Call, FakeDiscord

pytestmark = pytest.mark.slow

SEED = 77
DIED_WITHIN_S = 60.0  # the message posted -> the process killed at its failpoint
# Restarted -> everything settled: the replay age (60 s) or the dead holder's lease (90 s), plus
# the outbox's 15 s poll and the replayer's 30 s period, with room for a slow machine.
SETTLED_WITHIN_S = 200.0
QUIET_S = 4.0  # once settled, how long the restarted process is watched for a repeat


@dataclass
class Outcome:
    """What one crash scenario left behind, read once both runs are over."""

    point: str
    first_rc: int | None
    first_err: str
    second_rc: int | None
    second_err: str
    before: dict[str, Any]  # what the database and the fake held right after the kill
    calls: list[Call]
    messages: dict[str, dict[str, Any]]
    bot_id: str
    general: str
    safety: str
    quarantine: str
    message_id: str
    tickets: int
    inbox: list[str]  # statuses
    outbox: list[tuple[str, str, str]]  # (idempotency key, kind, status)
    settled_s: float = 0.0  # restarted -> settled
    error: str = ""  # the scenario could not run to the end

    def report(self) -> str:
        return (
            f"[{self.point}] {self.error}\nbefore restart: {self.before}\n"
            f"settled {self.settled_s:.1f} s after the restart\n"
            f"inbox: {self.inbox}\noutbox: {self.outbox}\n"
            f"calls: {[(c.method, c.path, c.status) for c in self.calls]}\n"
            f"first run (rc {self.first_rc}):\n{self.first_err[-4000:]}\n"
            f"second run (rc {self.second_rc}):\n{self.second_err[-6000:]}"
        )


def _env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_VARS and k != ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {
        **env,
        "VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{base / 'veille.db'}",
        "VEILLE_DATA_DIR": str(base / "data"),
        "VEILLE_DETECTORS": "hashes,text",
        "VEILLE_LOCALE": "en",
        "VEILLE_SECRET_KEY": "k" * 32,
        "COLUMNS": "200",
    }


def _veille(base: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=base,
        env=_env(base),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def _start(base: Path, env: dict[str, str], discord: FakeDiscord, log: str) -> subprocess.Popen:
    """A real `veille run`, logging to files (a pipe nobody reads would fill and stall it),
    returned once it has identified to the fake gateway."""
    seen = len(discord.identifies)
    with (base / f"{log}.out").open("w") as out, (base / f"{log}.err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=base, env=env, stdout=out, stderr=err
        )
    deadline = time.monotonic() + 120
    while len(discord.identifies) <= seen:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"{log} never identified: {(base / f'{log}.err').read_text()}")
        time.sleep(0.2)
    time.sleep(3)  # READY and guild_ready_timeout, as in test_two_processes
    return process


def _rows(db: Path) -> tuple[int, list[str], list[tuple[str, str, str]]]:
    """(tickets, inbox statuses, outbox rows), read as another process would (WAL: no
    blocking; after a kill -9, this first reader rolls the cut transaction back, as the
    restarted process would)."""
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        inbox = [row[0] for row in conn.execute("SELECT status FROM inbox ORDER BY id")]
        outbox = conn.execute(
            "SELECT idempotency_key, kind, status FROM outbox ORDER BY id"
        ).fetchall()
    return tickets, inbox, outbox


def _snapshot(thread: ServerThread, discord: FakeDiscord) -> tuple[list[Call], dict[str, Any]]:
    """The fake's calls and messages, copied on its own loop (it keeps mutating them)."""

    async def copy() -> tuple[list[Call], dict[str, Any]]:
        return list(discord.calls), dict(discord.messages)

    return thread.call(copy)


def _scenario(point: str, base: Path, template: Path) -> Outcome:
    base.mkdir()
    shutil.copy(template, base / "veille.db")
    db = base / "veille.db"
    first = second = None
    out: dict[str, Any] = {"point": point, "before": {}, "error": ""}
    with fake_discord_thread() as (discord, thread):
        guild = discord.add_guild("Crash Club")
        general = discord.add_channel(guild, "general")
        safety = discord.add_channel(guild, "safety")
        quarantine = discord.add_channel(guild, "quarantine")
        member = discord.add_member(guild, "mel")
        engine = create_engine(f"sqlite:///{db}")
        with Session(engine) as session:  # what /veille setup leaves: both channels chosen
            session.add(
                Workspace(
                    platform="discord",
                    external_id=guild.id,
                    name=guild.name,
                    safety_channel_id=safety["id"],
                    quarantine_channel_id=quarantine["id"],
                    setup_completed=True,
                )
            )
            session.commit()
        engine.dispose()
        env = {
            **_env(base),
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_URL": discord.base_url,
        }
        message_id = ""
        try:
            first = _start(base, {**env, ENV: point}, discord, "first")
            posted = thread.call(
                lambda: discord.post_message(
                    guild, general, member, "", files=[("again.png", png_bytes(photo_like(SEED)))]
                )
            )
            message_id = posted["id"]
            try:
                first.wait(DIED_WITHIN_S)
            except subprocess.TimeoutExpired:
                out["error"] = f"the first run never died at {point}"
                raise
            calls, _ = _snapshot(thread, discord)
            tickets, inbox, outbox = _rows(db)
            out["before"] = {
                "tickets": tickets,
                "inbox": inbox,
                "outbox": outbox,
                "deletes": len(_deletes(calls, general["id"], message_id)),
                "cards": len(_posts(calls, safety["id"])),
            }
            second = _start(base, env, discord, "second")
            restarted = time.monotonic()
            deadline = restarted + SETTLED_WITHIN_S
            while not _settled(*_rows(db)):
                if second.poll() is not None or time.monotonic() > deadline:
                    out["error"] = "the restarted run never settled"
                    break
                time.sleep(0.5)
            out["settled_s"] = time.monotonic() - restarted
            time.sleep(QUIET_S)
        except Exception as exc:
            out["error"] = out["error"] or f"{type(exc).__name__}: {exc}"
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(60)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
        calls, messages = _snapshot(thread, discord)
        tickets, inbox, outbox = _rows(db)
        return Outcome(
            first_rc=first.returncode if first else None,
            first_err=_read(base / "first.err"),
            second_rc=second.returncode if second else None,
            second_err=_read(base / "second.err"),
            calls=calls,
            messages=messages,
            bot_id=discord.bot_user["id"],
            general=general["id"],
            safety=safety["id"],
            quarantine=quarantine["id"],
            message_id=message_id,
            tickets=tickets,
            inbox=inbox,
            outbox=outbox,
            **out,
        )


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _settled(tickets: int, inbox: list[str], outbox: list[tuple[str, str, str]]) -> bool:
    """A ticket, and no event or action left pending."""
    return (
        tickets > 0
        and bool(inbox)
        and "pending" not in inbox
        and bool(outbox)
        and all(status != "pending" for _, _, status in outbox)
    )


def _deletes(calls: list[Call], channel: str, message: str) -> list[Call]:
    """Every DELETE of the member's message, whatever Discord answered."""
    return [
        c
        for c in calls
        if c.method == "DELETE" and c.path == f"/channels/{channel}/messages/{message}"
    ]


def _posts(calls: list[Call], channel: str) -> list[Call]:
    return [c for c in calls if c.method == "POST" and c.path == f"/channels/{channel}/messages"]


@pytest.fixture(scope="module")
def crashes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Outcome]]]:
    """Every selected point's scenario, started at once: each mostly waits (a replay age, a
    lease), so side by side the file takes about as long as its slowest point."""
    wanted: list[str] = []  # only the points this session selected (-k, a node id)
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.path == request.path and callspec is not None:
            wanted.append(str(callspec.params["point"]))
    root = tmp_path_factory.mktemp("crash")
    template = root / "template"
    template.mkdir()
    banked = template / "banked.png"
    photo_like(SEED).save(banked)
    _veille(template, "db", "upgrade")
    _veille(template, "hashes", "add", str(banked), "--bank", "operator-list")
    with ThreadPoolExecutor(len(POINTS)) as pool:
        yield {
            point: pool.submit(_scenario, point, root / point, template / "veille.db")
            for point in dict.fromkeys(wanted)
        }


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_loses_nothing_and_posts_nothing_twice(
    crashes: dict[str, Future[Outcome]], point: str
) -> None:
    o = crashes[point].result(timeout=DIED_WITHIN_S + SETTLED_WITHIN_S + 300)
    why = o.report()
    assert not o.error, why
    # It died where it was told to, by SIGKILL, with its work cut where the point says.
    assert o.first_rc == -signal.SIGKILL, why
    assert f"failpoint {point} hit 1: SIGKILL" in o.first_err, why
    before = o.before
    done_before = {key.split(":", 1)[1] for key, _, status in before["outbox"] if status == "done"}
    if point in ("after-detection", "before-commit"):
        assert before["tickets"] == 0 and not before["outbox"], why  # nothing committed
        assert before["inbox"] == ["pending"], why  # but the event is kept
    else:  # committed; the removal done only when the card post was the cut
        assert before["tickets"] == 1 and before["outbox"], why
        assert done_before == ({"delete"} if point == "after-card-post" else set()), why
    expected = {"after-commit": (0, 0), "mid-outbox": (1, 0), "after-card-post": (1, 1)}
    assert (before["deletes"], before["cards"]) == expected.get(point, (0, 0)), why

    # Nothing lost: the message is gone, one ticket, every event and action done.
    assert o.message_id and o.message_id not in o.messages, why
    assert o.tickets == 1, why
    assert o.inbox == ["done"], why
    assert o.outbox and all(status == "done" for _, _, status in o.outbox), why
    deletes = _deletes(o.calls, o.general, o.message_id)
    assert [c.status for c in deletes if 200 <= c.status < 300] == [204], why
    # At-least-once: only a crash between the DELETE and its row repeats it (answered 404).
    assert [c.status for c in deletes] == ([204, 404] if point == "mid-outbox" else [204]), why

    # Nothing twice: one card, one preview, and one message per post the outbox recorded.
    mine = [m for m in o.messages.values() if m["author"]["id"] == o.bot_id]
    cards = [m for m in mine if m["channel_id"] == o.safety and m["embeds"]]
    previews = [m for m in mine if m["channel_id"] == o.quarantine]
    assert len(cards) == 1 and len(previews) == 1, why
    posts = [kind for _, kind, _ in o.outbox if kind in ("post_card", "post_text", "send_private")]
    assert len(mine) == len(posts), why
    card_posts = _posts(o.calls, o.safety)
    if point == "after-card-post":  # the repeat carried the same enforced nonce: the same card
        assert len(card_posts) == 2, why
        assert len({c.body["nonce"] for c in card_posts}) == 1, why
        assert {c.response["id"] for c in card_posts} == {cards[0]["id"]}, why
    else:
        assert len(card_posts) == 1, why

    assert o.second_rc == 0, why
    assert "Traceback" not in o.first_err and "Traceback" not in o.second_err, why


def test_a_failpoint_is_inert_unless_named_and_fires_on_its_hit(tmp_path: Path) -> None:
    assert failpoints._parse("") == (None, 0)
    assert failpoints._parse("mid-outbox:3") == ("mid-outbox", 3)
    for typo in ("mid-outbx", "mid-outbox:0", "mid-outbox:x"):  # refused, never silently inert
        with pytest.raises(ValueError, match=ENV):
            failpoints._parse(typo)
    code = (
        "from bot.core.failpoints import failpoint\n"
        "failpoint('after-commit'); failpoint('mid-outbox'); print('alive', flush=True)\n"
        "failpoint('mid-outbox'); print('never')\n"
    )
    env = {**_env(tmp_path), ENV: "mid-outbox:2"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done
    assert done.stdout == "alive\n" and "failpoint mid-outbox hit 2: SIGKILL" in done.stderr
