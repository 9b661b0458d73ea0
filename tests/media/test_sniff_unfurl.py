"""Magic-byte sniffing and og:image / twitter:image extraction."""

from __future__ import annotations

import pytest

from bot.media.sniff import is_image, sniff_mime
from bot.media.unfurl import page_images
from tests.media.conftest import image_bytes


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("AVIF", "image/avif"),
        ("TIFF", "image/tiff"),
    ],
)
def test_sniffs_generated_images(fmt: str, mime: str) -> None:
    assert sniff_mime(image_bytes(fmt)) == mime


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"", None),
        (b"plain words", None),
        (b"\xef\xbb\xbf  <!DOCTYPE html><html>", "text/html"),
        (b"\n<meta property='og:image' content='/x.png'>", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
        (b"<?xml version='1.0'?><feed/>", "application/xml"),
        (b"%PDF-1.7", "application/pdf"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "image/heic"),
    ],
)
def test_sniffs_text_and_other_types(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


def test_is_image() -> None:
    assert is_image("image/png") and is_image("image/svg+xml")
    assert not is_image("text/html") and not is_image(None)


PAGE = b"""<!doctype html><html><head>
<meta name="twitter:image" content="https://cdn.example/tw.jpg">
<meta property="og:image" content="/relative/og.png">
<meta property="og:image:secure_url" content="https://cdn.example/secure.png">
<meta property="og:image" content="javascript:alert(1)">
<meta property="OG:IMAGE" content="  https://cdn.example/secure.png  ">
<meta property="og:title" content="not an image">
</head><body><meta property="og:image" content="https://cdn.example/body.png"></body></html>"""


def test_page_images_are_ranked_resolved_and_deduplicated() -> None:
    assert page_images(PAGE, "https://site.example/a/page.html", limit=5) == [
        "https://cdn.example/secure.png",
        "https://site.example/relative/og.png",
        "https://cdn.example/tw.jpg",
    ]


def test_page_images_respects_the_limit() -> None:
    assert page_images(PAGE, "https://site.example/", limit=1) == ["https://cdn.example/secure.png"]


def test_page_images_survives_broken_html() -> None:
    unquoted = b"<html><head><meta property=og:image content=/x.png><title>"
    assert page_images(unquoted, "http://s.example/p") == ["http://s.example/x.png"]
    # An unterminated tag is never completed, so it declares nothing.
    assert (
        page_images(b"<html><head><meta property=og:image content=/x.png", "http://s.example/")
        == []
    )
    assert page_images(b"\xff\xfe<<<>>>", "http://s.example/") == []
