"""`veille scan` on files and folders through the real command: the JSON-lines contract, broken
inputs in their own lines, exit statuses, known content from hash banks, the human table."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Veille, by_source, encode, json_lines, save_photo
from tests.detectors.hash_images import photo_like


def test_folder_gives_one_contract_line_per_image_and_errors_in_their_own_lines(
    veille: Veille, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    (folder / "nested").mkdir(parents=True)
    save_photo(folder / "a.png", 1)
    save_photo(folder / "b.jpg", 2, "JPEG")
    save_photo(folder / "nested" / "c.webp", 3, "WEBP")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "letter.jpg").write_text("Dear moderators, this is plain text.", "utf-8")
    (folder / "notes.txt").write_text("not an image by name or content: named, not scanned")
    save_photo(folder / "d.png", 4)
    save_photo(folder / "IMG_0042", 6, "JPEG")  # a photo saved without an extension
    save_photo(folder / "export.dat", 7, "PNG")  # or under another one: scanned by content
    (folder / "BMW notes [draft].txt").write_text("BMW, then words: BM is BMP's magic")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")  # hidden: not walked

    # Batches of two: results must still come back one per image, in order.
    result = veille(
        "scan",
        "--json",
        str(folder),
        str(tmp_path / "missing.png"),
        "/dev/zero",
        VEILLE_BATCH_SIZE="2",
    )

    assert result.returncode == 3, result.stderr  # nothing flagged, but not everything scanned
    results = json_lines(result.stdout)
    names = [Path(r["source"]).name for r in results]
    assert names == [
        "IMG_0042",
        "a.png",
        "b.jpg",
        "corrupt.png",
        "d.png",
        "empty.jpg",
        "export.dat",
        "letter.jpg",
        "c.webp",
        "missing.png",
        "zero",
    ]
    found = by_source(results)
    for good in ("a.png", "b.jpg", "c.webp", "d.png", "IMG_0042", "export.dat"):
        assert found[good]["error"] is None and found[good]["kind"] == "image"
        assert found[good]["severity"] == "NONE" and "known_content" in found[good]["scores"]
    assert "truncated" in found["corrupt.png"]["error"]
    assert found["empty.jpg"]["error"] == "empty file"
    assert "not an image" in found["letter.jpg"]["error"]
    assert "No such file" in found["missing.png"]["error"]
    assert "not a regular file" in found["zero"]["error"]  # never read a device forever
    assert "11 scanned: 0 flagged, 5 errors." in result.stderr
    # What the walk left out is said, by name: never dropped unsaid.
    assert "Not scanned (2 files in" in result.stderr
    assert "): BMW notes [draft].txt, notes.txt." in result.stderr  # names as they are


def test_usage_and_configuration_errors_exit_2(veille: Veille, tmp_path: Path) -> None:
    image = save_photo(tmp_path / "a.png", 5)

    nothing = veille("scan", "--json")
    assert nothing.returncode == 2 and "Nothing to scan" in nothing.stderr

    missing_text = veille("scan", "--json", str(image), "--text-file", "nope.txt")
    assert missing_text.returncode == 2
    assert "nope.txt" in missing_text.stderr and missing_text.stdout == ""  # nothing scanned

    unknown = veille("scan", str(image), VEILLE_DETECTORS="hashes,nudity")
    assert unknown.returncode == 2 and "'nudity'" in unknown.stderr and "clip" in unknown.stderr

    bad_db = veille(
        "scan", str(image), VEILLE_DATABASE_URL="postgresql+asyncpg://u:hunter22@127.0.0.1:9/x"
    )
    assert bad_db.returncode == 2 and "VEILLE_DATABASE_URL" in bad_db.stderr
    assert "hunter22" not in bad_db.stderr  # the password never appears


def test_clip_configured_without_weights_names_the_setting(veille: Veille, tmp_path: Path) -> None:
    image = save_photo(tmp_path / "a.png", 6)
    # The default hub tag on a machine that cannot download. HF_HUB_OFFLINE stops any attempt;
    # HF_ENDPOINT on a closed loopback port keeps even a wrong attempt off the network.
    offline = veille(
        "scan",
        "--json",
        str(image),
        VEILLE_DETECTORS="clip,hashes,text",
        HF_HUB_OFFLINE="1",
        HF_ENDPOINT="http://127.0.0.1:9",
        VEILLE_DEVICE="cpu",
    )
    assert offline.returncode == 2, offline.stderr
    assert "VEILLE_CLIP_PRETRAINED" in offline.stderr and offline.stdout == ""

    missing = veille(
        "scan",
        str(image),
        VEILLE_DETECTORS="clip",
        VEILLE_CLIP_PRETRAINED=str(tmp_path / "weights.safetensors"),
    )
    assert missing.returncode == 2
    assert "VEILLE_CLIP_PRETRAINED" in missing.stderr and "no such checkpoint" in missing.stderr


def test_no_database_yet_still_scans_and_creates_nothing(veille: Veille, tmp_path: Path) -> None:
    image = save_photo(tmp_path / "a.png", 7)
    db = tmp_path / "not" / "there.db"
    result = veille("scan", "--json", str(image), VEILLE_DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    assert line["error"] is None and line["severity"] == "NONE"
    assert "veille db upgrade" in result.stderr
    assert not db.parent.exists()


def test_banked_image_is_quarantined_also_reencoded_and_resized(
    veille: Veille, tmp_path: Path
) -> None:
    assert veille("db", "upgrade").returncode == 0
    known = save_photo(tmp_path / "known.png", 11)
    added = veille("hashes", "add", str(known), "--bank", "test")
    assert added.returncode == 0, added.stderr

    copies = tmp_path / "copies"
    copies.mkdir()
    original = photo_like(11)
    (copies / "reencoded.jpg").write_bytes(encode(original, "JPEG", quality=60))
    (copies / "smaller.png").write_bytes(encode(original.resize((320, 240))))
    save_photo(copies / "unrelated.png", 12)

    result = veille("scan", "--json", str(known), str(copies))
    assert result.returncode == 1, result.stderr  # something at REVIEW or above
    found = by_source(json_lines(result.stdout))
    for name in ("known.png", "reencoded.jpg", "smaller.png"):
        line = found[name]
        assert line["severity"] == "QUARANTINE", line
        assert "known_content" in line["categories"]
        assert line["matches"] and all(m["bank"] == "test" for m in line["matches"])
        assert any(m["kind"] in ("pdq", "neardup") and m["distance"] <= 31 for m in line["matches"])
    assert {m["kind"] for m in found["known.png"]["matches"]} >= {"sha256", "pdq"}
    assert "sha256" not in {m["kind"] for m in found["reencoded.jpg"]["matches"]}
    assert found["unrelated.png"]["severity"] == "NONE" and found["unrelated.png"]["matches"] == []
    assert "4 scanned: 3 flagged, 0 errors." in result.stderr


def test_allow_listed_image_is_none_even_when_banked(veille: Veille, tmp_path: Path) -> None:
    assert veille("db", "upgrade").returncode == 0
    poster = save_photo(tmp_path / "poster.png", 13)
    assert veille("hashes", "add", str(poster), "--bank", "test").returncode == 0
    before = json_lines(veille("scan", "--json", str(poster)).stdout)
    assert before[0]["severity"] == "QUARANTINE"  # the allow-list is what changes the verdict

    assert veille("hashes", "add", str(poster), "--bank", "fp", "--allow").returncode == 0
    result = veille("scan", "--json", str(poster))
    assert result.returncode == 0, result.stderr
    [line] = json_lines(result.stdout)
    assert line["severity"] == "NONE" and line["categories"] == []
    assert any("allow" in reason for reason in line["reasons"])


def test_bad_images_get_errors_quickly_with_bounded_memory(veille: Veille, tmp_path: Path) -> None:
    import os
    import resource
    import struct
    import subprocess
    import sys
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    bad = tmp_path / "bad"
    bad.mkdir()
    # 50000x50000 declared in a 30 KB file whose zlib stream really inflates (a bomb).
    rows = zlib.compress(bytes(1 + 50000 * 3) * 200, 9)
    (bad / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )
    # 8000x8000: under Pillow's own bomb limit, over Veille's 40 Mpx limit.
    (bad / "big.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes(1 + 8000 * 3) * 64))
        + chunk(b"IEND", b"")
    )
    # A GIF whose screen and frame claim 65535x65535 with one tiny LZW block.
    (bad / "huge.gif").write_bytes(
        b"GIF89a"
        + struct.pack("<HH", 65535, 65535)
        + b"\x80\x00\x00"
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHH", 0, 0, 65535, 65535)
        + b"\x00\x02\x02\x44\x01\x00;"
    )
    jpeg = encode(photo_like(14), "JPEG")
    (bad / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (bad / "vector.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999">'
        "<script>alert(1)</script></svg>",
        "utf-8",
    )
    (bad / "svg-named.png").write_text(
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    )

    # wait4 gives the peak memory of this one child, as the kernel measured it; output goes to
    # files so that no pipe needs reading while we wait, and a CPU limit bounds a runaway.
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "scan", "--json", str(bad)],
            cwd=veille.cwd,
            env=veille.env,
            stdout=stdout_file,
            stderr=stderr_file,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CPU, (120, 120)),
        )
        _pid, status, usage = os.wait4(process.pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    process.returncode = returncode  # reaped here: keep Popen from waiting again
    stdout, stderr = out.read_text("utf-8"), err.read_text("utf-8")
    peak_mb = usage.ru_maxrss / 1024

    assert returncode == 3, stderr  # nothing flagged, inputs refused: not "all clean"
    found = by_source(json_lines(stdout))
    assert set(found) == {
        "bomb.png",
        "big.png",
        "huge.gif",
        "cut.jpg",
        "vector.svg",
        "svg-named.png",
    }
    # A truncated JPEG is decoded as far as it goes and scanned; the rest are refused.
    assert not found["cut.jpg"].get("error")
    assert all(line["error"] for name, line in found.items() if name != "cut.jpg")
    assert "bomb" in found["bomb.png"]["error"] or "pixels" in found["bomb.png"]["error"]
    # 64 MP claimed in a few KB: more than deflate could hold, so a bomb header.
    assert "bomb" in found["big.png"]["error"] and "8000x8000" in found["big.png"]["error"]
    assert "pixels" in found["huge.gif"]["error"]
    assert "SVG" in found["vector.svg"]["error"] and "SVG" in found["svg-named.png"]["error"]
    # One decoded 50000x50000 RGB image alone would take 7 GB.
    assert peak_mb < 600, f"peak memory {peak_mb:.0f} MB"


def test_human_table_and_localised_summary(veille: Veille, tmp_path: Path) -> None:
    save_photo(tmp_path / "holiday.png", 15)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff" + bytes(10))

    english = veille("scan", str(tmp_path / "holiday.png"), str(tmp_path / "broken.jpg"))
    assert english.returncode == 3  # one input could not be scanned
    table = english.stdout
    for text in ("source", "result", "reasons / error", "ERROR", "broken.jpg", "truncated"):
        assert text in table
    assert "holiday.png" not in table and "NONE" not in table  # clean rows only with --all
    assert "{" not in table  # a table, not JSON
    assert "2 scanned: 0 flagged, 1 error." in english.stderr
    assert "1 clean not listed" in english.stderr

    french = veille("scan", "--all", str(tmp_path / "holiday.png"), VEILLE_LOCALE="fr")
    assert "résultat" in french.stdout and "holiday.png" in french.stdout
    assert "RIEN" in french.stdout
    assert "1 analysé : 0 signalé, 0 erreur." in french.stderr
