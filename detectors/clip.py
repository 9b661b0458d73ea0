"""The CLIP zero-shot detector: image → per-category scores with reasons.

Scoring (SCORING_VERSION): for each category, with the image embedding x and the concept
embeddings of detectors/prompts (all L2-normalised),

    margin = max over the category's concepts of cos(x, c) − max over its negatives of cos(x, n)
    score  = 1 / (1 + exp(−s · (margin − offset)))

where s is the model's own learned logit scale (100 for OpenAI/LAION CLIP, clamped to [1, 100])
and `offset` comes from the prompt file (default 0). This is the probability the model itself
gives the best concept against the best hard negative in a two-way softmax, so a score of 0.5
means "equally close", and it is comparable across models in a way raw cosines are not.
`veille calibrate` then fits the review and block thresholds per model and tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from detectors.base import Detection, DetectorError, ImageInput
from detectors.clip_model import LoadedClip, load_clip, no_accelerator_visible, weights_identity
from detectors.clip_prompts import (
    PromptSet,
    concept_embeddings,
    load_prompt_set,
    text_cache_path,
)

log = logging.getLogger(__name__)

SCORING_VERSION = "1"  # bump when preprocessing or scoring below changes behaviour
MAX_LOGIT_SCALE = 100.0
REASON_MIN_SCORE = (
    0.5  # reasons only for categories at least as close to a concept as to a negative
)
# auto: the chain int8 → ONNX fp32 → torch on CPU; onnx: the same without torch at the end;
# onnx-fp32: the chain from ONNX fp32 (benchmarks, or a CPU where int8 is not wanted).
BACKENDS = ("auto", "torch", "onnx", "onnx-fp32")


@dataclass
class ClipConfig:
    """How to build the CLIP detector; bot.core.suite fills it from Settings."""

    model: str
    pretrained: str
    device: str = "auto"
    cache_dir: Path = field(default_factory=lambda: Path(".veille") / "cache")
    prompts_dir: Path | None = None  # None: the bundled detectors/prompts
    backend: str = "auto"  # one of BACKENDS
    batch_size: int = 16
    threads: int = 0  # CPU threads (torch and ONNX Runtime); 0 leaves their defaults
    hub_url: str | None = None  # the hub host to probe; tests point it at loopback


@dataclass(frozen=True)
class _Layout:
    category: str
    positives: np.ndarray  # row indices into the concept matrix
    negatives: np.ndarray
    offset: float


def prepare_image(image: Image.Image, size: int) -> Image.Image:
    """RGB, transparency flattened on mid-grey, centre square cropped and resized to `size`.

    Cropping the centre square first is what resize-shortest-side + centre-crop does anyway, and
    it keeps a 4000×3 banner from being upscaled to 300,000 pixels wide on the way."""
    if image.mode == "La":  # premultiplied grey+alpha: Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        background.alpha_composite(rgba)
        image = background
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)


def score_margins(
    similarities: np.ndarray, layouts: Sequence[_Layout], scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For an (images × concepts) cosine matrix: per (image, category) the margin, the score,
    and the index of the closest concept and of the closest negative."""
    n = similarities.shape[0]
    margins = np.zeros((n, len(layouts)), np.float32)
    best_pos = np.zeros((n, len(layouts)), np.int64)
    best_neg = np.zeros((n, len(layouts)), np.int64)
    offsets = np.array([layout.offset for layout in layouts], np.float32)
    for j, layout in enumerate(layouts):
        pos = similarities[:, layout.positives]
        neg = similarities[:, layout.negatives]
        best_pos[:, j] = layout.positives[pos.argmax(1)]
        best_neg[:, j] = layout.negatives[neg.argmax(1)]
        margins[:, j] = pos.max(1) - neg.max(1)
    scores = 1.0 / (1.0 + np.exp(-scale * (margins - offsets)))
    return margins, scores, best_pos, best_neg


