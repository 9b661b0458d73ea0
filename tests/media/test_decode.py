"""decode_image on generated images: formats, modes, orientation, animation, and hostile files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from bot.media.decode import (
    MAX_WALK_FRAMES,
    WALK_BUDGET_PIXELS,
    DecodedImage,
    MediaError,
    decode_image,
    frame_indices,
    to_rgb,
)
from tests.media.conftest import image_bytes


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG that claims `width` x `height` RGB pixels with whatever IDAT data is given."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 1024))
        + png_chunk(b"IEND", b"")
    )


def rejected(data: bytes, **options: int) -> MediaError:
    with pytest.raises(MediaError) as info:
        decode_image(data, **options)
    return info.value


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("AVIF", "image/avif"),
    ],
)
def test_decodes_the_supported_formats(fmt: str, mime: str) -> None:
    decoded = decode_image(image_bytes(fmt, size=(64, 48)))
    assert isinstance(decoded, DecodedImage)
    assert (decoded.mime, decoded.width, decoded.height, decoded.animated) == (mime, 64, 48, False)
    [frame] = decoded.frames
    assert frame.mode == "RGB" and frame.size == (64, 48)
    red, green, blue = frame.getpixel((60, 44))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60  # still red after the codec


def test_exif_orientation_rotates_the_image() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 10))  # blue in the top-left corner
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.frames[0].size == (20, 40)
    red, _, blue = decoded.frames[0].getpixel((17, 2))  # type: ignore[misc]
    assert blue > 200 and red < 60  # the corner moved to the top right


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "L", "1", "CMYK", "I;16"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    source = (
        Image.new("RGBA", (16, 16), (255, 0, 0, 255)).convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.full((16, 16), 30000, dtype=np.uint16))
    )
    decoded = decode_image(encode(source, fmt))
    assert decoded.frames[0].mode == "RGB"
    assert decoded.frames[0].size == (16, 16)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    decoded = decode_image(encode(Image.fromarray(ramp), "PNG"))
    pixels = np.asarray(decoded.frames[0])[..., 0]
    assert pixels.min() == 0 and pixels.max() == 255
    assert pixels[8, 0] == 128  # mid-grey stays mid-grey (Pillow alone would clip it to 255)


def test_float_images_are_stretched_to_the_full_range() -> None:
    ramp = Image.fromarray(np.linspace(-1.0, 1.0, 100, dtype=np.float32).reshape(10, 10))
    rgb = to_rgb(ramp)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((9, 9)) == (255, 255, 255)


def test_transparency_is_flattened_on_white() -> None:
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    decoded = decode_image(encode(clear, "PNG"))
    assert decoded.frames[0].getpixel((4, 4)) == (255, 255, 255)


def animation(count: int, size: tuple[int, int] = (40, 30), fmt: str = "GIF") -> bytes:
    frames = [Image.new("RGB", size, (i * 20, 0, 0)) for i in range(count)]
    extra = {"lossless": True} if fmt == "WEBP" else {}
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40, **extra)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animations_are_sampled_evenly(fmt: str) -> None:
    decoded = decode_image(animation(10, fmt=fmt), max_frames=4)
    assert decoded.animated
    reds = [frame.getpixel((5, 5))[0] for frame in decoded.frames]  # type: ignore[index]
    assert reds == [0, 60, 120, 180]  # frames 0, 3, 6 and 9 of 10


def test_short_animations_keep_every_frame() -> None:
    decoded = decode_image(animation(3), max_frames=4)
    assert len(decoded.frames) == 3


def test_frame_indices_spread_and_include_both_ends() -> None:
    assert frame_indices(1, 4) == [0]
    assert frame_indices(100, 4) == [0, 33, 66, 99]
    assert frame_indices(100, 1) == [0]


def test_long_animations_only_walk_the_frames_the_budget_allows() -> None:
    # Frame i adds one white pixel at (i, 0) on a 1000x1000 canvas; reaching frame i decodes
    # every frame before it, so with a 120 MP budget only the first 120 frames are reachable.
    width = 1000
    assert WALK_BUDGET_PIXELS // (width * width) == 120
    base = Image.new("L", (width, width), 0)
    frames: list[Image.Image] = []
    for index in range(130):
        frame = base.copy() if not frames else frames[-1].copy()
        frame.putpixel((index, 0), 255)
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20)
    decoded = decode_image(data, max_frames=4)
    last = decoded.frames[-1]
    assert last.getpixel((119, 0)) == (255, 255, 255)
    assert last.getpixel((125, 0)) == (0, 0, 0)


def test_long_animations_of_tiny_frames_stop_at_the_frame_cap() -> None:
    # 1500 frames of 2x2: grey 0 for frames 0-499, 100 for 500-999, 200 for 1000-1499 (the
    # other pixel alternates so no two neighbours are equal and the encoder keeps them all).
    frames = []
    for index in range(1500):
        frame = Image.new("L", (2, 2), (index // 500) * 100)
        frame.putpixel((1, 1), 50 + index % 2)
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 1500
    decoded = decode_image(data, max_frames=4)
    greys = [frame.getpixel((0, 0))[0] for frame in decoded.frames]  # type: ignore[index]
    assert MAX_WALK_FRAMES == 1000
    # Frames 0, 500 (where the grey changes: a scene change), 666 and 999: never past
    # MAX_WALK_FRAMES, where grey 200 starts.
    assert greys == [0, 100, 100, 100]


def test_huge_dimensions_in_a_tiny_file_are_refused_before_decoding() -> None:
    # Pillow counts every pixel buffer it creates: none may be made for a refused image.
    created_before = Image.core.get_stats()["new_count"]
    # 48 MP in a few hundred bytes: more than deflate could ever have packed, so a bomb header.
    over_limit = rejected(png_header_only(8000, 6000))
    absurd = rejected(png_header_only(100_000, 100_000))
    assert Image.core.get_stats()["new_count"] == created_before
    assert over_limit.code == "decompression_bomb"
    assert "8000x6000" in str(over_limit)
    assert absurd.code in ("too_many_pixels", "decompression_bomb")


def test_the_pixel_limit_is_the_callers() -> None:
    small = image_bytes("PNG", size=(100, 100))
    assert decode_image(small, max_pixels=10_000).width == 100
    reduced = decode_image(small, max_pixels=9_999)  # over the limit: reduced, not refused
    assert (reduced.width, reduced.reduced_from) == (50, (100, 100))
    assert rejected(small, max_pixels=4_999).code == "decompression_bomb"  # over twice the limit


def test_png_text_chunk_zlib_bomb_is_refused() -> None:
    plain = image_bytes("PNG", size=(8, 8))
    bomb = zlib.compress(b"A" * (50 * 1024 * 1024), 9)  # 50 MB of text in ~50 KB
    data = plain[:33] + png_chunk(b"zTXt", b"Comment\0\0" + bomb) + plain[33:]
    assert len(data) < 100_000
    assert rejected(data).code == "decompression_bomb"


def test_pixel_data_zlib_bomb_is_bounded_by_the_declared_size() -> None:
    # IDAT inflating to 3x the declared image: the decoder stops at the declared size.
    idat = zlib.compress(b"\0" * (2001 * 2000 * 3 * 3), 9)
    decoded = decode_image(png_header_only(2000, 2000, idat))
    assert decoded.frames[0].size == (2000, 2000)


PARTIAL_UNSUPPORTED = ("WEBP",)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_files_are_decoded_as_far_as_they_go_or_reported(fmt: str) -> None:
    noisy = Image.fromarray(np.random.default_rng(7).integers(0, 255, (64, 64, 3), np.uint8))
    data = encode(noisy, fmt)
    try:
        decoded = decode_image(data[: len(data) // 2])
    except MediaError as error:  # formats Pillow cannot read partially
        assert fmt in PARTIAL_UNSUPPORTED and error.code == "truncated", str(error)
    else:
        assert fmt not in PARTIAL_UNSUPPORTED
        assert decoded.partial and decoded.frames[0].size == (64, 64)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the switch was on for the retry only


def test_a_cut_header_is_truncated() -> None:
    assert rejected(image_bytes("PNG")[:30]).code == "truncated"


def test_empty_text_and_svg() -> None:
    assert rejected(b"").code == "empty"
    text = rejected(b"this is not a picture, although it was named cat.jpg")
    assert text.code == "not_image" and "unrecognised" in str(text)
    svg = rejected(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert svg.code == "svg_not_scanned"
    assert rejected(b"<!doctype html><html></html>").code == "not_image"


def test_other_image_types_are_unsupported() -> None:
    assert rejected(image_bytes("TIFF")).code == "unsupported"
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64
    assert rejected(heic).code == "unsupported"


def test_a_valid_header_with_garbage_after_it_is_corrupt_or_truncated() -> None:
    data = image_bytes("JPEG", size=(64, 64))
    broken = data[:200] + b"\xff" * 2000
    assert rejected(broken).code in ("corrupt", "truncated")


def test_one_frame_flashed_inside_a_long_loop_is_sampled() -> None:
    """Even sampling alone would miss frame 37 of 60: a scene change is always looked at."""
    frames = [Image.new("RGB", (40, 30), (30 + i % 2, 90, 40)) for i in range(60)]
    frames[37] = Image.new("RGB", (40, 30), (240, 240, 240))
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40)
    decoded = decode_image(data, max_frames=4)
    assert len(decoded.frames) <= 4
    assert any(frame.getpixel((5, 5))[0] > 200 for frame in decoded.frames)  # type: ignore[index]
    assert decoded.frames[0].getpixel((5, 5))[0] < 100  # the first frame is still there
