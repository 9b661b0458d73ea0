"""The CPU fast path, without torch: CLIP's image tower as ONNX, run by ONNX Runtime.

The chain is int8 → ONNX fp32 → torch. `choose_backend` (run by the one-time child process of
detectors/clip_export.py, the only place torch is loaded for it) tries each ONNX step against
torch's own embeddings of a fixed sample and takes the first that passes; every check, passed or
failed, goes into a record beside the files, keyed by model, tag, weights identity and
RECIPE_VERSION. A later start reads the record and opens the backend it names without torch, or
goes straight to torch when both ONNX steps failed: no export is repeated on each start.

The int8 recipe is static QDQ quantisation (MinMax ranges from `calibration_images`, a
deterministic generated set; reduce_range against u8×s8 saturation; MatMul/Gemm/Conv only).
Its activation scales are fixed, unlike dynamic quantisation's per-call scales, so an image's
embedding does not depend on its batch-mates and images are batched for real; the record says
whether that was verified (`batch_invariant`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"  # bump when the export, the quantisation recipe or the samples change
MIN_PARITY_COSINE = 0.99
CALIBRATION_IMAGES = 64
PARITY_IMAGES = 16  # the fixed sample: seed 1 of calibration_images, never calibrated on
FAST_CHAIN = ("onnx-int8", "onnx-fp32")  # then "torch"
META_KEYS = ("image_size", "logit_scale", "mean", "std")


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_key(model: str, pretrained: str, *, int8: bool = True) -> str:
    """Model, tag, the weights' identity (path, size, mtime; a config's content), recipe and
    where the chain starts (int8, or fp32 for VEILLE_CLIP_BACKEND=onnx-fp32)."""
    from detectors.clip_model import weights_identity

    text = f"{weights_identity(model, pretrained)}|{RECIPE_VERSION}|{'int8' if int8 else 'fp32'}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_path(cache_dir: Path, key: str, backend: str) -> Path:
    return cache_dir / "onnx" / f"{key}-{backend.removeprefix('onnx-')}.onnx"


def external_data_path(model_file: Path) -> Path:
    """Where an exported tower keeps its weights (ONNX external data, beside the graph)."""
    return model_file.with_name(model_file.name + ".data")


def remove_model(model_file: Path) -> None:
    model_file.unlink(missing_ok=True)
    external_data_path(model_file).unlink(missing_ok=True)


def record_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "onnx" / f"{key}.json"


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


def min_cosine(reference: np.ndarray, fast: np.ndarray) -> float:
    """The lowest cosine similarity between two sets of embeddings of the same pixels."""
    cosine = (reference * fast).sum(1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(fast, axis=1) + 1e-12
    )
    return float(cosine.min())


def batch_invariant(encoder: OnnxImageEncoder, pixels: np.ndarray) -> bool:
    """Whether each image's embedding is bit for bit the same alone and inside the batch."""
    together = encoder.encode(pixels)
    alone = np.concatenate([encoder.encode(pixels[i : i + 1]) for i in range(len(pixels))])
    return bool(np.array_equal(together, alone))


