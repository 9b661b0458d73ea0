"""`veille scan`'s table as a person reads it: failed inputs are ERROR rows (never a green
NONE), clean inputs are counted but listed only with --all, sources stay distinct at 80 columns,
log lines wait until after the table, counts agree in number."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from bot.cli.scan_table import logs_after_the_table, replay, shorten_sources
from bot.log import setup_logging
from tests.cli.conftest import Veille, save_photo


def test_failed_inputs_are_error_rows_and_clean_ones_are_only_counted(
    veille: Veille, tmp_path: Path
) -> None:
    deep = tmp_path / "community-archive" / "2026" / "december" / "uploads-from-members"
    for sub in ("alice", "bob"):
        (deep / sub).mkdir(parents=True)
        save_photo(deep / sub / "holiday-photo.png", 3)
    (deep / "alice" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(20))
    (deep / "bob" / "empty.png").write_bytes(b"")
    with socket.socket() as closed:  # bound, never listening: refuses connections
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/photo.png"
        result = veille("scan", str(deep), url, COLUMNS="80", VEILLE_FETCH_ALLOW_LOOPBACK="true")
        listed = veille("scan", "--all", str(deep), COLUMNS="80")
    assert result.returncode == 3, result.stderr  # nothing flagged, 3 inputs not scanned
    assert "Traceback" not in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(rows) >= 3
    assert result.stdout.count("ERROR") == 3 and "NONE" not in result.stdout
    assert "corrupt.jpg" in result.stdout and "empty.png" in result.stdout
    assert "holiday-photo.png" not in result.stdout
    assert "2 clean not listed (--all lists every input)." in result.stderr
    assert "5 scanned: 0 flagged, 3 errors." in result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "Scanning" not in result.stdout  # progress belongs on stderr

    # --all: both holiday photos listed, told apart by their folders, within 80 columns
    assert listed.stdout.count("NONE") == 2
    assert "alice/holiday-photo.png" in listed.stdout
    assert "bob/holiday-photo.png" in listed.stdout
    assert all(len(line) <= 80 for line in listed.stdout.splitlines())


def test_one_error_is_singular(veille: Veille, tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    result = veille("scan", str(tmp_path / "empty.png"))
    assert "1 scanned: 0 flagged, 1 error." in result.stderr
    french = veille("scan", str(tmp_path / "empty.png"), VEILLE_LOCALE="fr")
    assert "1 analysé : 0 signalé, 1 erreur." in french.stderr
    assert "ERREUR" in french.stdout and "le fichier est vide" in french.stdout
    assert "empty file" not in french.stdout


def test_sources_are_cut_from_the_left_and_stay_distinct() -> None:
    sources = [
        "/srv/photos/2026/alice/img.png",
        "/srv/photos/2026/bob/img.png",
        "/a/b/" + "x" * 60 + ".png",
        "short.png",
    ]
    shown = shorten_sources(sources, 24)
    assert len(set(shown)) == 4
    assert shown[0].endswith("alice/img.png") and shown[1].endswith("bob/img.png")
    assert shown[2].startswith("…") and shown[2].endswith("xxxx.png") and len(shown[2]) == 24
    assert shown[3] == "short.png"
    assert all(len(s) <= 24 for s in shown)


def test_log_lines_wait_until_after_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text", ["s3cret-token-value"])
    with logs_after_the_table(True) as held:
        logging.getLogger("bot.media").warning("a page was slow, token s3cret-token-value")
        assert capsys.readouterr().err == ""  # nothing reaches the terminal mid-table
    replay(held, "en")
    err = capsys.readouterr().err
    assert "a page was slow" in err and "s3cret-token-value" not in err
