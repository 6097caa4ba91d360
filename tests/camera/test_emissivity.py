"""Tests for thermosynth.camera.emissivity and per-pixel emissivity recording."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.camera import Camera, emissivity_map, record_rise
from thermosynth.camera.model import recording_base
from thermosynth.errors import RecipeError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.geometry.layout import Layout, Material

SHAPE = (16, 20)
# Layout cell (row, col) covers frame pixels rows 2 row + 1..2 and columns
# 2 col + 2..3: a scale of 2 and an offset of (2, 1) pixels.
HOMOGRAPHY = np.array([[2.0, 0.0, 2.5], [0.0, 2.0, 1.5], [0.0, 0.0, 1.0]])


def _layout() -> Layout:
    ny, nx = 6, 8
    tabs = np.zeros((ny, nx), bool)
    tabs[0:2, 1:5] = True
    tab_positive = np.zeros((ny, nx), bool)
    tab_positive[0:2, 1:3] = True
    casing = np.zeros((ny, nx), bool)
    casing[:, 7] = True
    return Layout(
        dx_mm=1.0,
        dy_mm=1.0,
        thickness_mm=1.0,
        material_id=np.zeros((ny, nx), np.int32),
        materials=(Material("cell", 1.0, 1.0, 1.0, 1e6),),
        cell_id=np.zeros((ny, nx), np.int32),
        regions={"tabs": tabs, "tab_positive": tab_positive, "casing": casing},
        name="test_grid",
    )


def _on_frame(grid: np.ndarray, outside: float) -> np.ndarray:
    """Place a layout-grid field on frame pixels as HOMOGRAPHY does."""
    out = np.full(SHAPE, outside)
    out[1:13, 2:18] = np.kron(grid, np.ones((2, 2)))
    return out


def _frame(unit: str) -> Frame:
    rng = np.random.default_rng(5)
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=0.0)
    raw = rng.integers(2000, 4000, size=SHAPE).astype(np.uint16)
    return Frame(
        raw=raw,
        values=encoding.decode(raw),
        unit=unit,
        valid=np.ones(SHAPE, bool),
        encoding=encoding,
        noise_sigma=0.05,
        source="synthetic.npy",
    )


def _rise() -> np.ndarray:
    return np.random.default_rng(6).uniform(0.0, 5.0, SHAPE)


def test_map_places_regions_by_nearest_neighbour():
    camera = Camera(emissivity_regions={"casing": 0.3})
    expected_grid = np.full((6, 8), 0.95)
    expected_grid[:, 7] = 0.3

    emissivity = emissivity_map(camera, _layout(), HOMOGRAPHY, SHAPE)

    assert emissivity is not None
    assert emissivity.dtype == np.float64
    assert np.array_equal(emissivity, _on_frame(expected_grid, 0.95))


def test_map_outside_layout_keeps_surface():
    camera = Camera(emissivity_surface=0.9, emissivity_regions={"casing": 0.3})
    emissivity = emissivity_map(camera, _layout(), HOMOGRAPHY, SHAPE)

    assert emissivity is not None
    assert np.all(emissivity[:, 18:] == 0.9)
    assert np.all(emissivity[13:, :] == 0.9)
    assert np.all(emissivity[:, 16:18][1:13] == 0.3)


def test_map_overlap_later_key_wins():
    later_positive = Camera(emissivity_regions={"tabs": 0.3, "tab_positive": 0.1})
    later_tabs = Camera(emissivity_regions={"tab_positive": 0.1, "tabs": 0.3})
    grid = np.full((6, 8), 0.95)
    grid[0:2, 1:5] = 0.3

    all_tabs = emissivity_map(later_tabs, _layout(), HOMOGRAPHY, SHAPE)
    assert np.array_equal(all_tabs, _on_frame(grid, 0.95))

    grid[0:2, 1:3] = 0.1
    positive = emissivity_map(later_positive, _layout(), HOMOGRAPHY, SHAPE)
    assert np.array_equal(positive, _on_frame(grid, 0.95))


def test_map_none_without_regions():
    assert emissivity_map(Camera(), _layout(), HOMOGRAPHY, SHAPE) is None


def test_map_rejects_unknown_region():
    camera = Camera(emissivity_regions={"tabs": 0.2, "bolts": 0.1})
    message = (
        r"camera\.emissivity_regions names region 'bolts'.*'test_grid'.*"
        r"casing, tab_positive, tabs"
    )
    with pytest.raises(RecipeError, match=message):
        emissivity_map(camera, _layout(), HOMOGRAPHY, SHAPE)


def test_camera_rejects_bad_region_emissivity():
    with pytest.raises(RecipeError, match=r"emissivity_regions\.tabs = 0.0"):
        Camera(emissivity_regions={"tabs": 0.0})


@pytest.mark.parametrize("unit", ["C", "level"])
def test_region_pixels_match_scalar_camera(unit):
    scale = 10.0 if unit == "level" else None
    regions = Camera(
        emissivity_surface=0.95,
        emissivity_setting=0.95,
        levels_per_kelvin=scale,
        emissivity_regions={"tabs": 0.1, "casing": 0.25},
    )
    frame, rise = _frame(unit), _rise()
    emissivity = emissivity_map(regions, _layout(), HOMOGRAPHY, SHAPE)
    assert emissivity is not None

    recorded = record_rise(
        regions, rise, frame, ambient_C=22.0, emissivity_map=emissivity
    )
    for value in (0.1, 0.25, 0.95):
        alone = Camera(emissivity_surface=value, levels_per_kelvin=scale)
        expected = record_rise(alone, rise, frame, ambient_C=22.0)
        at = emissivity == value
        assert at.any()
        assert np.array_equal(recorded[at], expected[at])


def test_low_emissivity_records_less():
    # On a frame at the reflected temperature, a small rise is recorded
    # scaled by emissivity_surface / emissivity_setting, to first order.
    camera = Camera(emissivity_regions={"tabs": 0.1})
    frame = _frame("C")
    frame = Frame(
        frame.raw, np.full(SHAPE, 22.0), "C", frame.valid, frame.encoding, 0.05, "flat"
    )
    emissivity = emissivity_map(camera, _layout(), HOMOGRAPHY, SHAPE)

    recorded = record_rise(
        camera, np.full(SHAPE, 2.0), frame, ambient_C=22.0, emissivity_map=emissivity
    )
    np.testing.assert_allclose(recorded[emissivity == 0.1], 2.0 * 0.1 / 0.95, rtol=1e-2)
    np.testing.assert_allclose(recorded[emissivity == 0.95], 2.0, rtol=1e-12)


@pytest.mark.parametrize("sigma_px", [0.0, 1.5])
def test_region_base_same_bits(sigma_px):
    camera = Camera(blur_sigma_px=sigma_px, emissivity_regions={"tabs": 0.1})
    frame = _frame("C")
    emissivity = emissivity_map(camera, _layout(), HOMOGRAPHY, SHAPE)
    base = recording_base(camera, frame, ambient_C=22.0, emissivity_map=emissivity)
    corner = np.zeros(SHAPE)
    corner[2:4, 5:7] = 3.0

    for rise in (_rise(), np.zeros(SHAPE), corner):
        plain = record_rise(
            camera, rise, frame, ambient_C=22.0, emissivity_map=emissivity
        )
        based = record_rise(camera, rise, frame, ambient_C=22.0, base=base)
        assert np.array_equal(based, plain)


def test_uniform_map_same_bits_as_scalar():
    camera = Camera(blur_sigma_px=1.2, emissivity_surface=0.7)
    frame, rise = _frame("C"), _rise()
    uniform = np.full(SHAPE, 0.7)

    scalar = record_rise(camera, rise, frame, ambient_C=22.0)
    mapped = record_rise(camera, rise, frame, ambient_C=22.0, emissivity_map=uniform)
    assert np.array_equal(mapped, scalar)


def test_regions_need_map():
    camera = Camera(emissivity_regions={"tabs": 0.1})
    with pytest.raises(RecipeError, match="recorded without an emissivity map"):
        record_rise(camera, _rise(), _frame("C"), ambient_C=22.0)
    with pytest.raises(RecipeError, match="recorded without an emissivity map"):
        recording_base(camera, _frame("C"), ambient_C=22.0)


def test_map_rejects_wrong_shape_and_values():
    camera, frame = Camera(), _frame("C")
    with pytest.raises(ValueError, match=r"emissivity_map has shape \(4, 4\)"):
        record_rise(
            camera, _rise(), frame, ambient_C=22.0, emissivity_map=np.ones((4, 4))
        )
    bad = np.full(SHAPE, 0.9)
    bad[3, 3] = 1.5
    with pytest.raises(RecipeError, match="1 invalid values, such as 1.5"):
        record_rise(camera, _rise(), frame, ambient_C=22.0, emissivity_map=bad)


def test_base_and_map_together_rejected():
    camera, frame = Camera(), _frame("C")
    base = recording_base(camera, frame, ambient_C=22.0)
    with pytest.raises(ValueError, match="both base and emissivity_map"):
        record_rise(
            camera,
            _rise(),
            frame,
            ambient_C=22.0,
            base=base,
            emissivity_map=np.full(SHAPE, 0.9),
        )
