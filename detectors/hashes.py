"""Known content: image signatures (PDQ + crop-robust windows), the in-memory HashBank that matches
them against named banks, and the `hashes` detector.

Banks hold entries of four kinds: `pdq` (64 hex), `md5` and `sha256` of the file bytes (exact
repeats, as hash-sharing programmes exchange them) and `neardup`: two rows per banked image, its
PDQ windows (`nd3:`, detectors/pdq.py: crops aligned with a window grid, stamps) and its keypoints
(`kp1:`, detectors/keypoints.py: crops at any offset). Each entry has a source: `confirmed` (from a ticket), `imported` (a list)
or `allow` (a moderator's false positive), and an owner: a community (`workspace_id`: its
confirmations, `/hashes add`, false positives) or the operator (None: lists loaded with the
`veille hashes` CLI). An image is matched only against the entries its `BankScope` sees — the
operator's, its community's own and the shared banks that community subscribed to — so one
community can neither block nor unblock anything in another (ARCHITECTURE: "Tenancy of banks").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from detectors import keypoints as kp
from detectors.base import KNOWN_CONTENT, BankScope, Detection, HashMatch, ImageInput
from detectors.corner_index import CornerIndex
from detectors.hamming_index import HammingIndex
from detectors.pdq import (
    WHOLE,
    WINDOW_SIDE,
    decode_windows,
    encode_windows,
    grey_copy,
    hex_to_words,
    indexed_windows,
    pdq_dihedral,
)

log = logging.getLogger(__name__)

KINDS = ("pdq", "md5", "sha256", "neardup")
EXACT_LENGTHS = {"md5": 32, "sha256": 64}
# Facebook's PDQ reference: distance ≤ 31 is a match, quality < 50 is too flat to trust.
DEFAULT_PDQ_THRESHOLD = 31
DEFAULT_MIN_QUALITY = 50
# Unrelated generated images stayed ≥ 78 bits apart on every window pair (tests/detectors/
# test_hash_robustness.py), so the PDQ threshold serves the windows as well when one side is a
# whole image (the query is a crop of the banked image, or the banked image a crop of it).
DEFAULT_NEARDUP_THRESHOLD = 31
# A part of one picture near a part of the other is what another photograph of the same scene
# gives as well: generated same-scene pairs came within 18-30 bits on such windows (tests/
# detectors/test_same_scene.py), while the windows a stamp leaves untouched stayed within 0-2,
# and within 12 once re-encoded (test_hash_robustness.py); crops aligned with the grid match
# whole-to-window (2-16 bits) and off-grid ones are the keypoints' job.
DEFAULT_WINDOW_THRESHOLD = 12
SIGNATURE_PREFIX = "sig1"
NEARDUP_SEPARATOR = "|"


def neardup_parts(value: str) -> list[str]:
    """A signature's near-duplicate string split into what is stored one row each: the PDQ
    windows (`nd3:`) and the keypoints (`kp1:`), each under HashEntry.value's 2,048 characters."""
    return [part for part in value.split(NEARDUP_SEPARATOR) if part]


@dataclass(frozen=True)
class ImageSignature:
    """What Veille remembers of an image's looks. `neardup` is `nd3:<PDQ windows>|kp1:<corners>`
    (see detectors/pdq.py and detectors/keypoints.py). `variants` (the eight dihedral PDQ hashes)
    and `corners` (every corner under the eight dihedral patterns) exist only for a freshly hashed
    image: they query, they are not stored, so a signature read back from storage matches by PDQ
    and windows only."""

    pdq: str
    quality: int
    neardup: str = ""
    variants: tuple[str, ...] = ()
    corners: kp.Keypoints | None = field(default=None, compare=False, repr=False)

    def to_str(self) -> str:
        """`sig1;<pdq>;<quality>;<neardup>`: one string for a text column or a JSON field."""
        return f"{SIGNATURE_PREFIX};{self.pdq};{self.quality};{self.neardup}"

    __str__ = to_str

    @classmethod
    def from_str(cls, value: str) -> ImageSignature:
        """Parse `to_str()` output. Raises ValueError when malformed."""
        parts = value.split(";")
        if len(parts) != 4 or parts[0] != SIGNATURE_PREFIX:
            raise ValueError("not a Veille image signature (expected sig1;pdq;quality;neardup)")
        _, pdq, quality, neardup = parts
        hex_to_words(pdq)
        for part in neardup_parts(neardup):
            normalise_value("neardup", part)
        return cls(pdq=pdq, quality=int(quality), neardup=neardup)

    @classmethod
    def from_extras(cls, extras: Mapping[str, object]) -> ImageSignature:
        """Rebuild from the `extras` of a HashDetector Detection (what the core stores)."""
        return cls(
            str(extras["pdq"]), int(str(extras["pdq_quality"])), str(extras.get("neardup", ""))
        )


