"""The detector plug-in contract.

A detector is an object with a stable `name` (a storage key: it keys cached verdicts), a
`version` that changes whenever its behaviour changes, an async `load()` and an async batched
`detect()` returning one `Detection` per input, in order. Detectors know nothing about chats,
tickets or databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

# Category names used across detectors, fusion, thresholds and the JSON contract.
SEXUAL = "sexual"
SEXUALISED_EDIT = "sexualised_edit"
MINOR_PRESENT = "minor_present"
SYNTHETIC = "synthetic"
KNOWN_CONTENT = "known_content"
UNDRESS_REQUEST = "undress_request"
HELP_REQUEST = "help_request"

IMAGE_CATEGORIES = (SEXUAL, SEXUALISED_EDIT, MINOR_PRESENT, SYNTHETIC, KNOWN_CONTENT)
TEXT_CATEGORIES = (UNDRESS_REQUEST, HELP_REQUEST)
CATEGORIES = IMAGE_CATEGORIES + TEXT_CATEGORIES


@dataclass(frozen=True)
class BankScope:
    """Whose hash-bank entries apply to an image: the operator's (owner None) always, those of
    one community (an opaque number to detectors) and the shared banks it subscribed to, as
    (publishing community, bank name) pairs."""

    community: int | None = None
    shared: frozenset[tuple[int, str]] = frozenset()


@dataclass(frozen=True)
class ImageInput:
    """A decoded image (RGB, EXIF orientation applied) and the SHA-256 of its source bytes."""

    image: Image.Image
    sha256: str
    source: str = ""
    md5: str = ""  # of the source bytes too: hash-sharing lists often carry MD5
    scope: BankScope | None = None  # None: every bank entry (the operator's own `veille scan`)


@dataclass(frozen=True)
class TextInput:
    """One chat message's text and what it is attached to."""

    text: str
    replies_to_image: bool = False  # the message replies to (or sits under) an image
    addresses_image_ai: bool = False  # mentions or replies to an image-generating AI app
    source: str = ""


@dataclass(frozen=True)
class HashMatch:
    """A hash-bank hit; `source` is confirmed, imported or allow; `owner` says whose entry it is
    from the scanned community's side: operator (a list the operator loaded), community (its
    own) or shared (a shared bank it subscribed to)."""

    bank: str
    kind: str  # pdq, md5, sha256, neardup
    distance: float
    source: str = "imported"
    entry_id: int | None = None
    # The operator marked the list as child sexual abuse material (a hash-sharing programme's
    # list): a match is CRITICAL on its own.
    child_abuse: bool = False
    owner: str = "operator"


@dataclass
class Detection:
    """What one detector says about one input. Scores are in [0, 1] per category."""

    scores: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    matches: list[HashMatch] = field(default_factory=list)
    # Extra values a caller may store (PDQ hex and quality, embeddings...): never shown.
    extras: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    name: str
    version: str
    kind: Literal["image", "text"]

    async def load(self) -> None: ...

    async def detect(
        self, items: Sequence[ImageInput] | Sequence[TextInput]
    ) -> list[Detection]: ...


class DetectorError(RuntimeError):
    """A detector could not load or run; the message says what to do."""


def validate_unique_names(detectors: Sequence[Detector]) -> None:
    """Names are storage keys: two detectors with one name would corrupt the verdict cache."""
    seen: set[str] = set()
    for detector in detectors:
        if detector.name in seen:
            raise DetectorError(f"two detectors are named {detector.name!r}; names must be unique")
        seen.add(detector.name)


def versions_key(detectors: Sequence[Detector]) -> str:
    """A stable key of every detector's name and version: a cached verdict is valid only under it."""
    return ",".join(f"{d.name}@{d.version}" for d in sorted(detectors, key=lambda d: d.name))
