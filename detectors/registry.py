"""The detector registry: configured names → detector objects, validated before anything loads.

`bot.core.suite` maps Settings to the arguments (ClipConfig, hash bank); this module knows
nothing about settings or chats. Heavy modules are imported only for the names asked for, so a
deployment without CLIP never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from detectors.base import Detector, DetectorError, validate_unique_names


def _clip(clip: Any, bank: Any) -> Detector:
    from detectors.clip import ClipDetector

    if clip is None:
        raise DetectorError("the clip detector needs a ClipConfig (VEILLE_CLIP_MODEL and "
                            "VEILLE_CLIP_PRETRAINED)")
    return cast(Detector, ClipDetector(clip))


def _nsfw(clip: Any, bank: Any) -> Detector:
    from detectors.nsfw import NsfwDetector

    return cast(Detector, NsfwDetector())


def _hashes(clip: Any, bank: Any) -> Detector:
    from detectors.hashes import HashDetector

    return cast(Detector, HashDetector(bank))


def _text(clip: Any, bank: Any) -> Detector:
    from detectors.text_request import UndressRequestDetector

    return cast(Detector, UndressRequestDetector())


# Each detector narrows detect()'s input type, which a Protocol cannot express: hence the casts.
BUILDERS: dict[str, Callable[[Any, Any], Detector]] = {
    "clip": _clip,
    "nsfw": _nsfw,
    "hashes": _hashes,
    "text": _text,
}


def build_detectors(
    names: Sequence[str], *, clip: Any = None, bank: Any = None
) -> list[Detector]:
    """One detector per name, in order (`clip` is a detectors.clip.ClipConfig, `bank` a hash
    bank). Unknown or repeated names raise DetectorError listing the valid ones. Nothing is
    loaded here: call `await detector.load()` on each."""
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
    detectors = [BUILDERS[name](clip, bank) for name in cleaned]
    validate_unique_names(detectors)
    return detectors
