"""Loading an open_clip model the way production does: architecture, weights, device.

- VEILLE_CLIP_MODEL: an open_clip architecture name ("ViT-B-32") or the path of a model-config
  JSON (custom or tiny architectures), registered with open_clip under a content-derived name.
- VEILLE_CLIP_PRETRAINED: a hub tag (downloaded once, with a progress bar, into the cache) or a
  local .pt/.pth/.bin/.safetensors checkpoint (air-gapped installs).
- VEILLE_DEVICE: auto (cuda, then mps, else cpu) or an explicit cpu/cuda[:N]/mps.

Every failure is a DetectorError whose message names the setting to change. When the hub is
unreachable we find out with one short TCP connect instead of waiting on HTTP retries.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:  # torch is imported where a model is built: a start from the ONNX cache skips it
    import torch

from detectors.base import DetectorError

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz"}
HUB_PROBE_TIMEOUT_S = 3.0

LOCAL_FILE_HINT = (
    "To run without the hub, download the checkpoint on a connected machine (for example "
    "open_clip_model.safetensors from the model's Hugging Face page) and set "
    "VEILLE_CLIP_PRETRAINED=/path/to/open_clip_model.safetensors (a .pt file works too)."
)
BUNDLED_ONLY_HINT = (
    "To run with the bundled image model only, set VEILLE_DETECTORS=nsfw,hashes,text."
)
HF_WEIGHTS_FILE = "open_clip_model.safetensors"  # open_clip prefers it to the .bin beside it


class ClipWeightsUnavailable(DetectorError):
    """The CLIP weights cannot be had (no hub, no local file): the message says which file to
    copy for an air-gapped install and how to run with the bundled model instead."""


def offline_guidance(model: str, pretrained: str, config: dict[str, Any]) -> str:
    """Where the weights live on the hub, exactly, and the two ways forward without it."""
    hub = str(config.get("hf_hub") or "").strip("/")
    if hub:
        parts = hub.split("/")  # "org/repo" or "org/repo/file"
        repo, file = "/".join(parts[:2]), "/".join(parts[2:]) or HF_WEIGHTS_FILE
        where = (
            f"copy {file} from the Hugging Face repository {repo} "
            f"(https://huggingface.co/{repo}/blob/main/{file})"
        )
        name = file
    else:
        url = str(config.get("url") or "")
        name = os.path.basename(url) or "the checkpoint"
        where = f"copy {url or 'the checkpoint'}"
    return (
        f"For an air-gapped install, {where} onto this machine and set "
        f"VEILLE_CLIP_PRETRAINED=/path/to/{name} (VEILLE_CLIP_MODEL={model}). "
        f"{BUNDLED_ONLY_HINT}"
    )


OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LoadedClip:
    model: Any  # open_clip CLIP, in eval mode on `device`
    preprocess: Any  # PIL image -> CHW tensor
    tokenizer: Any
    device: Any  # torch.device; "cpu" when started from the ONNX cache without torch
    image_size: int
    logit_scale: float  # the model's learned temperature (100 for OpenAI/LAION CLIP)
    mean: tuple[float, ...] = OPENAI_MEAN  # the Normalize step of `preprocess`
    std: tuple[float, ...] = OPENAI_STD


def no_accelerator_visible() -> bool:
    """True when "auto" can only mean the CPU, decided without importing torch: no NVIDIA driver,
    no ROCm device node, not Apple silicon (which torch would pick through MPS)."""
    import platform
    import sys

    if Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists():
        return False
    return not (sys.platform == "darwin" and platform.machine() == "arm64")


def normalisation(preprocess: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the Normalize step in an open_clip transform (OpenAI's when none)."""
    for step in getattr(preprocess, "transforms", ()):
        if hasattr(step, "mean") and hasattr(step, "std"):
            return tuple(float(v) for v in step.mean), tuple(float(v) for v in step.std)
    return OPENAI_MEAN, OPENAI_STD


