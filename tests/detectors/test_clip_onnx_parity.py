"""The CPU fast path against torch, on the tiny model's test set: the same decisions, embeddings
whose cosine similarity stays at or above 0.99, scores that do not depend on batch-mates, and the
chain int8 → ONNX fp32 → torch, each step remembered so a restart goes straight to it."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.core.suite import clip_config
from bot.settings import Settings
from detectors.base import DetectorError, ImageInput
from detectors.clip import ClipDetector
from detectors.clip_export import torch_embeddings
from detectors.clip_onnx import MIN_PARITY_COSINE, min_cosine
from detectors.fusion import fuse
from tests.tiny_clip import benign_image, flagged_image, tiny_clip_settings

SEEDS = range(100, 140)
ROOT = Path(__file__).resolve().parents[2]


def detector(tmp_path: Path, backend: str) -> ClipDetector:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / backend,
        detectors="clip",  # type: ignore[call-arg]
        clip_backend=backend,
        device="cpu",
        **tiny_clip_settings(),
    )
    return ClipDetector(clip_config(settings))


async def test_onnx_int8_decides_like_torch(tmp_path: Path) -> None:
    torch_detector, onnx_detector = detector(tmp_path, "torch"), detector(tmp_path, "onnx")
    await torch_detector.load()
    await onnx_detector.load()
    assert (torch_detector.backend_name, onnx_detector.backend_name) == ("torch", "onnx-int8")

    inputs = [
        ImageInput(make(seed), f"{make.__name__}-{seed}")
        for make in (flagged_image, benign_image)
        for seed in SEEDS
    ]
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
    fast = onnx_detector._onnx.encode(pixels)  # type: ignore[attr-defined]
    assert min_cosine(torch_embeddings(clip.model.visual, pixels), fast) >= MIN_PARITY_COSINE


async def test_numpy_pixels_equal_open_clips_own_transform(tmp_path: Path) -> None:
    """The detector skips open_clip's torch transform; its pixels must be the same numbers."""
    from PIL import Image

    from detectors.clip import prepare_image

    torch_detector = detector(tmp_path, "torch")
    await torch_detector.load()
    clip = torch_detector._clip
    assert clip is not None
    samples = [
        flagged_image(3),
        benign_image(4).resize((333, 120)),
        Image.radial_gradient("L"),
        benign_image(5).convert("RGBA"),
    ]
    for image in samples:
        ours = ClipDetector._pixels(clip, [image])[0]
        theirs = clip.preprocess(prepare_image(image, clip.image_size)).numpy()
        assert ours.shape == theirs.shape == (3, clip.image_size, clip.image_size)
        assert np.abs(ours - theirs).max() < 1e-5
    # Resized on a pool's threads (as detect() does with 2+ threads): the same numbers, in order.
    with ThreadPoolExecutor(2) as pool:
        pooled = ClipDetector._pixels(clip, samples, pool)
    alone = np.stack([ClipDetector._pixels(clip, [image])[0] for image in samples])
    assert pooled.shape == alone.shape and np.array_equal(pooled, alone)


WARM_START = """
import asyncio, json, sys
from pathlib import Path
from tests.detectors.test_clip_onnx_parity import SEEDS, detector
from tests.tiny_clip import benign_image, flagged_image
from detectors.base import DetectorError, ImageInput

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
    inputs = [
        ImageInput(make(seed), str(seed))
        for make in (flagged_image, benign_image)
        for seed in SEEDS
    ]
    expected = [d.scores for d in await first.detect(inputs)]
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", WARM_START, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    restarted = json.loads(out.stdout.strip().splitlines()[-1])
    assert (restarted["torch"], restarted["open_clip"], restarted["backend"]) == (
        False,
        False,
        "onnx-int8",
    )
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
    return "logit_scale" in json.loads(path.read_text("utf-8"))["meta"]


async def test_an_image_scores_the_same_alone_and_in_a_batch(tmp_path: Path) -> None:
    """Static int8 has fixed activation scales: the batch is one ONNX call, and an image's
    score does not depend on its batch-mates (bit for bit)."""
    found = detector(tmp_path, "auto")
    await found.load()
    assert found.backend_name == "onnx-int8" and found._batched
    inputs = [
        ImageInput(make(seed), f"{make.__name__}-{seed}")
        for make in (flagged_image, benign_image)
        for seed in range(8)
    ]
    together = [d.scores for d in await found.detect(inputs)]
    alone = [(await found.detect([item]))[0].scores for item in inputs]
    assert together == alone
    reordered = [d.scores for d in await found.detect(inputs[::-1])]
    assert reordered[::-1] == together


def noisy_quantiser(source: Path, target: Path, calibration: np.ndarray) -> None:
    """An "int8" tower that is far from torch: the fp32 weights with loud noise on them."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        weights = numpy_helper.to_array(init)
        if weights.ndim >= 2 and weights.dtype == np.float32:
            noisy = weights + rng.normal(0, 3 * float(weights.std()) + 1e-3, weights.shape)
            init.CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), init.name))
    onnx.save(model, str(target))


