"""`veille digest preview --workspace ID [--out FILE.png]` and `veille digest preview --demo`.

The preview prints the digest a workspace would get now (the schedule's usual length of time
up to now) and writes its chart; nothing is posted or recorded. `--demo` renders one from
generated sample data, without a database (the README's screenshot comes from it).
"""

from __future__ import annotations

import asyncio
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import click

from bot.cli.common import EXIT_USAGE, console, fail, get_settings, missing_sqlite_file, stdout
from bot.core.clock import Clock
from bot.core.digest import Period
from bot.core.gateway import Card
from bot.core.i18n import t
from bot.store.models import ScanRecord, Ticket, Workspace

DEMO_CHANNELS = ("general", "memes", "photos", "introductions", "off-topic")
DEMO_REASONS = (
    "CLIP: nudity (margin 0.31)",
    "undress request: “remove her clothes”",
    "PDQ match in bank confirmed (distance 12)",
    "CLIP: synthetic face swap (margin 0.22)",
    "reply with an image to an undress request",
)
# Weighted so the demo looks like a real week: mostly reviews, a few quarantines, rare critical.
DEMO_SEVERITIES = (("NONE", 0.9), ("REVIEW", 0.07), ("QUARANTINE", 0.027), ("CRITICAL", 0.003))
DEMO_CATEGORIES = {
    "REVIEW": (["sexual"], ["synthetic"], ["undress_request"]),
    "QUARANTINE": (["sexual", "synthetic"], ["known_content"], ["undress_request"]),
    "CRITICAL": (["sexual", "minor_present"],),
}


def demo_data(
    now: datetime, locale: str, seed: int = 7
) -> tuple[Workspace, Period, list[ScanRecord], list[Ticket]]:
    """A week and a day of plausible, reproducible activity in a fictional community."""
    rng = random.Random(seed)
    workspace = Workspace(
        id=1,
        platform="discord",
        external_id="demo",
        name=t("digest.demo_workspace", locale),
        locale=locale,
        timezone="Europe/Paris",
        sla_hours=24,
    )
    end = now.replace(hour=8, minute=0, second=0, microsecond=0)
    period = Period(end - timedelta(days=1), end)
    scans: list[ScanRecord] = []
    tickets: list[Ticket] = []
    for hour in range(24 * 9):
        at_hour = end - timedelta(hours=hour)
        busy = 1.6 if at_hour.weekday() >= 5 else 1.0  # weekends are busier
        for _ in range(rng.randint(5, int(30 * busy))):
            at = at_hour - timedelta(minutes=rng.randint(1, 59))
            severity = rng.choices(
                [s for s, _ in DEMO_SEVERITIES], [w for _, w in DEMO_SEVERITIES]
            )[0]
            categories = list(rng.choice(DEMO_CATEGORIES[severity])) if severity != "NONE" else []
            channel = rng.choices(DEMO_CHANNELS, (5, 3, 4, 1, 2))[0]
            scans.append(
                ScanRecord(
                    workspace_id=1,
                    channel_id=channel,
                    at=at,
                    severity=severity,
                    categories=categories,
                    kind=rng.choice(("image",) * 3 + ("url",)),
                )
            )
            if severity == "NONE":
                continue
            first = at + timedelta(minutes=rng.randint(3, 240))
            resolved = first + timedelta(minutes=rng.randint(10, 900))
            # Most tickets get handled; the recent ones are still waiting.
            open_ = rng.random() < (0.4 if end - at < timedelta(hours=30) else 0.01)
            tickets.append(
                Ticket(
                    id=len(tickets) + 100,
                    workspace_id=1,
                    channel_id=channel,
                    message_id=str(len(scans)),
                    severity=severity,
                    categories=categories,
                    created_at=at,
                    reasons=[rng.choice(DEMO_REASONS)],
                    status="open" if open_ else "resolved",
                    first_action_at=None if open_ else first,
                    resolved_at=None if open_ else resolved,
                    resolution=None
                    if open_
                    else rng.choices(("confirmed", "false_positive"), (4, 1))[0],
                )
            )
    return workspace, period, scans, tickets


