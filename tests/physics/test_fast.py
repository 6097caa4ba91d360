"""Tests for thermosynth.physics.fast against the FiPy reference and exact steps."""

from __future__ import annotations

import dataclasses
import doctest
import os
import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import thermosynth.physics.fast as fast
from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.fast import simulate_batch, simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Ramp
from thermosynth.physics.sources import (
    VolumeSource,
    cell_volume_m3,
    held_patch,
    hotspot,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")

INSULATED = Boundary(h_top_W_m2K=0.0)

RADIATING = Boundary(
    ambient_C=25.0,
    h_top_W_m2K=10.0,
    h_bottom_W_m2K=5.0,
    emissivity_top=0.9,
    emissivity_bottom=0.5,
)

# Anisotropic in-plane and through the thickness, and 200 times apart in k_x.
BUSBAR = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
CELL = Material("cell", 1.0, 30.0, 0.5, 2.0e6)


def two_material_layout():
    """Return a 32 x 24 grid of 0.5 mm cells: a cell stack crossed by busbars."""
    grid = np.zeros((24, 32), dtype=int)
    grid[:, 10:20] = 1
    grid[5:8, :] = 1
    return Layout(0.5, 0.5, 2.0, grid, (BUSBAR, CELL), grid - 1)


def shared_case(layout, *, x_mm=6.0, power_W=2.0):
    """Return a ramped hotspot in the bottom layer and a held top patch."""
    source = hotspot(
        layout,
        x_mm=x_mm,
        y_mm=6.0,
        radius_mm=1.5,
        power_W=Ramp(power_W, ramp_s=2.0),
        layer=1,
        n_layers=2,
    )
    patch = held_patch(
        layout, x_mm=12.0, y_mm=9.0, radius_mm=1.0, temperature_C=60.0, n_layers=2
    )
    return [source, patch]


def uniform_plate(ny=4, nx=5, *, thickness_mm=2.0):
    material = Material("unit", 1.0, 1.0, 1.0, 1e6)
    grid = np.zeros((ny, nx), dtype=int)
    return Layout(1.0, 1.0, thickness_mm, grid, (material,), grid - 1)


def test_fast_matches_fipy_reference():
    layout = two_material_layout()
    options = dict(
        boundary=RADIATING,
        n_layers=2,
        duration_s=5.0,
        dt_s=0.25,
        output_times_s=[1.0, 2.5, 5.0],
    )
    sources = shared_case(layout)

    reference = simulate(layout, sources, **options)
    result = simulate_fast(layout, sources, **options)

    # Both solvers refine to a residual scaled row by row, so they agree far
    # inside the 1 % required of a fast solver.
    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert peak_K > 30.0
    assert error_K <= 1e-8 * peak_K
    assert result.energy_in_J == pytest.approx(reference.energy_in_J, rel=1e-2)
    assert result.energy_lost_J == pytest.approx(reference.energy_lost_J, rel=1e-2)
    np.testing.assert_array_equal(result.rise_K, result.rise_all_K[:, 0])


def test_fast_matches_fipy_without_held_patch():
    # Without penalty rows both solvers meet the same residual on the same
    # steps, so they agree far inside the 1 % bound. With a held patch the
    # reference stops refining early, by up to about 0.1 % of the peak.
    layout = two_material_layout()
    options = dict(boundary=RADIATING, n_layers=2, duration_s=5.0, dt_s=0.25)
    sources = shared_case(layout)[:1]

    reference = simulate(layout, sources, **options)
    result = simulate_fast(layout, sources, **options)

    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert error_K <= 1e-9 * peak_K
    assert result.energy_in_J == pytest.approx(reference.energy_in_J, rel=1e-12)
    assert result.energy_lost_J == pytest.approx(reference.energy_lost_J, rel=1e-9)


def test_fast_matches_fipy_with_short_steps():
    # An output time off the dt grid gives steps of 0.1 s and 0.15 s, which
    # the reference refines with the LU of a 0.25 s step.
    layout = two_material_layout()
    options = dict(
        boundary=RADIATING,
        n_layers=2,
        duration_s=5.0,
        dt_s=0.25,
        output_times_s=[1.0, 2.6, 5.0],
    )
    sources = shared_case(layout)

    reference = simulate(layout, sources, **options)
    result = simulate_fast(layout, sources, **options)

    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert error_K <= 1e-8 * peak_K


def test_energy_conserved_when_insulated():
    layout = two_material_layout()
    result = simulate_fast(
        layout,
        shared_case(layout),
        boundary=INSULATED,
        n_layers=2,
        duration_s=5.0,
        dt_s=0.25,
        output_times_s=[1.0, 2.6],
    )

    assert result.energy_lost_J == 0.0
    assert result.energy_in_J > 1.0
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-9)


