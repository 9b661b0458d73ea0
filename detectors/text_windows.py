"""Where a long message is read: the candidate windows of its text (sentences, clauses, clauses
trimmed of a word or two, neighbouring clauses together), as token ranges.

A request hidden in 20,000 characters of padding is found because each window is short enough
to be scored exactly as a message of its own, which is what the head was trained on; which
windows are scored, and how, is `detectors/text_request.py`'s business.
"""

from __future__ import annotations

import re

import numpy as np

from detectors.text_normalise import Normaliser, Token

# Windows of a long message (see `candidate_windows`): sentences and clauses of at most
# SEGMENT_TOKENS words (a longer one in overlapping pieces, and runs of SUB_TOKENS words).
SEGMENT_TOKENS = 32
SUB_TOKENS = (4, 8)
SUB_FROM = SEGMENT_TOKENS  # clauses longer than this are also read in runs of SUB_TOKENS
EDGE_TRIM = 2  # a clause is also read without its first or last one or two words
# A sentence ends at one of these (and a line break); a clause also at commas, colons, dashes
# and brackets.
_SENTENCE_END = re.compile(r"[.!?;…。！？；\n\r\u2029\u2028]")
_CLAUSE_END = re.compile(r"[.!?;…。！？；\n\r\u2029\u2028,:—–()、，：]")
# Quotation marks (not the apostrophe, which is also inside words: "she's", "l'image").
_QUOTE = re.compile(r"[\"«»„“”‟「」『』‹›〝〞＂]")
JOINED = 3  # up to this many neighbouring clauses make one window


def tokens_of(normaliser: Normaliser, text: str, spans: list[tuple[int, int]]) -> list[Token]:
    """The tokens of the parts of `text` that are read (text_features.scanned_spans)."""
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


def candidate_windows(text: str, tokens: list[Token]) -> tuple[np.ndarray, np.ndarray]:
    """[first, last) token ranges of a long message's candidate windows. Its sentences (cut at
    a sentence end or a line break; one longer than SEGMENT_TOKENS in overlapping pieces) come
    first, the message's head first of all. Then its clauses (cut at commas, colons, dashes
    and brackets too): each clause, each clause without its first or last EDGE_TRIM words (a
    request glued to a word or two of padding), runs of SUB_TOKENS words inside a clause
    longer than SEGMENT_TOKENS, and up to JOINED neighbouring clauses read together (a request
    may run over two). A clause window that holds or touches a quotation mark is left out: a
    quoted phrase ("asked Grok to 'undress her'") is read with the sentence that quotes it."""
    count = len(tokens)
    starts = np.fromiter((t.start for t in tokens), np.int64, count)
    ends = np.fromiter((t.end for t in tokens), np.int64, count)

    def bounds(pattern: re.Pattern[str]) -> np.ndarray:
        marks = np.fromiter((m.start() for m in pattern.finditer(text)), np.int64)
        # A unit ends between tokens k-1 and k when a mark lies in the gap between them.
        cut = np.searchsorted(marks, starts[1:]) > np.searchsorted(marks, ends[:-1])
        return np.concatenate([[0], np.nonzero(cut)[0] + 1, [count]]).astype(np.int64)

    half = SEGMENT_TOKENS // 2
    sentences: list[tuple[int, int]] = []
    edges = bounds(_SENTENCE_END)
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if b - a <= SEGMENT_TOKENS:
            sentences.append((a, b))
        else:
            sentences += [(at, min(at + SEGMENT_TOKENS, b)) for at in range(a, b - half, half)]
    clauses: list[tuple[int, int]] = []
    edges = bounds(_CLAUSE_END)
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if b - a <= SEGMENT_TOKENS:
            clauses.append((a, b))
        for cut in range(1, EDGE_TRIM + 1):  # a word or two of padding glued to either end
            if b - a - cut >= 2:
                clauses += [(a, b - cut), (a + cut, b)]
        for size in SUB_TOKENS:  # a clause longer than a window: runs inside it as well
            if b - a > max(SUB_FROM, size):
                clauses += [(at, at + size) for at in [*range(a, b - size, size // 2), b - size]]
    for span in range(2, JOINED + 1):  # neighbouring clauses read together
        if len(edges) > span:
            fits = edges[span:] - edges[:-span] <= SEGMENT_TOKENS
            clauses += zip(edges[:-span][fits].tolist(), edges[span:][fits].tolist(), strict=True)
    first = np.asarray([r[0] for r in sentences + clauses], np.int64)
    last = np.asarray([r[1] for r in sentences + clauses], np.int64)
    quotes = np.fromiter((m.start() for m in _QUOTE.finditer(text)), np.int64)
    if len(quotes):
        # Quotation marks from the character before the window to the one after it.
        begin, end = starts[first] - 1, ends[last - 1] + 1
        quoted = np.searchsorted(quotes, end) > np.searchsorted(quotes, begin)
        keep = ~quoted
        keep[: len(sentences)] = True
        first, last = first[keep], last[keep]
    return first, last


def window_span(text: str, tokens: list[Token], first: int, last: int) -> tuple[int, int]:
    """The characters of tokens[first:last], with a bot command's sign before the first and
    the punctuation that closes the last one."""
    start, end = tokens[first].start, tokens[last - 1].end
    floor = tokens[first - 1].end if first > 0 else 0
    while start > floor and text[start - 1] in _OPENING:  # "/imagine", "!img": the command
        start -= 1
    limit = tokens[last].start if last < len(tokens) else len(text)
    while end < limit and text[end] in _CLOSING:
        end += 1
    return start, end


_OPENING = frozenset("/!.#$")
_CLOSING = frozenset(".!?…。！？\"'»”’)]")
