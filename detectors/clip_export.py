"""The one-time CLIP work, in two child processes, one after the other:

- `python -m detectors.clip_export export REQUEST.json` loads torch and open_clip, writes the
  text embeddings of the prompt set to the cache, has torch embed the fixed parity sample and
  exports the image tower to ONNX fp32 (with the sample, torch's embeddings of it and the
  calibration pixels beside it), then exits;
- `python -m detectors.clip_export check REQUEST.json` — without torch — quantises and walks the
  chain (detectors/clip_onnx.choose_backend), which writes the record.

The process that asked (the bot, `veille prepare`) never holds torch, and the two peaks do not
add up. Each step is kept under 1.5 GB for ViT-B-32 (issue 16, `python -m bench.prepare_memory`):
the weights are the checkpoint's mapped pages, not a copy (`load_clip(mapped=True)`, which builds
the model without its random initialisation: the load's own peak 886 MB, was 1339), the text
tower's pages are handed back once its embeddings are cached, and the export writes the weights
as external data one tensor at a time instead of holding them in a proto. Each answers one JSON line on stdout, with its own VmHWM, or {"error": ..., "kind": ...}
for a failure the parent re-raises (weights unavailable...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
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
    """Export the torch image tower with a dynamic batch axis (written atomically), its weights
    in `external_data_path(path)` beside it, written one tensor at a time."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    sample = torch.zeros(1, 3, image_size, image_size)
    # torch's fused multi-head-attention fast path (taken in inference mode) has no ONNX export.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), weights_kept_out() as weights:
            torch.onnx.export(
                visual,
                (sample,),
                str(tmp),
                input_names=["pixels"],
                output_names=["embeddings"],
                dynamic_axes={"pixels": {0: "batch"}, "embeddings": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        if weights:  # else this torch exported them inline, as before
            graft_external_weights(tmp, weights, clip_onnx.external_data_path(path))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    os.replace(tmp, path)


@contextlib.contextmanager
def weights_kept_out() -> Iterator[dict[str, Any]]:
    """While torch.onnx.export (TorchScript) runs, take its final initializers (the weights
    after constant folding, deduplicated) out of the proto it builds: inline, the export held
    them three times over (folded tensors, the C++ proto, its serialised bytes), about 1 GB for
    ViT-B-32. The graph then names them as inputs; `graft_external_weights` puts them back."""
    import torch

    weights: dict[str, Any] = {}
    deduplicate = torch._C._jit_pass_onnx_deduplicate_initializers

    def take(graph: Any, params: Any, training: Any) -> dict[str, Any]:
        weights.update(deduplicate(graph, params, training))
        return {}

    torch._C._jit_pass_onnx_deduplicate_initializers = take  # type: ignore[assignment]
    try:
        yield weights
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = deduplicate


def graft_external_weights(model_file: Path, weights: dict[str, Any], data_path: Path) -> None:
    """Turn the graph inputs named in `weights` back into initializers, their bytes in
    `data_path` (ONNX external data, one tensor written and released at a time), in the order
    the exporter would have written them."""
    import onnx

    model = onnx.load(str(model_file), load_external_data=False)
    graph = model.graph
    kept = [value for value in graph.input if value.name not in weights]
    order = [value.name for value in graph.input if value.name in weights]
    order += [name for name in weights if name not in set(order)]
    tmp = data_path.with_name(f"{data_path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as out:
        for name in order:
            array = weights.pop(name).detach().cpu().contiguous().numpy()
            offset = out.tell()
            out.write(array.tobytes())
            tensor = onnx.TensorProto(
                name=name,
                dims=array.shape,
                data_type=onnx.helper.np_dtype_to_tensor_dtype(array.dtype),
                data_location=onnx.TensorProto.EXTERNAL,
            )
            for key, value in (
                ("location", data_path.name),
                ("offset", str(offset)),
                ("length", str(array.nbytes)),
            ):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            graph.initializer.append(tensor)
            del array
    del graph.input[:]
    graph.input.extend(kept)
    onnx.save(model, str(model_file))
    os.replace(tmp, data_path)


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
    clip = load_clip(
        request.model, request.pretrained, "cpu", cache_dir, request.hub_url, mapped=True
    )

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return clip.model.encode_text(clip.tokenizer(texts), normalize=True).float().numpy()

    identity = weights_identity(request.model, request.pretrained)
    concept_embeddings(prompts, encode, text_cache_path(cache_dir, identity, prompts.digest))
    key = clip_onnx.cache_key(request.model, request.pretrained, int8=request.int8)
    known = clip_onnx.read_record(cache_dir, key)
    if known is not None and (
        known["backend"] == "torch"
        or clip_onnx.model_path(cache_dir, key, known["backend"]).exists()
    ):
        return known  # checked before: only the text embeddings were missing (prompts edited)
    sample = ClipDetector._pixels(
        clip, clip_onnx.calibration_images(clip_onnx.PARITY_IMAGES, seed=1)
    )
    calibration = ClipDetector._pixels(
        clip, clip_onnx.calibration_images(clip_onnx.CALIBRATION_IMAGES)
    )
    visual = clip.model.visual
    clip.model = None  # the text tower is done with; keep only the image tower
    # Its pages stay mapped while the image tower's tensors share the file: hand them back (they
    # are clean, the image tower's own fault in again as it runs) with the text work's heap.
    release_mapped_pages(checkpoint_file(request, cache_dir))
    clip_onnx.release_heap()
    reference = torch_embeddings(visual, sample)
    meta = {
        "image_size": clip.image_size,
        "logit_scale": clip.logit_scale,
        "mean": list(clip.mean),
        "std": list(clip.std),
    }
    # Saved before the export, which needs the room: the check step reads them without torch.
    samples = samples_path(cache_dir, key)
    samples.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        samples,
        sample=sample,
        reference=reference,
        calibration=calibration,
        meta=np.array(json.dumps(meta)),
    )
    del sample, reference, calibration
    clip_onnx.release_heap()
    fp32 = clip_onnx.model_path(cache_dir, key, "onnx-fp32")
    try:
        export_image_tower(visual, clip.image_size, fp32)
    except Exception as exc:  # export paths differ between torch versions: torch it is, remembered
        samples.unlink(missing_ok=True)
        record = {
            "recipe": clip_onnx.RECIPE_VERSION,
            "backend": "torch",
            "batch_invariant": False,
            "checks": [
                {
                    "backend": "onnx-export",
                    "passed": False,
                    "parity_cosine": None,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            ],
            "meta": meta,
            "min_parity_cosine": clip_onnx.MIN_PARITY_COSINE,
        }
        clip_onnx.write_record(cache_dir, key, record)
        return record
    return {"exported": str(fp32)}


def checkpoint_file(request: ExportRequest, cache_dir: Path) -> str:
    from detectors.clip_model import resolve_architecture, resolve_weights

    architecture = resolve_architecture(request.model, cache_dir)
    return resolve_weights(
        architecture, request.model, request.pretrained, cache_dir, request.hub_url
    )


def release_mapped_pages(path: str) -> int:
    """Drop this process's resident pages of the file mapped at `path` (Linux; the weights
    `load_clip(mapped=True)` left in the checkpoint's pages). Only private file mappings are
    touched, and nothing writes to the weights, so every page dropped is a clean copy of the
    file that a later read faults back in. Returns the bytes of mapping advised."""
    import ctypes

    try:
        target = os.path.realpath(path)
        maps = Path("/proc/self/maps").read_text().splitlines()
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return 0
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for line in maps:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target and fields[1].endswith("p"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if madvise(start, end - start, MADV_DONTNEED) == 0:
                advised += end - start
    return advised


MADV_DONTNEED = 4


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
        clip_onnx.model_path(cache_dir, key, "onnx-fp32"),
        cache_dir,
        key,
        sample=sample,
        reference=reference,
        calibration=calibration,
        meta=meta,
        threads=request.threads,
        int8=request.int8,
        quantiser=quantiser,
    )
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
