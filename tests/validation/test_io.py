"""Tests of thermosynth.validation.io: MVTec masks and decoding stored levels."""

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.output.folder import EightBitScale, FolderWriter
from thermosynth.output.hdf5 import HDF5Writer
from thermosynth.output.sample import Sample
from thermosynth.validation.io import load_for_role, load_frame_set
from thermosynth.validation.transfer_data import kelvin_per_level

PV_STEMS = ("0", "1", "2", "4", "5", "7")
"""Raptor Maps PV crops, 24 x 40 px (W x H) greyscale JPEGs."""


def _pv_frames(data_dir: Path) -> list[np.ndarray]:
    folder = data_dir / "pv-modules-raptormaps" / "images"
    frames = [
        cv2.imread(str(folder / f"{s}.jpg"), cv2.IMREAD_UNCHANGED) for s in PV_STEMS
    ]
    assert all(f is not None and f.shape == (40, 24) for f in frames)
    return frames


def _drawn_mask(i: int) -> np.ndarray:
    """A rectangle that differs per image, so masks cannot be swapped unseen."""
    mask = np.zeros((40, 24), np.uint8)
    mask[2 + i : 10 + 2 * i, 3 : 5 + i] = 255
    return mask


def _write_masks(root: Path, names: dict[int, str]) -> Path:
    """Write the drawn mask of each image index under ground_truth/hot; return it."""
    masks = root / "ground_truth" / "hot"
    masks.mkdir(parents=True)
    for i, name in names.items():
        cv2.imwrite(str(masks / name), _drawn_mask(i))
    return masks


def _mvtec_tree(root: Path, frames: list[np.ndarray]) -> None:
    """Write frames 0-1 to train/good, 2 to test/good and 3-5 to test/hot."""
    for folder, indices in (
        ("train/good", (0, 1)),
        ("test/good", (2,)),
        ("test/hot", (3, 4, 5)),
    ):
        (root / folder).mkdir(parents=True)
        for i in indices:
            cv2.imwrite(str(root / folder / f"{i:03d}.png"), frames[i])


def test_mvtec_accepts_mask_names(data_dir, tmp_path):
    frames = _pv_frames(data_dir)
    _mvtec_tree(tmp_path, frames)
    masks = tmp_path / "ground_truth" / "hot"
    masks.mkdir(parents=True)
    cv2.imwrite(str(masks / "003_mask.bmp"), _drawn_mask(3))
    cv2.imwrite(str(masks / "004.png"), _drawn_mask(4))
    np.save(masks / "005_mask.npy", _drawn_mask(5) > 0)

    loaded = load_frame_set(tmp_path, label="anomalous")

    assert loaded.masks is not None
    for row, i in enumerate((3, 4, 5)):
        assert np.array_equal(loaded.masks[row], _drawn_mask(i) > 0)
        assert np.array_equal(loaded.values[row], frames[i])


