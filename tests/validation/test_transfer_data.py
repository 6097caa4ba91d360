"""Tests of thermosynth.validation.transfer_data: loading, 8-bit levels, splits."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.validation.io import load_frame_set
from thermosynth.validation.transfer import TransferData
from thermosynth.validation.transfer_data import (
    load_classes,
    load_transfer_data,
    resize_transfer_data,
    split_transfer_data,
    to_uint8,
)

SHAPE = (6, 4)


def _numbered(n: int, start: int) -> np.ndarray:
    """Frames whose pixels all equal the frame's own number."""
    return (np.arange(start, start + n, dtype=np.uint8)[:, None, None]) + np.zeros(
        SHAPE, dtype=np.uint8
    )


def test_split_keeps_masks_with_their_frames():
    hot, cell = _numbered(6, 100), _numbered(4, 200)
    # Each mask marks as many pixels as its frame's number minus the class base.
    masks = {
        name: np.stack([np.arange(24).reshape(SHAPE) < f[0, 0] - base for f in frames])
        for name, frames, base in (("Hot", hot, 99), ("Cell", cell, 199))
    }
    data = split_transfer_data(
        _numbered(20, 0),
        {"Hot": hot, "Cell": cell},
        np.random.default_rng(0),
        n_train=10,
        n_test=5,
        anomaly_masks=masks,
    )

    assert data.test_masks is not None
    assert data.test_masks.shape == data.test_images.shape
    assert not data.test_masks[~data.test_labels].any()
    for image, mask, group in zip(
        data.test_images, data.test_masks, data.test_groups, strict=True
    ):
        if group != "normal":
            base = 99 if group == "Hot" else 199
            assert mask.sum() == image[0, 0] - base


def test_split_without_masks_has_none():
    data = split_transfer_data(
        _numbered(20, 0),
        {"Hot": _numbered(6, 100)},
        np.random.default_rng(0),
        n_train=10,
        n_test=5,
    )
    assert data.test_masks is None
    assert len(data.reserve_anomalies) == 3


def test_split_rejects_missing_class_masks():
    with pytest.raises(FrameError, match="masks of anomaly class 'Cell' are missing"):
        split_transfer_data(
            _numbered(20, 0),
            {"Hot": _numbered(6, 100), "Cell": _numbered(4, 200)},
            np.random.default_rng(0),
            n_train=10,
            n_test=5,
            anomaly_masks={"Hot": np.zeros((6, *SHAPE), dtype=bool)},
        )


def _write_tree(root: Path, frames: list[np.ndarray]) -> None:
    """Write an MVTec tree without masks: 4 train/good, 2 test/good, rest test/hot."""
    folders = ["train/good"] * 4 + ["test/good"] * 2
    folders += ["test/hot"] * (len(frames) - 6)
    for i, (frame, folder) in enumerate(zip(frames, folders, strict=True)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        # OpenCV writes BGR, so tests compute colour levels from the file read back.
        assert cv2.imwrite(str(root / folder / f"{i:03d}.png"), frame)


def _pv_grey(data_dir: Path, n: int) -> list[np.ndarray]:
    folder = data_dir / "pv-modules-raptormaps" / "images"
    files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))[:n]
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


def test_rgb_grey_tree_gives_source_levels(data_dir, tmp_path):
    grey = _pv_grey(data_dir, 10)
    _write_tree(tmp_path, [np.repeat(g[:, :, None], 3, axis=2) for g in grey])

    data = load_transfer_data(
        tmp_path, tmp_path, np.random.default_rng(0), max_train=4, max_test=2
    )
    source = {g.tobytes() for g in grey}

    assert data.train_normal.dtype == np.uint8
    assert len(data.train_normal) == 4
    assert {f.tobytes() for f in data.train_normal} == {g.tobytes() for g in grey[:4]}
    assert all(f.tobytes() in source for f in data.test_images)
    assert data.test_masks is None


