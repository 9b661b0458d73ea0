"""Calibration: review and block thresholds fitted on the deployer's own labelled images.

A labelled folder holds `flag/` (images that must be flagged) and `ok/` (images that must pass),
searched recursively. Per category, from the scores of both sets:

- block: the lowest threshold whose precision (flagged images among those at or above it) is at
  least `min_precision` (default 0.95): quarantine must rarely hit an innocent image;
- review: the highest threshold that still reaches `min_recall` (default 0.95) of the flag set,
  never above block: review tickets are cheap, misses are not.

Both are then moved halfway down to the next lower score in the set, which changes nothing on
the labelled images and leaves a margin for new ones.

Each detector is fitted on its own scores (CLIP and nsfw have different score scales; fusion
reads each against its own tiers). A fit needs at least MIN_PER_LABEL images of each label: on
five images the old fit once chose a review threshold of 1e-05, which then flagged 183 of 206.

Results are stored in the thresholds file (detectors.fusion.Thresholds.load reads it): CLIP's
under calibration_key(model, pretrained), a bundled detector's under
detector_calibration_key(name), merged with what other models and categories already have.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.core.verdict import calibration_key, detector_calibration_key

LABELS = ("flag", "ok")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif"}
MIN_PER_LABEL = 20
IMBALANCE = 5.0  # one label more than five times the other: warn
TABLE_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


class CalibrationError(ValueError):
    """The labelled folder or the scores cannot be used; the message says why."""


@dataclass(frozen=True)
class OperatingPoint:
    """What a threshold does on the labelled set (flagged = score ≥ threshold)."""

    threshold: float
    precision: float
    recall: float
    flagged: int
    true_positives: int


@dataclass(frozen=True)
class CategoryFit:
    category: str
    review: OperatingPoint
    block: OperatingPoint
    block_reached: bool  # False: no threshold reached min_precision, block set to 1.0
    positives: int
    negatives: int


def labelled_images(folder: Path) -> list[tuple[Path, bool]]:
    """(image path, is_flag) for FOLDER/flag/** and FOLDER/ok/**, sorted. CalibrationError when
    the folder or a label subfolder is missing or empty."""
    if not folder.is_dir():
        raise CalibrationError(f"{folder} is not a folder")
    found: list[tuple[Path, bool]] = []
    for label in LABELS:
        sub = folder / label
        if not sub.is_dir():
            raise CalibrationError(f"{folder} needs a `{label}/` subfolder (labels: flag/, ok/)")
        images = sorted(
            p
            for p in sub.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not images:
            raise CalibrationError(f"{sub} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        found.extend((path, label == "flag") for path in images)
    return found


def check_counts(positives: int, negatives: int) -> str | None:
    """CalibrationError below MIN_PER_LABEL images of a label; a warning (or None) when one label
    outnumbers the other by more than IMBALANCE to one."""
    if min(positives, negatives) < MIN_PER_LABEL:
        raise CalibrationError(
            f"{positives} flag and {negatives} ok images: at least {MIN_PER_LABEL} of each are "
            "needed, because thresholds fitted on a handful of images fit those images and not "
            "the next ones (on 5 images a review threshold of 1e-05 once flagged 183 of 206)"
        )
    if max(positives, negatives) > IMBALANCE * min(positives, negatives):
        return (
            f"{positives} flag against {negatives} ok images: the larger side decides the "
            "thresholds; add images to the smaller one for a fairer fit"
        )
    return None


def storage_key(detector: str, model: str, pretrained: str) -> str:
    """Where a detector's fitted tiers live in the thresholds file."""
    return (
        calibration_key(model, pretrained)
        if detector == "clip"
        else detector_calibration_key(detector)
    )


def operating_point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> OperatingPoint:
    flagged = scores >= threshold
    tp = int((flagged & labels).sum())
    n_flagged = int(flagged.sum())
    positives = int(labels.sum())
    precision = tp / n_flagged if n_flagged else 1.0
    recall = tp / positives if positives else 0.0
    return OperatingPoint(threshold, precision, recall, n_flagged, tp)


def _floor(value: float) -> float:
    # Thresholds are compared with ≥: rounding down keeps the image that defined the threshold.
    return math.floor(value * 1e6) / 1e6


def fit_category(
    category: str,
    scores: Sequence[float],
    is_flag: Sequence[bool],
    *,
    min_precision: float = 0.95,
    min_recall: float = 0.95,
) -> CategoryFit:
    """Fit one category's review and block thresholds (see the module docstring)."""
    if not 0 < min_precision <= 1 or not 0 < min_recall <= 1:
        raise CalibrationError("min precision and min recall must be in (0, 1]")
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_flag, dtype=bool)
    if len(values) != len(labels) or not labels.any() or labels.all():
        raise CalibrationError("calibration needs scores for both flag and ok images")
    candidates = sorted({_floor(float(v)) for v in values})  # ascending
    points = [operating_point(values, labels, t) for t in candidates]

    def widened(index: int) -> OperatingPoint:
        # Halfway down to the next lower score: identical on the labelled set (no image lies in
        # between) but it leaves room for unseen images that score a little lower.
        if index == 0:
            return points[0]
        middle = _floor((candidates[index - 1] + candidates[index]) / 2)
        if middle <= candidates[index - 1]:
            return points[index]
        return operating_point(values, labels, middle)

    block_index = next((i for i, p in enumerate(points) if p.precision >= min_precision), None)
    block_reached = block_index is not None
    block = (
        widened(block_index) if block_index is not None else operating_point(values, labels, 1.0)
    )
    recall_indices = [i for i, p in enumerate(points) if p.recall >= min_recall]
    review = widened(recall_indices[-1] if recall_indices else 0)
    if review.threshold > block.threshold:
        review = block
    return CategoryFit(
        category, review, block, block_reached, int(labels.sum()), int((~labels).sum())
    )


def table_points(
    scores: Sequence[float], is_flag: Sequence[bool], fit: CategoryFit
) -> list[OperatingPoint]:
    """Operating points on a fixed grid plus the two fitted thresholds, by threshold."""
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_flag, dtype=bool)
    thresholds = sorted({*TABLE_GRID, fit.review.threshold, fit.block.threshold})
    return [operating_point(values, labels, t) for t in thresholds]


def thresholds_entry(fits: Sequence[CategoryFit]) -> dict[str, dict[str, float]]:
    return {f.category: {"review": f.review.threshold, "block": f.block.threshold} for f in fits}


def write_thresholds(
    path: Path, key: str, entry: Mapping[str, Mapping[str, float]]
) -> dict[str, object]:
    """Merge `entry` into the thresholds file under `key` (storage_key), keeping other models,
    detectors and categories; written atomically. Returns the whole new content."""
    stored: dict[str, object] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CalibrationError(f"{path} is not a readable thresholds file: {exc}") from exc
        if not isinstance(stored, dict):
            raise CalibrationError(f"{path} is not a thresholds file (expected a JSON object)")
    current = stored.get(key)
    merged = dict(current) if isinstance(current, dict) else {}
    merged.update({name: dict(tier) for name, tier in entry.items()})
    stored[key] = merged
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, path)
    return stored
