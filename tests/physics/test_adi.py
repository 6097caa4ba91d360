"""Tests of the Douglas ADI solver against FiPy, the LU solver and exact solutions."""

from __future__ import annotations

import dataclasses
import doctest
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import thermosynth.physics.adi as adi
import thermosynth.physics.adi_kernels as kernels
from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.adi import simulate_adi, simulate_adi_batch
from thermosynth.physics.fast import simulate_batch, simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Constant, Pulse, Ramp
from thermosynth.physics.sources import VolumeSource, held_patch, hotspot
from thermosynth.simulation import _solver

os.environ.setdefault("OMP_NUM_THREADS", "1")

INSULATED = Boundary(h_top_W_m2K=0.0)
RADIATING = Boundary(
    ambient_C=25.0,
    h_top_W_m2K=10.0,
    h_bottom_W_m2K=5.0,
    emissivity_top=0.9,
    emissivity_bottom=0.5,
)
BUSBAR = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
CELL = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
# alpha = 1 mm2 s-1, so times in s and lengths in mm give readable numbers.
UNIT = Material("unit", 1.0, 1.0, 1.0, 1e6)


def two_material_layout():
    """Return a 32 x 24 grid of 0.5 mm cells: a cell stack crossed by busbars."""
    grid = np.zeros((24, 32), dtype=int)
    grid[:, 10:20] = 1
    grid[5:8, :] = 1
    return Layout(0.5, 0.5, 2.0, grid, (BUSBAR, CELL), grid - 1)


def ramped_hotspot(layout, *, x_mm=6.0, power_W=2.0, n_layers=2):
    return hotspot(
        layout,
        x_mm=x_mm,
        y_mm=6.0,
        radius_mm=1.5,
        power_W=Ramp(power_W, ramp_s=2.0),
        layer=n_layers - 1,
        n_layers=n_layers,
    )


def plate(n, *, d_mm, thickness_mm=1.0):
    grid = np.zeros((n, n), dtype=int)
    return Layout(d_mm, d_mm, thickness_mm, grid, (UNIT,), grid - 1)


def douglas_gaussian(x_mm, y_mm, *, peak_K, alpha_t0_mm2, alpha_dt_mm2, n_steps):
    """Return n Douglas steps of the continuous 2D heat equation from a Gaussian.

    Per step a Fourier mode decays by ``(1 + a b) / ((1 + a)(1 + b))`` with
    ``a = alpha dt kx**2`` and ``b = alpha dt ky**2``. The inverse transform
    of this even spectrum is a double cosine integral, taken with the
    trapezoid rule.
    """
    k = np.linspace(0.0, 6.0, 1501)
    weight = np.full(k.size, k[1])
    weight[[0, -1]] /= 2
    a = alpha_dt_mm2 * k**2
    factor = (1 + a[:, None] * a[None, :]) / ((1 + a[:, None]) * (1 + a[None, :]))
    spectrum = np.exp(-alpha_t0_mm2 * (k[:, None] ** 2 + k[None, :] ** 2))
    spectrum *= factor**n_steps * weight[:, None] * weight[None, :]
    cos_y, cos_x = np.cos(np.outer(y_mm, k)), np.cos(np.outer(x_mm, k))
    scale = 4.0 * peak_K * alpha_t0_mm2 / math.pi
    return scale * cos_y @ spectrum @ cos_x.T


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_adi_matches_fipy_reference(precision):
    layout = two_material_layout()
    options = dict(boundary=RADIATING, n_layers=2, duration_s=5.0, dt_s=0.25)
    sources = [ramped_hotspot(layout)]

    reference = simulate(layout, sources, **options)
    result = simulate_adi(layout, sources, precision=precision, **options)

    # Splitting differs from implicit Euler by O(dt**2) per step, so the two
    # agree within 1 % of the peak rise on the same grid.
    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert peak_K > 30.0
    assert error_K <= 0.01 * peak_K
    assert error_K > 1e-6 * peak_K  # a different scheme, not the same solve
    assert result.energy_in_J == pytest.approx(reference.energy_in_J, rel=1e-12)
    assert result.energy_stored_J == pytest.approx(reference.energy_stored_J, rel=1e-3)
    np.testing.assert_array_equal(result.rise_K, result.rise_all_K[:, 0])


def test_adi_keeps_implicit_euler_steady_state():
    layout = two_material_layout()
    source = hotspot(layout, x_mm=6.0, y_mm=6.0, radius_mm=1.5, power_W=0.5)
    options = dict(boundary=RADIATING, duration_s=20000.0, dt_s=100.0)

    steady = simulate_adi(layout, [source], **options).rise_K[-1]
    reference = simulate_fast(layout, [source], **options).rise_K[-1]

    # Douglas's scheme leaves a steady state unchanged, so both converge to
    # the steady state of the same discrete operator. Modes stiff along both
    # x and y are the exception: the scheme damps them by only about 1 / a
    # per step, and here a = dt k / (rho_cp dx**2) reaches 3e4 in the busbar.
    # They keep about 0.2 % of the peak from the first steps.
    assert steady.max() > 5.0
    np.testing.assert_allclose(steady, reference, rtol=0, atol=5e-3 * steady.max())


