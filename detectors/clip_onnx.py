"""The CPU fast path: CLIP's image tower exported to ONNX, dynamically quantised to int8 and run
by ONNX Runtime, plus a preprocessing path that works on numpy arrays.

The export is cached on disk, keyed by model, pretrained tag, weights file and this module's
version, so it runs once per installation (a few seconds). `build_onnx_encoder` checks parity
against torch on a sample batch and returns None — the caller keeps torch — when the export,
the quantisation or the parity check fails. Once parity passed, a JSON file beside the export
keeps what scoring needs from the torch model (input size, logit scale, normalisation), so a
later start can use `cached_encoder` without importing torch at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ONNX_VERSION = "1"  # bump when the export or quantisation recipe changes
MIN_PARITY_COSINE = 0.99


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_key(model: str, pretrained: str, *, int8: bool) -> str:
    """Model, tag (and the weights file's size and mtime when it is a path) and recipe version."""
    parts = [model, pretrained, ONNX_VERSION, "int8" if int8 else "fp32"]
    for value in (model, pretrained):
        path = Path(value)
        if path.is_file():
            stat = path.stat()
            parts.append(f"{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class OnnxImageEncoder:
    """An ONNX Runtime session over the exported image tower: float32 NCHW in, embeddings out."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            options.intra_op_num_threads = threads
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        if len(pixels) == 0:
            return np.zeros((0, self.session.get_outputs()[0].shape[-1] or 0), np.float32)
        return self.session.run(None, {self.input_name: pixels.astype(np.float32, copy=False)})[0]


def export_image_tower(visual: Any, image_size: int, path: Path) -> None:
    """Export the torch image tower with a dynamic batch axis (written atomically)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    sample = torch.zeros(1, 3, image_size, image_size)
    with torch.inference_mode():
        torch.onnx.export(
            visual, (sample,), str(tmp), input_names=["pixels"], output_names=["embeddings"],
            dynamic_axes={"pixels": {0: "batch"}, "embeddings": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    os.replace(tmp, path)


def quantise(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations quantised on the fly)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(f".tmp{os.getpid()}")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    os.replace(tmp, target)


def parity_cosine(encoder: OnnxImageEncoder, visual: Any, pixels: np.ndarray) -> float:
    """The lowest cosine similarity between ONNX and torch embeddings of the same pixels."""
    import torch

    with torch.inference_mode():
        reference = visual(torch.from_numpy(pixels)).float().numpy()
    fast = encoder.encode(pixels)
    cosine = (reference * fast).sum(1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(fast, axis=1) + 1e-12
    )
    return float(cosine.min())


META_KEYS = ("image_size", "logit_scale", "mean", "std")


def _final_path(cache_dir: Path, key: str, int8: bool) -> Path:
    return cache_dir / "onnx" / f"{key}-{'int8' if int8 else 'fp32'}.onnx"


def cached_files(cache_dir: Path, key: str, *, int8: bool = True) -> tuple[Path, Path]:
    """The export and its metadata: both exist once an export passed its parity check."""
    path = _final_path(cache_dir, key, int8)
    return path, path.with_suffix(".json")


def cached_encoder(
    cache_dir: Path, key: str, threads: int = 0, *, int8: bool = True
) -> tuple[OnnxImageEncoder, dict[str, Any]] | None:
    """(encoder, meta) from an export whose parity was checked by an earlier start, without
    torch; None when there is none or it cannot be read (the caller then loads torch)."""
    path, meta_path = cached_files(cache_dir, key, int8=int8)
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        if not isinstance(meta, dict) or any(k not in meta for k in META_KEYS):
            raise ValueError(f"expected the keys {', '.join(META_KEYS)}")
        return OnnxImageEncoder(path, threads), meta
    except Exception as exc:  # a torn file, another onnxruntime: start the long way instead
        log.warning("cached ONNX tower %s unusable, loading torch: %s", path.name, exc)
        return None


def build_onnx_encoder(
    visual: Any,
    image_size: int,
    cache_dir: Path,
    key: str,
    *,
    sample: np.ndarray,
    meta: Mapping[str, Any],
    threads: int = 0,
    int8: bool = True,
) -> OnnxImageEncoder | None:
    """The cached (or freshly exported) encoder, or None when it cannot match torch. `meta`
    (META_KEYS) is stored beside it once parity holds, for starts without torch."""
    if not onnx_available():
        return None
    final_path = _final_path(cache_dir, key, int8)
    fp32_path = final_path.with_name(f"{key}-fp32.onnx")
    meta_path = final_path.with_suffix(".json")
    try:
        if not final_path.exists():
            if not fp32_path.exists():
                export_image_tower(visual, image_size, fp32_path)
            if int8:
                quantise(fp32_path, final_path)
                fp32_path.unlink(missing_ok=True)
        encoder = OnnxImageEncoder(final_path, threads)
        cosine = parity_cosine(encoder, visual, sample)
    except Exception as exc:  # export paths differ between torch versions: fall back, loudly
        log.warning("ONNX fast path unavailable, using torch: %s", exc)
        return None
    if cosine < MIN_PARITY_COSINE:
        log.warning("ONNX fast path disagrees with torch (cosine %.4f), using torch", cosine)
        final_path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        return None
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**meta, "parity_cosine": round(cosine, 5)}), "utf-8")
    os.replace(tmp, meta_path)
    log.info("ONNX %s image tower ready (parity cosine %.4f)", "int8" if int8 else "fp32", cosine)
    return encoder
