"""Safety digests: one package, one direction of imports.

    schedule  when a digest is due and the period it covers (no other digest module)
    format    numbers, dates and durations the English or the French way
    stats     the numbers of a period, from database rows (schedule)
    chart     the PNG of flagged items per day (format; matplotlib, imported only to draw)
    render    stats written as a neutral Card (stats, format, chart)
    post      building and posting a digest through the store and a Gateway (stats, render)

Callers import from here; tests may reach into a module for a helper it does not export.
"""

from bot.core.digest.post import DigestOutcome, build_digest, digest_now, post_digest
from bot.core.digest.render import card_text, render_card, render_digest
from bot.core.digest.schedule import (
    Period,
    due_period,
    last_fire,
    next_fire,
    parse_schedule,
    period_ending,
    rolling_period,
)
from bot.core.digest.stats import (
    DigestStats,
    Metric,
    OpenReport,
    OpenTicket,
    ReportStats,
    compute_stats,
    load_stats,
)

__all__ = [
    "DigestOutcome",
    "DigestStats",
    "Metric",
    "OpenReport",
    "OpenTicket",
    "Period",
    "ReportStats",
    "build_digest",
    "card_text",
    "compute_stats",
    "digest_now",
    "due_period",
    "last_fire",
    "load_stats",
    "next_fire",
    "parse_schedule",
    "period_ending",
    "post_digest",
    "render_card",
    "render_digest",
    "rolling_period",
]
