"""Tests for thermosynth.frames.palettes, with a real inferno data set."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import PaletteEncoding
from thermosynth.frames.palettes import available_palettes, palette_lut
from thermosynth.frames.sources import ImageFolderSource

UNIQUE_PALETTES = [
    "inferno",
    "magma",
    "plasma",
    "hot",
    "cv2:jet",
    "cv2:inferno",
    "cv2:turbo",
]


@pytest.mark.parametrize("name", UNIQUE_PALETTES)
def test_palette_decode_every_level_exactly(name):
    lut = palette_lut(name)
    encoding = PaletteEncoding(lut, low=0.0, high=255.0)

    levels, distance = encoding.decode_levels(lut[None])

    np.testing.assert_array_equal(levels[0], np.arange(256))
    assert (distance == 0).all()


@pytest.mark.parametrize("name", ["gray", "viridis", "cv2:viridis", "cv2:hsv"])
def test_palette_with_repeats_round_trips(name):
    lut = palette_lut(name)
    encoding = PaletteEncoding(lut, low=0.0, high=1.0)

    np.testing.assert_array_equal(
        encoding.encode(encoding.decode(lut[None])), lut[None]
    )


def test_palette_lut_shape_and_ends():
    gray = palette_lut("gray")
    jet = palette_lut("cv2:jet")

    assert gray.shape == (256, 3)
    assert gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[[0, 255]], [[0, 0, 0], [255, 255, 255]])
    assert jet[0, 0] == 0  # jet starts dark blue: no red
    assert jet[0, 2] > 100


def test_palette_unknown_name_lists_names():
    with pytest.raises(
        FrameError, match="unknown palette 'cv2:ironbow'.*inferno.*cv2:jet"
    ):
        palette_lut("cv2:ironbow")
    with pytest.raises(FrameError, match="unknown palette 'nosuch'"):
        palette_lut("nosuch")
    with pytest.raises(
        FrameError,
        match=r"unknown palette 'infern' \(frames\.palette\); did you mean 'inferno'\?",
    ):
        palette_lut("infern")


def test_available_palettes_all_load():
    names = available_palettes()

    assert "inferno" in names
    assert "cv2:turbo" in names
    assert all(palette_lut(name).shape == (256, 3) for name in names)


@pytest.fixture(scope="module")
def inferno_source(data_dir):
    root = data_dir / "battery-station-inferno"
    masks = {
        cam: root / "camera_masks" / f"MASK_{cam}_thermal.png"
        for cam in ("CAM1", "CAM2")
    }
    return ImageFolderSource(
        root / "normal_masked", mode="palette", palette="inferno", valid_mask=masks
    )


def test_inferno_frames_round_trip(inferno_source):
    exact = total = 0
    worst = 0
    for index in range(0, len(inferno_source), 15):
        frame = inferno_source.read(index)
        encoded = frame.encoding.encode(frame.values)
        same = (encoded == frame.raw).all(axis=2)[frame.valid]
        levels_raw, _ = frame.encoding.decode_levels(frame.raw)
        levels_back, _ = frame.encoding.decode_levels(encoded)
        exact += int(same.sum())
        total += same.size
        worst = max(worst, int(np.abs(levels_back - levels_raw)[frame.valid].max()))

    assert total > 50 * 2000
    assert exact / total >= 0.99
    assert worst <= 1


def test_inferno_masks_follow_camera(inferno_source):
    cams = [("CAM1" in name) for name in inferno_source.sources[:20]]
    frame1 = inferno_source.read(cams.index(True))
    frame2 = inferno_source.read(cams.index(False))

    assert len(inferno_source) == 902
    assert frame1.unit == "level"
    assert 0.3 < frame1.valid.mean() < 0.8
    assert not np.array_equal(frame1.valid, frame2.valid)


def test_palette_typo_lists_few_close_names():
    with pytest.raises(FrameError) as raised:
        palette_lut("infernoo")
    message = str(raised.value)

    assert "did you mean 'inferno'? Other close names: 'cv2:inferno'." in message
    assert "from thermosynth.frames import available_palettes" in message
    # Names far from the typo, such as Accent, are no longer listed.
    assert "Accent" not in message
    assert len(message) < 400
