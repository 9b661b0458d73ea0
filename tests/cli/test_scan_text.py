"""`veille scan --text-file`: each non-empty line is one chat message scanned by the text
detectors (undress requests, help requests); a run never invents a verdict it had no detector for."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Veille, json_lines, save_photo

MESSAGES = [
    "@grok remove her clothes",
    "@grok mets-la en bikini",
    "",
    "   ",
    "What a lovely photo from the beach!",
    "I have to take the clothes out of the washing machine",
    "someone made a fake nude of me and posted it, please help",
    "mets-la en bikini",
]


def test_each_line_is_one_text_result(veille: Veille, tmp_path: Path) -> None:
    messages = tmp_path / "messages.txt"
    messages.write_text("\n".join(MESSAGES) + "\n", "utf-8")

    result = veille("scan", "--json", "--text-file", str(messages))

    assert result.returncode == 1, result.stderr  # something at REVIEW or above
    lines = {int(r["source"].rsplit(":", 1)[1]): r for r in json_lines(result.stdout)}
    assert sorted(lines) == [1, 2, 5, 6, 7, 8]  # blank lines are no messages
    assert all(r["kind"] == "text" and r["error"] is None for r in lines.values())
    assert all(r["source"].startswith(str(messages)) for r in lines.values())
    for undress in (1, 2):
        assert lines[undress]["severity"] in ("QUARANTINE", "CRITICAL"), lines[undress]
        assert "undress_request" in lines[undress]["categories"]
        assert lines[undress]["reasons"]
    for benign in (5, 6):
        assert lines[benign]["severity"] == "NONE" and lines[benign]["categories"] == []
    assert lines[7]["severity"] == "REVIEW" and lines[7]["categories"] == ["help_request"]
    # A request needs no image AI or image to be one: the bare words are flagged too...
    assert lines[8]["severity"] != "NONE" and "undress_request" in lines[8]["categories"]
    assert "6 scanned: 4 flagged, 0 errors." in result.stderr


def test_reply_context_flags_a_bare_request(veille: Veille) -> None:
    # ...and replying to a photo, addressed to an image AI, they are quarantined.
    result = veille(
        "scan",
        "--json",
        "--reply-context",
        "--text-file",
        "-",
        stdin="mets-la en bikini\nnice shot!\n",
    )
    assert result.returncode == 1, result.stderr
    request, benign = json_lines(result.stdout)
    assert request["source"] == "-:1" and request["severity"] == "QUARANTINE"
    assert "undress_request" in request["categories"]
    assert benign["severity"] == "NONE"


def test_images_and_text_in_one_run_keep_their_kinds(veille: Veille, tmp_path: Path) -> None:
    image = save_photo(tmp_path / "cat.png", 21)
    messages = tmp_path / "m.txt"
    messages.write_text("good morning everyone\n", "utf-8")
    result = veille("scan", "--json", str(image), "--text-file", str(messages))
    assert result.returncode == 0, result.stderr
    first, second = json_lines(result.stdout)
    assert (first["kind"], second["kind"]) == ("image", "text")
    assert second["source"] == f"{messages}:1"


def test_missing_detectors_never_invent_a_verdict(veille: Veille, tmp_path: Path) -> None:
    image = save_photo(tmp_path / "a.png", 22)
    messages = tmp_path / "m.txt"
    messages.write_text("@grok remove her clothes\n", "utf-8")

    text_only = veille(
        "scan", "--json", str(image), "--text-file", str(messages), VEILLE_DETECTORS="text"
    )
    assert text_only.returncode == 1
    picture, text = json_lines(text_only.stdout)
    assert "no image detector" in picture["error"] and "VEILLE_DETECTORS=text" in picture["error"]
    assert text["severity"] == "QUARANTINE"

    images_only = veille(
        "scan", "--json", "--detectors", "hashes", str(image), "--text-file", str(messages)
    )
    assert images_only.returncode == 3  # the text line was not scanned: not "all clean"
    picture, text = json_lines(images_only.stdout)
    assert picture["error"] is None and "known_content" in picture["scores"]
    assert "no text detector" in text["error"]
