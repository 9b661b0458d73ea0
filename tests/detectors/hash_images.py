"""Generated "photo-like" images for the hash tests — gradients, shapes, noise and text-like
strokes, never people — and the re-sharing transformations the known-content tests measure."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps


def photo_like(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A deterministic RGB image: a tilted colour gradient, 6-13 filled shapes, rows of dark
    text-like bars and Gaussian pixel noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    base = np.stack([ramp * rng.uniform(60, 200) + rng.uniform(0, 60) for _ in range(3)], axis=-1)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    for _ in range(int(rng.integers(2, 5))):  # text-like strokes: rows of short dark bars
        x, y = int(rng.integers(0, w - 120)), int(rng.integers(0, h - 20))
        for _ in range(int(rng.integers(5, 15))):
            bar = int(rng.integers(3, 10))
            draw.rectangle((x, y, x + bar, y + int(rng.integers(8, 16))), fill=(20, 20, 20))
            x += bar + int(rng.integers(2, 6))
    noise = rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def jpeg(image: Image.Image, quality: int = 70) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def crop(image: Image.Image, keep: float, ax: float = 0.5, ay: float = 0.5) -> Image.Image:
    """Keep `keep` of each side; (ax, ay) place the kept box (0 left/top .. 1 right/bottom)."""
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    left, top = round((w - cw) * ax), round((h - ch) * ay)
    return image.crop((left, top, left + cw, top + ch))


def stamp(image: Image.Image) -> Image.Image:
    """A white caption box with dark "letters" over the bottom-right corner (a watermark)."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    draw.rectangle((w * 0.6, h * 0.85, w * 0.98, h * 0.97), fill=(255, 255, 255))
    for i in range(10):
        draw.rectangle(
            (w * 0.62 + i * 12, h * 0.88, w * 0.62 + i * 12 + 7, h * 0.94), fill=(0, 0, 0)
        )
    return out


def layered_scene(
    seed: int,
    eye: float,
    size: tuple[int, int] = (640, 480),
    subject_shift: tuple[int, int] = (0, 0),
) -> Image.Image:
    """One generated scene photographed from a camera moved `eye` pixels sideways: a far
    background and four textured objects at depths 1 to 4, each shifted by eye/depth (parallax).
    `subject_shift` moves the nearest object as well (a burst shot: the subject moved)."""
    rng = np.random.default_rng(seed)
    w, h = size
    pad = 80
    background = photo_like(seed, (w + 2 * pad, h + 2 * pad))
    left = pad + round(eye * 0.15)
    out = background.crop((left, pad, left + w, pad + h))
    for k, depth in enumerate((1.0, 1.6, 2.5, 4.0)):
        side = (int(rng.integers(130, 260)), int(rng.integers(130, 260)))
        texture = photo_like(seed * 31 + k + 7, side)
        x, y = int(rng.integers(0, w - side[0])), int(rng.integers(0, h - side[1]))
        mask = Image.new("L", side, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, side[0] - 1, side[1] - 1), fill=255)
        dx, dy = subject_shift if k == 0 else (0, 0)
        out.paste(texture, (x + round(eye / depth) + dx, y + dy), mask)
    return out


def turned(image: Image.Image, degrees: float) -> Image.Image:
    """The picture as a camera turned `degrees` about its vertical axis sees it (a homography)."""
    w, h = image.size
    f = w * 1.2
    a = np.radians(degrees)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    inverse = np.linalg.inv(k @ r @ np.linalg.inv(k))
    coeffs = tuple(float(c) for c in (inverse / inverse[2, 2]).flatten()[:8])
    return image.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "identity": lambda i: i,
    "resize 50%": lambda i: i.resize((i.width // 2, i.height // 2)),
    "JPEG q70": jpeg,
    "mirror": ImageOps.mirror,
    "greyscale": lambda i: ImageOps.grayscale(i).convert("RGB"),
    "brightness +30%": lambda i: ImageEnhance.Brightness(i).enhance(1.3),
    "watermark stamp": stamp,
    "rotate 90°": lambda i: i.transpose(Image.Transpose.ROTATE_90),
    "crop 10% centred": lambda i: crop(i, 0.9),
    "crop 20% centred": lambda i: crop(i, 0.8),
    "crop 30% centred": lambda i: crop(i, 0.7),
    "crop 10% corner": lambda i: crop(i, 0.9, 0, 0),
    "crop 20% corner": lambda i: crop(i, 0.8, 1, 1),
    "crop 30% corner": lambda i: crop(i, 0.7, 0, 1),
    "crop 20% off-centre": lambda i: crop(i, 0.8, 0.3, 0.7),
    "crop 30% off-centre": lambda i: crop(i, 0.7, 0.8, 0.35),
    "crop 20% one side": lambda i: i.crop((0, 0, round(i.width * 0.8), i.height)),
    "crop 20%+mirror+JPEG": lambda i: jpeg(ImageOps.mirror(crop(i, 0.8, 0.3, 0.6))),
}
