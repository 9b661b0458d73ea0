"""clip_throughput: Veille's image scoring against plain open_clip, ViT-B-32, in one run.

Four figures from the same images and threads, each the median of interleaved rounds: the fast path (backend auto, which should be
static int8 ONNX), its ONNX fp32 fallback, Veille on torch fp32 (batch 16) and plain open_clip
(fp32, batch 1, its own preprocessing). Each Veille figure names the backend that actually ran;
`intended_backend` is what auto should reach, and bench/__main__.py exits non-zero when it fell
back. Random weights are fine for timing: they are saved to a local checkpoint and loaded through
Veille's production loading path (VEILLE_CLIP_PRETRAINED as a local file).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.images import photo_like

MODEL = "ViT-B-32"
INTENDED_BACKEND = "onnx-int8"


def _images(count: int) -> list[Any]:
    return [photo_like(seed) for seed in range(count)]


class Baseline:
    """Plain open_clip fp32: its standard preprocessing, one image at a time."""

    def __init__(self, threads: int) -> None:
        import open_clip
        import torch

        torch.set_num_threads(threads)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            MODEL, pretrained=None
        )
        self.model.eval()

    def images_per_s(self, images: list[Any]) -> float:
        import torch

        with torch.inference_mode():
            self.model.encode_image(self.preprocess(images[0]).unsqueeze(0))  # warm-up
            start = time.perf_counter()
            for image in images:
                features = self.model.encode_image(self.preprocess(image).unsqueeze(0))
                features / features.norm(dim=-1, keepdim=True)
            return len(images) / (time.perf_counter() - start)


def save_random_checkpoint(folder: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(MODEL, pretrained=None)
    path = folder / "vit-b-32-random.pt"
    torch.save(model.state_dict(), path)
    return path


async def loaded_detector(
    checkpoint: Path, cache_dir: Path, backend: str, batch: int, threads: int
) -> Any:
    from detectors.clip import ClipConfig, ClipDetector

    detector = ClipDetector(
        ClipConfig(
            model=MODEL,
            pretrained=str(checkpoint),
            device="cpu",
            cache_dir=cache_dir,
            backend=backend,
            batch_size=batch,
            threads=threads,
        )
    )
    await detector.load()
    return detector


async def veille_images_per_s(detector: Any, images: list[Any], batch: int) -> float:
    from detectors.base import ImageInput

    inputs = [ImageInput(image, f"{i:064x}") for i, image in enumerate(images)]
    await detector.detect(inputs[:batch])  # warm-up
    start = time.perf_counter()
    for offset in range(0, len(inputs), batch):
        await detector.detect(inputs[offset : offset + batch])
    return len(inputs) / (time.perf_counter() - start)


async def _measure(
    images: list[Any], folder: Path, batch: int, threads: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every figure measured `rounds` times, interleaved (baseline, fast, fp32, torch, then
    again), so that a slow spell of the machine lands on all of them rather than on one."""
    checkpoint = save_random_checkpoint(folder)
    baseline = Baseline(threads)
    detectors = {
        backend: await loaded_detector(
            checkpoint, folder / f"cache-{backend}", backend, batch, threads
        )
        for backend in ("auto", "onnx-fp32", "torch")  # one cache each: no record is shared
    }
    figures: dict[str, list[float]] = {"baseline": [], **{b: [] for b in detectors}}
    for _ in range(rounds):
        figures["baseline"].append(baseline.images_per_s(images[: max(16, len(images) // 2)]))
        for backend, detector in detectors.items():
            figures[backend].append(await veille_images_per_s(detector, images, batch))
    names = {b: str(getattr(d, "backend_name", b)) for b, d in detectors.items()}
    return figures, names


def run(count: int = 64, batch: int = 16, threads: int = 2, rounds: int = 3) -> dict[str, Any]:
    images = _images(count)
    with tempfile.TemporaryDirectory() as scratch:
        figures, names = asyncio.run(_measure(images, Path(scratch), batch, threads, rounds))
    median = {name: statistics.median(values) for name, values in figures.items()}
    baseline, fast, fp32, torch_fp32 = (
        median[n] for n in ("baseline", "auto", "onnx-fp32", "torch")
    )
    return {
        "model": MODEL,
        "weights": "random (timing only)",
        "backend": names["auto"],
        "intended_backend": INTENDED_BACKEND,
        "fallback_backend": names["onnx-fp32"],
        "batch_size": batch,
        "threads": threads,
        "images": count,
        "rounds": rounds,
        "baseline": "open_clip fp32, batch 1, standard preprocessing",
        "baseline_images_per_s": round(baseline, 2),
        "veille_images_per_s": round(fast, 2),
        "onnx_fp32_images_per_s": round(fp32, 2),
        "torch_fp32_images_per_s": round(torch_fp32, 2),
        "ratio": round(fast / baseline, 2),
        "fast_vs_torch_fp32": round(fast / torch_fp32, 2),
        "onnx_fp32_vs_torch_fp32": round(fp32 / torch_fp32, 2),
        "rounds_images_per_s": {n: [round(v, 1) for v in values] for n, values in figures.items()},
    }