async def _demo_card(locale: str) -> Card:
    # Imported here: the chart pulls in matplotlib, which every other command can do without.
    from bot.core.digest import compute_stats, render_digest

    workspace, period, scans, tickets = demo_data(Clock().now(), locale)
    return await render_digest(compute_stats(workspace, period, scans, tickets), locale)


async def _workspace_card(workspace_id: int) -> Card | list[Workspace]:
    """The workspace's digest card, or — when there is no such workspace — the known ones."""
    from sqlalchemy import select
    from sqlmodel import col

    from bot.core.digest import build_digest
    from bot.store.engine import check_migrated, create_engine
    from bot.store.repos import Store

    settings = get_settings()
    engine = create_engine(settings.database_url)
    try:
        await check_migrated(engine)
        store = Store(engine)
        built = await build_digest(store, workspace_id, Clock())
        if built is not None:
            return built[2]
        async with store.read() as session:
            return list(
                (await session.execute(select(Workspace).order_by(col(Workspace.id)))).scalars()
            )
    finally:
        await engine.dispose()


# Platform markup that a chat renders as a name but a terminal shows raw: <#C123>, <#C123|name>,
# <@U123>, <@!123>, <@&role>. The terminal gets the plain id: #C123, @U123.
_MENTION = re.compile(r"<([#@])[!&]?([^>|\s]+)(?:\|[^>]*)?>")


def terminal_text(card: Card) -> str:
    """The card as plain text for a terminal, mentions written as `#channel` / `@user`."""
    from bot.core.digest import card_text

    return _MENTION.sub(lambda m: f"{m.group(1)}{m.group(2)}", card_text(card))


def _not_found(workspace_id: int, known: list[Workspace], locale: str) -> str:
    if not known:
        return t("cli.digest.no_workspaces", locale, id=workspace_id)
    lines = "\n".join(
        t(
            "cli.digest.workspace_line",
            locale,
            id=w.id,
            platform=w.platform,
            name=w.name or w.external_id,
            external_id=w.external_id,
        )
        for w in known
    )
    return t("cli.digest.not_found", locale, id=workspace_id, workspaces=lines)


def register(cli: click.Group) -> None:
    """Adds the `digest` command group to the `veille` group."""

    @cli.group()
    def digest() -> None:
        """Safety digests: preview what the safety channel receives."""

    @digest.command()
    @click.option(
        "--workspace", "workspace_id", type=int, help="Workspace id in Veille's database."
    )
    @click.option("--demo", is_flag=True, help="Use generated sample data (no database needed).")
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the chart to this PNG file.",
    )
    @click.option(
        "--locale",
        type=click.Choice(["en", "fr"]),
        help="Language of the demo digest (default: VEILLE_LOCALE).",
    )
    def preview(workspace_id: int | None, demo: bool, out: Path | None, locale: str | None) -> None:
        """Print a digest and write its chart, without posting anything."""
        settings = get_settings()
        messages = settings.default_locale  # the CLI's own messages; the digest has its language
        if demo == (workspace_id is not None):
            fail(t("cli.digest.usage", messages), EXIT_USAGE)
        if demo:
            card = asyncio.run(_demo_card(locale or settings.default_locale))
        else:
            from bot.store.engine import DatabaseNotMigrated

            missing = missing_sqlite_file(settings.database_url)
            if missing is not None:
                fail(
                    t(
                        "cli.not_migrated",
                        messages,
                        detail=t("doctor.db_missing", messages, path=missing),
                    )
                )
            try:
                found = asyncio.run(_workspace_card(workspace_id or 0))
            except DatabaseNotMigrated as exc:
                fail(t("cli.not_migrated", messages, detail=str(exc)))
            if isinstance(found, list):
                console.print("[bold red]✗[/] ", end="")
                console.print(_not_found(workspace_id or 0, found, messages), markup=False)
                raise SystemExit(EXIT_USAGE)
            card = found
        stdout.print(terminal_text(card), markup=False)
        if out is not None and card.image_png:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(card.image_png)
            console.print(t("digest.cli.chart_written", messages, path=out), markup=False)