def compute_signature(image: Image.Image, min_quality: int = DEFAULT_MIN_QUALITY) -> ImageSignature:
    """PDQ (eight dihedral variants), PDQ windows and keypoints of `image`. Blocking: ~18 ms
    for a 640×480 photo on one core (bench/pdq.py --neardup)."""
    variants, quality = pdq_dihedral(image)
    grey = grey_copy(image, max(WINDOW_SIDE, kp.WORK_SIDE))  # one grey copy for windows and corners
    windows = indexed_windows(grey, min_quality)
    full = [(WHOLE, variants[0])] if quality >= min_quality else []
    to_bank, corners = kp.describe_image(grey)
    parts = [
        encode_windows(full + windows) if full or windows else "",
        kp.encode_keypoints(to_bank),
    ]
    neardup = NEARDUP_SEPARATOR.join(p for p in parts if p)
    return ImageSignature(variants[0], quality, neardup, tuple(variants), corners)


class EntryLike(Protocol):
    """What the bank reads from a stored row (bot.store.models.HashEntry fits)."""

    id: int | None
    bank: str
    kind: str
    value: str
    source: str
    # and optionally `workspace_id: int | None` (the owning community; absent or None: operator)


@dataclass(frozen=True)
class BankEntry:
    id: int
    bank: str
    kind: str
    value: str
    source: str = "imported"
    workspace_id: int | None = None  # the owning community; None: the operator
    child_abuse: bool = False  # an operator list marked as child sexual abuse material


GroupKey = tuple[int | None, str, bool]  # (owner, bank, is an allow entry)


def _fingerprint(entry: BankEntry) -> int:
    """64 stable bits of an entry: XOR-ed per group, so a group's revision changes with any
    entry added or removed (even one re-using a deleted row's id) and survives a restart."""
    text = f"{entry.id}|{entry.kind}|{entry.source}|{entry.value}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def owner_in(entry: BankEntry, scope: BankScope | None) -> str | None:
    """How `scope` sees `entry`: "operator", "community" (its own), "shared" (a subscribed
    bank's blocking entry) or None (not at all). scope None sees everything."""
    if entry.workspace_id is None:
        return "operator"
    if scope is None or entry.workspace_id == scope.community:
        return "community"
    if entry.source != "allow" and (entry.workspace_id, entry.bank) in scope.shared:
        return "shared"
    return None


def normalise_value(kind: str, value: str) -> str:
    """Lower-cased, validated value of `kind`. Raises ValueError with what is wrong."""
    if kind not in KINDS:
        raise ValueError(f"unknown hash kind {kind!r} (expected one of {', '.join(KINDS)})")
    value = value.strip()
    if kind == "neardup":  # one part: a row holds the windows or the keypoints, not both
        if value.startswith(kp.PREFIX):
            kp.decode_keypoints(value)
        else:
            decode_windows(value)
        return value
    value = value.lower()
    if kind == "pdq":
        hex_to_words(value)
        return value
    if len(value) != EXACT_LENGTHS[kind] or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{kind} is {EXACT_LENGTHS[kind]} hex characters: {value[:80]!r}")
    return value


_NO_ROWS = np.empty(0, np.int64)


