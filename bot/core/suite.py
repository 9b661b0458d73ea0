"""Builds the detector suite from Settings: the one place that maps configuration to detectors
(`detector_deps`: Settings → the registry's typed `DetectorDeps`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core.scanner import Scanner
from bot.core.verdict import Thresholds
from bot.settings import Settings

if TYPE_CHECKING:
    from detectors.clip import ClipConfig
    from detectors.hashes import HashBank
    from detectors.registry import DetectorDeps


def clip_config(settings: Settings) -> ClipConfig:
    from detectors.clip import ClipConfig

    return ClipConfig(
        model=settings.clip_model,
        pretrained=settings.clip_pretrained,
        device=settings.device,
        cache_dir=settings.cache_dir,
        prompts_dir=getattr(settings, "clip_prompts", None),
        backend=settings.clip_backend,
        batch_size=settings.batch_size,
        threads=settings.inference_threads,
    )


def detector_deps(
    settings: Settings, names: Sequence[str] | None = None, bank: HashBank | None = None
) -> DetectorDeps:
    """What the detectors `names` (default: the configured ones) are built from. CLIP's
    configuration is made only when clip is asked for; `bank` is the live hash bank."""
    from detectors.registry import DetectorDeps

    names = settings.detector_names if names is None else names
    return DetectorDeps(
        clip=clip_config(settings) if "clip" in names else None,
        bank=bank,
        cache_dir=settings.cache_dir,
        nsfw_lowest_review=lowest_review(load_thresholds(settings), "nsfw"),
    )


def lowest_review(thresholds: Thresholds, detector: str) -> float:
    """The lowest review tier of `detector`'s sexual score under any sensitivity preset: what
    nsfw's int8 screen must stay well below (detectors/nsfw_int8.py)."""
    from bot.core.policy import thresholds_for
    from bot.workspace_settings import SENSITIVITIES
    from detectors.base import SEXUAL

    return min(thresholds_for(thresholds, s).review(SEXUAL, detector) for s in SENSITIVITIES)


def load_thresholds(settings: Settings) -> Thresholds:
    """Defaults overridden by `veille calibrate` results for the configured model and tag."""
    return Thresholds.load(settings.thresholds_file, settings.clip_model, settings.clip_pretrained)


async def build_scanner(settings: Settings, bank: HashBank | None = None) -> Scanner:
    """Build and load every configured detector. Raises detectors.base.DetectorError with a
    message that says what to configure when one cannot load (missing CLIP weights...)."""
    from detectors.registry import build_detectors

    names = settings.detector_names
    scanner = Scanner(
        build_detectors(names, detector_deps(settings, names, bank)), load_thresholds(settings)
    )
    await scanner.load()
    return scanner