def test_gaussian_matches_analytic():
    t0, t, energy_J = 2.0, 4.0, 0.25
    rho_cp, d_m, alpha = 1e6, 1e-3, 1e-6
    peak_K = energy_J / (rho_cp * d_m * 4 * math.pi * alpha * t0)
    layout = plate(128, d_mm=0.25)
    x, y = layout.cell_centres_mm()
    r2 = (x[None, :] - 16.0) ** 2 + (y[:, None] - 16.0) ** 2
    initial = 25.0 + peak_K * np.exp(-r2 / (4.0 * t0))

    result = simulate_adi(
        layout, [], boundary=INSULATED, duration_s=t, dt_s=0.2, initial_C=initial
    )

    rise = result.rise_K[-1] + initial - 25.0
    exact = energy_J / (rho_cp * d_m * 4 * math.pi * alpha * (t0 + t))
    exact = exact * np.exp(-r2 * 1e-6 / (4 * alpha * (t0 + t)))
    assert np.abs(rise - exact).max() < 0.03 * exact.max()
    assert rise.sum() * 0.25**2 * 1e-9 * rho_cp == pytest.approx(energy_J, rel=1e-9)


def test_gaussian_second_order_in_space():
    t0, dt, n_steps = 2.0, 0.2, 20
    errors = []
    for n in (64, 128):
        layout = plate(n, d_mm=32.0 / n)
        x, y = layout.cell_centres_mm()
        r2 = (x[None, :] - 16.0) ** 2 + (y[:, None] - 16.0) ** 2
        initial = 25.0 + 10.0 * np.exp(-r2 / (4.0 * t0))
        result = simulate_adi(
            layout,
            [],
            boundary=INSULATED,
            duration_s=dt * n_steps,
            dt_s=dt,
            initial_C=initial,
        )
        exact = douglas_gaussian(
            x - 16.0,
            y - 16.0,
            peak_K=10.0,
            alpha_t0_mm2=t0,
            alpha_dt_mm2=dt,
            n_steps=n_steps,
        )
        errors.append(np.abs(result.rise_K[-1] + initial - 25.0 - exact).max())

    order = math.log2(errors[0] / errors[1])
    assert errors[1] < 1e-3 * 10.0
    assert 1.9 < order < 2.1


def test_energy_conserved_when_insulated():
    layout = two_material_layout()
    result = simulate_adi(
        layout,
        [ramped_hotspot(layout)],
        boundary=INSULATED,
        n_layers=2,
        duration_s=5.0,
        dt_s=0.25,
        output_times_s=[1.0, 2.6],
    )

    assert result.energy_lost_J == 0.0
    assert result.energy_in_J > 1.0
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-12)


@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_energy_balance_with_radiation(n_layers, mapped):
    layout = two_material_layout()
    result = simulate_adi(
        layout,
        [ramped_hotspot(layout, n_layers=n_layers)],
        boundary=mapped_boundary(layout) if mapped else RADIATING,
        n_layers=n_layers,
        duration_s=20.0,
        dt_s=0.5,
    )

    balance = result.energy_stored_J + result.energy_lost_J
    assert result.energy_lost_J > 0.01 * result.energy_in_J
    assert balance == pytest.approx(result.energy_in_J, rel=1e-10)


def test_batch_equals_one_at_a_time():
    layout = two_material_layout()
    batch = [
        [ramped_hotspot(layout, x_mm=x, power_W=p)]
        for x, p in [(4.0, 1.0), (9.0, 3.0), (13.0, 0.5)]
    ]
    batch.append([])
    batch.append(batch[0] + batch[1])
    options = dict(boundary=RADIATING, n_layers=2, duration_s=3.0, dt_s=0.5)

    together = simulate_adi_batch(layout, batch, **options)

    for sources, result in zip(batch, together, strict=True):
        alone = simulate_adi(layout, sources, **options)
        np.testing.assert_array_equal(result.rise_all_K, alone.rise_all_K)
        assert result.energy_lost_J == alone.energy_lost_J
    assert np.all(together[3].rise_all_K == 0.0)


def test_batch_bitwise_for_every_batch_size():
    # Vector loops over the scenarios take a scalar tail for the remainder,
    # and fused multiply-adds must give the same bits in both.
    layout = two_material_layout()
    batch = [
        [ramped_hotspot(layout, x_mm=3.0 + 0.7 * i, power_W=1.0 + i % 3, n_layers=3)]
        for i in range(9)
    ]
    options = dict(boundary=RADIATING, n_layers=3, duration_s=1.0, dt_s=0.25)

    together = simulate_adi_batch(layout, batch, **options)

    for size in (1, 2, 4, 5):
        ours_all = simulate_adi_batch(layout, batch[:size], **options)
        for ours, theirs in zip(ours_all, together[:size], strict=True):
            np.testing.assert_array_equal(ours.rise_all_K, theirs.rise_all_K)
            assert ours.energy_lost_J == theirs.energy_lost_J
            assert ours.energy_stored_J == theirs.energy_stored_J


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("boundary", [RADIATING, INSULATED], ids=["rad", "insulated"])
def test_two_threads_bitwise(monkeypatch, boundary, precision):
    # Two threads step the two layers at once. 21 scenarios leave a scalar
    # tail after the vector loops.
    layout = two_material_layout()
    batch = [
        [ramped_hotspot(layout, x_mm=3.0 + 0.5 * i, power_W=1.0 + i % 4)]
        for i in range(21)
    ]
    options = dict(
        boundary=boundary, n_layers=2, duration_s=1.0, dt_s=0.25, precision=precision
    )
    monkeypatch.setattr(adi, "PARALLEL_MIN_CELLS", 0)

    _assert_two_threads_equal_one(layout, batch, options)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("boundary", [RADIATING, INSULATED], ids=["rad", "insulated"])
