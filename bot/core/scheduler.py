"""Scheduled work: one digest job per workspace, and the housekeeping jobs.

Design: APScheduler's AsyncIOScheduler only *wakes us up*; it never decides what to do. Every
job is an idempotent coroutine that asks the one `Clock` what is due now:

- `run_workspace_digest(id)` finds the most recent scheduled time at or before `clock.now()`
  (in the workspace's timezone) and posts the digest for the period ending there through
  `post_digest`, whose DigestRun unique key makes a second call a no-op.
- `catch_up()` runs it for every workspace at start-up: a digest missed while Veille was down
  is posted once, for its real period; one already posted is not posted again.

So tests drive a `ManualClock` and await the same coroutines the jobs run, with no sleeping,
and production cannot double-post even if APScheduler fires late, twice, or after a restart.
Only the latest missed period is caught up: after a week offline a team gets one digest, not
seven.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import col, select

from bot.core.clock import Clock, as_utc, utcnow
from bot.core.digest import (
    DigestOutcome,
    last_fire,
    next_fire,
    parse_schedule,
    period_ending,
    post_digest,
)
from bot.core.gateway import Gateway
from bot.store.models import Workspace
from bot.store.repos import Store

log = logging.getLogger(__name__)

OUTBOX_EVERY = timedelta(seconds=30)
EVIDENCE_PURGE_EVERY = timedelta(hours=1)
VERDICT_TRIM_EVERY = timedelta(hours=24)
REPORT_DEADLINES_EVERY = timedelta(minutes=5)  # the 36-hour alert on report tickets
DIGEST_SWEEP_EVERY = timedelta(minutes=15)  # retries failed digests, covers a late wake-up
# The first sweep comes soon after start-up: adapters register their gateways after the
# scheduler starts, so a digest missed during downtime may have had no gateway to go through.
FIRST_SWEEP_AFTER = timedelta(minutes=1)
DEFAULT_VERDICT_CACHE_TTL = timedelta(days=30)


class Housekeeping(Protocol):
    """What the housekeeping jobs call; `bot.core.service.Veille` provides it."""

    async def retry_outbox(self) -> object: ...

    async def purge_expired_evidence(self) -> object: ...

    async def trim_verdict_cache(self, older_than: timedelta) -> object: ...

    async def check_report_deadlines(self) -> object: ...


def digest_job_id(workspace_id: int) -> str:
    return f"digest:{workspace_id}"


class VeilleScheduler:
    """Digest and housekeeping jobs on an AsyncIOScheduler.

    `store` is the process's one Store: its write lock serialises the digests' claims with every
    other writer. `gateways` maps a platform name ("discord", "slack") to its Gateway; it is
    read when a job runs, so adapters registered after construction are found. `housekeeping`
    is any object with the `Housekeeping` coroutines (None: no housekeeping jobs)."""

    def __init__(
        self,
        store: Store,
        gateways: Mapping[str, Gateway],
        clock: Clock,
        housekeeping: Housekeeping | None = None,
        *,
        verdict_cache_ttl: timedelta = DEFAULT_VERDICT_CACHE_TTL,
    ) -> None:
        self._store = store
        self._gateways = gateways
        self._clock = clock
        self._housekeeping = housekeeping
        self._verdict_cache_ttl = verdict_cache_ttl
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._built: dict[int, tuple[str, str]] = {}  # workspace -> (schedule, timezone) of its job

    @property
    def apscheduler(self) -> AsyncIOScheduler:
        """The underlying scheduler, for inspection (jobs, next run times)."""
        return self._scheduler

    # Life cycle

    async def start(self, *, paused: bool = False) -> None:
        """Build every job, start the scheduler (on the running loop), then catch up on digests
        missed while Veille was down. `paused=True` builds jobs that never fire (tests)."""
        self._add_housekeeping_jobs()
        async with self._store.read() as session:
            ids = (await session.execute(select(Workspace.id))).scalars().all()
        for workspace_id in ids:
            if workspace_id is not None:
                await self.reschedule_workspace(workspace_id)
        self._scheduler.start(paused=paused)
        await self.catch_up()

    def shutdown(self) -> None:
        """Stop firing jobs; a job already running finishes on its own."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def reschedule_workspace(self, workspace_id: int) -> None:
        """(Re)build a workspace's digest job from its current settings; the setup wizard calls
        this after saving. An "off" or invalid schedule, or a deleted workspace, removes it."""
        job_id = digest_job_id(workspace_id)
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)
        self._built.pop(workspace_id, None)
        async with self._store.read() as session:
            workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            return
        self._built[workspace_id] = (workspace.digest_schedule, workspace.timezone)
        try:
            trigger = parse_schedule(workspace.digest_schedule, workspace.timezone)
        except ValueError as exc:
            log.warning("workspace %s: no digest job: %s", workspace_id, exc)
            return
        if trigger is None:
            return
        self._scheduler.add_job(
            self.run_workspace_digest,
            trigger,
            args=[workspace_id],
            id=job_id,
            name=f"digest for workspace {workspace_id}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def _add_housekeeping_jobs(self) -> None:
        self._add_interval(
            "digest-sweep", self.sweep, DIGEST_SWEEP_EVERY, first_after=FIRST_SWEEP_AFTER
        )
        if self._housekeeping is None:
            return
        self._add_interval("outbox-retry", self.retry_outbox, OUTBOX_EVERY)
        self._add_interval("evidence-purge", self.purge_expired_evidence, EVIDENCE_PURGE_EVERY)
        self._add_interval("verdict-trim", self.trim_verdict_cache, VERDICT_TRIM_EVERY)
        self._add_interval("report-deadlines", self.check_report_deadlines, REPORT_DEADLINES_EVERY)

    def _add_interval(
        self,
        job_id: str,
        job: Callable[[], Awaitable[object]],
        every: timedelta,
        first_after: timedelta | None = None,
    ) -> None:
        # APScheduler's own timer runs on the wall clock, so the first run is too.
        first = None if first_after is None else utcnow() + first_after
        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=every.total_seconds()),
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            **({"next_run_time": first} if first else {}),
        )

    # Digest jobs (idempotent: safe to run at any time, any number of times)

    async def run_workspace_digest(self, workspace_id: int) -> DigestOutcome | None:
        """Post the digest of the latest period due at `clock.now()`, unless it already was.
        None when nothing is due (schedule off or invalid, or the period ended before the
        workspace existed: a new workspace gets no digest about the time before it joined)."""
        async with self._store.read() as session:
            workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            return None
        try:
            trigger = parse_schedule(workspace.digest_schedule, workspace.timezone)
        except ValueError:
            return None
        fire = last_fire(trigger, self._clock.now()) if trigger is not None else None
        if trigger is None or fire is None or fire <= as_utc(workspace.created_at):
            return None
        gateway = self._gateways.get(workspace.platform)
        if gateway is None:
            log.warning(
                "workspace %s: no gateway for %s, digest not posted",
                workspace_id,
                workspace.platform,
            )
            return None
        period = period_ending(trigger, fire)
        return await post_digest(self._store, gateway, workspace_id, period, self._clock)

    async def sweep(self) -> dict[int, DigestOutcome | None]:
        """The periodic job: pick up schedule changes nobody announced with
        `reschedule_workspace` (another process, a direct database edit), then `catch_up`."""
        async with self._store.read() as session:
            rows = (
                await session.execute(
                    select(Workspace.id, Workspace.digest_schedule, Workspace.timezone)
                )
            ).all()
        current = {row[0]: (row[1], row[2]) for row in rows if row[0] is not None}
        for workspace_id in current.keys() | self._built.keys():
            if current.get(workspace_id) != self._built.get(workspace_id):
                await self.reschedule_workspace(workspace_id)
        return await self.catch_up()

    async def catch_up(self) -> dict[int, DigestOutcome | None]:
        """Run every workspace's due digest (start-up catch-up, and the periodic sweep that
        retries failed posts). Returns each workspace's outcome."""
        async with self._store.read() as session:
            ids = (
                (
                    await session.execute(
                        select(Workspace.id).where(col(Workspace.digest_schedule) != "off")
                    )
                )
                .scalars()
                .all()
            )
        outcomes: dict[int, DigestOutcome | None] = {}
        for workspace_id in ids:
            if workspace_id is None:
                continue
            try:
                outcomes[workspace_id] = await self.run_workspace_digest(workspace_id)
            except Exception:  # one broken workspace must not stop the others' digests
                log.exception("digest catch-up failed for workspace %s", workspace_id)
                outcomes[workspace_id] = "failed"
        return outcomes

    async def next_digest_at(self, workspace_id: int) -> datetime | None:
        """When the workspace's next digest is due after `clock.now()`, in UTC."""
        async with self._store.read() as session:
            workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            return None
        trigger = parse_schedule(workspace.digest_schedule, workspace.timezone)
        return (
            None
            if trigger is None
            else next_fire(trigger, self._clock.now() + timedelta(microseconds=1))
        )

    # Housekeeping jobs: errors are logged, the next run tries again.

    async def retry_outbox(self) -> None:
        await self._housekeep("retry_outbox")

    async def purge_expired_evidence(self) -> None:
        await self._housekeep("purge_expired_evidence")

    async def trim_verdict_cache(self) -> None:
        await self._housekeep("trim_verdict_cache", self._verdict_cache_ttl)

    async def check_report_deadlines(self) -> None:
        await self._housekeep("check_report_deadlines")

    async def run_housekeeping(self) -> None:
        """Every housekeeping job once, now (start-up, tests, `veille` maintenance)."""
        await self.check_report_deadlines()
        await self.retry_outbox()
        await self.purge_expired_evidence()
        await self.trim_verdict_cache()

    async def _housekeep(self, method: str, *args: object) -> None:
        if self._housekeeping is None:
            return
        try:
            await getattr(self._housekeeping, method)(*args)
        except Exception:  # a failing job must not kill the scheduler; it runs again later
            log.exception("housekeeping %s failed", method)
