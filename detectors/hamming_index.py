"""An immutable 256-bit Hamming-radius index: multi-index hashing over numpy, no extra dependency.

Brute force (XOR + popcount over every row) costs ~17 ms per query hash at 10^6 rows on one core,
so the eight dihedral variants of one image would take ~140 ms. Multi-index hashing (Norouzi et
al., "Fast Search in Hamming Space with Multi-Index Hashing", the scheme behind faiss's
IndexBinaryMultiHash) splits each hash into 16 chunks of 16 bits: by pigeonhole, two hashes within
distance d agree within d // 16 bits on at least one chunk. Each chunk column is kept sorted, a
query looks up its chunk values and their near neighbours with `searchsorted`, and only those
candidates get the exact distance. With PDQ's balanced bits a query at d ≤ 31 touches ~16×17×15
rows of 10^6 instead of all of them. Keypoint descriptors are not balanced (most corners look
alike), so their chunk buckets are crowded: a block then switches to brute force, word by word
over blocks of queries (~1.3 ns per query-row pair), as soon as the lookups would cost more.

Instances never change after construction (`extended`/`without` return new ones sharing arrays),
so a reader holding one is safe while a writer builds the next: copy-on-write.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np

# Below this many rows brute force is as fast as the lookups and needs no sorting.
MIH_MIN_ROWS = 256
# From this many rows on, chunks are WIDE_BITS wide: 16-bit buckets would hold ~150 rows each at
# 10^7 and every one of them costs a random read; 23-bit ones hold ~1 (Norouzi et al. choose
# chunks of about log2(rows) bits). Their offset tables cost 11 × 32 MiB, so not below this.
WIDE_ROWS = 1 << 20
WIDE_BITS = 23
# Rows added after the base was built live in a second, small block up to this many.
TAIL_MAX_ROWS = 16384
# Brute force compares this many (query, row) pairs at a time.
BRUTE_BLOCK = 1 << 18
BRUTE_COST = 16


@cache
def _flip_masks(radius: int, bits: int = 16) -> np.ndarray:
    """Every `bits`-wide XOR mask of at most `radius` set bits (16 bits, radius 1: 17 masks)."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << b for b in chosen) for chosen in combinations(range(bits), r))
    return np.array(masks, dtype=np.uint32)


def _chunk(words: np.ndarray, index: int, bits: int) -> np.ndarray:
    """Chunk `index` (bits index·bits .. +bits of the 256, word 0's low bits first) as uint32."""
    start = index * bits
    word, shift = divmod(start, 64)
    value = words[:, word] >> np.uint64(shift)
    if shift + bits > 64:
        value = value | (words[:, word + 1] << np.uint64(64 - shift))
    return (value & np.uint64((1 << bits) - 1)).astype(np.uint32)


