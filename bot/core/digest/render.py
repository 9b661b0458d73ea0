"""Digest statistics rendered into a neutral `Card` in the workspace's language: numbers, dates,
durations and "vs previous period: +12%" written the English or the French way. Adapters map the
Card to a Discord embed or Slack blocks; `card_text` is the plain form for the terminal."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.core.digest.format import (
    fmt_change,
    fmt_date,
    fmt_datetime,
    fmt_duration,
    fmt_int,
    fmt_percent,
    severity_label,
)
from bot.core.digest.schedule import zone
from bot.core.digest.stats import DigestStats, Metric
from bot.core.gateway import Card
from bot.core.i18n import plural, t
from bot.core.reasons import readable_reason
from bot.core.verdict import Severity

IMAGE_NAME = "veille-digest.png"
OPEN_LIST_N = 5  # open tickets listed by number; the rest are counted


def _vs(metric: Metric, locale: str) -> str:
    return t(
        "digest.vs_previous", locale, change=fmt_change(metric.current, metric.previous, locale)
    )


def _lines(items: list[str], locale: str) -> str:
    return "\n".join(items) if items else t("digest.none", locale)


def _fields(stats: DigestStats, locale: str) -> list[tuple[str, str]]:
    n = lambda value: fmt_int(value, locale)  # noqa: E731 - a local shorthand
    flagged_parts = [
        f"{severity_label(sev, locale)} {n(metric.current)}"
        for sev, metric in stats.flagged_by_severity.items()
        if metric.current
    ]
    flagged = n(stats.flagged.current) + (
        f" ({' · '.join(flagged_parts)})" if flagged_parts else ""
    )
    fp = (
        t("digest.none", locale)
        if stats.fp_rate is None
        else t(
            "digest.fp_value",
            locale,
            rate=fmt_percent(stats.fp_rate, locale),
            count=n(stats.false_positives),
            resolved=n(stats.tickets_resolved.current),
        )
    )
    if stats.fp_rate is not None and stats.previous_fp_rate is not None:
        fp += "\n" + t(
            "digest.vs_previous",
            locale,
            change=fmt_change(stats.fp_rate, stats.previous_fp_rate, locale),
        )

    def timing(current: timedelta | None, previous: timedelta | None) -> str:
        text = fmt_duration(current, locale)
        if current is not None and previous is not None:
            text += "\n" + t(
                "digest.vs_previous",
                locale,
                change=fmt_change(current.total_seconds(), previous.total_seconds(), locale),
            )
        return text

    open_lines = [
        t(
            "digest.open_summary",
            locale,
            open=n(stats.open_count),
            breached=n(stats.breached_count),
            sla=stats.sla_hours,
        )
    ]
    for ticket in stats.open_tickets[:OPEN_LIST_N]:
        line = t(
            "digest.open_line",
            locale,
            id=ticket.id,
            age=fmt_duration(ticket.age, locale),
            severity=severity_label(ticket.severity, locale),
        )
        open_lines.append(f"{line} · {t('digest.sla_breach', locale)}" if ticket.breached else line)
    if stats.open_count > OPEN_LIST_N:
        open_lines.append(t("digest.more", locale, count=n(stats.open_count - OPEN_LIST_N)))

    fields = [
        (
            t("digest.scanned", locale),
            t(
                "digest.scanned_value",
                locale,
                images=n(stats.images.current),
                links=n(stats.links.current),
            )
            + "\n"
            + t(
                "digest.vs_previous",
                locale,
                change=fmt_change(
                    stats.images.current + stats.links.current,
                    stats.images.previous + stats.links.previous,
                    locale,
                ),
            ),
        ),
        (t("digest.flagged", locale), f"{flagged}\n{_vs(stats.flagged, locale)}"),
        (
            t("digest.by_category", locale),
            _lines(
                [f"{t(f'digest.category.{c}', locale)} {n(k)}" for c, k in stats.by_category],
                locale,
            ),
        ),
        (
            t("digest.quarantined", locale),
            f"{n(stats.quarantined.current)}\n{_vs(stats.quarantined, locale)}",
        ),
        (
            t("digest.tickets", locale),
            t(
                "digest.tickets_value",
                locale,
                opened=n(stats.tickets_opened.current),
                resolved=n(stats.tickets_resolved.current),
            )
            + "\n"
            + _vs(stats.tickets_opened, locale),
        ),
        (t("digest.false_positive_rate", locale), fp),
        (
            t("digest.time_to_first_action", locale),
            timing(stats.median_first_action, stats.previous_median_first_action),
        ),
        (
            t("digest.time_to_resolution", locale),
            timing(stats.median_resolution, stats.previous_median_resolution),
        ),
        (t("digest.open_tickets", locale), "\n".join(open_lines)),
        (
            t("digest.busiest_channels", locale),
            _lines([f"<#{channel}> {n(k)}" for channel, k in stats.busiest_channels], locale),
        ),
        (
            t("digest.top_reasons", locale),
            _lines(
                [f"{readable_reason(reason, locale)} ({n(k)})" for reason, k in stats.top_reasons],
                locale,
            ),
        ),
    ]
    if stats.reports.any:  # a community nobody reports in is spared an empty line
        fields.insert(9, (t("digest.reports", locale), _reports(stats, locale)))
    return fields


def _reports(stats: DigestStats, locale: str) -> str:
    """Reports received and handled within their 48 hours, then the open ones, most urgent
    first, with the hours left to their due time."""
    reports = stats.reports
    lines = [
        t(
            "digest.reports_value",
            locale,
            received=fmt_int(reports.received, locale),
            on_time=fmt_int(reports.on_time, locale),
            late=fmt_int(reports.late, locale),
        )
    ]
    if reports.open:
        lines.append(plural("digest.reports_open", len(reports.open), locale))
    for report in reports.open[:OPEN_LIST_N]:
        key = "digest.report_left" if report.hours_left >= 0 else "digest.report_over"
        lines.append(t(key, locale, id=report.id, hours=fmt_int(abs(report.hours_left), locale)))
    if len(reports.open) > OPEN_LIST_N:
        lines.append(
            t("digest.more", locale, count=fmt_int(len(reports.open) - OPEN_LIST_N, locale))
        )
    return "\n".join(lines)


def render_card(stats: DigestStats, locale: str, chart_png: bytes | None = None) -> Card:
    """The digest as a Card, with `chart_png` attached when given."""
    tz = zone(stats.timezone)
    end_local = stats.period.end.astimezone(tz)
    title_day = (stats.period.end - timedelta(microseconds=1)).astimezone(tz).date()
    body = t(
        "digest.period",
        locale,
        start=fmt_datetime(stats.period.start.astimezone(tz), locale),
        end=fmt_datetime(end_local, locale),
        tz=stats.timezone,
    )
    if not stats.flagged.current:
        body += "\n" + t("digest.quiet", locale)
    worst = max(
        (Severity[sev] for sev, m in stats.flagged_by_severity.items() if m.current), default=None
    )
    return Card(
        title=t("digest.title", locale, date=fmt_date(title_day, locale)),
        body=body,
        fields=tuple(_fields(stats, locale)),
        severity=worst,
        footer=t("digest.footer", locale),
        image_png=chart_png,
        image_name=IMAGE_NAME,
        fallback_text=t(
            "digest.fallback",
            locale,
            date=fmt_date(title_day, locale),
            scanned=fmt_int(stats.images.current + stats.links.current, locale),
            flagged=fmt_int(stats.flagged.current, locale),
            open=fmt_int(stats.open_count, locale),
            breached=fmt_int(stats.breached_count, locale),
        ),
    )


async def render_digest(stats: DigestStats, locale: str) -> Card:
    """The Card with its chart; matplotlib runs in a worker thread, off the event loop."""
    # Imported here: matplotlib is heavy, and the CLI commands that never draw a chart (all
    # but `digest preview`) import this package for its schedule and formats.
    from bot.core.digest.chart import render_chart

    end = stats.period.end.astimezone(zone(stats.timezone))
    current = max(1, min(round(stats.period.length / timedelta(days=1)), len(stats.daily)))
    chart = await asyncio.to_thread(
        render_chart,
        stats.daily,
        locale,
        stats.timezone,
        day_start=f"{end.hour:02d}:{end.minute:02d}",
        current_bars=current,
    )
    return render_card(stats, locale, chart)


def card_text(card: Card) -> str:
    """A Card as plain text, for the terminal and for tests."""
    parts = [card.title, card.body]
    for name, value in card.fields:
        parts.append(f"\n{name}\n  " + value.replace("\n", "\n  "))
    if card.footer:
        parts.append(f"\n{card.footer}")
    return "\n".join(parts)
