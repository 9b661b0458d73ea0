"""Features of the trained text head, and the windows a long message is read in.

Three groups of evidence about a window of text, plus its context:

- character n-grams (2 to 5) of the normalised tokens (detectors/text_normalise.py: case,
  accents, leetspeak, spaced-out letters and look-alikes folded away), hashed into
  NGRAM_BUCKETS with a fixed hash, binary, L2-normalised. Spelling tricks and scripts written
  without spaces (Japanese, Chinese, Thai) still share n-grams with their plain forms;
- the grammar's patterns and flags (detectors/text_grammar.py, FEATURE_NAMES);
- the encoder's embedding (detectors/text_encoder.py), when it runs;
- context (the message replies to an image, addresses an image AI) enters only multiplied
  by the grammar's evidence, so the head can learn how much context strengthens what the
  text itself says, and cannot learn a flat boost for any line under a photo.

Windows: a message of up to SINGLE_WINDOW characters is one window; a longer one is read in
overlapping windows of WINDOW characters every STRIDE (the first is its head, the last its
tail), so a request of up to WINDOW - STRIDE characters lies whole in some window however much
padding surrounds it. Beyond LONG_FROM characters the windows are LONG_WINDOW every
LONG_STRIDE: the same overlap, half the windows (a 20,000-character message must cost under
100 ms). Messages beyond MAX_SCAN characters are read as their first and last halves of
MAX_SCAN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.text_grammar import FEATURE_NAMES
from detectors.text_normalise import Token

NGRAM_BUCKETS = 1 << 18
NGRAM_SIZES = (2, 3, 4, 5)
SINGLE_WINDOW = 400
WINDOW = 160
STRIDE = 80
LONG_FROM = 4_000
LONG_WINDOW = 240
LONG_STRIDE = 160
MAX_SCAN = 60_000
CONTEXT_NAMES = ("image x evidence", "ai x evidence", "image x ai x evidence")
DENSE_NAMES = FEATURE_NAMES + CONTEXT_NAMES
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def windows(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of `text` to score; see the module docstring."""
    n = len(text)
    if n <= SINGLE_WINDOW:
        return [(0, n)]
    if n > MAX_SCAN:
        half = MAX_SCAN // 2
        return [s for s in windows(text[:half])] + [
            (a + n - half, b + n - half) for a, b in windows(text[n - half :])
        ]
    size, stride = (LONG_WINDOW, LONG_STRIDE) if n > LONG_FROM else (WINDOW, STRIDE)
    spans = [(start, start + size) for start in range(0, n - size, stride)]
    spans.append((n - size, n))
    return spans


def skeleton_text(tokens: Sequence[Token]) -> str:
    """The normalised words of a window, space-separated, with a space at each end."""
    return " " + " ".join(t.forms[0] for t in tokens) + " "


def _grams(text: str) -> list[np.ndarray]:
    """Per n-gram size (NGRAM_SIZES order), the bucket of the gram starting at each offset."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    found = []
    with np.errstate(over="ignore"):
        rolling = codes.copy()
        for size in range(2, max(NGRAM_SIZES) + 1):
            if len(codes) < size:
                break
            rolling = rolling[:-1] * _PRIME + codes[size - 1 :]
            if size in NGRAM_SIZES:
                mixed = (rolling ^ np.uint64(size)) * _MIX
                found.append(((mixed >> np.uint64(40)) % np.uint64(NGRAM_BUCKETS)).astype(np.int64))
    return found


def ngram_buckets(text: str) -> np.ndarray:
    """Sorted distinct bucket indices of the character 2- to 5-grams of `text`."""
    found = _grams(text)
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(found))


class NgramIndex:
    """The n-grams of a long message's skeleton, hashed once: `window(i, j)` is exactly
    `ngram_buckets(skeleton_text(tokens[i:j]))`, sliced out instead of hashed again."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._text = skeleton_text(tokens)
        self._grams = _grams(self._text)
        # Token k's skeleton starts at self._starts[k]; the space before it at self._starts[k] - 1.
        lengths = np.fromiter(
            (len(t.forms[0]) + 1 for t in tokens), dtype=np.int64, count=len(tokens)
        )
        self._starts = np.concatenate([[1], 1 + np.cumsum(lengths)])

    def window(self, first: int, last: int) -> np.ndarray:
        """Buckets of tokens[first:last] (with the spaces around them, as skeleton_text has)."""
        if last <= first:
            return ngram_buckets("  ")
        begin, end = int(self._starts[first]) - 1, int(self._starts[last])  # end: space after
        parts = [
            grams[begin : end - size + 1]
            for grams, size in zip(self._grams, NGRAM_SIZES, strict=False)
            if end - size + 1 > begin
        ]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def dense_features(
    grammar_features: Sequence[float],
    evidence: float,
    replies_to_image: bool,
    addresses_image_ai: bool,
) -> np.ndarray:
    """The grammar features followed by the context features, in DENSE_NAMES order."""
    image, ai = float(replies_to_image), float(addresses_image_ai)
    context = (image * evidence, ai * evidence, image * ai * evidence)
    return np.asarray([*grammar_features, *context], dtype=np.float32)
