"""Builds the detector suite from Settings: the one place that maps configuration to detectors."""

from __future__ import annotations

from typing import Any

from bot.core.scanner import Scanner
from bot.core.verdict import Thresholds
from bot.settings import Settings


def clip_config(settings: Settings) -> Any:
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


def load_thresholds(settings: Settings) -> Thresholds:
    """Defaults overridden by `veille calibrate` results for the configured model and tag."""
    return Thresholds.load(settings.thresholds_file, settings.clip_model, settings.clip_pretrained)


async def build_scanner(settings: Settings, bank: Any = None) -> Scanner:
    """Build and load every configured detector. Raises detectors.base.DetectorError with a
    message that says what to configure when one cannot load (missing CLIP weights...)."""
    from detectors.registry import build_detectors

    names = settings.detector_names
    clip = clip_config(settings) if "clip" in names else None
    if "hashes" in names and bank is None:
        from detectors.hashes import HashBank

        bank = HashBank()
    scanner = Scanner(build_detectors(names, clip=clip, bank=bank), load_thresholds(settings))
    await scanner.load()
    return scanner