@pytest.mark.parametrize("mapped", [False, True])
def test_energy_balance_with_radiation(mapped):
    layout = two_material_layout()
    boundary = mapped_boundary(layout) if mapped else RADIATING
    result = simulate_fast(
        layout,
        shared_case(layout),
        boundary=boundary,
        n_layers=2,
        duration_s=20.0,
        dt_s=0.5,
    )

    balance = result.energy_stored_J + result.energy_lost_J
    assert result.energy_lost_J > 0.01 * result.energy_in_J
    assert balance == pytest.approx(result.energy_in_J, rel=1e-9)


def test_source_energy_is_the_power_integral():
    layout = two_material_layout()
    source = shared_case(layout)[0]
    result = simulate_fast(
        layout, [source], boundary=INSULATED, n_layers=2, duration_s=3.0, dt_s=0.75
    )

    # A 2 W ramp over 2 s, then 2 W for 1 s; the corner falls mid-step.
    expected_J = 2.0 * 2.0 / 2 + 2.0 * 1.0
    assert result.energy_in_J == pytest.approx(expected_J, rel=1e-12)


# A uniform field feels no conduction, so ADI's split step equals implicit
# Euler's exactly there, and both solvers must match the same recursion.
UNIFORM_SOLVERS = pytest.mark.parametrize(
    "solve", [simulate_fast, simulate_adi], ids=["fast", "adi"]
)


@UNIFORM_SOLVERS
def test_newton_cooling_matches_discrete_steps(solve):
    layout = uniform_plate()
    h, dt, ambient, initial = 50.0, 2.0, 20.0, 80.0
    times = np.array([10.0, 20.0, 40.0])

    result = solve(
        layout,
        [],
        boundary=Boundary(ambient_C=ambient, h_top_W_m2K=h),
        duration_s=40.0,
        dt_s=dt,
        output_times_s=times,
        initial_C=initial,
    )

    # Each implicit Euler step divides the excess by 1 + dt h / (rho_cp dz).
    decay = 1.0 + dt * h / (1e6 * 2e-3)
    expected = (initial - ambient) * decay ** -(times / dt)
    excess = initial + result.rise_K - ambient
    np.testing.assert_allclose(
        excess, expected[:, None, None] * np.ones((4, 5)), rtol=1e-12
    )


@UNIFORM_SOLVERS
def test_radiative_cooling_matches_lagged_steps(solve):
    layout = uniform_plate(thickness_mm=0.5)
    ambient, initial, dt, n_steps = 20.0, 300.0, 1.0, 30
    boundary = Boundary(ambient_C=ambient, h_top_W_m2K=5.0, emissivity_top=1.0)

    result = solve(
        layout,
        [],
        boundary=boundary,
        duration_s=dt * n_steps,
        dt_s=dt,
        initial_C=initial,
    )

    # Each step linearises radiation about the temperature of the step before.
    T, Ta_K, c = initial, ambient + 273.15, 1e6 * 0.5e-3 / dt
    for _ in range(n_steps):
        T_K = T + 273.15
        h = 5.0 + 5.670374419e-8 * (T_K**2 + Ta_K**2) * (T_K + Ta_K)
        T = (c * T + h * ambient) / (c + h)
    # Each step is solved to a 1e-12 residual, and 30 of them add up.
    assert initial - T > 100.0
    np.testing.assert_allclose(initial + result.rise_K[-1], T, rtol=1e-10)


def test_refactorising_matches_refinement(monkeypatch):
    layout = two_material_layout()
    options = dict(boundary=RADIATING, n_layers=2, duration_s=10.0, dt_s=0.5)
    sources = shared_case(layout, power_W=4.0)

    monkeypatch.setattr(fast, "_REFACTOR_DRIFT", np.inf)
    frozen = simulate_fast(layout, sources, **options)
    monkeypatch.setattr(fast, "_REFACTOR_DRIFT", 0.0)
    refactorised = simulate_fast(layout, sources, **options)

    peak_K = np.abs(refactorised.rise_all_K).max()
    error_K = np.abs(frozen.rise_all_K - refactorised.rise_all_K).max()
    assert peak_K > 50.0
    assert error_K <= 1e-10 * peak_K


