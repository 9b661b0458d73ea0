"""`veille calibrate FOLDER [--category C]... [--min-precision P] [--min-recall R] [--json]`.

Scores FOLDER/flag/ and FOLDER/ok/ with the configured CLIP model, prints precision and recall
at a grid of thresholds, and writes the fitted review and block thresholds for this model and
pretrained tag into the thresholds file (`scan` and the bot read them). Exit 0 when written,
2 for a bad folder or configuration.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import EXIT_OK, console, fail, get_settings, stdout
from bot.core.i18n import t
from bot.settings import Settings
from detectors.base import DetectorError, ImageInput
from detectors.calibration import (
    CalibrationError,
    CategoryFit,
    fit_category,
    labelled_images,
    table_points,
    thresholds_entry,
    write_thresholds,
)
from detectors.clip_prompts import CLIP_CATEGORIES


async def score_folder(
    settings: Settings, images: list[tuple[Path, bool]], categories: list[str], quiet: bool
) -> tuple[dict[str, list[float]], list[bool], list[str]]:
    """Per-category scores and labels of every readable image; unreadable ones are listed."""
    from bot.core.scanner import prepare_image
    from bot.core.suite import clip_config
    from bot.media.decode import MediaError
    from detectors.clip import ClipDetector

    locale = settings.default_locale
    detector = ClipDetector(clip_config(settings))
    await detector.load()
    missing = [c for c in categories if c not in detector.categories]
    if missing:
        raise DetectorError(t("calibrate.no_prompts", locale, categories=", ".join(missing)))
    scores: dict[str, list[float]] = {c: [] for c in categories}
    labels: list[bool] = []
    skipped: list[str] = []
    batch: list[tuple[ImageInput, bool]] = []

    async def flush() -> None:
        detections = await detector.detect([item for item, _ in batch])
        for (_, is_flag), detection in zip(batch, detections, strict=True):
            labels.append(is_flag)
            for category in categories:
                scores[category].append(detection.scores.get(category, 0.0))
        batch.clear()

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, disable=quiet, transient=True)
    with progress:
        task = progress.add_task(t("calibrate.scoring", locale), total=len(images))
        for path, is_flag in images:
            try:
                data = await asyncio.to_thread(path.read_bytes)
                prepared = await asyncio.to_thread(
                    prepare_image, data, source=str(path), max_pixels=settings.max_image_pixels
                )
                batch.append((prepared.frames[0], is_flag))
            except (OSError, MediaError) as exc:
                skipped.append(f"{path}: {exc}")
            if len(batch) >= settings.batch_size:
                await flush()
            progress.advance(task)
        if batch:
            await flush()
    return scores, labels, skipped


def render_table(fit: CategoryFit, scores: list[float], labels: list[bool], locale: str) -> Table:
    table = Table(title=t("calibrate.table_title", locale, category=fit.category,
                          flag=fit.positives, ok=fit.negatives))
    for key in ("threshold", "precision", "recall", "flagged"):
        table.add_column(t(f"calibrate.col_{key}", locale), justify="right")
    table.add_column("")
    for point in table_points(scores, labels, fit):
        marks = [name for name, chosen in (("review", fit.review), ("block", fit.block))
                 if chosen.threshold == point.threshold]
        table.add_row(f"{point.threshold:.4f}", f"{point.precision:.3f}", f"{point.recall:.3f}",
                      str(point.flagged), " ".join(t(f"calibrate.mark_{m}", locale) for m in marks))
    return table


def register(cli: click.Group) -> None:
    """Adds the `calibrate` command to the `veille` group."""

    @cli.command()
    @click.argument("folder", type=click.Path(path_type=Path))
    @click.option("--category", "categories", multiple=True, default=("sexual",),
                  type=click.Choice(CLIP_CATEGORIES), show_default=True,
                  help="Category the flag/ images stand for (repeatable).")
    @click.option("--min-precision", type=click.FloatRange(0, 1, min_open=True), default=0.95,
                  show_default=True, help="Block threshold: lowest with at least this precision.")
    @click.option("--min-recall", type=click.FloatRange(0, 1, min_open=True), default=0.95,
                  show_default=True, help="Review threshold: highest with at least this recall.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def calibrate(folder: Path, categories: tuple[str, ...], min_precision: float,
                  min_recall: float, as_json: bool) -> None:
        """Fit review/block thresholds on FOLDER/flag/ and FOLDER/ok/ images."""
        settings = get_settings()
        locale = settings.default_locale
        try:
            images = labelled_images(folder)
        except CalibrationError as exc:
            fail(t("calibrate.bad_folder", locale, detail=str(exc)))
        wanted = list(dict.fromkeys(categories))
        try:
            scores, labels, skipped = asyncio.run(score_folder(settings, images, wanted, as_json))
        except DetectorError as exc:
            fail(t("cli.config_error", locale, detail=str(exc)))
        for line in skipped:
            console.print(f"[yellow]![/] {t('calibrate.skipped', locale, detail=line)}")
        try:
            fits = [fit_category(c, scores[c], labels, min_precision=min_precision,
                                 min_recall=min_recall) for c in wanted]
            entry = thresholds_entry(fits)
            write_thresholds(settings.thresholds_file, settings.clip_model,
                             settings.clip_pretrained, entry)
        except CalibrationError as exc:
            fail(t("calibrate.bad_folder", locale, detail=str(exc)))
        if as_json:
            stdout.print_json(json.dumps({
                "model": settings.clip_model, "pretrained": settings.clip_pretrained,
                "thresholds_file": str(settings.thresholds_file), "thresholds": entry,
                "images": len(labels), "skipped": skipped,
                "fits": {f.category: {
                    "review": {"threshold": f.review.threshold, "precision": f.review.precision,
                               "recall": f.review.recall},
                    "block": {"threshold": f.block.threshold, "precision": f.block.precision,
                              "recall": f.block.recall},
                    "block_reached": f.block_reached,
                } for f in fits},
            }))
        else:
            for fit in fits:
                stdout.print(render_table(fit, scores[fit.category], labels, locale))
        for fit in fits:
            if not fit.block_reached:
                console.print("[yellow]![/] " + t("calibrate.block_unreached", locale,
                              category=fit.category, precision=min_precision))
        console.print(t("calibrate.written", locale, path=settings.thresholds_file,
                        model=settings.clip_model, pretrained=settings.clip_pretrained))
        raise SystemExit(EXIT_OK)
