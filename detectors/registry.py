"""The detector registry: configured names → detector objects, validated before anything loads.

Every builder takes one `DetectorDeps`, the typed bundle of what detectors may be given (CLIP's
configuration, the hash bank); `bot.core.suite` fills it from Settings, so this module knows
nothing about settings or chats. Heavy modules are imported only for the names asked for, so a
deployment without CLIP never imports torch. A detector registered in BUILDERS is held to the
shared contract by tests/detectors/test_contract.py without further changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from detectors.base import Detector, DetectorError, validate_unique_names

if TYPE_CHECKING:
    from detectors.clip import ClipConfig
    from detectors.hashes import HashBank


@dataclass(frozen=True)
class DetectorDeps:
    """What a builder may use. A new detector that needs something more (a model path, a thread
    count) gets a field here, filled by `bot.core.suite.detector_deps`."""

    clip: ClipConfig | None = None  # the clip detector's model, weights, device, cache
    bank: HashBank | None = None  # the hashes detector's live bank; None: an empty one
    cache_dir: Path | None = None  # where nsfw keeps its int8 screen; None: fp32 alone
    nsfw_lowest_review: float | None = None  # the lowest nsfw review tier any community uses


def _clip(deps: DetectorDeps) -> Detector:
    from detectors.clip import ClipDetector

    if deps.clip is None:
        raise DetectorError(
            "the clip detector needs a ClipConfig (VEILLE_CLIP_MODEL and VEILLE_CLIP_PRETRAINED)"
        )
    return cast(Detector, ClipDetector(deps.clip))


def _nsfw(deps: DetectorDeps) -> Detector:
    from detectors.nsfw import NsfwDetector

    return cast(
        Detector, NsfwDetector(cache_dir=deps.cache_dir, lowest_review=deps.nsfw_lowest_review)
    )


def _hashes(deps: DetectorDeps) -> Detector:
    from detectors.hashes import HashBank, HashDetector

    # Without a bank, an empty one: the store fills a live bank (bot.store.hash_repo.load_bank).
    return cast(Detector, HashDetector(deps.bank if deps.bank is not None else HashBank()))


def _text(deps: DetectorDeps) -> Detector:
    from detectors.text_request import UndressRequestDetector

    return cast(Detector, UndressRequestDetector())


Builder = Callable[[DetectorDeps], Detector]

# Each detector narrows detect()'s input type, which a Protocol cannot express: hence the casts.
BUILDERS: dict[str, Builder] = {
    "clip": _clip,
    "nsfw": _nsfw,
    "hashes": _hashes,
    "text": _text,
}


def build_detectors(names: Sequence[str], deps: DetectorDeps | None = None) -> list[Detector]:
    """One detector per name, in order, each built from `deps`. Unknown or repeated names raise
    DetectorError listing the valid ones. Nothing is loaded here: call `await detector.load()`
    on each."""
    deps = deps if deps is not None else DetectorDeps()
    cleaned = [name.strip().lower() for name in names]
    unknown = [name for name in cleaned if name not in BUILDERS]
    if unknown:
        raise DetectorError(
            f"unknown detector(s) {', '.join(map(repr, unknown))} in VEILLE_DETECTORS; "
            f"valid names: {', '.join(BUILDERS)}"
        )
    repeated = sorted({name for name in cleaned if cleaned.count(name) > 1})
    if repeated:
        raise DetectorError(f"detector(s) listed twice in VEILLE_DETECTORS: {', '.join(repeated)}")
    detectors = [BUILDERS[name](deps) for name in cleaned]
    validate_unique_names(detectors)
    return detectors
