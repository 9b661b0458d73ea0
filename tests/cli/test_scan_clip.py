"""`veille scan` with the CLIP detector, on the tiny test model (tests/tiny_clip.py) loaded through
the production settings, as environment variables: a flagged shape is REVIEW or above, a hard
negative is NONE."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Veille, by_source, json_lines
from tests.tiny_clip import CHECKPOINT, benign_image, flagged_image, tiny_clip_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHECKPOINT.is_file(), reason="the tiny CLIP checkpoint is not built"),
]


def clip_env() -> dict[str, str]:
    names = {
        "clip_model": "VEILLE_CLIP_MODEL",
        "clip_pretrained": "VEILLE_CLIP_PRETRAINED",
        "clip_prompts": "VEILLE_CLIP_PROMPTS",
    }
    env = {names[key]: str(value) for key, value in tiny_clip_settings().items()}
    return {
        **env,
        "VEILLE_DETECTORS": "clip,hashes,text",
        "VEILLE_DEVICE": "cpu",
        "VEILLE_CLIP_BACKEND": "torch",
    }


def test_flagged_image_is_reviewed_and_benign_is_none(veille: Veille, tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    folder.mkdir()
    flagged_image(seed=3).save(folder / "flagged.png")
    flagged_image(seed=4).convert("RGB").save(folder / "flagged.jpg", quality=92)
    benign_image(seed=3).save(folder / "benign_a.png")
    benign_image(seed=4).save(folder / "benign_b.png")

    result = veille("scan", "--json", str(folder), **clip_env())

    assert result.returncode == 1, result.stderr
    found = by_source(json_lines(result.stdout))
    for name in ("flagged.png", "flagged.jpg"):
        line = found[name]
        assert line["error"] is None and line["severity"] in ("REVIEW", "QUARANTINE", "CRITICAL")
        assert "sexual" in line["categories"] and line["scores"]["sexual"] >= 0.5
        assert any("CLIP" in reason for reason in line["reasons"])
    for name in ("benign_a.png", "benign_b.png"):
        line = found[name]
        assert line["error"] is None and line["severity"] == "NONE", line
        assert "sexual" in line["scores"] and line["categories"] == []
    assert "4 scanned: 2 flagged, 0 errors." in result.stderr