class HashBank:
    """Every bank entry in memory, matched in well under 20 ms at 10^6 PDQ hashes (bench/pdq.py).

    Thread-safety: writers (add/remove) serialise on a lock and publish new immutable indexes;
    `match` reads whatever was published last, so it may run in a worker thread while the event
    loop adds entries."""

    def __init__(
        self,
        entries: Iterable[EntryLike | BankEntry] = (),
        *,
        pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
        neardup_threshold: int = DEFAULT_NEARDUP_THRESHOLD,
        window_threshold: int = DEFAULT_WINDOW_THRESHOLD,
        min_quality: int = DEFAULT_MIN_QUALITY,
    ) -> None:
        self.pdq_threshold = pdq_threshold
        self.neardup_threshold = neardup_threshold
        self.window_threshold = window_threshold
        self.min_quality = min_quality
        self._lock = threading.Lock()
        self._entries: dict[int, BankEntry] = {}
        self._exact: dict[tuple[str, str], tuple[int, ...]] = {}
        self._pdq = HammingIndex()
        self._neardup = HammingIndex()  # windows (and nd2 rows, positions unknown)
        self._neardup_whole = HammingIndex()  # the whole banked image, from its nd3 row
        # Keypoints: one index row per stored corner (ids are row numbers) and, per row, its
        # owner entry id, x and y; both replaced, never mutated (copy-on-write).
        self._corners = CornerIndex()
        self._corner_meta = np.empty((0, 4), np.float64)  # owner entry id, x, y, group code
        self._corner_rows: dict[int, np.ndarray] = {}
        # Per (owner, bank, allow) group: [entries, XOR of fingerprints] (scoped revisions), and
        # a small integer per (owner, bank) that corner rows carry for scoped keypoint search.
        self._groups: dict[GroupKey, list[int]] = {}
        self._codes: dict[tuple[int | None, str], int] = {}
        self.add(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def revision(self) -> str:
        """Changes whenever entries are added or removed, and is the same after a restart for
        the same stored entries: cached verdicts are only valid for the revision they saw."""
        return self.revision_for(None)

    def revision_for(self, scope: BankScope | None) -> str:
        """The revision of the entries `scope` sees (None: all). Two communities that see the
        same entries get the same revision; a community with entries of its own gets one that
        no other community shares, so a cached verdict never crosses communities."""
        with self._lock:
            items = sorted(
                ((-1 if owner is None else owner, bank, allow), tuple(stats))
                for (owner, bank, allow), stats in self._groups.items()
                if stats[0]
                and (
                    scope is None
                    or owner is None
                    or owner == scope.community
                    or (not allow and (owner, bank) in scope.shared)
                )
            )
        return hashlib.sha256(repr(items).encode()).hexdigest()[:16]

    def _group_changed(self, entry: BankEntry, sign: int) -> None:
        key = (entry.workspace_id, entry.bank, entry.source == "allow")
        stats = self._groups.setdefault(key, [0, 0])
        stats[0] += sign
        stats[1] ^= _fingerprint(entry)
        if not stats[0]:
            del self._groups[key]

    def _code(self, owner: int | None, bank: str) -> int:
        return self._codes.setdefault((owner, bank), len(self._codes))

    def _visible_codes(self, scope: BankScope) -> np.ndarray:
        codes = self._codes
        return np.array(
            [
                code
                for (owner, bank), code in list(codes.items())
                if owner is None or owner == scope.community or (owner, bank) in scope.shared
            ],
            dtype=np.float64,
        )

    def counts(self) -> dict[tuple[str, str, str], int]:
        """{(bank, kind, source): number of entries}."""
        out: dict[tuple[str, str, str], int] = {}
        for e in list(self._entries.values()):
            key = (e.bank, e.kind, e.source)
            out[key] = out.get(key, 0) + 1
        return out

    def add(self, entries: Iterable[EntryLike | BankEntry]) -> list[str]:
        """Add entries (an id already present is replaced). Invalid ones are skipped and
        returned as readable errors: a bad stored row must not stop the bank from loading."""
        errors: list[str] = []
        fresh: list[BankEntry] = []
        for raw in entries:
            try:
                if raw.id is None:
                    raise ValueError("entry has no id (store it first)")
                owner = getattr(raw, "workspace_id", None)
                fresh.append(
                    BankEntry(
                        int(raw.id),
                        raw.bank,
                        raw.kind,
                        normalise_value(raw.kind, raw.value),
                        raw.source,
                        None if owner is None else int(owner),
                        bool(getattr(raw, "child_abuse", False)),
                    )
                )
            except ValueError as exc:
                errors.append(f"entry {raw.id} ({raw.kind} in {raw.bank!r}): {exc}")
        if errors:
            log.warning(
                "hash bank skipped %d invalid entries: %s", len(errors), "; ".join(errors[:5])
            )
        if not fresh:
            return errors
        with self._lock:
            replaced = [e.id for e in fresh if e.id in self._entries]
            if replaced:
                self._remove_locked(replaced)
            pdq_words: list[np.ndarray] = []
            nd_words: list[np.ndarray] = []
            whole_words: list[np.ndarray] = []
            pdq_ids: list[int] = []
            nd_ids: list[int] = []
            whole_ids: list[int] = []
            corner_sets: list[tuple[int, int, kp.Keypoints]] = []
            for entry in fresh:
                self._entries[entry.id] = entry
                self._group_changed(entry, +1)
                if entry.kind == "pdq":
                    pdq_words.append(hex_to_words(entry.value))
                    pdq_ids.append(entry.id)
                elif entry.kind == "neardup" and entry.value.startswith(kp.PREFIX):
                    corner_sets.append(
                        (
                            entry.id,
                            self._code(entry.workspace_id, entry.bank),
                            kp.decode_keypoints(entry.value),
                        )
                    )
                elif entry.kind == "neardup":
                    for index, value in decode_windows(entry.value):
                        words, ids = (
                            (whole_words, whole_ids) if index == WHOLE else (nd_words, nd_ids)
                        )
                        words.append(hex_to_words(value))
                        ids.append(entry.id)
                else:
                    key = (entry.kind, entry.value)
                    self._exact[key] = (*self._exact.get(key, ()), entry.id)
            if pdq_ids:
                self._pdq = self._pdq.extended(np.array(pdq_words), np.array(pdq_ids))
            if nd_ids:
                self._neardup = self._neardup.extended(np.array(nd_words), np.array(nd_ids))
            if whole_ids:
                self._neardup_whole = self._neardup_whole.extended(
                    np.array(whole_words), np.array(whole_ids)
                )
            if corner_sets:
                self._add_corners_locked(corner_sets)
        return errors

    def _add_corners_locked(self, corner_sets: list[tuple[int, int, kp.Keypoints]]) -> None:
        start = len(self._corner_meta)
        metas, descs = [], []
        for entry_id, code, corners in corner_sets:
            rows = np.arange(start, start + len(corners))
            start += len(corners)
            self._corner_rows[entry_id] = rows
            metas.append(
                np.column_stack(
                    [np.full(len(corners), entry_id), corners.xy, np.full(len(corners), code)]
                )
            )
            descs.append(corners.desc)
        # Publish the metadata before the index: a reader's index rows always have metadata.
        first = len(self._corner_meta)
        self._corner_meta = np.concatenate([self._corner_meta, *metas])
        self._corners = self._corners.extended(np.concatenate(descs), np.arange(first, start))

    def remove(self, entry_ids: Iterable[int]) -> int:
        """Forget these entries; returns how many were present."""
        with self._lock:
            return self._remove_locked(list(entry_ids))

    def _remove_locked(self, entry_ids: Sequence[int]) -> int:
        gone = [self._entries.pop(i) for i in entry_ids if i in self._entries]
        ids = np.array([e.id for e in gone], dtype=np.int64)
        for entry in gone:
            self._group_changed(entry, -1)
            key = (entry.kind, entry.value)
            if key in self._exact:
                left = tuple(i for i in self._exact[key] if i != entry.id)
                if left:
                    self._exact[key] = left
                else:
                    del self._exact[key]
        if any(e.kind == "pdq" for e in gone):
            self._pdq = self._pdq.without(ids)
        if any(e.kind == "neardup" for e in gone):
            self._neardup = self._neardup.without(ids)
            self._neardup_whole = self._neardup_whole.without(ids)
            rows = [self._corner_rows.pop(i) for i in ids.tolist() if i in self._corner_rows]
            if rows:
                self._corners = self._corners.without(np.concatenate(rows))
        return len(gone)

    def match(
        self,
        signature: ImageSignature | None,
        sha256: str = "",
        md5: str = "",
        scope: BankScope | None = None,
    ) -> list[HashMatch]:
        """Every entry seen by `scope` (None: all) that `signature` or the file digests match:
        exact digests first, then PDQ, PDQ windows and keypoints, closest first within each. A
        PDQ query of quality below `min_quality` is ignored (windows were already filtered by
        quality when hashed). Windows match within `neardup_threshold` when one side is a whole
        image (a crop), within the stricter `window_threshold` when both are parts of their
        pictures (what another photograph of the same scene also gives)."""
        return [match for match, _ in self.match_explained(signature, sha256, md5, scope)]

    def match_explained(
        self,
        signature: ImageSignature | None,
        sha256: str = "",
        md5: str = "",
        scope: BankScope | None = None,
    ) -> list[tuple[HashMatch, str]]:
        """`match()` with a moderator-readable reason for each match. Distances: 0 for digests,
        Hamming bits for PDQ and windows, and for keypoints the share of the entry's stored
        corners that did not agree (0.0 = all agree)."""
        found: list[tuple[int, float, HashMatch, str]] = []

        def hit(entry_id: int, kind: str, distance: float, how: str, rank: int) -> None:
            entry = self._entries.get(entry_id)  # may be gone if removed while we searched
            owner = owner_in(entry, scope) if entry is not None else None
            if entry is not None and owner is not None:
                # Only the operator can mark a list as child abuse: a community cannot make
                # another's image CRITICAL (and so destroy its evidence) by labelling its bank.
                match = HashMatch(
                    entry.bank,
                    kind,
                    float(distance),
                    entry.source,
                    entry.id,
                    child_abuse=entry.child_abuse and entry.workspace_id is None,
                    owner=owner,
                )
                verb = (
                    "is allow-listed in" if entry.source == "allow" else f"matches {entry.source}"
                )
                found.append((rank, distance, match, f"{verb} bank {entry.bank!r} {how}"))

        for kind, value in (("sha256", sha256), ("md5", md5)):
            label = "SHA-256" if kind == "sha256" else "MD5"
            for entry_id in self._exact.get((kind, value.lower()), ()) if value else ():
                hit(entry_id, kind, 0, f"by {label} (exact file)", 0)
        if signature is not None:
            # One snapshot of each index: writers publish new ones, never change these.
            pdq_index, nd_index, whole_index = self._pdq, self._neardup, self._neardup_whole
            corner_index, corner_meta = self._corners, self._corner_meta
            variants = signature.variants or (signature.pdq,)
            if signature.quality >= self.min_quality:
                queries = np.array([hex_to_words(v) for v in variants])
                for entry_id, dist in pdq_index.search(queries, self.pdq_threshold).items():
                    hit(entry_id, "pdq", dist, f"at PDQ distance {dist}", 1)
            for entry_id, (dist, how) in self._window_hits(
                signature, variants, nd_index, whole_index
            ).items():
                hit(entry_id, "neardup", dist, f"at PDQ-window distance {dist} ({how})", 2)
            corners = signature.corners
            if corners is not None and len(corners) and len(corner_index):
                visible = None
                if scope is not None:  # filtered before the ranking: another community's corners
                    # must neither match nor crowd out this community's nearest corners
                    codes = self._visible_codes(scope)
                    visible = lambda rows: np.isin(corner_meta[rows, 3], codes)  # noqa: E731
                q_idx, corner_rows, _ = corner_index.nearest(
                    corners.desc, kp.MATCH_DISTANCE, kp.NEAREST, visible
                )
                meta = corner_meta[corner_rows]
                owners = meta[:, 0].astype(np.int64)
                rows_of = self._corner_rows
                agreeing = kp.inliers(
                    corners,
                    q_idx,
                    meta[:, 1:3],
                    owners,
                    corner_rows,
                    stored=lambda owner: corner_meta[rows_of.get(owner, _NO_ROWS), 1:3],
                )
                for entry_id, count in agreeing.items():
                    stored = len(self._corner_rows.get(entry_id, ())) or count
                    if count >= kp.MIN_INLIERS:
                        hit(
                            entry_id,
                            "neardup",
                            round(1 - count / stored, 3),
                            f"by keypoints: {count} of {stored} stored corners agree (crop-robust)",
                            3,
                        )
        found.sort(key=lambda item: (item[0], item[1]))
        return [(match, reason) for _, _, match, reason in found]

    def _window_hits(
        self,
        signature: ImageSignature,
        variants: Sequence[str],
        nd_index: HammingIndex,
        whole_index: HammingIndex,
    ) -> dict[int, tuple[int, str]]:
        """{entry id: (smallest distance, what matched)} of the window entries `signature`
        matches: its whole image (dihedral variants too: mirrored or turned crops) against any
        stored hash, its windows against a stored whole image (the banked image is a crop of
        it), and its windows against stored windows only within `window_threshold`."""
        whole = list(variants[1:])
        parts: list[str] = []
        for part in neardup_parts(signature.neardup):
            if part.startswith(kp.PREFIX):
                continue
            for index, value in decode_windows(part):
                # An nd2 signature (read back from storage) does not say which hash is the
                # whole image: it is the one equal to its PDQ.
                is_whole = index == WHOLE or (index is None and value == signature.pdq)
                (whole if is_whole else parts).append(value)
        searches: tuple[tuple[list[str], HammingIndex, int, str], ...] = (
            (whole, nd_index, self.neardup_threshold, "crop-robust"),
            (whole, whole_index, self.neardup_threshold, "crop-robust"),
            (parts, whole_index, self.neardup_threshold, "crop-robust"),
            (parts, nd_index, self.window_threshold, "part of the picture, crop-robust"),
        )
        found: dict[int, tuple[int, str]] = {}
        for rows, stored, threshold, how in searches:
            if not rows or not len(stored):
                continue
            queries = np.array([hex_to_words(v) for v in dict.fromkeys(rows)])
            for entry_id, dist in stored.search(queries, threshold).items():
                if dist < found.get(entry_id, (threshold + 1, ""))[0]:
                    found[entry_id] = (dist, how)
        return found


class HashDetector:
    """The `hashes` detector: signature of each image, matched against the bank."""

    name = "hashes"
    version = "pdq1-nd3-kp1-fit-moved-bent-scoped-ivf"  # change when hashing, windows, keypoints, thresholds or scoping change
    kind: Literal["image", "text"] = "image"

    def __init__(self, bank: HashBank) -> None:
        self.bank = bank

    async def load(self) -> None:
        """Nothing to load: the bank is filled by bot.core.banks.load_bank."""

    async def detect(self, items: Sequence[ImageInput]) -> list[Detection]:  # type: ignore[override]
        """One Detection per image: matches, `known_content` 1.0 on any non-allow match, and
        extras {pdq, pdq_quality, neardup} for the core to store and bank on confirmation."""
        return await asyncio.to_thread(lambda: [self._detect_one(item) for item in items])

    def _detect_one(self, item: ImageInput) -> Detection:
        try:
            signature: ImageSignature | None = compute_signature(item.image, self.bank.min_quality)
        except (ValueError, OSError) as exc:  # a frame PDQ cannot read still gets its digests
            log.warning("could not hash %s: %s", item.source or item.sha256[:12], exc)
            signature = None
        explained = self.bank.match_explained(signature, item.sha256, item.md5, item.scope)
        matches = [match for match, _ in explained]
        blocking = [m for m in matches if m.source != "allow"]
        detection = Detection(
            scores={KNOWN_CONTENT: 1.0 if blocking else 0.0},
            reasons=[reason for _, reason in explained[:5]],
            matches=matches,
        )
        if signature is not None:
            detection.extras = {
                "pdq": signature.pdq,
                "pdq_quality": signature.quality,
                "neardup": signature.neardup,
            }
        else:
            detection.reasons.append("image could not be hashed: only exact digests were checked")
        return detection
