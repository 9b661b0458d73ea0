"""The one-time CLIP work, in two child processes, one after the other:

- `python -m detectors.clip_export export REQUEST.json` loads torch and open_clip, writes the
  text embeddings of the prompt set to the cache, has torch embed the fixed parity sample and
  exports the image tower to ONNX fp32 (with the sample, torch's embeddings of it and the
  calibration pixels beside it), then exits;
- `python -m detectors.clip_export check REQUEST.json` — without torch — quantises and walks the
  chain (detectors/clip_onnx.choose_backend), which writes the record.

The process that asked (the bot, `veille prepare`) never holds torch, and the two peaks do not
add up. Each answers one JSON line on stdout, with its own VmHWM, or {"error": ..., "kind": ...}
for a failure the parent re-raises (weights unavailable...).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors import clip_onnx
from detectors.base import DetectorError

log = logging.getLogger(__name__)


@dataclass
class ExportRequest:
    """What the child needs, as the parent's ClipConfig has it (JSON on the command line)."""

    model: str
    pretrained: str
    cache_dir: str
    prompts_dir: str | None = None
    threads: int = 0
    hub_url: str | None = None
    int8: bool = True


def export_image_tower(visual: Any, image_size: int, path: Path) -> None:
    """Export the torch image tower with a dynamic batch axis (written atomically)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    sample = torch.zeros(1, 3, image_size, image_size)
    # torch's fused multi-head-attention fast path (taken in inference mode) has no ONNX export.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode():
            torch.onnx.export(
                visual, (sample,), str(tmp), input_names=["pixels"], output_names=["embeddings"],
                dynamic_axes={"pixels": {0: "batch"}, "embeddings": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    os.replace(tmp, path)


def torch_embeddings(visual: Any, pixels: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return visual(torch.from_numpy(pixels)).float().numpy()


def export(request: ExportRequest) -> dict[str, Any]:
    """Text embeddings, torch's embeddings of the parity sample and the fp32 export; returns
    the record instead when an earlier check already decided (or the export failed)."""
    import torch

    from detectors.clip import ClipDetector
    from detectors.clip_model import load_clip, weights_identity
    from detectors.clip_prompts import concept_embeddings, load_prompt_set, text_cache_path

    if request.threads > 0:
        torch.set_num_threads(request.threads)
    cache_dir = Path(request.cache_dir)
    prompts = load_prompt_set(Path(request.prompts_dir) if request.prompts_dir else None)
    clip = load_clip(request.model, request.pretrained, "cpu", cache_dir, request.hub_url)

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return clip.model.encode_text(clip.tokenizer(texts), normalize=True).float().numpy()

    identity = weights_identity(request.model, request.pretrained)
    concept_embeddings(prompts, encode, text_cache_path(cache_dir, identity, prompts.digest))
    key = clip_onnx.cache_key(request.model, request.pretrained, int8=request.int8)
    known = clip_onnx.read_record(cache_dir, key)
    if known is not None and (known["backend"] == "torch" or clip_onnx.model_path(
            cache_dir, key, known["backend"]).exists()):
        return known  # checked before: only the text embeddings were missing (prompts edited)
    sample = ClipDetector._pixels(clip, clip_onnx.calibration_images(clip_onnx.PARITY_IMAGES, seed=1))
    calibration = ClipDetector._pixels(clip, clip_onnx.calibration_images(clip_onnx.CALIBRATION_IMAGES))
    visual = clip.model.visual
    clip.model = None  # the text tower is done with; keep only the image tower
    gc.collect()
    reference = torch_embeddings(visual, sample)
    fp32 = clip_onnx.model_path(cache_dir, key, "onnx-fp32")
    meta = {"image_size": clip.image_size, "logit_scale": clip.logit_scale,
            "mean": list(clip.mean), "std": list(clip.std)}
    try:
        export_image_tower(visual, clip.image_size, fp32)
    except Exception as exc:  # export paths differ between torch versions: torch it is, remembered
        record = {"recipe": clip_onnx.RECIPE_VERSION, "backend": "torch", "batch_invariant": False,
                  "checks": [{"backend": "onnx-export", "passed": False, "parity_cosine": None,
                              "error": f"{type(exc).__name__}: {exc}"[:300]}], "meta": meta,
                  "min_parity_cosine": clip_onnx.MIN_PARITY_COSINE}
        clip_onnx.write_record(cache_dir, key, record)
        return record
    del visual
    gc.collect()
    np.savez(samples_path(cache_dir, key), sample=sample, reference=reference,
             calibration=calibration, meta=np.array(json.dumps(meta)))
    return {"exported": str(fp32)}


def samples_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "onnx" / f"{key}-samples.npz"


def check(request: ExportRequest, quantiser: clip_onnx.Quantiser | None = None) -> dict[str, Any]:
    """Quantise and walk the chain from what `export` left (no torch in this process)."""
    cache_dir = Path(request.cache_dir)
    key = clip_onnx.cache_key(request.model, request.pretrained, int8=request.int8)
    known = clip_onnx.read_record(cache_dir, key)
    if known is not None:
        return known
    samples = samples_path(cache_dir, key)
    with np.load(samples) as data:
        sample, reference, calibration = data["sample"], data["reference"], data["calibration"]
        meta = json.loads(str(data["meta"]))
    record = clip_onnx.choose_backend(
        clip_onnx.model_path(cache_dir, key, "onnx-fp32"), cache_dir, key, sample=sample,
        reference=reference, calibration=calibration, meta=meta, threads=request.threads,
        int8=request.int8, quantiser=quantiser)
    samples.unlink(missing_ok=True)
    return record


def prepare(request: ExportRequest, quantiser: clip_onnx.Quantiser | None = None) -> dict[str, Any]:
    """Both steps in this process (tests); the detector runs each in its own child."""
    export(request)
    return check(request, quantiser)


def peak_rss_mb() -> float | None:
    """This process's VmHWM (Linux), the figure `veille prepare`'s memory budget is about."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


STEPS = {"export": export, "check": check}


def main(argv: list[str]) -> int:
    """`python -m detectors.clip_export export|check REQUEST.json`: one JSON line out."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    step, request = STEPS[argv[0]], ExportRequest(**json.loads(Path(argv[1]).read_text("utf-8")))
    try:
        answer = step(request)
    except DetectorError as exc:  # weights unavailable, a bad config: the parent says it
        print(json.dumps({"error": str(exc), "kind": type(exc).__name__}))
        return 2
    except Exception as exc:  # an export this torch cannot do: the parent falls back to torch
        log.exception("CLIP %s failed", argv[0])
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500], "kind": argv[0]}))
        return 1
    print(json.dumps({**answer, "peak_rss_mb": peak_rss_mb(), "torch": "torch" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
