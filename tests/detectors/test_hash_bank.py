"""HashBank and the `hashes` detector: exact digests, PDQ at the distance limit, dihedral variants,
quality, allow-lists, removal, the multi-index search against brute force, concurrent reads,
and which PDQ windows may match at which distance."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageOps

from bot.core.verdict import Severity
from detectors import hamming_index
from detectors import keypoints as kp
from detectors.base import KNOWN_CONTENT, Detector, ImageInput
from detectors.fusion import fuse
from detectors.hamming_index import HammingIndex
from detectors.hashes import (
    BankEntry,
    HashBank,
    HashDetector,
    ImageSignature,
    compute_signature,
    neardup_parts,
)
from detectors.pdq import (
    WHOLE,
    bits_to_hex,
    decode_neardup,
    decode_windows,
    encode_neardup,
    encode_windows,
    hex_to_words,
    words_to_hex,
)
from tests.detectors.hash_images import photo_like

SHA = "ab" * 32
MD5 = "cd" * 16


def flip_bits(hex_value: str, count: int, seed: int = 0) -> str:
    """`hex_value` with `count` distinct bits flipped: a hash at exactly that distance."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hex_value), np.uint8))
    chosen = np.random.default_rng(seed).choice(256, count, replace=False)
    bits[chosen] ^= 1
    return np.packbits(bits).tobytes().hex()


def test_hex_follows_threatexchange_bit_order() -> None:
    bits = np.zeros(256, dtype=np.int64)
    bits[0] = 1  # pdqhash's first bit is the most significant hex digit's top bit
    assert bits_to_hex(bits) == "80" + "00" * 31
    value = flip_bits("00" * 32, 40)
    assert words_to_hex(hex_to_words(value)) == value


def test_bad_hex_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="64 hex"):
        hex_to_words("abc")
    with pytest.raises(ValueError, match="not hexadecimal"):
        hex_to_words("zz" * 32)


def test_exact_digests_match_by_kind_and_source() -> None:
    bank = HashBank([BankEntry(1, "ncii", "sha256", SHA.upper()), BankEntry(2, "ncii", "md5", MD5)])
    [sha] = bank.match(None, sha256=SHA)
    assert (sha.kind, sha.entry_id, sha.distance, sha.source) == ("sha256", 1, 0.0, "imported")
    [md5] = bank.match(None, md5=MD5.upper())
    assert md5.entry_id == 2
    assert bank.match(None, sha256="00" * 32, md5="") == []


def test_pdq_matches_up_to_31_and_not_32() -> None:
    base = compute_signature(photo_like(1)).pdq
    bank = HashBank(
        [
            BankEntry(1, "a", "pdq", flip_bits(base, 31)),
            BankEntry(2, "b", "pdq", flip_bits(base, 32, seed=1)),
        ]
    )
    matches = bank.match(ImageSignature(base, 100))
    assert [(m.entry_id, m.distance) for m in matches] == [(1, 31.0)]


def test_low_quality_query_is_ignored() -> None:
    base = compute_signature(photo_like(2)).pdq
    bank = HashBank([BankEntry(1, "a", "pdq", base)])
    assert bank.match(ImageSignature(base, 49)) == []
    assert len(bank.match(ImageSignature(base, 50))) == 1
    flat = compute_signature(Image.new("RGB", (200, 200), (128, 128, 128)))
    assert flat.quality < 50 and flat.neardup == ""


def test_all_eight_dihedral_variants_are_queried() -> None:
    image = photo_like(3)
    bank = HashBank([BankEntry(7, "a", "pdq", compute_signature(image).pdq)])
    for variant in (
        ImageOps.mirror(image),
        ImageOps.flip(image),
        image.transpose(Image.Transpose.ROTATE_270),
        image.transpose(Image.Transpose.TRANSPOSE),
    ):
        matches = [m for m in bank.match(compute_signature(variant)) if m.kind == "pdq"]
        assert matches and matches[0].distance <= 31


def test_invalid_entries_are_skipped_with_reasons() -> None:
    bank = HashBank()
    errors = bank.add(
        [
            BankEntry(1, "a", "pdq", "xyz"),
            BankEntry(2, "a", "md5", "12"),
            BankEntry(3, "a", "blake", "00"),
            BankEntry(4, "a", "md5", MD5),
        ]
    )
    assert len(errors) == 3 and "entry 1" in errors[0] and "unknown hash kind" in errors[2]
    assert len(bank) == 1


