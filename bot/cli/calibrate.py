"""`veille calibrate FOLDER [--category C]... [--min-precision P] [--min-recall R] [--json]`.

Scores FOLDER/flag/ and FOLDER/ok/ with each configured image detector that has scores (CLIP,
nsfw), prints precision and recall at a grid of thresholds, and writes each detector's fitted
review and block thresholds into the thresholds file (`scan` and the bot read them): CLIP's for
this model and pretrained tag, nsfw's for its bundled model. Exit 0 when written, 2 for a bad
folder, too few images of a label (MIN_PER_LABEL), nothing to calibrate, or configuration.
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
    check_counts,
    fit_category,
    labelled_images,
    storage_key,
    table_points,
    thresholds_entry,
    write_thresholds,
)
from detectors.clip_prompts import CLIP_CATEGORIES

CALIBRATED = ("clip", "nsfw")  # image detectors whose scores have tiers to fit


async def score_folder(
    settings: Settings, images: list[tuple[Path, bool]], categories: list[str], quiet: bool
) -> tuple[dict[str, dict[str, list[float]]], list[bool], list[str]]:
    """Each configured scoring image detector's per-category scores ({detector: {category:
    scores}}) and the labels of every readable image; unreadable ones are listed."""
    from bot.core.scanner import prepare_image
    from bot.core.suite import detector_deps
    from bot.media.decode import MediaError
    from detectors.registry import build_detectors

    locale = settings.default_locale
    names = [n for n in settings.detector_names if n in CALIBRATED]
    if not names:
        raise CalibrationError(t("calibrate.nothing", locale))
    detectors = build_detectors(names, detector_deps(settings, names))
    await asyncio.gather(*(d.load() for d in detectors))
    wanted = {
        d.name: [c for c in categories if c in getattr(d, "categories", ())] for d in detectors
    }
    if "clip" in wanted and len(wanted["clip"]) < len(categories):
        missing = sorted(set(categories) - set(wanted["clip"]))
        raise DetectorError(t("calibrate.no_prompts", locale, categories=", ".join(missing)))
    detectors = [d for d in detectors if wanted[d.name]]
    if not detectors:
        raise CalibrationError(t("calibrate.nothing", locale))
    scores: dict[str, dict[str, list[float]]] = {
        d.name: {c: [] for c in wanted[d.name]} for d in detectors
    }
    labels: list[bool] = []
    skipped: list[str] = []
    batch: list[tuple[ImageInput, bool]] = []

    async def flush() -> None:
        found = await asyncio.gather(*(d.detect([item for item, _ in batch]) for d in detectors))
        labels.extend(is_flag for _, is_flag in batch)
        for detector, detections in zip(detectors, found, strict=True):
            for detection in detections:
                for category in wanted[detector.name]:
                    scores[detector.name][category].append(detection.scores.get(category, 0.0))
        batch.clear()

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
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


def render_table(
    detector: str, fit: CategoryFit, scores: list[float], labels: list[bool], locale: str
) -> Table:
    table = Table(
        title=t(
            "calibrate.table_title",
            locale,
            detector=detector,
            category=fit.category,
            flag=fit.positives,
            ok=fit.negatives,
        )
    )
    for key in ("threshold", "precision", "recall", "flagged"):
        table.add_column(t(f"calibrate.col_{key}", locale), justify="right")
    table.add_column("")
    for point in table_points(scores, labels, fit):
        marks = [
            name
            for name, chosen in (("review", fit.review), ("block", fit.block))
            if chosen.threshold == point.threshold
        ]
        table.add_row(
            f"{point.threshold:.4f}",
            f"{point.precision:.3f}",
            f"{point.recall:.3f}",
            str(point.flagged),
            " ".join(t(f"calibrate.mark_{m}", locale) for m in marks),
        )
    return table


def register(cli: click.Group) -> None:
    """Adds the `calibrate` command to the `veille` group."""

    @cli.command()
    @click.argument("folder", type=click.Path(path_type=Path))
    @click.option(
        "--category",
        "categories",
        multiple=True,
        default=("sexual",),
        type=click.Choice(CLIP_CATEGORIES),
        show_default=True,
        help="Category the flag/ images stand for (repeatable).",
    )
    @click.option(
        "--min-precision",
        type=click.FloatRange(0, 1, min_open=True),
        default=0.95,
        show_default=True,
        help="Block threshold: lowest with at least this precision.",
    )
    @click.option(
        "--min-recall",
        type=click.FloatRange(0, 1, min_open=True),
        default=0.95,
        show_default=True,
        help="Review threshold: highest with at least this recall.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def calibrate(
        folder: Path,
        categories: tuple[str, ...],
        min_precision: float,
        min_recall: float,
        as_json: bool,
    ) -> None:
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
        except CalibrationError as exc:
            fail(t("calibrate.bad_folder", locale, detail=str(exc)))
        for line in skipped:
            console.print(f"[yellow]![/] {t('calibrate.skipped', locale, detail=line)}")
        positives = sum(labels)
        try:
            imbalance = check_counts(positives, len(labels) - positives)
            fits = {
                name: [
                    fit_category(
                        c, values, labels, min_precision=min_precision, min_recall=min_recall
                    )
                    for c, values in found.items()
                ]
                for name, found in scores.items()
            }
            entries = {name: thresholds_entry(found) for name, found in fits.items()}
            for name, entry in entries.items():
                write_thresholds(
                    settings.thresholds_file,
                    storage_key(name, settings.clip_model, settings.clip_pretrained),
                    entry,
                )
        except CalibrationError as exc:
            fail(t("calibrate.bad_folder", locale, detail=str(exc)))
        if imbalance:
            console.print(f"[yellow]![/] {t('calibrate.imbalance', locale, detail=imbalance)}")
        if as_json:
            stdout.print_json(
                json.dumps(
                    {
                        "model": settings.clip_model,
                        "pretrained": settings.clip_pretrained,
                        "thresholds_file": str(settings.thresholds_file),
                        "thresholds": entries.get("clip", {}),
                        "detectors": entries,
                        "images": len(labels),
                        "skipped": skipped,
                        "fits": {
                            name: {
                                f.category: {
                                    "review": {
                                        "threshold": f.review.threshold,
                                        "precision": f.review.precision,
                                        "recall": f.review.recall,
                                    },
                                    "block": {
                                        "threshold": f.block.threshold,
                                        "precision": f.block.precision,
                                        "recall": f.block.recall,
                                    },
                                    "block_reached": f.block_reached,
                                }
                                for f in found
                            }
                            for name, found in fits.items()
                        },
                    }
                )
            )
        else:
            for name, found in fits.items():
                for fit in found:
                    stdout.print(
                        render_table(name, fit, scores[name][fit.category], labels, locale)
                    )
        for name, found in fits.items():
            for fit in found:
                if not fit.block_reached:
                    console.print(
                        "[yellow]![/] "
                        + t(
                            "calibrate.block_unreached",
                            locale,
                            category=f"{name} {fit.category}",
                            precision=min_precision,
                        )
                    )
        console.print(
            t(
                "calibrate.written",
                locale,
                path=settings.thresholds_file,
                detectors=", ".join(fits),
                model=settings.clip_model,
                pretrained=settings.clip_pretrained,
            )
        )
        raise SystemExit(EXIT_OK)
