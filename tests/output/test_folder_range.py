"""The 8-bit folder scale's range: clipped mask pixels, level step, file names."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from thermosynth.errors import RecipeError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.output.folder import EightBitScale
from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe

FAST = ("layout.resolution_mm=5.0", "physics.dt_s=30.0")
SPLIT = ("split.train_normal=1", "split.test_normal=1", "split.test_anomalous=3")


def frame_of(raw: np.ndarray) -> Frame:
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01)
    valid = np.ones(raw.shape, bool)
    return Frame(raw, encoding.decode(raw), "C", valid, encoding, 0.01, "x")


def test_scale_counts_clipped_mask_px():
    scale = EightBitScale.from_frame(frame_of(np.array([[1000, 2000]], np.uint16)))
    top = scale.raw_offset + 255 * scale.raw_per_level
    raw = np.array([[900, 1500, top, top + scale.raw_per_level]])
    mask = np.array([[True, True, True, True]])

    assert scale.clipped_px(raw, mask) == 2
    assert scale.clipped_px(raw, ~mask) == 0
    assert scale.clipped_px(raw, np.array([[False, True, True, True]])) == 1


def test_scale_headroom_widens_range():
    frame = frame_of(np.array([[1000, 2000]], np.uint16))
    default = EightBitScale.from_frame(frame)
    wide = EightBitScale.from_frame(frame, headroom=3.0)

    assert default.raw_per_level == pytest.approx(2 * 1000 / 255)
    assert wide.raw_per_level == pytest.approx(4 * 1000 / 255)
    assert wide.raw_offset == default.raw_offset


def run_demo(tmp_path, *extra: str):
    out = tmp_path / "out"
    overrides = (*FAST, *SPLIT, f"output.dir={out}", *extra)
    generate(load_demo_recipe(overrides=overrides), progress=False)
    with h5py.File(out / "dataset.h5", "r") as h5:
        labels = h5["labels"][:]
        metadata = [json.loads(text) for text in h5["metadata"][:]]
    return [meta for meta, label in zip(metadata, labels, strict=True) if label]


def test_clipped_mask_px_warned_and_recorded(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        anomalous = run_demo(tmp_path, "output.folder_headroom=0.01")

    counts = [meta["folder_clipped_px"] for meta in anomalous]
    warnings = [r.message for r in caplog.records if "folder_clipped_px" in r.message]
    assert sum(counts) > 0
    assert len(warnings) == 1
    assert f"have {sum(counts)} mask pixels clipped" in warnings[0]
    assert "output.folder_headroom" in warnings[0]


def test_wide_headroom_clips_nothing(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="thermosynth"):
        anomalous = run_demo(tmp_path, "output.folder_headroom=50")

    messages = [record.message for record in caplog.records]
    assert [meta["folder_clipped_px"] for meta in anomalous] == [0, 0, 0]
    assert not [m for m in messages if "folder_clipped_px" in m]
    assert [m for m in messages if "K per 8-bit level" in m]


def test_headroom_must_be_positive():
    with pytest.raises(RecipeError, match="folder_headroom"):
        load_demo_recipe(overrides=["output.folder_headroom=0"])


def test_sample_count_fits_folder_stems():
    # Indices 0 to 999,999 have six digits; index 1,000,000 would have seven.
    split = ["split.test_normal=1", "split.test_anomalous=1"]
    fits = [*split, "split.train_normal=999998"]
    assert load_demo_recipe(overrides=fits).recipe.split.train_normal == 999_998
    too_many = [*split, "split.train_normal=999999"]
    with pytest.raises(RecipeError, match="split.train_normal .* 1,000,001"):
        load_demo_recipe(overrides=too_many)

    hdf5_only = [*too_many, "output.folder=false"]
    assert load_demo_recipe(overrides=hdf5_only).recipe.output.folder is False
