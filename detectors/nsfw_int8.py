"""open_nsfw's int8 screen: a static QDQ copy of the bundled model, built once per machine.

The int8 copy runs in ~60 % of fp32's time on one thread (bench/nsfw.py) but its scores move a
little (up to 0.023 on the sample photos the test packages ship, logits by up to 1.8). So it only
*screens*: an image it scores below `screen` keeps the int8 score, far below any tier; anything
at or above is scored again by the fp32 model, whose score is then the one reported. Every score
that can reach a tier is therefore fp32's own (NsfwDetector.detect).

Recipe: the model converted from opset 9 to 13 (per-channel weight scales need it), onnxruntime's
shape pre-processing, Conv and MatMul quantised statically (per-channel signed weights with
reduce_range, unsigned activations, MinMax ranges over generated images: clip_onnx's
`calibration_images`, seed 0). Per-tensor weights moved scores by up to 0.09: rejected.

The build runs in a child process (`python -m detectors.nsfw_int8 CACHE_DIR`: onnx and the
calibration session stay out of the bot, ~4 s, ~350 MB at peak) and is checked on a fixed sample
(seed 1 of the same generator, never calibrated on): the largest logit gap to fp32 must stay
under MAX_LOGIT_GAP, half of the screen's margin. The outcome, pass or fail, is recorded beside
the model, keyed by the model's hash, the onnx and onnxruntime versions and RECIPE, so a failed
check is not repeated on every start: the detector then runs fp32 alone, and says so in
`veille doctor` and `veille prepare`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RECIPE = "1"  # bump when the build below changes
CALIBRATION_IMAGES = 64
PARITY_IMAGES = 16
SCREEN_MARGIN = 3.0  # logits between the screen and the lowest review tier in force
MAX_LOGIT_GAP = SCREEN_MARGIN / 2  # the parity check: int8 vs fp32 on the fixed sample


def screen_for(lowest_review: float) -> float:
    """The int8 score from which fp32 scores again: SCREEN_MARGIN logits below the lowest review
    tier any community uses (0.6 → 0.027; a tier at 0.01 → 0.0002, where fp32 scores nearly
    everything)."""
    p = min(max(lowest_review, 1e-6), 1 - 1e-6)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) - SCREEN_MARGIN)))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def cache_key(model_sha256: str) -> str:
    parts = f"{model_sha256}|{_version('onnx')}|{_version('onnxruntime')}|{RECIPE}"
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


def model_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"nsfw-int8-{key}.onnx"


def record_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"nsfw-int8-{key}.json"


def read_record(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The recorded check, or None when there is none (or it is unreadable, or says int8 while
    its model file is gone): then the build runs again."""
    try:
        record: dict[str, Any] = json.loads(record_file(cache_dir, key).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("backend") not in ("int8", "fp32"):
        return None
    if record["backend"] == "int8" and not model_file(cache_dir, key).is_file():
        return None
    return record


def prepare(cache_dir: Path, source: Path, model_sha256: str) -> dict[str, Any]:
    """The record for this machine: read, or made by building and checking in a child process.
    Never raises for a failed build: the record then says fp32 and why."""
    key = cache_key(model_sha256)
    record = read_record(cache_dir, key)
    if record is not None:
        return {**record, "remembered": True}
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
    }
    log.info("nsfw: first start on this machine, building and checking the int8 screen")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "detectors.nsfw_int8", str(cache_dir), str(source), key],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        lines = done.stdout.strip().splitlines()
        record = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        record, done = None, None
        detail = str(exc)
    if record is None or record.get("backend") not in ("int8", "fp32"):
        if done is not None:
            detail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        # Not recorded: a crash or a timeout may be this start's, not the machine's.
        return {"backend": "fp32", "reason": f"the int8 build failed: {detail}", "key": key}
    return {**record, "remembered": False}


def describe(record: dict[str, Any]) -> str:
    """One line for doctor and prepare: which model scores, and the check that chose it."""
    gap = record.get("max_logit_gap")
    figure = f"parity: largest logit gap {gap:.2f} (limit {MAX_LOGIT_GAP:.1f})" if gap else ""
    if record.get("backend") == "int8":
        return f"int8 screen, fp32 above the screen; {figure}"
    reason = record.get("reason") or figure
    return f"fp32 only ({reason})"


def _logits(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities.astype(np.float64), 1e-12, 1.0)
    return np.log(p[:, 1]) - np.log(p[:, 0])


def build(cache_dir: Path, source: Path, key: str) -> dict[str, Any]:
    """Build the int8 copy of `source`, check it against fp32, write model and record."""
    from detectors.clip_onnx import calibration_images
    from detectors.nsfw import model_input

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = model_file(cache_dir, key)
    record: dict[str, Any] = {"recipe": RECIPE, "key": key, "max_logit_gap_limit": MAX_LOGIT_GAP}
    try:
        import onnx  # noqa: F401 - the quantiser needs it; without it, fp32 alone
    except ImportError:
        record.update(backend="fp32", reason="onnx is not installed (pip install -e .)")
        return _write(cache_dir, key, record)
    sample = np.concatenate([model_input(i) for i in calibration_images(PARITY_IMAGES, seed=1)])
    calibration = np.concatenate([model_input(i) for i in calibration_images(CALIBRATION_IMAGES)])
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        _quantise(source, tmp, calibration)
        gap = float(
            np.max(np.abs(_logits(_scores(source, sample)) - _logits(_scores(tmp, sample))))
        )
    except Exception as exc:  # noqa: BLE001 - any failure of the recipe means fp32 alone
        tmp.unlink(missing_ok=True)
        record.update(backend="fp32", reason=f"the int8 build failed: {type(exc).__name__}: {exc}")
        return _write(cache_dir, key, record)
    record["max_logit_gap"] = round(gap, 4)
    if gap <= MAX_LOGIT_GAP:
        os.replace(tmp, target)
        record["backend"] = "int8"
    else:
        tmp.unlink(missing_ok=True)
        record.update(backend="fp32", reason=f"parity failed: logit gap {gap:.2f}")
    return _write(cache_dir, key, record)


def _write(cache_dir: Path, key: str, record: dict[str, Any]) -> dict[str, Any]:
    path = record_file(cache_dir, key)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True), "utf-8")
    os.replace(tmp, path)
    return record


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _scores(path: Path, batch: np.ndarray) -> np.ndarray:
    session = _session(path)
    name = session.get_inputs()[0].name
    return np.concatenate(
        [session.run(None, {name: batch[i : i + 1]})[0] for i in range(len(batch))]
    )


def _quantise(source: Path, target: Path, calibration: np.ndarray) -> None:
    import tempfile

    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="veille-nsfw-", dir=target.parent) as scratch:
        opset13 = Path(scratch) / "opset13.onnx"
        prepared = Path(scratch) / "prepared.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(source)), 13), str(opset13))
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
        name = onnx.load(str(prepared)).graph.input[0].name

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.rows = iter(range(len(calibration)))

            def get_next(self) -> dict[str, np.ndarray] | None:
                row = next(self.rows, None)
                return None if row is None else {name: calibration[row : row + 1]}

        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "MatMul"],
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def main(argv: list[str]) -> int:
    cache_dir, source, key = Path(argv[0]), Path(argv[1]), argv[2]
    print(json.dumps(build(cache_dir, source, key)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
