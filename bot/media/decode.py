"""Safe decoding of untrusted image bytes into a few RGB frames for the detectors.

The order of the checks is the defence: sniff the real type from the bytes, open with only the
Pillow plug-in for that type (no format confusion, no exotic parsers), read the dimensions from
the header and refuse huge images BEFORE any pixel is decoded, bound the work spent walking
animation frames, and only then decode.

Nothing decodable is refused for being awkward: an image over the pixel limit is reduced while
it decodes (JPEG draft mode: libjpeg's DCT scaling to 1/2, 1/4 or 1/8, so the full size is
never in memory) or, for formats without one, decoded up to `BOMB_FACTOR` times the limit and
reduced at once; only a header claiming more than that is refused as a bomb. A truncated file
is decoded again as far as it goes, with Pillow's LOAD_TRUNCATED_IMAGES switched on only for
that retry, under a lock (`_truncated_allowed`). MAX_IMAGE_PIXELS is left alone: the limits
here are per call (the core calls this through asyncio.to_thread).
"""

from __future__ import annotations

import heapq
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from bot.media.sniff import sniff_mime

# Sniffed type -> the Pillow plug-ins allowed to open it (MPO: JPEGs from cameras with extras).
PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    # The JPEG plug-in opens MPO files itself; Pillow 13 registers no separate "MPO" opener,
    # so naming it raised KeyError (not MediaError) for every JPEG the JPEG plug-in refused.
    "image/jpeg": ("JPEG",),
    "image/png": ("PNG",),
    "image/gif": ("GIF",),
    "image/webp": ("WEBP",),
    "image/bmp": ("BMP", "DIB"),
    "image/avif": ("AVIF",),  # Pillow 11.3+ reads AVIF natively; HEIC would need pillow-heif
}
# Walking to a late animation frame decodes every frame before it: cap that work (in pixels,
# about a second of decoding) and sample among the frames reachable within it.
WALK_BUDGET_PIXELS = 120_000_000
# ...and in frames, since each step also has a fixed cost (a GIF frame can be 40 bytes).
MAX_WALK_FRAMES = 1000
# Of an animation's sampled frames, up to this many are scene changes: frames whose mean grey
# difference from the frame before (on 16x16 thumbnails) is at least SCENE_CHANGE_MIN levels and
# three times the animation's typical change; the rest are spread evenly.
SCENE_CHANGES = 3
SCENE_CHANGE_MIN = 12.0
MAX_FRAMES = 6
# Without draft mode, decode at most this many times the pixel limit, then reduce; a header
# claiming more is a bomb. JPEG draft scales down to 1/8 (1/64 of the pixels) while decoding.
BOMB_FACTOR = 2
JPEG_DRAFT_SCALES = (1, 2, 4, 8)
_TRUNCATED_LOCK = threading.Lock()
_DEFLATE_MAX_RATIO = 1032
# Transparent areas become white, the usual background in chat clients.
_BACKGROUND = (255, 255, 255)
_ORIENTATION_TAG = 0x0112
# Smaller than any complete header of the supported formats plus its first data block.
_SHORT_HEADER = 128
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class MediaError(Exception):
    """An image that cannot or must not be decoded. `str()` is the readable message.

    Codes: empty, not_image, svg_not_scanned, unsupported, too_many_pixels,
    decompression_bomb, truncated, corrupt.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    """RGB frames with EXIF orientation applied; width/height are those of the oriented image."""

    frames: list[Image.Image]
    mime: str
    width: int
    height: int
    animated: bool
    partial: bool = False  # a truncated file, decoded as far as it goes
    reduced_from: tuple[int, int] | None = None  # the header's size when reduced to fit


@contextmanager
def _truncated_allowed() -> Iterator[None]:
    """Pillow's LOAD_TRUNCATED_IMAGES, on for one retry only. It is a module global, so the
    lock keeps two retries from racing to restore it; a decode in another thread meanwhile can
    only gain the same tolerance (it would have been retried so anyway)."""
    with _TRUNCATED_LOCK:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def decode_image(
    data: bytes, *, max_pixels: int = 40_000_000, max_frames: int = MAX_FRAMES
) -> DecodedImage:
    """Decode `data` into at most `max_frames` RGB frames (an animation's scene changes, then
    frames spread evenly over it: bot.media.decode._frames) of at most `max_pixels`,
    or raise MediaError. Larger images are reduced while decoding; a truncated file is decoded
    again as far as it goes (`partial`); only a header claiming a bomb is refused unread."""
    try:
        return _decode(data, max_pixels, max_frames)
    except MediaError as exc:
        if exc.code != "truncated":
            raise
        with _truncated_allowed():
            try:
                decoded = _decode(data, max_pixels, max_frames)
            except MediaError:
                raise exc from None
        return DecodedImage(
            decoded.frames,
            decoded.mime,
            decoded.width,
            decoded.height,
            decoded.animated,
            True,
            decoded.reduced_from,
        )


def _draft_scale(width: int, height: int, max_pixels: int) -> int | None:
    """The smallest JPEG DCT scale that brings the image under `max_pixels` (None: none does)."""
    for scale in JPEG_DRAFT_SCALES:
        if (-(-width // scale)) * (-(-height // scale)) <= max_pixels:
            return scale
    return None


def _decode(data: bytes, max_pixels: int, max_frames: int) -> DecodedImage:
    if not data:
        raise MediaError("empty", "empty file")
    mime = _checked_mime(data)
    try:
        image = Image.open(io.BytesIO(data), formats=PILLOW_FORMATS[mime])
    except Image.DecompressionBombError as exc:
        raise MediaError("decompression_bomb", f"decompression bomb: {exc}") from exc
    except (
        UnidentifiedImageError,
        SyntaxError,
        OSError,
        EOFError,
        ValueError,
        struct.error,
        zlib.error,
    ) as exc:
        raise _broken(mime, exc, data) from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise MediaError("corrupt", f"corrupt {mime}: empty dimensions {width}x{height}")
        reduced_from: tuple[int, int] | None = None
        if width * height > max_pixels:
            scale = _draft_scale(width, height, max_pixels) if image.format == "JPEG" else None
            if scale is not None:
                image.draft("RGB", (-(-width // scale), -(-height // scale)))
            elif width * height > BOMB_FACTOR * max_pixels or (
                image.format == "PNG" and len(data) * _DEFLATE_MAX_RATIO * 8 < width * height
            ):  # deflate packs at most ~1032:1 and a PNG pixel takes at least one bit
                raise MediaError(
                    "decompression_bomb",
                    f"decompression bomb: the header claims {width}x{height} pixels, more than "
                    f"{BOMB_FACTOR * max_pixels:,} or more than {len(data):,} bytes can hold",
                )
            reduced_from = (width, height)
        orientation = _orientation(image)  # read on the first frame, before seeking
        try:
            frames = _frames(image, image.size[0] * image.size[1], max_frames)
            if reduced_from is not None:
                frames = [_fit(frame, max_pixels) for frame in frames]
        except Image.DecompressionBombError as exc:
            raise MediaError("decompression_bomb", f"decompression bomb: {exc}") from exc
        except (SyntaxError, OSError, EOFError, ValueError, struct.error, zlib.error) as exc:
            raise _broken(mime, exc, data) from exc
        animated = bool(getattr(image, "is_animated", False))
    method = _TRANSPOSE.get(orientation) if orientation is not None else None
    if method is not None:
        frames = [frame.transpose(method) for frame in frames]
    return DecodedImage(
        frames, mime, frames[0].width, frames[0].height, animated, reduced_from=reduced_from
    )


def _fit(frame: Image.Image, max_pixels: int) -> Image.Image:
    """`frame` reduced by the smallest whole factor that brings it under `max_pixels`."""
    factor = 1
    while (-(-frame.width // factor)) * (-(-frame.height // factor)) > max_pixels:
        factor += 1
    return frame.reduce(factor) if factor > 1 else frame


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation tag; a damaged EXIF block is ignored, the pixels still count."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG)
    except (SyntaxError, OSError, ValueError, TypeError, KeyError, struct.error):
        return None
    return value if isinstance(value, int) else None


def _checked_mime(data: bytes) -> str:
    mime = sniff_mime(data)
    if mime == "image/svg+xml":
        raise MediaError("svg_not_scanned", "SVG images are not scanned (vector, may run scripts)")
    if mime == "image/heic":
        raise MediaError("unsupported", "HEIC images are not supported (needs pillow-heif)")
    if mime is None or not mime.startswith("image/"):
        what = mime or "unrecognised bytes"
        raise MediaError("not_image", f"not an image ({what})")
    if mime not in PILLOW_FORMATS:
        raise MediaError("unsupported", f"unsupported image type {mime}")
    return mime


def _looks_cut(mime: str, data: bytes) -> bool:
    """Whether the file stops before its format's end marker (or its declared RIFF size)."""
    if mime == "image/webp":
        return len(data) < 12 or struct.unpack("<I", data[4:8])[0] + 8 > len(data)
    tail = data[-16:].rstrip(b"\0")  # some writers pad after the end marker
    if mime == "image/png":
        return b"IEND" not in tail
    if mime == "image/jpeg":
        return not tail.endswith(b"\xff\xd9")
    if mime == "image/gif":
        return not tail.endswith(b";")
    return False


