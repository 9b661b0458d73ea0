"""Digest statistics for a period: what a digest says, before it is written in any language.

`compute_stats` is pure (rows in, numbers out) so that `veille digest preview --demo` can use
it without a database; `load_stats` fetches the rows. Posting lives in `post.py`, the words
in `render.py`: this module imports neither, so the three stay free of an import loop.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.core.clock import as_utc
from bot.core.digest.schedule import Period, zone
from bot.store.models import ScanRecord, Ticket, Workspace

SEVERITIES = ("REVIEW", "QUARANTINE", "CRITICAL")
QUARANTINED = ("QUARANTINE", "CRITICAL")  # the severities whose messages are removed
CHART_MIN_DAYS, CHART_MAX_DAYS = 7, 31  # a daily digest still shows the week around it
TOP_N = 3  # busiest channels, top reasons
REPORT_DUE = timedelta(hours=48)  # TAKE IT DOWN Act: reported images down within 48 hours


@dataclass(frozen=True)
class Metric:
    """A count in this period and in the previous one."""

    current: int
    previous: int


@dataclass(frozen=True)
class OpenTicket:
    id: int
    age: timedelta
    severity: str
    breached: bool


@dataclass(frozen=True)
class OpenReport:
    id: int
    hours_left: int  # to the due time at the period end; negative once past it


@dataclass(frozen=True)
class ReportStats:
    """Report tickets (kind "report"): the 48-hour clock a digest holds the team to."""

    received: int = 0  # report tickets opened in the period
    on_time: int = 0  # resolved in the period, by their due time
    late: int = 0  # resolved in the period, after it
    open: tuple[OpenReport, ...] = ()  # still open at the period end, most urgent first

    @property
    def any(self) -> bool:
        return bool(self.received or self.on_time or self.late or self.open)


@dataclass
class DigestStats:
    """Everything a digest says. Counts are for `period` unless named otherwise."""

    workspace_name: str
    timezone: str
    sla_hours: int
    period: Period
    images: Metric
    links: Metric
    flagged: Metric
    flagged_by_severity: dict[str, Metric]
    by_category: list[tuple[str, int]]
    quarantined: Metric
    tickets_opened: Metric
    tickets_resolved: Metric
    false_positives: int
    fp_rate: float | None  # false_positive / resolved, None when nothing was resolved
    previous_fp_rate: float | None
    median_first_action: timedelta | None
    previous_median_first_action: timedelta | None
    median_resolution: timedelta | None
    previous_median_resolution: timedelta | None
    open_tickets: list[OpenTicket]  # SLA breaches first, then oldest first
    busiest_channels: list[tuple[str, int]]
    top_reasons: list[tuple[str, int]]
    daily: list[tuple[date, dict[str, int]]] = field(default_factory=list)  # chart data
    reports: ReportStats = field(default_factory=ReportStats)

    @property
    def open_count(self) -> int:
        return len(self.open_tickets)

    @property
    def breached_count(self) -> int:
        return sum(1 for ticket in self.open_tickets if ticket.breached)


def chart_windows(period: Period, timezone: str) -> list[tuple[date, Period]]:
    """The chart's bars: local days of 24 wall-clock hours ending at the period's end (so a
    09:00 digest counts 09:00 to 09:00), at least a week of them, oldest first; each is
    labelled with the local date it starts on."""
    tz = zone(timezone)
    end = period.end.astimezone(tz)
    count = min(max(round(period.length / timedelta(days=1)), CHART_MIN_DAYS), CHART_MAX_DAYS)
    windows = []
    for offset in range(count, 0, -1):
        # Wall-clock arithmetic, re-localised: a window across a DST change is 23 or 25 h.
        start = (end.replace(tzinfo=None) - timedelta(days=offset)).replace(tzinfo=tz)
        stop = (end.replace(tzinfo=None) - timedelta(days=offset - 1)).replace(tzinfo=tz)
        windows.append((start.date(), Period(start, stop)))
    return windows


def _flagged(scan: ScanRecord) -> bool:
    return scan.severity != "NONE"


def _severity_is(severity: str) -> Callable[[ScanRecord], bool]:
    return lambda scan: scan.severity == severity


def _median(values: Iterable[timedelta]) -> timedelta | None:
    seconds = [value.total_seconds() for value in values]
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


def _in(when: datetime | None, period: Period) -> bool:
    return when is not None and when in period


def report_stats(tickets: Sequence[Ticket], period: Period) -> ReportStats:
    """Reports received, resolved by or after their due time (48 h after the report when a
    ticket has none recorded), and those still open with the hours left at the period end."""
    reports = [tk for tk in tickets if tk.kind == "report"]

    def due(tk: Ticket) -> datetime:
        return as_utc(tk.due_at) if tk.due_at else as_utc(tk.created_at) + REPORT_DUE

    resolved = [tk for tk in reports if _in(tk.resolved_at, period)]
    on_time = sum(1 for tk in resolved if tk.resolved_at and as_utc(tk.resolved_at) <= due(tk))
    still_open = [
        tk
        for tk in reports
        if as_utc(tk.created_at) < period.end
        and (tk.resolved_at is None or as_utc(tk.resolved_at) >= period.end)
    ]
    open_ = sorted(
        (
            OpenReport(tk.id or 0, int((due(tk) - period.end).total_seconds() // 3600))
            for tk in still_open
        ),
        key=lambda report: (report.hours_left, report.id),
    )
    return ReportStats(
        received=sum(1 for tk in reports if _in(tk.created_at, period)),
        on_time=on_time,
        late=len(resolved) - on_time,
        open=tuple(open_),
    )


def compute_stats(
    workspace: Workspace, period: Period, scans: Sequence[ScanRecord], tickets: Sequence[Ticket]
) -> DigestStats:
    """The digest numbers from plain rows. `scans` must cover the previous period and the chart
    days; `tickets` those created, acted on or resolved since the previous period began, and
    every ticket still open at the end of `period`. Open tickets are aged at the period end."""
    previous = period.previous()
    current_scans = [s for s in scans if _in(s.at, period)]
    previous_scans = [s for s in scans if _in(s.at, previous)]

    def metric(test: Callable[[ScanRecord], bool]) -> Metric:
        return Metric(
            sum(1 for s in current_scans if test(s)), sum(1 for s in previous_scans if test(s))
        )

    def ticket_metric(attribute: str) -> Metric:
        return Metric(
            sum(1 for tk in tickets if _in(getattr(tk, attribute), period)),
            sum(1 for tk in tickets if _in(getattr(tk, attribute), previous)),
        )

    def resolved_in(window: Period) -> list[Ticket]:
        return [tk for tk in tickets if _in(tk.resolved_at, window)]

    def fp_rate(resolved: list[Ticket]) -> float | None:
        if not resolved:
            return None
        return sum(1 for tk in resolved if tk.resolution == "false_positive") / len(resolved)

    def first_action_times(window: Period) -> list[timedelta]:
        return [
            as_utc(tk.first_action_at) - as_utc(tk.created_at)
            for tk in tickets
            if tk.first_action_at is not None and _in(tk.first_action_at, window)
        ]

    def resolution_times(window: Period) -> list[timedelta]:
        return [
            as_utc(tk.resolved_at) - as_utc(tk.created_at)
            for tk in resolved_in(window)
            if tk.resolved_at is not None
        ]

    flagged_now = [s for s in current_scans if _flagged(s)]
    categories = Counter(c for s in flagged_now for c in s.categories)
    channels = Counter(s.channel_id for s in flagged_now)
    reasons = Counter(r for tk in tickets if _in(tk.created_at, period) for r in tk.reasons)

    sla = timedelta(hours=workspace.sla_hours)
    still_open = [
        tk
        for tk in tickets
        if as_utc(tk.created_at) < period.end
        and (tk.resolved_at is None or as_utc(tk.resolved_at) >= period.end)
    ]
    open_tickets = [
        OpenTicket(
            tk.id or 0,
            period.end - as_utc(tk.created_at),
            tk.severity,
            period.end - as_utc(tk.created_at) > sla,
        )
        for tk in still_open
    ]
    open_tickets.sort(key=lambda tk: (not tk.breached, -tk.age))

    windows = chart_windows(period, workspace.timezone)
    flagged_scans = [s for s in scans if _flagged(s)]
    daily = [
        (
            day,
            {
                sev: sum(1 for s in flagged_scans if s.severity == sev and s.at in window)
                for sev in SEVERITIES
            },
        )
        for day, window in windows
    ]

    resolved_now = resolved_in(period)
    return DigestStats(
        workspace_name=workspace.name,
        timezone=workspace.timezone,
        sla_hours=workspace.sla_hours,
        period=period,
        images=metric(lambda s: s.kind == "image"),
        links=metric(lambda s: s.kind == "url"),
        flagged=metric(_flagged),
        flagged_by_severity={sev: metric(_severity_is(sev)) for sev in SEVERITIES},
        by_category=categories.most_common(),
        quarantined=metric(lambda s: s.severity in QUARANTINED),
        tickets_opened=ticket_metric("created_at"),
        tickets_resolved=ticket_metric("resolved_at"),
        false_positives=sum(1 for tk in resolved_now if tk.resolution == "false_positive"),
        fp_rate=fp_rate(resolved_now),
        previous_fp_rate=fp_rate(resolved_in(previous)),
        median_first_action=_median(first_action_times(period)),
        previous_median_first_action=_median(first_action_times(previous)),
        median_resolution=_median(resolution_times(period)),
        previous_median_resolution=_median(resolution_times(previous)),
        open_tickets=open_tickets,
        busiest_channels=channels.most_common(TOP_N),
        top_reasons=reasons.most_common(TOP_N),
        daily=daily,
        reports=report_stats(tickets, period),
    )


async def load_stats(session: AsyncSession, workspace: Workspace, period: Period) -> DigestStats:
    """Fetch the rows `compute_stats` needs for `workspace` and `period`, and compute."""
    since = min(period.previous().start, chart_windows(period, workspace.timezone)[0][1].start)
    scan_query = select(ScanRecord).where(
        ScanRecord.workspace_id == workspace.id,
        col(ScanRecord.at) >= since,
        col(ScanRecord.at) < period.end,
    )
    scans = (await session.execute(scan_query)).scalars().all()
    since_prev = period.previous().start
    ticket_query = select(Ticket).where(
        Ticket.workspace_id == workspace.id,
        col(Ticket.created_at) < period.end,
        or_(
            col(Ticket.resolved_at).is_(None),
            col(Ticket.resolved_at) >= since_prev,
            col(Ticket.created_at) >= since_prev,
            col(Ticket.first_action_at) >= since_prev,
        ),
    )
    tickets = (await session.execute(ticket_query)).scalars().all()
    return compute_stats(workspace, period, list(scans), list(tickets))
