"""Tests of the explicit torch stencil against fast.py and exact solutions."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary
from thermosynth.physics.sources import HeldPatch, hotspot
from thermosynth.physics.stencil import (
    simulate_stencil,
    simulate_stencil_batch,
    stable_substeps,
)

CELL = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
BUSBAR = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
INSULATED = Boundary(h_top_W_m2K=0.0, h_bottom_W_m2K=0.0)


def plate(n: int = 24) -> Layout:
    grid = np.zeros((n, n), dtype=int)
    grid[:, n // 3 : n // 2] = 1
    d = 60.0 / n
    return Layout(d, d, 2.0, grid, (CELL, BUSBAR), grid - 1)


def spot(layout: Layout, x_mm: float = 20.0, n_layers: int = 1) -> list:
    return [
        hotspot(
            layout, x_mm=x_mm, y_mm=30.0, radius_mm=4.0, power_W=1.0, n_layers=n_layers
        )
    ]


@pytest.mark.parametrize("n_layers", [1, 3])
def test_stencil_matches_fast_small_dt(n_layers):
    layout = plate()
    sources = spot(layout, n_layers=n_layers)
    boundary = Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0)
    common = dict(boundary=boundary, n_layers=n_layers, duration_s=20.0)
    stencil = simulate_stencil(layout, sources, dt_s=1.0, **common)
    reference = simulate_fast(layout, sources, dt_s=0.005, **common)

    peak = reference.rise_all_K.max()
    difference = np.abs(stencil.rise_all_K - reference.rise_all_K).max()
    assert peak > 0.1
    assert difference <= 0.01 * peak


def test_stencil_beats_implicit_at_recipe_dt():
    layout = plate()
    sources = spot(layout)
    common = dict(boundary=Boundary(h_top_W_m2K=10.0), duration_s=20.0)
    stencil = simulate_stencil(layout, sources, dt_s=1.0, **common)
    implicit = simulate_fast(layout, sources, dt_s=1.0, **common)
    reference = simulate_fast(layout, sources, dt_s=0.005, **common)

    stencil_error = np.abs(stencil.rise_all_K - reference.rise_all_K).max()
    implicit_error = np.abs(implicit.rise_all_K - reference.rise_all_K).max()
    assert stencil_error < implicit_error


def test_stencil_insulated_energy_balance():
    layout = plate()
    result = simulate_stencil(
        layout, spot(layout), boundary=INSULATED, duration_s=10.0, dt_s=0.5
    )

    assert result.energy_in_J == pytest.approx(10.0, rel=1e-12)
    assert result.energy_lost_J == 0.0
    assert abs(result.energy_stored_J - result.energy_in_J) <= 1e-9 * 10.0


def test_stencil_newton_cooling_exact_discrete():
    grid = np.zeros((6, 5), dtype=int)
    layout = Layout(1.0, 1.0, 2.0, grid, (CELL,), grid - 1)
    boundary = Boundary(ambient_C=25.0, h_top_W_m2K=40.0)
    n_sub = stable_substeps(layout, boundary=boundary, dt_s=2.0, safety=0.5)
    result = simulate_stencil(
        layout,
        [],
        boundary=boundary,
        duration_s=10.0,
        dt_s=2.0,
        initial_C=35.0,
        safety=0.5,
    )

    # A uniform plate has no conduction, so each sub-step multiplies the
    # excess over ambient by (1 - dt g / rho_cp) exactly.
    g = 40.0 / 2e-3
    factor = 1.0 - (2.0 / n_sub) * g / CELL.rho_cp_J_m3K
    expected_rise = 10.0 * (factor ** (5 * n_sub) - 1.0)
    np.testing.assert_allclose(result.rise_K[-1], expected_rise, rtol=1e-12)


def test_stencil_batch_equals_single():
    layout = plate()
    batch = [spot(layout, x_mm=x) for x in (12.0, 30.0, 45.0)]
    common = dict(boundary=Boundary(h_top_W_m2K=10.0), duration_s=5.0, dt_s=1.0)
    together = simulate_stencil_batch(layout, batch, **common)

    for sources, result in zip(batch, together, strict=True):
        alone = simulate_stencil(layout, sources, **common)
        np.testing.assert_allclose(result.rise_all_K, alone.rise_all_K, rtol=1e-13)
        assert result.energy_in_J == pytest.approx(alone.energy_in_J, rel=1e-13)


def test_stencil_rejects_radiation():
    layout = plate(8)
    with pytest.raises(RecipeError, match="emissivity"):
        simulate_stencil(
            layout,
            [],
            boundary=Boundary(emissivity_top=0.9),
            duration_s=1.0,
            dt_s=0.5,
        )


def test_stencil_rejects_held_patch():
    layout = plate(8)
    mask = np.zeros((1, 8, 8), dtype=bool)
    mask[0, 3, 3] = True
    patch = HeldPatch(mask, lambda t: 80.0, "held")
    with pytest.raises(RecipeError, match="held patches"):
        simulate_stencil(layout, [patch], duration_s=1.0, dt_s=0.5)


def test_stencil_rejects_radiating_emissivity_map():
    layout = plate(8)
    emissivity = np.zeros(layout.shape)
    emissivity[2, 3] = 0.1
    boundary = Boundary(emissivity_top=0.0, emissivity_top_map=emissivity)
    with pytest.raises(RecipeError, match=r"emissivity is up to 0.1 \(top\)"):
        simulate_stencil(layout, [], boundary=boundary, duration_s=1.0, dt_s=0.5)