def near_pairs(
    rows: np.ndarray, queries: np.ndarray, max_distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force: (query index, row index, distance) of every pair within `max_distance`.
    Word by word over blocks of queries, so the temporaries stay small (a (Q, N, 4) array would
    be tens of megabytes for a few hundred keypoints against a few thousand)."""
    qs, cols, dists = [], [], []
    step = max(1, BRUTE_BLOCK // max(1, len(rows)))
    for start in range(0, len(queries), step):
        block = queries[start : start + step]
        dist = np.bitwise_count(block[:, None, 0] ^ rows[None, :, 0]).astype(np.uint16)
        for word in (1, 2, 3):
            dist += np.bitwise_count(block[:, None, word] ^ rows[None, :, word])
        q, col = np.nonzero(dist <= max_distance)
        qs.append(q + start)
        cols.append(col)
        dists.append(dist[q, col])
    return np.concatenate(qs), np.concatenate(cols), np.concatenate(dists)


class _Block:
    """Rows of hashes with their owner ids; per chunk, the rows sorted by that chunk's value and
    where each value's run starts (2^bits + 1 offsets), when large enough: the rows of one chunk
    value are one slice, found without a search."""

    def __init__(self, words: np.ndarray, ids: np.ndarray, alive: np.ndarray | None = None) -> None:
        self.words = words
        self.ids = ids
        self.alive = alive if alive is not None else np.ones(len(ids), dtype=bool)
        self.all_alive = bool(self.alive.all())
        self.bits = WIDE_BITS if len(ids) >= WIDE_ROWS else 16
        self.chunks = 256 // self.bits
        self.sorted_rows: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        if len(ids) >= MIH_MIN_ROWS:
            for c in range(self.chunks):
                column = _chunk(words, c, self.bits)
                self.sorted_rows.append(np.argsort(column, kind="stable").astype(np.int32))
                counts = np.bincount(column, minlength=1 << self.bits)
                self.offsets.append(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))

    def __len__(self) -> int:
        return len(self.ids)

    def _candidate_pairs(
        self, queries: np.ndarray, radii: list[int]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(query index, row) pairs sharing chunk c within radii[c] bits (a pair may repeat),
        or None when there are so many that brute force is cheaper."""
        qs: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        for c, radius in enumerate(radii):
            if radius < 0:
                continue
            masks = _flip_masks(radius, self.bits)
            owners = np.repeat(np.arange(len(queries)), len(masks))
            keys = (_chunk(queries, c, self.bits)[:, None] ^ masks[None, :]).ravel()
            lo = self.offsets[c][keys]
            lengths = self.offsets[c][keys.astype(np.int64) + 1] - lo
            total = int(lengths.sum())
            if total == 0:
                continue
            # Positions lo[i]..hi[i]-1 for every key, without a Python loop over keys.
            ends = np.cumsum(lengths)
            positions = np.arange(total) + np.repeat(lo - (ends - lengths), lengths)
            rows.append(self.sorted_rows[c][positions].astype(np.int64))
            qs.append(np.repeat(owners, lengths))
            # Skewed buckets (correlated bits, as keypoint descriptors have): once the chunks
            # seen so far project more candidates than brute force would compare pairs (a
            # candidate costs ~BRUTE_COST times a brute-force pair), brute force is cheaper.
            projected = sum(len(r) for r in rows) * self.chunks // (c + 1)
            if projected * BRUTE_COST > len(queries) * len(self):
                return None
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(qs), np.concatenate(rows)

    def pairs(
        self, queries: np.ndarray, max_distance: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, id, distance) of every live row within `max_distance` of a query."""
        if len(self) == 0 or len(queries) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint16)
        # Pigeonhole with per-chunk radii r_c: if every chunk differed by more than r_c bits the
        # distance would be at least sum(r_c + 1), so sum(r_c + 1) > max_distance is enough.
        # Uniform radii overshoot (11 chunks at radius 2 cover 32, not 31): the spare chunks
        # get one bit less (at 31 bits one chunk is looked up at radius 1: 24 keys, not 277).
        radius = max_distance // self.chunks
        spare = self.chunks * (radius + 1) - (max_distance + 1)
        radii = [radius - (c >= self.chunks - spare) for c in range(self.chunks)]
        candidates = self._candidate_pairs(queries, radii) if self.offsets and radius <= 2 else None
        if candidates is not None:
            q, rows = candidates
            if not self.all_alive:
                keep = self.alive[rows]
                q, rows = q[keep], rows[keep]
            # np.take, not self.words[rows]: numpy's fancy indexing of a 2-D array costs
            # ~0.3 µs a row at 10^7 rows (15 ms for one image's candidates), take ~15 ns.
            stored = np.take(self.words, rows, axis=0)  # one gather per candidate
            probe = np.take(queries, q, axis=0)
            dist = np.bitwise_count(probe[:, 0] ^ stored[:, 0]).astype(np.uint16)
            for word in (1, 2, 3):
                dist += np.bitwise_count(probe[:, word] ^ stored[:, word])
            hit = dist <= max_distance
            # Deduplicate only the hits: a pair found through several chunks counts once.
            pairs, first = np.unique(q[hit] * len(self) + rows[hit], return_index=True)
            q, rows, dist = pairs // len(self), pairs % len(self), dist[hit][first]
        else:
            live = np.flatnonzero(self.alive)
            q, cols, dist = near_pairs(np.take(self.words, live, axis=0), queries, max_distance)
            rows = live[cols]
        keep = dist <= max_distance
        return q[keep], self.ids[rows[keep]], dist[keep]


class HammingIndex:
    """Rows of 256-bit hashes (four uint64 words), each owned by an integer id (several rows may
    share one id: the windows of one image). Immutable; `search` is safe from any thread."""

    def __init__(self, base: _Block | None = None, tail: _Block | None = None) -> None:
        empty = _Block(np.empty((0, 4), np.uint64), np.empty(0, np.int64))
        self._base = base or empty
        self._tail = tail or empty

    @classmethod
    def build(cls, words: np.ndarray, ids: np.ndarray) -> HammingIndex:
        return cls(_Block(np.ascontiguousarray(words, dtype=np.uint64), ids.astype(np.int64)))

    def __len__(self) -> int:
        return int(self._base.alive.sum() + self._tail.alive.sum())

    def extended(self, words: np.ndarray, ids: np.ndarray) -> HammingIndex:
        """A new index with these rows added: they join the small tail block (re-sorted) while it
        stays under TAIL_MAX_ROWS, else everything is rebuilt into one block (dead rows dropped)."""
        if len(ids) == 0:
            return self
        tail_words = np.concatenate([self._tail.words, words.astype(np.uint64)])
        tail_ids = np.concatenate([self._tail.ids, ids.astype(np.int64)])
        tail_alive = np.concatenate([self._tail.alive, np.ones(len(ids), bool)])
        if len(tail_ids) <= TAIL_MAX_ROWS:
            # Re-sorting a tail of ≤ TAIL_MAX_ROWS costs milliseconds; the base is left alone.
            return HammingIndex(self._base, _Block(tail_words, tail_ids, tail_alive))
        keep_base, keep_tail = self._base.alive, tail_alive
        all_words = np.concatenate([self._base.words[keep_base], tail_words[keep_tail]])
        all_ids = np.concatenate([self._base.ids[keep_base], tail_ids[keep_tail]])
        return HammingIndex.build(all_words, all_ids)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(words, ids) of every live row, base then tail."""
        blocks = (self._base, self._tail)
        return (
            np.concatenate([b.words[b.alive] for b in blocks]),
            np.concatenate([b.ids[b.alive] for b in blocks]),
        )

    def without(self, ids: np.ndarray) -> HammingIndex:
        """A new index where every row owned by one of `ids` is dead (arrays shared, masks copied)."""

        def masked(block: _Block) -> _Block:
            if len(block) == 0:
                return block
            copy = _Block.__new__(_Block)
            copy.words, copy.ids = block.words, block.ids
            copy.bits, copy.chunks = block.bits, block.chunks
            copy.offsets, copy.sorted_rows = block.offsets, block.sorted_rows
            copy.alive = block.alive & ~np.isin(block.ids, ids)
            copy.all_alive = bool(copy.alive.all())
            return copy

        return HammingIndex(masked(self._base), masked(self._tail))

    def pairs(
        self, queries: np.ndarray, max_distance: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, id, distance) for every live row within `max_distance` of a query."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, 4)
        found = [block.pairs(queries, max_distance) for block in (self._base, self._tail)]
        return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))  # type: ignore[return-value]

    def search(self, queries: np.ndarray, max_distance: int) -> dict[int, int]:
        """{id: smallest distance} over every live row within `max_distance` of any query."""
        _, ids, dists = self.pairs(queries, max_distance)
        best: dict[int, int] = {}
        for owner, dist in zip(ids.tolist(), dists.tolist(), strict=True):
            if dist < best.get(owner, max_distance + 1):
                best[owner] = dist
        return best