def export_in_process(tmp_path: Path, quantiser: object = None) -> dict[str, object]:
    """What the child process does, here in the test process (so a step can be broken)."""
    from detectors.clip_export import ExportRequest, prepare

    config = detector(tmp_path, "auto").config
    request = ExportRequest(
        config.model, config.pretrained, str(config.cache_dir), str(config.prompts_dir), 2
    )
    return prepare(request, quantiser)  # type: ignore[arg-type]


def no_child(self: ClipDetector) -> None:
    raise AssertionError("the record should have been enough: no export on this start")


async def test_int8_failing_its_check_falls_back_to_onnx_fp32_and_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    record = export_in_process(tmp_path, noisy_quantiser)
    int8, fp32 = record["checks"]  # type: ignore[misc]
    assert (int8["backend"], int8["passed"], fp32["backend"], fp32["passed"]) == (
        "onnx-int8",
        False,
        "onnx-fp32",
        True,
    )
    assert int8["parity_cosine"] < MIN_PARITY_COSINE <= fp32["parity_cosine"]
    assert record["backend"] == "onnx-fp32" and record["batch_invariant"] is True

    monkeypatch.setattr(ClipDetector, "_prepare_in_child", no_child)
    restarted = detector(tmp_path, "auto")
    with caplog.at_level(logging.INFO, logger="detectors"):
        await restarted.load()
    assert restarted.backend_name == "onnx-fp32" and restarted._clip.model is None  # type: ignore[union-attr]
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failed == [
        f"CLIP onnx-int8 failed its check at the first start (remembered) "
        f"(parity cosine {int8['parity_cosine']:.4f} < {MIN_PARITY_COSINE})"
    ]
    assert "onnx-int8 failed" in restarted.backend_report
    assert "onnx-fp32 passed (parity 1.0000)" in restarted.backend_report
    assert restarted.can_start_from_cache()
    # ONNX fp32 is the same computation as torch: the same decisions on the test images.
    by_torch = await detector(tmp_path / "t", "torch").detect(
        [ImageInput(flagged_image(1), "a"), ImageInput(benign_image(2), "b")]
    )
    by_fp32 = await restarted.detect(
        [ImageInput(flagged_image(1), "a"), ImageInput(benign_image(2), "b")]
    )
    for ours, theirs in zip(by_fp32, by_torch, strict=True):
        assert ours.scores == pytest.approx(theirs.scores, abs=1e-4)


async def test_both_onnx_steps_failing_goes_straight_to_torch_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detectors import clip_onnx

    with monkeypatch.context() as strict:
        strict.setattr(clip_onnx, "MIN_PARITY_COSINE", 1.01)  # nothing can pass
        record = export_in_process(tmp_path)
    assert record["backend"] == "torch"
    assert [c["passed"] for c in record["checks"]] == [False, False]  # type: ignore[attr-defined]
    assert not list((tmp_path / "auto").rglob("*.onnx"))  # no tower kept that failed

    monkeypatch.setattr(ClipDetector, "_prepare_in_child", no_child)
    restarted = detector(tmp_path, "auto")
    await restarted.load()
    assert restarted.backend_name == "torch" and not restarted.can_start_from_cache()
    assert "onnx-int8 failed" in restarted.backend_report
    strict_onnx = detector(tmp_path, "onnx")
    strict_onnx.config.cache_dir = restarted.config.cache_dir
    with pytest.raises(DetectorError, match="VEILLE_CLIP_BACKEND=onnx but no ONNX image tower"):
        await strict_onnx.load()
