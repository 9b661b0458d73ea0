"""The keypoint corner index: exact below EXACT_ROWS (so small banks match exactly as before),
bucketed above it with every returned pair a true one at its true distance, planted near copies
still found, removed and added corners honoured, and a community's view never crowded out by
another community's corners."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import corner_index
from detectors import keypoints as kp
from detectors.base import BankScope
from detectors.corner_index import CornerIndex
from detectors.hamming_index import near_pairs
from detectors.hashes import BankEntry, HashBank, compute_signature, neardup_parts
from tests.detectors.hash_images import photo_like


def skewed_rows(count: int, seed: int) -> np.ndarray:
    """Keypoint-like descriptors: a few shared patterns, each row ~10 % of its bits off one."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 2**63, size=(8, 4), dtype=np.uint64)
    noise = np.packbits(rng.random((count, 256)) < 0.1, axis=1).view(np.uint64)
    return patterns[rng.integers(0, 8, count)] ^ noise


def flipped(words: np.ndarray, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.unpackbits(words.view(np.uint8), axis=1)
    for row in out:
        row[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(out, axis=1).view(np.uint64)


def reference(
    words: np.ndarray,
    ids: np.ndarray,
    queries: np.ndarray,
    keep: int,
    visible: np.ndarray | None = None,
) -> set[tuple[int, int, int]]:
    """What HashBank did before the index: every pair within 26, filtered, then kp.nearest."""
    q, cols, dist = near_pairs(words, queries, kp.MATCH_DISTANCE)
    if visible is not None:
        seen = visible[cols]
        q, cols, dist = q[seen], cols[seen], dist[seen]
    kept_q, kept_cols = kp.nearest(q, ids[cols], dist, keep)
    lookup = {
        (a, b): int(d)
        for a, b, d in zip(q.tolist(), ids[cols].tolist(), dist.tolist(), strict=True)
    }
    return {
        (a, b, lookup[(a, b)]) for a, b in zip(kept_q.tolist(), kept_cols.tolist(), strict=True)
    }


def as_set(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> set[tuple[int, int, int]]:
    return set(zip(*(part.tolist() for part in found), strict=True))


def test_small_banks_are_searched_exactly() -> None:
    words = skewed_rows(3000, 1)
    ids = np.arange(100, 3100)
    queries = skewed_rows(200, 2)
    index = CornerIndex.build(words, ids)
    assert as_set(index.nearest(queries, kp.MATCH_DISTANCE, 16)) == reference(
        words, ids, queries, 16
    )


def test_buckets_return_true_pairs_and_find_planted_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corner_index, "EXACT_ROWS", 1000)
    words = skewed_rows(6000, 3)
    ids = np.arange(6000)
    index = CornerIndex.build(words, ids)
    planted = np.arange(0, 6000, 60)
    queries = flipped(words[planted], 6, seed=4)  # re-encoded corners: a few bits off
    exact = reference(words, ids, queries, 16)
    assert as_set(index.nearest(queries, kp.MATCH_DISTANCE, 16, exact=True)) == exact
    found = as_set(index.nearest(queries, kp.MATCH_DISTANCE, 16))
    true_distance = {(q, i): d for q, i, d in exact}
    brute = np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(axis=2)
    assert all(brute[q, i] == d <= kp.MATCH_DISTANCE for q, i, d in found)
    assert len(found & exact) >= 0.9 * len(exact)  # approximate, but close
    hits = {(q, i) for q, i, _ in found}
    assert all((q, int(i)) in hits for q, i in enumerate(planted) if (q, int(i)) in true_distance)


def test_grouped_centres_route_to_planted_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """With many small groups (a query opens 4 of ~23), planted copies a few bits off are still
    found, every pair is true, and most of the exact search's pairs are kept."""
    monkeypatch.setattr(corner_index, "EXACT_ROWS", 1000)
    monkeypatch.setattr(corner_index, "GROUP_SIZE", 8)
    monkeypatch.setattr(corner_index, "GROUP_PROBES", 4)
    monkeypatch.setattr(corner_index, "FILE_GROUPS", 2)
    words = skewed_rows(6000, 8)
    ids = np.arange(6000)
    index = CornerIndex.build(words, ids)
    assert index._buckets is not None and len(index._buckets.group_centres) > 4 * 4
    planted = np.arange(0, 6000, 50)
    queries = flipped(words[planted], 5, seed=9)
    exact = reference(words, ids, queries, 16)
    found = as_set(index.nearest(queries, kp.MATCH_DISTANCE, 16))
    brute = np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(axis=2)
    assert all(brute[q, i] == d <= kp.MATCH_DISTANCE for q, i, d in found)
    assert len(found & exact) >= 0.8 * len(exact)
    hits = {(q, i) for q, i, _ in found}
    exact_hits = {(q, i) for q, i, _ in exact}
    assert all((q, int(i)) in hits for q, i in enumerate(planted) if (q, int(i)) in exact_hits)


def test_lane_sums_are_exact_hamming_distances() -> None:
    """_hamming's two-lane sum equals a plain popcount, up to 256 (a row against its complement)."""
    rows = skewed_rows(500, 10)
    others = np.concatenate([~rows[:10], skewed_rows(490, 11)])
    expected = np.bitwise_count(rows ^ others).sum(axis=1)
    assert (corner_index._hamming(rows, others) == expected).all()
    assert corner_index._hamming(rows[:10], ~rows[:10]).tolist() == [256] * 10


def test_first_keeps_exactly_k_per_owner_ties_in_order() -> None:
    rng = np.random.default_rng(12)
    for _ in range(100):
        owner = np.sort(rng.integers(0, 6, int(rng.integers(1, 80))))
        dist = rng.integers(0, 5, len(owner))  # many ties
        keep = int(rng.integers(1, 8))
        chosen = set(np.flatnonzero(corner_index._first(owner, dist, keep)).tolist())
        expected: set[int] = set()
        for o in np.unique(owner):
            rows = np.flatnonzero(owner == o)
            expected |= set(rows[np.lexsort((rows, dist[rows]))][:keep].tolist())
        assert chosen == expected


def test_removed_corners_vanish_and_added_ones_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corner_index, "EXACT_ROWS", 1000)
    monkeypatch.setattr(corner_index, "TAIL_ROWS", 300)
    words = skewed_rows(3000, 5)
    index = CornerIndex.build(words[:2000], np.arange(2000))
    index = index.extended(words[2000:2200], np.arange(2000, 2200))  # exact tail
    index = index.without(np.array([7, 2100]))
    assert len(index) == 2198
    found = as_set(index.nearest(words[[7, 8, 2100, 2101]], 0, 4))
    assert {(q, i) for q, i, _ in found} == {(1, 8), (3, 2101)}
    rebuilt = index.extended(words[2200:], np.arange(2200, 3000))  # tail overflows: rebucketed
    assert len(rebuilt) == 2998
    assert {(q, i) for q, i, _ in as_set(rebuilt.nearest(words[[7, 2999]], 0, 4))} == {(1, 2999)}


def test_invisible_corners_never_crowd_out_visible_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corner_index, "EXACT_ROWS", 1000)
    words = skewed_rows(4000, 6)
    target = words[:1]
    # 40 exact copies owned by someone else, then the visible one a few bits away.
    rows = np.concatenate([np.repeat(target, 40, axis=0), flipped(target, 3, seed=7), words[1:]])
    ids = np.arange(len(rows))
    visible = np.ones(len(rows), bool)
    visible[:40] = False
    for built in (CornerIndex.build(rows, ids), CornerIndex.build(rows[:900], ids[:900])):
        found = built.nearest(target, kp.MATCH_DISTANCE, 16, visible=lambda r: visible[r])
        assert 40 in found[1].tolist() and not set(found[1].tolist()) & set(range(40))
        assert len(found[1]) <= 16


def test_a_community_is_not_crowded_out_by_another_communitys_copies() -> None:
    """Twenty copies of an image in community 2's bank must not take the nearest corners that
    community 1's own copy needs: scoped before the ranking, community 1 still matches."""
    image = photo_like(21)
    _, corners = neardup_parts(compute_signature(image).neardup)
    entries = [BankEntry(1, "confirmed", "neardup", corners, "confirmed", workspace_id=1)]
    entries += [
        BankEntry(10 + n, "confirmed", "neardup", corners, "confirmed", workspace_id=2)
        for n in range(20)
    ]
    bank = HashBank(entries)
    query = compute_signature(image.crop((30, 20, 600, 450)))
    assert [m.entry_id for m in bank.match(query, scope=BankScope(community=1))] == [1]
    others = {m.entry_id for m in bank.match(query, scope=BankScope(community=2))}
    assert 1 not in others and others
