"""The CLIP detector end to end with the tiny model, loaded from Settings exactly as production
loads it (bot.core.suite.clip_config → ClipDetector → open_clip from a local config+checkpoint)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.core.suite import clip_config
from bot.core.verdict import Severity
from bot.settings import Settings
from detectors.base import SEXUAL, DetectorError, ImageInput
from detectors.clip import ClipConfig, ClipDetector, prepare_image, score_margins
from detectors.clip_model import resolve_device
from detectors.clip_prompts import CLIP_CATEGORIES, load_prompt_set
from detectors.fusion import fuse
from tests.tiny_clip import (
    CHECKPOINT,
    CONFIG,
    PROMPTS,
    benign_image,
    flagged_image,
    tiny_clip_settings,
)

N_IMAGES = 24


def tiny_settings(tmp_path: Path, **extra: object) -> Settings:
    overrides: dict[str, Any] = {**tiny_clip_settings(), **extra}
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        detectors="clip",  # type: ignore[call-arg]
        **overrides,
    )


def images(maker, seeds: range) -> list[ImageInput]:  # type: ignore[no-untyped-def]
    return [ImageInput(maker(seed), f"sha-{seed}") for seed in seeds]


@pytest.mark.parametrize("backend", ["auto", "torch"])
async def test_tiny_prompt_set_flags_its_images_and_passes_the_others(
    tmp_path: Path, backend: str
) -> None:
    detector = ClipDetector(clip_config(tiny_settings(tmp_path, clip_backend=backend)))
    await detector.load()
    # auto takes the ONNX int8 image tower on CPU when it matches torch; torch is always torch.
    assert detector.backend_name in ({"onnx-int8", "torch"} if backend == "auto" else {"torch"})
    flagged = await detector.detect(images(flagged_image, range(N_IMAGES)))
    benign = await detector.detect(images(benign_image, range(N_IMAGES)))

    assert len(flagged) == len(benign) == N_IMAGES
    flagged_right = sum(d.scores[SEXUAL] >= 0.8 for d in flagged)  # default block threshold
    benign_right = sum(max(d.scores.values()) < 0.5 for d in benign)  # under every review level
    assert (flagged_right, benign_right) == (N_IMAGES, N_IMAGES)
    assert set(flagged[0].scores) == set(CLIP_CATEGORIES)

    verdicts = [fuse([(detector.name, detector.version, d)]) for d in flagged + benign]
    assert all(v.severity == Severity.QUARANTINE for v in verdicts[:N_IMAGES])
    assert all(v.severity == Severity.NONE for v in verdicts[N_IMAGES:])


async def test_reasons_name_the_concept_the_negative_and_the_margin(tmp_path: Path) -> None:
    detector = ClipDetector(clip_config(tiny_settings(tmp_path)))
    [flagged, benign] = await detector.detect(
        [ImageInput(flagged_image(7), "a"), ImageInput(benign_image(7), "b")]
    )
    [reason] = [r for r in flagged.reasons if r.startswith("CLIP sexual")]
    assert "closer to 'red circle' than to '" in reason
    assert "(margin +" in reason
    assert flagged.extras["clip_margins"][SEXUAL] > 0  # type: ignore[index]
    assert benign.reasons == []
    assert benign.extras["clip_margins"][SEXUAL] < 0  # type: ignore[index]


async def test_text_embeddings_are_cached_on_disk_and_reused(tmp_path: Path) -> None:
    config = clip_config(tiny_settings(tmp_path))
    first = ClipDetector(config)
    await first.load()
    cached = list((config.cache_dir / "clip_text").glob("*.npz"))
    assert first.text_cache_hit is False and len(cached) == 1

    second = ClipDetector(config)
    await second.load()
    assert second.text_cache_hit is True
    assert list((config.cache_dir / "clip_text").glob("*.npz")) == cached
    batch = images(flagged_image, range(3))
    assert [d.scores for d in await first.detect(batch)] == [
        d.scores for d in await second.detect(batch)
    ]


async def test_editing_a_prompt_file_changes_version_and_cache_key(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    settings = tiny_settings(tmp_path, clip_prompts=prompts)
    before = ClipDetector(clip_config(settings))
    await before.load()
    with (prompts / "negatives.toml").open("a", encoding="utf-8") as file:
        file.write('\n[[negatives]]\nlabel = "cyan square"\ntexts = ["cyan square"]\n')
    after = ClipDetector(clip_config(settings))
    await after.load()
    assert after.version != before.version
    assert after.text_cache_hit is False
    assert len(list((settings.cache_dir / "clip_text").glob("*.npz"))) == 2


def test_prompts_dir_setting_reads_veille_clip_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEILLE_CLIP_PROMPTS", str(PROMPTS))
    assert Settings(_env_file=None).clip_prompts == PROMPTS  # type: ignore[call-arg]


async def test_missing_checkpoint_names_the_setting(tmp_path: Path) -> None:
    detector = ClipDetector(
        ClipConfig(
            str(CONFIG), str(tmp_path / "nowhere.pt"), cache_dir=tmp_path, prompts_dir=PROMPTS
        )
    )
    with pytest.raises(DetectorError, match="VEILLE_CLIP_PRETRAINED") as error:
        await detector.load()
    assert "nowhere.pt" in str(error.value) and ".safetensors" in str(error.value)


async def test_unknown_tag_names_the_setting(tmp_path: Path) -> None:
    detector = ClipDetector(
        ClipConfig(str(CONFIG), "laion2b_s34b_b79k", cache_dir=tmp_path, prompts_dir=PROMPTS)
    )
    with pytest.raises(DetectorError, match="VEILLE_CLIP_PRETRAINED") as error:
        await detector.load()
    assert "not a hub tag" in str(error.value)


async def test_unreachable_hub_fails_at_once_with_how_to_use_a_local_file(tmp_path: Path) -> None:
    # A real hub tag with an empty cache, and the hub "host" a loopback port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    detector = ClipDetector(
        ClipConfig(
            "ViT-B-32",
            "laion2b_s34b_b79k",
            cache_dir=tmp_path,
            hub_url=f"http://127.0.0.1:{closed_port}",
        )
    )
    with pytest.raises(DetectorError, match="VEILLE_CLIP_PRETRAINED") as error:
        await detector.load()
    message = str(error.value)
    assert "Could not download" in message and "VEILLE_CLIP_PRETRAINED=/path/to/" in message
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").rglob("*.bin"))


async def test_unknown_architecture_names_the_setting(tmp_path: Path) -> None:
    detector = ClipDetector(ClipConfig("ViT-B-33", str(CHECKPOINT), cache_dir=tmp_path))
    with pytest.raises(DetectorError, match="VEILLE_CLIP_MODEL.*Did you mean ViT-B-32"):
        await detector.load()


def test_bad_prompt_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    (tmp_path / "sexual.toml").write_text('category = "sexy"\n', "utf-8")
    with pytest.raises(DetectorError, match=r"sexual\.toml.*`category` must be one of"):
        load_prompt_set(tmp_path)
    (tmp_path / "sexual.toml").write_text("category = [", "utf-8")
    with pytest.raises(DetectorError, match="cannot be read"):
        load_prompt_set(tmp_path)
    with pytest.raises(DetectorError, match="VEILLE_CLIP_PROMPTS"):
        load_prompt_set(tmp_path / "missing")


def test_bundled_prompts_cover_every_category_with_hard_negatives() -> None:
    prompts = load_prompt_set()
    assert {c.category for c in prompts.categories} == set(CLIP_CATEGORIES)
    sexual = next(c for c in prompts.categories if c.category == SEXUAL)
    negatives = {n.label for n in sexual.negatives}
    assert {
        "swimwear at the beach",
        "classical nude art in a museum",
        "medical illustration",
        "breastfeeding education",
        "clothed portrait",
    } <= negatives
    assert all(len(c.prompts) >= 3 for c in sexual.concepts)  # several templates per concept


def test_device_selection() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(DetectorError, match="VEILLE_DEVICE"):
        resolve_device("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DetectorError, match="VEILLE_DEVICE='cuda'"):
            resolve_device("cuda")


def test_margin_maps_to_a_logistic_score() -> None:
    from detectors.clip import _Layout

    layout = _Layout("sexual", np.array([0]), np.array([1, 2]), 0.0)
    sims = np.array([[0.30, 0.30, 0.10], [0.35, 0.30, 0.10], [0.20, 0.30, 0.25]], np.float32)
    margins, scores, best_pos, best_neg = score_margins(sims, [layout], scale=100.0)
    assert np.allclose(margins[:, 0], [0.0, 0.05, -0.10], atol=1e-6)
    assert scores[0, 0] == pytest.approx(0.5)
    assert scores[1, 0] == pytest.approx(1 / (1 + np.exp(-5)), rel=1e-5)
    assert scores[2, 0] < 1e-4
    assert best_neg[2, 0] == 1


@pytest.mark.parametrize(
    ("image", "size"),
    [
        (Image.new("RGBA", (4000, 3), (255, 0, 0, 0)), 32),
        (Image.new("L", (3, 4000), 90), 32),
        (Image.new("P", (1, 1)), 224),
    ],
)
def test_prepare_image_crops_the_centre_square_without_upscaling_banners(
    image: Image.Image, size: int
) -> None:
    prepared = prepare_image(image, size)
    assert prepared.mode == "RGB" and prepared.size == (size, size)


@pytest.mark.parametrize(
    "mode",
    [
        "1",
        "L",
        "LA",
        "La",
        "P",
        "PA",
        "RGBA",
        "RGBa",
        "CMYK",
        "YCbCr",
        "LAB",
        "HSV",
        "I",
        "I;16",
        "F",
    ],
)
def test_prepare_image_accepts_every_pillow_mode(mode: str) -> None:
    assert prepare_image(Image.new(mode, (5, 7)), 32).mode == "RGB"
