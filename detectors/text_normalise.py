"""Text normalisation for the text detectors: chat text to comparable word tokens.

Undress requests are typed to dodge filters ("r e m o v e", "n4k3d", "ＲＥＭＯＶＥ", "bіkini" with
a Cyrillic i, zero-width spaces, "👙"). `Normaliser.tokens()` undoes those tricks and returns
tokens whose `forms` are *skeletons* (casefolded, accents stripped, leetspeak read back,
repeated letters collapsed), each with the span of the original text it came from, so that a
reason can quote what the person actually wrote. Lexicon terms go through the same function,
so both sides of a comparison are skeletons. Every regex here is a single character class
under one quantifier: linear time on any input.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
SYMBOLS_FILE = DATA_DIR / "text_symbols.toml"

# Longer messages are cut: requests are short, and the cost must stay bounded for spam walls
# (pattern pairing in detectors/text_request.py is quadratic in the hits of one class).
MAX_CHARS = 20_000
MAX_TOKENS = 500
# Leetspeak digits and symbols read as letters, only inside tokens that also hold a letter
# ("n4k3d"), so that "15" or "2026" stay numbers. "1" is ambiguous (i or l): both are tried.
LEET = str.maketrans(
    {"4": "a", "3": "e", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s", "8": "b", "9": "g"}
)
# A word, possibly masked with asterisks inside ("n*ked"); "*" is outside the first class, so
# the pattern cannot backtrack.
_TOKEN = re.compile(r"(?:[^\W_]|[@$])+(?:\*+(?:[^\W_]|[@$])+)*")
_MASK = "*"
_MAX_MASKED_FORMS = 4
_REPEATS = re.compile(r"(.)\1+")
# A number with a unit of one or two letters ("8h", "10am", "4k", "2nd") is a quantity, not
# leetspeak: read back, "8h" would be "bh" (German for bra).
_QUANTITY = re.compile(r"\d+[^\W\d_]{1,2}")
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
# Spaced-out words ("u n d r e s s") are runs of one-character tokens separated by little.
_MIN_SPACED_RUN = 3
_MAX_SPACED_GAP = 3
_WORDS_KEPT = 1 << 14
_UNKNOWN: tuple[tuple[str, ...], bool] = ((), False)  # a sentinel: not in the word cache yet
# A long message is tokenised once, in pieces of about this many characters cut at a space.
_PIECE = 1000


@dataclass(frozen=True)
class Token:
    """One word of a message: its skeleton forms and its span [start, end) in the original text."""

    forms: tuple[str, ...]
    start: int
    end: int
    mention: bool = False  # written as "@name"


def skeleton(word: str) -> str:
    """Collapse repeated letters ("nuuude" -> "nude"); applied to messages and lexicon alike."""
    return _REPEATS.sub(r"\1", word)


class Normaliser:
    """Folds obfuscations away; built once from the symbol table (emoji and confusable letters)."""

    def __init__(self, symbols_file: Path = SYMBOLS_FILE) -> None:
        table = tomllib.loads(symbols_file.read_text("utf-8"))
        self.emoji: dict[str, str] = dict(table.get("emoji", {}))
        self.confusables: dict[str, str] = dict(table.get("confusables", {}))
        # Words a spaced-out run may be cut into; the lexicon sets it (see `set_vocabulary`).
        self.vocabulary: frozenset[str] = frozenset()
        self._longest_word = 0
        self._by_length: dict[int, list[str]] = {}
        self._folded: dict[str, str] = {}  # per character: chat repeats its letters
        # Per word as matched (forms, mention), bounded: chat repeats its words. Cleared when
        # the vocabulary changes, since masked words ("n*ked") are read against it.
        self._words: dict[str, tuple[tuple[str, ...], bool] | None] = {}

    def set_vocabulary(self, words: Iterable[str]) -> None:
        """Known skeletons used to cut spaced-out runs ("removeherclothes") back into words."""
        self.vocabulary = frozenset(w for w in words if len(w) > 1)
        self._words = {}
        self._longest_word = max((len(w) for w in self.vocabulary), default=0)
        self._by_length = {}
        for word in sorted(self.vocabulary):
            self._by_length.setdefault(len(word), []).append(word)

    def fold(self, text: str) -> tuple[str, list[int]]:
        """The folded text and, for each of its characters, the index of its source character."""
        out: list[str] = []
        origin: list[int] = []
        text = text[:MAX_CHARS]
        done = 0
        # ASCII runs fold to their lower case (NFKC and the symbol tables leave ASCII alone):
        # one C call per run instead of a Python step per character, for long messages.
        for run in _ASCII_RUN.finditer(text):
            self._fold_slow(text, done, run.start(), out, origin)
            out.append(run.group().lower())
            origin.extend(range(run.start(), run.end()))
            done = run.end()
        self._fold_slow(text, done, len(text), out, origin)
        return "".join(out), origin

    def _fold_slow(
        self, text: str, start: int, end: int, out: list[str], origin: list[int]
    ) -> None:
        for index in range(start, end):
            folded = self._fold_char(text[index])
            out.append(folded)
            origin.extend([index] * len(folded))

    def _fold_char(self, char: str) -> str:
        folded = self._folded.get(char)
        if folded is None:
            folded = self._fold_new(char)
            if len(self._folded) < 1 << 16:
                self._folded[char] = folded
        return folded

    def _fold_new(self, char: str) -> str:
        if char in self.emoji:
            return f" {self.emoji[char]} "
        if unicodedata.category(char) == "Cf":  # zero-width spaces and joiners, soft hyphens
            return ""
        folded = unicodedata.normalize("NFKC", char).casefold()
        folded = "".join(self.confusables.get(c, c) for c in folded)
        decomposed = unicodedata.normalize("NFKD", folded)
        return "".join(c for c in decomposed if not unicodedata.combining(c))

    def tokens(self, text: str) -> list[Token]:
        """The message as skeleton tokens with original spans; spaced-out runs are rejoined."""
        return self._tokens(text, 0, MAX_TOKENS)

    def _tokens(self, text: str, shift: int, cap: int) -> list[Token]:
        """`tokens()` with every span shifted by `shift`, at most `cap` tokens."""
        folded, origin = self.fold(text)
        raw: list[tuple[str, int, int]] = []  # (token text, start, end) in the folded text
        for match in _TOKEN.finditer(folded):
            raw.append((match.group(), match.start(), match.end()))

        tokens: list[Token] = []
        i = 0
        count = len(raw)
        while i < count and len(tokens) < cap:
            word, start, end = raw[i]
            if len(word) == 1:  # maybe a spaced-out run ("r e m o v e")
                j = i + 1
                while (
                    j < count
                    and len(raw[j][0]) == 1
                    and raw[j][1] - raw[j - 1][2] <= _MAX_SPACED_GAP
                ):
                    j += 1
                if j - i >= _MIN_SPACED_RUN:
                    rejoined = self._rejoin(raw[i:j], origin)
                    tokens.extend(
                        Token(t.forms, t.start + shift, t.end + shift, t.mention) for t in rejoined
                    )
                    i = j
                    continue
            token = self._token(word, origin[start] + shift, origin[end - 1] + 1 + shift)
            if token is not None:
                tokens.append(token)
            i += 1
        return tokens[:cap]

    def tokens_long(self, text: str, offset: int = 0) -> list[Token]:
        """`tokens()` of a message of any length, read in pieces cut at spaces, with spans
        shifted by `offset` and no cap on the count: long messages are then windowed over
        these tokens instead of normalising each overlapping window again."""
        out: list[Token] = []
        at = 0
        while at < len(text):
            end = min(at + _PIECE, len(text))
            if end < len(text):
                cut = text.rfind(" ", at + _PIECE // 2, end)
                end = cut + 1 if cut > 0 else end
            out.extend(self._tokens(text[at:end], at + offset, MAX_TOKENS))
            at = end
        return out

    def _token(self, word: str, start: int, end: int) -> Token | None:
        known = self._words.get(word, _UNKNOWN)
        if known is _UNKNOWN:
            known = self._word(word)
            if len(self._words) < _WORDS_KEPT:
                self._words[word] = known
        return None if known is None else Token(known[0], start, end, known[1])

    def _word(self, word: str) -> tuple[tuple[str, ...], bool] | None:
        """A token's forms and whether it is a mention, or None when it holds no word."""
        mention = word.startswith("@") and len(word) > 1
        if mention:
            word = word.lstrip("@")
        if word.isascii():
            # An ASCII token is letters, digits, "@", "$" and "*": it reads as a word unless
            # it is only those symbols (the same test as below, without a Python loop).
            if not word.strip("@$*"):
                return None
        elif not any(c.isalpha() or c.isdigit() for c in word):
            return None
        if _MASK in word:
            return self._unmask(word), mention
        return _forms(word), mention

    def _unmask(self, word: str) -> tuple[str, ...]:
        """Known words that a masked token ("n*ked", "und**ss") can stand for; one star per letter."""
        masked = skeleton(word.translate(LEET)).replace("1", "i")
        if sum(c != _MASK for c in masked) < 2:
            return (masked,)
        found = [
            known
            for known in self._by_length.get(len(masked), ())
            if all(m == _MASK or m == k for m, k in zip(masked, known, strict=True))
        ]
        return tuple(found[:_MAX_MASKED_FORMS]) or (masked,)

    def _rejoin(self, run: list[tuple[str, int, int]], origin: list[int]) -> list[Token]:
        """Rejoin a run of single characters into words.

        Wider gaps inside the run ("z i e h   s i e") mark word boundaries; a run with even
        gaps ("r.e.m.o.v.e.h.e.r") is cut into known words by `_segment`.
        """
        gaps = [run[k][1] - run[k - 1][2] for k in range(1, len(run))]
        narrow = min(gaps)
        groups: list[list[tuple[str, int, int]]] = [[run[0]]]
        for k in range(1, len(run)):
            if gaps[k - 1] > narrow:
                groups.append([])
            groups[-1].append(run[k])
        if len(groups) == 1:
            return self._segment(run, origin)
        out: list[Token] = []
        for group in groups:
            forms = _forms("".join(c for c, _, _ in group))
            if len(group) == 1 or any(form in self.vocabulary for form in forms):
                out.append(Token(forms, origin[group[0][1]], origin[group[-1][2] - 1] + 1))
            else:  # "l.a e.n b.i.k.i.n.i": a wide gap, yet several words in one group
                out.extend(self._segment(group, origin))
        return out

    def _segment(self, run: list[tuple[str, int, int]], origin: list[int]) -> list[Token]:
        """Cut a run into known words covering the most letters (dynamic programming)."""
        chars = [c for c, _, _ in run]
        if any(c.isalpha() for c in chars):
            chars = [c.replace("1", "i").translate(LEET) for c in chars]
        # Collapse repeated letters as `skeleton` does, remembering where each letter came from.
        letters: list[str] = []
        positions: list[int] = []
        for k, char in enumerate(chars):
            if not letters or letters[-1] != char:
                letters.append(char)
                positions.append(k)
        joined = "".join(letters)
        n = len(joined)
        # best[i]: (letters covered, -words) over joined[:i], and the word ending at i if any.
        best: list[tuple[int, int]] = [(0, 0)] + [(-1, 0)] * n
        back: list[int] = [0] * (n + 1)  # start of the word ending at i, or -1 for a skip
        for i in range(n):
            if best[i + 1] < best[i]:
                best[i + 1], back[i + 1] = best[i], -1
            for size in range(2, min(self._longest_word, n - i) + 1):
                if joined[i : i + size] in self.vocabulary:
                    covered, words = best[i]
                    candidate = (covered + size, words - 1)
                    if candidate > best[i + size]:
                        best[i + size], back[i + size] = candidate, i
        out: list[Token] = []
        end = n
        while end > 0:
            begin = back[end]
            if begin < 0:
                end -= 1
                continue
            first, last = run[positions[begin]], run[positions[end - 1]]
            out.append(Token((joined[begin:end],), origin[first[1]], origin[last[2] - 1] + 1))
            end = begin
        return out[::-1]


@lru_cache(maxsize=1 << 16)
def _forms(word: str) -> tuple[str, ...]:
    """Skeletons of one token: leetspeak is read back only when the token holds a letter.

    A word ending in "s" also gets its singular, the plural of English, French, Spanish,
    Portuguese and Dutch ("swimsuits", "nues", "bikinis"), so lexicons list singulars.
    """
    forms = _spellings(word)
    plural = forms[0]
    if len(plural) > 4 and plural.endswith("s"):
        return (*forms, plural[:-1])
    return forms


def _spellings(word: str) -> tuple[str, ...]:
    if not any(c.isalpha() for c in word):
        # All digits: a number, unless it spells a word ("513" for "sie"); keep both readings.
        if len(word) < 2 or word.translate(LEET).isdigit():
            return (skeleton(word),)
        spelled = skeleton(word.replace("1", "i").translate(LEET))
        return (skeleton(word), spelled) if spelled.isalpha() else (skeleton(word),)
    if _QUANTITY.fullmatch(word):
        return (skeleton(word),)
    as_i = skeleton(word.replace("1", "i").translate(LEET))
    as_l = skeleton(word.replace("1", "l").translate(LEET))
    return (as_i,) if as_i == as_l else (as_i, as_l)
