"""`veille hashes` as an operator meets it: a plain list of 64-hex hashes without --kind is one
message, not one per line; reading commands never create a database; counts agree in number."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.cli.conftest import Veille


def test_a_plain_hex_list_without_kind_is_one_message(veille: Veille, tmp_path: Path) -> None:
    assert veille("db", "upgrade").returncode == 0
    listing = tmp_path / "list.txt"
    listing.write_text("".join(hashlib.sha256(bytes([i])).hexdigest() + "\n" for i in range(5)))
    result = veille("hashes", "import", str(listing), "--bank", "partner")
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("!")]
    assert len(problems) == 1, result.stderr
    assert "lines 1–5" in problems[0] and "--kind" in problems[0]
    done = veille("hashes", "import", str(listing), "--bank", "partner", "--kind", "sha256")
    assert done.returncode == 0 and "5 added" in done.stdout
    entries = json.loads(veille("hashes", "list", "--bank", "partner", "--json").stdout)
    removed = veille("hashes", "remove", str(entries[0]["id"]))
    assert "Removed 1 entry." in removed.stdout, removed.stdout + removed.stderr


def test_list_and_doctor_never_create_a_database(veille: Veille, tmp_path: Path) -> None:
    database = tmp_path / "not-yet" / "veille.db"
    env = {"VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    listed = veille("hashes", "list", **env)
    assert listed.returncode == 2 and "veille db upgrade" in listed.stderr
    assert "Traceback" not in listed.stderr
    doctor = veille("doctor", "--no-model", "--offline", **env)
    assert doctor.returncode == 2 and "no database at" in doctor.stdout
    assert not database.exists() and not database.parent.exists()
