"""Through-thickness stacks of layers with their own thickness and material."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from thermosynth.errors import LayoutError, SimulationError
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.physics import runaway
from thermosynth.physics.adi import simulate_adi, suits
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.grid import conduction_matrix, layer_dz_m
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Ramp
from thermosynth.physics.runaway import SeparatorShort, simulate_runaway
from thermosynth.physics.sources import (
    VolumeSource,
    cell_volume_m3,
    hotspot,
    region_source,
)
from thermosynth.physics.stencil import simulate_stencil

CORE = Material("core", 20.0, 20.0, 1.0, 2.0e6)
SOFT = Material("soft", 0.8, 0.8, 0.5, 1.2e6)
CASE = Material("case", 200.0, 200.0, 200.0, 2.4e6)

# Thin metal walls around a core split in two and a soft layer: thicknesses
# 0.4, 1.0, 1.0, 1.0 and 0.4 mm, k_z 200, 1, 1, 0.5 and 200 W m-1 K-1.
STACK = (
    Layer(0.4, "case"),
    Layer(2.0, None, n=2),
    Layer(1.0, "soft"),
    Layer(0.4, "case"),
)
N_STACK = 5
DZ_M = np.array([0.4, 1.0, 1.0, 1.0, 0.4]) * 1e-3
K_Z = np.array([200.0, 1.0, 1.0, 0.5, 200.0])

LINEAR = Boundary(ambient_C=25.0, h_top_W_m2K=40.0, h_bottom_W_m2K=15.0)
RADIATING = Boundary(
    ambient_C=25.0,
    h_top_W_m2K=12.0,
    h_bottom_W_m2K=6.0,
    emissivity_top=0.9,
    emissivity_bottom=0.5,
)


def stacked_layout(shape=(2, 2), layers=STACK, *, name="stack"):
    """Return a core layout with ``layers``, and a soft inclusion past 2 rows."""
    grid = np.zeros(shape, dtype=int)
    if shape[0] > 2:
        grid[1:3, 2:4] = 1
    return Layout(
        1.0,
        1.0,
        sum(layer.thickness_mm for layer in layers),
        grid,
        (CORE, SOFT, CASE),
        np.zeros(shape, dtype=int),
        name=name,
        layers=layers,
    )


def series_rise_K(flux_W_m2, source_layer, boundary):
    """Return the steady rise of each layer for a source in one layer [K].

    The solvers apply the face loss in the outer cell, so the outer cells sit
    at the surface temperature. Each face between layers i and j adds the
    resistance dz_i / (2 k_i) + dz_j / (2 k_j) [m2 K W-1].
    """
    faces = DZ_M[:-1] / (2 * K_Z[:-1]) + DZ_M[1:] / (2 * K_Z[1:])
    up = faces[:source_layer].sum() + 1.0 / boundary.h_top_W_m2K
    down = faces[source_layer:].sum() + 1.0 / boundary.h_bottom_W_m2K
    source_rise = flux_W_m2 * up * down / (up + down)

    rise = np.empty(N_STACK)
    rise[source_layer] = source_rise
    for i in range(source_layer - 1, -1, -1):
        rise[i] = rise[i + 1] - source_rise / up * faces[i]
    for i in range(source_layer + 1, N_STACK):
        rise[i] = rise[i - 1] - source_rise / down * faces[i - 1]
    return rise


def test_layer_thickness_and_properties():
    layout = stacked_layout((4, 5))

    np.testing.assert_allclose(layer_dz_m(layout, N_STACK), DZ_M, rtol=1e-15)
    k_z = layout.layer_property_map("k_z_W_mK", N_STACK)
    assert k_z.shape == (N_STACK, 4, 5)
    assert np.all(k_z[0] == 200.0)
    assert np.all(k_z[3] == 0.5)
    np.testing.assert_array_equal(k_z[1], layout.property_map("k_z_W_mK"))
    assert layout.n_layers == N_STACK


def test_stack_thickness_must_sum():
    with pytest.raises(LayoutError, match=r"sum to 3\.8 mm but thickness_mm = 4"):
        Layout(1.0, 1.0, 4.0, np.zeros((2, 2), int), (CORE, SOFT, CASE),
               np.zeros((2, 2), int), layers=STACK)  # fmt: skip


def test_stack_sum_message_shows_difference():
    layers = (Layer(0.5, "case"), Layer(4.0000001))
    with pytest.raises(
        LayoutError, match=r"sum to 4\.5000001 mm but thickness_mm = 4\.5;"
    ):
        Layout(1.0, 1.0, 4.5, np.zeros((2, 2), int), (CORE, SOFT, CASE),
               np.zeros((2, 2), int), layers=layers)  # fmt: skip


def test_stack_region_message_without_regions():
    with pytest.raises(LayoutError, match=r"not one of its regions \(it has none\)"):
        stacked_layout(layers=(Layer(1.0, "case", region="rim"), Layer(1.0)))


def test_stack_material_must_exist():
    with pytest.raises(LayoutError, match="'steel' is not in its materials"):
        stacked_layout(layers=(Layer(1.0, "steel"), Layer(1.0)))


def test_stack_region_must_exist():
    with pytest.raises(LayoutError, match="layer region 'rim' is not one of its"):
        stacked_layout(layers=(Layer(1.0, "case", region="rim"), Layer(1.0)))


def test_layer_fills_only_its_region():
    grid = np.zeros((3, 3), dtype=int)
    rim = np.ones((3, 3), bool)
    rim[1, 1] = False
    layers = (Layer(0.5, "case", region="rim"), Layer(1.5))
    layout = Layout(
        1.0, 1.0, 2.0, grid, (CORE, CASE), grid, regions={"rim": rim}, layers=layers
    )

    k_z = layout.layer_property_map("k_z_W_mK", 2)
    assert np.all(k_z[0][rim] == 200.0)
    assert k_z[0, 1, 1] == 1.0
    assert np.all(k_z[1] == 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thickness_mm": 0.0}, "thickness_mm = 0.0 is invalid"),
        ({"thickness_mm": 1.0, "n": 0}, "n = 0 is invalid"),
        ({"thickness_mm": 1.0, "n": 1.5}, "n = 1.5 is invalid"),
        ({"thickness_mm": 1.0, "region": "rim"}, "region = 'rim' needs a material"),
        ({"thickness_mm": "1"}, "thickness_mm = '1' is a str; give a positive"),
        ({"thickness_mm": None}, "thickness_mm = None is a NoneType"),
    ],
)
def test_invalid_layer_raises(kwargs, message):
    with pytest.raises(LayoutError, match=message):
        Layer(**kwargs)


@pytest.mark.parametrize(
    "solver", [simulate, simulate_fast, simulate_adi, simulate_stencil]
)
def test_n_layers_must_match_stack(solver):
    layout = stacked_layout()
    source = region_source(layout, np.ones((2, 2), bool), power_W=1.0, n_layers=N_STACK)
    with pytest.raises(
        LayoutError, match="stack of 5 simulation layers, but n_layers = 3"
    ):
        solver(layout, [source], n_layers=3, duration_s=1.0, dt_s=1.0)


def test_source_n_layers_must_match_stack():
    layout = stacked_layout()
    with pytest.raises(
        LayoutError, match="stack of 5 simulation layers, but n_layers = 1"
    ):
        hotspot(layout, x_mm=1.0, y_mm=1.0, radius_mm=0.5, power_W=1.0)


def test_source_power_exact_in_thin_layer():
    layout = stacked_layout((4, 5))
    volume_m3 = cell_volume_m3(layout, N_STACK) * DZ_M / DZ_M.mean()
    for layer in range(N_STACK):
        source = hotspot(
            layout, x_mm=2.5, y_mm=2.0, radius_mm=1.2, power_W=1.0, layer=layer,
            n_layers=N_STACK,
        )  # fmt: skip
        total = (source.weights_m3 * volume_m3[:, None, None]).sum()
        assert total == pytest.approx(1.0, rel=1e-13)


@pytest.mark.parametrize("solver", ["fipy", "fast", "adi"])
def test_steady_series_profile(solver):
    layout = stacked_layout()
    source = region_source(
        layout, np.ones((2, 2), bool), power_W=0.05, layers=[2], n_layers=N_STACK
    )
    run = {"fipy": simulate, "fast": simulate_fast, "adi": simulate_adi}[solver]
    result = run(
        layout, [source], boundary=LINEAR, n_layers=N_STACK, duration_s=6000.0,
        dt_s=200.0,
    )  # fmt: skip

    flux_W_m2 = 0.05 / (2e-3 * 2e-3)
    expected = series_rise_K(flux_W_m2, 2, LINEAR)
    rise = result.rise_all_K[-1]
    assert expected.max() > 10.0
    # Uniform in-plane, so every column is the 1D profile.
    for row, column in np.ndindex(2, 2):
        np.testing.assert_allclose(
            rise[:, row, column], expected, rtol=0, atol=1e-8 * expected.max()
        )


# Ramp to 0.4 W over 5 s, then held: 1 J + 6 J in 20 s.
RAMP_W = Ramp(0.4, ramp_s=5.0)


def transient(solver, layout, boundary, n_layers, *, power_W=RAMP_W, **options):
    """Run ``solver`` with an off-centre hotspot in the second layer for 20 s.

    The stencil takes each step's power at its end, so it gets a constant
    power here: a ramp would lead by half a step.
    """
    if solver is simulate_stencil:
        power_W = 0.35
    source = hotspot(
        layout, x_mm=1.5, y_mm=2.5, radius_mm=1.0, power_W=power_W, layer=1,
        n_layers=n_layers,
    )  # fmt: skip
    return solver(
        layout, [source], boundary=boundary, n_layers=n_layers, duration_s=20.0,
        output_times_s=[5.0, 10.0, 20.0], **options,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("solver", "boundary", "rel"),
    [
        (simulate, RADIATING, 1e-9),
        (simulate_fast, RADIATING, 1e-10),
        (simulate_adi, RADIATING, 1e-10),
        (simulate_stencil, LINEAR, 1e-10),
    ],
)
def test_energy_balance_uneven_layers(solver, boundary, rel):
    layout = stacked_layout((5, 6))
    result = transient(solver, layout, boundary, N_STACK, dt_s=0.5)

    assert result.energy_in_J == pytest.approx(7.0, rel=1e-12)
    assert result.energy_lost_J > 0.01 * result.energy_in_J
    books = result.energy_stored_J + result.energy_lost_J
    assert books == pytest.approx(result.energy_in_J, rel=rel)


def _middle_hotspot(layout: Layout) -> VolumeSource:
    """Return a 0.4 W hot spot in the stack's second simulation layer."""
    return hotspot(
        layout, x_mm=1.5, y_mm=2.5, radius_mm=1.0, power_W=0.4, layer=1,
        n_layers=N_STACK,
    )  # fmt: skip


