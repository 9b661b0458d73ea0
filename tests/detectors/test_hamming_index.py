"""The wide chunks a large PDQ bank is split into (23 bits, radius 2 at distance 31) find exactly
what brute force finds, as the 16-bit chunks do (tests/detectors/test_hash_bank.py)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import hamming_index
from detectors.hamming_index import HammingIndex, near_pairs


@pytest.mark.parametrize("max_distance", [0, 22, 31, 40])
def test_wide_chunks_equal_brute_force(max_distance: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hamming_index, "WIDE_ROWS", 1000)
    rng = np.random.default_rng(max_distance)
    words = rng.integers(0, 2**64, size=(3000, 4), dtype=np.uint64)
    index = HammingIndex.build(words, np.arange(3000)).without(np.array([5]))
    assert index._base.bits == hamming_index.WIDE_BITS
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
