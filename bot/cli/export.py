"""`veille export --workspace ID [--since DATE] [--format jsonl|csv] [--out FILE]` and
`veille export --ticket ID --handoff pharos|3018|ncmec|stopncii`.

The first writes a workspace's tickets with their audit trails, reports and appeals
(`bot/core/export.py`: no image bytes; CSV cells safe against formulas). The second prints a
ticket's summary laid out for one service's own report form (`bot/core/handoff.py`): the
moderator pastes it there, Veille sends nothing. Both only read a migrated database; a SQLite
file that does not exist is not created. Exit status 0, or 2 for a usage or configuration
mistake (worded once, no traceback).

`--workspace` takes Veille's own id, `discord:<guild id>` or `slack:<team id>`, or a bare
platform id when only one workspace has it. A bare number is Veille's id when such a
workspace exists.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.cli.common import EXIT_USAGE, console, fail, get_settings, missing_sqlite_file
from bot.core.clock import Clock
from bot.core.errors import VeilleError
from bot.core.i18n import plural, t
from bot.settings import Settings
from bot.store import engine as store
from bot.store.models import Workspace

FORMATS = ("jsonl", "csv")


@asynccontextmanager
async def _session(settings: Settings, locale: str) -> AsyncIterator[AsyncSession]:
    """A read session on a migrated database, or exit 2 saying what to run."""
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:
        fail(t("cli.not_migrated", locale, detail=t("doctor.db_missing", locale, path=missing)))
    engine = store.create_engine(settings.database_url)
    try:
        try:
            await store.check_migrated(engine)
        except store.DatabaseNotMigrated as exc:
            fail(t("cli.not_migrated", locale, detail=str(exc)))
        async with store.session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def parse_since(value: str, locale: str) -> datetime:
    """An ISO date or date-time; UTC unless it names its zone. Exit 2 when it is not one."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(t("export.bad_date", locale, value=value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _known(workspaces: list[Workspace], locale: str) -> str:
    if not workspaces:
        return t("export.no_workspaces", locale)
    return "; ".join(
        t(
            "export.known_line",
            locale,
            id=ws.id,
            platform=ws.platform,
            external_id=ws.external_id,
            name=ws.name,
        )
        for ws in workspaces
    )


async def find_workspace(session: AsyncSession, ref: str, locale: str) -> Workspace:
    """The workspace `ref` names (see the module docstring), or exit 2 listing the known ones."""
    ref = ref.strip()
    everyone = list(
        (await session.execute(select(Workspace).order_by(col(Workspace.id)))).scalars()
    )
    if ref.isdigit():
        for ws in everyone:
            if ws.id == int(ref):
                return ws
    platform, _, external = ref.rpartition(":")
    matches = [
        ws
        for ws in everyone
        if ws.external_id == external and (not platform or ws.platform == platform.lower())
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail(t("export.workspace_ambiguous", locale, ref=ref, known=_known(matches, locale)))
    fail(t("export.workspace_not_found", locale, ref=ref, known=_known(everyone, locale)))


async def _rows(
    settings: Settings, ref: str, since: datetime | None, locale: str
) -> list[dict[str, Any]]:
    from bot.core.export import export_rows

    async with _session(settings, locale) as session:
        workspace = await find_workspace(session, ref, locale)
        assert workspace.id is not None
        return await export_rows(session, workspace.id, since)


async def _handoff(settings: Settings, ticket_id: int, service: str, locale: str) -> str:
    from bot.core.handoff import handoff_summary

    async with _session(settings, locale) as session:
        return await handoff_summary(session, ticket_id, service, locale, Clock().now())


def _write(out: Path | None, work: Callable[[IO[str]], int]) -> int:
    """Run `work(stream)` on `out` (created with its folder) or on stdout; what it returns.
    Called once the data is read, so a refused export leaves no empty file behind."""
    if out is None:
        return work(sys.stdout)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as stream:
        return work(stream)


def register(cli: click.Group) -> None:
    """Adds the `export` command to the `veille` group."""

    @cli.command("export")
    @click.option(
        "--workspace",
        "workspace_ref",
        metavar="ID",
        help="Veille's workspace id, discord:<guild id>, slack:<team id> or a platform id.",
    )
    @click.option(
        "--since", metavar="DATE", help="Only tickets created or updated since (ISO date, UTC)."
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="jsonl",
        show_default=True,
        help="JSON lines, or CSV (lists and the audit trail as JSON text in their column).",
    )
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write to this file instead of standard output.",
    )
    @click.option("--ticket", "ticket_id", type=int, metavar="ID", help="A ticket, for --handoff.")
    @click.option(
        "--handoff",
        "service",
        metavar="SERVICE",
        help="Print a summary to paste into pharos, 3018, ncmec or stopncii's own form.",
    )
    @click.option(
        "--locale",
        type=click.Choice(["en", "fr"]),
        help="Language of the messages and summary (default: VEILLE_LOCALE).",
    )
    def export(
        workspace_ref: str | None,
        since: str | None,
        fmt: str,
        out: Path | None,
        ticket_id: int | None,
        service: str | None,
        locale: str | None,
    ) -> None:
        """Export a workspace's tickets with their audit trails, or a ticket's handoff summary."""
        settings = get_settings()
        lang = locale or settings.default_locale
        if (workspace_ref is None) == (ticket_id is None):
            fail(t("export.usage", lang), EXIT_USAGE)
        if ticket_id is None:
            if service is not None:
                fail(t("export.handoff_needs_ticket", lang), EXIT_USAGE)
            when = None if since is None else parse_since(since, lang)
            from bot.core.export import write_csv, write_jsonl

            rows = asyncio.run(_rows(settings, workspace_ref or "", when, lang))
            writer = write_csv if fmt == "csv" else write_jsonl
            count = _write(out, lambda stream: writer(rows, stream))
            if out is not None:
                console.print(plural("export.written", count, lang, path=out), markup=False)
            return
        if service is None:
            from bot.core.handoff import SERVICES

            fail(t("export.ticket_needs_handoff", lang, services=", ".join(SERVICES), id=ticket_id))
        try:
            summary = asyncio.run(_handoff(settings, ticket_id, service.strip().lower(), lang))
        except VeilleError as exc:  # unknown ticket or service: the core's own words
            fail(str(exc), EXIT_USAGE)
        _write(out, lambda stream: stream.write(summary + "\n"))
