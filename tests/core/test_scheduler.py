"""The scheduler on a ManualClock: digests at the workspace's local time, catch-up after
downtime, no duplicate after a restart, jobs rebuilt when settings change, housekeeping.

How time moves without sleeping: `VeilleScheduler` jobs are idempotent coroutines that ask the
clock what is due. A test sets the ManualClock, then awaits the coroutine that the APScheduler
job holds (`job.func(*job.args)`), exactly what AsyncIOScheduler would run at that moment.
Schedulers are started paused, so APScheduler's own wall-clock timer never fires during a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.clock import ManualClock, as_utc
from bot.core.digest import Period, parse_schedule
from bot.core.scheduler import VeilleScheduler, digest_job_id
from bot.store.models import DigestRun, Workspace
from tests.core.test_digest import DigestGateway, stored
from tests.core.test_digest import add_workspace as add_any_workspace

D1_0900 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Scheduled:
    """Start and stop schedulers the way a process would, sharing one database and gateway."""

    def __init__(self, engine: AsyncEngine, clock: ManualClock) -> None:
        self.engine, self.clock = engine, clock
        self.gateway = DigestGateway()
        self.running: list[VeilleScheduler] = []

    async def start(self, housekeeping: object = None) -> VeilleScheduler:
        scheduler = VeilleScheduler(
            stored(self.engine), {"discord": self.gateway}, self.clock, housekeeping
        )  # type: ignore[arg-type]
        await scheduler.start(paused=True)
        self.running.append(scheduler)
        return scheduler

    def stop(self, scheduler: VeilleScheduler) -> None:
        scheduler.shutdown()
        self.running.remove(scheduler)

    async def fire(self, scheduler: VeilleScheduler, workspace_id: int) -> object:
        """What AsyncIOScheduler runs when the workspace's digest job is due."""
        job = scheduler.apscheduler.get_job(digest_job_id(workspace_id))
        assert job is not None
        return await job.func(*job.args)

    async def runs(self) -> list[DigestRun]:
        async with stored(self.engine).read() as session:
            return list(
                (
                    await session.execute(
                        select(DigestRun).order_by(DigestRun.period_start)  # type: ignore[arg-type]
                    )
                ).scalars()
            )


@pytest_asyncio.fixture(loop_scope="function")  # shut schedulers down on the test's own loop
async def world(engine: AsyncEngine) -> AsyncIterator[Scheduled]:
    scheduled = Scheduled(engine, ManualClock(D1_0900 - timedelta(hours=1)))
    yield scheduled
    for scheduler in list(scheduled.running):
        scheduled.stop(scheduler)


async def add_workspace(engine: AsyncEngine, **values: object) -> int:
    """A workspace that joined the evening before D1, so its first digest is due D1 at 09:00."""
    values.setdefault("created_at", D1_0900 - timedelta(hours=12))
    return await add_any_workspace(engine, **values)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def test_daily_digest_at_local_time_across_a_dst_change(world: Scheduled) -> None:
    # Paris leaves winter time on Sunday 29 March 2026: 09:00 there is 08:00 UTC, then 07:00.
    world.clock.set(utc(2026, 3, 28, 7, 59, 59))
    ws = await add_workspace(
        world.engine, timezone="Europe/Paris", created_at=utc(2026, 3, 27, 10, 0)
    )
    scheduler = await world.start()
    job = scheduler.apscheduler.get_job(digest_job_id(ws))
    assert isinstance(job.trigger, CronTrigger) and str(job.trigger.timezone) == "Europe/Paris"

    assert await scheduler.next_digest_at(ws) == utc(2026, 3, 28, 8, 0)
    assert await world.fire(scheduler, ws) is None  # 08:59:59 in Paris: nothing due yet
    world.clock.set(utc(2026, 3, 28, 8, 0))
    assert await world.fire(scheduler, ws) == "posted"
    assert await scheduler.next_digest_at(ws) == utc(2026, 3, 29, 7, 0)  # 09:00 summer time

    world.clock.set(utc(2026, 3, 29, 6, 59))
    assert await world.fire(scheduler, ws) == "duplicate"  # still the 28 March digest
    world.clock.set(utc(2026, 3, 29, 7, 0))
    assert await world.fire(scheduler, ws) == "posted"

    runs = await world.runs()
    # UTC either way: SQLite hands back naive values, PostgreSQL aware ones.
    assert [(as_utc(r.period_start), as_utc(r.period_end)) for r in runs] == [
        (utc(2026, 3, 27, 8, 0), utc(2026, 3, 28, 8, 0)),
        (utc(2026, 3, 28, 8, 0), utc(2026, 3, 29, 7, 0)),  # a 23-hour day
    ]
    assert all(r.status == "posted" for r in runs)
    bodies = [card.body for _g, _c, card in world.gateway.cards]
    assert bodies[0].startswith("From 27 Mar 09:00 to 28 Mar 09:00 (Europe/Paris)")
    assert bodies[1].startswith("From 28 Mar 09:00 to 29 Mar 09:00 (Europe/Paris)")
    assert {channel for _g, channel, _c in world.gateway.cards} == {"safety"}