def test_one_layer_two_threads_bitwise(monkeypatch, boundary, precision):
    # Two threads share the one layer in blocks of scenarios. 37 scenarios
    # make two blocks in either precision, the second with a scalar tail.
    layout = two_material_layout()
    batch = [
        [ramped_hotspot(layout, x_mm=3.0 + 0.3 * i, power_W=1.0 + i % 4, n_layers=1)]
        for i in range(37)
    ]
    options = dict(
        boundary=boundary, n_layers=1, duration_s=1.0, dt_s=0.25, precision=precision
    )
    monkeypatch.setattr(adi, "PARALLEL_MIN_CELLS", 0)
    monkeypatch.setattr(adi, "SPLIT_LAYERS", True)

    _assert_two_threads_equal_one(layout, batch, options)


def _assert_two_threads_equal_one(layout, batch, options):
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    alone = simulate_adi_batch(layout, batch, **options)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        parallel = simulate_adi_batch(layout, batch, **options)
    finally:
        numba.set_num_threads(previous)

    for ours, theirs in zip(parallel, alone, strict=True):
        np.testing.assert_array_equal(ours.rise_all_K, theirs.rise_all_K)
        assert ours.energy_lost_J == theirs.energy_lost_J


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("boundary", [RADIATING, INSULATED], ids=["rad", "insulated"])
def test_scenario_blocks_bitwise(monkeypatch, boundary, precision):
    # Blocks of odd sizes, stepped one after another on one thread, give the
    # same bits as one block of all scenarios.
    layout = two_material_layout()
    batch = [
        [ramped_hotspot(layout, x_mm=3.0 + 0.3 * i, power_W=1.0 + i % 4)]
        for i in range(23)
    ]
    options = dict(
        boundary=boundary, n_layers=2, duration_s=1.0, dt_s=0.25, precision=precision
    )
    whole = simulate_adi_batch(layout, batch, **options)
    uneven = np.array([0, 3, 4, 13, 23], dtype=np.uint64)
    monkeypatch.setattr(adi, "_scenario_blocks", lambda *args: uneven)

    split = simulate_adi_batch(layout, batch, **options)

    for ours, theirs in zip(split, whole, strict=True):
        np.testing.assert_array_equal(ours.rise_all_K, theirs.rise_all_K)
        assert ours.energy_lost_J == theirs.energy_lost_J


@pytest.mark.parametrize(
    ("n_scenarios", "n_layers", "threads", "dtype", "expected"),
    [
        (64, 1, 2, np.float64, [0, 32, 64]),
        (64, 1, 2, np.float32, [0, 32, 64]),
        (21, 1, 2, np.float64, [0, 8, 21]),
        (21, 1, 2, np.float32, [0, 21]),
        (21, 2, 2, np.float64, [0, 21]),
        (64, 1, 1, np.float64, [0, 64]),
        (100, 1, 4, np.float32, [0, 32, 48, 80, 100]),
    ],
)
def test_scenario_blocks_whole_cache_lines(
    n_scenarios, n_layers, threads, dtype, expected
):
    itemsize = np.dtype(dtype).itemsize
    blocks = adi._scenario_blocks(n_scenarios, n_layers, threads, itemsize)

    assert blocks.tolist() == expected
    assert np.all(blocks[1:-1] * itemsize % 64 == 0)


@pytest.mark.parametrize("boundary", [RADIATING, INSULATED], ids=["rad", "insulated"])
def test_float32_agrees_with_float64(boundary):
    layout = two_material_layout()
    options = dict(boundary=boundary, n_layers=2, duration_s=5.0, dt_s=0.25)
    sources = [ramped_hotspot(layout)]

    double = simulate_adi(layout, sources, **options)
    single = simulate_adi(layout, sources, precision="float32", **options)

    peak_K = np.abs(double.rise_all_K).max()
    error_K = np.abs(single.rise_all_K - double.rise_all_K).max()
    balance = single.energy_stored_J + single.energy_lost_J
    assert single.rise_all_K.dtype == np.float64
    assert error_K <= 1e-5 * peak_K
    assert error_K > 0.0  # the steps did run in float32
    assert balance == pytest.approx(single.energy_in_J, rel=1e-5)
    assert single.energy_in_J == double.energy_in_J


def test_float32_batch_equals_one_at_a_time():
    layout = two_material_layout()
    batch = [[ramped_hotspot(layout, x_mm=x)] for x in (4.0, 9.0, 13.0)]
    options = dict(
        boundary=RADIATING,
        n_layers=2,
        duration_s=2.0,
        dt_s=0.5,
        precision="float32",
    )

    together = simulate_adi_batch(layout, batch, **options)

    for sources, result in zip(batch, together, strict=True):
        alone = simulate_adi(layout, sources, **options)
        np.testing.assert_array_equal(result.rise_all_K, alone.rise_all_K)
        assert result.energy_lost_J == alone.energy_lost_J


def test_unknown_precision_raises():
    with pytest.raises(RecipeError, match="precision = 'float16' is invalid"):
        simulate_adi(
            two_material_layout(), [], duration_s=1.0, dt_s=0.5, precision="float16"
        )


def test_linear_loss_uses_shared_y_factors():
    layout = two_material_layout()
    initial = np.full((2, 24, 32), 25.0)

    linear = adi.AdiGrid(layout, Boundary(h_bottom_W_m2K=3.0), initial)
    radiating = adi.AdiGrid(layout, RADIATING, initial)

    assert linear.linear
    assert linear.factors(0.5).y_inverse is not None
    assert not radiating.linear
    assert radiating.factors(0.5).y_inverse is None


def test_batch_agrees_with_lu_batch():
    layout = two_material_layout()
    batch = [[ramped_hotspot(layout, x_mm=x)] for x in (4.0, 9.0, 13.0)]
    options = dict(boundary=RADIATING, n_layers=2, duration_s=5.0, dt_s=0.25)

    for ours, theirs in zip(
        simulate_adi_batch(layout, batch, **options),
        simulate_batch(layout, batch, **options),
        strict=True,
    ):
        peak_K = theirs.rise_all_K.max()
        assert np.abs(ours.rise_all_K - theirs.rise_all_K).max() <= 0.01 * peak_K


