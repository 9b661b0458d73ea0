"""The digest's report figures: reports received, handled within their 48 hours or late, and
those still open with the hours left, on a real database migrated by Alembic."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.digest import OpenReport, Period, ReportStats, card_text, load_stats, render_card
from bot.store.models import Ticket, Workspace
from bot.store.repos import Store

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=1), NOW)
_messages = itertools.count(1)


def report(
    hours_ago: float, *, resolved_h_ago: float | None = None, due: bool = True, kind: str = "report"
) -> Ticket:
    created = NOW - timedelta(hours=hours_ago)
    resolved = None if resolved_h_ago is None else NOW - timedelta(hours=resolved_h_ago)
    return Ticket(
        workspace_id=0,
        kind=kind,
        channel_id="general",
        message_id=str(next(_messages)),
        created_at=created,
        priority=kind == "report",
        resolved_at=resolved,
        status="open" if resolved is None else "resolved",
        due_at=created + timedelta(hours=48) if due else None,
    )


async def seeded_stats(
    engine: AsyncEngine, *tickets: Ticket
) -> tuple[list[int], ReportStats, Workspace]:
    stored = Store(engine)
    async with stored.write() as session:
        workspace = Workspace(
            platform="discord", external_id=f"g{next(_messages)}", name="Guild", timezone="UTC"
        )
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        for ticket in tickets:
            ticket.workspace_id = workspace.id
        session.add_all(tickets)
        await session.flush()
        ids = [ticket.id or 0 for ticket in tickets]
    async with stored.read() as session:
        found = await session.get(Workspace, workspace.id)
        assert found is not None
        stats = await load_stats(session, found, PERIOD)
    return ids, stats.reports, found


def scenario() -> tuple[Ticket, ...]:
    return (
        report(
            30, resolved_h_ago=10, due=False
        ),  # 0: handled 20 h after the report (no due_at kept)
        report(60, resolved_h_ago=2),  # 1: due 12 h ago, handled 2 h ago: late
        report(10),  # 2: received this period, 38 h left
        report(47),  # 3: received before the period, 1 h left
        report(50),  # 4: 2 h past its due time
        report(5, resolved_h_ago=1),  # 5: received and handled this period
        report(20, resolved_h_ago=-1),  # 6: resolved after the period end: open at its end
        report(3, resolved_h_ago=2, kind="detection"),  # 7: not a report
        report(2, kind="help_request"),  # 8: not a report
    )


async def test_report_counts_and_hours_left(engine: AsyncEngine) -> None:
    ids, reports, _ws = await seeded_stats(engine, *scenario())
    assert reports.received == 3  # 2, 5 and 6
    assert (reports.on_time, reports.late) == (2, 1)
    assert reports.open == (
        OpenReport(ids[4], -2),
        OpenReport(ids[3], 1),
        OpenReport(ids[6], 28),
        OpenReport(ids[2], 38),
    )


async def test_the_card_shows_reports_in_english_and_french(engine: AsyncEngine) -> None:
    ids, _reports, workspace = await seeded_stats(engine, *scenario())
    async with Store(engine).read() as session:
        stats = await load_stats(session, workspace, PERIOD)
    card = render_card(stats, "en")
    names = [name for name, _value in card.fields]
    assert names.index("Reports (48 h clock)") == names.index("Open tickets") + 1
    english = card_text(card)
    assert "3 received · 2 handled within 48 h · 1 late" in english
    assert "4 open reports:" in english
    assert f"#{ids[4]} · ⚠ 2 h overdue" in english and f"#{ids[3]} · 1 h left" in english
    assert english.index(f"#{ids[4]} ·") < english.index(f"#{ids[2]} · 38 h left")
    french = card_text(render_card(stats, "fr"))
    assert "Signalements de membres (délai de 48 h)" in french
    assert "3 reçus · 2 traités sous 48 h · 1 en retard" in french
    assert "4 signalements en attente :" in french
    assert f"n° {ids[4]} · ⚠ en retard de 2 h" in french and f"n° {ids[2]} · reste 38 h" in french


async def test_no_reports_no_report_field(engine: AsyncEngine) -> None:
    _ids, reports, workspace = await seeded_stats(engine, report(3, kind="detection"))
    assert reports == ReportStats() and not reports.any
    async with Store(engine).read() as session:
        stats = await load_stats(session, workspace, PERIOD)
    assert "Reports (48 h clock)" not in card_text(render_card(stats, "en"))
    # A report handled long ago, with nothing this period, is not news either.
    _ids, old, _ws = await seeded_stats(engine, report(24 * 5, resolved_h_ago=24 * 4))
    assert not old.any
