"""Near-duplicate matching against growing banks: query ms of the keypoint corner search and the
PDQ windows at 120, 400, 2,000 and 10,000 banked images, and PDQ at 10^6 (and 10^7) hashes,
each beside the linear search it replaced and the previous index layout (corner buckets without
centre groups, PDQ in 16-bit chunks), measured in the same run, with the corner pairs each
corner index keeps of the linear search's and the matches each finds.

    .venv/bin/python -m bench.neardup_index [--images 120,400,2000,10000] [--queries 20]
                                            [--pdq 1000000,10000000]

Banked images are generated 2×2 mosaics of bench.images.photo_like tiles (~40 stored corners
each, like a real photo; a single generated tile has ~15). Their bank rows take ~0.1 s each to
compute, so they are cached in the system temporary folder (`veille-bench-neardup-*.json`).
Queries are 80 % off-centre crops of banked images, re-encoded (and every third one mirrored):
each must be found again, and unrelated images must match nothing, by either search.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial, partialmethod
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from bench.images import photo_like

CACHE_VERSION = "kp1-nd2-mosaic1"
DEFAULT_IMAGES = (120, 400, 2_000, 10_000)


def busy_photo(seed: int) -> Image.Image:
    """A 320×240 mosaic of four generated tiles: as many corners as a real photo."""
    image = Image.new("RGB", (320, 240))
    for i in range(4):
        image.paste(photo_like(seed * 4 + i, (160, 120)), ((i % 2) * 160, (i // 2) * 120))
    return image


def bank_rows(seed: int) -> tuple[str, str]:
    """The two neardup rows (`nd2:` windows, `kp1:` corners) a banked image stores. The full
    image's own PDQ (one of the ~28 window rows) is left out: hashing it costs eight PDQs."""
    from detectors import keypoints as kp
    from detectors.pdq import WINDOW_SIDE, encode_neardup, grey_copy, window_hashes

    grey = grey_copy(busy_photo(seed), max(WINDOW_SIDE, kp.WORK_SIDE))
    windows = window_hashes(grey, 50)
    corners = kp._bank_keypoints(kp._levels(grey))
    return (encode_neardup(windows) if windows else "", kp.encode_keypoints(corners))


def banked(count: int) -> list[tuple[str, str]]:
    """Bank rows of images 0..count-1, from the cache (extended on two processes as needed)."""
    path = Path(tempfile.gettempdir()) / f"veille-bench-neardup-{CACHE_VERSION}.json"
    rows: list[list[str]] = json.loads(path.read_text()) if path.exists() else []
    if len(rows) < count:
        with multiprocessing.get_context("spawn").Pool(min(2, os.cpu_count() or 1)) as pool:
            for start in range(len(rows), count, 500):  # saved as it goes: it takes minutes
                rows += [
                    list(r) for r in pool.map(bank_rows, range(start, min(count, start + 500)))
                ]
                path.write_text(json.dumps(rows))
    return [(a, b) for a, b in rows[:count]]


def _crop_query(seed: int) -> Image.Image:
    image = busy_photo(seed).crop((32, 24, 288, 216))  # 80 %, off the window grid
    buffer = io.BytesIO()
    (ImageOps.mirror(image) if seed % 3 == 0 else image).save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@contextmanager
def linear_corners() -> Iterator[None]:
    """HashBank's corner search compares every stored corner (the search before the index)."""
    from detectors.corner_index import CornerIndex

    original = CornerIndex.nearest
    CornerIndex.nearest = partialmethod(original, exact=True)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        CornerIndex.nearest = original  # type: ignore[method-assign]


# The layout before the centre groups: 128-row buckets, 12 probes, every centre compared (one
# group holding them all) and every stored corner filed under its nearest centre of all.
PREVIOUS_LAYOUT = {"LIST_ROWS": 128, "PROBES": 12, "GROUP_SIZE": 1 << 30, "FILE_GROUPS": 1}


