"""Tests of closeness reports on frames from two cameras."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from frame_sets import frame_set
from real_frames import BATTERY_FRAMES, grey_frames, write_renamed_frames
from recorded_cameras import TWO_CAMERAS, write_recorded_dataset

from thermosynth.errors import FrameError
from thermosynth.frames.noise import estimate_frame_noise
from thermosynth.validation.closeness import NormalModel, closeness_report
from thermosynth.validation.features import AutoencoderFeatures
from thermosynth.validation.io import FrameSet, load_frame_set

SHAPE = (16, 12)
HOT = (slice(6, 9), slice(4, 7))
# HOT and its 2 px ring, where the second camera's view is 30 K warmer.
BLOCK = (slice(4, 11), slice(2, 9))
CAMERA_WARNING = "the inputs contain frames from 2 cameras"


def _report(normal, pseudo, out_dir: Path, **options):
    return closeness_report(
        normal,
        pseudo,
        out_dir=out_dir,
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
        **options,
    )


def _two_camera_sets(tmp_path: Path) -> tuple[FrameSet, FrameSet]:
    """Return 20 noisy normal frames per camera and 4 noiseless hot ones each.

    The second camera's view is 30 K warmer in BLOCK. Each hot frame is its camera's
    view with HOT 5 K above the rest of BLOCK.
    """
    rng = np.random.default_rng(3)
    view = np.full((2, *SHAPE), 20.0)
    view[1][BLOCK] += 30.0
    cameras = ("CAM1",) * 20 + ("CAM2",) * 20
    normal = np.repeat(view, 20, axis=0) + rng.normal(scale=0.3, size=(40, *SHAPE))
    hot = np.repeat(view, 4, axis=0)
    hot[:, HOT[0], HOT[1]] += 5.0
    hot_cameras = ("CAM1",) * 4 + ("CAM2",) * 4
    return (
        frame_set(normal, tmp_path / "normal", cameras=cameras),
        frame_set(hot, tmp_path / "pseudo", cameras=hot_cameras),
    )


def test_per_camera_model_finds_exact_region(tmp_path, caplog):
    normal, pseudo = _two_camera_sets(tmp_path)

    with caplog.at_level("INFO", logger="thermosynth.validation.closeness"):
        report = _report(normal, pseudo, tmp_path / "per_camera")
    rows = [r for r in report.per_sample if r["set"] == "pseudo"]
    messages = [r.getMessage() for r in caplog.records]

    assert [r["camera"] for r in rows] == ["CAM1"] * 4 + ["CAM2"] * 4
    # Against its own camera's normal frames, HOT is the region found, and
    # its contrast over the flat ring is 5 K exactly.
    assert [r["est_area_px"] for r in rows] == [9.0] * 8
    assert [r["est_contrast"] for r in rows] == [5.0] * 8
    assert all(r["est_contrast_normal_sigma"] > 10.0 for r in rows)
    assert not any(CAMERA_WARNING in m for m in messages)
    assert any("fitted per camera: CAM1: " in m for m in messages)
    assert "| CAM1: 4, CAM2: 4 |" in (report.out_dir / "report.md").read_text()


def test_pooled_model_misses_region(tmp_path):
    normal, pseudo = _two_camera_sets(tmp_path)
    normal = dataclasses.replace(normal, cameras=None)
    pseudo = dataclasses.replace(pseudo, cameras=None)

    report = _report(normal, pseudo, tmp_path / "pooled")
    rows = [r for r in report.per_sample if r["set"] == "pseudo"]

    # Pooled over both views, HOT's deviation is about 15 K, and the first
    # camera's view, 20 K in HOT, is 15 K below the pooled mean there.
    assert all(r["camera"] == "" for r in rows)
    assert not any(r["est_area_px"] == 9.0 for r in rows)


def _battery_inputs(data_dir: Path, tmp_path: Path, cameras: tuple[str, ...]):
    """Write 12 normal battery frames as a .npy stack, and 6 hot ones in HDF5.

    The frames are split evenly over ``cameras``. The HDF5 file records each
    hot frame's source file and the recipe's camera mapping, as a thermosynth
    output does. The stack records neither.
    """
    folder = data_dir / BATTERY_FRAMES
    n = 18 // len(cameras)
    normal, hot, sources = [], [], []
    for camera in cameras:
        pattern = f"*{camera}_thermal.png"
        frames = grey_frames(data_dir, BATTERY_FRAMES, pattern, n).astype(np.float32)
        normal.append(frames[: 2 * n // 3])
        hot.append(frames[2 * n // 3 :])
        sources += [str(p) for p in sorted(folder.glob(pattern))[2 * n // 3 : n]]
    stack = tmp_path / "normal.npy"
    np.save(stack, np.concatenate(normal))
    hot_frames = np.concatenate(hot)
    hot_frames[:, 28:32, 38:42] += 60.0
    dataset = tmp_path / "dataset.h5"
    labels = np.ones(len(hot_frames), int)
    write_recorded_dataset(dataset, hot_frames, sources, labels, TWO_CAMERAS)
    normal_set = load_frame_set(stack).labelled("K")
    return normal_set, load_frame_set(dataset, label="anomalous")


def test_two_unrecorded_cameras_warn(data_dir, tmp_path, caplog):
    normal, pseudo = _battery_inputs(data_dir, tmp_path, ("CAM1", "CAM2"))

    with caplog.at_level("WARNING", logger="thermosynth.validation.closeness"):
        report = _report(normal, pseudo, tmp_path / "report")
    warnings = [r.getMessage() for r in caplog.records if CAMERA_WARNING in r.message]

    assert pseudo.cameras == ("CAM1",) * 3 + ("CAM2",) * 3
    assert len(warnings) == 1
    assert "(CAM1, CAM2; per set: normal_reference unknown; " in warnings[0]
    assert "pseudo CAM1: 3, CAM2: 3)" in warnings[0]
    assert "but 6 normal, 6 pseudo frames have no recorded camera" in warnings[0]
    assert warnings[0] in report.notes


def test_one_camera_does_not_warn(data_dir, tmp_path, caplog):
    normal, pseudo = _battery_inputs(data_dir, tmp_path, ("CAM1",))

    with caplog.at_level("WARNING", logger="thermosynth.validation.closeness"):
        report = _report(normal, pseudo, tmp_path / "report")

    assert set(pseudo.cameras or ()) == {"CAM1"}
    assert not any("cameras" in r.getMessage() for r in caplog.records)
    assert not any("cameras" in note for note in report.notes)


def _renamed_folders(data_dir: Path, root: Path) -> tuple[Path, Path, np.ndarray]:
    """Write 10 normal and 3 hot battery frames per camera, named left-* and right-*.

    The names hide the CAM1 and CAM2 keys, so only a camera pattern finds the
    cameras. Returns the two folders and the hot frames' grey levels.
    """
    names = {"left": "CAM1", "right": "CAM2"}
    write_renamed_frames(data_dir, root / "normal", names, slice(0, 10))
    hot = write_renamed_frames(data_dir, root / "pseudo", names, slice(10, 13))
    hot = hot.astype(np.int16)
    hot[:, 28:32, 38:42] += 60
    hot = np.clip(hot, 0, 255).astype(np.uint8)
    for path, frame in zip(sorted((root / "pseudo").iterdir()), hot, strict=True):
        assert cv2.imwrite(str(path), frame)
    return root / "normal", root / "pseudo", hot


def _reference_models(normal: FrameSet, rows: list[dict]) -> dict[str, NormalModel]:
    """Fit a model to the reference frames of each camera alone, and to all.

    The reference frames are the normal frames that the report did not hold
    out, and the noise floor is their median noise, as the report sets it.
    """
    held_out = {row["source"] for row in rows if row["set"] == "normal"}
    keep = np.array([name not in held_out for name in normal.names])
    reference = normal.values[keep]
    sigma = [estimate_frame_noise(values, quantum=1.0) for values in reference]
    floor = float(np.median(sigma))
    cameras = np.array([Path(name).name.split("-")[0] for name in normal.names])
    models = {
        camera: NormalModel.fit(reference[cameras[keep] == camera], noise_floor=floor)
        for camera in ("left", "right")
    }
    models["pooled"] = NormalModel.fit(reference, noise_floor=floor)
    return models


def test_camera_pattern_fits_model_per_camera(data_dir, tmp_path):
    normal, pseudo, hot = _renamed_folders(data_dir, tmp_path)

    report = _report(
        normal, pseudo, tmp_path / "report", camera_pattern=r"^(left|right)-"
    )
    rows = [r for r in report.per_sample if r["set"] == "pseudo"]
    models = _reference_models(load_frame_set(normal), report.per_sample)

    assert [r["camera"] for r in rows] == ["left"] * 3 + ["right"] * 3
    assert {r["camera"] for r in report.per_sample} == {"left", "right"}
    for row, frame in zip(rows, hot.astype(np.float64), strict=True):
        own = float(models[row["camera"]].z_score(frame).max())
        pooled = float(models["pooled"].z_score(frame).max())
        assert row["peak_z"] == own
        assert row["peak_z"] != pooled
    assert not any(CAMERA_WARNING in note for note in report.notes)


def test_camera_pattern_missing_a_frame_rejected(data_dir, tmp_path):
    normal, pseudo, _ = _renamed_folders(data_dir, tmp_path)

    with pytest.raises(FrameError, match="normal frame .*right-00.png: camera pat"):
        _report(normal, pseudo, tmp_path / "report", camera_pattern="^(left)-")
    assert not (tmp_path / "report").exists()
