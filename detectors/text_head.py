"""The trained head of the text detector: logistic regressions stored as plain numpy arrays.

scripts/train_text_head.py writes detectors/data/text_head.npz; nothing here needs
scikit-learn. Four heads share the features of detectors/text_features.py:

- `undress_full` and `help_full` read the encoder's embedding, the n-grams and the grammar;
- `undress_fast` and `help_fast` read the n-grams and the grammar only. They are the cheap
  first stage (the encoder runs only when `undress_fast` reaches `gate`, when the message
  carries context, or when its n-grams are unfamiliar — a script or language the training
  lines barely cover), and the fallback when the encoder is unavailable.

`seen` marks the n-gram buckets that occur in the training lines; `coverage()` is the share
of a window's buckets among them. `meta` records the training-data hash, which is part of the
detector's version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.text_features import DENSE_NAMES, NGRAM_BUCKETS

HEAD_FILE = Path(__file__).parent / "data" / "text_head.npz"
HEADS = ("undress_full", "undress_fast", "help_full", "help_fast")


@dataclass(frozen=True)
class Logistic:
    """One logistic regression over (n-gram buckets, dense features, embedding)."""

    ngram: np.ndarray  # (NGRAM_BUCKETS,) float32
    dense: np.ndarray  # (len(DENSE_NAMES),)
    embedding: np.ndarray  # (384,), zeros for the fast heads
    bias: float

    def logit(self, buckets: np.ndarray, dense: np.ndarray,
              embedding: np.ndarray | None = None) -> float:
        value = self.bias + float(self.dense @ dense)
        if len(buckets):
            value += float(self.ngram[buckets].sum()) / float(np.sqrt(len(buckets)))
        if embedding is not None:
            value += float(self.embedding @ embedding)
        return value


@dataclass(frozen=True)
class TextHead:
    heads: dict[str, Logistic]
    seen: np.ndarray  # (NGRAM_BUCKETS,) bool
    gate: float  # undress_fast probability from which the encoder runs
    coverage_min: float  # below this share of familiar buckets the encoder runs too
    meta: dict[str, object]

    @property
    def training_hash(self) -> str:
        return str(self.meta.get("training_hash", "untrained"))[:10]

    def coverage(self, buckets: np.ndarray) -> float:
        return float(self.seen[buckets].mean()) if len(buckets) else 1.0

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name, head in self.heads.items():
            arrays[f"{name}.ngram"] = head.ngram.astype(np.float16)
            arrays[f"{name}.dense"] = head.dense.astype(np.float32)
            arrays[f"{name}.embedding"] = head.embedding.astype(np.float32)
            arrays[f"{name}.bias"] = np.asarray([head.bias], np.float64)
        arrays["seen"] = np.packbits(self.seen)
        arrays["gate"] = np.asarray([self.gate, self.coverage_min], np.float64)
        arrays["meta"] = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), np.uint8)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)


def load_head(path: Path = HEAD_FILE) -> TextHead:
    """Read the head; raises ValueError when its shapes do not match these features."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        if tuple(meta.get("dense_names", ())) != DENSE_NAMES:
            raise ValueError(f"{path.name} was trained on other features; retrain it with "
                             "python scripts/train_text_head.py")
        heads = {}
        for name in HEADS:
            ngram = data[f"{name}.ngram"].astype(np.float32)
            if ngram.shape != (NGRAM_BUCKETS,):
                raise ValueError(f"{path.name}: {name} has {ngram.shape} n-gram weights")
            heads[name] = Logistic(ngram, data[f"{name}.dense"], data[f"{name}.embedding"],
                                   float(data[f"{name}.bias"][0]))
        seen = np.unpackbits(data["seen"])[:NGRAM_BUCKETS].astype(bool)
        gate, coverage_min = (float(x) for x in data["gate"])
    return TextHead(heads, seen, gate, coverage_min, meta)
