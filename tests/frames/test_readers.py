"""Tests for thermosynth.frames.readers."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.readers import non_binary_values, read_image, read_mask


@pytest.mark.parametrize(
    ("suffix", "dtype"),
    [
        (".png", np.uint8),
        (".png", np.uint16),
        (".tif", np.uint16),
        (".tif", np.float32),
    ],
)
def test_read_image_greyscale_exact(tmp_path, suffix, dtype):
    rng = np.random.default_rng(0)
    image = (rng.random((30, 40)) * 200).astype(dtype)
    path = tmp_path / f"frame{suffix}"
    cv2.imwrite(str(path), image)

    read = read_image(path)

    assert read.dtype == dtype
    assert read.shape == (30, 40)
    np.testing.assert_array_equal(read, image)


def test_read_image_colour_is_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 0] = 10
    bgr[..., 2] = 200
    cv2.imwrite(str(tmp_path / "c.png"), bgr)

    rgb = read_image(tmp_path / "c.png")

    assert rgb.shape == (4, 5, 3)
    assert (rgb[..., 0] == 200).all()
    assert (rgb[..., 2] == 10).all()


def test_read_image_drops_alpha(tmp_path):
    bgra = np.full((4, 5, 4), 7, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)

    assert read_image(tmp_path / "a.png").shape == (4, 5, 3)


def test_read_image_real_jpeg(data_dir):
    image = read_image(data_dir / "pv-modules-raptormaps" / "images" / "0.jpg")

    assert image.shape == (40, 24)
    assert image.dtype == np.uint8


def test_read_image_missing(tmp_path):
    with pytest.raises(FrameError, match="not found: .*nothing.png"):
        read_image(tmp_path / "nothing.png")


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 20])
def test_read_image_corrupt(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)

    with pytest.raises(FrameError, match="could not decode .*bad.png.*remove it"):
        read_image(path)


def test_read_image_npy_names_arrays_kind(data_dir):
    path = data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_AX8_celsius.npy"

    message = r"could not decode .*FLIR_AX8_celsius\.npy: .* frames\.kind: arrays"
    with pytest.raises(FrameError, match=message):
        read_image(path)


def test_read_image_hdf5_names_hdf5_kind(tmp_path):
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as file:
        file["frames"] = np.zeros((2, 4, 4))

    message = (
        r"could not decode .*frames\.h5: .* frames\.kind: hdf5 and frames\.dataset"
    )
    with pytest.raises(FrameError, match=message):
        read_image(path)


def test_read_image_truncated(tmp_path):
    image = (np.random.default_rng(1).random((50, 60)) * 255).astype(np.uint8)
    path = tmp_path / "cut.png"
    cv2.imwrite(str(path), image)
    path.write_bytes(path.read_bytes()[:300])

    with pytest.raises(FrameError, match="could not decode .*cut.png"):
        read_image(path)


def test_read_image_truncated_png_writes_nothing_to_stderr(tmp_path, capfd):
    image = (np.random.default_rng(1).random((50, 60)) * 255).astype(np.uint8)
    path = tmp_path / "cut.png"
    cv2.imwrite(str(path), image)
    path.write_bytes(path.read_bytes()[:-5])

    with pytest.raises(FrameError, match="could not decode .*cut.png"):
        read_image(path)

    assert capfd.readouterr().err == ""


def test_read_image_png_with_bytes_after_end(tmp_path):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "tail.png"
    cv2.imwrite(str(path), image)
    path.write_bytes(path.read_bytes() + b"trailing")

    np.testing.assert_array_equal(read_image(path), image)


def test_read_mask_any_channel_nonzero(tmp_path):
    mask = np.zeros((6, 8, 4), np.uint8)
    mask[..., 3] = 255
    mask[2, 3, 1] = 1
    cv2.imwrite(str(tmp_path / "m.png"), mask)

    read = read_mask(tmp_path / "m.png", shape=(6, 8))

    assert read.dtype == bool
    assert read.sum() == 1
    assert read[2, 3]


def test_read_mask_wrong_size(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.ones((6, 8), np.uint8))

    with pytest.raises(
        FrameError,
        match=r"m.png is 6 x 8 px \(height x width\) but the frame is 5 x 10 px",
    ):
        read_mask(tmp_path / "m.png", shape=(5, 10))


def test_read_image_corrupt_png_only_own_error(tmp_path, capfd):
    path = tmp_path / "broken.png"
    # A PNG signature followed by bytes that are no PNG chunk.
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    level = cv2.utils.logging.getLogLevel()

    with pytest.raises(FrameError, match="could not decode .*broken.png"):
        read_image(path)
    captured = capfd.readouterr()

    assert captured.err == ""
    assert captured.out == ""
    assert cv2.utils.logging.getLogLevel() == level


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([0, 255], np.uint8, []),
        ([0, 1], np.uint8, []),
        ([0, 65535], np.uint16, []),
        ([0, 37, 128, 255], np.uint8, [37, 128]),
        ([0, 255], np.uint16, [255]),
        ([0.0, 0.5], np.float32, []),
    ],
)
def test_non_binary_mask_values(values, dtype, expected):
    image = np.array(values, dtype=dtype).reshape(1, -1)

    assert non_binary_values(image) == expected
