"""Lexicons of the text detectors, compiled to token patterns, and matching them in a message.

A lexicon file (detectors/data/*_lexicon.toml) maps language -> class -> terms. Each term is
normalised exactly like a message (detectors/text_normalise.py) into a pattern of skeletons;
"*" in a term matches 0 to `MAX_GAP` tokens. `Lexicon.match()` returns every `Hit` in a
message. The cost is bounded: patterns are indexed by their first skeleton, have at most a few
parts, and each gap tries at most `MAX_GAP + 1` lengths.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detectors.text_normalise import Normaliser, Token

GAP = "*"
MAX_GAP = 3


@dataclass(frozen=True)
class Hit:
    """One lexicon term found in a message: tokens [first, last] of the token list."""

    cls: str
    lang: str
    first: int
    last: int
    term: str

    def gap_to(self, other: Hit) -> int:
        """Tokens strictly between two hits; 0 when they touch or overlap."""
        if other.first > self.last:
            return other.first - self.last - 1
        if self.first > other.last:
            return self.first - other.last - 1
        return 0

    def same_span(self, other: Hit) -> bool:
        return self.first == other.first and self.last == other.last


@dataclass(frozen=True)
class _Pattern:
    parts: tuple[str, ...]
    cls: str
    lang: str
    term: str


class Lexicon:
    """Compiled terms of one or more lexicon files, sharing one normaliser."""

    def __init__(self, files: Sequence[Path], normaliser: Normaliser) -> None:
        self.normaliser = normaliser
        self.languages: list[str] = []
        self._index: dict[str, list[_Pattern]] = defaultdict(list)
        for path in files:
            table = tomllib.loads(path.read_text("utf-8"))
            for lang, classes in table.items():
                if lang not in self.languages:
                    self.languages.append(lang)
                for cls, terms in classes.items():
                    for term in terms:
                        self._add(term, cls, lang)
        normaliser.set_vocabulary(
            part for patterns in self._index.values() for p in patterns for part in p.parts
        )

    def _add(self, term: str, cls: str, lang: str) -> None:
        parts: list[str] = []
        for piece in term.split():
            if piece == GAP:
                parts.append(GAP)
                continue
            # The vocabulary is not set yet, so pieces are never cut as spaced-out runs.
            parts.extend(token.forms[0] for token in self.normaliser.tokens(piece))
        if not parts or parts[0] == GAP:
            raise ValueError(f"lexicon term {term!r} ({lang}.{cls}) must start with a word")
        self._index[parts[0]].append(_Pattern(tuple(parts), cls, lang, term))

    def match(self, tokens: Sequence[Token]) -> list[Hit]:
        """Every occurrence of every term, in token order."""
        hits: list[Hit] = []
        seen: set[tuple[str, str, int, int]] = set()
        for start, token in enumerate(tokens):
            for form in token.forms:
                for pattern in self._index.get(form, ()):
                    last = _match_from(pattern.parts, 1, tokens, start + 1)
                    if last is None:
                        continue
                    key = (pattern.cls, pattern.lang, start, last)
                    if key not in seen:
                        seen.add(key)
                        hits.append(Hit(pattern.cls, pattern.lang, start, last, pattern.term))
        return hits


def _match_from(parts: tuple[str, ...], k: int, tokens: Sequence[Token], at: int) -> int | None:
    """Index of the last token when parts[k:] match from tokens[at], else None."""
    if k == len(parts):
        return at - 1
    if parts[k] == GAP:
        for skip in range(MAX_GAP + 1):
            found = _match_from(parts, k + 1, tokens, at + skip)
            if found is not None:
                return found
        return None
    if at < len(tokens) and parts[k] in tokens[at].forms:
        return _match_from(parts, k + 1, tokens, at + 1)
    return None
