"""Evaluate the text detector on a labelled set: `python -m detectors.evaluate_text [FILE.tsv]`.

The set is a TSV of `label<TAB>replies_to_image<TAB>addresses_image_ai<TAB>text`, label one of
undress_request, help_request, benign. Comment lines (`#`) may carry `lang=xx split=name`,
which apply to the lines below them. A message is predicted as the category whose score
reaches its review threshold in detectors/fusion.py (help first: a victim is never a suspect),
else benign. Prints per-label precision, recall, F1 and support, the confusion between labels,
per-language and per-split recall, and every misclassified line. Always exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detectors.base import HELP_REQUEST, UNDRESS_REQUEST, Detection, TextInput
from detectors.fusion import DEFAULT_TIERS
from detectors.text_request import UndressRequestDetector

BENIGN = "benign"
LABELS = (UNDRESS_REQUEST, HELP_REQUEST, BENIGN)
DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "undress_requests.tsv"


@dataclass(frozen=True)
class Example:
    label: str
    item: TextInput
    lang: str = ""
    split: str = ""
    line: int = 0


@dataclass(frozen=True)
class LabelStats:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    stats: dict[str, LabelStats]
    confusion: Counter[tuple[str, str]]  # (true, predicted) -> count
    misclassified: list[tuple[Example, str, Detection]] = field(default_factory=list)
    by_group: dict[str, tuple[int, int]] = field(default_factory=dict)  # group -> (right, total)


def load_examples(path: Path) -> list[Example]:
    """Parse the labelled TSV; raises ValueError naming the line when one is malformed."""
    examples: list[Example] = []
    meta: dict[str, str] = {}
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        if raw.startswith("#"):
            for word in raw[1:].split():
                key, sep, value = word.partition("=")
                if sep and key in ("lang", "split"):
                    meta[key] = value
            continue
        parts = raw.split("\t", 3)
        if (
            len(parts) != 4
            or parts[0] not in LABELS
            or parts[1] not in "01"
            or parts[2] not in "01"
        ):
            raise ValueError(f"{path}:{number}: expected label, 0/1, 0/1, text: {raw!r}")
        item = TextInput(
            parts[3], replies_to_image=parts[1] == "1", addresses_image_ai=parts[2] == "1"
        )
        examples.append(
            Example(parts[0], item, meta.get("lang", ""), meta.get("split", ""), number)
        )
    return examples


def predict(detection: Detection) -> str:
    """The label a detection implies at the review thresholds of detectors/fusion.py."""
    if detection.scores.get(HELP_REQUEST, 0.0) >= DEFAULT_TIERS[HELP_REQUEST].review:
        return HELP_REQUEST
    if detection.scores.get(UNDRESS_REQUEST, 0.0) >= DEFAULT_TIERS[UNDRESS_REQUEST].review:
        return UNDRESS_REQUEST
    return BENIGN


async def evaluate(examples: Sequence[Example], detector: UndressRequestDetector) -> Evaluation:
    """Run the detector on every example and score its predictions per label."""
    await detector.load()
    detections = await detector.detect([e.item for e in examples])
    confusion: Counter[tuple[str, str]] = Counter()
    result = Evaluation({}, confusion)
    groups: dict[str, list[int]] = {}
    for example, detection in zip(examples, detections, strict=True):
        predicted = predict(detection)
        confusion[(example.label, predicted)] += 1
        if predicted != example.label:
            result.misclassified.append((example, predicted, detection))
        for group in (f"lang={example.lang}", f"split={example.split}"):
            right_total = groups.setdefault(group, [0, 0])
            right_total[0] += predicted == example.label
            right_total[1] += 1
    for label in LABELS:
        tp = confusion[(label, label)]
        predicted_n = sum(n for (_, p), n in confusion.items() if p == label)
        support = sum(n for (t, _), n in confusion.items() if t == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.stats[label] = LabelStats(precision, recall, f1, support)
    result.by_group = {g: (rt[0], rt[1]) for g, rt in sorted(groups.items())}
    return result


def render(evaluation: Evaluation) -> str:
    """The report as plain text (also what the tests read when they fail)."""
    lines = [f"{'label':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for label, s in evaluation.stats.items():
        lines.append(f"{label:<16}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}")
    lines += ["", "confusion (rows: true, columns: predicted)"]
    lines.append(f"{'':<16}" + "".join(f"{label:>17}" for label in LABELS))
    for true in LABELS:
        cells = "".join(f"{evaluation.confusion[(true, p)]:>17}" for p in LABELS)
        lines.append(f"{true:<16}{cells}")
    lines += ["", "accuracy per group"]
    for group, (right, total) in evaluation.by_group.items():
        lines.append(f"  {group:<16}{right:>4}/{total:<4} {right / total:.3f}")
    lines += ["", f"misclassified ({len(evaluation.misclassified)})"]
    for example, predicted, detection in evaluation.misclassified:
        scores = " ".join(f"{k}={v:.2f}" for k, v in detection.scores.items())
        flags = (
            f"img={int(example.item.replies_to_image)} ai={int(example.item.addresses_image_ai)}"
        )
        lines.append(
            f"  line {example.line} [{example.lang}] {example.label} -> {predicted} "
            f"({scores}; {flags}): {example.item.text}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else DEFAULT_SET
    examples = load_examples(path)
    detector = UndressRequestDetector()
    evaluation = asyncio.run(evaluate(examples, detector))
    print(f"{path} — {len(examples)} lines — detector text@{detector.version}")
    print(render(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