def test_held_patch_follows_its_temperature():
    layout = two_material_layout()
    sources = shared_case(layout)
    result = simulate_fast(
        layout, sources, boundary=RADIATING, n_layers=2, duration_s=2.0, dt_s=0.5
    )

    held = sources[1].mask
    rise_K = result.rise_all_K[-1][held]
    np.testing.assert_allclose(rise_K, 60.0 - 25.0, atol=1e-4)


def test_batch_equals_one_at_a_time():
    layout = two_material_layout()
    sources = shared_case(layout)
    batch = [sources, sources[:1], shared_case(layout, x_mm=3.0, power_W=1.0), []]
    options = dict(
        boundary=Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0),
        n_layers=2,
        duration_s=3.0,
        dt_s=0.25,
        output_times_s=[1.0, 2.6, 3.0],
    )

    results = simulate_batch(layout, batch, **options)

    assert len(results) == len(batch)
    for scenario, result in zip(batch, results, strict=True):
        single = simulate_fast(layout, scenario, **options)
        np.testing.assert_allclose(
            result.rise_all_K, single.rise_all_K, rtol=0, atol=1e-12
        )
        assert result.energy_in_J == pytest.approx(single.energy_in_J, rel=1e-12)
        assert result.energy_stored_J == pytest.approx(
            single.energy_stored_J, rel=1e-12
        )


def test_batch_with_radiation_equals_one_at_a_time():
    layout = two_material_layout()
    batch = [shared_case(layout), shared_case(layout, x_mm=3.0, power_W=8.0)]
    options = dict(boundary=RADIATING, n_layers=2, duration_s=3.0, dt_s=0.25)

    results = simulate_batch(layout, batch, **options)

    # The batch shares one radiation reference, so refinement takes other
    # passes than alone. Both reach the 1e-12 residual.
    for scenario, result in zip(batch, results, strict=True):
        single = simulate_fast(layout, scenario, **options)
        peak_K = np.abs(single.rise_all_K).max()
        error_K = np.abs(result.rise_all_K - single.rise_all_K).max()
        assert error_K <= 1e-10 * peak_K


def test_batch_failure_stops_one_scenario():
    layout = uniform_plate()
    weights = np.ones((1, 4, 5)) / (20 * cell_volume_m3(layout, 1))
    bad = VolumeSource(weights, lambda t: float("nan"), "broken")
    good = VolumeSource(weights, lambda t: 1.0, "steady")

    with pytest.warns(
        RuntimeWarning, match="scenario 0: temperature became non-finite"
    ):
        results = simulate_batch(
            layout, [[bad], [good]], duration_s=1.0, dt_s=0.5, on_failure="warn"
        )

    assert np.all(np.isnan(results[0].rise_K))
    assert np.isnan(results[0].energy_stored_J)
    assert np.all(np.isfinite(results[1].rise_K))


def test_non_finite_power_raises():
    layout = uniform_plate()
    weights = np.ones((1, 4, 5)) / (20 * cell_volume_m3(layout, 1))
    bad = VolumeSource(weights, lambda t: float("inf"), "broken")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(SimulationError, match="temperature became non-finite"):
            simulate_fast(layout, [bad], duration_s=1.0, dt_s=0.5)


def test_empty_batch_raises():
    with pytest.raises(RecipeError, match="batch is empty"):
        simulate_batch(uniform_plate(), [], duration_s=1.0, dt_s=0.5)


def test_bad_weights_shape_raises():
    layout = uniform_plate()
    source = hotspot(layout, x_mm=2.0, y_mm=2.0, radius_mm=1.0, power_W=1.0)
    with pytest.raises(LayoutError, match=r"differs from \(n_layers, ny, nx\)"):
        simulate_batch(layout, [[], [source]], n_layers=2, duration_s=1.0, dt_s=0.5)


def test_bad_dt_raises():
    with pytest.raises(RecipeError, match="dt_s = 0 is invalid"):
        simulate_fast(uniform_plate(), [], duration_s=1.0, dt_s=0)