def test_mvtec_normal_masks_are_empty(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    _write_masks(tmp_path, {i: f"{i:03d}.tif" for i in (3, 4, 5)})

    loaded = load_frame_set(tmp_path, label="any")

    assert loaded.masks is not None
    assert len(loaded) == 6
    for name, mask in zip(loaded.names, loaded.masks, strict=True):
        i = int(Path(name).stem)
        expected = _drawn_mask(i) > 0 if i >= 3 else np.zeros((40, 24), bool)
        assert np.array_equal(mask, expected), name


def test_mvtec_rejects_two_masks(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    masks = _write_masks(tmp_path, {i: f"{i:03d}_mask.png" for i in (3, 4, 5)})
    cv2.imwrite(str(masks / "004.jpg"), _drawn_mask(4))

    with pytest.raises(FrameError, match=r"2 masks match .*004_mask\.png, .*004\.jpg"):
        load_frame_set(tmp_path, label="anomalous")


def test_mvtec_rejects_missing_mask(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    masks = _write_masks(tmp_path, {i: f"{i:03d}_mask.png" for i in (3, 5)})

    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path, label="anomalous")

    message = str(raised.value)
    images = tmp_path / "test" / "hot"
    assert message.startswith(f"1 of 3 images in {images} has no mask in {masks}.")
    assert "Expected <stem>_mask.png or <stem>.png for each image <stem>" in message
    assert "such as 004_mask.png for 004.png" in message
    assert "match no image" not in message


def test_mvtec_misnamed_masks_raise_once(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    masks = _write_masks(tmp_path, {i: f"{i:03d}-mask.png" for i in (3, 4, 5)})
    (tmp_path / "ground_truth" / "cold").mkdir()
    (tmp_path / "test" / "cold").mkdir()
    shutil.copy(tmp_path / "test" / "hot" / "005.png", tmp_path / "test" / "cold")

    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path, label="anomalous")

    message = str(raised.value)
    cold = tmp_path / "ground_truth" / "cold"
    assert message.count("images in") == 2
    hot = f"3 of 3 images in {tmp_path / 'test' / 'hot'} have no mask in {masks}"
    assert hot in message
    assert (
        "that folder contains e.g. 003-mask.png, 004-mask.png, 005-mask.png, "
        "which match no image"
    ) in message
    assert f"1 of 1 images in {tmp_path / 'test' / 'cold'} has no mask in {cold}" in (
        message
    )
    assert "that folder contains no image or .npy file" in message
    assert message.endswith(
        f"or remove {tmp_path / 'ground_truth'} to run without pixel metrics"
    )


def test_mvtec_without_ground_truth(data_dir, tmp_path, caplog):
    frames = _pv_frames(data_dir)
    _mvtec_tree(tmp_path, frames)

    with caplog.at_level(logging.INFO, logger="thermosynth.validation.io"):
        loaded = load_frame_set(tmp_path, label="anomalous")
    notes = [r.getMessage() for r in caplog.records if "ground_truth" in r.getMessage()]

    assert loaded.masks is None
    assert np.array_equal(loaded.values, np.stack(frames[3:]))
    assert len(notes) == 1
    assert "pixel metrics need masks" in notes[0]
    assert load_frame_set(tmp_path, label="normal").masks is not None


@pytest.mark.parametrize("folder", ["Good", "ok"])
@pytest.mark.parametrize("label", ["normal", "anomalous", "any"])
def test_mvtec_rejects_train_folder_not_good(data_dir, tmp_path, folder, label):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    (tmp_path / "train" / "good").rename(tmp_path / "train" / folder)
    train = tmp_path / "train"
    message = (
        f"{train} contains the folder '{folder}', but train/ of an MVTec tree may "
        "contain only 'good', the normal training frames; move normal frames to "
        f"{train / 'good'} and anomalous ones to {tmp_path / 'test'}/<kind>"
    )

    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path, label=label)

    assert str(raised.value) == message


def test_mvtec_train_folders_without_test(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    shutil.rmtree(tmp_path / "test")
    (tmp_path / "train" / "good").rename(tmp_path / "train" / "Good")
    (tmp_path / "train" / "ok").mkdir()
    (tmp_path / "train" / "bad").mkdir()

    with pytest.raises(FrameError, match=r"folders 'Good', 'bad', 'ok', but train/"):
        load_frame_set(tmp_path, label="normal")


def _heater_celsius(data_dir: Path, n: int) -> np.ndarray:
    """Real surface temperatures [C], float64 (n, 11, 11), one frame every 50 s."""
    path = data_dir / "pouch-cell-heater-ir" / "Exp_E_T11x11_celsius.npy"
    return np.load(path)[::50][:n].astype(np.float64)


def _write_thermosynth(
    out: Path, raw: np.ndarray, encodings: list[dict], *, eight_bit: bool = True
) -> None:
    """Write ``dataset.h5`` and a ``folder/`` tree with the real writers.

    Even samples are normal, odd ones anomalous with a mask on the top row.
    With ``eight_bit`` the tree's images are 8-bit, 7 stored levels apart.
    """
    out.mkdir()
    mask = np.zeros(raw.shape[1:3], bool)
    mask[0] = True
    scale = EightBitScale(
        raw_offset=float(raw.min()), raw_per_level=7.0, source_dtype=str(raw.dtype)
    )
    if not eight_bit:
        scale = None
    with (
        HDF5Writer(out / "dataset.h5", attributes={}, frame_unit="C") as h5,
        FolderWriter(out / "folder", frame_unit="C", eight_bit=scale) as folder,
    ):
        for i, (frame, encoding) in enumerate(zip(raw, encodings, strict=True)):
            sample = Sample(
                index=i,
                split="test" if i % 2 or i >= 6 else "train",
                label=i % 2,
                kind="hot" if i % 2 else "good",
                raw=frame,
                mask=mask if i % 2 else np.zeros_like(mask),
                rise_K=np.zeros(mask.shape, np.float32),
                recorded_rise=np.zeros(mask.shape, np.float32),
                metadata={"encoding": encoding},
            )
            h5.write(sample)
            folder.write(sample)


LINEAR = {"kind": "linear", "scale_per_level": 0.01, "offset": -40.0}


def test_hdf5_decodes_linear_levels(data_dir, tmp_path):
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    raw = encoding.encode(_heater_celsius(data_dir, 8))
    _write_thermosynth(tmp_path / "out", raw, [LINEAR] * 8)

    loaded = load_frame_set(tmp_path / "out", label="any")

    assert loaded.unit == "C"
    assert loaded.encoding is not None
    assert loaded.encoding.quantum == 0.01
    assert np.array_equal(loaded.values, raw * 0.01 + -40.0)
    assert np.abs(loaded.values - _heater_celsius(data_dir, 8)).max() <= 0.005 + 1e-9


def test_folder_tree_decodes_like_hdf5(data_dir, tmp_path):
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    raw = encoding.encode(_heater_celsius(data_dir, 8))
    _write_thermosynth(tmp_path / "out", raw, [LINEAR] * 8)
    scale = json.loads((tmp_path / "out" / "folder" / "scale.json").read_text())
    levels = np.stack(
        [
            cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted((tmp_path / "out" / "folder").glob("*/*/0*[0-9].png"))
        ]
    )

    loaded = load_frame_set(tmp_path / "out" / "folder", label="any")
    stored = levels * scale["raw_per_level"] + scale["raw_offset"]

    assert levels.dtype == np.uint8
    assert loaded.unit == "C"
    assert loaded.encoding is not None
    assert loaded.encoding.quantum == pytest.approx(0.07)
    np.testing.assert_allclose(loaded.values, stored * 0.01 - 40.0, rtol=0, atol=1e-9)


def test_hdf5_keeps_levels_when_encodings_differ(data_dir, tmp_path):
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    raw = encoding.encode(_heater_celsius(data_dir, 8))
    other = {"kind": "linear", "scale_per_level": 0.02, "offset": -40.0}
    _write_thermosynth(tmp_path / "out", raw, [LINEAR] * 7 + [other])

    loaded = load_frame_set(tmp_path / "out", label="any")
    folder = load_frame_set(tmp_path / "out" / "folder", label="any")

    assert loaded.unit == "level"
    assert np.array_equal(loaded.values, raw)
    assert folder.unit == "level"
    assert folder.values.max() <= 255


def test_hdf5_keeps_palette_levels(data_dir, tmp_path):
    grey = _pv_frames(data_dir)
    raw = np.stack([np.stack([g, g, g], axis=-1) for g in grey])
    palette = {"kind": "palette", "low": 20.0, "high": 40.0, "n_levels": 256}
    _write_thermosynth(tmp_path / "out", raw, [palette] * len(grey))

    loaded = load_frame_set(tmp_path / "out", label="any")

    assert loaded.unit == "level"
    assert np.array_equal(loaded.values, np.stack(grey))


def test_float_folder_tree_decodes_scale(data_dir, tmp_path):
    celsius = _heater_celsius(data_dir, 8).astype(np.float32)
    float_linear = {"kind": "linear", "scale_per_level": 1.0, "offset": 0.0}
    _write_thermosynth(tmp_path / "out", celsius, [float_linear] * 8, eight_bit=False)
    levels = np.stack(
        [
            cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted((tmp_path / "out" / "folder").glob("*/*/0*[0-9].png"))
        ]
    )

    loaded = load_frame_set(tmp_path / "out" / "folder", label="any")
    from_hdf5 = load_frame_set(tmp_path / "out", label="any")

    assert levels.dtype == np.uint16
    assert loaded.unit == "C"
    assert np.array_equal(loaded.values, levels * 0.01 + -100.0)
    assert from_hdf5.unit == "C"
    assert from_hdf5.encoding is not None
    assert from_hdf5.encoding.quantum == 0.0


def test_folder_tree_gives_kelvin_per_level(data_dir, tmp_path):
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    raw = encoding.encode(_heater_celsius(data_dir, 8))
    _write_thermosynth(tmp_path / "out", raw, [LINEAR] * 8)

    _mvtec_tree(tmp_path / "pv", _pv_frames(data_dir))

    tree = load_frame_set(tmp_path / "out" / "folder", label="normal")
    pv = load_frame_set(tmp_path / "pv", label="normal")

    assert kelvin_per_level(tree) == pytest.approx(0.07)
    assert kelvin_per_level(pv) is None


def test_filter_without_match_lists_present_values(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.full((4, 6), 100, np.uint8))
    records = {
        "1": {"file": "a.png", "cls": "No-Anomaly"},
        "2": {"file": "b.png", "cls": "Hot-Spot"},
        "3": {"file": "c.png", "cls": "Cell"},
    }
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps(records))

    cells = load_frame_set(
        tmp_path, metadata=metadata, where={"cls": ["Cell"]}, path_key="file"
    )
    with pytest.raises(FrameError) as info:
        load_frame_set(
            tmp_path, metadata=metadata, where={"cls": ["Hotspot"]}, path_key="file"
        )

    assert len(cells.values) == 1
    assert str(info.value) == (
        f"no record of {metadata} matches the filter {{'cls': ['Hotspot']}}; "
        "cls takes Cell, Hot-Spot, No-Anomaly"
    )


def test_single_image_file_rejected(data_dir):
    path = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"

    with pytest.raises(FrameError) as info:
        load_frame_set(path)

    assert str(info.value) == (
        f"{path} is a file, but a frame set is a thermosynth dataset.h5 (or the "
        "output folder that contains it), an MVTec folder tree, a folder of "
        "images or .npy files, or one .npy file of (N, H, W) frames; give one of "
        "those"
    )


def test_npy_stack_loads_frames(tmp_path):
    rng = np.random.default_rng(2)
    stack = (25.0 + rng.normal(size=(6, 5, 7))).astype(np.float32)
    path = tmp_path / "stack_C.npy"
    np.save(path, stack)

    frames = load_frame_set(path, max_frames=4, rng=np.random.default_rng(0))

    assert frames.kind == "stack"
    assert frames.unit == "value"
    assert frames.encoding is None
    assert frames.values.shape == (4, 5, 7)
    np.testing.assert_array_equal(frames.values, stack[frames.indices])
    assert frames.names[0] == f"{path}[{frames.indices[0]}]"


def test_integer_npy_stack_keeps_levels(tmp_path):
    path = tmp_path / "levels.npy"
    np.save(path, np.arange(2 * 4 * 3, dtype=np.uint16).reshape(2, 4, 3))

    frames = load_frame_set(path)

    assert frames.unit == "level"
    assert frames.encoding is not None
    assert frames.encoding.quantum == 1.0


def test_npy_of_one_frame_rejected(tmp_path):
    path = tmp_path / "frame.npy"
    np.save(path, np.zeros((5, 7)))

    with pytest.raises(FrameError) as info:
        load_frame_set(path)

    assert str(info.value) == (
        f"{path} contains an array of shape (5, 7), but a .npy frame set is a "
        "stack of shape (N, H, W), or (N, H, W, 3) for RGB; stack the frames "
        "along the first axis"
    )


def test_levels_decoded_with_calibration(tmp_path):
    path = tmp_path / "levels.npy"
    np.save(path, np.full((2, 4, 3), 29815, dtype=np.uint16))
    levels = load_frame_set(path)

    kelvin = levels.decoded(scale_per_level=0.01, offset=0.0, unit="K")

    assert kelvin.unit == "K"
    np.testing.assert_allclose(kelvin.values, 298.15)
    assert kelvin.encoding is not None
    assert kelvin.encoding.quantum == 0.01
    with pytest.raises(FrameError, match=r"are in K, not in stored integer levels"):
        kelvin.decoded(scale_per_level=0.01, offset=0.0, unit="K")


def test_mvtec_empty_class_folder_warns(data_dir, tmp_path, caplog):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    (tmp_path / "test" / "Diode").mkdir()

    with caplog.at_level("WARNING", logger="thermosynth.validation.io"):
        loaded = load_frame_set(tmp_path, label="anomalous")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    assert len(loaded) == 3
    assert len(warnings) == 1
    assert f"{tmp_path / 'test' / 'Diode'} contains no images" in warnings[0]
    assert "anomaly class 'Diode' is left out" in warnings[0]


def test_mvtec_missing_mask_says_how_to_skip(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    _write_masks(tmp_path, {i: f"{i:03d}_mask.png" for i in (3, 5)})

    skip = r"or remove .*ground_truth to run without pixel metrics"
    with pytest.raises(
        FrameError, match=r"such as 004_mask\.png for 004\.png.*" + skip
    ):
        load_frame_set(tmp_path, label="anomalous")
    shutil.rmtree(tmp_path / "ground_truth" / "hot")
    (tmp_path / "ground_truth" / "cold").mkdir()
    with pytest.raises(FrameError, match=r"mask folder .*hot not found.*" + skip):
        load_frame_set(tmp_path, label="anomalous")


def test_mixed_sizes_name_the_odd_file(data_dir, tmp_path):
    frames = _pv_frames(data_dir)
    for i, frame in enumerate(frames[:3]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
    cv2.imwrite(str(tmp_path / "3.png"), cv2.resize(frames[3], (48, 80)))

    with pytest.raises(FrameError) as info:
        load_frame_set(tmp_path)

    assert f"{tmp_path / '3.png'} is 80 x 48 px (height x width)" in str(info.value)
    assert f"but {tmp_path / '0.png'} is 40 x 24 px" in str(info.value)


def test_mvtec_grey_mask_values_warn_once(data_dir, tmp_path, caplog):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    masks = _write_masks(tmp_path, {i: f"{i:03d}_mask.png" for i in (3, 4, 5)})
    soft = _drawn_mask(4)
    soft[0, 0], soft[1, 1] = 128, 37
    cv2.imwrite(str(masks / "004_mask.png"), soft)
    cv2.imwrite(str(masks / "005_mask.png"), np.where(_drawn_mask(5) > 0, 128, 0))

    with caplog.at_level("WARNING", logger="thermosynth.validation.io"):
        loaded = load_frame_set(tmp_path, label="anomalous")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    assert loaded.masks is not None
    assert np.array_equal(loaded.masks[1], soft > 0)
    assert len(warnings) == 1
    assert "2 of the 3 masks in" in warnings[0]
    assert f"such as {masks / '004_mask.png'} with 37, 128" in warnings[0]
    assert "threshold: value > 0" in warnings[0]


def test_mvtec_binary_masks_do_not_warn(data_dir, tmp_path, caplog):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    masks = _write_masks(tmp_path, {i: f"{i:03d}_mask.png" for i in (3, 4)})
    cv2.imwrite(str(masks / "005_mask.png"), (_drawn_mask(5) > 0).astype(np.uint8))

    with caplog.at_level("WARNING", logger="thermosynth.validation.io"):
        load_frame_set(tmp_path, label="anomalous")

    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_mvtec_without_anomalies_names_layout(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))
    shutil.rmtree(tmp_path / "test" / "hot")

    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path, label="anomalous")

    message = str(raised.value)
    assert message.startswith(f"no anomalous images in the MVTec tree {tmp_path}")
    assert "which contains test/good/, train/good/" in message
    assert "one test/<defect>/ folder per defect kind" in message


def test_filter_on_mvtec_names_option(data_dir, tmp_path):
    _mvtec_tree(tmp_path, _pv_frames(data_dir))

    with pytest.raises(FrameError) as raised:
        load_for_role(tmp_path, "normal", where={"a": ["b"]})

    message = str(raised.value)
    assert message.startswith(
        f"cannot load the normal set: --normal-where a=b does not apply to {tmp_path}"
    )
    assert "it is an MVTec tree, which is read by its labels" in message
    assert "(normal frames from train/good and test/good)" in message
    assert "Leave out --normal-where a=b" in message


def test_filter_without_metadata_names_option(data_dir, tmp_path):
    for stem, frame in zip(PV_STEMS, _pv_frames(data_dir), strict=True):
        cv2.imwrite(str(tmp_path / f"{stem}.png"), frame)

    with pytest.raises(FrameError) as raised:
        load_for_role(tmp_path, "real", where={"cls": ["Cell", "Diode"]})

    assert str(raised.value).startswith(
        f"cannot load the real set: --real-where cls=Cell,Diode was given for "
        f"{tmp_path} without a metadata JSON file; pass --metadata"
    )


def test_metadata_names_missing_files(data_dir, tmp_path, caplog):
    for stem, frame in zip(PV_STEMS, _pv_frames(data_dir), strict=True):
        cv2.imwrite(str(tmp_path / f"{stem}.png"), frame)
    records = [{"file": f"{name}.png", "cls": "n"} for name in ("0", "x", "y", "z")]
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps(records))
    where = {"cls": ["n"]}

    with caplog.at_level("WARNING", logger="thermosynth.validation.io"):
        found = load_frame_set(
            tmp_path, metadata=metadata, where=where, path_key="file"
        )
    metadata.write_text(json.dumps(records[1:]))
    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path, metadata=metadata, where=where, path_key="file")

    missing = f"({tmp_path / 'x.png'}, {tmp_path / 'y.png'} and 1 more)"
    assert np.array_equal(found.values, _pv_frames(data_dir)[:1])
    assert f"selects 4 files, of which 3 are not found {missing}" in caplog.text
    assert str(raised.value) == (
        f"no frames to load from {tmp_path}: {metadata} selects 3 files, of "
        f"which 3 are not found {missing}; check that 'file' gives paths "
        f"relative to {tmp_path}"
    )


