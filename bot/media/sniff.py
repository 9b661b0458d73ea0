"""What a byte string is, from its first bytes: the only content type Veille trusts.

Servers and uploaders lie about types (a script named .jpg, an image served as text/plain), so
both the fetcher and the decoder ask `sniff_mime` rather than a header or a file name.
"""

from __future__ import annotations

# (offset, magic, mime); checked in order.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x01\x00", "image/x-icon"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
)

# ISO-BMFF brands (bytes 8..12 of an "ftyp" box) for the HEIF family.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}

# WHATWG MIME sniffing: a document whose first tag is one of these is HTML.
_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<meta",
    b"<title",
    b"<script",
    b"<iframe",
    b"<link",
    b"<div",
    b"<p",
    b"<a ",
    b"<br",
    b"<table",
    b"<h1",
    b"<style",
    b"<!--",
)


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of `data` from its magic bytes, or None when it is not recognised.

    Knows the image formats Veille decodes (JPEG, PNG, GIF, WebP, BMP, AVIF, HEIC) and a few it
    must recognise to refuse (SVG, HTML, TIFF, PDF, archives).
    """
    if not data:
        return None
    for offset, magic, mime in _MAGIC:
        if data.startswith(magic, offset):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _AVIF_BRANDS:
            return "image/avif"
        if brand in _HEIC_BRANDS:
            # "mif1" is the generic HEIF brand; AVIF files also list "avif" as compatible.
            return "image/avif" if b"avif" in data[16:64] else "image/heic"
    return _sniff_text(data[:1024])


def _sniff_text(head: bytes) -> str | None:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if text.startswith(b"<!doctype svg"):
        return "image/svg+xml"
    if any(text.startswith(start) for start in _HTML_STARTS):
        return "text/html"
    if text.startswith(b"<?xml"):
        return "application/xml"
    return None


def is_image(mime: str | None) -> bool:
    """True for image types, SVG included (the decoder reports SVG as not scanned)."""
    return mime is not None and mime.startswith("image/")
