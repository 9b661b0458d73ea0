"""Digest statistics, rendering, chart and posting, on a real SQLite database migrated by Alembic."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.cli import cli
from bot.core.clock import ManualClock
from bot.core.digest import (
    Metric,
    Period,
    build_digest,
    card_text,
    digest_now,
    load_stats,
    post_digest,
    render_card,
)
from bot.core.digest.chart import render_chart
from bot.core.digest.format import fmt_change, fmt_duration, fmt_int, fmt_percent
from bot.core.gateway import Card, GatewayError
from bot.store import engine as store
from bot.store.models import DigestRun, ScanRecord, Ticket, Workspace
from bot.store.repos import Store
from tests.core.recording_gateway import RecordingGateway

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=1), NOW)


@dataclass
class DigestGateway(RecordingGateway):
    """The core's recording Gateway, plus a hook that runs inside `post_card` (to look at the
    database mid-post) and a BaseException to raise there (the process dying while posting)."""

    during_post: Callable[[], Awaitable[None]] | None = None
    crash_with: BaseException | None = None

    @property
    def cards(self) -> list[tuple[str, str, Card]]:
        """(platform workspace id, channel, card) of every card posted."""
        return [
            (c.args["workspace_id"], c.args["channel_id"], c.args["card"])
            for c in self.named("post_card")
        ]

    async def post_card(
        self, workspace_id: str, channel_id: str, card: Card, *, thread_id: str | None = None
    ) -> str:
        if self.during_post is not None:
            await self.during_post()
        if self.crash_with is not None:
            raise self.crash_with
        return await super().post_card(workspace_id, channel_id, card, thread_id=thread_id)


def stored(engine: AsyncEngine) -> Store:
    """The engine's Store: reads and writes go through it, as in the running process."""
    return Store(engine)


async def add_workspace(engine: AsyncEngine, **values: Any) -> int:
    defaults: dict[str, Any] = dict(
        platform="discord",
        external_id="guild-1",
        name="Test guild",
        safety_channel_id="safety",
        timezone="UTC",
        digest_schedule="daily@09:00",
        created_at=NOW - timedelta(days=30),
    )
    workspace = Workspace(**{**defaults, **values})
    async with stored(engine).write() as session:
        session.add(workspace)
        await session.flush()
        assert workspace.id is not None
        return workspace.id


async def add_rows(engine: AsyncEngine, *rows: Any) -> None:
    async with stored(engine).write() as session:
        session.add_all(rows)


def scan(
    ws: int,
    hours_ago: float,
    kind: str = "image",
    severity: str = "NONE",
    categories: tuple[str, ...] = (),
    channel: str = "general",
) -> ScanRecord:
    return ScanRecord(
        workspace_id=ws,
        channel_id=channel,
        kind=kind,
        severity=severity,
        categories=list(categories),
        at=NOW - timedelta(hours=hours_ago),
    )


_messages = itertools.count(1)


def ticket(
    ws: int,
    hours_ago: float,
    *,
    first_action_h: float | None = None,
    resolved_h: float | None = None,
    resolution: str | None = None,
    severity: str = "REVIEW",
    reasons: tuple[str, ...] = ("CLIP: nudity",),
) -> Ticket:
    created = NOW - timedelta(hours=hours_ago)
    return Ticket(
        workspace_id=ws,
        channel_id="general",
        message_id=str(next(_messages)),
        severity=severity,
        reasons=list(reasons),
        created_at=created,
        first_action_at=None
        if first_action_h is None
        else created + timedelta(hours=first_action_h),
        resolved_at=None if resolved_h is None else created + timedelta(hours=resolved_h),
        resolution=resolution,
        status="resolved" if resolved_h is not None else "open",
    )


async def seed_activity(engine: AsyncEngine, ws: int) -> None:
    """This period: 3 images + 1 link, 3 flagged; previous period: 2 images, 1 flagged."""
    await add_rows(
        engine,
        scan(ws, 1),
        scan(ws, 2, severity="REVIEW", categories=("sexual",), channel="photos"),
        scan(ws, 3, severity="QUARANTINE", categories=("sexual", "synthetic"), channel="photos"),
        scan(ws, 5, kind="url", severity="CRITICAL", categories=("sexual", "minor_present")),
        scan(ws, 30),
        scan(ws, 40, severity="REVIEW", categories=("undress_request",)),
        scan(ws, 24 * 5, severity="REVIEW"),  # older: only in the chart
        scan(ws, -1, severity="CRITICAL"),  # after the period: nowhere
    )
    await add_rows(
        engine,
        # opened this period; resolved as a false positive after 2 h, first action after 30 min
        ticket(
            ws,
            10,
            first_action_h=0.5,
            resolved_h=2,
            resolution="false_positive",
            reasons=("CLIP: nudity", "text: undress request"),
        ),
        # opened this period; confirmed after 4 h, first action after 1 h 30
        ticket(ws, 8, first_action_h=1.5, resolved_h=4, resolution="confirmed"),
        # opened 50 h ago, still open: past the 24 h SLA
        ticket(ws, 50, severity="QUARANTINE"),
        # opened 3 h ago, still open, within SLA
        ticket(ws, 3, reasons=("text: undress request",)),
        # previous period: resolved, confirmed
        ticket(ws, 40, first_action_h=1, resolved_h=3, resolution="confirmed"),
    )