def test_held_patch_rejected_and_routed_to_lu():
    layout = two_material_layout()
    patch = held_patch(layout, x_mm=4.0, y_mm=4.0, radius_mm=1.0, temperature_C=60.0)

    with pytest.raises(RecipeError, match="held patches"):
        simulate_adi(layout, [patch], duration_s=1.0, dt_s=0.5)
    options = dict(boundary=RADIATING, n_layers=1, dt_s=0.5)
    hot = [ramped_hotspot(layout, n_layers=1)]
    assert _solver("adi", layout, [patch], options) is simulate_fast
    assert _solver("adi", layout, hot, options) is simulate_adi
    assert _solver("fast", layout, hot, options) is simulate_fast
    assert _solver("fipy", layout, hot, options) is simulate


def test_stiff_layers_substep_or_use_lu():
    layout = two_material_layout()
    initial = np.full((2, 24, 32), 25.0)
    grid = adi.AdiGrid(layout, RADIATING, initial)
    # busbar: k_z 50 W m-1 K-1 over dz = 1 mm, rho_cp 2.4e6 J m-3 K-1.
    rate_per_s = 50.0 / 1e-6 / 2.4e6  # one z face per cell on two layers
    assert grid.z_rate_per_s == pytest.approx(rate_per_s, rel=1e-12)
    assert grid.substeps(0.05) == 1
    assert grid.substeps(0.25) == math.ceil(0.25 * rate_per_s / adi.MAX_Z_STIFFNESS)
    hot = [ramped_hotspot(layout)]
    options = dict(boundary=RADIATING, n_layers=2)
    assert _solver("adi", layout, hot, {**options, "dt_s": 0.05}) is simulate_adi
    assert grid.substeps(10.0) > adi.MAX_SUBSTEPS
    assert _solver("adi", layout, hot, {**options, "dt_s": 10.0}) is simulate_fast


def test_empty_batch_raises():
    with pytest.raises(RecipeError, match="batch is empty"):
        simulate_adi_batch(two_material_layout(), [], duration_s=1.0, dt_s=0.5)


def test_non_finite_power_fails_one_scenario():
    layout = two_material_layout()
    weights = ramped_hotspot(layout, n_layers=1).weights_m3
    bad = VolumeSource(weights, lambda t: math.inf, "broken")
    good = ramped_hotspot(layout, n_layers=1)

    with pytest.raises(SimulationError, match="non-finite"):
        simulate_adi(layout, [bad], duration_s=1.0, dt_s=0.5)

    with pytest.warns(RuntimeWarning, match="scenario 0"):
        results = simulate_adi_batch(
            layout, [[bad], [good]], duration_s=1.0, dt_s=0.5, on_failure="warn"
        )
    assert np.isnan(results[0].rise_K[-1]).all()
    assert np.isfinite(results[1].rise_K).all()


def test_failed_scenario_keeps_earlier_outputs():
    layout = two_material_layout()
    weights = ramped_hotspot(layout).weights_m3
    late = VolumeSource(weights, lambda t: math.inf if t > 0.6 else 1.0, "late")
    good = ramped_hotspot(layout)

    with pytest.warns(RuntimeWarning, match="scenario 0"):
        failed, unaffected = simulate_adi_batch(
            layout,
            [[late], [good]],
            n_layers=2,
            duration_s=1.5,
            dt_s=0.5,
            output_times_s=[0.0, 0.5, 1.0, 1.5],
            on_failure="warn",
        )

    assert np.all(failed.rise_all_K[0] == 0.0)
    assert np.isfinite(failed.rise_all_K[1]).all()
    assert failed.rise_all_K[1].max() > 0.0
    assert np.isnan(failed.rise_all_K[2:]).all()
    assert np.isfinite(unaffected.rise_all_K).all()
    np.testing.assert_array_equal(failed.rise_K, failed.rise_all_K[:, 0])
    np.testing.assert_array_equal(unaffected.rise_K, unaffected.rise_all_K[:, 0])
    assert not np.shares_memory(unaffected.rise_K, unaffected.rise_all_K)


def test_invalid_weights_raise_as_other_solvers():
    layout = two_material_layout()
    weights = ramped_hotspot(layout).weights_m3.copy()
    weights[0, 0, 0] = np.nan
    broken = VolumeSource(weights, lambda t: 1.0, "broken")
    options = dict(n_layers=2, duration_s=1.0, dt_s=0.5)

    with pytest.raises(LayoutError, match="weights_m3 must be finite and >= 0"):
        simulate_adi_batch(layout, [[ramped_hotspot(layout)], [broken]], **options)
    with pytest.raises(LayoutError, match=r"weights_m3 shape \(1, 24, 32\) differs"):
        simulate_adi(layout, [ramped_hotspot(layout, n_layers=1)], **options)


def test_cached_grid_follows_changed_layout():
    layout = two_material_layout()
    options = dict(boundary=RADIATING, n_layers=2, duration_s=1.0, dt_s=0.5)
    simulate_adi(layout, [ramped_hotspot(layout)], **options)

    layout.material_id[:, :4] = 1
    changed = simulate_adi(layout, [ramped_hotspot(layout)], **options)
    fresh_layout = Layout(
        0.5, 0.5, 2.0, layout.material_id.copy(), (BUSBAR, CELL), layout.cell_id
    )
    fresh = simulate_adi(fresh_layout, [ramped_hotspot(fresh_layout)], **options)

    np.testing.assert_array_equal(changed.rise_all_K, fresh.rise_all_K)


