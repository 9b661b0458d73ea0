"""`veille export`: a workspace's tickets as JSON lines or CSV with their audit trails and
reports, and a ticket's handoff summary for PHAROS, 3018, NCMEC and StopNCII, on a real SQLite
file migrated by Alembic and filled through the store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlmodel import select

from bot.cli import cli
from bot.core.errors import NotFound
from bot.core.handoff import handoff_summary
from bot.store import engine as store
from bot.store.models import (
    Appeal,
    Evidence,
    MediaItem,
    Report,
    Ticket,
    TicketEvent,
    Workspace,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SHA = "ab" * 32
PDQ = "f0" * 32
CIPHERTEXT = b"\x89PNG-secret-ciphertext-bytes"
PREVIEW = b"\x89PNG-preview-bytes"
FORMULAS = ('=HYPERLINK("http://x")', "+cmd", "@SUM(1)")


@dataclass
class Seeded:
    workspace_id: int
    report_ticket: int
    old_ticket: int


async def _seed(db_url: str) -> Seeded:
    engine = store.create_engine(db_url)
    try:
        async with store.transaction(store.session_factory(engine)) as session:
            ws = Workspace(platform="discord", external_id="111222333", name="Entraide")
            other = Workspace(platform="slack", external_id="T0OTHER", name="Elsewhere")
            media = MediaItem(sha256=SHA, pdq=PDQ, mime="image/jpeg")
            session.add_all([ws, other, media])
            await session.flush()
            assert ws.id is not None and other.id is not None
            created = NOW - timedelta(hours=5)
            report = Ticket(
                workspace_id=ws.id,
                kind="report",
                channel_id="c-general",
                message_id="m-42",
                author_id="u-author",
                media_item_id=media.id,
                sha256=SHA,
                status="resolved",
                severity="QUARANTINE",
                priority=True,
                categories=["sexual", "synthetic"],
                reasons=["CLIP: nudity (margin 0.31)"],
                resolution="confirmed",
                resolution_note=FORMULAS[0],
                message_removed=True,
                created_at=created,
                updated_at=NOW - timedelta(hours=1),
                resolved_at=NOW - timedelta(hours=1),
                due_at=created + timedelta(hours=48),
            )
            old = Ticket(
                workspace_id=ws.id,
                channel_id="c-old",
                message_id="m-1",
                sha256="cd" * 32,
                created_at=NOW - timedelta(days=40),
                updated_at=NOW - timedelta(days=40),
            )
            elsewhere = Ticket(
                workspace_id=other.id,
                channel_id="C1",
                message_id="1.2",
                sha256="ef" * 32,
                created_at=created,
                updated_at=created,
            )
            session.add_all([report, old, elsewhere])
            await session.flush()
            assert report.id is not None and old.id is not None
            session.add_all(
                [
                    TicketEvent(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        actor_id="veille",
                        action="opened",
                        at=created,
                    ),
                    TicketEvent(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        actor_id="u-victim",
                        actor_name="Dominique R.",
                        action="report",
                        note="reach me at victim@example.org",
                        at=created,
                    ),
                    TicketEvent(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        actor_id="u-mod",
                        actor_name="Camille",
                        action="note",
                        note=FORMULAS[1],
                        at=created + timedelta(minutes=10),
                    ),
                    TicketEvent(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        actor_id="u-mod",
                        actor_name="Camille",
                        action="confirm",
                        note=FORMULAS[2],
                        data={"banked": True},
                        at=NOW - timedelta(hours=1),
                    ),
                    Report(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        reporter_id="u-victim",
                        reporter_name="Dominique R.",
                        reason="fake_me",
                        good_faith=True,
                        contact="victim@example.org",
                        details="@SUM(1) it is me",
                        created_at=created,
                        due_at=created + timedelta(hours=48),
                    ),
                    Appeal(
                        ticket_id=report.id,
                        workspace_id=ws.id,
                        author_id="u-author",
                        statement="not me",
                        decided_by="u-mod",
                        created_at=NOW,
                    ),
                    Evidence(
                        ticket_id=report.id,
                        sha256=SHA,
                        mime="image/jpeg",
                        ciphertext=CIPHERTEXT,
                        preview_png=PREVIEW,
                        purge_after=NOW + timedelta(days=30),
                    ),
                ]
            )
            return Seeded(ws.id, report.id, old.id)
    finally:
        await engine.dispose()


@pytest.fixture
def seeded(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    store.upgrade(db_url)
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("VEILLE_DATABASE_URL", db_url)
    monkeypatch.setenv("VEILLE_LOCALE", "en")
    monkeypatch.setenv("VEILLE_DATA_DIR", str(tmp_path / "data"))
    return asyncio.run(_seed(db_url))


def veille(*args: str) -> Result:
    return CliRunner().invoke(cli, ["export", *args])


def test_jsonl_has_every_ticket_with_its_audit_trail_reports_and_appeal(seeded: Seeded) -> None:
    result = veille("--workspace", str(seeded.workspace_id))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [seeded.old_ticket, seeded.report_ticket]  # oldest first
    row = rows[1]
    assert row["platform"] == "discord" and row["workspace"] == "111222333"
    assert row["kind"] == "report" and row["sha256"] == SHA and row["pdq"] == PDQ
    assert [(e["actor_id"], e["action"], e["note"]) for e in row["audit_trail"]] == [
        ("veille", "opened", None),
        ("u-victim", "report", "reach me at victim@example.org"),
        ("u-mod", "note", "+cmd"),
        ("u-mod", "confirm", "@SUM(1)"),
    ]
    assert row["audit_trail"][3]["data"] == {"banked": True}
    assert datetime.fromisoformat(row["audit_trail"][0]["at"]) == NOW - timedelta(hours=5)
    (report,) = row["reports"]
    assert report["contact"] == "victim@example.org" and report["reason"] == "fake_me"
    assert datetime.fromisoformat(report["due_at"]) == NOW + timedelta(hours=43)
    assert row["appeal"]["statement"] == "not me" and row["appeal"]["status"] == "pending"
    assert row["evidence"] == {**row["evidence"], "sha256": SHA, "original_kept": True}
    assert "secret-ciphertext" not in result.stdout and "preview-bytes" not in result.stdout
    assert "T0OTHER" not in result.stdout  # another workspace's tickets stay out


def test_csv_parses_has_the_audit_trail_and_neutralises_formulas(
    seeded: Seeded, tmp_path: Path
) -> None:
    out = tmp_path / "exports" / "tickets.csv"
    result = veille("--workspace", "discord:111222333", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 tickets written to" in result.stderr and result.stdout == ""
    text = out.read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 2
    row = next(r for r in rows if r["id"] == str(seeded.report_ticket))
    assert row["resolution_note"] == "'" + FORMULAS[0]  # the formula is inert text
    trail = json.loads(row["audit_trail"])
    assert [e["note"] for e in trail] == [None, "reach me at victim@example.org", "+cmd", "@SUM(1)"]
    assert json.loads(row["reports"])[0]["details"] == "@SUM(1) it is me"
    for cell in (c for r in rows for c in r.values()):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert b"secret-ciphertext" not in out.read_bytes()


def test_since_keeps_only_recent_tickets(seeded: Seeded) -> None:
    since = (NOW - timedelta(days=7)).date().isoformat()
    result = veille("--workspace", "111222333", "--since", since)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [seeded.report_ticket]
    everything = veille("--workspace", "111222333", "--since", "2000-01-01T00:00+02:00")
    assert len(everything.stdout.splitlines()) == 2


def test_unknown_workspace_and_bad_date_are_clear_errors(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "never.jsonl"
    result = veille("--workspace", "discord:999", "--out", str(out))
    assert result.exit_code == 2
    assert "No workspace “discord:999”" in result.output
    assert "discord:111222333" in result.output and "slack:T0OTHER" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()  # a refused export leaves no empty file
    bad = veille("--workspace", "111222333", "--since", "last tuesday")
    assert bad.exit_code == 2 and "“last tuesday” is not a date" in bad.output
    assert "Traceback" not in bad.output


def test_unmigrated_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VEILLE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("VEILLE_LOCALE", "en")
    result = veille("--workspace", "1")
    assert result.exit_code == 2 and "veille db upgrade" in result.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    ("service", "required"),
    [
        (
            "pharos",
            [
                "https://discord.com/channels/111222333/c-general/m-42",
                "Type of content",
                "Date seen (UTC)",
                "Description",
                "https://www.internet-signalement.gouv.fr",
            ],
        ),
        (
            "3018",
            [
                "Platform: Discord",
                "u-author",
                "Victim's age",
                "Reporter's contact",
                "https://e-enfance.org/numero-3018/",
            ],
        ),
        (
            "ncmec",
            [
                "Incident type",
                "Date and time of the incident (UTC)",
                "Uploader's platform user id: u-author",
                f"PDQ: {PDQ}",
                "MD5: not known",
                "https://report.cybertip.org",
            ],
        ),
        (
            "stopncii",
            ["on the victim's own device", "https://stopncii.org", "https://takeitdown.ncmec.org"],
        ),
    ],
)
def test_handoff_summaries_carry_the_fields_each_service_asks_for(
    seeded: Seeded, service: str, required: list[str]
) -> None:
    result = veille("--ticket", str(seeded.report_ticket), "--handoff", service)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert SHA in text
    for needle in required:
        assert needle in text, (needle, text)
    assert "Veille sends nothing anywhere" in text
    assert "secret-ciphertext" not in text and "preview-bytes" not in text
    # The reporter's identity and contact stay with the moderator; their step is kept.
    assert "victim@example.org" not in text and "u-victim" not in text and "Dominique" not in text
    assert "· a reporter · report" in text and "Camille · note — +cmd" in text
    assert "1 person reported it: A fake or edited image of me." in text


def test_handoff_in_french_and_its_errors(seeded: Seeded) -> None:
    french = veille("--ticket", str(seeded.report_ticket), "--handoff", "pharos", "--locale", "fr")
    assert french.exit_code == 0, french.output
    assert "résumé du ticket Veille" in french.stdout
    assert "Veille n'envoie rien nulle part" in french.stdout
    assert "Type de contenu" in french.stdout and "Date de constatation (UTC)" in french.stdout
    assert "Contenu sexuel" in french.stdout  # the category, in French
    assert "Une image truquée ou retouchée de moi" in french.stdout  # the report's reason
    assert "Date seen" not in french.stdout and "Type of content" not in french.stdout
    assert "Type de contenu : Contenu sexuel" in french.stdout  # French spacing before colons
    assert "1 personne l'a signalé" in french.stdout and "État : résolu (confirmé)" in french.stdout

    unknown = veille("--ticket", str(seeded.report_ticket), "--handoff", "interpol")
    assert unknown.exit_code == 2 and "Unknown service “interpol”" in unknown.output
    assert "pharos, 3018, ncmec, stopncii" in unknown.output
    missing = veille("--ticket", "9999", "--handoff", "ncmec")
    assert missing.exit_code == 2 and "No ticket #9999" in missing.output
    assert "Traceback" not in unknown.output + missing.output
    alone = veille("--ticket", str(seeded.report_ticket))
    assert alone.exit_code == 2 and "--handoff" in alone.output


async def _minor_on_slack(db_url: str) -> tuple[int, int, int]:
    engine = store.create_engine(db_url)
    try:
        async with store.transaction(store.session_factory(engine)) as session:
            ws = (
                await session.execute(select(Workspace).where(Workspace.external_id == "T0OTHER"))
            ).scalar_one()
            ticket = Ticket(
                workspace_id=ws.id or 0,
                kind="report",
                channel_id="C9",
                message_id="1700000000.000100",
                author_id="U-AUTHOR",
                sha256=SHA,
                severity="QUARANTINE",
                categories=["sexual", "minor_present"],
            )
            session.add(ticket)
            await session.flush()
            assert ticket.id is not None
            session.add(
                Report(
                    ticket_id=ticket.id,
                    workspace_id=ws.id or 0,
                    reporter_id="U-R",
                    reason="minor",
                    good_faith=True,
                    due_at=datetime.now(UTC) + timedelta(hours=30, minutes=20),
                )
            )
            return ticket.id, ws.id or 0, (ws.id or 0) + 100
    finally:
        await engine.dispose()


def test_a_minor_on_slack_reads_as_such_and_stays_in_its_workspace(
    seeded: Seeded, db_url: str
) -> None:
    ticket_id, workspace_id, other_id = asyncio.run(_minor_on_slack(db_url))
    ncmec = veille("--ticket", str(ticket_id), "--handoff", "ncmec").stdout
    assert "Incident type: Apparent child sexual abuse material" in ncmec
    assert "Slack workspace T0OTHER, channel C9, message 1700000000.000100" in ncmec
    assert "Someone who may be a minor" in ncmec and "(30 h left)" in ncmec
    e_enfance = veille("--ticket", str(ticket_id), "--handoff", "3018").stdout
    assert "Victim's age: a minor may be involved" in e_enfance

    async def scoped(workspace: int) -> str:
        engine = store.create_engine(db_url)
        try:
            async with store.session_factory(engine)() as session:
                return await handoff_summary(
                    session, ticket_id, "pharos", "fr", NOW, workspace_id=workspace
                )
        finally:
            await engine.dispose()

    assert SHA in asyncio.run(scoped(workspace_id))
    with pytest.raises(NotFound, match=f"Aucun ticket n° {ticket_id}"):
        asyncio.run(scoped(other_id))