async def test_missed_digest_is_caught_up_once_after_downtime(world: Scheduled) -> None:
    ws = await add_workspace(world.engine)
    world.clock.set(D1_0900)
    first = await world.start()  # start-up at 09:00 sharp: the start-up catch-up posts it
    assert [as_utc(r.period_end) for r in await world.runs()] == [utc(2026, 11, 24, 9, 0)]
    world.clock.set(D1_0900 + timedelta(hours=23))
    world.stop(first)  # down from 08:00 to 11:30 the next day: the 09:00 digest is missed

    world.clock.set(D1_0900 + timedelta(days=1, hours=2, minutes=30))
    second = await world.start()
    assert await second.catch_up() == {ws: "duplicate"}  # the sweep does not post it again
    assert await world.fire(second, ws) == "duplicate"

    runs = await world.runs()
    assert [(as_utc(r.period_start), as_utc(r.period_end), r.status) for r in runs] == [
        (utc(2026, 11, 23, 9, 0), utc(2026, 11, 24, 9, 0), "posted"),
        (utc(2026, 11, 24, 9, 0), utc(2026, 11, 25, 9, 0), "posted"),  # its real period
    ]
    assert len(world.gateway.cards) == 2


async def test_a_long_downtime_posts_only_the_latest_period(world: Scheduled) -> None:
    await add_workspace(world.engine)
    world.clock.set(D1_0900 + timedelta(days=4, hours=3))  # four digests missed
    await world.start()
    runs = await world.runs()
    assert [(as_utc(r.period_start), as_utc(r.period_end)) for r in runs] == [
        (utc(2026, 11, 27, 9, 0), utc(2026, 11, 28, 9, 0))
    ]
    assert len(world.gateway.cards) == 1


async def test_a_restart_never_posts_twice(world: Scheduled) -> None:
    ws = await add_workspace(world.engine)
    world.clock.set(D1_0900)
    scheduler = await world.start()
    assert len(world.gateway.cards) == 1
    world.stop(scheduler)

    world.clock.advance(timedelta(minutes=5))
    restarted = await world.start()
    assert await world.fire(restarted, ws) == "duplicate"
    assert len(world.gateway.cards) == 1


async def test_a_crash_while_posting_is_not_reposted_after_restart(world: Scheduled) -> None:
    """The run is claimed before posting: if the process dies mid-post we cannot know whether
    the platform got the message, so the restarted scheduler does not risk a second one."""
    ws = await add_workspace(world.engine)
    scheduler = await world.start()
    world.clock.set(D1_0900)
    world.gateway.crash_with = SystemExit("killed while posting")
    with pytest.raises(SystemExit):
        await world.fire(scheduler, ws)
    world.stop(scheduler)

    restarted = await world.start()
    assert await world.fire(restarted, ws) == "duplicate"
    assert world.gateway.cards == []
    assert [r.status for r in await world.runs()] == ["pending"]


async def test_a_failed_post_is_retried_by_the_sweep(world: Scheduled) -> None:
    from bot.core.gateway import GatewayError

    ws = await add_workspace(world.engine)
    scheduler = await world.start()
    world.clock.set(D1_0900)
    world.gateway.failures["post_card"] = [GatewayError("rate limited")]
    assert await world.fire(scheduler, ws) == "failed"
    world.clock.advance(timedelta(minutes=15))
    sweep = scheduler.apscheduler.get_job("digest-sweep")
    assert await sweep.func() == {ws: "posted"}
    assert [r.status for r in await world.runs()] == ["posted"]


