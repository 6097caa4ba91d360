"""Tests for thermosynth.frames.continuity: jumps between consecutive frames."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from thermosynth.build import build_source
from thermosynth.frames.continuity import find_jump
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.recipe import load_recipe
from thermosynth.sequences import SequenceGenerator

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _frame(values: np.ndarray, name: str, valid=None, noise_sigma=0.05) -> Frame:
    return Frame(
        raw=values.astype(np.float32),
        values=values,
        unit="C",
        valid=np.ones(values.shape, bool) if valid is None else valid,
        encoding=LinearEncoding(np.float32),
        noise_sigma=noise_sigma,
        source=name,
    )


def _scene(seed: int) -> np.ndarray:
    rows, cols = np.mgrid[0:40, 0:50].astype(float)
    rng = np.random.default_rng(seed)
    return 25.0 + 0.1 * cols + rng.normal(0.0, 0.05, rows.shape)


def test_slow_video_has_no_jump():
    frames = [_frame(_scene(i) + 0.02 * i, f"f{i}") for i in range(5)]
    assert find_jump(frames) is None


def test_uniform_frames_with_tiny_change_have_no_jump():
    flat = np.full((20, 20), 25.0)
    frames = [_frame(flat, "a", noise_sigma=0.0), _frame(flat + 0.02, "b")]
    assert find_jump(frames) is None


def test_changed_valid_region_is_a_jump():
    valid = np.ones((40, 50), bool)
    valid[:, :20] = False
    frames = [_frame(_scene(0), "cam1"), _frame(_scene(1), "cam2", valid=valid)]

    jump = find_jump(frames)
    assert jump is not None
    assert jump.startswith("cam1 -> cam2: ")
    assert "the valid region changes in 40% of its pixels" in jump


def test_offset_scene_is_a_jump():
    scene = _scene(0)  # standard deviation about 1.4 C
    frames = [_frame(scene, "a"), _frame(scene, "b"), _frame(scene + 5.0, "c")]

    jump = find_jump(frames)
    assert jump is not None
    assert jump.startswith("b -> c: the mean absolute change 5 C exceeds")


def test_heater_recording_has_no_jump(data_dir):
    # 977 frames of one camera, one a second, while a heater warms the cell.
    path = data_dir / "pouch-cell-heater-ir" / "Exp_E_T11x11_celsius.npy"
    loaded = load_recipe(
        RECIPES / "radiometric-cabinet.yaml", overrides=[f"frames.path={path}"]
    )
    source = build_source(loaded.recipe.frames, seed=0)
    frames = [source.read(i) for i in range(len(source))]

    assert len(frames) == 977
    assert find_jump(frames) is None


def test_mixed_camera_folder_warns_once(data_dir, caplog):
    # The battery-station folder alternates two cameras with their own masks.
    overrides = [
        "sequence.base=video",
        "split.train_normal=2",
        "split.test_normal=0",
        "split.test_anomalous=0",
    ]
    loaded = load_recipe(RECIPES / "module-runaway-sequence.yaml", overrides=overrides)
    generator = SequenceGenerator(loaded)
    with caplog.at_level(logging.WARNING, logger="thermosynth.sequences"):
        for entry in generator.entries:
            generator.make(entry)

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "consecutive frames jump" in warnings[0]
    assert "CAM1" in warnings[0]
    assert "CAM2" in warnings[0]
    assert "the valid region changes" in warnings[0]
