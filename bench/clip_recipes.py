"""Quantisation recipes for CLIP's image tower, side by side (issue 16): parity against torch
fp32 on a fixed sample, batch invariance (batch 1 vs batch 16) and images/s at batch 16.

    .venv/bin/python -m bench.clip_recipes [workdir]

Random ViT-B-32 weights (bench.clip.save_random_checkpoint); run with 2 threads. Two recipes
that lost are kept for the record: static QDQ with attention's activation × activation products
left in fp32, and weight-only `MatMulNBits` (8 and 4 bits, int8 compute), which needs the
`onnx_ir` package (not a Veille dependency: `pip install onnx_ir` to include it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2


def _pixels(images: list[Any], size: int, mean: Any, std: Any) -> np.ndarray:
    from detectors.clip import prepare_image

    batch = np.stack([np.asarray(prepare_image(i, size), np.float32) for i in images])
    out = (batch / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def activation_products(model_file: Path) -> list[str]:
    """The MatMuls whose two inputs are both activations (attention's scores and mix)."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and not any(i in constants for i in n.input)
    ]


def weight_only_nbits(fp32: Path, work: Path) -> dict[str, Path]:
    """MatMulNBits towers (blockwise symmetric weights, int8 compute), when onnx_ir is there."""
    try:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:
        print(f"weight-only MatMulNBits skipped: {exc}", file=sys.stderr)
        return {}
    out = {}
    for bits, block in ((8, 32), (4, 32)):
        config = DefaultWeightOnlyQuantConfig(
            block_size=block, is_symmetric=True, accuracy_level=4, bits=bits
        )
        quantiser = MatMulNBitsQuantizer(
            onnx.load(str(fp32)),
            bits=bits,
            block_size=block,
            is_symmetric=True,
            accuracy_level=4,
            algo_config=config,
        )
        quantiser.process()
        target = work / f"matmul-{bits}bits.onnx"
        quantiser.model.save_model_to_file(str(target), use_external_data_format=True)
        out[f"weight-only-{bits}bit"] = target
    return out


def main(work: Path) -> None:
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from bench.clip import save_random_checkpoint
    from bench.images import photo_like
    from detectors.clip_export import export_image_tower
    from detectors.clip_model import load_clip
    from detectors.clip_onnx import calibration_images, quantise_static

    torch.set_num_threads(THREADS)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = save_random_checkpoint(work)
    clip = load_clip("ViT-B-32", str(checkpoint), "cpu", work / "cache")
    size = clip.image_size
    sample = _pixels([photo_like(seed) for seed in range(500, 532)], size, clip.mean, clip.std)
    calib = _pixels(calibration_images(64), size, clip.mean, clip.std)
    with torch.inference_mode():
        reference = clip.model.visual(torch.from_numpy(sample)).float().numpy()
        start = time.perf_counter()
        for i in range(0, 32, 16):
            clip.model.visual(torch.from_numpy(sample[i : i + 16]))
        torch_ips = 32 / (time.perf_counter() - start)
    fp32 = work / "fp32.onnx"
    torch.backends.mha.set_fastpath_enabled(False)
    export_image_tower(clip.model.visual, size, fp32)
    recipes: dict[str, Path] = {"onnx-fp32": fp32}
    for name, kwargs in {
        "dynamic-s8-per-tensor": {"weight_type": QuantType.QInt8},
        "dynamic-s8-reduce-range": {"weight_type": QuantType.QInt8, "reduce_range": True},
        "dynamic-u8": {"weight_type": QuantType.QUInt8},
    }.items():
        target = work / f"{name}.onnx"
        quantize_dynamic(str(fp32), str(target), **kwargs)
        recipes[name] = target
    for name, reduce in (("static-qdq-minmax", False), ("static-qdq-minmax-reduce-range", True)):
        target = work / f"{name}.onnx"
        start = time.perf_counter()
        quantise_static(fp32, target, calib, reduce_range=reduce)
        print(f"{name}: quantised in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        recipes[name] = target
    target = work / "static-qdq-weights-only.onnx"
    quantise_static(fp32, target, calib, exclude=activation_products(fp32))
    recipes["static-qdq-weights-only"] = target
    recipes.update(weight_only_nbits(fp32, work))
    rows: dict[str, Any] = {"torch-fp32": {"images_per_s_b16": round(torch_ips, 2)}}
    for name, path in recipes.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(x: np.ndarray) -> np.ndarray:
            return session.run(None, {"pixels": x})[0]  # noqa: B023

        batched = np.concatenate([run(sample[i : i + 16]) for i in range(0, 32, 16)])
        alone = np.concatenate([run(sample[i : i + 1]) for i in range(16)])
        run(sample[:16])  # warm-up
        start = time.perf_counter()
        for i in range(0, 32, 16):
            run(sample[i : i + 16])
        ips = 32 / (time.perf_counter() - start)
        rows[name] = {
            "parity_min_cosine": round(float(_cos(reference, batched).min()), 5),
            "batch1_vs_batch16_min_cosine": round(float(_cos(alone, batched[:16]).min()), 7),
            "batch1_vs_batch16_max_abs": float(np.abs(alone - batched[:16]).max()),
            "images_per_s_b16": round(ips, 2),
            "mb": round(path.stat().st_size / 2**20, 1),
        }
        print(name, json.dumps(rows[name]), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clip-recipes"))