def test_runaway_energy_balance_uneven_layers():
    layout = stacked_layout((5, 6))
    source = _middle_hotspot(layout)
    result = simulate_runaway(
        layout, triggers=[source], boundary=RADIATING, n_layers=N_STACK,
        duration_s=20.0, dt_s=0.5,
    )  # fmt: skip

    assert result.energy_in_J == pytest.approx(8.0, rel=1e-12)
    books = result.energy_stored_J + result.energy_lost_J
    balance = result.energy_in_J + result.energy_released_J
    assert books == pytest.approx(balance, rel=1e-9)


def test_solvers_agree_on_uneven_layers():
    layout = stacked_layout((5, 6))
    reference = transient(simulate, layout, RADIATING, N_STACK, dt_s=0.1)
    fast = transient(simulate_fast, layout, RADIATING, N_STACK, dt_s=0.1)
    adi = transient(simulate_adi, layout, RADIATING, N_STACK, dt_s=0.1)
    fine = transient(simulate_fast, layout, LINEAR, N_STACK, power_W=0.35, dt_s=0.005)
    stencil = transient(simulate_stencil, layout, LINEAR, N_STACK, dt_s=0.5)

    peak_K = reference.rise_all_K.max()
    assert peak_K > 1.0
    # Same implicit Euler steps as the reference.
    assert np.abs(fast.rise_all_K - reference.rise_all_K).max() <= 1e-8 * peak_K
    # Splitting error of O(dt**2) per step. At dt_s = 0.5 the ramp's start
    # gave ADI 2.4 times implicit Euler's error of 1.6 % of the peak against
    # dt_s = 0.005, where equal layers of the same materials gave 1.9 times.
    assert np.abs(adi.rise_all_K - reference.rise_all_K).max() <= 0.01 * peak_K
    # Forward and implicit Euler agree to the implicit step's time error.
    fine_peak_K = fine.rise_all_K.max()
    assert np.abs(stencil.rise_all_K - fine.rise_all_K).max() <= 0.01 * fine_peak_K


