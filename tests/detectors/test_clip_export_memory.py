"""The first prepare's memory savings change nothing of what it produces: weights read from the
checkpoint's mapped pages equal open_clip's own load, dropping those pages loses nothing, the
tower exported with its weights beside it computes exactly what the inline export computes, and
small calibration batches give the ranges large ones give."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors.clip_export import export_image_tower, release_mapped_pages, torch_embeddings
from detectors.clip_model import load_clip
from detectors.clip_onnx import (
    OnnxImageEncoder,
    calibrate_ranges,
    calibration_images,
    external_data_path,
    remove_model,
)
from tests.tiny_clip import CHECKPOINT, CONFIG


def tiny(tmp_path: Path, *, mapped: bool, checkpoint: Path = CHECKPOINT) -> object:
    return load_clip(str(CONFIG), str(checkpoint), "cpu", tmp_path / "cache", mapped=mapped)


def fp32_checkpoint(tmp_path: Path) -> Path:
    """The tiny checkpoint is fp16, so its weights are cast (copied) on load: an fp32 copy of it
    stays in its mapped pages, as a hub checkpoint does."""
    import torch

    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    path = tmp_path / "tiny-fp32.pt"
    torch.save({name: tensor.float() for name, tensor in state.items()}, path)
    return path


def pixels(clip: object, count: int = 6, seed: int = 3) -> np.ndarray:
    from detectors.clip import ClipDetector

    return ClipDetector._pixels(clip, calibration_images(count, seed=seed))  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["fp16 file", "fp32 file"])
def test_mapped_weights_are_open_clips_own(tmp_path: Path, precision: str) -> None:
    checkpoint = CHECKPOINT if precision == "fp16 file" else fp32_checkpoint(tmp_path)
    copied = tiny(tmp_path, mapped=False, checkpoint=checkpoint)
    mapped = tiny(tmp_path, mapped=True, checkpoint=checkpoint)
    theirs = copied.model.state_dict()  # type: ignore[attr-defined]
    ours = mapped.model.state_dict()  # type: ignore[attr-defined]
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and bool((ours[name] == tensor).all()), name
    assert mapped.logit_scale == copied.logit_scale  # type: ignore[attr-defined]
    assert (mapped.mean, mapped.std) == (copied.mean, copied.std)  # type: ignore[attr-defined]


def test_the_random_init_is_skipped_only_while_and_where_the_model_is_built(
    tmp_path: Path,
) -> None:
    """While the mapped load builds the model, torch.nn.init's initialisers leave this thread's
    tensors untouched and initialise another thread's; they are back afterwards, after an
    error too, and the buffers no checkpoint holds (the text tower's attention mask) are built
    as usual."""
    import threading

    import torch

    from detectors.clip_model import _weights_to_come

    initialisers = {name: getattr(torch.nn.init, name) for name in ("normal_", "kaiming_uniform_")}
    elsewhere: list[float] = []
    with _weights_to_come(strict=True):
        here = torch.nn.init.normal_(torch.zeros(1000))
        worker = threading.Thread(
            target=lambda: elsewhere.append(float(torch.nn.init.normal_(torch.zeros(1000)).std()))
        )
        worker.start()
        worker.join()
    assert float(here.abs().max()) == 0.0  # skipped in the building thread
    assert 0.9 < elsewhere[0] < 1.1  # initialised in another
    with pytest.raises(RuntimeError), _weights_to_come(strict=True):
        raise RuntimeError("a torn checkpoint")
    assert {name: getattr(torch.nn.init, name) for name in initialisers} == initialisers
    with _weights_to_come(strict=False):  # a big_vision file: the random init stays
        assert float(torch.nn.init.normal_(torch.zeros(1000)).std()) > 0.9

    copied, mapped = tiny(tmp_path, mapped=False), tiny(tmp_path, mapped=True)
    theirs = dict(copied.model.named_buffers())  # type: ignore[attr-defined]
    ours = dict(mapped.model.named_buffers())  # type: ignore[attr-defined]
    assert "attn_mask" in ours and ours.keys() == theirs.keys()
    for name, buffer in theirs.items():
        assert torch.equal(ours[name], buffer), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_dropping_the_mapped_pages_loses_nothing(tmp_path: Path) -> None:
    checkpoint = fp32_checkpoint(tmp_path)
    clip = tiny(tmp_path, mapped=True, checkpoint=checkpoint)
    sample = pixels(clip)
    before = torch_embeddings(clip.model.visual, sample)  # type: ignore[attr-defined]
    assert release_mapped_pages(str(checkpoint)) > 0  # the weights are the file's pages
    after = torch_embeddings(clip.model.visual, sample)  # type: ignore[attr-defined]
    assert np.array_equal(before, after)
    assert release_mapped_pages(str(tmp_path / "not-mapped.pt")) == 0


def test_the_tower_with_its_weights_beside_it_computes_what_the_inline_export_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from detectors import clip_export

    clip = tiny(tmp_path, mapped=True)
    sample = pixels(clip, count=5)
    beside = tmp_path / "beside.onnx"
    export_image_tower(clip.model.visual, clip.image_size, beside)  # type: ignore[attr-defined]
    assert external_data_path(beside).stat().st_size > beside.stat().st_size
    inline = tmp_path / "inline.onnx"
    with monkeypatch.context() as as_before:  # the exporter left to write its weights itself
        as_before.setattr(
            clip_export, "graft_external_weights", lambda *args: pytest.fail("nothing to graft")
        )
        as_before.setattr(clip_export, "weights_kept_out", _nothing_kept_out)
        export_image_tower(clip.model.visual, clip.image_size, inline)  # type: ignore[attr-defined]
    assert not external_data_path(inline).exists()

    ours, theirs = onnx.load(str(beside)), onnx.load(str(inline))
    assert [n.op_type for n in ours.graph.node] == [n.op_type for n in theirs.graph.node]
    assert [i.name for i in ours.graph.input] == [i.name for i in theirs.graph.input] == ["pixels"]
    ours_weights = {i.name: onnx.numpy_helper.to_array(i) for i in ours.graph.initializer}
    theirs_weights = {i.name: onnx.numpy_helper.to_array(i) for i in theirs.graph.initializer}
    assert list(ours_weights) == list(theirs_weights)
    assert all(np.array_equal(ours_weights[k], v) for k, v in theirs_weights.items())
    assert np.array_equal(
        OnnxImageEncoder(beside, 1).encode(sample), OnnxImageEncoder(inline, 1).encode(sample)
    )
    remove_model(beside)
    assert not beside.exists() and not external_data_path(beside).exists()


def _nothing_kept_out() -> object:
    import contextlib

    return contextlib.nullcontext({})


def test_small_calibration_batches_give_the_ranges_of_large_ones(tmp_path: Path) -> None:
    clip = tiny(tmp_path, mapped=True)
    tower = tmp_path / "tower.onnx"
    export_image_tower(clip.model.visual, clip.image_size, tower)  # type: ignore[attr-defined]
    calibration = pixels(clip, count=16, seed=0)
    figures = []
    for batch in (2, 8):
        ranges = tmp_path / f"ranges-{batch}.json"
        calibrate_ranges(tower, calibration, ranges, batch=batch)
        figures.append(json.loads(ranges.read_text())["data"])
    assert figures[0] == figures[1] and figures[0]