async def test_stats_compare_the_period_with_the_previous_one(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine)
    await seed_activity(engine, ws)
    async with stored(engine).read() as session:
        workspace = await session.get(Workspace, ws)
        assert workspace is not None
        stats = await load_stats(session, workspace, PERIOD)

    assert stats.images == Metric(3, 2) and stats.links == Metric(1, 0)
    assert stats.flagged == Metric(3, 1)
    assert stats.flagged_by_severity == {
        "REVIEW": Metric(1, 1),
        "QUARANTINE": Metric(1, 0),
        "CRITICAL": Metric(1, 0),
    }
    assert stats.by_category[0] == ("sexual", 3)
    assert stats.quarantined == Metric(2, 0)
    assert stats.tickets_opened == Metric(3, 1)  # the 50 h one was opened two periods ago
    assert stats.tickets_resolved == Metric(2, 1)
    assert stats.false_positives == 1 and stats.fp_rate == 0.5 and stats.previous_fp_rate == 0
    assert stats.median_first_action == timedelta(hours=1)  # median of 30 min and 1 h 30
    assert stats.median_resolution == timedelta(hours=3)  # median of 2 h and 4 h
    assert [(tk.age, tk.breached) for tk in stats.open_tickets] == [
        (timedelta(hours=50), True),
        (timedelta(hours=3), False),
    ]
    assert stats.busiest_channels == [("photos", 2), ("general", 1)]
    assert dict(stats.top_reasons) == {"CLIP: nudity": 2, "text: undress request": 2}
    # The chart: a week of days ending at the period end, flagged items only.
    assert len(stats.daily) == 7
    assert stats.daily[-1][1] == {"REVIEW": 1, "QUARANTINE": 1, "CRITICAL": 1}
    assert sum(sum(counts.values()) for _day, counts in stats.daily) == 5


async def test_render_in_english_and_french(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine, timezone="Europe/Paris")
    await seed_activity(engine, ws)
    async with stored(engine).read() as session:
        workspace = await session.get(Workspace, ws)
        assert workspace is not None
        stats = await load_stats(session, workspace, PERIOD)

    english = card_text(render_card(stats, "en"))
    assert "Safety digest — Tue 24 Nov 2026" in english
    assert "From 23 Nov 10:00 to 24 Nov 10:00 (Europe/Paris)" in english
    assert "vs previous period: +200%" in english  # 3 flagged against 1
    assert "50% (1 of 2 resolved)" in english
    assert "#" in english and "⚠ past SLA" in english
    french = render_card(stats, "fr")
    text = card_text(french)
    assert "Résumé de sécurité — mar. 24 nov. 2026" in text
    assert "par rapport à la période précédente : +200\u202f%" in text
    assert "50\u202f% (1 sur 2 résolus)" in text
    assert "⚠ hors délai" in text
    assert french.severity is not None and french.severity.name == "CRITICAL"
    assert "2 images" not in text and "3 images · 1 liens" in text


def test_numbers_and_changes_are_localised() -> None:
    assert fmt_int(1234567, "en") == "1,234,567"
    assert fmt_int(1234567, "fr") == "1\u202f234\u202f567"
    assert fmt_change(112, 100, "en") == "+12%"
    assert fmt_change(80, 100, "fr") == "−20\u202f%"
    assert fmt_change(5, 0, "en") == "new" and fmt_change(0, 0, "fr") == "stable"
    assert fmt_percent(0.125, "fr") == "12\u202f%"
    assert fmt_duration(timedelta(days=1, hours=4, minutes=5), "fr") == "1 j 4 h"
    assert fmt_duration(timedelta(minutes=135), "en") == "2 h 15 min"
    assert fmt_duration(None, "en") == "—"


def test_chart_is_a_readable_png() -> None:
    days = [
        (PERIOD.start.date() - timedelta(days=i), {"REVIEW": i, "QUARANTINE": 2, "CRITICAL": 1})
        for i in range(6, -1, -1)
    ]
    png = render_chart(days, "fr", "Europe/Paris", day_start="09:00")
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    assert image.size == (1000, 500)
    colours = {colour for _n, colour in image.getcolors(maxcolors=1 << 16) or []}
    # The Okabe-Ito severity colours are all drawn.
    assert {(0x56, 0xB4, 0xE9), (0xE6, 0x9F, 0x00), (0xD5, 0x5E, 0x00)} <= colours