def test_empty_folder_names_suffixes(tmp_path):
    (tmp_path / "frames" / "images").mkdir(parents=True)
    (tmp_path / "frames" / "notes.txt").write_text("no frames here")

    with pytest.raises(FrameError) as raised:
        load_frame_set(tmp_path / "frames")

    assert str(raised.value).startswith(
        f"{tmp_path / 'frames'} contains no PNG, JPEG, TIFF, BMP or .npy files "
        "(.png, .jpg, .jpeg, .tif, .tiff, .bmp, .npy)"
    )
    assert "(it contains the folders images)" in str(raised.value)


def _battery_folder(data_dir: Path) -> Path:
    """The battery station's normals: 448 CAM1 and 454 CAM2 palette PNGs."""
    return data_dir / "battery-station-inferno" / "normal_masked"


def test_pattern_keeps_one_camera(data_dir):
    folder = _battery_folder(data_dir)
    cam2 = [p for p in folder.iterdir() if "CAM2" in p.name]
    # One day of CAM2 files keeps the read short; the count checks the glob.
    day = [p for p in cam2 if "_20240715_" in p.name]

    loaded = load_frame_set(folder, pattern="*20240715*CAM2*")

    assert len(cam2) == 454
    assert len(loaded) == len(day)
    assert 0 < len(loaded) < len(cam2)
    assert all("CAM2" in Path(name).name for name in loaded.names)


def test_pattern_matching_nothing_names_both(data_dir):
    folder = _battery_folder(data_dir)
    with pytest.raises(
        FrameError, match=r"--normal-pattern '\*CAM3\*' in .*normal_masked"
    ):
        load_for_role(
            folder, "normal", pattern="*CAM3*", pattern_option="--normal-pattern"
        )


def test_pattern_rejected_on_hdf5(data_dir, tmp_path):
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    raw = encoding.encode(_heater_celsius(data_dir, 4))
    _write_thermosynth(tmp_path / "out", raw, [LINEAR] * 4)

    with pytest.raises(FrameError, match=r"--pseudo-pattern '\*CAM2\*' does not"):
        load_for_role(
            tmp_path / "out",
            "pseudo",
            pattern="*CAM2*",
            pattern_option="--pseudo-pattern",
        )
