"""`veille hashes import|add|list|remove` through click's CliRunner on a migrated SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import ImageOps

from bot.cli import cli
from bot.store import engine as store
from detectors.hashes import compute_signature
from tests.detectors.hash_images import photo_like

MD5 = "a1" * 16


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke `veille` on a migrated database in a clean directory (no stray .env)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}"
    store.upgrade(url)
    monkeypatch.chdir(tmp_path)
    for name in ("VEILLE_LOCALE", "VEILLE_DETECTORS"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, locale: str = "en") -> Result:
        env = {"VEILLE_DATABASE_URL": url, "VEILLE_LOCALE": locale, "COLUMNS": "200"}
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def listed(run) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    result = run("hashes", "list", "--json")
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_import_reports_counts_and_bad_lines(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "list.csv"
    pdq = compute_signature(photo_like(30)).pdq
    path.write_text(f"signal_type,signal_value\npdq,{pdq}\nmd5,{MD5}\nmd5,zz\n", "utf-8")
    result = run("hashes", "import", str(path), "--bank", "shared")
    assert result.exit_code == 1  # something was invalid
    assert "2 added to bank 'shared', 0 already there, 1 invalid" in result.stdout
    assert "line 4:" in result.stderr
    again = run("hashes", "import", str(path), "--bank", "shared", locale="fr")
    assert "0 ajoutées à la banque « shared », 2 déjà présentes, 1 invalides" in again.stdout
    assert {(r["kind"], r["count"]) for r in listed(run)} == {("pdq", 1), ("md5", 1)}


def test_import_missing_file_is_a_usage_error(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("hashes", "import", str(tmp_path / "nope.csv"), "--bank", "x")
    assert result.exit_code == 2 and "Cannot read" in result.stderr


def test_add_images_reports_unreadable_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.png"
    photo_like(31).save(good)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image", "utf-8")
    result = run(
        "hashes", "add", str(good), str(fake), str(tmp_path / "gone.jpg"), "--bank", "mine"
    )
    assert result.exit_code == 1
    assert "5 entries added to bank 'mine'" in result.stdout
    assert "fake.png: not added, not an image Pillow can read" in result.stderr
    assert "gone.jpg: not added" in result.stderr and "1 of 3 images banked" in result.stderr
    rows = listed(run)
    assert {r["kind"] for r in rows} == {"sha256", "md5", "pdq", "neardup"}
    assert {r["source"] for r in rows} == {"confirmed"}


def test_add_allow_list_and_entries_listing(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "poster.png"
    ImageOps.mirror(photo_like(32)).save(path)
    assert run("hashes", "add", str(path), "--bank", "fp", "--allow").exit_code == 0
    entries = json.loads(run("hashes", "list", "--bank", "fp", "--json").stdout)
    assert sorted(e["kind"] for e in entries) == ["md5", "pdq", "sha256"]
    assert {e["source"] for e in entries} == {"allow"}
    table = run("hashes", "list", "--bank", "fp")
    assert "allow" in table.stdout and str(entries[0]["id"]) in table.stdout


def test_remove_by_id_and_by_value(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "list.txt"
    path.write_text(f"{MD5}\n{'b2' * 16}\n", "utf-8")
    assert run("hashes", "import", str(path), "--bank", "l").exit_code == 0
    first = json.loads(run("hashes", "list", "--bank", "l", "--json").stdout)
    assert len(first) == 2
    result = run("hashes", "remove", str(first[0]["id"]))
    assert result.exit_code == 0 and "Removed 1 entry." in result.stdout
    result = run("hashes", "remove", "--bank", "l", "--value", "B2" * 16, locale="fr")
    assert result.exit_code == 0 and "1 entrée supprimée." in result.stdout
    assert run("hashes", "remove", "999").exit_code == 1
    assert run("hashes", "remove", "--bank", "l").exit_code == 2
    assert "No hash entries." in run("hashes", "list").stdout


def test_unmigrated_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {
        "VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        "VEILLE_LOCALE": "en",
    }
    result = CliRunner().invoke(cli, ["hashes", "list"], env=env)
    assert result.exit_code == 2 and "veille db upgrade" in result.stderr


def test_a_child_abuse_list_match_is_critical_an_ordinary_list_is_quarantine(
    run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    listed_image, ordinary_image = photo_like(41), photo_like(42)
    for name, image, extra in (
        ("csam", listed_image, ["--child-abuse"]),
        ("ngo", ordinary_image, []),
    ):
        path = tmp_path / f"{name}.txt"
        path.write_text(compute_signature(image).pdq + "\n", "utf-8")
        result = run("hashes", "import", str(path), "--bank", name, "--kind", "pdq", *extra)
        assert result.exit_code == 0, result.output
    for image, name in ((listed_image, "listed.png"), (ordinary_image, "ordinary.png")):
        image.save(tmp_path / name)
    env_run = CliRunner().invoke(
        cli,
        [
            "scan",
            "--json",
            "--detectors",
            "hashes",
            str(tmp_path / "listed.png"),
            str(tmp_path / "ordinary.png"),
        ],
        env={
            "VEILLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'veille.db'}",
            "VEILLE_LOCALE": "en",
            "VEILLE_DATA_DIR": str(tmp_path / "data"),
        },
    )
    rows = {Path(r["source"]).name: r for r in map(json.loads, env_run.stdout.splitlines())}
    assert rows["listed.png"]["severity"] == "CRITICAL"
    assert "matches a child-abuse hash list" in rows["listed.png"]["reasons"]
    assert rows["ordinary.png"]["severity"] == "QUARANTINE"


def test_an_allow_list_cannot_be_marked_child_abuse(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "allow.txt"
    path.write_text(compute_signature(photo_like(43)).pdq + "\n", "utf-8")
    result = run(
        "hashes",
        "import",
        str(path),
        "--bank",
        "x",
        "--kind",
        "pdq",
        "--source",
        "allow",
        "--child-abuse",
    )
    assert result.exit_code == 2 and "cannot be an allow list" in result.stderr
