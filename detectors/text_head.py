"""The trained head of the text detector: logistic regressions stored as plain numpy arrays.

scripts/train_text_head.py writes detectors/data/text_head.npz; nothing here needs
scikit-learn. Five heads share the features of detectors/text_features.py:

- `undress_full` and `help_full` read the encoder's embedding, the n-grams and the grammar;
  `mlp`, a one-layer network on the embedding alone, adds its logit to `undress_full`'s;
- `undress_fast` and `help_fast` read the n-grams and the grammar only: the scores of a
  window the encoder does not read, and the fallback when the encoder is unavailable;
- `gate` reads the same cheap features and answers a broader question: does this window talk
  about what requests and their look-alikes talk about (bodies, clothes, pictures, image AIs,
  harm done with them)? It is trained with every corpus line as 1 and ordinary chat as 0. The
  encoder runs only when `gate` reaches the threshold `gate` (chosen on the dev split so that
  dev recall does not drop), when the grammar finds a pattern, when the message addresses an
  image AI, or when the window's n-grams are unfamiliar (a language the training barely covers).

`seen` marks the n-gram buckets that occur in the training lines; `coverage()` is the share
of a window's buckets among them. `meta` records the training-data hash, which is part of the
detector's version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from detectors.text_features import DENSE_NAMES, NGRAM_BUCKETS

HEAD_FILE = Path(__file__).parent / "data" / "text_head.npz"
HEADS = ("undress_full", "undress_fast", "help_full", "help_fast", "gate")
FIRST_STAGE = ("undress_fast", "help_fast", "gate")


@dataclass(frozen=True)
class Logistic:
    """One logistic regression over (n-gram buckets, dense features, embedding)."""

    ngram: np.ndarray  # (NGRAM_BUCKETS,) float32
    dense: np.ndarray  # (len(DENSE_NAMES),)
    embedding: np.ndarray  # (384,), zeros for the fast heads
    bias: float

    def logit(
        self, buckets: np.ndarray, dense: np.ndarray, embedding: np.ndarray | None = None
    ) -> float:
        value = self.bias + float(self.dense @ dense)
        if len(buckets):
            value += float(self.ngram[buckets].sum()) / float(np.sqrt(len(buckets)))
        if embedding is not None:
            value += float(self.embedding @ embedding)
        return value


@dataclass(frozen=True)
class Mlp:
    """One hidden layer (ReLU) on the encoder's embedding alone; its logit is added to
    `undress_full`'s with weight `blend`: the encoder's evidence is not linear in its vector."""

    w1: np.ndarray  # (384, hidden)
    b1: np.ndarray
    w2: np.ndarray  # (hidden,)
    b2: float
    blend: float

    def logit(self, embedding: np.ndarray) -> float:
        hidden = np.maximum(embedding @ self.w1 + self.b1, 0.0)
        return self.blend * (float(hidden @ self.w2) + self.b2)


@dataclass(frozen=True)
class TextHead:
    heads: dict[str, Logistic]
    seen: np.ndarray  # (NGRAM_BUCKETS,) bool
    gate: float  # `gate` head probability from which the encoder runs
    coverage_min: float  # below this share of familiar buckets the encoder runs too
    meta: dict[str, object]
    mlp: Mlp | None = None  # added to undress_full when present

    def undress_full(self, buckets: np.ndarray, dense: np.ndarray, embedding: np.ndarray) -> float:
        """The full undress logit: the logistic head plus the embedding MLP."""
        value = self.heads["undress_full"].logit(buckets, dense, embedding)
        return value + (self.mlp.logit(embedding) if self.mlp is not None else 0.0)

    @property
    def training_hash(self) -> str:
        return str(self.meta.get("training_hash", "untrained"))[:10]

    def first_stage(self, buckets: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Logits of FIRST_STAGE (the heads without the embedding) in one pass over the buckets."""
        ngram, dense_w, bias = self._stacked
        value = bias + dense_w @ dense
        if len(buckets):
            value = value + ngram[buckets].sum(axis=0) / np.float32(np.sqrt(len(buckets)))
        return value

    @cached_property
    def _stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [self.heads[name] for name in FIRST_STAGE]
        return (
            np.stack([h.ngram for h in parts], axis=1).astype(np.float32),
            np.stack([h.dense for h in parts]).astype(np.float32),
            np.asarray([h.bias for h in parts], np.float32),
        )

    def coverage(self, buckets: np.ndarray) -> float:
        return float(self.seen[buckets].mean()) if len(buckets) else 1.0

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name, head in self.heads.items():
            arrays[f"{name}.ngram"] = head.ngram.astype(np.float16)
            arrays[f"{name}.dense"] = head.dense.astype(np.float32)
            arrays[f"{name}.embedding"] = head.embedding.astype(np.float32)
            arrays[f"{name}.bias"] = np.asarray([head.bias], np.float64)
        if self.mlp is not None:
            arrays["mlp.w1"] = self.mlp.w1.astype(np.float32)
            arrays["mlp.b1"] = self.mlp.b1.astype(np.float32)
            arrays["mlp.w2"] = self.mlp.w2.astype(np.float32)
            arrays["mlp.b"] = np.asarray([self.mlp.b2, self.mlp.blend], np.float64)
        arrays["seen"] = np.packbits(self.seen)
        arrays["gate"] = np.asarray([self.gate, self.coverage_min], np.float64)
        arrays["meta"] = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), np.uint8)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle


def load_head(path: Path = HEAD_FILE) -> TextHead:
    """Read the head; raises ValueError when its shapes do not match these features."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        if tuple(meta.get("dense_names", ())) != DENSE_NAMES:
            raise ValueError(
                f"{path.name} was trained on other features; retrain it with "
                "python scripts/train_text_head.py"
            )
        heads = {}
        for name in HEADS:
            ngram = data[f"{name}.ngram"].astype(np.float32)
            if ngram.shape != (NGRAM_BUCKETS,):
                raise ValueError(f"{path.name}: {name} has {ngram.shape} n-gram weights")
            heads[name] = Logistic(
                ngram,
                data[f"{name}.dense"],
                data[f"{name}.embedding"],
                float(data[f"{name}.bias"][0]),
            )
        seen = np.unpackbits(data["seen"])[:NGRAM_BUCKETS].astype(bool)
        gate, coverage_min = (float(x) for x in data["gate"])
        mlp = None
        if "mlp.w1" in data.files:
            b2, blend = (float(x) for x in data["mlp.b"])
            mlp = Mlp(data["mlp.w1"], data["mlp.b1"], data["mlp.w2"], b2, blend)
    return TextHead(heads, seen, gate, coverage_min, meta, mlp)