def _broken(mime: str, exc: BaseException, data: bytes) -> MediaError:
    size = len(data)
    if isinstance(exc, UnidentifiedImageError):
        # The magic bytes matched, so Pillow choked on the header itself; its message names a
        # BytesIO object, which helps nobody.
        if size < _SHORT_HEADER or _looks_cut(mime, data):
            return MediaError("truncated", f"truncated {mime}: the header is incomplete")
        return MediaError("corrupt", f"corrupt {mime}: the header cannot be read")
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "decompressed data too large" in lowered or "too much memory" in lowered:
        # Pillow's own text/ICC chunk limits: a zlib bomb hidden in metadata.
        return MediaError("decompression_bomb", f"decompression bomb in {mime}: {text}")
    truncated = (
        isinstance(exc, EOFError)
        or _looks_cut(mime, data)
        or any(
            word in lowered
            for word in (
                "truncated",
                "broken data stream",
                "end of file",
                "premature end",
                "buffer is not large enough",
            )
        )
    )
    if truncated:
        return MediaError("truncated", f"truncated {mime}: {text}")
    return MediaError("corrupt", f"corrupt {mime}: {text}")


def frame_indices(n_frames: int, max_frames: int) -> list[int]:
    """`max_frames` indices spread evenly over `n_frames`, first and last included."""
    if n_frames <= max_frames:
        return list(range(n_frames))
    if max_frames <= 1:
        return [0]
    step = (n_frames - 1) / (max_frames - 1)
    return sorted({round(i * step) for i in range(max_frames)})


