"""Tests of thermosynth.validation.normal_model: per-camera normal models."""

from __future__ import annotations

import re

import numpy as np
import pytest
from frame_sets import frame_set
from real_frames import BATTERY_FRAMES
from recorded_cameras import write_recorded_dataset

from thermosynth.validation.closeness import contrast_against_normal
from thermosynth.validation.io import FrameSet, load_frame_set
from thermosynth.validation.normal_model import (
    NormalModels,
    camera_counts,
    camera_note,
    with_cameras_from_names,
    with_cameras_from_pattern,
)

SHAPE = (16, 12)
HOT = (slice(6, 9), slice(4, 7))


def _two_camera_reference() -> FrameSet:
    """Return 3 frames per camera whose HOT contrasts are -1, 0, 1 and 29, 30, 31."""
    frames = np.full((6, *SHAPE), 10.0)
    for i, contrast in enumerate((-1.0, 0.0, 1.0, 29.0, 30.0, 31.0)):
        frames[i][HOT] += contrast
    return frame_set(frames, cameras=("CAM1",) * 3 + ("CAM2",) * 3)


def test_per_camera_contrast_exact():
    models = NormalModels.fit(_two_camera_reference(), noise_floor=0.5)
    mask = np.zeros(SHAPE, bool)
    mask[HOT] = True

    def against(camera):
        frames = models.for_camera(camera).frames
        return contrast_against_normal(5.0, mask, frames, ring_px=1)

    # Per camera: contrasts -1, 0, 1 (or 29, 30, 31) have deviation sqrt(2 / 3).
    assert against("CAM1") == pytest.approx(5.0 / np.sqrt(2.0 / 3.0))
    assert against("CAM2") == pytest.approx((5.0 - 30.0) / np.sqrt(2.0 / 3.0))
    # Pooled: mean 15 and variance 2 / 3 + 15^2 over both views.
    pooled = (5.0 - 15.0) / np.sqrt(2.0 / 3.0 + 225.0)
    assert against(None) == pytest.approx(pooled)
    assert against("CAM3") == pytest.approx(pooled)
    assert sorted(models.by_camera) == ["CAM1", "CAM2"]


def test_per_camera_z_score_exact():
    models = NormalModels.fit(_two_camera_reference(), noise_floor=0.5)
    frame = np.full(SHAPE, 10.0)
    frame[HOT] += 5.0

    z = models.for_camera("CAM1").z_score(frame)

    # Mean 0 and deviation sqrt(2 / 3) in HOT, and the floor 0.5 elsewhere.
    np.testing.assert_allclose(z[HOT], 5.0 / np.sqrt(2.0 / 3.0))
    assert np.count_nonzero(z) == 9
    assert models.pooled.z_score(frame)[HOT].max() < 0.0


def test_camera_with_one_frame_uses_pooled():
    reference = _two_camera_reference().subset(np.array([0, 1, 2, 3]))

    models = NormalModels.fit(reference, noise_floor=0.5)

    assert list(models.by_camera) == ["CAM1"]
    assert models.for_camera("CAM2") is models.pooled


def test_cameras_from_names_use_recorded_keys():
    values = np.zeros((3, *SHAPE))
    recorded = frame_set(values, cameras=("CAM1", "CAM2", None))
    names = ["a_CAM2_thermal.png", "b_CAM1_thermal.png", "c_thermal.png"]
    folder = frame_set(values, names=names)

    named = with_cameras_from_names({"pseudo": recorded, "normal": folder})

    assert named["normal"].cameras == ("CAM2", "CAM1", None)
    assert named["pseudo"] is recorded
    assert camera_counts(named["normal"]) == "CAM1: 1, CAM2: 1, unknown: 1"
    assert camera_counts(folder) == "unknown"
    assert with_cameras_from_names({"normal": folder})["normal"].cameras is None


def test_camera_note_only_where_pooled():
    reference = _two_camera_reference()
    models = NormalModels.fit(reference, noise_floor=0.5)
    known = {"normal_reference": reference, "pseudo": reference}
    unknown = frame_set(reference.values)
    one_camera = {
        "normal_reference": frame_set(reference.values, cameras=("CAM1",) * 6),
        "pseudo": unknown,
    }

    note = camera_note({**known, "real": unknown}, models)

    assert camera_note(known, models) is None
    assert camera_note(one_camera, models) is None
    assert note is not None
    assert "contain frames from 2 cameras (CAM1, CAM2;" in note
    assert "pseudo CAM1: 3, CAM2: 3; real unknown)" in note
    assert "but 6 real frames have no recorded camera" in note


def test_camera_pattern_reads_recorded_sources(data_dir, tmp_path):
    sources = [
        str(path)
        for camera in ("CAM1", "CAM2")
        for path in sorted((data_dir / BATTERY_FRAMES).glob(f"*_{camera}_thermal.png"))[
            :2
        ]
    ]
    dataset = tmp_path / "dataset.h5"
    one_mask = "frames:\n  kind: images\n  valid_mask: mask.png\n"
    frames = np.zeros((4, 4, 5), np.float32)
    write_recorded_dataset(dataset, frames, sources, np.ones(4, int), one_mask)
    recorded = load_frame_set(dataset)
    folder = frame_set(frames, cameras=("CAM2",) * 4)
    pattern = re.compile(r"_(CAM[0-9])_thermal")

    named = with_cameras_from_pattern({"pseudo": recorded, "normal": folder}, pattern)

    assert recorded.cameras is None
    assert recorded.names[0] == f"{dataset}[0]"
    assert named["pseudo"].cameras == ("CAM1", "CAM1", "CAM2", "CAM2")
    assert named["normal"] is folder