def test_runaway_agrees_with_fast_when_cold():
    layout = stacked_layout((5, 6))
    source = _middle_hotspot(layout)
    options = dict(boundary=LINEAR, n_layers=N_STACK, duration_s=20.0, dt_s=0.5)
    # A loose step limit keeps the trigger from cutting the runaway solver's
    # steps, so both solvers take the same 0.5 s steps.
    runaway = simulate_runaway(
        layout, triggers=[source], max_dT_per_step_K=1e3, **options
    )
    fast = simulate_fast(layout, [source], **options)

    # Near 25 C the reactions release a negligible amount of heat.
    peak_K = fast.rise_all_K.max()
    assert peak_K > 1.0
    error_K = np.abs(runaway.rise_all_K[-1] - fast.rise_all_K[-1]).max()
    assert error_K <= 1e-4 * peak_K


def test_uneven_conduction_conserves_heat():
    layout = stacked_layout((4, 5))
    matrix = conduction_matrix(layout, (N_STACK, 4, 5))
    volume = np.repeat(DZ_M, 20)

    # Heat leaving one cell enters its neighbours: V K sums to 0 per column.
    np.testing.assert_allclose(volume @ matrix.toarray(), 0.0, atol=1e-9)
    assert abs(matrix - matrix.T).max() > 1.0  # uneven layers: not symmetric