def test_remove_forgets_every_kind() -> None:
    sig = compute_signature(photo_like(4))
    windows, corners = neardup_parts(sig.neardup)
    bank = HashBank(
        [
            BankEntry(1, "c", "pdq", sig.pdq),
            BankEntry(2, "c", "neardup", windows),
            BankEntry(3, "c", "sha256", SHA),
            BankEntry(4, "c", "neardup", corners),
        ]
    )
    assert {m.entry_id for m in bank.match(sig, sha256=SHA)} == {1, 2, 3, 4}
    assert bank.remove([1, 2, 3, 4, 99]) == 4
    assert bank.match(sig, sha256=SHA) == []


def test_signature_round_trips_through_a_string() -> None:
    sig = compute_signature(photo_like(5))
    back = ImageSignature.from_str(sig.to_str())
    assert (back.pdq, back.quality, back.neardup) == (sig.pdq, sig.quality, sig.neardup)
    assert decode_neardup(encode_neardup([sig.pdq])) == [sig.pdq]
    windows, corners = neardup_parts(sig.neardup)
    assert windows.startswith("nd3:") and corners.startswith("kp1:")
    assert max(len(windows), len(corners)) <= 2048  # each part fits one HashEntry.value
    with pytest.raises(ValueError):
        ImageSignature.from_str("sig1;nothex;3;")


@pytest.mark.parametrize("max_distance", [0, 15, 31, 40])
def test_multi_index_search_equals_brute_force(
    max_distance: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hamming_index, "TAIL_MAX_ROWS", 500)
    rng = np.random.default_rng(max_distance)
    words = rng.integers(0, 2**63, size=(6000, 4), dtype=np.uint64)
    index = HammingIndex.build(words[:5000], np.arange(5000))
    index = index.extended(words[5000:5400], np.arange(5000, 5400))  # stays in the brute tail
    index = index.extended(words[5400:], np.arange(5400, 6000))  # tail overflows: full rebuild
    index = index.without(np.array([10, 5100]))
    planted = [10, 11, 12, 5100, 5200, 5999]
    queries = np.array(
        [
            hex_to_words(flip_bits(words_to_hex(words[i]), d, seed=i))
            for i, d in zip(planted, (0, 15, 31, 5, 31, 40), strict=True)
        ]
    )
    found = index.search(queries, max_distance)
    brute = np.bitwise_count(queries[:, None, :] ^ words[None, :, :]).sum(axis=2).min(axis=0)
    expected = {
        i: int(brute[i]) for i in np.flatnonzero(brute <= max_distance) if i not in (10, 5100)
    }
    assert found == expected
    assert len(index) == 5998


