"""Tests for thermosynth.physics.sources."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import LayoutError, RecipeError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.profiles import Constant, Ramp
from thermosynth.physics.sources import (
    cell_volume_m3,
    held_patch,
    hotspot,
    region_source,
)

STEEL = Material("steel", 15.0, 15.0, 15.0, 3.6e6)


def make_layout(ny=10, nx=20, *, dx_mm=1.0, dy_mm=0.5, thickness_mm=3.0):
    grid = np.zeros((ny, nx), dtype=int)
    return Layout(dx_mm, dy_mm, thickness_mm, grid, (STEEL,), grid - 1)


def test_cell_volume():
    layout = make_layout()
    assert cell_volume_m3(layout, 3) == pytest.approx(0.5e-9, rel=1e-15)


def test_hotspot_weights_normalised():
    layout = make_layout()
    source = hotspot(
        layout, x_mm=10.0, y_mm=2.5, radius_mm=2.0, power_W=3.0, layer=1, n_layers=3
    )
    volume = cell_volume_m3(layout, 3)
    assert source.weights_m3.shape == (3, 10, 20)
    assert (source.weights_m3 * volume).sum() == pytest.approx(1.0, rel=1e-12)
    assert np.count_nonzero(source.weights_m3[0]) == 0
    assert np.count_nonzero(source.weights_m3[2]) == 0
    assert source.power_W == Constant(3.0)


def test_hotspot_disc_cells():
    layout = make_layout()
    source = hotspot(layout, x_mm=10.0, y_mm=2.5, radius_mm=1.0, power_W=1.0)
    x, y = layout.cell_centres_mm()
    inside = (x[None, :] - 10.0) ** 2 + (y[:, None] - 2.5) ** 2 <= 1.0
    np.testing.assert_array_equal(source.weights_m3[0] > 0, inside)
    assert np.count_nonzero(inside) == 8


def test_hotspot_tiny_radius_uses_nearest_cell():
    layout = make_layout()
    source = hotspot(layout, x_mm=3.2, y_mm=1.1, radius_mm=0.0, power_W=1.0)
    rows, cols = np.nonzero(source.weights_m3[0])
    assert (rows.tolist(), cols.tolist()) == ([2], [3])


def test_hotspot_keeps_profile():
    layout = make_layout()
    ramp = Ramp(2.0, ramp_s=10.0)
    source = hotspot(layout, x_mm=1, y_mm=1, radius_mm=1, power_W=ramp)
    assert source.power_W is ramp


def test_hotspot_outside_layout():
    layout = make_layout()
    with pytest.raises(LayoutError, match=r"point \(25.0, 2.0\) mm lies outside"):
        hotspot(layout, x_mm=25.0, y_mm=2.0, radius_mm=1.0, power_W=1.0)


def test_hotspot_bad_layer():
    layout = make_layout()
    with pytest.raises(LayoutError, match="layer = 3 is invalid"):
        hotspot(layout, x_mm=1, y_mm=1, radius_mm=1, power_W=1, layer=3, n_layers=3)


def test_hotspot_bad_n_layers():
    layout = make_layout()
    with pytest.raises(RecipeError, match="n_layers = 0 is invalid"):
        hotspot(layout, x_mm=1, y_mm=1, radius_mm=1, power_W=1, n_layers=0)


def test_hotspot_bad_power():
    layout = make_layout()
    with pytest.raises(RecipeError, match="power_W = 'high' is invalid"):
        hotspot(layout, x_mm=1, y_mm=1, radius_mm=1, power_W="high")


def test_region_source_all_layers():
    layout = make_layout()
    region = np.zeros(layout.shape, dtype=bool)
    region[0, :4] = True
    source = region_source(layout, region, power_W=0.5, n_layers=2, name="tab")
    volume = cell_volume_m3(layout, 2)
    assert source.name == "tab"
    assert np.count_nonzero(source.weights_m3) == 8
    assert (source.weights_m3 * volume).sum() == pytest.approx(1.0, rel=1e-12)


def test_region_source_chosen_layer():
    layout = make_layout()
    region = np.ones(layout.shape, dtype=bool)
    source = region_source(layout, region, power_W=1.0, layers=[2], n_layers=3)
    assert np.count_nonzero(source.weights_m3[:2]) == 0
    assert np.all(source.weights_m3[2] > 0)


def test_region_source_shape_mismatch():
    layout = make_layout()
    with pytest.raises(LayoutError, match=r"region shape \(5, 5\) differs"):
        region_source(layout, np.ones((5, 5), dtype=bool), power_W=1.0)


def test_region_source_empty():
    layout = make_layout()
    with pytest.raises(LayoutError, match="region is empty"):
        region_source(layout, np.zeros(layout.shape, dtype=bool), power_W=1.0)


def test_held_patch_mask_and_profile():
    layout = make_layout()
    patch = held_patch(
        layout, x_mm=10, y_mm=2.5, radius_mm=1.0, temperature_C=60.0, n_layers=2
    )
    assert patch.mask.dtype == bool
    assert patch.mask.shape == (2, 10, 20)
    assert np.count_nonzero(patch.mask[0]) == 8
    assert np.count_nonzero(patch.mask[1]) == 0
    assert patch.temperature_C(5.0) == 60.0


def test_docstring_examples_run():
    import doctest

    import thermosynth.physics.sources as module

    assert doctest.testmod(module).failed == 0