async def test_post_digest_claims_the_period_before_posting_then_never_again(
    engine: AsyncEngine,
) -> None:
    ws = await add_workspace(engine)
    await seed_activity(engine, ws)
    seen: list[str] = []

    async def run_status() -> None:
        async with stored(engine).read() as session:
            seen.extend((await session.execute(select(DigestRun.status))).scalars())

    gateway = DigestGateway(during_post=run_status)
    clock = ManualClock(NOW)
    assert await post_digest(stored(engine), gateway, ws, PERIOD, clock) == "posted"
    assert seen == ["pending"]  # claimed and committed before the platform was touched
    assert await post_digest(stored(engine), gateway, ws, PERIOD, clock) == "duplicate"

    assert len(gateway.cards) == 1
    guild, channel, card = gateway.cards[0]
    assert (guild, channel) == ("guild-1", "safety")
    assert card.image_png and card.image_png.startswith(b"\x89PNG")
    async with stored(engine).read() as session:
        run = (await session.execute(select(DigestRun))).scalar_one()
    assert (run.status, run.message_id) == ("posted", "m1001")


async def test_a_failed_post_is_recorded_and_can_be_retried(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine)
    gateway = DigestGateway(failures={"post_card": [GatewayError("503 from Discord")]})
    clock = ManualClock(NOW)
    assert await post_digest(stored(engine), gateway, ws, PERIOD, clock) == "failed"
    async with stored(engine).read() as session:
        assert (await session.execute(select(DigestRun.status))).scalar_one() == "failed"
    assert await post_digest(stored(engine), gateway, ws, PERIOD, clock) == "posted"
    assert len(gateway.cards) == 1


async def test_no_safety_channel_posts_nothing(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine, safety_channel_id=None)
    gateway = DigestGateway()
    outcome = await post_digest(stored(engine), gateway, ws, PERIOD, ManualClock(NOW))
    assert outcome == "no_channel" and gateway.cards == []


async def test_digest_now_posts_without_taking_the_scheduled_period(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine, locale="fr")
    await seed_activity(engine, ws)
    gateway = DigestGateway()
    reply = await digest_now(stored(engine), gateway, ws, ManualClock(NOW))
    assert reply.text == "Résumé publié dans <#safety>."
    assert "Signalés" in card_text(gateway.cards[0][2])
    async with stored(engine).read() as session:
        assert (await session.execute(select(DigestRun))).first() is None

    no_channel = await add_workspace(engine, external_id="guild-2", safety_channel_id=None)
    reply = await digest_now(stored(engine), gateway, no_channel, ManualClock(NOW))
    assert reply.card is not None and reply.ephemeral and len(gateway.cards) == 1


async def test_build_digest_defaults_to_the_schedules_length(engine: AsyncEngine) -> None:
    ws = await add_workspace(engine, digest_schedule="weekly:mon@09:00")
    built = await build_digest(stored(engine), ws, ManualClock(NOW))
    assert built is not None
    assert built[1].period == Period(NOW - timedelta(days=7), NOW)
    assert await build_digest(stored(engine), 999, ManualClock(NOW)) is None


def test_cli_demo_writes_a_chart_without_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "docs" / "digest.png"
    result = CliRunner().invoke(
        cli,
        ["digest", "preview", "--demo", "--locale", "fr", "--out", str(out)],
        env={"VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/nowhere/x.db"},
    )
    assert result.exit_code == 0, result.output
    assert "Résumé de sécurité" in result.output and "Tickets ouverts" in result.output
    with Image.open(out) as chart:
        assert chart.size == (1000, 500)
    assert not (tmp_path / "nowhere").exists()


def test_cli_preview_of_a_workspace(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store.upgrade(db_url)

    async def seed() -> int:
        engine = store.create_engine(db_url)
        try:
            ws = await add_workspace(engine, created_at=datetime.now(UTC) - timedelta(days=3))
            await add_rows(
                engine,
                ScanRecord(
                    workspace_id=ws,
                    channel_id="c1",
                    kind="image",
                    severity="REVIEW",
                    categories=["sexual"],
                    at=datetime.now(UTC) - timedelta(hours=1),
                ),
            )
            return ws
        finally:
            await engine.dispose()

    ws = asyncio.run(seed())
    monkeypatch.setenv("VEILLE_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ws.png"
    result = CliRunner().invoke(
        cli, ["digest", "preview", "--workspace", str(ws), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Flagged\n  1 (Review 1)" in result.output
    assert out.read_bytes().startswith(b"\x89PNG")

    missing = CliRunner().invoke(cli, ["digest", "preview", "--workspace", "999"])
    assert missing.exit_code == 2 and "999" in missing.output
