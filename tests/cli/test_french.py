"""VEILLE_LOCALE=fr: what a person reads from `veille doctor`, `run` and `scan` is French."""

from __future__ import annotations

import re

from tests.cli.conftest import Veille

ENGLISH = re.compile(r"\b(check|finding|fix|secret key|platforms|database|detectors|schema|"
                     r"is not set|no Discord|run `veille|Configuration error|scanned|flagged|"
                     r"errors?|source|severity|categories|reasons)\b")


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
