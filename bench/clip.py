"""clip_throughput: Veille's image scoring against plain open_clip, ViT-B-32, in one run.

Random weights are fine for timing: they are saved to a local checkpoint and loaded through
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

    detector = ClipDetector(ClipConfig(model=MODEL, pretrained=str(checkpoint), device="cpu",
                                       cache_dir=cache_dir, backend=backend, batch_size=batch,
                                       threads=threads))
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
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        checkpoint = save_random_checkpoint(folder)
        veille, backend = asyncio.run(
            veille_images_per_s(images, checkpoint, folder / "cache", "auto", batch, threads)
        )
    return {
        "model": MODEL,
        "weights": "random (timing only)",
        "backend": backend,
        "batch_size": batch,
        "threads": threads,
        "images": count,
        "baseline": "open_clip fp32, batch 1, standard preprocessing",
        "baseline_images_per_s": round(baseline, 2),
        "veille_images_per_s": round(veille, 2),
        "ratio": round(veille / baseline, 2),
    }
