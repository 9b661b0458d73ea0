"""The keypoint corner index: each query corner's nearest stored corners without comparing it to
every stored corner of every banked image.

A query photo describes ~300 corners under eight dihedral patterns (~2,400 descriptors; ~1,300
for the bench's crops), and a banked image stores up to 40, so exact search costs 2,400 × 40
comparisons per banked image: 7–9 s CPU at 10,000 images. Multi-index hashing
(detectors/hamming_index.py) does not help here: BRIEF bits on generated and real photos are
biased and correlated, so a 16-bit chunk of 7,700 stored corners took only ~1,600 of its 65,536
values and a query's bucket held 0.5 % of all rows.

So the corners are bucketed by their data instead (an inverted file, IVF, as faiss's
IndexBinaryIVF does): LIST_ROWS stored corners per bucket on average, around a centre drawn from
the stored corners themselves (denser regions get more centres). The ~12,000 centres of a
10,000-image bank are themselves grouped around GROUP_SIZE-ish group centres (a two-level tree):
a query descriptor compares with every group centre (~190), then with the centres of its
GROUP_PROBES nearest groups (~700), opens its PROBES nearest buckets and gets exact distances
there, and each block of queries is cut down to each query's `keep` closest before the next. A
stored corner is filed under its nearest centre among its FILE_GROUPS nearest groups (building
384,000 corners then takes ~6 s CPU, not ~38 s against all 12,000 centres). That is
approximate: a stored corner within MATCH_DISTANCE whose bucket is not among the query's PROBES
nearest is missed. bench/neardup_index.py measures what that costs in matches and corner pairs against the exact search
in the same run: at 10,000 banked images 95 % of the exact search's pairs are kept and no match
is lost, as with the previous layout (128-row buckets, 12 probes, every centre compared: 96 %).
Banks of fewer than EXACT_ROWS corners (~200 images, most tests' banks) are searched exactly, as are
corners added since the buckets were built (the tail).

Where the time goes (one crop query, 1,300 descriptors, 10,000 images): ~0.9 M query-centre and
~1.5 M query-corner comparisons (queries land in the denser buckets), each a gather, XOR,
popcount and selection: 83–115 ms CPU for the search in two bench runs on this loaded 2-core
machine, not the 20 ms asked. Fewer comparisons lose pairs (16 probes in 6 groups kept 91.5 %
of the exact search's, comparing centres on 128 of the 256 bits 85 %), and padding buckets to
16-row blocks (to broadcast instead of gathering per pair) was not faster. Gathers use np.take:
numpy's fancy indexing of a 2-D array cost 6–30× more per row here.

faiss-cpu (1.15.1) was tried for this and left out: on this 2-core machine its binary IVF search
was slower than these numpy buckets (~45 µs per query descriptor at 7,700 rows, nprobe 4 of 64),
its k-means training took ~45 s at 400,000 corners, and an index mutated in place would need a
lock around every search where this one is copy-on-write like HammingIndex.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from detectors.hamming_index import HammingIndex, near_pairs

# Below this many stored corners (~200 banked photos) exact search is as fast as the buckets
# (bench/neardup_index.py: ~1,300 query descriptors against 8,000 rows cost about the same).
EXACT_ROWS = 8_192
LIST_ROWS = 32  # stored corners per bucket, on average
PROBES = 24  # buckets opened per query descriptor
# The centres are themselves grouped around GROUP_SIZE-ish group centres; a query descriptor
# compares with every group centre, then only with the centres of its GROUP_PROBES nearest groups.
GROUP_SIZE = 64
GROUP_PROBES = 8
FILE_GROUPS = 3  # a stored corner is filed under the nearest centre of its 3 nearest groups
# Corners added after the buckets were built are searched exactly up to this many, then rebuilt.
TAIL_ROWS = 8_192
_SEED = 20261201  # which stored corners become centres: fixed, so a bank always buckets alike
_BLOCK = 1 << 20  # (query, centre) pairs compared per numpy step: bounds the temporaries
_PAIR_BLOCK = 1 << 17  # (query, stored corner) pairs gathered per step


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances (uint16) between 4-word rows, broadcast over the leading axes. The four
    per-word counts are summed as two 16-bit lanes of one uint32 over contiguous arrays: a third
    of the time of adding strided word columns."""
    counts = np.ascontiguousarray(np.bitwise_count(np.bitwise_xor(a, b)))  # (..., 4) uint8
    packed = counts.view(np.uint32)[..., 0]
    lanes = (packed & 0x00FF00FF) + ((packed >> 8) & 0x00FF00FF)
    return ((lanes & 0xFFFF) + (lanes >> 16)).astype(np.uint16)