def test_progress_called_per_step():
    calls = []
    simulate_fast(
        uniform_plate(),
        [],
        duration_s=1.0,
        dt_s=0.25,
        progress=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_docstring_examples_run():
    failures, tried = doctest.testmod(fast, extraglobs={"np": np})
    assert tried > 0
    assert failures == 0


def test_released_patch_matches_fipy():
    # A held temperature of NaN frees the patch's cells, in both solvers.
    layout = two_material_layout()
    patch = held_patch(
        layout,
        x_mm=12.0,
        y_mm=9.0,
        radius_mm=1.0,
        temperature_C=lambda t: 60.0 if t <= 1.0 else float("nan"),
    )
    options = dict(boundary=INSULATED, duration_s=2.0, dt_s=0.25)

    reference = simulate(layout, [patch], **options)
    result = simulate_fast(layout, [patch], **options)

    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert peak_K > 1.0
    assert error_K <= 1e-6 * peak_K
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-9)


def mapped_boundary(layout, emissivity_top_map=None):
    """Return RADIATING with 0.1 on the busbar cells (bare metal), or the map given."""
    if emissivity_top_map is None:
        emissivity_top_map = np.where(layout.material_id == 0, 0.1, 0.9)
    return dataclasses.replace(RADIATING, emissivity_top_map=emissivity_top_map)


def test_uniform_emissivity_map_equals_scalar():
    layout = two_material_layout()
    mapped = mapped_boundary(layout, np.full(layout.shape, 0.9))
    options = dict(n_layers=2, duration_s=5.0, dt_s=0.25, output_times_s=[1.0, 5.0])
    sources = shared_case(layout)

    expected = simulate_fast(layout, sources, boundary=RADIATING, **options)
    result = simulate_fast(layout, sources, boundary=mapped, **options)

    np.testing.assert_array_equal(result.rise_all_K, expected.rise_all_K)
    assert result.energy_in_J == expected.energy_in_J
    assert result.energy_lost_J == expected.energy_lost_J


def test_fast_matches_fipy_with_emissivity_map():
    layout = two_material_layout()
    boundary = mapped_boundary(layout)
    options = dict(n_layers=2, duration_s=5.0, dt_s=0.25)
    sources = shared_case(layout)[:1]

    reference = simulate(layout, sources, boundary=boundary, **options)
    result = simulate_fast(layout, sources, boundary=boundary, **options)
    uniform = simulate_fast(layout, sources, boundary=RADIATING, **options)

    # Same tolerance as without a map; the map itself moves the rise by far
    # more than that.
    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert error_K <= 1e-9 * peak_K
    assert np.abs(uniform.rise_all_K - result.rise_all_K).max() > 1e-4 * peak_K
    assert result.energy_lost_J == pytest.approx(reference.energy_lost_J, rel=1e-9)
    assert result.energy_lost_J < uniform.energy_lost_J


def test_radiative_cooling_first_order_in_dt():
    material = Material("plate", 10.0, 10.0, 10.0, 2e6)
    grid = np.zeros((3, 3), dtype=int)
    layout = Layout(1.0, 1.0, 2.0, grid, (material,), grid - 1)
    boundary = Boundary(ambient_C=25.0, h_top_W_m2K=0.0, emissivity_top=0.9)
    sigma, Ta_K, duration_s = 5.670374419e-8, 25.0 + 273.15, 600.0

    def rate(_t, T_K):
        return -0.9 * sigma * (T_K**4 - Ta_K**4) / (2e6 * 2e-3)

    exact = solve_ivp(rate, (0, duration_s), [398.15], rtol=1e-12, atol=1e-12)
    exact_cooling_K = 398.15 - exact.y[0, -1]
    errors = []
    for dt_s in (10.0, 5.0):
        result = simulate_fast(
            layout,
            [],
            boundary=boundary,
            duration_s=duration_s,
            dt_s=dt_s,
            initial_C=125.0,
        )
        cooling_K = -result.rise_K[-1].mean()
        errors.append(abs(cooling_K - exact_cooling_K) / exact_cooling_K)

    # The README quotes this case: 0.3 % off at dt 10 s, halving with dt.
    assert exact_cooling_K == pytest.approx(66.39, abs=0.01)
    assert errors[0] < 0.0035
    assert 1.8 < errors[0] / errors[1] < 2.2