async def test_a_new_workspace_gets_no_digest_about_the_time_before_it_joined(
    world: Scheduled,
) -> None:
    world.clock.set(D1_0900 + timedelta(hours=2))
    ws = await add_workspace(world.engine, created_at=D1_0900 + timedelta(hours=1))
    scheduler = await world.start()
    assert await world.fire(scheduler, ws) is None
    assert world.gateway.cards == []
    world.clock.set(D1_0900 + timedelta(days=1))
    assert await world.fire(scheduler, ws) == "posted"


async def test_settings_changes_rebuild_the_job(world: Scheduled) -> None:
    ws = await add_workspace(world.engine)
    scheduler = await world.start()
    assert await scheduler.next_digest_at(ws) == D1_0900

    async def change(announce: bool = True, **values: object) -> None:
        async with stored(world.engine).write() as session:
            workspace = await session.get(Workspace, ws)
            assert workspace is not None
            for name, value in values.items():
                setattr(workspace, name, value)
        if announce:  # what the setup wizard does after saving
            await scheduler.reschedule_workspace(ws)

    await change(digest_schedule="weekly:mon@08:30", timezone="America/New_York")
    job = scheduler.apscheduler.get_job(digest_job_id(ws))
    assert str(job.trigger.timezone) == "America/New_York"
    assert await scheduler.next_digest_at(ws) == utc(2026, 11, 30, 13, 30)

    await change(digest_schedule="cron:0 18 * * 0")  # standard cron: 0 is Sunday
    assert await scheduler.next_digest_at(ws) == utc(2026, 11, 29, 23, 0)

    await change(digest_schedule="off")
    assert scheduler.apscheduler.get_job(digest_job_id(ws)) is None
    await change(digest_schedule="fortnightly, maybe")
    assert scheduler.apscheduler.get_job(digest_job_id(ws)) is None

    # A change nobody announced (another process, a database edit) is found by the sweep.
    await change(announce=False, digest_schedule="daily@07:15", timezone="Asia/Tokyo")
    assert scheduler.apscheduler.get_job(digest_job_id(ws)) is None
    await scheduler.apscheduler.get_job("digest-sweep").func()
    assert str(scheduler.apscheduler.get_job(digest_job_id(ws)).trigger.timezone) == "Asia/Tokyo"
    assert await scheduler.next_digest_at(ws) == utc(2026, 11, 24, 22, 15)


def test_schedule_strings() -> None:
    assert parse_schedule("off", "UTC") is None
    for bad in ("daily@25:00", "weekly:funday@09:00", "cron:* * *", "hourly"):
        with pytest.raises(ValueError):
            parse_schedule(bad, "UTC")
    with pytest.raises(ValueError, match="timezone"):
        parse_schedule("daily@09:00", "Mars/Olympus_Mons")
    assert Period(D1_0900, D1_0900 + timedelta(days=1)).previous().end == D1_0900


class RecordingHousekeeping:
    """Stands in for the core facade's housekeeping methods (the `Housekeeping` port)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    async def retry_outbox(self) -> None:
        self.calls.append(("retry_outbox", ()))
        raise RuntimeError("the outbox is on fire")  # must not stop the other jobs

    async def purge_expired_evidence(self) -> None:
        self.calls.append(("purge_expired_evidence", ()))

    async def trim_verdict_cache(self, older_than: timedelta) -> None:
        self.calls.append(("trim_verdict_cache", (older_than,)))

    async def check_report_deadlines(self) -> None:
        self.calls.append(("check_report_deadlines", ()))


async def test_housekeeping_jobs(world: Scheduled) -> None:
    housekeeping = RecordingHousekeeping()
    scheduler = await world.start(housekeeping)
    intervals = {
        job.id: job.trigger.interval
        for job in scheduler.apscheduler.get_jobs()
        if job.id != "digest-sweep" and not job.id.startswith("digest:")
    }
    assert intervals == {
        "outbox-retry": timedelta(seconds=30),
        "evidence-purge": timedelta(hours=1),
        "verdict-trim": timedelta(days=1),
        "report-deadlines": timedelta(minutes=5),
    }
    for job_id in intervals:
        await scheduler.apscheduler.get_job(job_id).func()
    assert sorted(housekeeping.calls) == sorted(
        [
            ("retry_outbox", ()),
            ("purge_expired_evidence", ()),
            ("trim_verdict_cache", (timedelta(days=30),)),
            ("check_report_deadlines", ()),
        ]
    )
