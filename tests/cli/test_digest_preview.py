"""`veille digest preview --workspace ID` as a new user runs it: on a fresh database, with an id
that does not exist, and with a channel name that a chat would render as a mention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlmodel import Session

from bot.store.models import ScanRecord, Workspace
from tests.cli.conftest import Veille


def _add(tmp_path: Path, *rows: object) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'veille.db'}")
    with Session(engine) as session:
        for row in rows:
            session.add(row)
            session.commit()
    engine.dispose()


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def test_missing_workspace_lists_the_known_ones(veille: Veille, tmp_path: Path) -> None:
    assert veille("db", "upgrade").returncode == 0
    _add(
        tmp_path,
        Workspace(id=3, platform="discord", external_id="9001", name="Film club"),
        Workspace(id=7, platform="slack", external_id="T0ABC", name="Asso"),
    )

    result = veille("digest", "preview", "--workspace", "1")

    assert result.returncode == 2, result
    _no_traceback(result.stderr)
    assert "No workspace with id 1" in result.stderr
    assert "3  discord  Film club (9001)" in result.stderr
    assert "7  slack  Asso (T0ABC)" in result.stderr
    assert "--workspace ID" in result.stderr


def test_no_workspace_yet_says_how_one_is_created(veille: Veille) -> None:
    assert veille("db", "upgrade").returncode == 0

    result = veille("digest", "preview", "--workspace", "1")

    assert result.returncode == 2, result
    _no_traceback(result.stderr)
    assert "no workspace yet" in result.stderr
    assert "/veille setup" in result.stderr and "--demo" in result.stderr


def test_french_messages(veille: Veille) -> None:
    assert veille("db", "upgrade").returncode == 0

    result = veille("digest", "preview", "--workspace", "1", VEILLE_LOCALE="fr")

    assert result.returncode == 2, result
    assert "aucun espace" in result.stderr
    assert "No workspace" not in result.stderr

    usage = veille("digest", "preview", VEILLE_LOCALE="fr")
    assert usage.returncode == 2 and "Indiquez soit --workspace" in usage.stderr


def test_missing_database_is_not_created(veille: Veille, tmp_path: Path) -> None:
    result = veille("digest", "preview", "--workspace", "1")

    assert result.returncode == 2, result
    _no_traceback(result.stderr)
    assert "veille db upgrade" in result.stderr
    assert not (tmp_path / "veille.db").exists()


def test_channels_print_as_plain_text(veille: Veille, tmp_path: Path) -> None:
    assert veille("db", "upgrade").returncode == 0
    now = datetime.now(UTC).replace(tzinfo=None)
    _add(
        tmp_path,
        Workspace(id=5, platform="discord", external_id="9001", name="Film club"),
        ScanRecord(
            workspace_id=5,
            channel_id="general",
            kind="image",
            severity="REVIEW",
            categories=["sexual"],
            at=now - timedelta(hours=1),
        ),
    )

    result = veille("digest", "preview", "--workspace", "5", "--out", str(tmp_path / "c.png"))

    assert result.returncode == 0, result
    assert "#general 1" in result.stdout
    assert "<#" not in result.stdout and "<@" not in result.stdout
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_terminal_text_unwraps_every_mention_form() -> None:
    from bot.cli.digest import terminal_text
    from bot.core.gateway import Card

    card = Card(
        title="t",
        body="<#C01|general> <#123> <@U9> <@!42> <@&7> a<b>c",
        fields=(("Busiest", "<#general> 3"),),
    )
    text = terminal_text(card)

    assert "#C01 #123 @U9 @42 @7 a<b>c" in text and "#general 3" in text