@contextmanager
def corner_layout(params: dict[str, int]) -> Iterator[None]:
    """detectors.corner_index's bucket constants set to `params` while an index is built and
    searched."""
    from detectors import corner_index

    saved = {name: getattr(corner_index, name) for name in params}
    for name, value in params.items():
        setattr(corner_index, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(corner_index, name, value)


@contextmanager
def recorded(calls: list[tuple[set[tuple[int, int]], float]]) -> Iterator[None]:
    """Every CornerIndex.nearest call appends its (query row, stored row) pairs and CPU ms."""
    from detectors.corner_index import CornerIndex

    original = CornerIndex.nearest

    def nearest(self: CornerIndex, *args: Any, **kwargs: Any) -> Any:
        found, _, cpu = _timed(partial(original, self, *args, **kwargs))
        calls.append((set(zip(found[0].tolist(), found[1].tolist(), strict=True)), cpu))
        return found

    CornerIndex.nearest = nearest  # type: ignore[method-assign]
    try:
        yield
    finally:
        CornerIndex.nearest = original  # type: ignore[method-assign]


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall ms, CPU ms): CPU time stays meaningful when other processes share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 1) if values else 0.0


def measure_images(sizes: tuple[int, ...], queries: int = 8) -> list[dict[str, Any]]:
    """Per bank size: median match() CPU ms with the corner index, with the previous bucket
    layout and with the linear corner search (and the corner search alone in each), the corner
    pairs each index keeps of the linear search's, the matches each found, and the PDQ window
    search ms (multi-index vs linear)."""
    from detectors.corner_index import CornerIndex
    from detectors.hamming_index import near_pairs
    from detectors.hashes import BankEntry, HashBank, compute_signature
    from detectors.pdq import decode_neardup, hex_to_words

    rows = banked(max(sizes))
    seeds = [n * min(sizes) // queries for n in range(queries)]  # banked at every size
    crops = [(seed, compute_signature(_crop_query(seed))) for seed in seeds]
    unrelated = [(-1, compute_signature(busy_photo(10**6 + n))) for n in range(queries // 2)]
    out = []
    for size in sizes:
        entries = [
            BankEntry(2 * n + i, "bench", "neardup", part)
            for n, pair in enumerate(rows[:size])
            for i, part in enumerate(pair)
            if part
        ]
        bank = HashBank(entries)
        index = bank._corners
        with corner_layout(PREVIOUS_LAYOUT):
            previous = CornerIndex.build(*index._rows()) if index._buckets else index
        window_words = np.array(
            [
                hex_to_words(w)
                for e in entries
                if e.value.startswith("nd2:")
                for w in decode_neardup(e.value)
            ]
        )
        figures: dict[str, list[float]] = {
            k: [] for k in ("new", "prev", "old", "new_nn", "prev_nn", "old_nn", "win", "win_lin")
        }
        found = {"new": 0, "prev": 0}
        lost = {"new": 0, "prev": 0}
        extra = {"new": 0, "prev": 0}
        kept = {"new": 0, "prev": 0}
        exact_pairs = false = 0
        for seed, signature in crops + unrelated:
            runs: dict[str, tuple[set[int], set[tuple[int, int]]]] = {}
            for label in ("new", "prev", "old"):
                calls: list[tuple[set[tuple[int, int]], float]] = []
                bank._corners = previous if label == "prev" else index
                with (
                    corner_layout(PREVIOUS_LAYOUT if label == "prev" else {}),
                    linear_corners() if label == "old" else nullcontext(),
                    recorded(calls),
                ):
                    matches, _, cpu = _timed(partial(bank.match, signature))
                bank._corners = index
                figures[label].append(cpu)
                figures[f"{label}_nn"].append(sum(c for _, c in calls))
                pairs = set().union(*(p for p, _ in calls))
                runs[label] = ({m.entry_id // 2 for m in matches if m.entry_id is not None}, pairs)
            old_ids, old_pairs = runs["old"]
            exact_pairs += len(old_pairs)
            for label in ("new", "prev"):
                ids, pairs = runs[label]
                found[label] += seed in ids
                lost[label] += len(old_ids - ids)
                extra[label] += len(ids - old_ids)
                kept[label] += len(pairs & old_pairs)
            false += len(runs["new"][0] - {seed})
            variants = list(signature.variants[1:])
            windows = [
                w
                for p in signature.neardup.split("|")
                if p.startswith("nd2:")
                for w in decode_neardup(p)
            ]
            wq = np.array([hex_to_words(v) for v in dict.fromkeys([*variants, *windows])])
            figures["win"].append(_timed(partial(bank._neardup.search, wq, 31))[2])
            figures["win_lin"].append(_timed(partial(near_pairs, window_words, wq, 31))[2])
        med = {k: _median(v) for k, v in figures.items()}
        buckets = index._buckets
        out.append(
            {
                "banked_images": size,
                "corners": len(index),
                "corner_index_mb": round(buckets.nbytes / 1e6, 1) if buckets else None,
                "match_cpu_ms": med["new"],
                "previous_layout_match_cpu_ms": med["prev"],
                "linear_match_cpu_ms": med["old"],
                "corner_search_cpu_ms": med["new_nn"],
                "previous_layout_search_cpu_ms": med["prev_nn"],
                "linear_search_cpu_ms": med["old_nn"],
                "ratio_vs_linear": round(med["old"] / max(med["new"], 1e-9), 1),
                "ratio_vs_previous": round(med["prev"] / max(med["new"], 1e-9), 1),
                "pairs_kept": round(kept["new"] / max(exact_pairs, 1), 3),
                "previous_pairs_kept": round(kept["prev"] / max(exact_pairs, 1), 3),
                "windows_cpu_ms": med["win"],
                "windows_linear_cpu_ms": med["win_lin"],
                "crops_found": f"{found['new']}/{len(crops)}",
                "previous_crops_found": f"{found['prev']}/{len(crops)}",
                "lost_vs_linear": lost["new"],
                "previous_lost_vs_linear": lost["prev"],
                "extra_vs_linear": extra["new"],
                "wrong_matches": false,
            }
        )
    return out


def _index_bytes(index: Any) -> int:
    blocks = (index._base, index._tail)
    return sum(
        b.words.nbytes
        + b.ids.nbytes
        + b.alive.nbytes
        + sum(a.nbytes for a in (*b.sorted_rows, *b.offsets))
        for b in blocks
    )


def measure_pdq(sizes: tuple[int, ...], queries: int = 20) -> list[dict[str, Any]]:
    """Per size: one image query (8 dihedral hashes, one planted within 31 bits) through the
    index as built now, as built before (16-bit chunks) and by linear search."""
    from detectors import hamming_index
    from detectors.hamming_index import HammingIndex, near_pairs

    rng = np.random.default_rng(0)
    out = []
    for size in sizes:
        words = rng.integers(0, 2**64, size=(size, 4), dtype=np.uint64)
        ids = np.arange(size)
        asks = []
        for _ in range(queries):
            q = rng.integers(0, 2**64, size=(8, 4), dtype=np.uint64)
            target = int(rng.integers(size))
            bits = np.unpackbits(words[target : target + 1].view(np.uint8), axis=1)
            bits[0, rng.choice(256, int(rng.integers(0, 32)), replace=False)] ^= 1
            q[0] = np.packbits(bits, axis=1).view(np.uint64)[0]
            asks.append((target, q))
        row: dict[str, Any] = {"hashes": size}
        for label, wide in (("new", hamming_index.WIDE_ROWS), ("old_16bit", 1 << 62)):
            saved = hamming_index.WIDE_ROWS
            hamming_index.WIDE_ROWS = wide
            try:
                index, build_wall, _ = _timed(partial(HammingIndex.build, words, ids))
            finally:
                hamming_index.WIDE_ROWS = saved
            times, hits = [], 0
            for target, q in asks:
                found, _, cpu = _timed(partial(index.search, q, 31))
                times.append(cpu)
                hits += target in found
            row[f"{label}_cpu_ms"] = _median(times)
            row[f"{label}_build_s"] = round(build_wall / 1000, 1)
            row[f"{label}_index_mib"] = round(_index_bytes(index) / 2**20)
            row[f"{label}_hits"] = f"{hits}/{queries}"
            del index
        linear = [_timed(partial(near_pairs, words, q, 31))[2] for _, q in asks[:5]]
        row["linear_cpu_ms"] = _median(linear)
        row["ratio_vs_linear"] = round(row["linear_cpu_ms"] / max(row["new_cpu_ms"], 1e-9), 1)
        row["ratio_vs_16bit"] = round(row["old_16bit_cpu_ms"] / max(row["new_cpu_ms"], 1e-9), 1)
        row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        out.append(row)
    return out


def _load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", default=",".join(map(str, DEFAULT_IMAGES)))
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--pdq", default="1000000,10000000", help="PDQ bank sizes ('' to skip)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {_load()}")
    if args.images:
        sizes = tuple(int(s) for s in args.images.split(","))
        for row in measure_images(sizes, args.queries):
            print(json.dumps(row), "|", _load(), flush=True)
    if args.pdq:
        for row in measure_pdq(tuple(int(s) for s in args.pdq.split(","))):
            print(json.dumps(row), "|", _load(), flush=True)


if __name__ == "__main__":
    main()
