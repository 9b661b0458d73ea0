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
import gc
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
REASON_MIN_SCORE = 0.5  # reasons only for categories at least as close to a concept as to a negative
BACKENDS = ("auto", "torch", "onnx")


@dataclass
class ClipConfig:
    """How to build the CLIP detector; bot.core.suite fills it from Settings."""

    model: str
    pretrained: str
    device: str = "auto"
    cache_dir: Path = field(default_factory=lambda: Path(".veille") / "cache")
    prompts_dir: Path | None = None  # None: the bundled detectors/prompts
    backend: str = "auto"  # auto: ONNX int8 image tower on CPU when onnxruntime is installed
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
            raise DetectorError(f"VEILLE_CLIP_BACKEND={config.backend!r}: use {', '.join(BACKENDS)}")
        if config.batch_size < 1:
            raise DetectorError(f"VEILLE_BATCH_SIZE={config.batch_size}: must be at least 1")
        self.config = config
        self.prompts: PromptSet = load_prompt_set(config.prompts_dir)
        self._identity = weights_identity(config.model, config.pretrained)
        # The backend is part of it: int8 ONNX scores differ from torch in the third decimal.
        digest = hashlib.sha256(
            f"{self._identity}|{self.prompts.digest}|{config.backend}|{SCORING_VERSION}".encode()
        ).hexdigest()
        self.version = f"{SCORING_VERSION}.{digest[:12]}"
        self.categories = tuple(c.category for c in self.prompts.categories)
        self.text_cache_hit: bool | None = None  # after load(): were the embeddings cached?
        self._clip: LoadedClip | None = None
        self._onnx: object | None = None
        self._concepts: np.ndarray | None = None
        self._labels: list[str] = []
        self._layouts: list[_Layout] = []
        self._load_lock = asyncio.Lock()
        self._run_lock = threading.Lock()  # one batch at a time: torch already uses every core

    @property
    def loaded(self) -> bool:
        return self._clip is not None

    @property
    def backend_name(self) -> str:
        """What scores images now: "onnx-int8" or "torch" (benchmarks report it)."""
        return "onnx-int8" if self._onnx is not None else "torch"

    async def load(self) -> None:
        """Build the model and text embeddings (idempotent). Raises DetectorError."""
        if self._clip is not None:  # loaded: skip the lock, which binds to one event loop
            return
        async with self._load_lock:
            if self._clip is None:
                await asyncio.to_thread(self._load_sync)

    def _load_sync(self) -> None:
        if self._start_from_cache():
            return
        import torch

        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        clip = load_clip(self.config.model, self.config.pretrained, self.config.device,
                         self.config.cache_dir, self.config.hub_url)

        def encode(texts: list[str]) -> np.ndarray:
            with torch.inference_mode():
                tokens = clip.tokenizer(texts).to(clip.device)
                return clip.model.encode_text(tokens, normalize=True).float().cpu().numpy()

        matrix, self.text_cache_hit = concept_embeddings(self.prompts, encode, self._text_cache())
        self._use_concepts(matrix)
        self._onnx = self._maybe_onnx(clip)
        if self._onnx is not None:
            # Images go through the ONNX tower and the text embeddings are made: the torch
            # weights (about 600 MB for ViT-B-32) would only sit in memory from here on.
            clip.model = None
            gc.collect()
        self._clip = clip
        log.info("CLIP %s/%s ready on %s (%s, %d concepts, text cache %s)", self.config.model,
                 self.config.pretrained, clip.device, "onnx" if self._onnx else "torch",
                 len(self._labels), "hit" if self.text_cache_hit else "written")

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
        """Whether a start can skip torch: CPU scoring through ONNX, with the checked export
        (and its metadata) and this prompt set's text embeddings already on disk."""
        from detectors.clip_onnx import cache_key, cached_files

        cpu = self.config.device == "cpu" or (self.config.device == "auto"
                                              and no_accelerator_visible())
        key = cache_key(self.config.model, self.config.pretrained, int8=True)
        return (self.config.backend != "torch" and cpu and self._text_cache().exists()
                and all(path.exists() for path in cached_files(self.config.cache_dir, key)))

    def _start_from_cache(self) -> bool:
        """Start without torch when an earlier start left all that scoring needs: the int8 tower
        whose parity was checked (with its input size, logit scale and normalisation) and the
        text embeddings of this prompt set under these weights. Importing torch and open_clip
        alone costs ~700 MB of resident memory; True when this start did without them."""
        if not self.can_start_from_cache():
            return False
        from detectors.clip_onnx import cache_key, cached_encoder

        try:
            found = cached_encoder(self.config.cache_dir,
                                   cache_key(self.config.model, self.config.pretrained, int8=True),
                                   self.config.threads)
        except ImportError:  # no onnxruntime: torch it is
            return False
        if found is None:
            return False

        def needs_the_model(texts: list[str]) -> np.ndarray:
            raise LookupError("text embeddings are not cached for this prompt set")

        try:
            matrix, self.text_cache_hit = concept_embeddings(self.prompts, needs_the_model,
                                                             self._text_cache())
        except LookupError:
            return False
        encoder, meta = found
        self._use_concepts(matrix)
        self._onnx = encoder
        self._clip = LoadedClip(
            model=None, preprocess=None, tokenizer=None, device="cpu",
            image_size=int(meta["image_size"]), logit_scale=float(meta["logit_scale"]),
            mean=tuple(float(v) for v in meta["mean"]), std=tuple(float(v) for v in meta["std"]),
        )
        log.info("CLIP %s/%s ready on cpu from the ONNX cache, without torch (%d concepts)",
                 self.config.model, self.config.pretrained, len(self._labels))
        return True

    def _maybe_onnx(self, clip: LoadedClip) -> object | None:
        """The ONNX int8 image tower when asked for (or auto on CPU); None keeps torch."""
        if self.config.backend == "torch" or clip.device.type != "cpu":
            return None
        from detectors.clip_onnx import build_onnx_encoder, cache_key, onnx_available

        if not onnx_available():
            if self.config.backend == "onnx":
                raise DetectorError(
                    "VEILLE_CLIP_BACKEND=onnx needs onnx and onnxruntime: install veille[fast]"
                )
            return None
        import torch

        sample = self._pixels(clip, [Image.new("RGB", (64, 48), (90, 120, 200)),
                                     Image.radial_gradient("L")])
        # The fused multi-head-attention fast path that torch takes in inference mode has no
        # ONNX export: switch it off while the tower is traced, then restore it for torch runs.
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        meta = {"image_size": clip.image_size, "logit_scale": clip.logit_scale,
                "mean": list(clip.mean), "std": list(clip.std)}
        try:
            return build_onnx_encoder(
                clip.model.visual, clip.image_size, self.config.cache_dir,
                cache_key(self.config.model, self.config.pretrained, int8=True),
                sample=sample, meta=meta, threads=self.config.threads,
            )
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)

    @staticmethod
    def _pixels(clip: LoadedClip, images: Sequence[Image.Image]) -> np.ndarray:
        """Float32 NCHW, as open_clip's eval transform makes it: prepare_image already did its
        resize and centre crop (to the same pixels), so only ToTensor and Normalize are left,
        done here in numpy without a torch op per image."""
        batch = np.stack([np.asarray(prepare_image(i, clip.image_size), np.float32) for i in images])
        normalised = (batch / 255.0 - np.asarray(clip.mean, np.float32)) / np.asarray(clip.std, np.float32)
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
        pixels = self._pixels(clip, images)  # outside the lock: Pillow work can overlap
        with self._run_lock:
            if self._onnx is not None:
                # Dynamic int8 quantisation scales activations per call: a batched call would
                # make an image's score depend on its neighbours (we measured shifts of 0.005 in
                # margin). One image per call keeps scores batch-independent; on CPU the
                # throughput cost is small because the tower is compute-bound.
                raw = np.concatenate([self._onnx.encode(pixels[i : i + 1])  # type: ignore[attr-defined]
                                      for i in range(len(pixels))])
            else:
                import torch

                with torch.inference_mode():
                    tensor = torch.from_numpy(pixels).to(clip.device)
                    raw = clip.model.encode_image(tensor).float().cpu().numpy()
        embeddings = raw / (np.linalg.norm(raw, axis=1, keepdims=True) + 1e-12)
        scale = min(max(clip.logit_scale, 1.0), MAX_LOGIT_SCALE)
        margins, scores, best_pos, best_neg = score_margins(embeddings @ concepts.T,
                                                            self._layouts, scale)
        return [self._detection(margins[i], scores[i], best_pos[i], best_neg[i])
                for i in range(len(images))]

    def _detection(self, margins: np.ndarray, scores: np.ndarray, best_pos: np.ndarray,
                   best_neg: np.ndarray) -> Detection:
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
