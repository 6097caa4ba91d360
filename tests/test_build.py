"""Frame sources built from the recipe's frames section, calibration included."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from thermosynth.build import build_source, warn_unused_level_scale
from thermosynth.errors import FrameError, RecipeError
from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe
from thermosynth.samples import Generator

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


def selected_folder(folder: Path, n_files: int, listed: list[int]) -> str:
    """Write n_files 4 x 4 PNGs and a metadata file whose normal records are
    ``listed``; return the recipe's frames keys."""
    frames = folder / "frames"
    frames.mkdir()
    for i in range(n_files):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((4, 4), 100, np.uint8))
    records = [{"file": f"frames/{i:03d}.png", "label": "normal"} for i in listed]
    meta = folder / "meta.json"
    meta.write_text(json.dumps(records))
    select = f"{{metadata: {meta}, path_key: file, where: {{label: normal}}}}"
    return f"{{kind: images, path: {frames}, unit: level, select: {select}}}"


def test_select_logs_kept_count(tmp_path, caplog):
    loaded = load(selected_folder(tmp_path, 5, [1, 3]))

    with caplog.at_level(logging.INFO, logger="thermosynth.build"):
        source = build_source(loaded.recipe.frames, seed=0)

    assert len(source) == 2
    assert source.n_listed == 5
    assert "frames.select kept 2 of the 5 files" in caplog.text
    assert "meta.json lists with {'label': 'normal'}" in caplog.text
    assert "--set frames.select=null" in caplog.text


def test_select_null_reads_every_file(tmp_path):
    frames = selected_folder(tmp_path, 5, [1, 3])
    loaded = load(frames, "frames.select=null")

    assert len(build_source(loaded.recipe.frames, seed=0)) == 5


def test_select_matching_no_file_names_fix(tmp_path):
    loaded = load(selected_folder(tmp_path, 3, [7, 8]))

    with pytest.raises(
        FrameError, match=r"none of the 3 files .*--set frames\.select=null"
    ):
        build_source(loaded.recipe.frames, seed=0)


def test_mvtec_root_as_frames_path_names_train_good(tmp_path):
    for folder in ("train/good", "test/good", "test/hot"):
        (tmp_path / folder).mkdir(parents=True)
    loaded = load(f"{{kind: images, path: {tmp_path}, unit: level}}")

    with pytest.raises(RecipeError) as raised:
        build_source(loaded.recipe.frames, seed=0)

    message = str(raised.value)
    assert "which contains the folders test/, train/ of an anomalib" in message
    assert message.endswith(f"normal frames, {tmp_path / 'train' / 'good'}")


@pytest.mark.parametrize(
    ("overrides", "n_warnings"),
    [
        (("camera.levels_per_kelvin=3",), 1),
        ((), 0),
    ],
)
def test_level_scale_on_calibrated_frames_warns(overrides, n_warnings, caplog):
    loaded = load_demo_recipe(overrides=overrides)

    with caplog.at_level(logging.WARNING, logger="thermosynth.build"):
        Generator(loaded)
    warnings = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]

    assert len(warnings) == n_warnings
    if warnings:
        assert "camera.levels_per_kelvin = 3 is ignored" in warnings[0]
        assert "synthetic frames are in C" in warnings[0]


@pytest.mark.parametrize(
    ("calibration", "n_warnings"),
    [
        (("frames.unit=C", "frames.scale_per_level=0.1"), 1),
        ((), 0),
    ],
)
def test_level_scale_on_image_frames(calibration, n_warnings, tmp_path, caplog):
    frames = selected_folder(tmp_path, 3, [0])
    scale = "camera.levels_per_kelvin=3"
    loaded = load(frames, "frames.select=null", scale, *calibration)

    with caplog.at_level(logging.WARNING, logger="thermosynth.build"):
        warn_unused_level_scale(loaded.recipe.camera, loaded.recipe.frames, "r.yaml")
    warnings = [r.getMessage() for r in caplog.records]

    assert len(warnings) == n_warnings
    if warnings:
        assert warnings[0].startswith("r.yaml: camera.levels_per_kelvin = 3 is")
        assert "because frames.unit is C" in warnings[0]
