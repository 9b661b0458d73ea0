"""Evaluate the text detector on labelled sets:
`python -m detectors.evaluate_text FILE.tsv... [--reply-context] [--split test] [--no-encoder]
[--head PATH]`.

A set is a TSV with the header `id lang kind text label` (label 1 = undress request), or the
old three-label set (detectors/text_corpus.py reads both). A line is predicted as a request
when `undress_request` reaches its review threshold in detectors/fusion.py and
`help_request` does not (a victim is never a suspect). `--reply-context` scores every line as
a reply to an image addressed to an image AI; `--split` keeps one split of the frozen rule.
Prints precision, recall and F1 overall, per language and per kind, the share of news lines
flagged, and every error. Always exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.verdict import DEFAULT_TIERS
from detectors.base import HELP_REQUEST, UNDRESS_REQUEST, Detection
from detectors.text_corpus import REQUEST_KINDS, LabelledLine, read_tsv
from detectors.text_head import HEAD_FILE
from detectors.text_request import UndressRequestDetector

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "undress_requests.tsv"


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, label: int, predicted: bool) -> Counts:
        return Counts(
            self.tp + (label == 1 and predicted),
            self.fp + (label == 0 and predicted),
            self.fn + (label == 1 and not predicted),
            self.tn + (label == 0 and not predicted),
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def flagged(self) -> float:
        """Share of lines predicted as requests (for benign kinds: the false-alarm rate)."""
        return (self.tp + self.fp) / self.n if self.n else 0.0


@dataclass
class Evaluation:
    overall: Counts = field(default_factory=Counts)
    by_lang: dict[str, Counts] = field(default_factory=dict)
    by_kind: dict[str, Counts] = field(default_factory=dict)
    errors: list[tuple[LabelledLine, Detection]] = field(default_factory=list)
    help_flagged: int = 0  # help_request lines predicted as requests (must stay 0)


def predict(detection: Detection) -> bool:
    """A request at the review thresholds of detectors/fusion.py, help first."""
    if detection.scores.get(HELP_REQUEST, 0.0) >= DEFAULT_TIERS[HELP_REQUEST].review:
        return False
    return detection.scores.get(UNDRESS_REQUEST, 0.0) >= DEFAULT_TIERS[UNDRESS_REQUEST].review


async def evaluate(
    lines: Sequence[LabelledLine], detector: UndressRequestDetector, reply_context: bool = False
) -> Evaluation:
    """Run the detector on every line and count its predictions."""
    await detector.load()
    detections = await detector.detect([line.item(reply_context) for line in lines])
    result = Evaluation()
    for line, detection in zip(lines, detections, strict=True):
        predicted = predict(detection)
        result.overall = result.overall.add(line.label, predicted)
        result.by_lang[line.lang] = result.by_lang.get(line.lang, Counts()).add(
            line.label, predicted
        )
        result.by_kind[line.kind] = result.by_kind.get(line.kind, Counts()).add(
            line.label, predicted
        )
        if predicted != bool(line.label):
            result.errors.append((line, detection))
        result.help_flagged += line.kind == "help_request" and predicted
    result.by_lang = dict(sorted(result.by_lang.items()))
    result.by_kind = dict(
        sorted(result.by_kind.items(), key=lambda kv: (kv[0] not in REQUEST_KINDS, kv[0]))
    )
    return result


def _row(name: str, c: Counts) -> str:
    return (
        f"{name:<14}{c.precision:>10.3f}{c.recall:>8.3f}{c.f1:>8.3f}"
        f"{c.tp + c.fn:>7}{c.n:>7}{c.flagged:>9.3f}"
    )


def render(evaluation: Evaluation) -> str:
    """The report as plain text (also what the tests read when they fail)."""
    head = f"{'':<14}{'precision':>10}{'recall':>8}{'f1':>8}{'req':>7}{'lines':>7}{'flagged':>9}"
    lines = [head, _row("overall", evaluation.overall), "", "per language", head]
    lines += [_row(lang, c) for lang, c in evaluation.by_lang.items()]
    lines += ["", "per kind (benign kinds: 'flagged' is the false-alarm rate)", head]
    lines += [_row(kind, c) for kind, c in evaluation.by_kind.items()]
    news = evaluation.by_kind.get("news")
    if news is not None:
        lines += ["", f"news flagged: {news.fp}/{news.n} = {news.flagged:.3f}"]
    lines += [f"help requests flagged as requests: {evaluation.help_flagged}"]
    lines += ["", f"errors ({len(evaluation.errors)})"]
    for line, detection in evaluation.errors:
        scores = " ".join(f"{k}={v:.2f}" for k, v in detection.scores.items())
        verdict = "missed" if line.label else "false alarm"
        lines.append(f"  {line.id} [{line.kind}] {verdict} ({scores}): {line.text}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    reply_context = "--reply-context" in args
    use_encoder = "--no-encoder" not in args
    split = None
    if "--split" in args:
        split = args[args.index("--split") + 1]
        args.remove("--split")
        args.remove(split)
    head = HEAD_FILE
    if "--head" in args:  # a trial head (scripts/train_text_head.py --out PATH)
        head = Path(args[args.index("--head") + 1])
        args.remove("--head")
        args.remove(str(head))
    paths = [Path(a) for a in args if not a.startswith("--")] or [DEFAULT_SET]
    lines = [line for path in paths for line in read_tsv(path)]
    if split is not None:
        lines = [line for line in lines if line.split == split]
    detector = UndressRequestDetector(head_path=head, use_encoder=use_encoder)
    evaluation = asyncio.run(evaluate(lines, detector, reply_context))
    names = ", ".join(str(p) for p in paths) if len(paths) <= 3 else f"{len(paths)} files"
    print(
        f"{names} — {len(lines)} lines{f' (split {split})' if split else ''}"
        f"{' — reply context' if reply_context else ''} — detector text@{detector.version}"
        f" — encoder: {detector.encoder_state}"
    )
    print(render(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
