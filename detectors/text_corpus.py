"""Labelled text sets for the undress-request detector: reading them and splitting them.

A set is a TSV with the header `id lang kind text label` (label 1 = undress request). The id
is `<lang>-<template>-<variant>`: variants of one template are near-duplicates written from
one idea, so the split is by template — a template's variants all fall in one split, and the
split of a template is a pure function of `lang-template` (no seed, no file order), so new
lines never move old ones between splits. The rule is frozen: the test manifest in
scripts/text_split/ was written with it before any training run.

The old three-label set (tests/data/undress_requests.tsv: label, replies_to_image,
addresses_image_ai, text) is read too, as lines of the same shape with their context kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.base import HELP_REQUEST, UNDRESS_REQUEST, TextInput

HEADER = ("id", "lang", "kind", "text", "label")
REQUEST_KINDS = ("explicit", "implicit", "command", "human_editor", "polite", "obfuscated")
BENIGN_KINDS = (
    "news",
    "benign_edit",
    "benign_ai",
    "shopping",
    "false_friend",
    "art",
    "chat",
    "help_request",
)
# The frozen split rule: sha256("lang-template") read as a fraction of 2**32.
TRAIN_BELOW = 0.70
DEV_BELOW = 0.85
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class LabelledLine:
    """One labelled message; `template` groups the near-duplicate variants of one idea."""

    id: str
    lang: str
    kind: str
    text: str
    label: int  # 1 = undress request
    replies_to_image: bool = False
    addresses_image_ai: bool = False
    source: str = ""  # file:line, for error listings

    @property
    def template(self) -> str:
        """`lang-template`: the unit of the split."""
        parts = self.id.split("-")
        return "-".join(parts[:2]) if len(parts) >= 2 else self.id

    @property
    def split(self) -> str:
        return split_of(self.template)

    def item(self, reply_context: bool = False) -> TextInput:
        """The message as the detector sees it; `reply_context` sets both context flags."""
        return TextInput(
            self.text,
            replies_to_image=reply_context or self.replies_to_image,
            addresses_image_ai=reply_context or self.addresses_image_ai,
            source=self.source,
        )


def split_of(template: str) -> str:
    """train / dev / test of a `lang-template` key (the frozen rule; see the module docstring)."""
    fraction = int(hashlib.sha256(template.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    if fraction < TRAIN_BELOW:
        return "train"
    return "dev" if fraction < DEV_BELOW else "test"


def read_tsv(path: Path) -> list[LabelledLine]:
    """Lines of a labelled TSV in either format; raises ValueError naming a malformed line."""
    text = path.read_text("utf-8")
    first = text.split("\n", 1)[0].rstrip("\r")
    if tuple(first.split("\t")) == HEADER:
        return _read_five_columns(path, text)
    return _read_old_format(path, text)


def _read_five_columns(path: Path, text: str) -> list[LabelledLine]:
    lines: list[LabelledLine] = []
    for number, raw in enumerate(text.splitlines()[1:], start=2):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split("\t")
        if len(parts) != 5 or parts[4].strip() not in ("0", "1"):
            raise ValueError(f"{path}:{number}: expected id, lang, kind, text, 0/1: {raw!r}")
        ident, lang, kind, message, label = (p.strip() for p in parts)
        lines.append(
            LabelledLine(ident, lang, kind, message, int(label), source=f"{path.name}:{number}")
        )
    return lines


def _read_old_format(path: Path, text: str) -> list[LabelledLine]:
    """The old set: label, replies_to_image, addresses_image_ai, text; `# lang=xx` comments."""
    labels = {
        UNDRESS_REQUEST: (1, "explicit"),
        HELP_REQUEST: (0, "help_request"),
        "benign": (0, "benign"),
    }
    lines: list[LabelledLine] = []
    lang = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if raw.startswith("#"):
            for word in raw[1:].split():
                key, sep, value = word.partition("=")
                if sep and key == "lang":
                    lang = value
            continue
        parts = raw.split("\t", 3)
        if (
            len(parts) != 4
            or parts[0] not in labels
            or parts[1] not in "01"
            or parts[2] not in "01"
        ):
            raise ValueError(f"{path}:{number}: expected label, 0/1, 0/1, text: {raw!r}")
        label, kind = labels[parts[0]]
        lines.append(
            LabelledLine(
                f"old{lang}-{number}-1",
                lang,
                kind,
                parts[3],
                label,
                parts[1] == "1",
                parts[2] == "1",
                f"{path.name}:{number}",
            )
        )
    return lines


def read_many(paths: Iterable[Path]) -> list[LabelledLine]:
    """Every line of every file, in path order; duplicate ids raise ValueError."""
    out: list[LabelledLine] = []
    seen: set[str] = set()
    for path in paths:
        for line in read_tsv(path):
            if line.id in seen:
                raise ValueError(f"{line.source}: duplicate id {line.id}")
            seen.add(line.id)
            out.append(line)
    return out


def manifest(lines: Sequence[LabelledLine], split: str = "test") -> str:
    """The ids of one split, sorted, one a line (what scripts/text_split/ freezes)."""
    return "".join(f"{i}\n" for i in sorted(line.id for line in lines if line.split == split))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
