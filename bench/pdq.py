"""PDQ matching speed: one image query (eight dihedral variants) against banks of 10^4, 10^5 and
10^6 random PDQ hashes, through the production HashBank; and the near-duplicate signals (PDQ
windows + keypoints) against banks of real signatures of generated images.

    .venv/bin/python -m bench.pdq [--sizes 10000,100000,1000000] [--queries 200] [--neardup 50,200]

`measure()` and `measure_neardup()` are what the benchmark suite calls: one row per bank size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from detectors.hashes import BankEntry, HashBank, ImageSignature
from detectors.pdq import words_to_hex

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class PdqTiming:
    bank_size: int
    build_s: float  # HashBank construction (hex parsing + sorted chunk columns)
    median_ms: float  # one match() call: 8 dihedral variants, exact distances, HashMatch objects
    p95_ms: float
    max_ms: float
    hits: int  # queries that found their planted near neighbour (must equal queries)
    queries: int


def _flip(words: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(words.astype(">u8").view(np.uint8))
    bits[rng.choice(256, count, replace=False)] ^= 1
    return np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8").astype(np.uint64)


def measure(
    sizes: tuple[int, ...] = DEFAULT_SIZES, queries: int = 200, seed: int = 0
) -> list[PdqTiming]:
    """Time `queries` image queries per bank size. Each query is a planted bank hash with up to
    31 bits flipped, plus seven random "dihedral variants", so every query must hit once."""
    rng = np.random.default_rng(seed)
    rows: list[PdqTiming] = []
    for size in sizes:
        words = rng.integers(0, 2**64, size=(size, 4), dtype=np.uint64)
        hexes = [words_to_hex(w) for w in words]
        start = time.perf_counter()
        bank = HashBank(BankEntry(i, "bench", "pdq", h) for i, h in enumerate(hexes))
        build_s = time.perf_counter() - start
        times: list[float] = []
        hits = 0
        for _ in range(queries):
            target = int(rng.integers(size))
            planted = words_to_hex(_flip(words[target], int(rng.integers(0, 32)), rng))
            others = tuple(rng.bytes(32).hex() for _ in range(7))
            signature = ImageSignature(planted, 100, "", (planted, *others))
            start = time.perf_counter()
            matches = bank.match(signature)
            times.append((time.perf_counter() - start) * 1000)
            hits += any(m.entry_id == target for m in matches)
        times.sort()
        rows.append(
            PdqTiming(
                size,
                round(build_s, 2),
                round(statistics.median(times), 3),
                round(times[int(0.95 * (len(times) - 1))], 3),
                round(times[-1], 3),
                hits,
                queries,
            )
        )
    return rows


@dataclass(frozen=True)
class NeardupTiming:
    banked_images: int
    signature_ms: float  # compute_signature: PDQ ×8, 27 windows, keypoints (median)
    match_median_ms: float  # match() of a crop against every banked image's windows and corners
    match_p95_ms: float
    hits: int  # off-centre 80 % crops found again (quality of the signal, not speed)
    queries: int


def measure_neardup(sizes: tuple[int, ...] = (50, 200), queries: int = 20) -> list[NeardupTiming]:
    """Bank `size` generated images by windows and keypoints, then query off-centre crops."""
    from bench.images import photo_like
    from detectors.hashes import compute_signature, neardup_parts

    rows: list[NeardupTiming] = []
    for size in sizes:
        images = [photo_like(seed, (640, 480)) for seed in range(size)]
        sig_times: list[float] = []
        entries: list[BankEntry] = []
        for n, image in enumerate(images):
            start = time.perf_counter()
            signature = compute_signature(image)
            sig_times.append((time.perf_counter() - start) * 1000)
            entries += [
                BankEntry(2 * n + i, "bench", "neardup", part)
                for i, part in enumerate(neardup_parts(signature.neardup))
            ]
        bank = HashBank(entries)
        times: list[float] = []
        hits = 0
        for q in range(queries):
            n = q * size // queries
            crop = images[n].crop((40, 90, 40 + 512, 90 + 384))  # 80 %, off the window grid
            signature = compute_signature(crop)
            start = time.perf_counter()
            matches = bank.match(signature)
            times.append((time.perf_counter() - start) * 1000)
            hits += any(m.entry_id is not None and m.entry_id // 2 == n for m in matches)
        times.sort()
        rows.append(
            NeardupTiming(
                size,
                round(statistics.median(sig_times), 1),
                round(statistics.median(times), 2),
                round(times[int(0.95 * (len(times) - 1))], 2),
                hits,
                queries,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--neardup", default="", help="banked-image counts, e.g. 50,200")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print("bank_size  build_s  median_ms  p95_ms  max_ms  hits/queries")
    for row in measure(sizes, args.queries):
        r = asdict(row)
        print(
            f"{r['bank_size']:>9}  {r['build_s']:>7}  {r['median_ms']:>9}  {r['p95_ms']:>6}  "
            f"{r['max_ms']:>6}  {r['hits']}/{r['queries']}"
        )
    if args.neardup:
        sizes = tuple(int(s) for s in args.neardup.split(","))
        print("\nbanked_images  signature_ms  match_median_ms  match_p95_ms  crops_found")
        for nd in measure_neardup(sizes):
            print(
                f"{nd.banked_images:>13}  {nd.signature_ms:>12}  {nd.match_median_ms:>15}  "
                f"{nd.match_p95_ms:>12}  {nd.hits}/{nd.queries}"
            )


if __name__ == "__main__":
    main()
