"""The wide chunks a large PDQ bank is split into (23 bits, radius 2 at distance 31) and the
16-bit ones find exactly what brute force finds, with the spare chunks looked up one bit
narrower (at distance 31 one 23-bit chunk at radius 1; at 22, ten of the eleven)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import hamming_index
from detectors.hamming_index import HammingIndex, near_pairs


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("max_distance", [0, 16, 22, 31, 40])
def test_chunks_equal_brute_force(
    max_distance: int, wide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hamming_index, "WIDE_ROWS", 1000 if wide else 1 << 40)
    rng = np.random.default_rng(max_distance)
    words = rng.integers(0, 2**64, size=(3000, 4), dtype=np.uint64)
    index = HammingIndex.build(words, np.arange(3000)).without(np.array([5]))
    assert index._base.bits == (hamming_index.WIDE_BITS if wide else 16)
    bits = np.unpackbits(words[:40].view(np.uint8), axis=1)
    for n, row in enumerate(bits):  # planted neighbours at every distance up to 40
        row[rng.choice(256, n, replace=False)] ^= 1
    queries = np.packbits(bits, axis=1).view(np.uint64)
    q, ids, dist = index.pairs(queries, max_distance)
    bq, rows, bdist = near_pairs(words, queries, max_distance)
    alive = rows != 5
    expected = set(
        zip(bq[alive].tolist(), rows[alive].tolist(), bdist[alive].tolist(), strict=True)
    )
    assert set(zip(q.tolist(), ids.tolist(), dist.tolist(), strict=True)) == expected
    assert len(expected) >= min(max_distance, 39)


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("max_distance", [22, 31])
def test_neighbours_spread_evenly_over_the_chunks_are_found(
    max_distance: int, wide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hardest neighbours for the pigeonhole: every chunk one bit past its radius but one,
    which sits exactly at its radius (the total is then max_distance, or less)."""
    monkeypatch.setattr(hamming_index, "WIDE_ROWS", 1000 if wide else 1 << 40)
    rng = np.random.default_rng(max_distance + wide)
    words = rng.integers(0, 2**64, size=(3000, 4), dtype=np.uint64)
    index = HammingIndex.build(words, np.arange(3000))
    block = index._base
    radius = max_distance // block.chunks
    spare = block.chunks * (radius + 1) - (max_distance + 1)
    radii = [radius - (c >= block.chunks - spare) for c in range(block.chunks)]
    queries = []
    for short in range(block.chunks):  # the chunk that sits at its radius
        bits = np.unpackbits(words[short : short + 1].view(np.uint8), axis=1, bitorder="little")
        for c, r in enumerate(radii):
            flips = min(r + (c != short), block.bits)
            if flips > 0:
                bits[0, c * block.bits + rng.choice(block.bits, flips, replace=False)] ^= 1
        queries.append(np.packbits(bits, axis=1, bitorder="little").view(np.uint64)[0])
    q = np.array(queries)
    distances = np.bitwise_count(q ^ words[: block.chunks]).sum(axis=1)
    assert distances.max() <= max_distance and distances.max() >= max_distance - 1
    found = index.search(q, max_distance)
    assert all(found.get(row) == distances[row] for row in range(block.chunks))