def test_skewed_rows_fall_back_to_exact_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keypoint-like rows (most bits shared) defeat the chunk lookups: the block-wise brute force
    must still return exactly every pair, across block boundaries."""
    monkeypatch.setattr(hamming_index, "BRUTE_BLOCK", 3000)  # several query blocks
    rng = np.random.default_rng(7)
    common = rng.integers(0, 2**63, size=4, dtype=np.uint64)
    noise = rng.random((1200, 256)) < 0.08  # ~20 bits off a shared pattern
    words = common ^ np.packbits(noise, axis=1).view(np.uint64)
    index = HammingIndex.build(words[:1000], np.arange(1000))
    queries = words[1000:]
    q, ids, dist = index.pairs(queries, 26)
    naive = np.bitwise_count(queries[:, None, :] ^ words[None, :1000, :]).sum(axis=2)
    expected = {
        (int(a), int(b), int(naive[a, b])) for a, b in zip(*np.nonzero(naive <= 26), strict=True)
    }
    assert len(expected) > 1000  # skewed indeed
    assert set(zip(q.tolist(), ids.tolist(), dist.tolist(), strict=True)) == expected
    assert all(len(part) == 0 for part in index.pairs(queries[:0], 26))


def test_nearest_keeps_the_closest_stored_corners_per_query_corner() -> None:
    q = np.array([0, 0, 0, 0, 1, 1, 2])
    rows = np.array([10, 11, 12, 13, 20, 21, 30])
    dist = np.array([9, 3, 7, 3, 26, 1, 0])
    kept_q, kept_rows = kp.nearest(q, rows, dist, keep=2)
    assert sorted(zip(kept_q.tolist(), kept_rows.tolist(), strict=True)) == [
        (0, 11),
        (0, 13),
        (1, 20),
        (1, 21),
        (2, 30),
    ]
    assert kp.nearest(q[:0], rows[:0], dist[:0])[0].size == 0


def test_reads_stay_correct_while_entries_are_added() -> None:
    sig = compute_signature(photo_like(6))
    bank = HashBank([BankEntry(1, "c", "pdq", sig.pdq)])
    rng = np.random.default_rng(0)
    failures: list[str] = []

    def reader() -> None:
        for _ in range(200):
            if not any(m.entry_id == 1 for m in bank.match(sig)):
                failures.append("lost the original entry")

    thread = threading.Thread(target=reader)
    thread.start()
    for start in range(2, 6002, 500):
        bank.add(
            BankEntry(i, "bulk", "pdq", rng.bytes(32).hex()) for i in range(start, start + 500)
        )
    thread.join()
    assert failures == []
    assert len(bank) == 6001


def test_detector_meets_the_protocol() -> None:
    detector = HashDetector(HashBank())
    assert isinstance(detector, Detector) and detector.name == "hashes" and detector.kind == "image"


async def test_detector_flags_banked_images_and_reports_extras() -> None:
    banked = photo_like(7)
    sig = compute_signature(banked)
    bank = HashBank(
        [BankEntry(1, "confirmed", "pdq", sig.pdq, "confirmed")]
        + [
            BankEntry(2 + n, "confirmed", "neardup", part, "confirmed")
            for n, part in enumerate(neardup_parts(sig.neardup))
        ]
    )
    detector = HashDetector(bank)
    await detector.load()
    odd = [
        Image.new("RGB", (1, 1)),
        Image.new("L", (3, 900)).convert("RGB"),
        Image.new("RGBA", (50, 40)).convert("RGB"),
        photo_like(8, (2000, 40)),
    ]
    items = [ImageInput(ImageOps.mirror(banked), "s1"), ImageInput(photo_like(9), "s2")]
    items += [ImageInput(img, f"o{i}") for i, img in enumerate(odd)]
    hit, miss, *others = await detector.detect(items)
    assert hit.scores[KNOWN_CONTENT] == 1.0
    assert any("matches confirmed bank 'confirmed' at PDQ distance" in r for r in hit.reasons)
    assert fuse([("hashes", detector.version, hit)]).severity == Severity.QUARANTINE
    assert miss.scores[KNOWN_CONTENT] == 0.0 and miss.matches == []
    assert miss.extras["pdq"] == compute_signature(photo_like(9)).pdq
    assert isinstance(miss.extras["pdq_quality"], int) and str(miss.extras["neardup"]).startswith(
        "nd3:"
    )
    assert (
        hit.reasons[0]
        == f"matches confirmed bank 'confirmed' at PDQ distance {int(hit.matches[0].distance)}"
    )
    assert all(o.scores[KNOWN_CONTENT] == 0.0 for o in others)
    assert (
        ImageSignature.from_extras(hit.extras).pdq == compute_signature(ImageOps.mirror(banked)).pdq
    )
    again = await detector.detect(items[:2])
    assert [d.extras for d in again] == [hit.extras, miss.extras]  # deterministic


async def test_allow_list_match_clears_the_verdict() -> None:
    image = photo_like(10)
    sig = compute_signature(image)
    bank = HashBank(
        [BankEntry(1, "imported", "pdq", sig.pdq), BankEntry(2, "fp", "sha256", SHA, "allow")]
    )
    [blocked, allowed] = await HashDetector(bank).detect(
        [ImageInput(image, "00" * 32), ImageInput(image, SHA)]
    )
    assert fuse([("hashes", "1", blocked)]).severity == Severity.QUARANTINE
    assert any(m.source == "allow" for m in allowed.matches)
    assert "is allow-listed in bank 'fp' by SHA-256 (exact file)" in allowed.reasons
    assert fuse([("hashes", "1", allowed)]).severity == Severity.NONE


def test_keypoints_round_trip_and_reject_garbage() -> None:
    to_bank, query = kp.describe_image(photo_like(11))
    assert 0 < len(to_bank) <= kp.BANK_KEYPOINTS and query.variant is not None
    assert len(query) % len(kp.DIHEDRAL) == 0  # every corner under all eight patterns
    back = kp.decode_keypoints(kp.encode_keypoints(to_bank))
    assert np.array_equal(back.desc, to_bank.desc) and np.array_equal(back.level, to_bank.level)
    assert np.abs(back.xy - to_bank.xy).max() <= 0.5  # stored as whole work-frame pixels
    for bad in ("kp1:!!!", "kp1:" + "A" * 10, "xx1:AAAA"):
        with pytest.raises(ValueError):
            kp.decode_keypoints(bad)
    flat_bank, flat_query = kp.describe_image(Image.new("RGB", (300, 200), (90, 90, 90)))
    assert len(flat_bank) == 0 and kp.encode_keypoints(flat_bank) == ""
    tiny_bank, _ = kp.describe_image(Image.new("RGB", (1, 1)))
    assert len(tiny_bank) == 0


def test_keypoints_alone_find_an_off_grid_crop() -> None:
    image = photo_like(12)
    _, corners = neardup_parts(compute_signature(image).neardup)
    bank = HashBank([BankEntry(5, "confirmed", "neardup", corners, "confirmed")])
    cropped = image.crop((40, 100, 40 + 480, 100 + 330))  # 75 % × 69 %, off every window grid
    explained = bank.match_explained(compute_signature(cropped))
    assert [m.entry_id for m, _ in explained] == [5]
    assert "stored corners agree (crop-robust)" in explained[0][1]
    assert 0.0 <= explained[0][0].distance < 1.0


def test_windows_keep_their_grid_position_and_old_rows_still_read() -> None:
    value = photo_like(13)
    sig = compute_signature(value)
    windows, _ = neardup_parts(sig.neardup)
    decoded = decode_windows(windows)
    assert decoded[0] == (WHOLE, sig.pdq)  # the whole image first, then windows on the grid
    assert all(index is not None and 1 <= index <= 27 for index, _ in decoded[1:])
    assert decode_neardup(windows) == [h for _, h in decoded]
    legacy = encode_neardup([h for _, h in decoded])  # a row stored before positions were kept
    assert legacy.startswith("nd2:") and decode_windows(legacy) == [(None, h) for _, h in decoded]
    assert HashBank([BankEntry(1, "c", "neardup", legacy)]).match(sig) != []
    for bad in (encode_windows([(28, sig.pdq)]), "nd3:" + "A" * 10):
        with pytest.raises(ValueError):
            decode_windows(bad)


def test_part_to_part_windows_need_the_stricter_distance() -> None:
    """A part of the query near a part of a banked image is what another photograph of the same
    scene gives too: only within window_threshold. With a whole image on either side (a crop)
    the PDQ distance holds. Rows without positions (nd2) count as parts."""
    banked = bits_to_hex(np.unpackbits(np.frombuffer(bytes(range(32)), np.uint8)))
    bank = HashBank(
        [
            BankEntry(1, "c", "neardup", encode_windows([(5, banked)])),
            BankEntry(2, "c", "neardup", encode_windows([(WHOLE, flip_bits(banked, 2, 9))])),
            BankEntry(3, "c", "neardup", encode_neardup([flip_bits(banked, 1, 8)])),
        ]
    )
    assert bank.window_threshold == 12 < bank.neardup_threshold == 31

    def matched(index: int, distance: int) -> dict[int, float]:
        query = ImageSignature(
            pdq="00" * 32, quality=0, neardup=encode_windows([(index, flip_bits(banked, distance))])
        )
        return {m.entry_id: m.distance for m in bank.match(query) if m.entry_id is not None}

    far = matched(3, 20)  # part to part at 20-23 bits: only the banked whole image matches
    assert set(far) == {2}
    assert set(matched(3, 10)) == {1, 2, 3}  # part to part within 12: all
    assert set(matched(WHOLE, 20)) == {1, 2, 3}  # the query whole: a crop of each
    explained = bank.match_explained(
        ImageSignature("00" * 32, 0, encode_windows([(3, flip_bits(banked, 10))]))
    )
    assert any("part of the picture" in reason for _, reason in explained)
