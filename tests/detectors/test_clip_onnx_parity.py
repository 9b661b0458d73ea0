"""The ONNX int8 fast path against torch, on the tiny model's test set: the same decisions, and
embeddings whose cosine similarity stays at or above 0.99."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bot.core.suite import clip_config
from bot.settings import Settings
from detectors.base import ImageInput
from detectors.clip import ClipDetector
from detectors.clip_onnx import MIN_PARITY_COSINE, parity_cosine
from detectors.fusion import fuse
from tests.tiny_clip import benign_image, flagged_image, tiny_clip_settings

SEEDS = range(100, 140)
ROOT = Path(__file__).resolve().parents[2]


def detector(tmp_path: Path, backend: str) -> ClipDetector:
    settings = Settings(_env_file=None, data_dir=tmp_path / backend, detectors="clip",  # type: ignore[call-arg]
                        clip_backend=backend, device="cpu", **tiny_clip_settings())
    return ClipDetector(clip_config(settings))


async def test_onnx_int8_decides_like_torch(tmp_path: Path) -> None:
    torch_detector, onnx_detector = detector(tmp_path, "torch"), detector(tmp_path, "onnx")
    await torch_detector.load()
    await onnx_detector.load()
    assert (torch_detector.backend_name, onnx_detector.backend_name) == ("torch", "onnx-int8")

    inputs = [ImageInput(make(seed), f"{make.__name__}-{seed}")
              for make in (flagged_image, benign_image) for seed in SEEDS]
    by_torch = await torch_detector.detect(inputs)
    by_onnx = await onnx_detector.detect(inputs)
    decisions_torch = [fuse([("clip", "t", d)]).severity for d in by_torch]
    decisions_onnx = [fuse([("clip", "o", d)]).severity for d in by_onnx]
    assert decisions_onnx == decisions_torch
    assert len(set(decisions_torch)) > 1  # the set holds both flagged and clean images

    clip = torch_detector._clip  # same weights; the ONNX detector dropped its torch copy
    assert clip is not None and onnx_detector._clip is not None
    assert onnx_detector._clip.model is None  # memory: no torch weights beside the ONNX tower
    pixels = np.stack([ClipDetector._pixels(clip, [item.image])[0] for item in inputs[:16]])
    assert parity_cosine(onnx_detector._onnx, clip.model.visual, pixels) >= MIN_PARITY_COSINE  # type: ignore[arg-type]


async def test_numpy_pixels_equal_open_clips_own_transform(tmp_path: Path) -> None:
    """The detector skips open_clip's torch transform; its pixels must be the same numbers."""
    from PIL import Image

    from detectors.clip import prepare_image

    torch_detector = detector(tmp_path, "torch")
    await torch_detector.load()
    clip = torch_detector._clip
    assert clip is not None
    samples = [flagged_image(3), benign_image(4).resize((333, 120)),
               Image.radial_gradient("L"), benign_image(5).convert("RGBA")]
    for image in samples:
        ours = ClipDetector._pixels(clip, [image])[0]
        theirs = clip.preprocess(prepare_image(image, clip.image_size)).numpy()
        assert ours.shape == theirs.shape == (3, clip.image_size, clip.image_size)
        assert np.abs(ours - theirs).max() < 1e-5


WARM_START = """
import asyncio, json, sys
from pathlib import Path
from tests.detectors.test_clip_onnx_parity import SEEDS, detector
from tests.tiny_clip import benign_image, flagged_image
from detectors.base import ImageInput

async def main():
    found = detector(Path(sys.argv[1]), "auto")
    await found.load()
    inputs = [ImageInput(make(seed), str(seed)) for make in (flagged_image, benign_image)
              for seed in SEEDS]
    scores = [d.scores for d in await found.detect(inputs)]
    print(json.dumps({"torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules,
                      "backend": found.backend_name, "scores": scores}))

asyncio.run(main())
"""


async def test_a_restart_scores_from_the_onnx_cache_without_importing_torch(tmp_path: Path) -> None:
    """The first start exports and checks the tower; the next one (a new process, as after a
    restart) must not import torch or open_clip, and must score exactly as the first did."""
    first = detector(tmp_path, "auto")
    await first.load()
    assert first.backend_name == "onnx-int8"
    inputs = [ImageInput(make(seed), str(seed)) for make in (flagged_image, benign_image)
              for seed in SEEDS]
    expected = [d.scores for d in await first.detect(inputs)]
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", WARM_START, str(tmp_path)], cwd=ROOT,
        capture_output=True, text=True, check=True, timeout=120)
    restarted = json.loads(out.stdout.strip().splitlines()[-1])
    assert (restarted["torch"], restarted["open_clip"], restarted["backend"]) == (False, False, "onnx-int8")
    assert restarted["scores"] == json.loads(json.dumps(expected))


async def test_a_torn_onnx_cache_falls_back_to_the_full_load(tmp_path: Path) -> None:
    first = detector(tmp_path, "auto")
    await first.load()
    for meta in (tmp_path / "auto").rglob("*.json"):
        if meta.parent.name == "onnx":
            meta.write_text("{not json", "utf-8")
    second = detector(tmp_path, "auto")
    await second.load()  # warns, loads torch, exports again and rewrites the metadata
    assert second.backend_name == "onnx-int8"
    metas = [m for m in (tmp_path / "auto").rglob("*.json") if m.parent.name == "onnx"]
    assert metas and all(json_ok(m) for m in metas)


def json_ok(path: Path) -> bool:
    return "logit_scale" in json.loads(path.read_text("utf-8"))
