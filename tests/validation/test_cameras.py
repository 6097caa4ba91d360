"""Tests of thermosynth.validation.cameras: the camera of each recorded sample."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from real_frames import BATTERY_FRAMES
from recorded_cameras import TWO_CAMERAS, write_recorded_dataset

from thermosynth.errors import FrameError
from thermosynth.validation.cameras import (
    camera_in_name,
    cameras_from_pattern,
    compile_camera_pattern,
    recipe_camera_keys,
    recorded_cameras,
)
from thermosynth.validation.io import load_frame_set


@pytest.fixture(scope="module")
def battery_names(data_dir):
    """Return the file names of 3 CAM1 and 3 CAM2 battery frames."""
    folder = data_dir / BATTERY_FRAMES
    cam1 = sorted(folder.glob("*CAM1_thermal.png"))[:3]
    cam2 = sorted(folder.glob("*CAM2_thermal.png"))[:3]
    return [str(path) for path in cam1 + cam2]


@pytest.mark.parametrize(
    ("name", "camera"),
    [
        ("raw/DS1_0003_CAM2_thermal.png", "CAM2"),
        ("stack_CAM1.npy[4]", "CAM1"),
        ("CAM1/frame_0001.png", None),
        ("DS1_0003_thermal.png", None),
        ("DS1_CAM1_CAM2_thermal.png", None),
    ],
)
def test_camera_in_name(name, camera):
    assert camera_in_name(name, ("CAM1", "CAM2")) == camera


def test_recipe_camera_keys():
    one_mask = "frames:\n  valid_mask: mask.png\n"
    ignore_only = "frames:\n  ignore_mask: {left: a.png, right: b.png}\n"

    assert recipe_camera_keys(TWO_CAMERAS) == ("CAM1", "CAM2")
    assert recipe_camera_keys(one_mask) == ()
    assert recipe_camera_keys(ignore_only) == ("left", "right")
    assert recipe_camera_keys("frames: [unclosed") == ()


def test_hdf5_samples_record_cameras(battery_names, tmp_path):
    path = tmp_path / "dataset.h5"
    frames = np.zeros((6, 4, 5), np.float32)
    labels = np.array([0, 1, 0, 1, 0, 1])
    write_recorded_dataset(path, frames, battery_names, labels, TWO_CAMERAS)

    normal = load_frame_set(path, label="normal")
    anomalous = load_frame_set(path, label="anomalous")

    assert normal.cameras == ("CAM1", "CAM1", "CAM2")
    assert anomalous.cameras == ("CAM1", "CAM2", "CAM2")
    assert normal.subset(np.array([2, 0])).cameras == ("CAM2", "CAM1")
    assert recorded_cameras(path, np.array([5, 0, 5])) == ("CAM2", "CAM1", "CAM2")


def test_folder_tree_beside_dataset_records_cameras(battery_names, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    frames = np.zeros((6, 4, 5), np.uint8)
    labels = np.array([0, 1, 0, 1, 0, 1])
    write_recorded_dataset(
        output / "dataset.h5", frames, battery_names, labels, TWO_CAMERAS
    )
    for row, label in enumerate(labels):
        folder = output / "mvtec" / ("test/hot" if label else "train/good")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{row:06d}.png"), frames[row])

    normal = load_frame_set(output / "mvtec", label="normal")
    anomalous = load_frame_set(output / "mvtec", label="anomalous")

    # The file stems are the dataset's rows 0, 2, 4 and 1, 3, 5.
    assert normal.cameras == ("CAM1", "CAM1", "CAM2")
    assert anomalous.cameras == ("CAM1", "CAM2", "CAM2")


def test_sources_without_camera_mapping_record_none(battery_names, data_dir, tmp_path):
    path = tmp_path / "dataset.h5"
    one_mask = "frames:\n  kind: images\n  valid_mask: mask.png\n"
    frames = np.zeros((6, 4, 5), np.float32)
    write_recorded_dataset(path, frames, battery_names, np.zeros(6, int), one_mask)
    folder = load_frame_set(data_dir / BATTERY_FRAMES, pattern="*_0008_*")

    assert load_frame_set(path).cameras is None
    # A plain folder records no cameras, although its file names name them.
    assert len(folder) >= 2
    assert folder.cameras is None


def test_camera_pattern_first_group_names_camera(battery_names):
    pattern = compile_camera_pattern(r"_(CAM[0-9])_thermal")
    names = [*battery_names, "stacks/left_CAM1_thermal.npy[7]"]

    cameras = cameras_from_pattern(names, pattern, set_name="normal")

    assert cameras == ("CAM1",) * 3 + ("CAM2",) * 3 + ("CAM1",)


def test_camera_pattern_searches_file_name_only(battery_names):
    pattern = compile_camera_pattern(r"(normal)_masked")

    with pytest.raises(FrameError, match="finds no camera in its file name 'DS1_"):
        cameras_from_pattern(battery_names, pattern, set_name="normal")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("_(CAM[0-9]_", r"'_\(CAM\[0-9\]_' is not a valid regular expression \("),
        ("_CAM[0-9]_", r"'_CAM\[0-9\]_' has no capture group, so it names no"),
    ],
)
def test_bad_camera_pattern_rejected(pattern, problem):
    with pytest.raises(FrameError, match=problem) as error:
        compile_camera_pattern(pattern)

    assert "--camera-pattern (camera_pattern=... in Python)" in str(error.value)


def test_frame_without_camera_rejected():
    pattern = compile_camera_pattern(r"^(left|right)?-")
    names = ["frames/left-00.png", "frames/-01.png"]

    with pytest.raises(FrameError) as error:
        cameras_from_pattern(names, pattern, set_name="pseudo")

    assert str(error.value) == (
        "pseudo frame frames/-01.png: camera pattern '^(left|right)?-' finds no "
        "camera in its file name '-01.png'; give --camera-pattern "
        "(camera_pattern=... in Python) a pattern whose first group matches in "
        "every frame's file name, or leave out the frames of other cameras"
    )
