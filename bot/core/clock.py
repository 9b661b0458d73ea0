"""The one clock. Code asks `clock.now()`; tests swap in a `ManualClock` instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """Aware UTC now. Stored datetimes are naive UTC (SQLite keeps no zone): see `as_utc`."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Datetimes read back from SQLite are naive UTC; make them aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = as_utc(when)
