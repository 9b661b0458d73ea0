"""Calibration: the threshold fitting itself, the thresholds file, and `veille calibrate` run on
a labelled folder scored by the tiny CLIP model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.core.verdict import DEFAULT_TIERS, Thresholds, calibration_key
from detectors.calibration import (
    CalibrationError,
    fit_category,
    labelled_images,
    write_thresholds,
)
from tests.tiny_clip import (
    CHECKPOINT,
    CONFIG,
    benign_image,
    flagged_image,
    png_bytes,
    tiny_clip_settings,
)


def test_block_is_the_lowest_threshold_with_enough_precision_review_keeps_recall() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.65, 0.3, 0.2, 0.1]
    labels = [True, True, True, True, False, False, False, False]
    fit = fit_category("sexual", scores, labels, min_precision=0.95, min_recall=0.95)
    # At 0.65 one ok image slips in (precision 0.75); at 0.7 none does: block halfway between.
    assert fit.block.threshold == pytest.approx(0.675, abs=1e-5)
    assert (fit.block.precision, fit.block.recall) == (1.0, 0.75)
    # Catching every flag image needs 0.6 (the 0.65 ok image is flagged too); the next lower
    # score is 0.3, so review sits at 0.45.
    assert fit.review.threshold == pytest.approx(0.45, abs=1e-5)
    assert fit.review.recall == 1.0 and fit.review.precision == pytest.approx(0.8)
    assert fit.block_reached and (fit.positives, fit.negatives) == (4, 4)


def test_unreachable_precision_leaves_blocking_to_moderators() -> None:
    fit = fit_category("sexual", [0.9, 0.9, 0.2], [True, False, False], min_precision=0.95)
    assert not fit.block_reached and fit.block.threshold == 1.0
    assert fit.review.threshold <= fit.block.threshold


def test_fit_needs_both_labels() -> None:
    with pytest.raises(CalibrationError, match="both flag and ok"):
        fit_category("sexual", [0.2, 0.3], [True, True])


def test_labelled_folder_errors_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="is not a folder"):
        labelled_images(tmp_path / "nope")
    (tmp_path / "flag").mkdir()
    with pytest.raises(CalibrationError, match="needs a `flag/`|holds no images"):
        labelled_images(tmp_path)
    (tmp_path / "flag" / "a.png").write_bytes(png_bytes(flagged_image(1)))
    with pytest.raises(CalibrationError, match="needs a `ok/` subfolder"):
        labelled_images(tmp_path)


def test_thresholds_file_merges_models_and_categories(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    write_thresholds(
        path, calibration_key("ViT-B-32", "laion"), {"sexual": {"review": 0.4, "block": 0.9}}
    )
    write_thresholds(
        path, calibration_key("ViT-B-32", "laion"), {"synthetic": {"review": 0.6, "block": 0.97}}
    )
    write_thresholds(
        path, calibration_key("ViT-L-14", "openai"), {"sexual": {"review": 0.3, "block": 0.7}}
    )
    stored = json.loads(path.read_text("utf-8"))
    assert set(stored) == {
        calibration_key("ViT-B-32", "laion"),
        calibration_key("ViT-L-14", "openai"),
    }
    loaded = Thresholds.load(path, "ViT-B-32", "laion")
    assert (loaded.review("sexual"), loaded.block("sexual")) == (0.4, 0.9)
    assert (loaded.review("synthetic"), loaded.block("synthetic")) == (0.6, 0.97)
    assert loaded.block("minor_present") == DEFAULT_TIERS["minor_present"].block
    path.write_text("[1, 2]", "utf-8")
    with pytest.raises(CalibrationError, match="not a thresholds file"):
        write_thresholds(path, calibration_key("m", "p"), {})


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    folder = tmp_path / "labelled"
    (folder / "flag").mkdir(parents=True)
    (folder / "ok" / "nested").mkdir(parents=True)
    for seed in range(20):
        (folder / "flag" / f"f{seed}.png").write_bytes(png_bytes(flagged_image(seed)))
        (folder / "ok" / "nested" / f"b{seed}.png").write_bytes(png_bytes(benign_image(seed)))
    (folder / "ok" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


@pytest.fixture
def tiny_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer .env
    data_dir = tmp_path / "data"
    settings = tiny_clip_settings()
    monkeypatch.setenv("VEILLE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("VEILLE_CLIP_MODEL", str(settings["clip_model"]))
    monkeypatch.setenv("VEILLE_CLIP_PRETRAINED", str(settings["clip_pretrained"]))
    monkeypatch.setenv("VEILLE_CLIP_PROMPTS", str(settings["clip_prompts"]))
    monkeypatch.setenv("VEILLE_DEVICE", "cpu")
    monkeypatch.setenv("VEILLE_DETECTORS", "clip,hashes,text")
    return data_dir / "thresholds.json"


def test_calibrate_command_fits_and_writes_thresholds(labelled: Path, tiny_env: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", str(labelled), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 40 and len(report["skipped"]) == 1  # the broken PNG
    fit = report["fits"]["clip"]["sexual"]
    assert fit["block"]["precision"] >= 0.95 and fit["review"]["recall"] >= 0.95
    assert fit["block_reached"] is True

    loaded = Thresholds.load(tiny_env, str(CONFIG), str(CHECKPOINT))
    assert loaded.block("sexual") == fit["block"]["threshold"]
    assert loaded.review("sexual") == fit["review"]["threshold"] <= loaded.block("sexual")
    assert loaded.block("synthetic") == DEFAULT_TIERS["synthetic"].block  # not calibrated


def test_calibrate_prints_a_table_in_the_default_mode(labelled: Path, tiny_env: Path) -> None:
    result = CliRunner().invoke(
        cli, ["calibrate", str(labelled), "--category", "sexual", "--category", "sexualised_edit"]
    )
    assert result.exit_code == 0, result.output
    assert "clip · sexual: 20 flag and 20 ok images" in result.stdout
    assert "clip · sexualised_edit: 20 flag and 20 ok images" in result.stdout
    assert "← block" in result.stdout and "precision" in result.stdout
    stored = json.loads(tiny_env.read_text("utf-8"))
    assert set(stored[calibration_key(str(CONFIG), str(CHECKPOINT))]) == {
        "sexual",
        "sexualised_edit",
    }


def test_calibrate_bad_folder_exits_2_with_a_message(tmp_path: Path, tiny_env: Path) -> None:
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "missing")])
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # rich wraps long lines
    assert "Cannot calibrate" in message and "missing is not a folder" in message
    assert not tiny_env.exists()


def test_calibrate_without_weights_exits_2_naming_the_setting(
    labelled: Path, tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_CLIP_PRETRAINED", str(labelled / "missing.safetensors"))
    result = CliRunner().invoke(cli, ["calibrate", str(labelled)])
    assert result.exit_code == 2
    assert "VEILLE_CLIP_PRETRAINED" in " ".join(result.output.split())
    assert not tiny_env.exists()


def test_calibrate_fits_clip_and_nsfw_separately(
    labelled: Path, tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_DETECTORS", "clip,nsfw,hashes")
    result = CliRunner().invoke(cli, ["calibrate", str(labelled), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["fits"]) == {"clip", "nsfw"} and set(report["fits"]["nsfw"]) == {"sexual"}
    stored = json.loads(tiny_env.read_text("utf-8"))
    assert set(stored) == {calibration_key(str(CONFIG), str(CHECKPOINT)), "detector|nsfw"}
    loaded = Thresholds.load(tiny_env, str(CONFIG), str(CHECKPOINT))
    nsfw = report["fits"]["nsfw"]["sexual"]
    assert loaded.review("sexual", "nsfw") == nsfw["review"]["threshold"]
    assert (
        loaded.review("sexual", "clip") == report["fits"]["clip"]["sexual"]["review"]["threshold"]
    )


def test_calibrate_refuses_too_few_images_and_says_why(tmp_path: Path, tiny_env: Path) -> None:
    folder = tmp_path / "few"
    for label, make in (("flag", flagged_image), ("ok", benign_image)):
        (folder / label).mkdir(parents=True)
        for seed in range(5):
            (folder / label / f"{seed}.png").write_bytes(png_bytes(make(seed)))
    result = CliRunner().invoke(cli, ["calibrate", str(folder)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "5 flag and 5 ok images: at least 20 of each" in message
    assert not tiny_env.exists()


def test_calibrate_warns_on_imbalance(tmp_path: Path, tiny_env: Path) -> None:
    folder = tmp_path / "skewed"
    (folder / "flag").mkdir(parents=True)
    (folder / "ok").mkdir(parents=True)
    for seed in range(20):
        (folder / "flag" / f"{seed}.png").write_bytes(png_bytes(flagged_image(seed)))
    for seed in range(120):
        (folder / "ok" / f"{seed}.png").write_bytes(png_bytes(benign_image(seed)))
    result = CliRunner().invoke(cli, ["calibrate", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Imbalanced labels: 20 flag against 120 ok" in " ".join(result.output.split())


def test_calibrate_with_no_scoring_detector_says_nothing_to_calibrate(
    labelled: Path, tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILLE_DETECTORS", "hashes,text")
    result = CliRunner().invoke(cli, ["calibrate", str(labelled)])
    assert result.exit_code == 2
    assert "nothing to calibrate" in " ".join(result.output.split())
    assert not tiny_env.exists()