def _frames(image: Image.Image, pixels: int, max_frames: int) -> list[Image.Image]:
    """Up to `max_frames` frames: the scene changes (a frame much unlike the one before it —
    one harmful frame flashed inside a harmless loop), then frames spread evenly over the rest.
    One sequential walk within the budget; each frame is compared on a 16×16 grey thumbnail."""
    max_frames = max(1, max_frames)
    limit = max(1, min(MAX_WALK_FRAMES, WALK_BUDGET_PIXELS // pixels))
    count = _frame_count(image, limit)
    even = frame_indices(count, max_frames)
    if count <= max_frames:
        return [_frame_at(image, index) for index in even]
    kept: dict[int, Image.Image] = {}
    candidates: list[tuple[float, int, Image.Image]] = []  # the strongest changes seen so far
    changes: list[float] = []
    previous: np.ndarray | None = None
    for index in range(count):
        frame = _frame_at(image, index)
        thumb = np.asarray(frame.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32)
        change = float(np.abs(thumb - previous).mean()) if previous is not None else 0.0
        previous = thumb
        changes.append(change)
        if index in even:
            kept[index] = frame
        elif change > 0:
            heapq.heappush(candidates, (change, index, frame))
            if len(candidates) > SCENE_CHANGES:
                heapq.heappop(candidates)
    typical = float(np.median(changes[1:])) if len(changes) > 1 else 0.0
    scenes = {
        index: frame
        for change, index, frame in candidates
        if change >= SCENE_CHANGE_MIN and change > 3 * typical
    }
    spread = [even[i] for i in frame_indices(len(even), max_frames - len(scenes))]
    chosen = {**{index: kept[index] for index in spread}, **scenes}
    return [chosen[index] for index in sorted(chosen)]


def _frame_at(image: Image.Image, index: int) -> Image.Image:
    if index:
        image.seek(index)
    image.load()
    return to_rgb(image)


def _frame_count(image: Image.Image, limit: int) -> int:
    """How many frames to sample from: the animation's length, capped at `limit`."""
    if not getattr(image, "is_animated", False):
        return 1
    if image.format != "GIF":
        # WebP, AVIF and APNG declare their frame count in the container header.
        return min(int(getattr(image, "n_frames", 1)), limit)
    # Pillow's GIF n_frames reads the whole file (seconds for 500k tiny frames in 20 MB), so
    # probe only as far as we would go; the walk is within the pixel budget anyway.
    count = 1
    try:
        while count < limit:
            image.seek(count)
            count += 1
    except EOFError:
        pass
    image.seek(0)
    return count


def to_rgb(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image: alpha flattened on white, 16-bit and float scaled, CMYK converted."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _scaled_grey(image)
    if (
        mode in ("P", "PA")
        or "A" in mode
        or "a" in mode
        or (mode in ("L", "RGB") and "transparency" in image.info)
    ):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _scaled_grey(image: Image.Image) -> Image.Image:
    # Pillow clips 16-bit values to 255 when converting, which turns most pictures white.
    if image.mode == "F":
        extrema = image.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        scale = 255.0 / (high - low) if high > low else 0.0
        offset = -low * scale
        source = image
    else:
        scale, offset = 1 / 257, 0.0  # 0..65535 -> 0..255
        source = image.convert("I")
    # A linear point() on I/F images runs in C; adding 0.5 rounds instead of truncating.
    scaled = source.point(lambda value: value * scale + offset + 0.5)
    return scaled.convert("L").convert("RGB")
