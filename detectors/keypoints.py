"""Keypoint near-duplicates: crops at any offset, which PDQ windows on a fixed grid miss.

PDQ moves ~30 bits when its window shifts by 1 % of its width, so a grid of windows only
catches crops that happen to line up with it. Local features do not care where the frame is:
Harris corners on a small image pyramid (six levels, 2^¼ apart, so any rescaling lands within
~9 % of a level, which the smoothed descriptors tolerate), each described by 256 BRIEF-style intensity comparisons on a smoothed patch,
then matched (each query corner keeps its NEAREST closest stored corners within MATCH_DISTANCE)
and verified geometrically — matched corners must agree on one mirror/quarter-turn,
one scale and one translation (modes of pairwise distance ratios, then of 6-pixel translation
bins), then refined: a least-squares similarity fitted to the voted matches, kept only the
corners within FIT_TOLERANCE of it, and required that MIN_COVERAGE of the stored corners that
pose puts inside the query agree. The vote bins alone let another photograph of the same scene
through (parallax, a camera turned a few degrees, a burst shot: tests/detectors/
test_same_scene.py); a crop or re-encode of one picture keeps nearly every corner on one
similarity. What the pose misses tells the two apart as well: a copy loses those corners, another
photograph shows them again a few pixels off the pose, a whole object's corners moving together
(_other_motion): a pose is refused when more than MAX_SECOND_MOTION stored corners share one other
offset, or more than MAX_DISPLACED are displaced while under FULL_COVERAGE agree. A copy is a
similarity of the banked picture, another viewpoint is not (a turned camera is a homography,
parallax bends it): a pose is also refused when an affine map or a homography grown from its
agreeing corners explains MIN_MODEL_GAIN more stored corners (_looser_model_gain). Unrelated
generated images reached at most 4 agreeing corners against 16 banked ones
(tests/detectors/test_hash_robustness.py), so a match needs MIN_INLIERS = 6 stored corners; the
chance level grows with the number of banked images, so watch it on large confirmed banks.

A banked image stores its BANK_KEYPOINTS strongest corners, at least MIN_SEPARATION pixels apart
(the same corner found on every level would otherwise vote five times), as `kp1:` + base64 of
(x, y: uint16 work-frame pixels; level: uint8; descriptor: 32 bytes) per corner (≤ 2 kB).
A query describes all its corners under the eight dihedral sampling patterns instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from detectors.pdq import decode_prefixed, encode_prefixed, grey_copy

WORK_SIDE = 320
LEVELS = 6
RADIUS = 14  # patch radius in level pixels; corners nearer the border are skipped
PER_LEVEL = 60
BANK_KEYPOINTS = 40
MIN_SEPARATION = 8.0
MATCH_DISTANCE = 26
VOTE_BIN = 6.0
MIN_INLIERS = 6
FIT_TOLERANCE = 1.25  # work-frame pixels from the fitted similarity, on level 0 (_fitted_inliers)
MIN_COVERAGE = 0.6  # of the stored corners the pose puts inside the query, the share that agree
# Another photograph of the same scene shows the corners the pose misses again, displaced
# (parallax, a turned camera, a moved subject); a copy loses them or shows them on the pose.
DISPLACED = (3.0, 48.0)  # work-frame pixels off the pose: a stored corner found again, elsewhere
MAX_DISPLACED = 4  # displaced stored corners tolerated below FULL_COVERAGE (as MIN_COVERAGE)
FULL_COVERAGE = 0.78  # 0.72 before: moved cameras with 72-77 % agreeing and 6-8 displaced passed
MOTION_BIN = 2.5  # pixels: displaced matches this close to one offset move together
MAX_SECOND_MOTION = 4  # stored corners a second motion may gather (a copy has one motion)
# A copy keeps its corners on one similarity: an affine map or a homography grown from the
# corners that agree with it explains at most a stray corner or two more; a camera turned a few
# degrees (perspective) or a view with parallax bends the map, and a looser model picks up more.
MIN_MODEL_GAIN = 3  # stored corners a looser model may add before the pose is refused
GROW_STEPS = 5  # refits of each looser model from the similarity's agreeing matches
NEAREST = 16  # stored corners kept per query corner
PREFIX = "kp1:"
_RECORD = 37  # bytes per stored corner

# Fixed sampling pattern: changing it (or the seed) invalidates stored keypoints (bump PREFIX).
_PATTERN = np.clip(
    np.round(np.random.default_rng(12345).normal(0, 4.5, (256, 4))), -RADIUS + 2, RADIUS - 2
).astype(np.int64)
# The eight dihedral maps of (x, y) offsets: a query sampled with M·d matches a bank image sampled
# with d when the query is the bank image under M; its coordinates map back by M^T.
DIHEDRAL = tuple(
    np.array(m)
    for m in (
        [[1, 0], [0, 1]],
        [[-1, 0], [0, 1]],
        [[1, 0], [0, -1]],
        [[-1, 0], [0, -1]],
        [[0, 1], [1, 0]],
        [[0, -1], [1, 0]],
        [[0, 1], [-1, 0]],
        [[0, -1], [-1, 0]],
    )
)


@dataclass(frozen=True)
class Keypoints:
    """Corners in the work frame: xy (n, 2) float, level (n,) int, desc (n, 4) uint64 and, for a
    query, variant (n,) int — which dihedral pattern described the row."""

    xy: np.ndarray
    level: np.ndarray
    desc: np.ndarray
    variant: np.ndarray | None = None
    frame: tuple[int, int] = (0, 0)  # a query's work-frame width and height

    def __len__(self) -> int:
        return len(self.level)


def _box(planes: np.ndarray, k: int) -> np.ndarray:
    """Mean over k×k neighbourhoods of each plane of (n, h, w), edges replicated (k shifted
    sums per axis: cheaper than a summed-area table at these sizes)."""
    p = k // 2
    h, w = planes.shape[1:]
    padded = np.pad(planes, ((0, 0), (p, p), (p, p)), mode="edge")
    rows = padded[:, 0:h].copy()
    for i in range(1, k):
        rows += padded[:, i : i + h]
    out = rows[:, :, 0:w].copy()
    for i in range(1, k):
        out += rows[:, :, i : i + w]
    return out / (k * k)


def _local_max(a: np.ndarray, k: int = 7) -> np.ndarray:
    """Maximum over k×k neighbourhoods, separably."""
    p = k // 2
    padded = np.pad(a, p, mode="constant", constant_values=-np.inf)
    rows = np.max([padded[:, i : i + a.shape[1]] for i in range(k)], axis=0)
    return np.max([rows[i : i + a.shape[0], :] for i in range(k)], axis=0)


def _levels(image: Image.Image) -> list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]]:
    """Per pyramid level: (level, scale, xs, ys, smoothed patch image), strongest corners first."""
    grey = grey_copy(image, WORK_SIDE)
    out = []
    for level in range(LEVELS):
        scale = 2 ** (-level / 4)
        size = (round(grey.width * scale), round(grey.height * scale))
        if min(size) < 2 * RADIUS + 8:
            break
        img = grey.resize(size, Image.Resampling.BILINEAR)
        smooth = np.asarray(img.filter(ImageFilter.GaussianBlur(1.0)), np.float32)
        patch = np.asarray(img.filter(ImageFilter.GaussianBlur(2.0)), np.float32)
        iy, ix = np.gradient(smooth)
        a, b, c = _box(np.stack([ix * ix, iy * iy, ix * iy]), 5)
        response = a * b - c * c - 0.04 * (a + b) ** 2
        floor = 1e-2 * max(float(response.max()), 1e-9)
        ys, xs = np.nonzero((response == _local_max(response)) & (response > floor))
        h, w = response.shape
        inside = (xs >= RADIUS) & (ys >= RADIUS) & (xs < w - RADIUS) & (ys < h - RADIUS)
        xs, ys = xs[inside], ys[inside]
        order = np.argsort(-response[ys, xs], kind="stable")[:PER_LEVEL]
        out.append((level, scale, xs[order], ys[order], patch))
    return out


def _describe(patch: np.ndarray, xs: np.ndarray, ys: np.ndarray, m: np.ndarray) -> np.ndarray:
    d1, d2 = _PATTERN[:, :2] @ m.T, _PATTERN[:, 2:] @ m.T
    first = patch[ys[:, None] + d1[None, :, 1], xs[:, None] + d1[None, :, 0]]
    second = patch[ys[:, None] + d2[None, :, 1], xs[:, None] + d2[None, :, 0]]
    return np.packbits(first < second, axis=1).view(np.uint64).reshape(len(xs), 4)


def describe_image(image: Image.Image) -> tuple[Keypoints, Keypoints]:
    """(corners to bank, corners to query with) of one image, from one pyramid pass."""
    levels = _levels(image)
    frame = (levels[0][4].shape[1], levels[0][4].shape[0]) if levels else (0, 0)
    return _bank_keypoints(levels), _query_keypoints(levels, frame)


def _empty(query: bool) -> Keypoints:
    return Keypoints(
        np.empty((0, 2)),
        np.empty(0, np.int64),
        np.empty((0, 4), np.uint64),
        np.empty(0, np.int64) if query else None,
    )


def _bank_keypoints(
    levels: list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]],
) -> Keypoints:
    """The strongest, well-separated corners (round-robin over levels by rank)."""
    candidates = []
    for level, scale, xs, ys, patch in levels:
        desc = _describe(patch, xs, ys, DIHEDRAL[0])
        candidates += [
            (rank, level, xs[rank] / scale, ys[rank] / scale, desc[rank]) for rank in range(len(xs))
        ]
    candidates.sort(key=lambda c: (c[0], c[1]))
    kept: list[tuple[float, float, int, np.ndarray]] = []
    for _, level, x, y, desc in candidates:
        if all((x - kx) ** 2 + (y - ky) ** 2 >= MIN_SEPARATION**2 for kx, ky, _, _ in kept):
            kept.append((x, y, level, desc))
            if len(kept) == BANK_KEYPOINTS:
                break
    if not kept:
        return _empty(query=False)
    return Keypoints(
        np.array([(k[0], k[1]) for k in kept]),
        np.array([k[2] for k in kept]),
        np.array([k[3] for k in kept], dtype=np.uint64),
    )


def _query_keypoints(
    levels: list[tuple[int, float, np.ndarray, np.ndarray, np.ndarray]],
    frame: tuple[int, int] = (0, 0),
) -> Keypoints:
    """Every corner, described under all eight dihedral patterns."""
    xy, level, desc, variant = [], [], [], []
    for lvl, scale, xs, ys, patch in levels:
        for v, m in enumerate(DIHEDRAL):
            desc.append(_describe(patch, xs, ys, m))
            xy.append(np.stack([xs / scale, ys / scale], axis=1))
            level.append(np.full(len(xs), lvl))
            variant.append(np.full(len(xs), v))
    if not desc:
        return _empty(query=True)
    return Keypoints(
        np.concatenate(xy),
        np.concatenate(level),
        np.concatenate(desc),
        np.concatenate(variant),
        frame,
    )


def encode_keypoints(kp: Keypoints) -> str:
    """`kp1:` + unpadded base64url of 37-byte records; "" when there are no corners."""
    if len(kp) == 0:
        return ""
    head = np.zeros((len(kp), 5), np.uint8)
    xy = np.clip(np.round(kp.xy), 0, 65535).astype(">u2")
    head[:, 0:4] = xy.view(np.uint8).reshape(len(kp), 4)
    head[:, 4] = kp.level
    records = np.concatenate([head, kp.desc.view(np.uint8).reshape(len(kp), 32)], axis=1)
    return encode_prefixed(PREFIX, records.tobytes())


def decode_keypoints(value: str) -> Keypoints:
    """Inverse of encode_keypoints. Raises ValueError when malformed."""
    raw = decode_prefixed(value, PREFIX, "keypoints")
    if not raw or len(raw) % _RECORD:
        raise ValueError("keypoints length is not a whole number of records")
    records = np.frombuffer(raw, np.uint8).reshape(-1, _RECORD)
    xy = records[:, 0:4].copy().view(">u2").astype(np.float64)
    desc = records[:, 5:].copy().view(np.uint64)
    return Keypoints(xy, records[:, 4].astype(np.int64), desc)


def nearest(
    q_idx: np.ndarray, rows: np.ndarray, dist: np.ndarray, keep: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Only each query corner's `keep` closest stored corners (ties broken by row). Generic
    corners — the right angle of any rectangle — sit within MATCH_DISTANCE of dozens of stored
    corners in every image of a large bank; the true counterpart is among the closest."""
    keep = NEAREST if keep is None else keep
    if len(q_idx) == 0:
        return q_idx, rows
    order = np.lexsort((rows, dist, q_idx))
    q_sorted = q_idx[order]
    starts = np.flatnonzero(np.r_[True, q_sorted[1:] != q_sorted[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    chosen = order[rank < keep]
    return q_idx[chosen], rows[chosen]


def inliers(
    query: Keypoints,
    q_idx: np.ndarray,
    b_xy: np.ndarray,
    owners: np.ndarray,
    rows: np.ndarray,
    stored: Callable[[int], np.ndarray] | None = None,
) -> dict[int, int]:
    """{owner: most stored corners agreeing on one pose} for descriptor matches (query row
    `q_idx[i]` ~ stored corner `rows[i]` at `b_xy[i]`, owned by `owners[i]`).

    A pose is a dihedral variant, a scale and a translation (crops and resizes keep the aspect).
    Per owner and variant, the scale is the mode of the distance ratios over pairs of matches
    (pyramid levels only choose which corners are compared: their 2^¼ steps are too coarse to
    give the scale), then the translation is the mode of b - s·M^T·q over VOTE_BIN cells."""
    if len(q_idx) == 0 or query.variant is None:
        return {}
    variant = query.variant[q_idx]
    mats = np.array(DIHEDRAL)[variant]  # (n, 2, 2); coordinates map back by M^T
    mapped = np.einsum("nji,nj->ni", mats, query.xy[q_idx])
    group = owners * len(DIHEDRAL) + variant
    # Only groups with MIN_INLIERS distinct stored corners can pass: drop the rest at once.
    pairs = _unique_rows(np.column_stack([group, rows]))
    groups, sizes = np.unique(pairs[:, 0], return_counts=True)
    keep = np.isin(group, groups[sizes >= MIN_INLIERS])
    if not keep.any():
        return {}
    order = np.argsort(group[keep], kind="stable")
    group, q, b, rows = (
        group[keep][order],
        mapped[keep][order],
        b_xy[keep][order],
        rows[keep][order],
    )
    # A corner found on level l is placed to within about 2^(l/4) work-frame pixels.
    tolerance = FIT_TOLERANCE * 2.0 ** (query.level[q_idx][keep][order] / 4)
    scale = _group_scales(group, q, b)
    shift = b - scale[:, None] * q
    poses: dict[
        int, tuple[int, int, np.ndarray, float]
    ] = {}  # owner -> (votes, group, cell, offset)
    for offset in (0.0, VOTE_BIN / 2):  # a pose on a bin edge still gathers its votes
        cell = np.floor((shift + offset) / VOTE_BIN).astype(np.int64)
        votes = _unique_rows(np.column_stack([group, cell, rows]))  # one per stored corner
        found, counts = _unique_rows(votes[:, :3], return_counts=True)
        # Per owner, its first best-supported pose (in `found` order), without a Python loop
        # over every pose cell (tens of thousands for a busy photo): only over owners.
        owner_of = found[:, 0] // len(DIHEDRAL)
        order = np.lexsort((np.arange(len(found)), -counts, owner_of))
        firsts = order[np.r_[True, owner_of[order][1:] != owner_of[order][:-1]]]
        for i in firsts.tolist():
            owner, count = int(owner_of[i]), int(counts[i])
            if count > poses.get(owner, (0,))[0]:
                poses[owner] = (count, int(found[i, 0]), found[i, 1:], offset)
    best: dict[int, int] = {}
    for owner, (count, pose_group, pose_cell, offset) in poses.items():
        if count < MIN_INLIERS:
            best[owner] = count
            continue
        start, stop = np.searchsorted(group, [pose_group, pose_group + 1])
        gq, gb, grows, gtol = q[start:stop], b[start:stop], rows[start:stop], tolerance[start:stop]
        voted = np.all(np.floor((shift[start:stop] + offset) / VOTE_BIN) == pose_cell, axis=1)
        agreeing, pose = _fitted_inliers(gq, gb, grows, voted, gtol)
        if stored is not None and agreeing >= MIN_INLIERS:
            variant_of = pose_group % len(DIHEDRAL)
            expected = _expected_inside(stored(owner), pose, DIHEDRAL[variant_of], query.frame)
            if agreeing < MIN_COVERAGE * expected:
                agreeing = 0  # same scene, another photograph: most corners disagree
            else:
                displaced, second = _other_motion(gq, gb, grows, pose, gtol)
                if (
                    second > MAX_SECOND_MOTION
                    or (displaced > MAX_DISPLACED and agreeing < FULL_COVERAGE * expected)
                    or _looser_model_gain(gq, gb, grows, pose, gtol) >= MIN_MODEL_GAIN
                ):
                    agreeing = 0  # what the pose misses is there, moved: another photograph
        best[owner] = agreeing
    return best


def _expected_inside(
    stored_xy: np.ndarray, pose: tuple[float, np.ndarray], m: np.ndarray, frame: tuple[int, int]
) -> int:
    """How many of an entry's stored corners the pose puts inside the query's frame (away from
    the border, where no corner is described): what a true crop of it would show again."""
    scale, shift = pose
    w, h = frame
    if scale <= 0 or not w or not h or len(stored_xy) == 0:
        return 0
    mapped = (stored_xy - shift) / scale  # = M^T q, so q = M · mapped
    q = mapped @ m.T
    margin = RADIUS + 2
    inside = (
        (q[:, 0] >= margin) & (q[:, 1] >= margin) & (q[:, 0] < w - margin) & (q[:, 1] < h - margin)
    )
    return int(inside.sum())


def _other_motion(
    q: np.ndarray,
    b: np.ndarray,
    rows: np.ndarray,
    pose: tuple[float, np.ndarray],
    tolerance: np.ndarray,
) -> tuple[int, int]:
    """(stored corners matched only DISPLACED off the pose, the most stored corners that one
    other offset beyond DISPLACED[0] gathers within MOTION_BIN) for one owner's matches under its
    fitted pose.

    A crop, resize or re-encode keeps one motion: a stored corner it shows again lies on the
    pose, and a corner it lost matches, if at all, a look-alike anywhere in the picture. Another
    photograph of the same scene shows the objects the pose misses again, a few pixels off —
    a nearer object moved further (parallax), a subject moved, a turned camera's far side — and
    a whole object's corners move together. Measured on generated pairs: same-scene pairs showed
    5-26 displaced corners and second motions of 2-15; copies that match showed 0-7 and 0-4."""
    scale, shift = pose
    offset = b - (scale * q + shift)
    off = np.hypot(*offset.T)
    agreeing = np.isin(rows, rows[off <= tolerance])
    moved = ~agreeing & (off > DISPLACED[0])
    displaced = len(np.unique(rows[moved & (off <= DISPLACED[1])]))
    if not moved.any():
        return displaced, 0
    vectors, moved_rows = offset[moved], rows[moved]
    second = 0
    for start in range(0, len(vectors), 256):  # a few hundred matches: bounded memory anyway
        gap = vectors[start : start + 256, None, :] - vectors[None, :, :]
        i, j = np.nonzero(np.hypot(gap[..., 0], gap[..., 1]) <= MOTION_BIN)
        # Per displaced match i, the distinct stored corners whose offset lies within MOTION_BIN.
        pairs = _unique_rows(np.column_stack([i, moved_rows[j]]))
        second = max(second, int(np.bincount(pairs[:, 0]).max()))
    return displaced, second


def _looser_model_gain(
    q: np.ndarray,
    b: np.ndarray,
    rows: np.ndarray,
    pose: tuple[float, np.ndarray],
    tolerance: np.ndarray,
) -> int:
    """How many more distinct stored corners than the similarity `pose` an affine map, or a
    homography, explains within `tolerance`, each grown from the similarity's agreeing matches
    (fitted by least squares, its agreeing set taken again, GROW_STEPS times): the larger gain.

    A crop, resize, mirror or re-encode is a similarity of the banked picture, so a looser
    model finds nothing more to explain than a stray corner (measured: 0-2 on 467 copies).
    Another photograph is not: a camera turned a few degrees maps the scene by a homography
    and parallax bends it further, and the corners just beyond the similarity's tolerance
    join a looser model as it grows across the picture."""
    scale, shift = pose
    start = np.hypot(*(b - (scale * q + shift)).T) <= tolerance
    base = len(np.unique(rows[start]))
    best = 0
    for fit in (_affine_map, _homography_map):
        chosen = start
        for _ in range(GROW_STEPS):
            if len(np.unique(rows[chosen])) < 5:
                break
            mapped = fit(q[chosen], b[chosen], q)
            if mapped is None:
                break
            now = np.hypot(*(b - mapped).T) <= tolerance
            if np.array_equal(now, chosen):
                break
            chosen = now
        best = max(best, len(np.unique(rows[chosen])) - base)
    return best


def _affine_map(src: np.ndarray, dst: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """`points` under the least-squares affine map taking src to dst."""
    design = np.column_stack([src, np.ones(len(src))])
    coef, _, rank, _ = np.linalg.lstsq(design, dst, rcond=None)
    if rank < 3:
        return None
    return np.column_stack([points, np.ones(len(points))]) @ coef


def _homography_map(src: np.ndarray, dst: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """`points` under the homography taking src to dst (direct linear transform on coordinates
    normalised to the origin and unit spread, as Hartley's), None when degenerate."""

    def normaliser(p: np.ndarray) -> np.ndarray:
        centre = p.mean(axis=0)
        spread = float(np.sqrt(((p - centre) ** 2).sum(axis=1).mean())) or 1.0
        k = np.sqrt(2) / spread
        return np.array([[k, 0, -k * centre[0]], [0, k, -k * centre[1]], [0, 0, 1]])

    def apply(h: np.ndarray, p: np.ndarray) -> np.ndarray:
        out = np.column_stack([p, np.ones(len(p))]) @ h.T
        return out[:, :2] / out[:, 2:3]

    t_src, t_dst = normaliser(src), normaliser(dst)
    s, d = apply(t_src, src), apply(t_dst, dst)
    n = len(s)
    a = np.zeros((2 * n, 9))
    a[0::2, 0:2], a[0::2, 2] = s, 1
    a[1::2, 3:5], a[1::2, 5] = s, 1
    a[0::2, 6:8], a[0::2, 8] = -d[:, :1] * s, -d[:, 0]
    a[1::2, 6:8], a[1::2, 8] = -d[:, 1:] * s, -d[:, 1]
    h = np.linalg.svd(a)[2][-1].reshape(3, 3)
    h = np.linalg.inv(t_dst) @ h @ t_src
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = apply(h, points)
    if not np.isfinite(mapped).all():
        return None
    return mapped


def _fitted_inliers(
    q: np.ndarray, b: np.ndarray, rows: np.ndarray, voted: np.ndarray, tolerance: np.ndarray
) -> tuple[int, tuple[float, np.ndarray]]:
    """Distinct stored corners within `tolerance` (per match) of one least-squares similarity (scale and
    translation; the dihedral variant is fixed) fitted to the voted matches, refitted once.

    The vote bins tolerate VOTE_BIN pixels of disagreement, which another photograph of the same
    scene fills: parallax between depths, a camera turned a few degrees. A crop, resize or
    re-encode of one picture keeps every corner on one similarity to within a pixel or two."""
    chosen = voted
    scale, shift = 1.0, np.zeros(2)
    for _ in range(2):
        if chosen.sum() < 2:
            return int(chosen.sum()), (scale, shift)
        qc, bc = q[chosen] - q[chosen].mean(axis=0), b[chosen] - b[chosen].mean(axis=0)
        spread = float((qc * qc).sum())
        scale = float((qc * bc).sum()) / spread if spread > 0 else 1.0
        shift = b[chosen].mean(axis=0) - scale * q[chosen].mean(axis=0)
        chosen = np.hypot(*(b - (scale * q + shift)).T) <= tolerance
    return len(np.unique(rows[chosen])), (scale, shift)


def _group_scales(group: np.ndarray, q: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per match, the modal distance ratio (stored/query) over pairs of matches in its group,
    in 1/16-octave bins (4.4 %), each bin counted with its neighbours. `group` is sorted."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    # Every ordered pair (i, j), i < j, inside each group, without a Python loop over groups.
    member = np.repeat(np.arange(len(starts)), sizes)
    i_all = np.repeat(np.arange(len(group)), sizes[member])
    j_all = np.repeat(starts[member], sizes[member]) + _ranges(sizes[member])
    upper = j_all > i_all
    i, j = i_all[upper], j_all[upper]
    dq = np.hypot(*(q[i] - q[j]).T)
    db = np.hypot(*(b[i] - b[j]).T)
    usable = (dq > 2 * VOTE_BIN) & (db > 2 * VOTE_BIN)
    g = member[i[usable]]
    cells = np.round(np.log2(db[usable] / dq[usable]) * 16).astype(np.int64)
    keys, counts = _unique_rows(np.column_stack([g, cells]), return_counts=True)
    near = counts.copy()
    flat = keys[:, 0] * 4096 + keys[:, 1]  # cells stay within ±64 for sane scales
    for step in (-1, 1):
        at = np.searchsorted(flat, flat + step)
        found = (at < len(flat)) & (flat[np.minimum(at, len(flat) - 1)] == flat + step)
        near[found] += counts[at[found]]
    scale_of_group = np.ones(len(starts))
    if len(keys):
        order = np.lexsort((-near, keys[:, 0]))  # per group, the best-supported bin first
        first = np.r_[True, keys[order, 0][1:] != keys[order, 0][:-1]]
        winners = order[first]
        scale_of_group[keys[winners, 0]] = 2.0 ** (keys[winners, 1] / 16)
    return scale_of_group[member]


def _unique_rows(rows: np.ndarray, return_counts: bool = False) -> Any:
    """`np.unique(rows, axis=0)` (same lexicographic order) for integer matrices, through one
    int64 key per row: a 1-D sort, several times faster than numpy's row-wise unique."""

    def rowwise() -> Any:
        return (
            np.unique(rows, axis=0, return_counts=True)
            if return_counts
            else np.unique(rows, axis=0)
        )

    if len(rows) == 0:
        return rowwise()
    low = rows.min(axis=0)
    span = rows.max(axis=0) - low + 1
    if float(np.prod(span.astype(np.float64))) >= 2.0**62:
        return rowwise()
    keys = np.ravel_multi_index(tuple((rows - low).T), tuple(int(n) for n in span))
    unique_keys, counts = np.unique(keys, return_counts=True)
    back = np.column_stack(np.unravel_index(unique_keys, tuple(int(n) for n in span))) + low
    return (back, counts) if return_counts else back


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..l0-1, 0..l1-1, ...]."""
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - lengths, lengths)
