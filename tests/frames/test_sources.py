"""Tests for thermosynth.frames.sources."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

from thermosynth.errors import FrameError, MaskSizeError
from thermosynth.frames.palettes import palette_lut
from thermosynth.frames.sources import ArraySource, HDF5Source, ImageFolderSource


def _write_frames(folder, images, suffix):
    folder.mkdir(exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"f{i:02d}{suffix}"), image)
    return folder


@pytest.mark.parametrize(
    ("dtype", "suffix", "scale", "offset"),
    [
        (np.uint8, ".png", 0.25, 10.0),
        (np.uint16, ".png", 0.01, -40.0),
        (np.uint16, ".tif", 0.04, -273.15),
    ],
)
def test_greyscale_calibration_round_trip(tmp_path, dtype, suffix, scale, offset):
    rng = np.random.default_rng(3)
    high = np.iinfo(dtype).max
    images = [
        rng.integers(0, high, (24, 32), endpoint=True).astype(dtype) for _ in range(2)
    ]
    folder = _write_frames(tmp_path / "frames", images, suffix)

    source = ImageFolderSource(
        folder, pattern=f"*{suffix}", unit="C", scale_per_level=scale, offset=offset
    )
    frame = source.read(1)

    assert frame.raw.dtype == dtype
    np.testing.assert_array_equal(frame.raw, images[1])
    np.testing.assert_allclose(frame.values, images[1] * scale + offset)
    np.testing.assert_array_equal(frame.encoding.encode(frame.values), frame.raw)
    assert frame.unit == "C"
    assert frame.valid.all()


def test_greyscale_without_calibration_is_levels(tmp_path):
    image = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    folder = _write_frames(tmp_path / "frames", [image], ".png")

    frame = ImageFolderSource(folder).read(0)

    assert frame.unit == "level"
    np.testing.assert_array_equal(frame.values, image)


def test_pv_modules_greyscale(data_dir):
    source = ImageFolderSource(
        data_dir / "pv-modules-raptormaps" / "images", pattern="*.jpg"
    )
    frame = source.read(0)

    assert len(source) > 10000
    assert frame.shape == (40, 24)
    assert frame.raw.dtype == np.uint8
    assert frame.unit == "level"
    assert frame.values.max() <= 255
    assert frame.noise_sigma >= 1 / np.sqrt(12)


def test_sources_sorted_by_name(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("b.png", "a.png", "c.png"):
        cv2.imwrite(str(folder / name), np.zeros((8, 8), np.uint8))

    source = ImageFolderSource(folder)

    assert [s.rsplit("/", 1)[-1] for s in source.sources] == ["a.png", "b.png", "c.png"]


def test_ignore_rects_and_masks(tmp_path):
    folder = _write_frames(
        tmp_path / "frames", [np.full((20, 30), 9, np.uint8)], ".png"
    )
    roi = np.zeros((20, 30), np.uint8)
    roi[2:18, 2:28] = 255
    ignore = np.zeros((20, 30), np.uint8)
    ignore[10, 10] = 1
    cv2.imwrite(str(tmp_path / "roi.png"), roi)
    cv2.imwrite(str(tmp_path / "ignore.png"), ignore)

    frame = ImageFolderSource(
        folder,
        valid_mask=tmp_path / "roi.png",
        ignore_mask=tmp_path / "ignore.png",
        ignore_rects=[(0, 0, 5, 4)],
    ).read(0)

    expected = roi > 0
    expected[10, 10] = False
    expected[0:4, 0:5] = False
    np.testing.assert_array_equal(frame.valid, expected)


def test_radiometric_npy(data_dir):
    path = (
        data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_T640_celsius.npy"
    )

    source = ArraySource(path)
    frame = source.read(0)

    assert len(source) == 1
    assert frame.unit == "C"
    assert frame.values.max() == pytest.approx(97.9, abs=0.05)
    assert frame.values.min() == pytest.approx(25.5, abs=0.05)
    np.testing.assert_array_equal(frame.encoding.encode(frame.values), frame.raw)


def test_heater_stack_npy(data_dir):
    source = ArraySource(data_dir / "pouch-cell-heater-ir" / "Exp_E_T11x11_celsius.npy")
    frame = source.read(-1)

    assert len(source) == 977
    assert frame.shape == (11, 11)
    assert source.sources[-1].endswith("Exp_E_T11x11_celsius.npy[976]")
    assert frame.source == source.sources[-1]


def test_frame_shape_from_headers(data_dir, tmp_path):
    folder = data_dir / "radiometric-samples" / "decoded_celsius"
    source = ArraySource(folder)
    stack = ArraySource(data_dir / "pouch-cell-heater-ir" / "Exp_E_T11x11_celsius.npy")

    shapes = [source.frame_shape(i) for i in range(len(source))]

    assert shapes == [source.read(i).shape for i in range(len(source))]
    assert shapes == [(60, 80), (180, 180), (480, 640)]
    assert stack.frame_shape(976) == (11, 11)

    (tmp_path / "a.npy").write_bytes(b"not an array")
    assert ArraySource(tmp_path).frame_shape(0) is None


@pytest.mark.parametrize("channels", [3, 4])
def test_rgb_npy_rejected(data_dir, tmp_path, channels):
    png = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"
    rgb = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if channels == 4:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2BGRA)
    path = tmp_path / "rgb.npy"
    np.save(path, rgb)

    with pytest.raises(FrameError) as info:
        ArraySource(path)

    message = str(info.value)
    assert message.startswith(f"key 'frames.path': {path} contains")
    assert f"shape (240, 320, {channels})" in message
    assert "arrays must be (H, W) or (N, H, W) of temperatures or levels" in message
    assert "frames.kind: images with frames.mode: palette" in message
    assert info.value.keys == (("frames", "path"),)


def test_rgb_npy_in_folder_rejected(data_dir, tmp_path):
    png = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "a.npy", cv2.imread(str(png), cv2.IMREAD_COLOR))

    source = ArraySource(folder)

    with pytest.raises(FrameError, match=r"a\.npy contains an array of shape"):
        source.read(0)


def test_stack_of_three_frames_accepted(data_dir, tmp_path):
    frame = np.load(
        data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_T640_celsius.npy"
    )
    stack = np.stack([frame, frame + 1.0, frame + 2.0])
    np.save(tmp_path / "stack.npy", stack)

    source = ArraySource(tmp_path / "stack.npy")

    assert stack.shape == (3, 480, 640)
    assert len(source) == 3
    np.testing.assert_array_equal(source.read(2).values, stack[2])


def test_array_folder_and_nonfinite(tmp_path):
    folder = tmp_path / "arrays"
    folder.mkdir()
    first = np.full((10, 12), 30.0, np.float32)
    first[3, 4] = np.nan
    first[5, 6] = np.inf
    np.save(folder / "b.npy", first)
    np.save(folder / "a.npy", np.zeros((10, 12), np.float32))

    source = ArraySource(folder, unit="K")
    frame = source.read(1)

    assert source.sources[0].endswith("a.npy")
    assert frame.unit == "K"
    assert not frame.valid[3, 4]
    assert not frame.valid[5, 6]
    assert frame.valid.sum() == 118
    assert np.isfinite(frame.values).all()


def test_array_all_nan(tmp_path):
    np.save(tmp_path / "nan.npy", np.full((6, 6), np.nan))

    with pytest.raises(FrameError, match="nan.npy.* has no valid pixel"):
        ArraySource(tmp_path / "nan.npy").read(0)


def test_array_integer_needs_calibration(tmp_path):
    np.save(tmp_path / "counts.npy", np.zeros((6, 6), np.uint16))

    with pytest.raises(
        FrameError, match="contains uint16 levels, which need scale_per_level"
    ):
        ArraySource(tmp_path / "counts.npy", unit="C").read(0)


def test_uint16_offset_without_scale(data_dir):
    # Raw 16-bit counts: with offset alone each count would read as 1 K.
    source = ImageFolderSource(
        data_dir / "radiometric-samples" / "flirpy",
        pattern="example_radiometric.tiff",
        unit="K",
        offset=0.0,
    )

    with pytest.raises(FrameError) as error:
        source.read(0)

    assert "example_radiometric.tiff contains uint16 levels" in str(error.value)
    assert "(offset = 0 alone reads one level as 1 K)" in str(error.value)


def test_uint16_scale_without_offset(data_dir):
    source = ImageFolderSource(
        data_dir / "radiometric-samples" / "flirpy",
        pattern="example_radiometric.tiff",
        unit="K",
        scale_per_level=0.04,
    )

    frame = source.read(0)

    np.testing.assert_array_equal(frame.values, frame.raw * 0.04)
    assert frame.raw.dtype == np.uint16


def test_array_integer_calibrated(tmp_path):
    np.save(tmp_path / "counts.npy", np.full((2, 6, 6), 3000, np.uint16))

    frame = ArraySource(
        tmp_path / "counts.npy", scale_per_level=0.01, offset=-5.0
    ).read(1)

    np.testing.assert_allclose(frame.values, 25.0)
    assert frame.noise_sigma == pytest.approx(0.01 / np.sqrt(12))


def test_hdf5_stack_and_frame(tmp_path):
    path = tmp_path / "frames.h5"
    stack = np.random.default_rng(4).normal(25.0, 0.1, (3, 16, 20))
    with h5py.File(path, "w") as handle:
        handle["group/stack"] = stack
        handle["single"] = stack[0]

    source = HDF5Source(path, dataset="group/stack")
    single = HDF5Source(path, dataset="single")

    assert len(source) == 3
    np.testing.assert_array_equal(source.read(2).values, stack[2])
    assert source.sources[2].endswith("frames.h5:group/stack[2]")
    assert len(single) == 1
    np.testing.assert_array_equal(single.read(0).values, stack[0])


def test_hdf5_missing_dataset(tmp_path):
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as handle:
        handle["a"] = np.zeros((4, 4))
        for i in range(11):
            handle[f"group/c{i:02d}"] = np.zeros(3)

    message = (
        r"dataset 'b' not found in .*frames\.h5, which contains datasets 'a' "
        r"\(4, 4\), 'group/c00' \(3,\), .* 'group/c08' \(3,\) and 2 more; pass "
        r"one of them as dataset \(the recipe key frames\.dataset\)"
    )
    with pytest.raises(FrameError, match=message):
        HDF5Source(path, dataset="b")


def test_empty_folder(tmp_path):
    with pytest.raises(FrameError, match=r"no files match '\*.png' in .*empty"):
        (tmp_path / "empty").mkdir()
        ImageFolderSource(tmp_path / "empty")


def test_file_instead_of_folder(tmp_path):
    _write_frames(tmp_path / "frames", [np.zeros((4, 4), np.uint8)], ".png")
    image = tmp_path / "frames" / "f00.png"

    with pytest.raises(FrameError) as excinfo:
        ImageFolderSource(image)

    assert str(excinfo.value) == (
        f"frame path {image} is a file, not a folder; give the folder that "
        f"contains the frames, such as {tmp_path / 'frames'}, and a pattern "
        "that matches them"
    )


def test_no_matching_files(tmp_path):
    _write_frames(tmp_path / "frames", [np.zeros((4, 4), np.uint8)], ".png")

    with pytest.raises(FrameError, match=r"no files match '\*.tif'"):
        ImageFolderSource(tmp_path / "frames", pattern="*.tif")


def test_corrupt_file_in_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG garbage bytes" * 10)

    with pytest.raises(
        FrameError, match="could not decode .*broken.png: .*check the file"
    ):
        ImageFolderSource(folder).read(0)


def test_mask_of_wrong_size(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((20, 30), np.uint8)], ".png")
    cv2.imwrite(str(tmp_path / "roi.png"), np.ones((10, 30), np.uint8))

    source = ImageFolderSource(folder, valid_mask=tmp_path / "roi.png")

    with pytest.raises(
        MaskSizeError,
        match=r"key 'frames\.valid_mask': mask .*roi\.png is 10 x 30 px "
        r"\(height x width\) but frame .*f00\.png is 20 x 30 px; give a mask of "
        r"the frames' size",
    ):
        source.read(0)


def test_mask_mapping_without_match(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((8, 8), np.uint8)], ".png")

    source = ImageFolderSource(folder, valid_mask={"CAM1": "m1.png", "CAM2": "m2.png"})

    with pytest.raises(FrameError, match=r"mask key of \['CAM1', 'CAM2'\].*found none"):
        source.read(0)
    with pytest.raises(FrameError, match=r"; adjust the mapping frames\.valid_mask in"):
        source.read(0)


def test_unknown_palette_in_source(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((4, 4, 3), np.uint8)], ".png")

    with pytest.raises(FrameError, match="unknown palette 'ironbow'"):
        ImageFolderSource(folder, mode="palette", palette="ironbow")


def test_frames_in_another_palette_name_the_palette(tmp_path):
    # Inferno's colours 0-159, none within 40 of a jet colour (its oranges
    # from 171 to 218 are).
    inferno = palette_lut("inferno")
    image = inferno[np.arange(0, 160, 5)].reshape(4, 8, 3)[..., ::-1]  # BGR
    folder = _write_frames(tmp_path / "frames", [image], ".png")
    message = r"no pixel's colour is within frames.max_colour_distance of palette 'jet'"

    with pytest.raises(FrameError, match=message):
        ImageFolderSource(folder, mode="palette", palette="jet").read(0)
    assert (
        ImageFolderSource(folder, mode="palette", palette="inferno").read(0).valid.all()
    )


def test_palette_unit_needs_range(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((4, 4, 3), np.uint8)], ".png")

    with pytest.raises(FrameError) as error:
        ImageFolderSource(folder, mode="palette", palette="inferno", unit="C")

    assert str(error.value).startswith(
        "frames.unit is 'C', so frames.value_range must give the values [C] of "
        "the palette's bottom and top colours, as value_range: [low, high]; "
    )


def test_palette_mode_needs_palette(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((4, 4, 3), np.uint8)], ".png")

    with pytest.raises(
        FrameError, match=r"^frames\.mode: palette needs a palette name, e\.g\. "
    ):
        ImageFolderSource(folder, mode="palette")


def test_calibration_needs_temperature_unit(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((4, 4), np.uint8)], ".png")

    with pytest.raises(
        FrameError, match=r"read with frames\.unit: level; set frames\.unit: C or "
    ):
        ImageFolderSource(folder, unit="level", scale_per_level=0.1).read(0)


def test_index_out_of_range(tmp_path):
    folder = _write_frames(tmp_path / "frames", [np.zeros((4, 4), np.uint8)], ".png")

    with pytest.raises(IndexError, match="frame index 1 out of range for 1 frames"):
        ImageFolderSource(folder).read(1)


def test_colour_frames_in_greyscale_mode_name_the_key(tmp_path, caplog):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 200
    folder = _write_frames(tmp_path / "frames", [colour], ".png")

    with caplog.at_level("WARNING", logger="thermosynth.frames.sources"):
        frame = ImageFolderSource(folder).read(0)

    assert frame.raw.ndim == 2
    assert "f00.png has colour pixels; converting to luma" in caplog.text
    assert "set frames.mode: palette (with frames.palette)" in caplog.text


def test_grey_roi_mask_warns_once(tmp_path, caplog):
    images = [np.full((8, 8), 9, np.uint8)] * 2
    folder = _write_frames(tmp_path / "frames", images, ".png")
    roi = np.zeros((8, 8), np.uint8)
    roi[2:6, 2:6] = 255
    roi[1, 1] = 37
    cv2.imwrite(str(tmp_path / "roi.png"), roi)
    source = ImageFolderSource(folder, valid_mask=tmp_path / "roi.png")

    with caplog.at_level("WARNING", logger="thermosynth.frames.sources"):
        first, second = source.read(0), source.read(1)
    warnings = [r.getMessage() for r in caplog.records if "roi.png" in r.getMessage()]

    np.testing.assert_array_equal(first.valid, roi > 0)
    np.testing.assert_array_equal(second.valid, roi > 0)
    assert len(warnings) == 1
    assert (
        "roi.png (frames.valid_mask) contains values other than 0 and 255"
        in warnings[0]
    )
    assert "(or 1): 37;" in warnings[0]
    assert "threshold: value > 0" in warnings[0]
