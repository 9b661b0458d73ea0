"""clip_throughput: Veille's image scoring against plain open_clip, ViT-B-32, in one run.

Four figures from the same images and threads: the fast path (backend auto, which should be
static int8 ONNX), its ONNX fp32 fallback, Veille on torch fp32 (batch 16) and plain open_clip
(fp32, batch 1, its own preprocessing). Each Veille figure names the backend that actually ran;
`intended_backend` is what auto should reach, and bench/__main__.py exits non-zero when it fell
back. Random weights are fine for timing: they are saved to a local checkpoint and loaded through
Veille's production loading path (VEILLE_CLIP_PRETRAINED as a local file).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.images import photo_like

MODEL = "ViT-B-32"
INTENDED_BACKEND = "onnx-int8"


def _images(count: int) -> list[Any]:
    return [photo_like(seed) for seed in range(count)]


def baseline_images_per_s(images: list[Any], threads: int) -> float:
    """Plain open_clip fp32: its standard preprocessing, one image at a time."""
    import open_clip
    import torch

    torch.set_num_threads(threads)
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=None)
    model.eval()
    with torch.inference_mode():
        model.encode_image(preprocess(images[0]).unsqueeze(0))  # warm-up
        start = time.perf_counter()
        for image in images:
            features = model.encode_image(preprocess(image).unsqueeze(0))
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


async def veille_images_per_s(
    images: list[Any], checkpoint: Path, cache_dir: Path, backend: str, batch: int, threads: int
) -> tuple[float, str]:
    from detectors.base import ImageInput
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
    inputs = [ImageInput(image, f"{i:064x}") for i, image in enumerate(images)]
    await detector.detect(inputs[:batch])  # warm-up
    start = time.perf_counter()
    for offset in range(0, len(inputs), batch):
        await detector.detect(inputs[offset : offset + batch])
    elapsed = time.perf_counter() - start
    return len(inputs) / elapsed, str(getattr(detector, "backend_name", backend))


def run(count: int = 64, batch: int = 16, threads: int = 2) -> dict[str, Any]:
    images = _images(count)
    baseline = baseline_images_per_s(images[: max(16, count // 2)], threads)
    figures: dict[str, tuple[float, str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        checkpoint = save_random_checkpoint(folder)
        for backend in ("auto", "onnx-fp32", "torch"):  # one cache each: no record is shared
            figures[backend] = asyncio.run(
                veille_images_per_s(
                    images, checkpoint, folder / f"cache-{backend}", backend, batch, threads
                )
            )
    fast, fast_backend = figures["auto"]
    fp32, fp32_backend = figures["onnx-fp32"]
    torch_fp32, _ = figures["torch"]
    return {
        "model": MODEL,
        "weights": "random (timing only)",
        "backend": fast_backend,
        "intended_backend": INTENDED_BACKEND,
        "fallback_backend": fp32_backend,
        "batch_size": batch,
        "threads": threads,
        "images": count,
        "baseline": "open_clip fp32, batch 1, standard preprocessing",
        "baseline_images_per_s": round(baseline, 2),
        "veille_images_per_s": round(fast, 2),
        "onnx_fp32_images_per_s": round(fp32, 2),
        "torch_fp32_images_per_s": round(torch_fp32, 2),
        "ratio": round(fast / baseline, 2),
        "fast_vs_torch_fp32": round(fast / torch_fp32, 2),
        "onnx_fp32_vs_torch_fp32": round(fp32 / torch_fp32, 2),
    }