SOLVERS = [
    (simulate, RADIATING),
    (simulate_fast, RADIATING),
    (simulate_adi, RADIATING),
    (simulate_stencil, LINEAR),
]


@pytest.mark.parametrize(("solver", "boundary"), SOLVERS)
@pytest.mark.parametrize(
    "layers",
    [(Layer(3.0, None, n=3),), (Layer(1.0, "core"),) * 3],
    ids=["in-plane", "named"],
)
def test_even_stack_equals_no_stack(solver, boundary, layers):
    grid = np.zeros((4, 4), dtype=int)
    plain = Layout(1.0, 1.0, 3.0, grid, (CORE, SOFT, CASE), grid, name="plain")
    stacked = replace(plain, layers=layers)

    expected = transient(solver, plain, boundary, 3, dt_s=0.5)
    result = transient(solver, stacked, boundary, 3, dt_s=0.5)

    peak_K = expected.rise_all_K.max()
    np.testing.assert_allclose(
        result.rise_all_K, expected.rise_all_K, rtol=0, atol=1e-11 * peak_K
    )
    for key in ("energy_in_J", "energy_stored_J", "energy_lost_J"):
        assert getattr(result, key) == pytest.approx(getattr(expected, key), rel=1e-11)


def test_in_plane_mask_and_layers():
    grid = np.zeros((3, 3), dtype=int)
    rim = np.ones((3, 3), bool)
    rim[1, 1] = False
    layers = (
        Layer(0.5, "case", region="rim"),
        Layer(1.0, None, n=2),
        Layer(0.5, "soft"),
    )
    layout = Layout(
        1.0, 1.0, 2.0, grid, (CORE, SOFT, CASE), grid, regions={"rim": rim},
        layers=layers,
    )  # fmt: skip

    mask = layout.in_plane_mask(4)
    assert mask.shape == (4, 3, 3)
    np.testing.assert_array_equal(mask[0], ~rim)
    assert mask[1:3].all()
    assert not mask[3].any()
    np.testing.assert_array_equal(layout.in_plane_layers(4), [1, 2])


