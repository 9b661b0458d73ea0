"""Hash lists as plain values: what an import file or a banked image becomes before it is stored.

Reading a hash list and turning an image signature into bank entries is knowledge about hashes
(their kinds, lengths and the formats hash-sharing programmes export), so it lives here, next to
`detectors.hashes`; the store (bot/store/hash_repo.py) only keeps the `NewHash` values it is
given, valid by construction.

Accepted list formats (`read_hash_list`, `parse_hash_lines`), UTF-8, one record a line, `#`
comments and blank lines skipped:
- plain lists, one hex hash a line: 32 hex characters are MD5; 64 are PDQ *or* SHA-256, so a
  plain list of 64-character hashes needs `kind="pdq"` or `kind="sha256"`;
- CSV/TSV/semicolon files with a header naming a value column (`signal_value`, `hash`, `value`,
  `hash_value`, `indicator`) and optionally a type column (`signal_type`, `hash_type`, `kind`,
  `type`; values like `pdq`, `HASH_PDQ`, `photo_md5`, `sha256`) and a `quality` column — so
  ThreatExchange/HMA-style `signal_type,signal_value` exports load as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from detectors.hashes import (
    DEFAULT_MIN_QUALITY,
    EXACT_LENGTHS,
    ImageSignature,
    neardup_parts,
    normalise_value,
)

VALUE_COLUMNS = ("signal_value", "hash", "value", "hash_value", "indicator")
KIND_COLUMNS = ("signal_type", "hash_type", "kind", "type")

ParsedLine = tuple[int, "NewHash | str"]  # (line number, the hash or why the line is invalid)


@dataclass(frozen=True)
class NewHash:
    """One bank entry to store. The value is validated and normalised on construction
    (ValueError says what is wrong), so the store can take it as it is."""

    kind: str  # pdq | md5 | sha256 | neardup
    value: str
    quality: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", normalise_value(self.kind, self.value))


SignatureLike = ImageSignature | str | Mapping[str, object] | None


def signature_hashes(
    signature: SignatureLike,
    sha256: str = "",
    md5: str = "",
    *,
    with_neardup: bool = True,
    min_quality: int = DEFAULT_MIN_QUALITY,
) -> list[NewHash]:
    """The bank entries one image yields: digests always, PDQ only at quality ≥ `min_quality`.
    `signature` may be an ImageSignature, its `to_str()` form or the HashDetector's extras.
    `with_neardup=False` is for allow-listing: a moderator cleared this image, not every crop
    that shares a window with it."""
    if isinstance(signature, str):
        signature = ImageSignature.from_str(signature)
    elif isinstance(signature, Mapping):
        signature = ImageSignature.from_extras(signature)
    hashes = [NewHash(k, v) for k, v in (("sha256", sha256), ("md5", md5)) if v]
    if signature is not None:
        if signature.quality >= min_quality:
            hashes.append(NewHash("pdq", signature.pdq, signature.quality))
        if with_neardup:  # windows and keypoints: one row each (HashEntry.value ≤ 2,048)
            hashes += [
                NewHash("neardup", part, signature.quality)
                for part in neardup_parts(signature.neardup)
            ]
    return hashes


def _kind_of(label: str) -> str | None:
    """A type label from a hash-sharing export (`pdq`, `HASH_PDQ`, `photo_md5`...) as our kind."""
    flat = "".join(c for c in label.lower() if c.isalnum())
    for kind in ("pdq", "sha256", "md5"):
        if kind in flat:
            return kind
    return None


def _plain_kind(value: str, forced: str) -> str:
    if forced != "auto":
        return forced
    if len(value) == EXACT_LENGTHS["md5"]:
        return "md5"
    if len(value) == 64:
        raise ValueError(
            "64 hex characters may be PDQ or SHA-256: pass --kind pdq|sha256 "
            "or add a signal_type column"
        )
    raise ValueError(f"{len(value)} characters is no hash length Veille knows (32 or 64 hex)")


def parse_hash_lines(lines: Iterable[str], kind: str = "auto") -> Iterator[ParsedLine]:
    """(line number, NewHash or the reason the line is invalid) for every record line."""
    if kind not in ("auto", "pdq", "md5", "sha256"):
        raise ValueError(f"unknown kind {kind!r}")
    numbered = ((n, line.strip()) for n, line in enumerate(lines, start=1))
    records = ((n, line) for n, line in numbered if line and not line.startswith("#"))
    first = next(records, None)
    if first is None:
        return
    header_no, header = first
    delimiter = next((d for d in ("\t", ";", ",") if d in header), ",")
    columns = [c.strip().lower() for c in next(csv.reader([header], delimiter=delimiter))]
    value_col = next((columns.index(c) for c in VALUE_COLUMNS if c in columns), None)
    if value_col is None:  # no header: a plain list (its first line is a record too)
        for number, line in ((header_no, header), *records):
            value = line.split(delimiter)[0].strip().strip('"')
            try:
                yield number, NewHash(_plain_kind(value, kind), value)
            except ValueError as exc:
                yield number, str(exc)
        return
    kind_col = next((columns.index(c) for c in KIND_COLUMNS if c in columns), None)
    quality_col = columns.index("quality") if "quality" in columns else None
    for number, line in records:
        cells = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
        try:
            if len(cells) <= value_col:
                raise ValueError("missing the hash column")
            value = cells[value_col]
            row_kind = kind
            if kind_col is not None and kind_col < len(cells) and cells[kind_col]:
                label = _kind_of(cells[kind_col])
                if label is None:
                    raise ValueError(f"unsupported signal type {cells[kind_col]!r}")
                row_kind = label if kind == "auto" else kind
            row_kind = _plain_kind(value, row_kind)
            quality = None
            if quality_col is not None and quality_col < len(cells) and cells[quality_col]:
                quality = int(cells[quality_col])
            yield number, NewHash(row_kind, value, quality)
        except ValueError as exc:
            yield number, str(exc)


def read_hash_list(path: Path, kind: str = "auto") -> Iterator[ParsedLine]:
    """`parse_hash_lines` over a file, read lazily (lists of millions of lines stream through).
    Raises OSError, when iterated, if the file cannot be read."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        yield from parse_hash_lines(handle, kind)
