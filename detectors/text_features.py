"""Features of the trained text head, and the part of a long message that is read.

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

Reading: a message of up to SINGLE_WINDOW characters is one window; a longer one is cut into
sentence and clause windows (detectors/text_windows.py), each scored as a message of its own.
A message beyond MAX_SCAN characters is read as its first and last halves of MAX_SCAN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.text_grammar import FEATURE_NAMES
from detectors.text_normalise import Token

NGRAM_BUCKETS = 1 << 18
NGRAM_SIZES = (2, 3, 4, 5)
SINGLE_WINDOW = 400
MAX_SCAN = 60_000
CONTEXT_NAMES = ("image x evidence", "ai x evidence", "image x ai x evidence")
DENSE_NAMES = FEATURE_NAMES + CONTEXT_NAMES
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def scanned_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of `text` that are read: all of it up to MAX_SCAN characters, else
    its first and last halves of MAX_SCAN."""
    n = len(text)
    if n <= MAX_SCAN:
        return [(0, n)]
    half = MAX_SCAN // 2
    return [(0, half), (n - half, n)]


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