def test_in_plane_without_stack_or_map():
    grid = np.zeros((2, 2), dtype=int)
    plain = Layout(1.0, 1.0, 2.0, grid, (CORE, CASE), grid)
    named = replace(plain, layers=(Layer(1.0, "case"), Layer(1.0, "core")))

    assert plain.in_plane_mask(3).all()
    np.testing.assert_array_equal(plain.in_plane_layers(3), [0, 1, 2])
    assert not named.in_plane_mask(2).any()
    np.testing.assert_array_equal(named.in_plane_layers(2), [0, 1])
    with pytest.raises(LayoutError, match="stack of 2 simulation layers"):
        named.in_plane_mask(3)


# Insulated plate at 180 C, where the reactions release heat quickly: a
# 0.8 mm aluminium wall over a 3 mm electrode stack of two layers, or the
# stack alone.
ALU = Material("alu", 154.0, 154.0, 154.0, 2.44e6)
ELECTRODES = Material("electrodes", 26.6, 26.6, 0.52, 2.4e6)
WALL_AND_STACK = (Layer(0.8, "alu"), Layer(3.0, None, n=2))


def hot_run(layers, n_layers, **options):
    grid = np.zeros((4, 4), dtype=int)
    thickness_mm = sum(layer.thickness_mm for layer in layers)
    layout = Layout(
        2.0, 2.0, thickness_mm, grid, (ELECTRODES, ALU), grid, layers=layers
    )
    return simulate_runaway(
        layout, boundary=Boundary(25.0, 0.0, 0.0), n_layers=n_layers,
        duration_s=2.0, dt_s=0.1, initial_C=180.0, **options,
    )  # fmt: skip


def test_runaway_wall_layer_does_not_react():
    walled = hot_run(WALL_AND_STACK, 3)
    bare = hot_run(WALL_AND_STACK[1:], 2)

    # Were the wall to react, it would release 3.8 / 3.0 times as much.
    ratio = walled.energy_released_J / bare.energy_released_J
    assert 0.95 < ratio <= 1.0
    rise = walled.rise_all_K[-1].mean(axis=(1, 2))
    assert rise[0] < 0.5 * rise[1]
    books = walled.energy_stored_J + walled.energy_lost_J
    assert books == pytest.approx(walled.energy_released_J, rel=1e-9)


def test_separator_short_skips_wall_layer(monkeypatch):
    shorted = []
    original = runaway._RunawayModel._shorted_cells

    def recording(model, cell, radius):
        where = original(model, cell, radius)
        shorted.append(np.unravel_index(where, model.shape)[0])
        return where

    monkeypatch.setattr(runaway._RunawayModel, "_shorted_cells", recording)
    short = SeparatorShort(onset_C=150.0, energy_J=10.0, duration_s=1.0)
    result = hot_run(WALL_AND_STACK, 3, separator_short=short)

    assert result.short_s[0] == 0.0
    assert len(shorted) == 1
    np.testing.assert_array_equal(np.unique(shorted[0]), [1, 2])


def test_runaway_needs_cells_in_in_plane_layers():
    with pytest.raises(LayoutError, match="no battery cell .* in a layer of its"):
        hot_run((Layer(0.8, "alu"), Layer(3.0, "electrodes")), 2)


def walled_plate(wall_mm: float, wall: str | None = "case") -> Layout:
    """Return a 20 x 30 plate, 27 mm thick, with a wall layer on each face."""
    grid = np.zeros((20, 30), dtype=int)
    layers = (
        Layer(wall_mm, wall),
        Layer(27.0 - 2 * wall_mm, n=8),
        Layer(wall_mm, wall),
    )
    return Layout(3.0, 3.0, 27.0, grid, (CORE, SOFT, CASE), grid, layers=layers)


def test_adi_does_not_suit_named_layers():
    options = dict(boundary=LINEAR, n_layers=10, dt_s=10.0)

    assert not suits(walled_plate(0.8), [], **options)
    assert suits(walled_plate(0.8, wall=None), [], **options)


def test_adi_rejects_too_many_substeps():
    layout = walled_plate(1e-6)
    with pytest.raises(
        SimulationError,
        match=r"needs \d+ sub-steps, more than MAX_DIRECT_SUBSTEPS = 1000, .*; "
        r"use simulate_fast, or dt_s <= ",
    ):
        simulate_adi(layout, [], boundary=LINEAR, n_layers=10, duration_s=20.0,
                     dt_s=10.0)  # fmt: skip
