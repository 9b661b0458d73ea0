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

Each stored window says where it lies (`nd3:`: a grid index per hash, 0 for the whole image),
because the evidence differs: the whole of one picture looking like a window of the other is
what a crop is, while a part of one looking like a part of the other is also what another
photograph of the same scene gives, where a large static background barely moved (tests/
detectors/test_same_scene.py). The bank holds the second kind to a stricter distance
(detectors/hashes.py). Rows stored before positions were kept (`nd2:`) are read as windows.
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
WHOLE = 0  # grid index of the whole image; window k of WINDOW_GRID is k + 1
WINDOW_GRID = tuple((scale, anchor) for scale in WINDOW_SCALES for anchor in WINDOW_ANCHORS)
NEARDUP_PREFIX = "nd2:"  # hashes only, no positions: rows stored before nd3 (still read)
WINDOWS_PREFIX = "nd3:"  # per hash: one byte of grid index, then its 32 bytes
_WINDOW_RECORD = 33


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


def indexed_window_boxes(width: int, height: int) -> list[tuple[int, tuple[int, int, int, int]]]:
    """(grid index, (left, top, right, bottom)) of the near-duplicate windows of a width×height
    image; windows under MIN_WINDOW_SIDE are left out, so indices may skip."""
    boxes: list[tuple[int, tuple[int, int, int, int]]] = []
    for k, (scale, (ax, ay)) in enumerate(WINDOW_GRID, start=1):
        w, h = round(width * scale), round(height * scale)
        if min(w, h) < MIN_WINDOW_SIDE:
            continue
        left, top = round((width - w) * ax), round((height - h) * ay)
        boxes.append((k, (left, top, left + w, top + h)))
    return boxes


def window_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The (left, top, right, bottom) boxes of the near-duplicate windows of a width×height image."""
    return [box for _, box in indexed_window_boxes(width, height)]


def indexed_windows(image: Image.Image, min_quality: int) -> list[tuple[int, str]]:
    """(grid index, PDQ hex) of each window whose quality reaches `min_quality` (flat windows
    prove nothing)."""
    grey = grey_copy(image, WINDOW_SIDE)
    hashes: list[tuple[int, str]] = []
    for k, box in indexed_window_boxes(*grey.size):
        cell = np.asarray(grey.resize((PDQ_GRID, PDQ_GRID), Image.Resampling.BOX, box=box))
        bits, quality = pdqhash.compute(np.repeat(cell[:, :, None], 3, axis=2))
        if quality >= min_quality:
            hashes.append((k, bits_to_hex(bits)))
    return hashes


def window_hashes(image: Image.Image, min_quality: int) -> list[str]:
    """PDQ hex of each window whose quality reaches `min_quality`, without positions."""
    return [value for _, value in indexed_windows(image, min_quality)]


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
    """Hashes without positions as `nd2:` + unpadded base64url of the 32-byte hashes: the format
    of rows stored before nd3, kept for reading them and for position-free benches."""
    raw = b"".join(bytes.fromhex(h) for h in hashes)
    return encode_prefixed(NEARDUP_PREFIX, raw)


def decode_neardup(value: str) -> list[str]:
    """The hashes of a stored `nd2:` or `nd3:` string. Raises ValueError when malformed."""
    return [value for _, value in decode_windows(value)]


def encode_windows(windows: list[tuple[int, str]]) -> str:
    """(grid index, hex) pairs as one storage string: `nd3:` + unpadded base64url of 33-byte
    records (index byte, hash); the whole image and 27 windows take 1,232 characters."""
    raw = b"".join(bytes([index]) + bytes.fromhex(value) for index, value in windows)
    return encode_prefixed(WINDOWS_PREFIX, raw)


def decode_windows(value: str) -> list[tuple[int | None, str]]:
    """(grid index, hex) of each hash of a stored `nd3:` string; an `nd2:` one gives None for
    every index (position unknown). Raises ValueError when malformed."""
    if value.startswith(NEARDUP_PREFIX):
        raw = decode_prefixed(value, NEARDUP_PREFIX, "a near-duplicate signature")
        if len(raw) % 32:
            raise ValueError("near-duplicate signature length is not a whole number of PDQ hashes")
        return [(None, raw[i : i + 32].hex()) for i in range(0, len(raw), 32)]
    raw = decode_prefixed(value, WINDOWS_PREFIX, "a near-duplicate signature")
    if len(raw) % _WINDOW_RECORD:
        raise ValueError("near-duplicate signature length is not a whole number of windows")
    out: list[tuple[int | None, str]] = []
    for i in range(0, len(raw), _WINDOW_RECORD):
        if raw[i] > len(WINDOW_GRID):
            raise ValueError(f"near-duplicate window index {raw[i]} is not on the grid")
        out.append((raw[i], raw[i + 1 : i + _WINDOW_RECORD].hex()))
    return out