def test_progress_called_per_step():
    calls = []
    simulate_adi(
        two_material_layout(),
        [],
        duration_s=2.0,
        dt_s=0.5,
        progress=lambda step, total: calls.append((step, total)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_docstring_examples_run():
    assert doctest.testmod(adi, raise_on_error=True).attempted > 0


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_one_layer_linear_batch_books_energy(precision):
    # One layer with convection only takes the fused x pass and shares the
    # y factors. Constant powers are scattered once, ramped ones each step.
    layout = two_material_layout()
    convective = Boundary(h_top_W_m2K=25.0, h_bottom_W_m2K=5.0)
    constant = hotspot(layout, x_mm=5.0, y_mm=5.0, radius_mm=1.5, power_W=0.8)
    batch = [
        [constant],
        [ramped_hotspot(layout, x_mm=9.0, power_W=1.5, n_layers=1)],
        [constant, ramped_hotspot(layout, x_mm=12.0, power_W=0.5, n_layers=1)],
    ]
    options = dict(boundary=convective, duration_s=6.0, dt_s=0.5, precision=precision)

    together = simulate_adi_batch(layout, batch, **options)

    assert together[0].energy_in_J == pytest.approx(0.8 * 6.0, rel=1e-12)
    tolerance = 1e-10 if precision == "float64" else 1e-6
    for sources, result in zip(batch, together, strict=True):
        alone = simulate_adi(layout, sources, **options)
        np.testing.assert_array_equal(result.rise_all_K, alone.rise_all_K)
        assert result.energy_lost_J > 0.01 * result.energy_in_J
        balance = result.energy_stored_J + result.energy_lost_J
        assert balance == pytest.approx(result.energy_in_J, rel=tolerance)


def mapped_boundary(layout, emissivity_top_map=None):
    """Return RADIATING with 0.1 on the busbar cells (bare metal), or the map given."""
    if emissivity_top_map is None:
        emissivity_top_map = np.where(layout.material_id == 0, 0.1, 0.9)
    return dataclasses.replace(RADIATING, emissivity_top_map=emissivity_top_map)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_uniform_emissivity_map_equals_scalar(precision):
    layout = two_material_layout()
    mapped = mapped_boundary(layout, np.full(layout.shape, 0.9))
    options = dict(n_layers=2, duration_s=5.0, dt_s=0.25, precision=precision)
    sources = [ramped_hotspot(layout)]

    expected = simulate_adi(layout, sources, boundary=RADIATING, **options)
    result = simulate_adi(layout, sources, boundary=mapped, **options)

    np.testing.assert_array_equal(result.rise_all_K, expected.rise_all_K)
    assert result.energy_lost_J == expected.energy_lost_J
    assert result.energy_stored_J == expected.energy_stored_J


def test_adi_matches_fipy_with_emissivity_map():
    layout = two_material_layout()
    boundary = mapped_boundary(layout)
    options = dict(boundary=boundary, n_layers=2, duration_s=5.0, dt_s=0.25)
    sources = [ramped_hotspot(layout)]

    reference = simulate(layout, sources, **options)
    result = simulate_adi(layout, sources, precision="float64", **options)
    uniform = simulate_adi(
        layout, sources, precision="float64", **{**options, "boundary": RADIATING}
    )

    # The tolerance of the scalar case: splitting differs from implicit Euler
    # by O(dt**2) per step.
    peak_K = np.abs(reference.rise_all_K).max()
    error_K = np.abs(result.rise_all_K - reference.rise_all_K).max()
    assert error_K <= 0.01 * peak_K
    assert result.energy_stored_J == pytest.approx(reference.energy_stored_J, rel=1e-3)
    assert result.energy_lost_J < uniform.energy_lost_J


def test_emissivity_map_effect_matches_lu():
    # The map's own effect, the rise with the map minus the rise without it,
    # isolated from the splitting error that both runs share. At dt = 0.25 s
    # the two solvers' effects agreed to 0.4 %; at dt = 1 s ADI's splitting
    # error on the busbars (9 % of the peak) moved it by 34 %.
    layout = two_material_layout()
    options = dict(n_layers=2, duration_s=20.0, dt_s=0.25)
    sources = [ramped_hotspot(layout)]
    effects = []
    for solve, extra in ((simulate_fast, {}), (simulate_adi, {"precision": "float64"})):
        mapped = solve(
            layout, sources, boundary=mapped_boundary(layout), **options, **extra
        )
        uniform = solve(layout, sources, boundary=RADIATING, **options, **extra)
        effects.append(mapped.rise_all_K - uniform.rise_all_K)

    lu_effect, adi_effect = effects
    assert np.abs(lu_effect).max() > 0.4
    assert np.abs(adi_effect - lu_effect).max() <= 0.01 * np.abs(lu_effect).max()


def test_cached_grid_follows_emissivity_map():
    # Grids are cached per boundary, so a boundary that differs only in its
    # map must get its own grid.
    layout = two_material_layout()
    options = dict(n_layers=2, duration_s=2.0, dt_s=0.5)
    sources = [ramped_hotspot(layout)]
    bare = simulate_adi(layout, sources, boundary=mapped_boundary(layout), **options)

    painted = mapped_boundary(layout, np.full(layout.shape, 0.9))
    after_bare = simulate_adi(layout, sources, boundary=painted, **options)
    adi._GRIDS.clear()
    fresh = simulate_adi(layout, sources, boundary=painted, **options)

    np.testing.assert_array_equal(after_bare.rise_all_K, fresh.rise_all_K)
    assert not np.array_equal(bare.rise_all_K, fresh.rise_all_K)


def test_zero_emissivity_cells_skip_radiation():
    # A map of 0 and 1 radiates only where it is 1, so the loss terms carry
    # no emissivity on the other cells and the grid is not linear.
    layout = two_material_layout()
    emissivity = np.where(layout.material_id == 0, 0.0, 1.0)
    grid = adi.AdiGrid(
        layout, mapped_boundary(layout, emissivity), np.full((2, 24, 32), 25.0)
    )

    assert not grid.linear
    np.testing.assert_array_equal(grid.loss[1, 0] > 0, emissivity > 0)
    linear = adi.AdiGrid(
        layout,
        Boundary(emissivity_top=0.9, emissivity_top_map=np.zeros(layout.shape)),
        np.full((2, 24, 32), 25.0),
    )
    assert linear.linear


FORK_SCRIPT = """
import multiprocessing, sys
import numba
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.sources import hotspot
from thermosynth.pipeline import Generator
from thermosynth.recipe import load_demo_recipe

layout = Generator(load_demo_recipe()).layout

def run():
    source = hotspot(layout, x_mm=30.0, y_mm=40.0, radius_mm=5.0, power_W=5.0)
    simulate_adi(layout, [source], duration_s=20.0, dt_s=10.0)

if __name__ == "__main__":
    run()
    if len(sys.argv) > 1:
        child = multiprocessing.get_context("fork").Process(target=run)
        child.start()
        child.join()
        print(child.exitcode)
    print(numba.threading_layer())
"""


def _run_fork_script(tmp_path, *args: str, layer: str | None = None):
    script = tmp_path / "fork_after_adi.py"
    script.write_text(FORK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return done.stdout.split()


def test_forked_child_runs_adi_after_parent(tmp_path):
    # GNU OpenMP kills a forked child at its first parallel loop, as a torch
    # DataLoader worker forked after the parent simulated.
    exitcode, layer = _run_fork_script(tmp_path, "fork")

    assert exitcode == "0"
    assert layer != "omp"


def test_user_threading_layer_is_kept(tmp_path):
    (layer,) = _run_fork_script(tmp_path, layer="omp")
    assert layer == "omp"


def stiff_plate():
    """Return 32 x 32 cells of 0.5 mm, where dt (c_-x + c_+x) / rho_cp is 120 at 1 s."""
    material = Material("stiff", 30.0, 30.0, 0.5, 2e6)
    grid = np.zeros((32, 32), dtype=int)
    return Layout(0.5, 0.5, 1.0, grid, (material,), grid - 1)


def peak_errors_K(layout, source, times):
    """Return the LU and ADI peak-rise errors at dt 1 s against dt 0.01 s [K]."""
    options = dict(
        boundary=Boundary(h_top_W_m2K=10.0), duration_s=16.0, output_times_s=times
    )
    reference = simulate_fast(layout, [source], dt_s=0.01, **options)
    lu = simulate_fast(layout, [source], dt_s=1.0, **options)
    split = simulate_adi(layout, [source], dt_s=1.0, **options)

    peak = reference.rise_K.max(axis=(1, 2))
    lu_error = np.abs(lu.rise_K.max(axis=(1, 2)) - peak)
    adi_error = np.abs(split.rise_K.max(axis=(1, 2)) - peak)
    balance = split.energy_stored_J + split.energy_lost_J
    assert balance == pytest.approx(split.energy_in_J, rel=1e-10)
    return lu_error, adi_error


@pytest.mark.parametrize("power_W", [1.0, Ramp(1.0, ramp_s=4.0)])
def test_startup_substeps_match_lu_error(power_W):
    # Equal Douglas steps left the 1 mm hotspot's peak 40 % low after the
    # first step, 4 times the LU solver's error (9 times after the second).
    layout = stiff_plate()
    source = hotspot(layout, x_mm=8.0, y_mm=8.0, radius_mm=1.0, power_W=power_W)

    lu_error, adi_error = peak_errors_K(layout, source, [1.0, 2.0])

    assert lu_error[0] > 0.05
    assert adi_error[0] <= 1.5 * lu_error[0]
    assert adi_error[1] <= 1.5 * lu_error[1]


def test_ramp_startups_match_lu_error():
    # The 10 s ramp starts up in 6 of its 10 steps and once where it levels
    # off. Without that last start-up, ADI erred 9.3 times as much as LU at
    # 12 s, and with STARTUP_POWER_FRACTION = 0.5 2.25 times at 6 s.
    layout = stiff_plate()
    power_W = Ramp(1.0, ramp_s=10.0)
    source = hotspot(layout, x_mm=8.0, y_mm=8.0, radius_mm=1.0, power_W=power_W)
    times = [3.0, 6.0, 12.0, 16.0]

    lu_error, adi_error = peak_errors_K(layout, source, times)

    for index, time_s in enumerate(times):
        assert adi_error[index] <= 1.5 * lu_error[index], f"at {time_s} s"


def test_equal_steps_lag_after_power_change(monkeypatch):
    # Without the start-up sub-steps the error is far above the LU solver's,
    # so test_startup_substeps_match_lu_error can fail.
    monkeypatch.setattr(adi, "MAX_XY_STIFFNESS", math.inf)
    layout = stiff_plate()
    source = hotspot(layout, x_mm=8.0, y_mm=8.0, radius_mm=1.0, power_W=1.0)

    lu_error, adi_error = peak_errors_K(layout, source, [1.0, 2.0])

    assert adi_error[0] > 3.0 * lu_error[0]
    assert adi_error[1] > 3.0 * lu_error[1]


def test_narrow_flushed_drops_subnormal_rises():
    tiny = adi.FLUSH_BELOW_K
    wide = np.array(
        [[0.1, -0.3, 0.5 * tiny, -0.5 * tiny], [tiny, 1e40, np.nan, 1.0 / 3.0]]
    )
    narrow = np.full(wide.shape, -1.0, dtype=np.float32)

    kernels.narrow_flushed(wide, narrow, tiny)

    # Within the normal range the copy rounds as numpy's cast does.
    np.testing.assert_array_equal(narrow[0, :2], wide[0, :2].astype(np.float32))
    np.testing.assert_array_equal(narrow[0, 2:], [0.0, 0.0])
    assert narrow[1, 0] == np.float32(tiny)
    assert narrow[1, 1] == np.inf
    assert np.isnan(narrow[1, 2])
    assert narrow[1, 3] == np.float32(1.0 / 3.0)


def test_startup_steps_double_and_sum_exactly():
    layout = stiff_plate()
    initial = np.full((1, *layout.shape), 25.0)
    grid = adi.AdiGrid(layout, INSULATED, initial)

    lengths = grid.startup_steps(1.0)

    assert sum(lengths) == 1.0
    assert lengths[0] == lengths[1]
    assert lengths[0] * grid.xy_rate_per_s <= adi.MAX_XY_STIFFNESS
    assert 2 * lengths[0] * grid.xy_rate_per_s > adi.MAX_XY_STIFFNESS
    np.testing.assert_array_equal(np.diff(lengths[1:]), lengths[1:-1])
    assert grid.startup_steps(0.5 / grid.xy_rate_per_s) == [0.5 / grid.xy_rate_per_s]


def test_startup_mask_per_scenario():
    layout = two_material_layout()
    constant = hotspot(layout, x_mm=5.0, y_mm=5.0, radius_mm=1.5, power_W=0.8)
    ramped = ramped_hotspot(layout, n_layers=1)
    step_ends = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])

    startups = adi._startup_mask([[constant], [], [ramped]], step_ends)

    np.testing.assert_array_equal(startups[0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(startups[1], [0, 0, 0, 0, 0, 0])
    # The 2 s ramp's mean power per step is 1/8, 3/8, 5/8, 7/8, 1 and 1 of
    # its end value. Step 5 moves it by 1/8, within STARTUP_POWER_FRACTION,
    # and step 6, where it levels off, clears that drift.
    np.testing.assert_array_equal(startups[2], [1, 1, 1, 1, 0, 1])


def test_long_ramp_skips_startups():
    layout = two_material_layout()
    ramped = hotspot(
        layout, x_mm=5.0, y_mm=5.0, radius_mm=1.5, power_W=Ramp(1.0, ramp_s=10.0)
    )
    pulse = hotspot(
        layout,
        x_mm=5.0,
        y_mm=5.0,
        radius_mm=1.5,
        power_W=Pulse(1.0, start_s=2.0, stop_s=4.0),
    )
    step_ends = np.arange(1.0, 13.0)

    startups = adi._startup_mask([[ramped], [pulse]], step_ends)

    # The mean power grows by 1/10 per step. A step starts up once it has
    # grown by more than a quarter of itself since the last start-up, and
    # step 12 where it levels off.
    expected = [1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1]
    np.testing.assert_array_equal(startups[0], expected)
    # A pulse starts up where it switches on and where it switches off.
    np.testing.assert_array_equal(startups[1], [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0])


def test_failure_names_index_in_whole_batch():
    # The two scenarios start up at different steps, so they run as separate
    # groups, and the failed one is still named by its batch index.
    layout = two_material_layout()
    weights = ramped_hotspot(layout, n_layers=1).weights_m3
    bad = VolumeSource(weights, lambda t: math.inf, "broken")
    good = hotspot(layout, x_mm=5.0, y_mm=5.0, radius_mm=1.5, power_W=0.8)
    calls = []

    with pytest.warns(RuntimeWarning, match="batch scenario 1:"):
        results = simulate_adi_batch(
            layout,
            [[good], [bad]],
            duration_s=1.0,
            dt_s=0.5,
            on_failure="warn",
            progress=lambda step, total: calls.append((step, total)),
        )

    assert np.isfinite(results[0].rise_K).all()
    assert np.isnan(results[1].rise_K[-1]).all()
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


NEEDS_X86 = pytest.mark.skipif(
    not kernels.CAN_FLUSH_SUBNORMALS,
    reason="flushing subnormal numbers sets the MXCSR register of x86-64 CPUs",
)


@pytest.mark.parametrize(
    "float32_startup", [pytest.param(True, marks=NEEDS_X86), False]
)
def test_float32_startup_leaves_no_subnormals(monkeypatch, float32_startup):
    # A metal strip sets a short first sub-step, and across the plastic the
    # rise then falls below float32's smallest normal number. The start-up
    # sub-steps flush subnormal numbers to 0, or run in float64 and hand
    # back 0 there.
    monkeypatch.setattr(adi, "FLOAT32_STARTUP", float32_startup)
    plastic = Material("plastic", 0.05, 0.05, 0.05, 2e6)
    metal = Material("metal", 200.0, 200.0, 200.0, 2.4e6)
    grid = np.zeros((8, 64), dtype=int)
    grid[:, -2:] = 1
    layout = Layout(0.5, 0.5, 1.0, grid, (plastic, metal), grid - 1)
    source = hotspot(layout, x_mm=1.0, y_mm=2.0, radius_mm=1.0, power_W=1.0)

    result = simulate_adi(
        layout, [source], duration_s=1.0, dt_s=1.0, precision="float32"
    )

    rise = np.abs(result.rise_all_K[-1])
    subnormal = (rise > 0.0) & (rise < np.finfo(np.float32).tiny)
    assert rise.max() > 1.0
    assert (rise == 0.0).any()
    assert not subnormal.any()


def float32_startup_results(monkeypatch, layout, sources, **options):
    """Return float32 results with the start-up in float32, then in float64."""
    options = dict(precision="float32", **options)
    flushed = simulate_adi(layout, sources, **options)
    monkeypatch.setattr(adi, "FLOAT32_STARTUP", False)
    wide = simulate_adi(layout, sources, **options)
    return flushed, wide


@NEEDS_X86
@pytest.mark.parametrize("case", ["stiff", "two layers"])
def test_float32_startup_matches_float64_startup(monkeypatch, case):
    if case == "stiff":
        layout = stiff_plate()
        sources = [hotspot(layout, x_mm=8.0, y_mm=8.0, radius_mm=1.0, power_W=1.0)]
        options = dict(boundary=Boundary(h_top_W_m2K=10.0), dt_s=1.0)
    else:
        layout = two_material_layout()
        sources = [ramped_hotspot(layout)]
        options = dict(boundary=RADIATING, n_layers=2, dt_s=0.25)

    flushed, wide = float32_startup_results(
        monkeypatch, layout, sources, duration_s=4.0, **options
    )

    peak_K = np.abs(wide.rise_all_K).max()
    error_K = np.abs(flushed.rise_all_K - wide.rise_all_K).max()
    balance_J = flushed.energy_stored_J + flushed.energy_lost_J
    assert peak_K > 0.1
    assert error_K <= 1e-6 * peak_K
    assert error_K > 0.0  # the start-up did run in float32
    assert balance_J == pytest.approx(flushed.energy_in_J, rel=1e-5)
    assert flushed.energy_in_J == wide.energy_in_J


@NEEDS_X86
def test_float32_startup_keeps_lu_accuracy(monkeypatch):
    # As test_startup_substeps_match_lu_error, for float32 steps.
    layout = stiff_plate()
    source = hotspot(layout, x_mm=8.0, y_mm=8.0, radius_mm=1.0, power_W=1.0)
    options = dict(
        boundary=Boundary(h_top_W_m2K=10.0), duration_s=2.0, output_times_s=[1, 2]
    )
    reference = simulate_fast(layout, [source], dt_s=0.01, **options)
    lu = simulate_fast(layout, [source], dt_s=1.0, **options)

    flushed, _ = float32_startup_results(
        monkeypatch, layout, [source], dt_s=1.0, **options
    )

    peak = reference.rise_K.max(axis=(1, 2))
    lu_error = np.abs(lu.rise_K.max(axis=(1, 2)) - peak)
    adi_error = np.abs(flushed.rise_K.max(axis=(1, 2)) - peak)
    assert adi_error[0] <= 1.5 * lu_error[0]
    assert adi_error[1] <= 1.5 * lu_error[1]


@numba.njit(parallel=True)
def scaled_in_tasks(values, factor):
    """Return ``values * factor``, computed in numba's parallel tasks."""
    out = np.empty_like(values)
    for k in numba.prange(values.size):
        out[k] = values[k] * factor
    return out


@NEEDS_X86
def test_float32_startup_restores_subnormals(monkeypatch):
    # Each task sets FTZ and DAZ only while it runs, so later arithmetic on
    # this thread and on numba's threads keeps subnormal numbers.
    layout = two_material_layout()
    options = dict(n_layers=2, duration_s=0.5, dt_s=0.5, precision="float32")
    monkeypatch.setattr(adi, "PARALLEL_MIN_CELLS", 0)
    values = np.full(64, 1e-30, dtype=np.float32)
    subnormal = np.float32(1e-30) * np.float32(1e-9)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        simulate_adi(layout, [ramped_hotspot(layout)], **options)
        scaled = scaled_in_tasks(values, np.float32(1e-9))
    finally:
        numba.set_num_threads(previous)

    assert 0.0 < subnormal < np.finfo(np.float32).tiny
    assert np.float32(1e-30) * np.float32(1e-9) == subnormal
    np.testing.assert_array_equal(scaled, np.full(64, subnormal))


def test_batch_startups_equal_each_scenario_alone():
    # Scenarios with fewer sources get sources of 0 W in the batch's array,
    # and a non-finite power must not change the other scenarios' rows.
    layout = two_material_layout()
    ramped = hotspot(
        layout, x_mm=5.0, y_mm=5.0, radius_mm=1.5, power_W=Ramp(1.0, ramp_s=10.0)
    )
    pulse = dataclasses.replace(ramped, power_W=Pulse(2.0, start_s=2.0, stop_s=4.0))
    off = dataclasses.replace(ramped, power_W=Constant(0.0))
    broken = VolumeSource(
        ramped.weights_m3, lambda t: math.inf if t > 5.0 else 1.0, "broken"
    )
    batch = [[ramped], [], [pulse, ramped], [broken], [ramped, off], [off, pulse]]
    step_ends = np.arange(1.0, 13.0)

    together = adi._startup_mask(batch, step_ends)

    for scenario, sources in enumerate(batch):
        alone = adi._startup_mask([sources], step_ends)[0]
        np.testing.assert_array_equal(together[scenario], alone, f"scenario {scenario}")
    pulse_alone = adi._startup_mask([[pulse]], step_ends)[0]
    np.testing.assert_array_equal(together[4], together[0])
    np.testing.assert_array_equal(together[5], pulse_alone)
    # Power 1 W up to 5 s, then non-finite, so every step from 5 s on.
    np.testing.assert_array_equal(together[3], [1, 0, 0, 0, 0] + [1] * 7)