def read_record(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The outcome of an earlier check for this key, or None (none, torn, or another recipe)."""
    path = record_path(cache_dir, key)
    try:
        record = json.loads(path.read_text("utf-8"))
        if not (
            isinstance(record, dict)
            and record.get("recipe") == RECIPE_VERSION
            and record.get("backend") in (*FAST_CHAIN, "torch")
            and all(k in record.get("meta", {}) for k in META_KEYS)
        ):
            raise ValueError(
                f"expected a recipe {RECIPE_VERSION} record with {', '.join(META_KEYS)}"
            )
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # a torn file, an older recipe: check again
        log.warning("CLIP fast-path record %s unusable, checking again: %s", path.name, exc)
        return None
    return record


def write_record(cache_dir: Path, key: str, record: dict[str, Any]) -> None:
    path = record_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1), "utf-8")
    os.replace(tmp, path)


def open_recorded(
    cache_dir: Path, key: str, record: dict[str, Any], threads: int = 0
) -> OnnxImageEncoder | None:
    """The encoder the record names (None for torch, or when its file cannot be opened)."""
    if record["backend"] == "torch":
        return None
    path = model_path(cache_dir, key, record["backend"])
    try:
        return OnnxImageEncoder(path, threads)
    except Exception as exc:  # a deleted or torn file, another onnxruntime: check again
        log.warning("cached ONNX tower %s unusable, checking again: %s", path.name, exc)
        return None


def describe(record: dict[str, Any]) -> str:
    """One line for logs, `veille prepare` and `veille doctor`: the backend and every check."""
    checks = []
    for check in record.get("checks", []):
        figure = (
            f"parity {check['parity_cosine']:.4f}"
            if check.get("parity_cosine") is not None
            else f"error: {check.get('error')}"
        )
        checks.append(f"{check['backend']} {'passed' if check['passed'] else 'failed'} ({figure})")
    batching = ", batched" if record.get("batch_invariant") else ", one image per call"
    return f"{record['backend']}{batching if record['backend'] != 'torch' else ''}; " + "; ".join(
        checks
    )


def log_checks(record: dict[str, Any], *, remembered: bool) -> None:
    """Each failed step once, with its figure, then the backend taken."""
    when = "at the first start (remembered)" if remembered else ""
    for check in record.get("checks", []):
        if not check["passed"]:
            figure = (
                f"parity cosine {check['parity_cosine']:.4f} < {MIN_PARITY_COSINE}"
                if check.get("parity_cosine") is not None
                else check.get("error")
            )
            log.warning(
                "CLIP %s failed its check %s(%s)",
                check["backend"],
                f"{when} " if when else "",
                figure,
            )
    log.info("CLIP image tower: %s", describe(record))


Quantiser = Callable[[Path, Path, np.ndarray], None]


def choose_backend(
    fp32: Path,
    cache_dir: Path,
    key: str,
    *,
    sample: np.ndarray,
    reference: np.ndarray,
    calibration: np.ndarray,
    meta: dict[str, Any],
    threads: int = 0,
    int8: bool = True,
    quantiser: Quantiser | None = None,
) -> dict[str, Any]:
    """Walk the chain from the exported fp32 tower and write the record: int8 (quantised from
    `fp32` on `calibration`) if it matches `reference` on `sample`, else fp32, else torch."""
    quantiser = quantiser or quantise_static
    checks: list[dict[str, Any]] = []
    chosen, invariant = "torch", False
    for backend in FAST_CHAIN if int8 else FAST_CHAIN[1:]:
        path = model_path(cache_dir, key, backend)
        check: dict[str, Any] = {"backend": backend, "passed": False, "parity_cosine": None}
        try:
            if backend == "onnx-int8":
                quantiser(fp32, path, calibration)
            encoder = OnnxImageEncoder(path, threads)
            check["parity_cosine"] = round(min_cosine(reference, encoder.encode(sample)), 5)
            check["passed"] = check["parity_cosine"] >= MIN_PARITY_COSINE
        except Exception as exc:  # an op the quantiser or this onnxruntime cannot take
            check["error"] = f"{type(exc).__name__}: {exc}"[:300]
        checks.append(check)
        if check["passed"]:
            chosen, invariant = backend, batch_invariant(encoder, sample[:8])
            break
    for backend in FAST_CHAIN:  # only the chosen file stays (a ViT-L-14 fp32 tower is 1.2 GB)
        if backend != chosen:
            remove_model(model_path(cache_dir, key, backend))
    record = {
        "recipe": RECIPE_VERSION,
        "backend": chosen,
        "batch_invariant": invariant,
        "checks": checks,
        "meta": meta,
        "min_parity_cosine": MIN_PARITY_COSINE,
    }
    write_record(cache_dir, key, record)
    return record


def calibration_images(count: int, seed: int = 0) -> list[Any]:
    """Deterministic generated images for static quantisation: gradients, shapes, noise, flat
    and saturated fields — varied enough to open every activation range the tower reaches."""
    from PIL import Image, ImageDraw

    images = []
    for index in range(count):
        rng = np.random.default_rng(seed * 100_003 + index)
        w, h = int(rng.integers(160, 480)), int(rng.integers(160, 480))
        y, x = np.mgrid[0:h, 0:w]
        kind = index % 4
        if kind == 3:  # a flat or saturated field: the extremes of the input range
            base = np.broadcast_to(rng.choice([0.0, 255.0, rng.uniform(0, 255)], 3), (h, w, 3))
        else:
            base = np.stack(
                [
                    (x * rng.uniform(0.05, 0.6) + y * rng.uniform(0.05, 0.6) + rng.uniform(0, 255))
                    % 256
                    for _ in range(3)
                ],
                axis=-1,
            )
        noise = rng.normal(0, (4, 12, 40, 2)[kind], (h, w, 3))
        image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(0, 12))):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            x1, y1 = x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
        images.append(image)
    return images


def quantise_static(
    source: Path,
    target: Path,
    calibration: np.ndarray,
    *,
    reduce_range: bool = True,
    batch: int = 2,
    exclude: Sequence[str] = (),
) -> None:
    """Static QDQ int8: activation scales fixed once from `calibration` (MinMax), so an image's
    embedding does not depend on the other images of its batch.

    Calibration and quantisation run one after the other, not nested as `quantize_static`
    does when given a data reader (its own copy of the model stays loaded under the
    calibrator's): the ranges pass through onnxruntime's calibration cache, bit for bit, and
    the freed heap goes back to the system in between. The calibration session keeps every
    calibrated tensor of a batch alive until their ranges are taken, so batches are small.
    ViT-B-32 (the step's peak): nested, batch 8, 2.1 GB; apart, batch 8, 1.48 GB; apart,
    batch 2, 0.99 GB — the same ranges each time (MLAS computes a row alike in any batch)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    ranges = target.with_name(f"{target.name}.ranges{os.getpid()}.json")
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        calibrate_ranges(source, calibration, ranges, batch=batch)
        release_heap()
        quantize_static(
            str(source),
            str(tmp),
            None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=QUANTISED_OPS,
            per_channel=False,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(ranges),
            nodes_to_exclude=list(exclude),
        )
    finally:
        ranges.unlink(missing_ok=True)
    release_heap()
    os.replace(tmp, target)


QUANTISED_OPS = ["MatMul", "Gemm", "Conv"]


def calibrate_ranges(source: Path, calibration: np.ndarray, ranges: Path, *, batch: int) -> None:
    """MinMax ranges of every tensor feeding a quantised op, over `calibration` in batches of
    `batch`, written as onnxruntime's calibration cache (what `quantize_static` itself would
    compute from the same reader)."""
    import tempfile

    from onnxruntime.quantization.calibrate import (
        CalibrationDataReader,
        CalibrationMethod,
        create_calibrator,
        save_tensors_data,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.starts = iter(range(0, len(calibration), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.starts, None)
            return None if start is None else {"pixels": calibration[start : start + batch]}

    with tempfile.TemporaryDirectory(prefix="veille-calibrate-", dir=source.parent) as scratch:
        calibrator = create_calibrator(
            source,
            QUANTISED_OPS,
            augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
            use_external_data_format=True,
        )
        calibrator.collect_data(Reader())
        save_tensors_data(calibrator.compute_data(), ranges)
        del calibrator


def release_heap() -> None:
    """Give freed heap back to the system (glibc keeps it otherwise: a model's worth of protobuf
    buffers freed after calibration would still count in the peak of the next step)."""
    import gc

    gc.collect()
    trim_heap()


@functools.cache
def _malloc_trim() -> Any:
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def trim_heap() -> None:
    """glibc's malloc_trim(0), without a garbage collection: each thread that resizes images
    keeps its own malloc arena, and without a trim after each batch their freed buffers held
    ~60 MB more at peak (bench.rss: 410 MB with two resizing threads, 331 MB trimmed)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