class ClipDetector:
    """CLIP zero-shot scores for sexual, sexualised_edit, minor_present and synthetic.

    Construction reads the prompt files (DetectorError if they are wrong); `load()` builds the
    model and the text embeddings once; `detect()` runs in worker threads, batched."""

    name = "clip"
    kind: Literal["image"] = "image"

    def __init__(self, config: ClipConfig) -> None:
        if config.backend not in BACKENDS:
            raise DetectorError(
                f"VEILLE_CLIP_BACKEND={config.backend!r}: use {', '.join(BACKENDS)}"
            )
        if config.batch_size < 1:
            raise DetectorError(f"VEILLE_BATCH_SIZE={config.batch_size}: must be at least 1")
        self.config = config
        self.prompts: PromptSet = load_prompt_set(config.prompts_dir)
        self._identity = weights_identity(config.model, config.pretrained)
        # The backend setting is part of it: int8 ONNX scores differ from torch in the third decimal.
        digest = hashlib.sha256(
            f"{self._identity}|{self.prompts.digest}|{config.backend}|{SCORING_VERSION}".encode()
        ).hexdigest()
        self.version = f"{SCORING_VERSION}.{digest[:12]}"
        self.categories = tuple(c.category for c in self.prompts.categories)
        self.text_cache_hit: bool | None = None  # after load(): were the embeddings cached?
        self._clip: LoadedClip | None = None
        self._onnx: object | None = None
        self._backend = "torch"
        self._batched = False
        self._record: dict[str, Any] | None = None
        self.child_peak_rss_mb: float | None = None  # the export children's VmHWM, when run
        self.child_peaks_mb: dict[str, float | None] = {}  # per step: export, check
        self._concepts: np.ndarray | None = None
        self._labels: list[str] = []
        # Resizing a batch on as many threads as inference uses: about a sixth of a batch's
        # time at 2 threads (bench/clip.py), spent while the model is idle.
        self._resizers: Executor | None = (
            ThreadPoolExecutor(config.threads, thread_name_prefix="clip-resize")
            if config.threads > 1
            else None
        )
        self._layouts: list[_Layout] = []
        self._load_lock = asyncio.Lock()
        self._run_lock = threading.Lock()  # one batch at a time: torch already uses every core

    @property
    def loaded(self) -> bool:
        return self._clip is not None

    @property
    def backend_name(self) -> str:
        """What scores images now: "onnx-int8", "onnx-fp32" or "torch" (benchmarks report it)."""
        return self._backend

    @property
    def backend_report(self) -> str:
        """The backend and the checks that chose it, for `veille prepare` and `veille doctor`."""
        from detectors.clip_onnx import describe

        return describe(self._record) if self._record else self._backend

    async def load(self) -> None:
        """Build the model and text embeddings (idempotent). Raises DetectorError."""
        if self._clip is not None:  # loaded: skip the lock, which binds to one event loop
            return
        async with self._load_lock:
            if self._clip is None:
                await asyncio.to_thread(self._load_sync)

    def _wants_onnx(self) -> bool:
        """ONNX is tried on CPU unless torch is asked for; VEILLE_CLIP_BACKEND=onnx requires it."""
        from detectors.clip_onnx import onnx_available

        if self.config.backend == "torch" or not self._on_cpu():
            return False
        if not onnx_available():
            if self.config.backend.startswith("onnx"):
                raise DetectorError(
                    f"VEILLE_CLIP_BACKEND={self.config.backend} needs onnx and onnxruntime: "
                    "install veille[fast]"
                )
            return False
        return True

    @property
    def _int8(self) -> bool:
        return self.config.backend != "onnx-fp32"

    def _on_cpu(self) -> bool:
        return self.config.device == "cpu" or (
            self.config.device == "auto" and no_accelerator_visible()
        )

    def _load_sync(self) -> None:
        if self._wants_onnx():
            from detectors.clip_onnx import cache_key, log_checks, read_record

            key = cache_key(self.config.model, self.config.pretrained, int8=self._int8)
            record = read_record(self.config.cache_dir, key)
            if record is not None and record["backend"] == "torch":
                log_checks(record, remembered=True)  # both ONNX steps failed here before
            elif record is not None and self._start_from_record(key, record):
                log_checks(record, remembered=True)
                return
            else:  # no check yet, or its files are gone: the child exports, checks and exits
                text_cached = self._text_cache().exists()
                record = self._prepare_in_child()
                if record is not None:
                    log_checks(record, remembered=False)
                    if self._start_from_record(key, record):
                        self.text_cache_hit = text_cached  # the child wrote them on this start
                        return
            if self.config.backend.startswith("onnx"):
                from detectors.clip_onnx import describe

                checks = describe(record) if record else "the export failed"
                raise DetectorError(
                    f"VEILLE_CLIP_BACKEND={self.config.backend} but no ONNX image "
                    f"tower passed its check ({checks}); use auto to fall back "
                    "to torch"
                )
            self._record = record
        self._load_torch()

    def _prepare_in_child(self) -> dict[str, Any] | None:
        """Run detectors/clip_export.py in a child process (torch stays out of this one).
        The record it wrote, or None when it failed for another reason than the weights."""
        import json
        import os
        import subprocess
        import sys
        import tempfile
        from dataclasses import asdict

        from detectors.clip_export import ExportRequest
        from detectors.clip_model import ClipWeightsUnavailable

        request = ExportRequest(
            self.config.model,
            self.config.pretrained,
            str(self.config.cache_dir),
            str(self.config.prompts_dir) if self.config.prompts_dir else None,
            self.config.threads,
            self.config.hub_url,
            self._int8,
        )
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        }
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", dir=self.config.cache_dir, delete=False
        ) as file:
            json.dump(asdict(request), file)
        log.info(
            "CLIP %s/%s: first start on this machine, exporting and checking the image "
            "tower in a child process",
            self.config.model,
            self.config.pretrained,
        )
        try:
            answer: dict[str, Any] = {}
            for step in ("export", "check"):  # two processes: torch only in the first
                done = subprocess.run(
                    [sys.executable, "-m", "detectors.clip_export", step, file.name],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                lines = done.stdout.strip().splitlines()
                try:
                    answer = json.loads(lines[-1]) if lines else {}
                except json.JSONDecodeError:
                    answer = {}
                if done.returncode != 0:
                    break
                self.child_peaks_mb[step] = answer.get("peak_rss_mb")
        finally:
            os.unlink(file.name)
        if done.returncode == 2 and answer.get("kind") == "ClipWeightsUnavailable":
            raise ClipWeightsUnavailable(str(answer["error"]))
        if done.returncode == 2 and "error" in answer:
            raise DetectorError(str(answer["error"]))
        if done.returncode != 0 or "backend" not in answer:
            detail = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
            log.warning(
                "CLIP image tower %s failed (exit %s), using torch: %s",
                step,
                done.returncode,
                detail,
            )
            return None
        self.child_peak_rss_mb = max(v or 0.0 for v in self.child_peaks_mb.values())
        return answer

    def _load_torch(self) -> None:
        import torch

        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        clip = load_clip(
            self.config.model,
            self.config.pretrained,
            self.config.device,
            self.config.cache_dir,
            self.config.hub_url,
        )

        def encode(texts: list[str]) -> np.ndarray:
            with torch.inference_mode():
                tokens = clip.tokenizer(texts).to(clip.device)
                return clip.model.encode_text(tokens, normalize=True).float().cpu().numpy()

        matrix, self.text_cache_hit = concept_embeddings(self.prompts, encode, self._text_cache())
        self._use_concepts(matrix)
        self._backend = "torch"
        self._clip = clip
        log.info(
            "CLIP %s/%s ready on %s (torch, %d concepts, text cache %s)",
            self.config.model,
            self.config.pretrained,
            clip.device,
            len(self._labels),
            "hit" if self.text_cache_hit else "written",
        )

    def _text_cache(self) -> Path:
        return text_cache_path(self.config.cache_dir, self._identity, self.prompts.digest)

    def _use_concepts(self, matrix: np.ndarray) -> None:
        concepts = self.prompts.unique_concepts()
        index = {(c.label, c.prompts): i for i, c in enumerate(concepts)}
        self._labels = [c.label for c in concepts]
        self._layouts = [
            _Layout(
                c.category,
                np.array([index[(k.label, k.prompts)] for k in c.concepts]),
                np.array([index[(k.label, k.prompts)] for k in c.negatives]),
                c.offset,
            )
            for c in self.prompts.categories
        ]
        self._concepts = matrix

    def can_start_from_cache(self) -> bool:
        """Whether a start can skip torch: CPU scoring through an ONNX tower that passed its
        check (the record says which) and this prompt set's text embeddings on disk."""
        from detectors.clip_onnx import cache_key, model_path, read_record

        if self.config.backend == "torch" or not self._on_cpu() or not self._text_cache().exists():
            return False
        key = cache_key(self.config.model, self.config.pretrained, int8=self._int8)
        record = read_record(self.config.cache_dir, key)
        return (
            record is not None
            and record["backend"] != "torch"
            and model_path(self.config.cache_dir, key, str(record["backend"])).exists()
        )

    def _start_from_record(self, key: str, record: dict[str, Any]) -> bool:
        """Start without torch from the backend an earlier check chose (input size, logit scale
        and normalisation are in its record) and the cached text embeddings. Importing torch
        and open_clip alone costs ~700 MB of resident memory; True when this start did without."""
        from detectors.clip_onnx import open_recorded

        encoder = open_recorded(self.config.cache_dir, key, record, self.config.threads)
        if encoder is None:
            return False

        def needs_the_model(texts: list[str]) -> np.ndarray:
            raise LookupError("text embeddings are not cached for this prompt set")

        try:
            matrix, self.text_cache_hit = concept_embeddings(
                self.prompts, needs_the_model, self._text_cache()
            )
        except LookupError:
            return False
        meta = record["meta"]
        self._use_concepts(matrix)
        self._onnx = encoder
        self._record = record
        self._backend = str(record["backend"])
        self._batched = bool(record.get("batch_invariant"))
        self._clip = LoadedClip(
            model=None,
            preprocess=None,
            tokenizer=None,
            device="cpu",
            image_size=int(meta["image_size"]),
            logit_scale=float(meta["logit_scale"]),
            mean=tuple(float(v) for v in meta["mean"]),
            std=tuple(float(v) for v in meta["std"]),
        )
        log.info(
            "CLIP %s/%s ready on cpu from the ONNX cache, without torch (%s, %d concepts)",
            self.config.model,
            self.config.pretrained,
            self._backend,
            len(self._labels),
        )
        return True

    @staticmethod
    def _pixels(
        clip: LoadedClip, images: Sequence[Image.Image], pool: Executor | None = None
    ) -> np.ndarray:
        """Float32 NCHW, as open_clip's eval transform makes it: prepare_image already did its
        resize and centre crop (to the same pixels), so only ToTensor and Normalize are left,
        done here in numpy without a torch op per image. With `pool`, the images are resized
        on its threads (Pillow lets go of the GIL): the same pixels, sooner."""

        def prepared(image: Image.Image) -> np.ndarray:
            return np.asarray(prepare_image(image, clip.image_size), np.float32)

        if pool is not None and len(images) > 1:
            batch = np.stack(list(pool.map(prepared, images)))
        else:
            batch = np.stack([prepared(i) for i in images])
        normalised = (batch / 255.0 - np.asarray(clip.mean, np.float32)) / np.asarray(
            clip.std, np.float32
        )
        return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2), dtype=np.float32)

    async def detect(self, items: Sequence[ImageInput]) -> list[Detection]:  # type: ignore[override]
        """One Detection per item, in order; loads the model first if needed."""
        if not items:
            return []
        if not all(isinstance(item, ImageInput) for item in items):
            raise DetectorError("the CLIP detector scores images (ImageInput), not text")
        await self.load()
        results: list[Detection] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            batch = [item.image for item in items[start : start + size]]
            results.extend(await asyncio.to_thread(self._detect_batch, batch))
        return results

    def _detect_batch(self, images: list[Image.Image]) -> list[Detection]:
        clip, concepts = self._clip, self._concepts
        assert clip is not None and concepts is not None  # load() ran
        pixels = self._pixels(clip, images, self._resizers)  # outside the lock: can overlap
        if self._resizers is not None:
            from detectors.clip_onnx import trim_heap

            trim_heap()  # the resizing threads' arenas: their freed buffers back to the system
        with self._run_lock:
            if self._onnx is not None and self._batched:
                # The recipe's scales are fixed (checked at export: an image's embedding is the
                # same bits alone and in a batch), so the whole batch goes in one call.
                raw = self._onnx.encode(pixels)  # type: ignore[attr-defined]
            elif self._onnx is not None:  # not shown batch-invariant: one image per call
                raw = np.concatenate(
                    [
                        self._onnx.encode(pixels[i : i + 1])  # type: ignore[attr-defined]
                        for i in range(len(pixels))
                    ]
                )
            else:
                import torch

                with torch.inference_mode():
                    tensor = torch.from_numpy(pixels).to(clip.device)
                    raw = clip.model.encode_image(tensor).float().cpu().numpy()
        embeddings = raw / (np.linalg.norm(raw, axis=1, keepdims=True) + 1e-12)
        scale = min(max(clip.logit_scale, 1.0), MAX_LOGIT_SCALE)
        # Row by row: a matrix product's rounding depends on how many rows it has (BLAS picks
        # other kernels), and an image's score must not depend on its batch-mates.
        similarities = np.stack([concepts @ row for row in embeddings])
        margins, scores, best_pos, best_neg = score_margins(similarities, self._layouts, scale)
        return [
            self._detection(margins[i], scores[i], best_pos[i], best_neg[i])
            for i in range(len(images))
        ]

    def _detection(
        self, margins: np.ndarray, scores: np.ndarray, best_pos: np.ndarray, best_neg: np.ndarray
    ) -> Detection:
        detection = Detection(extras={"clip_margins": {}})
        for j, layout in enumerate(self._layouts):
            score = float(np.clip(scores[j], 0.0, 1.0))
            detection.scores[layout.category] = score
            detection.extras["clip_margins"][layout.category] = round(float(margins[j]), 4)  # type: ignore[index]
            if score >= REASON_MIN_SCORE:
                detection.reasons.append(
                    f"CLIP {layout.category}: closer to '{self._labels[best_pos[j]]}' than to "
                    f"'{self._labels[best_neg[j]]}' (margin {margins[j]:+.2f})"
                )
        return detection
