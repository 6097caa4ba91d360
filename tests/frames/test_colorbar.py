"""Colour bars: read from a real FLIR screen export, and placed past frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from thermosynth.errors import ColorbarFitError, FrameError
from thermosynth.frames.colorbar import read_colorbar
from thermosynth.frames.encodings import PaletteEncoding
from thermosynth.frames.readers import read_image
from thermosynth.frames.sources import ImageFolderSource

# The bar of these exports spans rows 30..207 (row 208 is black), 25.0 C at the
# bottom and 50.0 C at the top.
BAR = {"x_px": (306, 312), "y_px": (30, 207), "bottom": 25.0, "top": 50.0}
# Overlays: spot reading, icons and clock; scale labels and bar; FLIR logo;
# crosshair.
OVERLAYS = [(0, 0, 320, 28), (276, 0, 320, 240), (0, 212, 64, 240), (84, 120, 122, 158)]


@pytest.fixture(scope="module")
def flir_rgb(data_dir):
    return read_image(data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png")


@pytest.fixture(scope="module")
def flir_source(data_dir):
    return ImageFolderSource(
        data_dir / "pouch-cell-flir-screen" / "id1_cha_1c",
        mode="colorbar",
        unit="C",
        colorbar=BAR,
        ignore_rects=OVERLAYS,
    )


def test_colorbar_runs_bottom_to_top(flir_rgb):
    lut = read_colorbar(flir_rgb, x_px=BAR["x_px"], y_px=BAR["y_px"])

    assert lut.dtype == np.uint8
    assert 150 <= lut.shape[0] <= 178
    assert lut[0].max() < 40  # near-black purple at 25 C
    assert lut[-1].min() > 240  # white at 50 C


def test_colorbar_rows_round_trip(flir_rgb):
    lut = read_colorbar(flir_rgb, x_px=BAR["x_px"], y_px=BAR["y_px"])
    encoding = PaletteEncoding(lut, low=25.0, high=50.0)

    levels, _ = encoding.decode_levels(lut[None])

    np.testing.assert_array_equal(levels[0], np.arange(lut.shape[0]))
    np.testing.assert_array_equal(
        encoding.encode(encoding.decode(lut[None])), lut[None]
    )


def test_colorbar_pixels_within_one_level(flir_rgb):
    lut = read_colorbar(flir_rgb, x_px=BAR["x_px"], y_px=BAR["y_px"])
    encoding = PaletteEncoding(lut, low=25.0, high=50.0)
    bar = flir_rgb[30:208, 306:313]
    row_colours = np.rint(np.median(bar.astype(float), axis=1)).astype(np.uint8)

    pixel_levels, _ = encoding.decode_levels(bar)
    row_levels, _ = encoding.decode_levels(row_colours[:, None, :])

    # The export is compressed, so single pixels carry colour noise.
    assert (np.abs(pixel_levels - row_levels) <= 1).mean() >= 0.95


def test_colorbar_cell_centre_temperature(flir_source):
    frame = flir_source.read(0)
    centre = frame.values[110:170, 60:150][frame.valid[110:170, 60:150]]

    assert frame.unit == "C"
    assert centre.size > 500
    assert 27.0 <= np.median(centre) <= 28.2
    assert 0.0 < frame.noise_sigma < 0.5


def test_colorbar_overlays_invalid(flir_source, flir_rgb):
    frame = flir_source.read(0)
    white = (flir_rgb.min(axis=2) > 180) & (np.ptp(flir_rgb, axis=2) < 30)

    assert white.sum() > 200
    assert not frame.valid[white].any()
    assert not frame.valid[30:208, 306:313].any()


def test_colorbar_off_colour_pixels_invalid(flir_rgb, tmp_path):
    encoding = PaletteEncoding(
        read_colorbar(flir_rgb, x_px=BAR["x_px"], y_px=BAR["y_px"]), low=25, high=50
    )
    grey = np.full((1, 1, 3), 136, np.uint8)  # the grey of the label boxes

    _, distance = encoding.decode(grey, return_distance=True)

    assert distance[0, 0] > 40.0


def test_colorbar_outside_frame(flir_rgb):
    with pytest.raises(
        FrameError, match=r"x \(306, 330\).*240 x 320 px \(height x width\) frame"
    ):
        read_colorbar(flir_rgb, x_px=(306, 330), y_px=(30, 207))


def test_colorbar_single_colour():
    flat = np.full((50, 20, 3), 80, np.uint8)

    with pytest.raises(FrameError, match="contains one colour only"):
        read_colorbar(flat, x_px=(2, 5), y_px=(3, 40))


def _bar_frames(folder, sizes_px):
    """Write one RGB frame per (height, width) with a grey ramp in columns 2..4."""
    folder.mkdir()
    for i, (height, width) in enumerate(sizes_px):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, 2:5] = np.linspace(250, 10, height, dtype=np.uint8)[:, None, None]
        cv2.imwrite(str(folder / f"f{i}.png"), image)
    return folder


def test_colorbar_past_every_frame_names_keys(tmp_path):
    folder = _bar_frames(tmp_path / "frames", [(20, 30)])
    bar = {"x_px": (2, 4), "y_px": (1, 25), "bottom": 20.0, "top": 40.0}
    source = ImageFolderSource(folder, mode="colorbar", unit="C", colorbar=bar)

    with pytest.raises(ColorbarFitError) as excinfo:
        source.read(0)

    assert str(excinfo.value) == (
        f"key 'frames.colorbar.y_px' = [1, 25] [px] lies outside frame "
        f"{folder / 'f0.png'}, which is 20 x 30 px (height x width); set "
        "frames.colorbar.y_px to rows within 0..19"
    )


def test_colorbar_past_one_smaller_frame(tmp_path):
    folder = _bar_frames(tmp_path / "frames", [(30, 40), (20, 3)])
    bar = {"x_px": (2, 4), "y_px": (1, 25), "bottom": 20.0, "top": 40.0}
    source = ImageFolderSource(folder, mode="colorbar", unit="C", colorbar=bar)
    source.read(0)

    with pytest.raises(FrameError) as excinfo:
        source.read(1)

    assert type(excinfo.value) is FrameError
    assert str(excinfo.value) == (
        "keys 'frames.colorbar.x_px' = [2, 4] and 'frames.colorbar.y_px' = "
        f"[1, 25] [px] lie outside frame {folder / 'f1.png'}, which is 20 x 3 px "
        "(height x width), while the frames read before it contain the bar; "
        "remove this frame or give it their size"
    )