def test_colour_frames_give_rounded_luminance(data_dir, tmp_path):
    grey = _pv_grey(data_dir, 6)
    # Distinct channels, so the luminance is not a whole level for most pixels.
    colour = [np.stack([g, 255 - g, g // 2], axis=-1) for g in grey]
    _write_tree(tmp_path, colour)
    rgb = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted(tmp_path.glob("t*/good/*.png"))
    ]

    levels = to_uint8(load_frame_set(tmp_path, label="normal"))
    expected = np.rint(np.stack(rgb).astype(np.float64) @ [0.299, 0.587, 0.114])

    assert levels.dtype == np.uint8
    assert np.array_equal(levels, expected)


def test_to_uint8_rejects_16_bit_levels(tmp_path):
    frames = np.full((3, 6, 4), 300, np.uint16)
    frames[0, 0, 0] = 2
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)

    with pytest.raises(FrameError, match=r"levels 2\.\.300, outside the 8-bit range"):
        to_uint8(load_frame_set(tmp_path))


def test_to_uint8_rejects_fractional_floats(tmp_path):
    np.save(tmp_path / "a.npy", np.full((6, 4), 20.5))

    with pytest.raises(
        FrameError,
        match=r"float values 20\.5\.\.20\.5 \(unit value\) that are not whole",
    ):
        to_uint8(load_frame_set(tmp_path))


def _blocks(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (n, 4, 6) frames of 2 x 2 blocks with whole means, and the means."""
    base = np.arange(n * 6, dtype=np.uint8).reshape(n, 2, 3) * 4 + 20
    frames = np.kron(base, np.ones((2, 2), dtype=np.uint8))
    frames[:, 0::2, 0::2] += 3
    frames[:, 1::2, 1::2] -= 3
    frames[:, 0::2, 1::2] += 1
    frames[:, 1::2, 0::2] -= 1
    return frames, base


def test_resize_averages_blocks_and_keeps_labels():
    train, train_means = _blocks(3)
    test, test_means = _blocks(4)
    masks = np.zeros((4, 4, 6), dtype=bool)
    masks[1, 0, 0:2] = True  # half of the first block: anomalous
    masks[1, 2, 2] = True  # a quarter of another: not
    data = TransferData(
        train_normal=train,
        test_images=test,
        test_labels=np.array([False, True, True, False]),
        test_groups=np.array(["normal", "hot", "hot", "normal"]),
        reserve_anomalies=test[:2],
        test_masks=masks,
        kelvin_per_level=0.05,
    )

    small = resize_transfer_data(data, 2, 3)

    np.testing.assert_array_equal(small.train_normal, train_means)
    np.testing.assert_array_equal(small.test_images, test_means)
    np.testing.assert_array_equal(small.reserve_anomalies, test_means[:2])
    expected = np.zeros((4, 2, 3), dtype=bool)
    expected[1, 0, 0] = True
    np.testing.assert_array_equal(small.test_masks, expected)
    np.testing.assert_array_equal(small.test_labels, data.test_labels)
    np.testing.assert_array_equal(small.test_groups, data.test_groups)
    assert small.kelvin_per_level == 0.05
    assert small.train_normal.dtype == np.uint8


def test_resize_enlarges_flat_frames_unchanged():
    flat = np.full((2, 3, 5), 77, dtype=np.uint8)
    data = TransferData(flat, flat, np.array([False, True]), np.array(["normal", "a"]))
    big = resize_transfer_data(data, 9, 10)
    assert big.test_images.shape == (2, 9, 10)
    assert np.all(big.train_normal == 77)
    assert big.reserve_anomalies is None
    assert big.test_masks is None


def test_resize_rejects_empty_size():
    flat = np.full((2, 3, 5), 77, dtype=np.uint8)
    data = TransferData(flat, flat, np.array([False, True]), np.array(["normal", "a"]))
    with pytest.raises(FrameError, match="cannot resize frames to 0 x 4 px"):
        resize_transfer_data(data, 0, 4)


def test_resize_rejects_growth_past_limit():
    flat = np.full((2, 3, 5), 77, dtype=np.uint8)
    data = TransferData(flat, flat, np.array([False, True]), np.array(["normal", "a"]))
    resize_transfer_data(data, 12, 20)
    with pytest.raises(FrameError, match="a side would grow more than 4 times"):
        resize_transfer_data(data, 13, 20)


def test_load_resizes_tree(data_dir, tmp_path):
    grey = _pv_grey(data_dir, 10)
    _write_tree(tmp_path, grey)
    rng = np.random.default_rng(0)

    data = load_transfer_data(tmp_path, tmp_path, rng, max_train=4, size_px=(20, 12))
    assert data.train_normal.shape == (4, 20, 12)
    assert data.test_images.shape[1:] == (20, 12)

    with pytest.raises(FrameError, match=r"size_px \(20,\) is invalid"):
        load_transfer_data(tmp_path, tmp_path, rng, max_train=4, size_px=(20,))


def test_load_classes_missing_image_only_own_error(tmp_path, capfd):
    records = {"0": {"anomaly_class": "Cell", "image_filepath": "images/0.jpg"}}
    (tmp_path / "module_metadata.json").write_text(json.dumps(records))

    with pytest.raises(FrameError, match=r"failed to read .*0\.jpg"):
        load_classes(tmp_path)

    assert capfd.readouterr().err == ""


def test_empty_train_good_rejected(tmp_path):
    frames = list(_numbered(10, 1))
    _write_tree(tmp_path, frames)
    for file in (tmp_path / "train" / "good").iterdir():
        file.unlink()

    message = r"train/good contains no images; put the normal training frames there"
    with pytest.raises(FrameError, match=message):
        load_transfer_data(tmp_path, tmp_path, np.random.default_rng(0))


def test_real_of_other_size_rejected(data_dir, tmp_path):
    grey = _pv_grey(data_dir, 10)
    _write_tree(tmp_path / "normal", grey)
    _write_tree(tmp_path / "real", [g[:30] for g in grey])

    with pytest.raises(FrameError) as raised:
        load_transfer_data(
            tmp_path / "normal", tmp_path / "real", np.random.default_rng(0)
        )

    assert str(raised.value) == (
        f"real anomalies of class 'hot' in {tmp_path / 'real'} are 30 x 24 px "
        f"(height x width) but the normal frames in {tmp_path / 'normal'} are "
        "40 x 24 px; give frames of one size"
    )


def test_patterns_keep_one_camera(data_dir):
    battery = data_dir / "battery-station-inferno"
    day_cam2 = "*20240715*CAM2*"

    data = load_transfer_data(
        battery / "normal_masked",
        battery / "test" / "masked",
        np.random.default_rng(0),
        normal_pattern=day_cam2,
        real_pattern=day_cam2,
    )
    n_normal = len(data.train_normal) + int(np.sum(data.test_labels == 0))
    n_real = int(np.sum(data.test_labels == 1))
    n_reserve = 0 if data.reserve_anomalies is None else len(data.reserve_anomalies)

    # 79 and 82 CAM2 files of 15 July 2024; the folders hold 902 and 338 in all.
    assert n_normal == 79
    assert n_real + n_reserve == 82


def test_normal_pattern_rejected_on_mvtec(tmp_path):
    (tmp_path / "train" / "good").mkdir(parents=True)
    (tmp_path / "test" / "hot").mkdir(parents=True)
    expected = r"--normal-pattern '\*CAM2\*' does not apply .* an MVTec tree"
    with pytest.raises(FrameError, match=expected):
        load_transfer_data(
            tmp_path, tmp_path, np.random.default_rng(0), normal_pattern="*CAM2*"
        )
