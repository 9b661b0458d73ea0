"""CLIP prompt sets: TOML data files read once, embedded once, cached on disk.

A prompt directory holds one file per category plus `negatives.toml` (shared hard negatives)::

    # sexual.toml
    category = "sexual"              # one of detectors.base IMAGE_CATEGORIES
    templates = ["a photo of {}.", "a blurry photo of {}."]
    shared_negatives = true          # default: also compare against negatives.toml
    offset = 0.0                     # optional: margin that maps to a score of 0.5

    [[concepts]]                     # what the category looks like (one or more)
    label = "nudity"                 # shown to moderators in reasons
    texts = ["a nude person", "a naked body"]

    [[negatives]]                    # optional hard negatives for this category only
    label = "a clothed portrait"
    texts = ["a portrait of a fully clothed person"]

    # negatives.toml: `templates` and `[[negatives]]` only.

Each concept's embedding is the mean of the L2-normalised embeddings of every template × text,
L2-normalised again (as open_clip's build_zero_shot_classifier does).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.base import IMAGE_CATEGORIES, KNOWN_CONTENT, DetectorError

log = logging.getLogger(__name__)

BUNDLED_PROMPTS = Path(__file__).resolve().parent / "prompts"
NEGATIVES_FILE = "negatives.toml"
TEXT_CACHE_VERSION = "1"  # bump when the embedding recipe below changes
CLIP_CATEGORIES = tuple(c for c in IMAGE_CATEGORIES if c != KNOWN_CONTENT)


@dataclass(frozen=True)
class Concept:
    label: str
    prompts: tuple[str, ...]  # every template filled with every text


@dataclass(frozen=True)
class CategoryPrompts:
    category: str
    concepts: tuple[Concept, ...]
    negatives: tuple[Concept, ...]  # this file's own plus the shared ones when asked for
    offset: float


@dataclass(frozen=True)
class PromptSet:
    folder: Path
    categories: tuple[CategoryPrompts, ...]
    digest: str  # sha256 of every file name and its bytes: keys caches and the version

    def unique_concepts(self) -> list[Concept]:
        """Every concept once, in a stable order: the rows of the text-embedding matrix."""
        seen: dict[tuple[str, tuple[str, ...]], Concept] = {}
        for category in self.categories:
            for concept in (*category.concepts, *category.negatives):
                seen.setdefault((concept.label, concept.prompts), concept)
        return list(seen.values())


def _fail(path: Path, message: str) -> DetectorError:
    return DetectorError(f"CLIP prompt file {path}: {message} (set VEILLE_CLIP_PROMPTS to fix)")


def _concepts(path: Path, data: dict[str, object], key: str, templates: list[str]) -> list[Concept]:
    raw = data.get(key, [])
    if not isinstance(raw, list):
        raise _fail(path, f"`{key}` must be an array of tables ([[{key}]])")
    concepts = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise _fail(path, f"each [[{key}]] entry must be a table")
        label, texts = entry.get("label"), entry.get("texts")
        if not isinstance(label, str) or not label.strip():
            raise _fail(path, f"a [[{key}]] entry has no `label`")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise _fail(path, f"[[{key}]] {label!r} needs a non-empty `texts` list of strings")
        prompts = tuple(template.format(text) for text in texts for template in templates)
        concepts.append(Concept(label.strip(), prompts))
    return concepts


def _templates(path: Path, data: dict[str, object]) -> list[str]:
    templates = data.get("templates", ["{}"])
    if (
        not isinstance(templates, list)
        or not templates
        or not all(isinstance(t, str) and t.count("{}") == 1 for t in templates)
    ):
        raise _fail(path, "`templates` must be a non-empty list of strings, each with one {}")
    return templates


def _read(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(path, f"cannot be read: {exc}") from exc


def load_prompt_set(folder: Path | None = None) -> PromptSet:
    """Read and validate every *.toml in `folder` (default: the bundled prompts).
    Raises DetectorError saying which file is wrong and why."""
    folder = (folder or BUNDLED_PROMPTS).expanduser()
    if not folder.is_dir():
        raise DetectorError(
            f"CLIP prompt directory {folder} does not exist: set VEILLE_CLIP_PROMPTS to a folder "
            "of prompt TOML files, or unset it to use the bundled prompts"
        )
    files = sorted(folder.glob("*.toml"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")

    shared: list[Concept] = []
    shared_path = folder / NEGATIVES_FILE
    if shared_path.exists():
        data = _read(shared_path)
        shared = _concepts(shared_path, data, "negatives", _templates(shared_path, data))

    categories: list[CategoryPrompts] = []
    for path in files:
        if path.name == NEGATIVES_FILE:
            continue
        data = _read(path)
        category = data.get("category")
        if category not in CLIP_CATEGORIES:
            raise _fail(path, f"`category` must be one of {', '.join(CLIP_CATEGORIES)}")
        if any(c.category == category for c in categories):
            raise _fail(path, f"category {category!r} is defined twice")
        templates = _templates(path, data)
        concepts = _concepts(path, data, "concepts", templates)
        negatives = _concepts(path, data, "negatives", templates)
        if data.get("shared_negatives", True):
            negatives += shared
        if not concepts or not negatives:
            raise _fail(path, "a category needs at least one [[concepts]] and one negative")
        offset = data.get("offset", 0.0)
        if not isinstance(offset, int | float):
            raise _fail(path, "`offset` must be a number")
        categories.append(
            CategoryPrompts(str(category), tuple(concepts), tuple(negatives), float(offset))
        )
    if not categories:
        raise DetectorError(f"CLIP prompt directory {folder} holds no category file (*.toml)")
    return PromptSet(folder, tuple(categories), digest.hexdigest())


def text_cache_path(cache_dir: Path, model_id: str, prompt_digest: str) -> Path:
    """Where the embeddings of one prompt set under one model and weights are cached."""
    key = hashlib.sha256(f"{model_id}|{prompt_digest}|{TEXT_CACHE_VERSION}".encode()).hexdigest()
    return cache_dir / "clip_text" / f"{key[:24]}.npz"


def concept_embeddings(
    prompts: PromptSet,
    encode: Callable[[list[str]], np.ndarray],
    cache_file: Path,
) -> tuple[np.ndarray, bool]:
    """One L2-normalised row per `prompts.unique_concepts()`, from `cache_file` when it matches,
    else computed with `encode` (texts → L2-normalised rows) and written there.
    Returns (matrix, came_from_cache)."""
    concepts = prompts.unique_concepts()
    labels = np.array([c.label for c in concepts])
    if cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as stored:
                if np.array_equal(stored["labels"], labels):
                    return stored["embeddings"].astype(np.float32), True
        except (OSError, ValueError, KeyError) as exc:  # a torn or foreign file: recompute
            log.warning("ignoring unreadable CLIP text cache %s: %s", cache_file, exc)
    rows = []
    for concept in concepts:
        mean = encode(list(concept.prompts)).mean(axis=0)
        rows.append(mean / (np.linalg.norm(mean) + 1e-12))
    matrix = np.stack(rows).astype(np.float32)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, embeddings=matrix, labels=labels)
    os.replace(tmp, cache_file)  # atomic: a concurrent reader never sees half a file
    return matrix, False
