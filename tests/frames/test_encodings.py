"""Tests for thermosynth.frames.encodings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import (
    LinearEncoding,
    PaletteEncoding,
    describe_encoding,
    encoding_from_description,
)
from thermosynth.frames.palettes import palette_lut


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_linear_round_trip_all_levels(dtype):
    info = np.iinfo(dtype)
    raw = np.linspace(info.min, info.max, 4096).astype(dtype).reshape(64, 64)
    encoding = LinearEncoding(dtype, scale_per_level=0.013, offset=-273.15)

    np.testing.assert_array_equal(encoding.encode(encoding.decode(raw)), raw)


def test_linear_decode_applies_calibration():
    encoding = LinearEncoding(np.uint16, scale_per_level=0.04, offset=-40.0)
    raw = np.array([[0, 1000, 2000]], np.uint16)

    np.testing.assert_allclose(encoding.decode(raw), [[-40.0, 0.0, 40.0]])
    assert encoding.quantum == 0.04


def test_linear_encode_rounds_and_clips():
    encoding = LinearEncoding(np.uint8, scale_per_level=0.5, offset=10.0)
    values = np.array([[9.0, 10.24, 10.26, 500.0, np.nan]])

    np.testing.assert_array_equal(encoding.encode(values), [[0, 0, 1, 255, 0]])


def test_linear_float_keeps_precision():
    encoding = LinearEncoding(np.float32)
    values = np.array([[21.123456, 97.85394]])

    encoded = encoding.encode(values)

    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, values.astype(np.float32))
    assert encoding.quantum == 0.0


def test_linear_rejects_bad_scale():
    with pytest.raises(FrameError, match="scale_per_level must be a positive.*-1"):
        LinearEncoding(np.uint8, scale_per_level=-1.0)


def test_palette_levels_map_to_values():
    encoding = PaletteEncoding(palette_lut("inferno"), low=20.0, high=45.5)
    lut = palette_lut("inferno")[None, [0, 51, 255]]

    np.testing.assert_allclose(encoding.decode(lut), [[20.0, 25.1, 45.5]])
    assert encoding.quantum == pytest.approx(0.1)


def test_palette_encode_rounds_and_clips():
    lut = palette_lut("magma")
    encoding = PaletteEncoding(lut, low=0.0, high=255.0)
    values = np.array([[-5.0, 3.4, 3.6, 300.0, np.nan]])

    np.testing.assert_array_equal(encoding.encode(values), lut[None, [0, 3, 4, 255, 0]])


def test_palette_distance_marks_off_palette():
    encoding = PaletteEncoding(palette_lut("inferno"), low=0.0, high=1.0)
    pixels = np.array([[palette_lut("inferno")[100], [0, 255, 0]]], np.uint8)

    _, distance = encoding.decode(pixels, return_distance=True)

    assert distance[0, 0] == 0.0
    assert distance[0, 1] > 100.0


def test_palette_duplicate_colour_decodes_lowest():
    lut = np.array([[0, 0, 0], [9, 9, 9], [9, 9, 9], [20, 20, 20]], np.uint8)
    encoding = PaletteEncoding(lut, low=0.0, high=3.0)

    levels, _ = encoding.decode_levels(lut[None])

    np.testing.assert_array_equal(levels, [[0, 1, 1, 3]])


def test_palette_decodes_sequence_frames_like_stills():
    lut = palette_lut("inferno")
    encoding = PaletteEncoding(lut, low=20.0, high=45.5)
    rng = np.random.default_rng(3)
    frames = lut[rng.integers(0, 256, size=(4, 5, 6))]  # (T, H, W, 3)

    values = encoding.decode(frames)
    stills = np.stack([encoding.decode(frame) for frame in frames])

    assert values.shape == (4, 5, 6)
    np.testing.assert_array_equal(values, stills)
    np.testing.assert_array_equal(encoding.encode(values), frames)


@pytest.mark.parametrize("shape", [(3,), (4, 5, 4)])
def test_palette_rejects_pixels_without_rgb_axis(shape):
    encoding = PaletteEncoding(palette_lut("gray"), low=0.0, high=1.0)

    with pytest.raises(FrameError, match=r"shape \(H, W, 3\) or \(\.\.\., 3\)"):
        encoding.decode(np.zeros(shape, np.uint8))


def test_palette_rejects_16_bit_pixels():
    encoding = PaletteEncoding(palette_lut("gray"), low=0.0, high=1.0)

    with pytest.raises(FrameError, match="needs uint8 pixels or .*, got uint16"):
        encoding.decode(np.zeros((2, 2, 3), np.uint16))


def test_palette_decodes_whole_float_levels():
    lut = palette_lut("inferno")
    encoding = PaletteEncoding(lut, low=20.0, high=45.5)
    pixels = lut[None, [0, 51, 255]]

    floats = encoding.decode(pixels.astype(np.float32))

    np.testing.assert_array_equal(floats, encoding.decode(pixels))
    np.testing.assert_allclose(floats, [[20.0, 25.1, 45.5]])


@pytest.mark.parametrize("bad", [0.5, 256.0, -1.0, np.nan])
def test_palette_rejects_float_off_levels(bad):
    encoding = PaletteEncoding(palette_lut("inferno"), low=0.0, high=1.0)
    pixels = np.zeros((2, 2, 3), np.float32)
    pixels[1, 0, 2] = bad

    with pytest.raises(FrameError, match=rf"float32 pixels such as {bad}; pass"):
        encoding.decode(pixels)


def test_palette_rejects_bad_lut():
    with pytest.raises(FrameError, match=r"\(N, 3\) array.*\(4,\)"):
        PaletteEncoding(np.zeros(4, np.uint8), low=0.0, high=1.0)


def test_description_round_trip_linear():
    encoding = LinearEncoding(np.uint16, scale_per_level=0.04, offset=-40.0)

    built = encoding_from_description(describe_encoding(encoding), dtype=np.uint16)

    assert isinstance(built, LinearEncoding)
    assert built.dtype == np.uint16
    assert built.scale_per_level == 0.04
    assert built.offset == -40.0


def test_description_round_trip_named_palette():
    lut = palette_lut("cv2:jet")
    encoding = PaletteEncoding(lut, low=20.0, high=45.5, name="cv2:jet")
    description = describe_encoding(encoding)

    built = encoding_from_description(description, dtype=np.uint8, lut=lut)

    assert description["name"] == "cv2:jet"
    assert isinstance(built, PaletteEncoding)
    np.testing.assert_array_equal(built.lut, lut)
    assert (built.low, built.high, built.name) == (20.0, 45.5, "cv2:jet")
    assert repr(built) == "PaletteEncoding('cv2:jet', 256 colours, low=20.0, high=45.5)"


def test_description_of_unnamed_palette_has_no_name():
    encoding = PaletteEncoding(palette_lut("gray"), low=0.0, high=1.0)

    assert "name" not in describe_encoding(encoding)


def test_description_round_trip_colorbar_box():
    lut = palette_lut("gray")
    box = ((306, 312), (30, 207))
    encoding = PaletteEncoding(lut, low=25.0, high=50.0, colorbar_px=box)
    description = json.loads(json.dumps(describe_encoding(encoding)))

    built = encoding_from_description(description, dtype=np.uint8, lut=lut)

    assert description["colorbar_px"] == {"x_px": [306, 312], "y_px": [30, 207]}
    assert built.colorbar_px == box
    assert "colorbar_px" not in describe_encoding(PaletteEncoding(lut, low=0, high=1))


def test_description_palette_needs_matching_lut():
    description = describe_encoding(
        PaletteEncoding(palette_lut("inferno"), low=0.0, high=1.0)
    )

    with pytest.raises(FrameError, match="256 levels needs a lut .*got none"):
        encoding_from_description(description, dtype=np.uint8)
    with pytest.raises(FrameError, match="256 levels needs a lut .*got 4"):
        encoding_from_description(description, dtype=np.uint8, lut=np.zeros((4, 3)))


def test_description_unknown_kind_rejected():
    with pytest.raises(FrameError, match="encoding kind 'Custom' cannot be built"):
        encoding_from_description({"kind": "Custom"}, dtype=np.uint8)