def _distances(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Dense (len(queries), len(rows)) Hamming distances, word by word (for a dense matrix this
    is faster than _hamming's broadcast: its (Q, N, 4) temporaries cost more than four passes)."""
    dist = np.bitwise_count(queries[:, None, 0] ^ rows[None, :, 0]).astype(np.uint16)
    for word in (1, 2, 3):
        dist += np.bitwise_count(queries[:, None, word] ^ rows[None, :, word])
    return dist


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated aranges starts[i] .. starts[i] + lengths[i] - 1, without a Python loop."""
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    return np.arange(total) + np.repeat(starts - (ends - lengths), lengths)


def _nearest_centres(words: np.ndarray, centres: np.ndarray, count: int) -> np.ndarray:
    """(len(words), count) indices of each row's `count` nearest centres, in no set order."""
    out = np.empty((len(words), count), np.int64)
    step = max(1, _BLOCK // max(1, len(centres)))
    for start in range(0, len(words), step):
        dist = _distances(words[start : start + step], centres)
        if count == 1:
            out[start : start + step, 0] = np.argmin(dist, axis=1)
        elif count < len(centres):
            out[start : start + step] = np.argpartition(dist, count - 1, axis=1)[:, :count]
        else:
            out[start : start + step] = np.arange(len(centres))
    return out


def _cutoffs(q: np.ndarray, dist: np.ndarray, keep: int) -> np.ndarray:
    """Per query index (0 .. q.max()), its keep-th smallest distance (its largest if fewer)."""
    span = int(dist.max()) + 1
    counts = np.bincount(q * span + dist, minlength=(int(q.max()) + 1) * span)
    cumulative = np.cumsum(counts.reshape(-1, span), axis=1)
    cutoff = np.argmax(cumulative >= keep, axis=1)
    cutoff[cumulative[:, -1] < keep] = span - 1
    return cutoff


def _closest(q: np.ndarray, dist: np.ndarray, keep: int) -> np.ndarray:
    """Mask of the pairs that can be among their query's `keep` closest: distance at most the
    query's keep-th smallest (ties at that distance are left to kp.nearest's row order)."""
    if len(q) == 0:
        return np.zeros(0, bool)
    q, dist = q.astype(np.int64), dist.astype(np.int64)
    return dist <= _cutoffs(q, dist, keep)[q]


def _first(owner: np.ndarray, dist: np.ndarray, keep: int) -> np.ndarray:
    """Mask of exactly each owner's `keep` smallest distances (ties: the earliest), `owner`
    sorted. _closest keeps every tie, and ties are common at centre distances: 12 probes
    would open ~22 buckets."""
    if len(owner) == 0:
        return np.zeros(0, bool)
    owner, dist = owner.astype(np.int64), dist.astype(np.int64)
    cutoff = _cutoffs(owner, dist, keep)[owner]
    below = dist < cutoff
    tie = dist == cutoff
    room = keep - np.bincount(owner[below], minlength=int(owner[-1]) + 1)
    ties_before = np.cumsum(tie) - tie  # ties earlier in the array, then per owner
    first_of_owner = np.searchsorted(owner, np.arange(len(room)))
    rank = ties_before - ties_before[np.minimum(first_of_owner, len(owner) - 1)][owner]
    return below | (tie & (rank < room[owner]))


class _Buckets:
    """Stored corners grouped by nearest centre: `words` sorted by bucket, bucket b spanning
    words[starts[b]:starts[b + 1]]. The centres are sorted by nearest group centre, group g
    holding centres[group_starts[g]:group_starts[g + 1]]."""

    def __init__(self, words: np.ndarray, ids: np.ndarray) -> None:
        rng = np.random.default_rng(_SEED)
        distinct = np.unique(words, axis=0)
        count = max(1, min(len(distinct), round(len(words) / LIST_ROWS)))
        centres = distinct[np.sort(rng.choice(len(distinct), count, replace=False))]
        groups = max(1, round(count / GROUP_SIZE))
        self.group_centres = centres[np.sort(rng.choice(count, groups, replace=False))]
        group = _nearest_centres(centres, self.group_centres, 1)[:, 0]
        by_group = np.argsort(group, kind="stable")
        self.centres = centres[by_group]
        self.group_starts = np.searchsorted(group[by_group], np.arange(groups + 1))
        # Each stored corner joins its nearest centre among those of its FILE_GROUPS nearest
        # groups (not of all groups: that costs N × centres comparisons, ~20 s at 400,000).
        bucket = np.empty(len(words), np.int64)
        filed = min(FILE_GROUPS, groups) * count // groups  # centres compared per corner
        step = max(1, _PAIR_BLOCK // filed)
        for start in range(0, len(words), step):
            block = words[start : start + step]
            owner, centre = self._route(block, FILE_GROUPS, 1)
            bucket[start : start + step][owner] = centre
        order = np.argsort(bucket, kind="stable")
        self.words = words[order]
        self.ids = ids[order]
        self.starts = np.searchsorted(bucket[order], np.arange(count + 1)).astype(np.int64)

    @property
    def nbytes(self) -> int:
        arrays = (self.words, self.ids, self.starts, self.centres, self.group_centres)
        return sum(a.nbytes for a in arrays) + self.group_starts.nbytes

    def _route(self, queries: np.ndarray, groups: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(query index, centre) of each query's `count` nearest centres (ties: the first)
        among the centres of its `groups` nearest groups, sorted by query."""
        near = _nearest_centres(queries, self.group_centres, min(groups, len(self.group_centres)))
        owner = np.repeat(np.arange(len(queries)), near.shape[1])
        lo = self.group_starts[near.ravel()]
        lengths = self.group_starts[near.ravel() + 1] - lo
        centre = _ranges(lo, lengths)
        owner = np.repeat(owner, lengths)
        dist = _hamming(np.take(queries, owner, axis=0), np.take(self.centres, centre, axis=0))
        chosen = _first(owner, dist, count)
        return owner[chosen], centre[chosen]

    def pairs(
        self,
        queries: np.ndarray,
        max_distance: int,
        keep: int,
        accept: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, id, distance) within `max_distance` in each query's probed buckets,
        of ids `accept` lets through, pruned to what can be among each query's `keep` closest."""
        qs, ids, dists = [], [], []
        step = max(1, _PAIR_BLOCK // (PROBES * LIST_ROWS))
        for start in range(0, len(queries), step):
            block = queries[start : start + step]
            owner, bucket = self._route(block, GROUP_PROBES, PROBES)
            lo = self.starts[bucket]
            lengths = self.starts[bucket + 1] - lo
            positions = _ranges(lo, lengths)
            owner = np.repeat(owner, lengths)
            dist = _hamming(np.take(block, owner, axis=0), np.take(self.words, positions, axis=0))
            hit = np.flatnonzero(dist <= max_distance)
            owner, found, dist = owner[hit], np.take(self.ids, positions[hit]), dist[hit]
            seen = accept(found)
            owner, found, dist = owner[seen], found[seen], dist[seen]
            close = _closest(owner, dist, keep)
            qs.append(owner[close] + start)
            ids.append(found[close])
            dists.append(dist[close])
        if not qs:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16)
        return np.concatenate(qs), np.concatenate(ids), np.concatenate(dists)


class CornerIndex:
    """Stored corner descriptors (four uint64 words) with integer ids (the bank's corner rows).
    Immutable like HammingIndex: `extended` and `without` return new indexes sharing arrays."""

    def __init__(
        self,
        buckets: _Buckets | None = None,
        exact: HammingIndex | None = None,
        tail: HammingIndex | None = None,
        dead: np.ndarray | None = None,
    ) -> None:
        self._buckets = buckets  # None: the base is small and searched exactly
        self._exact = exact or HammingIndex()
        self._tail = tail or HammingIndex()
        self._dead = dead if dead is not None else np.empty(0, np.int64)  # sorted ids

    @classmethod
    def build(cls, words: np.ndarray, ids: np.ndarray) -> CornerIndex:
        words = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1, 4)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) < EXACT_ROWS:
            return cls(exact=HammingIndex.build(words, ids))
        return cls(buckets=_Buckets(words, ids))

    def __len__(self) -> int:
        based = (
            len(self._exact) if self._buckets is None else len(self._buckets.ids) - len(self._dead)
        )
        return based + len(self._tail)

    def _alive(self, ids: np.ndarray) -> np.ndarray:
        if len(self._dead) == 0:
            return np.ones(len(ids), bool)
        return ~np.isin(ids, self._dead, assume_unique=False)

    def extended(self, words: np.ndarray, ids: np.ndarray) -> CornerIndex:
        """New rows join the exact tail; past TAIL_ROWS everything is bucketed again."""
        if len(ids) == 0:
            return self
        tail = self._tail.extended(words, ids)
        if len(tail) <= TAIL_ROWS and (
            self._buckets is not None or len(self._exact) + len(tail) < EXACT_ROWS
        ):
            return CornerIndex(self._buckets, self._exact, tail, self._dead)
        all_words, all_ids = self._rows()
        tail_words, tail_ids = tail.rows()
        return CornerIndex.build(
            np.concatenate([all_words, tail_words]), np.concatenate([all_ids, tail_ids])
        )

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The live base rows (words, ids)."""
        if self._buckets is None:
            return self._exact.rows()
        keep = self._alive(self._buckets.ids)
        return self._buckets.words[keep], self._buckets.ids[keep]

    def without(self, ids: np.ndarray) -> CornerIndex:
        """A new index where these ids are dead."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._buckets is None:
            return CornerIndex(None, self._exact.without(ids), self._tail.without(ids))
        mine = ids[np.isin(ids, self._buckets.ids)]
        return CornerIndex(
            self._buckets, self._exact, self._tail.without(ids), np.union1d(self._dead, mine)
        )

    def nearest(
        self,
        queries: np.ndarray,
        max_distance: int,
        keep: int,
        visible: Callable[[np.ndarray], np.ndarray] | None = None,
        exact: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, id, distance) of each query's `keep` closest visible stored corners
        within `max_distance`, ties broken by id (kp.nearest's order). `visible` filters ids
        before the ranking, so invisible corners never crowd visible ones out. `exact` compares
        every bucketed corner too (the reference the benchmark measures against)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, 4)

        def accept(ids: np.ndarray) -> np.ndarray:
            seen = self._alive(ids)
            return seen & visible(ids) if visible is not None and len(ids) else seen

        parts = [self._tail.pairs(queries, max_distance)]
        if self._buckets is None:
            parts.append(self._exact.pairs(queries, max_distance))
        elif exact:
            b = self._buckets
            q, cols, dist = near_pairs(b.words, queries, max_distance)
            parts.append((q, b.ids[cols], dist))
        for n, (q, ids, dist) in enumerate(parts):
            seen = accept(ids) if len(ids) else np.zeros(0, bool)
            parts[n] = (q[seen], ids[seen], dist[seen])
        if self._buckets is not None and not exact:
            parts.append(self._buckets.pairs(queries, max_distance, keep, accept))
        q, ids, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
        close = _closest(q, dist, keep)
        q, ids, dist = q[close], ids[close], dist[close]
        order = np.lexsort((ids, dist, q))
        q, ids, dist = q[order], ids[order], dist[order]
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]]) if len(q) else np.empty(0, np.int64)
        rank = np.arange(len(q)) - np.repeat(starts, np.diff(np.r_[starts, len(q)]))
        chosen = rank < keep
        return q[chosen], ids[chosen], dist[chosen]
