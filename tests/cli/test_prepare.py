"""`veille prepare`: the one-time CLIP work done ahead of the bot, so that the bot itself starts
from the caches without torch; a detector that cannot load is a clear exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Veille
from tests.cli.test_scan_clip import clip_env
from tests.tiny_clip import CHECKPOINT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHECKPOINT.is_file(), reason="the tiny CLIP checkpoint is not built"),
]


def onnx_env() -> dict[str, str]:
    return {**clip_env(), "VEILLE_CLIP_BACKEND": "auto"}


def test_prepare_exports_once_then_the_next_start_skips_torch(veille: Veille) -> None:
    first = veille("prepare", **onnx_env())
    assert first.returncode == 0, first.stderr
    assert "onnx-int8" in first.stdout and "without torch" in first.stdout
    assert "parity" in first.stdout  # the check that chose it, with its figure
    assert "CLIP image tower: onnx-int8, batched; onnx-int8 passed (parity 0.9" in first.stderr
    assert "in a child process" in first.stderr  # the one-time work happened, out of this process

    again = veille("prepare", **onnx_env(), VEILLE_LOCALE="fr")
    assert again.returncode == 0, again.stderr
    assert "from the ONNX cache, without torch" in again.stderr
    assert "in a child process" not in again.stderr  # the record was enough: no export again
    assert "sans charger torch" in again.stderr and "Détecteurs prêts" in again.stdout


def test_torch_backend_says_the_next_start_loads_torch(veille: Veille) -> None:
    result = veille("prepare", **clip_env())  # VEILLE_CLIP_BACKEND=torch
    assert result.returncode == 0, result.stderr
    assert "loads torch" in result.stdout
    assert "without loading torch" not in result.stderr


def test_missing_weights_exit_2_naming_the_setting(veille: Veille, tmp_path: Path) -> None:
    result = veille(
        "prepare", **{**onnx_env(), "VEILLE_CLIP_PRETRAINED": str(tmp_path / "none.pt")}
    )
    assert result.returncode == 2
    assert "VEILLE_CLIP_PRETRAINED" in result.stderr
