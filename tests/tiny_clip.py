"""The tiny CLIP world for tests: generated coloured shapes, a tiny open_clip model trained on them
(scripts/train_tiny_clip.py) and a TEST prompt set in the production format.

In the test prompt set (tests/data/tiny_clip/prompts/) shape/colour concepts stand in for the
unsafe categories and the hard negatives, so tests can exercise the whole CLIP path without any
sensitive imagery:

- `sexual` is played by "a red circle"; `sexualised_edit` by "a purple triangle";
  `minor_present` by "a yellow square"; `synthetic` by "a cyan circle";
- the hard negatives are the near misses (red squares and triangles, blue and green circles...).

Use in another engineer's end-to-end test::

    from tests.tiny_clip import benign_image, flagged_image, png_bytes, tiny_clip_settings
    settings = Settings(_env_file=None, detectors="clip", **tiny_clip_settings(), ...)
    data = png_bytes(flagged_image(seed=1))   # scores high on `sexual`: REVIEW or above
    data = png_bytes(benign_image(seed=1))    # scores low everywhere: NONE

Everything is deterministic in `seed`.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

TINY_DIR = Path(__file__).resolve().parent / "data" / "tiny_clip"
CONFIG = TINY_DIR / "config.json"
CHECKPOINT = TINY_DIR / "tiny_clip.pt"
PROMPTS = TINY_DIR / "prompts"

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 175, 60),
    "blue": (40, 70, 225),
    "yellow": (235, 215, 45),
    "purple": (145, 55, 195),
    "cyan": (45, 205, 215),
}
SHAPES = ("circle", "square", "triangle")

# What the test prompt set flags (as `sexual`) and what it must pass (no category above 0.5).
FLAGGED = ("red", "circle")
BENIGN = (
    ("blue", "circle"),
    ("green", "circle"),
    ("red", "square"),
    ("red", "triangle"),
    ("green", "square"),
    ("blue", "triangle"),
)


def shape_image(
    colour: str, shape: str, seed: int, size: int | None = None, *, min_radius: float = 0.18
) -> Image.Image:
    """A `colour` `shape` on a noisy, roughly neutral background; size 48–192 px unless given,
    shape radius `min_radius`–0.34 of the side (training uses the default: small shapes too)."""
    if colour not in COLOURS or shape not in SHAPES:
        raise ValueError(f"unknown colour/shape {colour!r}/{shape!r}")
    rng = np.random.default_rng(seed)
    side = size or int(rng.integers(48, 193))
    grey = rng.uniform(20, 235)
    tint = rng.uniform(-25, 25, 3)
    background = np.clip(grey + tint + rng.normal(0, 8, (side, side, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background, "RGB")
    fill = tuple(int(np.clip(c + rng.uniform(-20, 20), 0, 255)) for c in COLOURS[colour])
    radius = side * rng.uniform(min_radius, 0.34)
    cx = side / 2 + rng.uniform(-0.12, 0.12) * side
    cy = side / 2 + rng.uniform(-0.12, 0.12) * side
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    else:
        turn = rng.uniform(-0.3, 0.3)
        points = [
            (
                cx + radius * 1.2 * math.sin(turn + k * 2 * math.pi / 3),
                cy - radius * 1.2 * math.cos(turn + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        draw.polygon(points, fill=fill)
    return image


# The image makers below draw large shapes: the tiny model sees 48 px, where small ones blur.
EASY_RADIUS = 0.27


def flagged_image(seed: int) -> Image.Image:
    """An image the tiny model and test prompt set score high on `sexual` (a red circle)."""
    return shape_image(*FLAGGED, seed=seed, min_radius=EASY_RADIUS)


def benign_image(seed: int) -> Image.Image:
    """An image the test prompt set passes: a hard-negative shape (blue circle, red square...)."""
    colour, shape = BENIGN[seed % len(BENIGN)]
    return shape_image(colour, shape, seed=seed, min_radius=EASY_RADIUS)


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG, as a chat attachment would carry it."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def tiny_clip_settings() -> dict[str, object]:
    """Settings overrides that load the tiny model through the production path:
    `Settings(**tiny_clip_settings(), ...)` or `load_settings(**tiny_clip_settings())`."""
    return {
        "clip_model": str(CONFIG),
        "clip_pretrained": str(CHECKPOINT),
        "clip_prompts": PROMPTS,
    }
