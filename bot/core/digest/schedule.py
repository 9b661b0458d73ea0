"""When digests are due: `Workspace.digest_schedule` strings turned into APScheduler triggers
in the workspace's timezone, and the reporting period that ends at each scheduled time.

Schedules: "daily@HH:MM", "weekly:mon@HH:MM", "cron:<minute hour day month day-of-week>"
(standard cron: day-of-week 0 and 7 are Sunday) or "off". A digest fired at F covers
[previous fire, F): periods tile time with no gap or overlap, so across a DST change a
"daily" period is 23 or 25 hours long, as the volunteers' wall clock says. The grammar of
these strings, and the schedules the setup wizards offer, are declared with the other
workspace settings in bot/workspace_settings.py; this module only turns them into triggers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.core.clock import as_utc
from bot.workspace_settings import parse_digest_schedule

# Standard cron numbers day-of-week from Sunday = 0; APScheduler from Monday = 0.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Widening windows to look back for the fire time before a given instant: a schedule that fires
# every minute is found in the first, a yearly cron in the last.
_LOOKBACKS = (
    timedelta(hours=1),
    timedelta(days=1, hours=2),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 8 + 2),
)
DEFAULT_PERIOD = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start).astimezone(UTC))
        object.__setattr__(self, "end", as_utc(self.end).astimezone(UTC))
        if self.end <= self.start:
            raise ValueError(f"empty period {self.start} .. {self.end}")

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length just before this one (what the digest compares with)."""
        return Period(self.start - self.length, self.start)

    def __contains__(self, when: datetime) -> bool:
        return self.start <= as_utc(when) < self.end


def zone(name: str) -> ZoneInfo:
    """The workspace's timezone; ValueError for an unknown name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def parse_schedule(spec: str, timezone: str) -> CronTrigger | None:
    """The trigger for a `digest_schedule` string, or None for "off".
    Raises ValueError for a malformed schedule or timezone (the setup wizard shows it)."""
    tz = zone(timezone)
    schedule = parse_digest_schedule(spec)  # SettingError (a ValueError) when malformed
    if schedule.frequency == "off":
        return None
    if schedule.frequency == "cron":
        fields = list(schedule.cron)
        fields[4] = re.sub(r"(?<![/\d])\d+", lambda m: _CRON_DAYS[int(m[0]) % 7], fields[4])
        try:
            return CronTrigger.from_crontab(" ".join(fields), timezone=tz)
        except ValueError as exc:
            raise ValueError(f"invalid cron schedule {spec!r}: {exc}") from exc
    if schedule.weekday:
        return CronTrigger(
            day_of_week=schedule.weekday, hour=schedule.hour, minute=schedule.minute, timezone=tz
        )
    return CronTrigger(hour=schedule.hour, minute=schedule.minute, timezone=tz)


def next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time at or after `after`, in UTC."""
    fire = trigger.get_next_fire_time(None, as_utc(after))
    return None if fire is None else fire.astimezone(UTC)


def fire_before(trigger: CronTrigger, before: datetime) -> datetime | None:
    """The last fire time strictly before `before`, in UTC (None if there is none)."""
    before = as_utc(before)
    for lookback in _LOOKBACKS:
        fire = next_fire(trigger, before - lookback)
        if fire is None or fire >= before:
            continue
        while (
            following := next_fire(trigger, fire + timedelta(seconds=1))
        ) is not None and following < before:
            fire = following
        return fire
    return None


def last_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The most recent fire time at or before `now`. Fire times fall on whole seconds, so
    "strictly before now + 1 µs" is "at or before now"."""
    return fire_before(trigger, as_utc(now) + timedelta(microseconds=1))


def period_ending(trigger: CronTrigger, fire: datetime) -> Period:
    """The period a digest fired at `fire` reports on: from the fire before it to `fire`."""
    start = fire_before(trigger, fire)
    return Period(start if start is not None else fire - DEFAULT_PERIOD, fire)


def due_period(spec: str, timezone: str, now: datetime) -> Period | None:
    """The period of the most recent scheduled digest at or before `now` (None when off)."""
    trigger = parse_schedule(spec, timezone)
    if trigger is None:
        return None
    fire = last_fire(trigger, now)
    return None if fire is None else period_ending(trigger, fire)


def rolling_period(spec: str, timezone: str, now: datetime) -> Period:
    """For an on-demand digest: the schedule's usual length of time, ending `now`
    (a day when the schedule is off or unparsable)."""
    try:
        due = due_period(spec, timezone, now)
    except ValueError:
        due = None
    return Period(as_utc(now) - (due.length if due else DEFAULT_PERIOD), as_utc(now))