def resolve_device(requested: str) -> torch.device:
    """auto → cuda, then mps, else cpu; an explicit device must exist (DetectorError if not)."""
    import torch

    wanted = (requested or "auto").strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if wanted == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError as exc:
        raise DetectorError(
            f"VEILLE_DEVICE={requested!r} is not a device: use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise DetectorError(
                f"VEILLE_DEVICE={requested!r} but this machine has {count} usable CUDA device(s); "
                "set VEILLE_DEVICE=cpu or auto"
            )
    elif device.type == "mps" and not mps_ok:
        raise DetectorError(f"VEILLE_DEVICE={requested!r} but MPS is not available here; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DetectorError(f"VEILLE_DEVICE={requested!r}: use auto, cpu, cuda or mps")
    return device


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(("~", "."))
        or Path(value).suffix.lower() in CHECKPOINT_SUFFIXES
        or value.endswith(".json")
    )


def resolve_architecture(model: str, cache_dir: Path) -> str:
    """The open_clip name for `model`: a built-in name as is, or a config JSON registered under
    "veille-<hash>" (a copy in the cache, so a file named like a built-in cannot shadow it)."""
    import open_clip

    if model in open_clip.list_models():
        return model
    path = Path(model).expanduser()
    if path.is_file():
        try:
            config = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DetectorError(f"VEILLE_CLIP_MODEL={model}: cannot read the JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise DetectorError(f"VEILLE_CLIP_MODEL={model}: the JSON is not an object")
        config = config.get("model_cfg", config)  # open_clip_config.json from hub repos
        if not all(key in config for key in ("embed_dim", "vision_cfg", "text_cfg")):
            raise DetectorError(
                f"VEILLE_CLIP_MODEL={model}: not an open_clip model config "
                "(needs embed_dim, vision_cfg and text_cfg)"
            )
        text = json.dumps(config, sort_keys=True)
        name = f"veille-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        if name not in open_clip.list_models():
            folder = cache_dir / "model_configs"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.json").write_text(text, "utf-8")
            open_clip.add_model_config(folder / f"{name}.json")
        return name
    if _looks_like_path(model):
        raise DetectorError(f"VEILLE_CLIP_MODEL={model}: no such model-config file")
    close = difflib.get_close_matches(model, open_clip.list_models(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DetectorError(
        f"VEILLE_CLIP_MODEL={model!r} is neither an open_clip architecture nor a config file.{hint}"
    )


def weights_identity(model: str, pretrained: str) -> str:
    """A string that changes when the model or the weights change (cache keys, version)."""
    parts = [model, pretrained]
    for value in (model, pretrained):
        path = Path(value).expanduser()
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
            if path.suffix == ".json":  # configs are small: hash the content itself
                parts.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return "|".join(parts)


def _probe(url: str) -> None:
    """One TCP connect to the host of `url`: fails in seconds instead of minutes of retries."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with socket.create_connection((parsed.hostname or "", port), timeout=HUB_PROBE_TIMEOUT_S):
        pass


def _cached_hub_file(repo_file: str, weights_dir: Path) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename = os.path.split(repo_file)
    filename = filename or "open_clip_pytorch_model.bin"
    candidates = [filename]
    if filename.endswith((".bin", ".pth")):  # open_clip prefers a safetensors twin
        candidates.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
    for name in candidates:
        found = try_to_load_from_cache(repo_id, name, cache_dir=str(weights_dir))
        if isinstance(found, str):
            return found
    return None


def resolve_weights(
    architecture: str, model: str, pretrained: str, cache_dir: Path, hub_url: str | None = None
) -> str:
    """A local checkpoint file for `pretrained`: the path itself, a cached download, or a fresh
    download with a progress bar. `hub_url` overrides the host probed (tests use loopback)."""
    import open_clip

    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path)
    all_tags = open_clip.list_pretrained_tags_by_model(architecture)
    # Some architectures have dozens of tags: name a few, the error must stay readable.
    tags = all_tags[:6] + (["…"] if len(all_tags) > 6 else [])
    if _looks_like_path(pretrained):
        raise DetectorError(
            f"VEILLE_CLIP_PRETRAINED={pretrained}: no such checkpoint file. Point it at an "
            f"existing .pt or .safetensors file for {model}, or use a hub tag"
            f"{' (' + ', '.join(tags) + ')' if tags else ''}."
        )
    config = open_clip.get_pretrained_cfg(architecture, pretrained)
    if not config:
        known = f"known tags for {model}: {', '.join(tags)}" if tags else f"{model} has no hub tags"
        raise DetectorError(
            f"VEILLE_CLIP_PRETRAINED={pretrained!r} is not a hub tag for {model} ({known}) nor an "
            f"existing file. {LOCAL_FILE_HINT}"
        )
    weights_dir = cache_dir / "weights"
    if config.get("hf_hub"):
        from huggingface_hub import constants

        cached = _cached_hub_file(config["hf_hub"], weights_dir)
        if cached:
            return cached
        source = hub_url or constants.ENDPOINT
        offline = bool(constants.HF_HUB_OFFLINE)
    else:
        url = config.get("url", "")
        cached_path = weights_dir / os.path.basename(url)
        if url and cached_path.is_file():
            return str(cached_path)
        source, offline = hub_url or url, False
    try:
        if offline:
            raise OSError("HF_HUB_OFFLINE is set")
        _probe(source)
        log.info("downloading CLIP weights %s/%s into %s", model, pretrained, weights_dir)
        target = open_clip.download_pretrained(config, cache_dir=str(weights_dir))
    except Exception as exc:  # network, HTTP, disk: all mean "no weights", say how to fix it
        raise ClipWeightsUnavailable(
            f"Could not download the CLIP weights for VEILLE_CLIP_PRETRAINED={pretrained!r} "
            f"({model}) from {source}: {_first_line(exc)}. "
            f"{offline_guidance(model, pretrained, config)}"
        ) from exc
    if not target:
        raise ClipWeightsUnavailable(
            f"VEILLE_CLIP_PRETRAINED={pretrained!r}: no download source known. "
            f"{offline_guidance(model, pretrained, config)}"
        )
    return str(target)


def _first_line(exc: BaseException) -> str:
    """An exception in one short line: HTTP libraries put whole responses in their messages."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


_OPEN_CLIP_STATE_DICT: Any = None  # open_clip.factory.load_state_dict, while it is replaced


def _mapped_state_dict(checkpoint: str, device: str = "cpu", weights_only: bool = True) -> Any:
    """open_clip's `load_state_dict`, with the tensors left in the file's pages (mmap) rather
    than copied: safetensors maps by default, torch's zip format with mmap=True."""
    import torch

    if checkpoint.endswith(".safetensors"):
        return _OPEN_CLIP_STATE_DICT(checkpoint, device, weights_only)
    real_load = torch.load

    def mapped_load(*args: Any, **kwargs: Any) -> Any:
        return real_load(*args, **{**kwargs, "mmap": True})

    torch.load = mapped_load  # open_clip calls torch.load(path, map_location=..., weights_only=...)
    try:
        return _OPEN_CLIP_STATE_DICT(checkpoint, device, weights_only)
    finally:
        torch.load = real_load


def assign_mapped_weights(net: Any, checkpoint: str) -> bool:
    """Load `checkpoint` into `net` the way open_clip's `load_checkpoint` does, but with the
    parameters *being* the file's mapped pages (load_state_dict(assign=True)): no second copy of
    the weights, and pages that are never read (the text tower, once its embeddings are cached)
    never become resident. False when the file cannot be mapped (torch's legacy format, .npz)."""
    import functools

    import open_clip.factory

    if Path(checkpoint).suffix in (".npz", ".npy"):
        return False
    global _OPEN_CLIP_STATE_DICT
    dtypes = {name: t.dtype for name, t in (*net.named_parameters(), *net.named_buffers())}
    real_state_dict = _OPEN_CLIP_STATE_DICT = open_clip.factory.load_state_dict
    open_clip.factory.load_state_dict = _mapped_state_dict
    net.load_state_dict = functools.partial(type(net).load_state_dict, net, assign=True)
    try:
        open_clip.factory.load_checkpoint(net, checkpoint)
    except RuntimeError as exc:  # "mmap can only be used with files saved with ..."
        if "mmap" not in str(exc):
            raise
        return False
    finally:
        open_clip.factory.load_state_dict = real_state_dict
        del net.load_state_dict
    # assign keeps the checkpoint's dtype (an fp16 file); copying would have cast to the model's
    for name, tensor in (*net.named_parameters(), *net.named_buffers()):
        if name in dtypes and tensor.dtype != dtypes[name]:
            tensor.data = tensor.data.to(dtypes[name])
    return True


@contextlib.contextmanager
def _weights_to_come(strict: bool) -> Iterator[None]:
    """Build a model whose weights come next from a checkpoint, hiding open_clip's "No
    pretrained weights loaded" warning (root logger). `strict`: open_clip loads the checkpoint
    strictly (a torch file: a missing key is an error), so every parameter is overwritten, and
    torch.nn.init's in-place initialisers do nothing meanwhile: the random weights are neither
    computed (2.8 s of CPU for ViT-B-32) nor made resident (the untouched pages of 605 MB of
    parameters, which the mapped weights replace; measured in the export child: its load peak
    went from 1339 to 886 MB). Only for the building thread: a module another thread builds
    meanwhile is initialised as usual, and two such builds take turns."""
    import torch.nn.init

    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")

    builder = threading.get_ident()

    def untouched(initialiser: Any) -> Any:
        def skip(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != builder:  # another thread's module: initialised as usual
                return initialiser(tensor, *args, **kwargs)
            return tensor

        return skip

    root = logging.getLogger()
    with _INIT_SWITCH:  # one model at a time: each puts back the initialisers it found
        initialisers = {
            name: getattr(torch.nn.init, name)
            for name in dir(torch.nn.init)
            if name.endswith("_") and not name.startswith("_")
        }
        root.addFilter(drop)
        try:
            for name, initialiser in initialisers.items() if strict else ():
                setattr(torch.nn.init, name, untouched(initialiser))
            yield
        finally:
            for name, initialiser in initialisers.items():
                setattr(torch.nn.init, name, initialiser)
            root.removeFilter(drop)


_INIT_SWITCH = threading.Lock()


def load_clip(
    model: str,
    pretrained: str,
    device: str,
    cache_dir: Path,
    hub_url: str | None = None,
    *,
    mapped: bool = False,
) -> LoadedClip:
    """Build the model on its device in eval mode (blocking: call it in a thread). `mapped`
    (CPU only): the weights stay in the checkpoint file's pages (`assign_mapped_weights`)."""
    import open_clip

    architecture = resolve_architecture(model, cache_dir)
    checkpoint = resolve_weights(architecture, model, pretrained, cache_dir, hub_url)
    target = resolve_device(device)
    try:
        if mapped and target.type == "cpu":
            # .npz/.npy (big_vision) loading sets the weights it names, not strictly all
            strict = Path(checkpoint).suffix not in (".npz", ".npy")
            with _weights_to_come(strict):
                net, _, preprocess = open_clip.create_model_and_transforms(
                    architecture, pretrained=None, device=target
                )
            if not assign_mapped_weights(net, checkpoint):
                open_clip.load_checkpoint(net, checkpoint)
        else:
            net, _, preprocess = open_clip.create_model_and_transforms(
                architecture, pretrained=checkpoint, device=target
            )
    except Exception as exc:  # a checkpoint of another architecture, a torn file...
        raise DetectorError(
            f"VEILLE_CLIP_PRETRAINED={pretrained} could not be loaded into {model}: {exc}"
        ) from exc
    net.eval()
    size = net.visual.image_size
    image_size = int(size[0] if isinstance(size, tuple | list) else size)
    scale = float(net.logit_scale.exp().item()) if hasattr(net, "logit_scale") else 100.0
    mean, std = normalisation(preprocess)
    return LoadedClip(
        net, preprocess, open_clip.get_tokenizer(architecture), target, image_size, scale, mean, std
    )
