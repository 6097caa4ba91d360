"""Tests for thermosynth.physics.heat against analytic and discrete solutions."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.special import j0

from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Ramp, Tabulated
from thermosynth.physics.sources import (
    VolumeSource,
    cell_volume_m3,
    held_patch,
    hotspot,
    region_source,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")

INSULATED = Boundary(h_top_W_m2K=0.0)

# alpha = k / rho_cp = 1e-6 m2 s-1 = 1 mm2 s-1, so times in s and lengths in mm
# give readable numbers.
UNIT = Material("unit", 1.0, 1.0, 1.0, 1e6)


def make_plate(ny, nx, *, d_mm, thickness_mm=1.0, material=UNIT):
    grid = np.zeros((ny, nx), dtype=int)
    return Layout(d_mm, d_mm, thickness_mm, grid, (material,), grid - 1)


def gaussian_plate(n, *, material=UNIT, peak_K=10.0, variance_mm2=4.0):
    """Return a 32 mm square plate and a Gaussian initial state on it [C]."""
    layout = make_plate(n, n, d_mm=32.0 / n, material=material)
    x, y = layout.cell_centres_mm()
    r2 = (x[None, :] - 16.0) ** 2 + (y[:, None] - 16.0) ** 2
    initial = 25.0 + peak_K * np.exp(-r2 / (2.0 * variance_mm2))
    return layout, r2, initial


def implicit_euler_gaussian(r2_mm2, *, peak_K, alpha_t0_mm2, alpha_dt_mm2, n_steps):
    """Return n implicit Euler steps of the continuous 2D heat equation.

    A Gaussian's Fourier transform decays by 1 / (1 + dt alpha k^2) per step;
    the inverse Hankel transform turns it back into r.
    """
    radii2, inverse = np.unique(r2_mm2, return_inverse=True)
    k = np.linspace(0.0, 8.0, 8001)
    spectrum = np.exp(-alpha_t0_mm2 * k**2) * (1 + alpha_dt_mm2 * k**2) ** -n_steps
    kernel = j0(k[:, None] * np.sqrt(radii2)[None, :])
    values = trapezoid((spectrum * k)[:, None] * kernel, k, axis=0)
    return (2.0 * peak_K * alpha_t0_mm2 * values)[inverse].reshape(r2_mm2.shape)


def final_temperature(result, initial):
    return result.rise_all_K[-1] + initial


# The analytic cases hold both the FiPy reference and the default fast solver.
SOLVERS = pytest.mark.parametrize(
    "solve", [simulate, simulate_fast], ids=["fipy", "fast"]
)


@SOLVERS
def test_gaussian_matches_analytic(solve):
    t0, t = 2.0, 4.0
    energy_J = 0.25
    rho_cp, d, alpha = 1e6, 1e-3, 1e-6
    peak_K = energy_J / (rho_cp * d * 4 * math.pi * alpha * t0)
    layout, r2, initial = gaussian_plate(128, peak_K=peak_K, variance_mm2=2 * t0)

    result = solve(
        layout, [], boundary=INSULATED, duration_s=t, dt_s=0.2, initial_C=initial
    )

    rise = final_temperature(result, initial)[0] - 25.0
    r2_m2 = r2 * 1e-6
    exact = energy_J / (rho_cp * d * 4 * math.pi * alpha * (t0 + t))
    exact = exact * np.exp(-r2_m2 / (4 * alpha * (t0 + t)))
    assert np.abs(rise - exact).max() < 0.03 * exact.max()
    assert rise.sum() * 0.25**2 * 1e-9 * rho_cp == pytest.approx(energy_J, rel=1e-9)


@SOLVERS
def test_gaussian_second_order_in_space(solve):
    t0, dt, n_steps = 2.0, 0.2, 20
    errors = []
    for n in (64, 128):
        layout, r2, initial = gaussian_plate(n, variance_mm2=2 * t0)
        result = solve(
            layout,
            [],
            boundary=INSULATED,
            duration_s=dt * n_steps,
            dt_s=dt,
            initial_C=initial,
        )
        exact = implicit_euler_gaussian(
            r2, peak_K=10.0, alpha_t0_mm2=t0, alpha_dt_mm2=dt, n_steps=n_steps
        )
        rise = final_temperature(result, initial)[0] - 25.0
        errors.append(np.abs(rise - exact).max())

    order = math.log2(errors[0] / errors[1])
    assert errors[1] < 1e-3 * 10.0
    assert 1.9 < order < 2.1


def test_anisotropy_variance_ratio():
    kx_material = Material("aniso", 4.0, 1.0, 1.0, 1e6)
    layout = make_plate(48, 80, d_mm=0.5, material=kx_material)
    x, y = layout.cell_centres_mm()
    dx2 = (x[None, :] - 20.0) ** 2
    dy2 = (y[:, None] - 12.0) ** 2
    initial = 25.0 + 10.0 * np.exp(-(dx2 + dy2) / 2.0)

    result = simulate(
        layout, [], boundary=INSULATED, duration_s=2.0, dt_s=0.1, initial_C=initial
    )

    def variances(field):
        weight = field / field.sum()
        return (weight * dx2).sum(), (weight * dy2).sum()

    var_x0, var_y0 = variances(initial - 25.0)
    var_x1, var_y1 = variances(final_temperature(result, initial)[0] - 25.0)
    assert var_x1 - var_x0 == pytest.approx(2 * 4.0 * 2.0, rel=1e-3)
    assert var_y1 - var_y0 == pytest.approx(2 * 1.0 * 2.0, rel=1e-3)
    assert (var_x1 - var_x0) / (var_y1 - var_y0) == pytest.approx(4.0, rel=1e-3)


def test_energy_conserved_when_insulated():
    layout = make_plate(24, 32, d_mm=1.0, thickness_mm=2.0)
    source = hotspot(
        layout, x_mm=10.0, y_mm=12.0, radius_mm=2.0, power_W=Ramp(1.5, ramp_s=3.0)
    )
    result = simulate(layout, [source], boundary=INSULATED, duration_s=6.0, dt_s=0.5)

    # Each step applies its mean power, so the ramp delivers its integral.
    expected_in = 1.5 * 3.0 / 2 + 1.5 * 3.0
    assert result.energy_in_J == pytest.approx(expected_in, rel=1e-12)
    assert result.energy_lost_J == 0.0
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-6)


def test_energy_balance_with_convection_and_radiation():
    layout = make_plate(24, 32, d_mm=1.0, thickness_mm=2.0)
    source = hotspot(
        layout, x_mm=10.0, y_mm=12.0, radius_mm=2.0, power_W=2.0, layer=2, n_layers=3
    )
    boundary = Boundary(
        h_top_W_m2K=20.0, h_bottom_W_m2K=5.0, emissivity_top=0.9, emissivity_bottom=0.5
    )
    result = simulate(
        layout, [source], boundary=boundary, n_layers=3, duration_s=20.0, dt_s=1.0
    )

    balance = result.energy_stored_J + result.energy_lost_J
    assert result.energy_in_J == pytest.approx(40.0, rel=1e-12)
    assert result.energy_lost_J > 0.01 * result.energy_in_J
    assert balance == pytest.approx(result.energy_in_J, rel=1e-3)


def test_newton_cooling():
    layout = make_plate(4, 5, d_mm=1.0, thickness_mm=2.0)
    h, dt, ambient, initial = 50.0, 2.0, 20.0, 80.0
    tau = 1e6 * 2e-3 / h
    times = np.array([10.0, 20.0, 40.0])

    result = simulate(
        layout,
        [],
        boundary=Boundary(ambient_C=ambient, h_top_W_m2K=h),
        duration_s=40.0,
        dt_s=dt,
        output_times_s=times,
        initial_C=initial,
    )

    excess = (initial + result.rise_K.mean(axis=(1, 2))) - ambient
    discrete = (initial - ambient) * (1 + dt / tau) ** -(times / dt)
    exact = (initial - ambient) * np.exp(-times / tau)
    first_order_error = exact * (times / dt) * (dt / tau) ** 2 / 2
    np.testing.assert_allclose(result.times_s, times)
    np.testing.assert_allclose(excess, discrete, rtol=1e-6)
    assert np.all(np.abs(excess - exact) < 1.1 * first_order_error)
    assert np.all(np.abs(excess - exact) > 0.5 * first_order_error)


def test_layers_steady_state():
    material = Material("stack", 5.0, 5.0, 0.5, 2e6)
    layout = make_plate(6, 8, d_mm=2.0, thickness_mm=3.0, material=material)
    n_layers, power, h = 3, 0.4, 25.0
    region = np.ones(layout.shape, dtype=bool)
    source = region_source(layout, region, power_W=power, layers=[2], n_layers=n_layers)

    result = simulate(
        layout,
        [source],
        boundary=Boundary(h_top_W_m2K=h, h_bottom_W_m2K=0.0),
        n_layers=n_layers,
        duration_s=1e7,
        dt_s=1e6,
    )

    q_area = power / (layout.width_mm * layout.height_mm * 1e-6)
    dz = 1e-3
    rise = result.rise_all_K[-1]
    assert rise[0] == pytest.approx(np.full(layout.shape, q_area / h), rel=1e-9)
    drop = rise[2] - rise[0]
    expected_drop = q_area * 2 * dz / 0.5
    assert drop == pytest.approx(np.full(layout.shape, expected_drop), rel=1e-9)
    assert rise[1] - rise[0] == pytest.approx(np.full(layout.shape, expected_drop / 2))


def test_held_patch_reaches_and_holds():
    layout = make_plate(20, 20, d_mm=1.0, thickness_mm=1.0)
    patch = held_patch(
        layout,
        x_mm=10.0,
        y_mm=10.0,
        radius_mm=2.0,
        temperature_C=Tabulated([0.0, 4.0], [25.0, 60.0]),
    )
    result = simulate(
        layout,
        [patch],
        boundary=Boundary(h_top_W_m2K=10.0),
        duration_s=20.0,
        dt_s=0.5,
        output_times_s=[2.0, 10.0, 20.0],
    )

    held_cells = patch.mask[0]
    np.testing.assert_allclose(result.rise_K[0][held_cells], 17.5, atol=1e-4)
    np.testing.assert_allclose(result.rise_K[1][held_cells], 35.0, atol=1e-4)
    np.testing.assert_allclose(result.rise_K[2][held_cells], 35.0, atol=1e-4)
    assert result.rise_K[2][~held_cells].max() < 35.0
    assert result.energy_in_J > 0.0
    balance = result.energy_stored_J + result.energy_lost_J
    assert balance == pytest.approx(result.energy_in_J, rel=1e-6)


def test_step_ends_on_output_times():
    layout = make_plate(4, 4, d_mm=1.0)
    result = simulate(
        layout, [], duration_s=1.0, dt_s=0.3, output_times_s=[0.0, 0.45, 1.0]
    )
    np.testing.assert_allclose(result.times_s, [0.0, 0.45, 1.0])
    assert result.rise_all_K.shape == (3, 1, 4, 4)
    assert np.all(result.rise_K == 0.0)


def test_progress_called_per_step():
    layout = make_plate(4, 4, d_mm=1.0)
    calls = []
    simulate(
        layout,
        [],
        duration_s=1.0,
        dt_s=0.25,
        progress=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_bad_dt_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match="dt_s = 0 is invalid"):
        simulate(layout, [], duration_s=1.0, dt_s=0)


def test_bad_duration_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match="duration_s = -1.0 is invalid"):
        simulate(layout, [], duration_s=-1.0, dt_s=0.1)


def test_bad_n_layers_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match="n_layers = 0 is invalid"):
        simulate(layout, [], n_layers=0, duration_s=1.0, dt_s=0.1)


def test_output_time_past_duration_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match=r"output_times_s \[2.0\] lie outside"):
        simulate(layout, [], duration_s=1.0, dt_s=0.1, output_times_s=[0.5, 2.0])


def test_bad_weights_shape_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    source = hotspot(layout, x_mm=2, y_mm=2, radius_mm=1, power_W=1.0, n_layers=1)
    with pytest.raises(LayoutError, match=r"weights_m3 shape \(1, 4, 4\) differs"):
        simulate(layout, [source], n_layers=2, duration_s=1.0, dt_s=0.1)


def test_negative_weights_raise():
    layout = make_plate(4, 4, d_mm=1.0)
    weights = np.full((1, 4, 4), -1.0 / (16 * cell_volume_m3(layout, 1)))
    source = VolumeSource(weights, lambda t: 1.0, "sink")
    with pytest.raises(LayoutError, match="weights_m3 must be finite and >= 0"):
        simulate(layout, [source], duration_s=1.0, dt_s=0.1)


def test_source_outside_layout_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(LayoutError, match="lies outside the layout"):
        hotspot(layout, x_mm=-1.0, y_mm=2.0, radius_mm=1.0, power_W=1.0)


def test_bad_initial_shape_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match=r"initial_C shape \(3, 3\) is invalid"):
        simulate(layout, [], duration_s=1.0, dt_s=0.1, initial_C=np.zeros((3, 3)))


def test_bad_boundary_raises():
    with pytest.raises(RecipeError, match="h_top_W_m2K = -1.0 is invalid"):
        Boundary(h_top_W_m2K=-1.0)


def test_non_finite_power_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    source = hotspot(layout, x_mm=2, y_mm=2, radius_mm=1, power_W=lambda t: math.nan)
    with pytest.raises(SimulationError, match="heat solver: .* at t = 0.1 s"):
        simulate(layout, [source], duration_s=1.0, dt_s=0.1)


def test_below_absolute_zero_warns_and_stops():
    layout = make_plate(4, 4, d_mm=1.0)
    source = hotspot(layout, x_mm=2, y_mm=2, radius_mm=1, power_W=-1e6)
    with pytest.warns(RuntimeWarning, match="below absolute zero, at t = 0.1 s"):
        result = simulate(
            layout,
            [source],
            duration_s=1.0,
            dt_s=0.1,
            output_times_s=[0.5, 1.0],
            on_failure="warn",
        )
    assert np.all(np.isnan(result.rise_K))


def test_bad_failure_policy_raises():
    layout = make_plate(4, 4, d_mm=1.0)
    with pytest.raises(RecipeError, match="on_failure = 'ignore' is invalid"):
        simulate(layout, [], duration_s=1.0, dt_s=0.1, on_failure="ignore")


def test_docstring_examples_run():
    import doctest

    import thermosynth.physics.heat as module

    assert doctest.testmod(module).failed == 0


def test_held_patch_refines_after_matrix_changes():
    # Radiation and the shorter step that ends on an output time change the
    # matrix, so the reused LU must refine. Residuals scaled by the matrix
    # diagonal keep the penalty rows of held cells from hiding errors in the
    # free cells: unscaled, the free cells drifted by about 4e-4 of the peak.
    from thermosynth.physics.fast import simulate_fast

    busbar = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
    cell = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
    grid = np.zeros((24, 32), dtype=int)
    grid[:, 10:20] = 1
    layout = Layout(0.5, 0.5, 2.0, grid, (busbar, cell), grid - 1)
    source = hotspot(
        layout, x_mm=6.0, y_mm=6.0, radius_mm=1.5, power_W=2.0, layer=1, n_layers=2
    )
    patch = held_patch(
        layout, x_mm=12.0, y_mm=9.0, radius_mm=1.0, temperature_C=60.0, n_layers=2
    )
    options = dict(
        boundary=Boundary(h_top_W_m2K=10.0, emissivity_top=0.9, emissivity_bottom=0.5),
        n_layers=2,
        duration_s=2.0,
        dt_s=0.3,
        output_times_s=[1.0, 2.0],
    )

    reference = simulate_fast(layout, [source, patch], **options)
    result = simulate(layout, [source, patch], **options)

    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert peak_K > 30.0
    assert error_K <= 1e-9 * peak_K


# --- per-cell top emissivity ------------------------------------------------


# Left half bare metal (0.1), top quarter of the rows black (1.0), the rest 0.9.
def emissivity_map(shape, *, value=0.9):
    emissivity = np.full(shape, value)
    emissivity[:, : shape[1] // 2] = 0.1
    emissivity[: shape[0] // 4] = 1.0
    return emissivity


def steady_rise_K(q_W_m2, *, h_W_m2K, emissivity, ambient_C):
    """Return the rise that balances q = h dT + e sigma (T**4 - Ta**4) [K]."""
    Ta_K = ambient_C + 273.15

    def residual(rise):
        radiated = 5.670374419e-8 * ((Ta_K + rise) ** 4 - Ta_K**4)
        return h_W_m2K * rise + emissivity * radiated - q_W_m2

    from scipy.optimize import brentq

    return brentq(residual, 0.0, q_W_m2 / h_W_m2K, xtol=1e-14, rtol=1e-15)


def test_uniform_emissivity_map_equals_scalar():
    layout = make_plate(12, 16, d_mm=1.0, thickness_mm=2.0)
    source = hotspot(
        layout, x_mm=6.0, y_mm=5.0, radius_mm=2.0, power_W=2.0, layer=1, n_layers=2
    )
    scalar = Boundary(h_top_W_m2K=10.0, emissivity_top=0.9, emissivity_bottom=0.5)
    mapped = Boundary(
        h_top_W_m2K=10.0,
        emissivity_top=0.3,  # replaced by the map on the top face
        emissivity_bottom=0.5,
        emissivity_top_map=np.full(layout.shape, 0.9),
    )
    options = dict(n_layers=2, duration_s=6.0, dt_s=1.0, output_times_s=[2.0, 6.0])

    expected = simulate(layout, [source], boundary=scalar, **options)
    result = simulate(layout, [source], boundary=mapped, **options)

    np.testing.assert_array_equal(result.rise_all_K, expected.rise_all_K)
    assert result.energy_lost_J == expected.energy_lost_J
    assert result.energy_stored_J == expected.energy_stored_J


SOLVERS = pytest.mark.parametrize(
    "solve", [simulate, simulate_fast, simulate_adi], ids=["fipy", "fast", "adi"]
)


@SOLVERS
def test_emissivity_map_steady_state_per_cell(solve):
    # Lateral conduction is negligible (k = 1e-14), so every column of cells
    # settles on its own 0D balance of source, convection and its emissivity's
    # radiation. The secant of the lagged radiation is exact at the fixed
    # point, so implicit Euler converges to the nonlinear balance itself.
    insulator = Material("insulator", 1e-14, 1e-14, 1.0, 1e6)
    layout = make_plate(8, 10, d_mm=1.0, thickness_mm=1.0, material=insulator)
    emissivity = emissivity_map(layout.shape)
    q_W_m2 = 400.0
    power_W = q_W_m2 * layout.width_mm * layout.height_mm * 1e-6
    source = region_source(layout, np.ones(layout.shape, bool), power_W=power_W)
    boundary = Boundary(ambient_C=25.0, h_top_W_m2K=10.0, emissivity_top_map=emissivity)

    result = solve(layout, [source], boundary=boundary, duration_s=4000.0, dt_s=50.0)

    for value in (0.1, 0.9, 1.0):
        cells = emissivity == value
        expected = steady_rise_K(q_W_m2, h_W_m2K=10.0, emissivity=value, ambient_C=25.0)
        np.testing.assert_allclose(result.rise_K[-1][cells], expected, rtol=1e-9)
    # Bare metal sheds less heat by radiation, so it settles hotter.
    bare = result.rise_K[-1][emissivity == 0.1].mean()
    painted = result.rise_K[-1][emissivity == 0.9].mean()
    assert bare > painted + 10.0


def test_energy_balance_with_emissivity_map():
    layout = make_plate(24, 32, d_mm=1.0, thickness_mm=2.0)
    source = hotspot(
        layout, x_mm=16.0, y_mm=12.0, radius_mm=3.0, power_W=2.0, layer=1, n_layers=2
    )
    boundary = Boundary(
        h_top_W_m2K=10.0,
        emissivity_bottom=0.5,
        emissivity_top_map=emissivity_map(layout.shape),
    )
    result = simulate(
        layout, [source], boundary=boundary, n_layers=2, duration_s=20.0, dt_s=1.0
    )

    balance = result.energy_stored_J + result.energy_lost_J
    assert result.energy_lost_J > 0.01 * result.energy_in_J
    assert balance == pytest.approx(result.energy_in_J, rel=1e-9)


def test_emissivity_map_is_read_only_copy():
    values = np.full((3, 4), 0.5)
    boundary = Boundary(emissivity_top_map=values)
    values[0, 0] = 0.9

    assert boundary.emissivity_top_map is not None
    assert boundary.emissivity_top_map[0, 0] == 0.5
    assert not boundary.emissivity_top_map.flags.writeable
    assert boundary.radiates


def test_boundary_equality_follows_map_contents():
    first = Boundary(emissivity_top_map=np.full((3, 4), 0.5))
    same = Boundary(emissivity_top_map=np.full((3, 4), 0.5))
    other = Boundary(emissivity_top_map=np.full((3, 4), 0.4))

    assert first == same
    assert hash(first) == hash(same)
    assert first != other
    assert first != Boundary(emissivity_top=0.5)
    assert Boundary(emissivity_top=0.5) == Boundary(emissivity_top=0.5)


def test_zero_emissivity_map_does_not_radiate():
    assert not Boundary(
        emissivity_top=0.9, emissivity_top_map=np.zeros((2, 2))
    ).radiates
    assert Boundary(emissivity_top=0.0, emissivity_bottom=0.1).radiates


@pytest.mark.parametrize(
    "values, message",
    [
        (np.full(4, 0.5), r"shape \(4,\).*\(ny, nx\) array"),
        (np.full((2, 2), 1.5), r"contains \[1.5, 1.5, 1.5, 1.5\].*0\.\.1"),
        (np.array([[0.5, np.nan]]), r"contains \[nan\].*0\.\.1"),
        (np.array([[-0.1, 0.5]]), r"contains \[-0.1\].*0\.\.1"),
    ],
)
def test_invalid_emissivity_map_raises(values, message):
    with pytest.raises(RecipeError, match=message):
        Boundary(emissivity_top_map=values)


def test_emissivity_map_shape_mismatch_raises():
    layout = make_plate(4, 5, d_mm=1.0)
    boundary = Boundary(emissivity_top_map=np.full((5, 4), 0.5))

    with pytest.raises(LayoutError, match=r"shape \(5, 4\).*grid is \(4, 5\)"):
        simulate(layout, [], boundary=boundary, duration_s=1.0, dt_s=0.5)
