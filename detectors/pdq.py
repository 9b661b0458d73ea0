"""PDQ perceptual hashes and the crop-robust near-duplicate windows built from them.

Hex follows ThreatExchange (python-threatexchange's PDQ signal): the 256 bits of pdqhash's vector,
first bit most significant, as 64 lower-case hex characters — so imported lists interoperate.

Plain PDQ survives resizing, re-encoding, grey, brightness and (with its eight dihedral variants)
mirrors and quarter turns, but not crops: a crop moves every block of the 64×64 grid PDQ hashes.
The near-duplicate signal hashes a fixed set of overlapping windows — centre and eight edge/corner
anchors at scales 0.9, 0.8 and 0.7 — so a crop of the original lands close to one of the windows
of the original, and the windows of a crop land close to windows of the original. PDQ moves
~30 bits when a window shifts by 1 % of its width, so only crops near that grid match this way;
detectors/keypoints.py covers crops at any offset.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pdqhash
from PIL import Image

PDQ_BITS = 256
PDQ_HEX_LEN = 64
# PDQ box-filters to 64×64 anyway; hashing a ≤512 px copy keeps results within a few bits of the
# full-size hash (the reference pdq-photo-hasher downsamples the same way) and bounds the cost.
HASH_SIDE = 512
# Windows are box-averaged from a ≤320 px grey copy straight to PDQ's own 64×64 working grid, so
# pdqhash only runs its DCT: 27 windows cost ~2 ms (hashing 256 px RGB crops cost ~7 ms).
WINDOW_SIDE = 320
PDQ_GRID = 64
WINDOW_SCALES = (0.9, 0.8, 0.7)
WINDOW_ANCHORS = tuple((ax, ay) for ay in (0.0, 0.5, 1.0) for ax in (0.0, 0.5, 1.0))
MIN_WINDOW_SIDE = 16  # below this PDQ sees a smear: the window carries no evidence
NEARDUP_PREFIX = "nd2:"


def _rgb_array(image: Image.Image, side: int) -> np.ndarray:
    """An RGB uint8 array of `image`, downscaled to fit `side` (aspect kept, never upscaled)."""
    img = image if image.mode == "RGB" else image.convert("RGB")
    if max(img.size) > side:
        img = img.copy()
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def grey_copy(image: Image.Image, side: int) -> Image.Image:
    """`image` in 8-bit luma (PDQ's weights), downscaled to fit `side`; returned as is when it
    already is such a copy, so one grey copy can serve the windows and the keypoints."""
    if image.mode == "L" and max(image.size) <= side:
        return image
    grey = image.convert("L")
    grey.thumbnail((side, side), Image.Resampling.BILINEAR)
    return grey


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256-bit vector as ThreatExchange hex (first bit most significant)."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hex_to_words(value: str) -> np.ndarray:
    """64 hex characters as four native uint64 words (the matcher's layout). Raises ValueError."""
    if len(value) != PDQ_HEX_LEN:
        raise ValueError(f"a PDQ hash has {PDQ_HEX_LEN} hex characters, not {len(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"not hexadecimal: {value[:16]}…") from exc
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def words_to_hex(words: np.ndarray) -> str:
    return words.astype(">u8").tobytes().hex()


def pdq_dihedral(image: Image.Image) -> tuple[list[str], int]:
    """The eight dihedral PDQ hashes (original first) and the quality (0-100) of `image`."""
    vectors, quality = pdqhash.compute_dihedral(_rgb_array(image, HASH_SIDE))
    return [bits_to_hex(v) for v in vectors], int(quality)


def window_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The (left, top, right, bottom) boxes of the near-duplicate windows of a width×height image."""
    boxes: list[tuple[int, int, int, int]] = []
    for scale in WINDOW_SCALES:
        w, h = round(width * scale), round(height * scale)
        if min(w, h) < MIN_WINDOW_SIDE:
            continue
        for ax, ay in WINDOW_ANCHORS:
            left, top = round((width - w) * ax), round((height - h) * ay)
            boxes.append((left, top, left + w, top + h))
    return boxes


def window_hashes(image: Image.Image, min_quality: int) -> list[str]:
    """PDQ hex of each window whose quality reaches `min_quality` (flat windows prove nothing)."""
    grey = grey_copy(image, WINDOW_SIDE)
    hashes: list[str] = []
    for box in window_boxes(*grey.size):
        cell = np.asarray(grey.resize((PDQ_GRID, PDQ_GRID), Image.Resampling.BOX, box=box))
        bits, quality = pdqhash.compute(np.repeat(cell[:, :, None], 3, axis=2))
        if quality >= min_quality:
            hashes.append(bits_to_hex(bits))
    return hashes


def encode_prefixed(prefix: str, raw: bytes) -> str:
    """A storage string for binary signatures: `prefix` + unpadded base64url of `raw`."""
    return prefix + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_prefixed(value: str, prefix: str, what: str) -> bytes:
    """Inverse of encode_prefixed. Raises ValueError naming `what` when malformed."""
    if not value.startswith(prefix):
        raise ValueError(f"{what} starts with {prefix!r}")
    body = value[len(prefix) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc


def encode_neardup(hashes: list[str]) -> str:
    """Windows as one storage string: `nd2:` + unpadded base64url of the 32-byte hashes (≤1.2 kB)."""
    raw = b"".join(bytes.fromhex(h) for h in hashes)
    return encode_prefixed(NEARDUP_PREFIX, raw)


def decode_neardup(value: str) -> list[str]:
    """The window hashes of a stored near-duplicate string. Raises ValueError when malformed."""
    raw = decode_prefixed(value, NEARDUP_PREFIX, "a near-duplicate signature")
    if len(raw) % 32:
        raise ValueError("near-duplicate signature length is not a whole number of PDQ hashes")
    return [raw[i : i + 32].hex() for i in range(0, len(raw), 32)]
