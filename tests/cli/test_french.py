"""VEILLE_LOCALE=fr: what a person reads from `veille doctor`, `run` and `scan` is French."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import Veille

ENGLISH = re.compile(
    r"\b(check|finding|fix|secret key|platforms|database|detectors|schema|"
    r"is not set|no Discord|run `veille|Configuration error|scanned|flagged|"
    r"errors?|source|severity|categories|reasons)\b"
)


def test_doctor_in_french(veille: Veille) -> None:
    result = veille("doctor", "--no-model", "--offline", VEILLE_LOCALE="fr", COLUMNS="200")
    assert result.returncode == 2
    assert "vérification" in result.stdout and "clé secrète" in result.stdout
    assert "pas encore de base de données" in result.stdout
    assert not ENGLISH.findall(result.stdout), result.stdout


def test_run_in_french(veille: Veille) -> None:
    result = veille("run", VEILLE_LOCALE="fr")
    assert result.returncode == 2
    assert "Aucune plateforme" in result.stderr
    assert not ENGLISH.findall(result.stderr.replace("`veille init`", "")), result.stderr


def test_scan_errors_in_french(veille: Veille, tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"not an image at all")
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"\0" * 5000)
    result = veille(
        "scan",
        "missing.png",
        "empty.png",
        "corrupt.png",
        "big.png",
        "http://127.0.0.1:9/x.png",
        "ftp://example.org/y.png",
        VEILLE_LOCALE="fr",
        VEILLE_FETCH_MAX_BYTES="1024",
    )
    assert result.returncode == 3, result  # nothing scanned: not "all clean"
    table = result.stdout
    assert "fichier introuvable" in table and "le fichier est vide" in table
    assert "VEILLE_FETCH_MAX_BYTES (1024 octets)" in table
    assert "127.0.0.1 est une adresse de bouclage" in table
    assert "le schéma « ftp » n'est pas autorisé" in table
    assert not re.findall(
        r"\b(unreadable|No such file|refused|scan failed|too large|address|"
        r"allowed|is a)\b",
        table,
    ), table

    english = veille("scan", "missing.png", "--json", VEILLE_LOCALE="fr")
    assert '"error": "unreadable: No such file or directory"' in english.stdout  # for scripts


def test_scan_without_image_detector_in_french(veille: Veille, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    result = veille("scan", "a.png", VEILLE_LOCALE="fr", VEILLE_DETECTORS="text")
    assert "aucun détecteur d'images n'est configuré" in result.stdout, result
    assert "not scanned" not in result.stdout


def test_doctor_text_encoder_in_french(veille: Veille) -> None:
    result = veille(
        "doctor", "--offline", VEILLE_LOCALE="fr", VEILLE_DETECTORS="text", COLUMNS="250"
    )
    assert "encodeur de texte" in result.stdout, result
    assert "thread" not in result.stdout, result.stdout
