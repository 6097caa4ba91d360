"""Frame sources built from the recipe's frames section, calibration included."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from thermosynth.build import build_source
from thermosynth.errors import FrameError, RecipeError
from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe

SCALE = 0.01  # [K per level]
OFFSET = -40.0  # [C]
# Known uint16 levels: 0 C, 25.5 C, 60 C and the largest level, 615.35 C.
LEVELS = np.array([[4000, 6550], [10000, 65535]], dtype=np.uint16)


def load(frames: str, *extra: str):
    return load_demo_recipe(overrides=(f"frames={frames}", *extra))


def level_files(folder: Path, kind: str) -> str:
    """Write LEVELS and LEVELS upside down as a stack; return the recipe keys."""
    stack = np.stack([LEVELS, LEVELS[::-1]])
    if kind == "arrays":
        np.save(folder / "levels.npy", stack)
        return f"path: {folder / 'levels.npy'}"

    with h5py.File(folder / "levels.h5", "w") as handle:
        handle["camera/levels"] = stack
    return f"path: {folder / 'levels.h5'}, dataset: camera/levels"


@pytest.mark.parametrize("kind", ["arrays", "hdf5"])
def test_integer_levels_calibrated(kind, tmp_path):
    where = level_files(tmp_path, kind)
    calibration = f"scale_per_level: {SCALE}, offset: {OFFSET}"
    loaded = load(f"{{kind: {kind}, {where}, unit: C, {calibration}}}")

    source = build_source(loaded.recipe.frames, seed=0)
    first, second = source.read(0), source.read(1)

    expected = LEVELS.astype(np.float64) * SCALE + OFFSET
    np.testing.assert_array_equal(first.values, expected)
    np.testing.assert_array_equal(second.values, expected[::-1])
    assert first.values.ravel().tolist() == pytest.approx([0.0, 25.5, 60.0, 615.35])
    assert first.raw.dtype == np.uint16
    assert first.unit == "C"
    assert first.encoding.scale_per_level == SCALE
    assert first.encoding.offset == OFFSET


@pytest.mark.parametrize("kind", ["arrays", "hdf5"])
def test_integer_levels_need_calibration(kind, tmp_path):
    where = level_files(tmp_path, kind)
    loaded = load(f"{{kind: {kind}, {where}, unit: C}}")

    source = build_source(loaded.recipe.frames, seed=0)

    with pytest.raises(FrameError, match="contains uint16 levels, which need"):
        source.read(0)


@pytest.mark.parametrize("kind", ["images", "arrays", "hdf5"])
@pytest.mark.parametrize("key", ["scale_per_level: 0.01", "offset: -40.0"])
def test_calibration_of_levels_rejected(kind, key, tmp_path):
    dataset = ", dataset: d" if kind == "hdf5" else ""
    frames = f"{{kind: {kind}, path: {tmp_path}{dataset}, unit: level, {key}}}"

    with pytest.raises(RecipeError, match="frames.unit must be C or K"):
        load(frames)


def test_float_arrays_read_as_given(tmp_path):
    values = np.array([[21.25, 22.5], [-3.75, 80.0]], dtype=np.float32)
    np.save(tmp_path / "t.npy", values)
    loaded = load(f"{{kind: arrays, path: {tmp_path / 't.npy'}}}")

    frame = build_source(loaded.recipe.frames, seed=0).read(0)

    np.testing.assert_array_equal(frame.values, values.astype(np.float64))
    assert frame.unit == "C"


def test_uint16_hdf5_generates(tmp_path):
    source = build_source(load_demo_recipe().recipe.frames, seed=7)
    stack = np.stack([source.read(i).raw for i in range(4)])
    assert stack.dtype == np.uint16
    with h5py.File(tmp_path / "frames.h5", "w") as handle:
        handle["frames"] = stack
    encoding = source.encoding
    overlays = [list(rect) for rect in source.ignore_rects]
    frames = (
        f"{{kind: hdf5, path: {tmp_path / 'frames.h5'}, dataset: frames, unit: C, "
        f"scale_per_level: {encoding.scale_per_level}, offset: {encoding.offset}, "
        f"ignore_rects: {overlays}}}"
    )
    split = ("split.train_normal=1", "split.test_normal=1", "split.test_anomalous=2")
    loaded = load(frames, *split, f"output.dir={tmp_path / 'out'}")

    summary = generate(loaded, progress=False)

    assert summary.n_samples == 4
    assert summary.n_anomalous == 2
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        assert h5["frames"].dtype == np.uint16
        assert h5["labels"][:].sum() == 2
