"""Peak RSS of a fresh process with Veille's CLIP detector loaded and scoring a batch.

Prints one JSON line; bench/__main__.py runs it in a subprocess so no other benchmark's
memory is counted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bench.clip import MODEL
from bench.images import photo_like


async def main(checkpoint: Path, cache: Path) -> None:
    from detectors.base import ImageInput
    from detectors.clip import ClipConfig, ClipDetector

    # The cache folder is the caller's: a second run finds the ONNX export there.
    detector = ClipDetector(
        ClipConfig(
            model=MODEL,
            pretrained=str(checkpoint),
            device="cpu",
            cache_dir=cache,
            batch_size=16,
            threads=2,
        )
    )
    await detector.load()
    images = [ImageInput(photo_like(seed), f"{seed:064x}") for seed in range(32)]
    await detector.detect(images)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child
    # of the benchmark runner would report the runner's own peak (torch loaded for the baseline).
    status = Path("/proc/self/status").read_text()  # noqa: ASYNC240 - a benchmark, nothing else runs
    fields = {
        line.split(":")[0]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(("VmHWM:", "VmRSS:"))
    }
    peak, current = fields["VmHWM"] / 1024, fields["VmRSS"] / 1024
    print(
        json.dumps(
            {
                "peak_rss_mb": round(peak, 1),
                "rss_after_load_mb": round(current, 1),
                "note": f"{MODEL} loaded in a fresh process, 32 images of 800x600 scored in batches of 16",
                "backend": str(getattr(detector, "backend_name", "?")),
                # The export child (torch, one time) when this start ran one: its own VmHWM.
                "child_peak_rss_mb": getattr(detector, "child_peak_rss_mb", None),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
