"""Tests of runaway chemistry coupled to heat conduction on a layout."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.geometry.layouts import module
from thermosynth.physics import runaway
from thermosynth.physics.heat import Boundary
from thermosynth.physics.profiles import Pulse, Ramp
from thermosynth.physics.runaway import SeparatorShort, Venting, simulate_runaway
from thermosynth.physics.sources import held_patch, hotspot


def three_cells(pad_mm: float):
    """Three 10 x 10 mm prismatic cells with thermal pads, on a grid of pad_mm."""
    return module(
        n_cells=3,
        cell_width_mm=10.0,
        cell_height_mm=10.0,
        thickness_mm=10.0,
        gap_mm=pad_mm,
        gap_material="thermal_pad",
        resolution_mm=pad_mm,
        cell_material="prismatic_cell",
    )


@pytest.fixture(scope="module")
def row():
    """Three 10 x 10 mm prismatic cells with 2 mm thermal pads between them."""
    return three_cells(2.0)


@pytest.fixture(scope="module")
def spread(row):
    trigger = hotspot(
        row,
        x_mm=5.0,
        y_mm=5.0,
        radius_mm=3.0,
        power_W=Pulse(10.0, start_s=0, stop_s=120),
    )
    return simulate_runaway(
        row,
        boundary=Boundary(h_top_W_m2K=10.0),
        duration_s=150.0,
        dt_s=2.0,
        triggers=[trigger],
        venting=Venting(sei_conversion=0.9, energy_J=20.0, heat_capacity_fraction=0.8),
        output_times_s=[0.0, 60.0, 150.0],
    )


def test_runaway_spreads_along_row(spread):
    onset = spread.onset_s

    assert np.all(np.isfinite(onset))
    assert onset[0] < onset[1] < onset[2]


def test_runaway_energy_balance(spread):
    balance = spread.energy_released_J + spread.energy_in_J
    books = spread.energy_stored_J + spread.energy_lost_J

    assert spread.energy_released_J > 1000.0
    assert spread.energy_vented_J > 60.0
    assert books == pytest.approx(balance, rel=1e-3)


def test_runaway_result_shapes(spread, row):
    assert spread.rise_K.shape == (3, *row.shape)
    assert np.all(spread.rise_K[0] == 0.0)
    assert spread.max_temperature_C >= spread.cell_max_C.max()
    assert np.all(np.isfinite(spread.vent_s))


def test_cold_cell_does_not_run_away(row):
    result = simulate_runaway(row, boundary=Boundary(), duration_s=600.0, dt_s=60.0)

    assert np.all(np.isnan(result.onset_s))
    assert np.abs(result.rise_K).max() < 1e-3


def test_hot_neighbour_triggers_runaway(row):
    initial = np.full(row.shape, 25.0)
    initial[row.cell_id == 0] = 250.0

    result = simulate_runaway(
        row, initial_C=initial, duration_s=40.0, dt_s=2.0, output_times_s=[40.0]
    )

    assert result.onset_s[0] < 1.0
    assert result.onset_s[0] < result.onset_s[1] < result.onset_s[2]


def test_runaway_rejects_layout_without_cells():
    steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    grid = np.zeros((4, 4), dtype=int)
    layout = Layout(1.0, 1.0, 1.0, grid, (steel,), grid - 1)

    with pytest.raises(LayoutError, match="no battery cell"):
        simulate_runaway(layout, duration_s=1.0, dt_s=0.1)


def test_runaway_rejects_bad_step_limit(row):
    with pytest.raises(RecipeError, match="max_dT_per_step_K"):
        simulate_runaway(row, duration_s=1.0, dt_s=0.1, max_dT_per_step_K=0.0)


def _nan_trigger(row):
    return hotspot(row, x_mm=5.0, y_mm=5.0, radius_mm=3.0, power_W=lambda t: math.nan)


def test_runaway_raises_on_non_finite_temperature(row):
    with pytest.raises(SimulationError, match="non-finite"):
        simulate_runaway(row, duration_s=10.0, dt_s=1.0, triggers=[_nan_trigger(row)])


def test_runaway_warns_on_non_finite_temperature(row):
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = simulate_runaway(
            row,
            duration_s=10.0,
            dt_s=1.0,
            triggers=[_nan_trigger(row)],
            output_times_s=[5.0, 10.0],
            on_failure="warn",
        )

    assert np.all(np.isnan(result.rise_K))


def cold_run(row, boundary, *, solver=simulate_runaway):
    """Heat the first cell by 2 W for 60 s, far too little to start the reactions."""
    trigger = hotspot(row, x_mm=5.0, y_mm=5.0, radius_mm=3.0, power_W=2.0)
    if solver is simulate_runaway:
        return simulate_runaway(
            row, boundary=boundary, duration_s=60.0, dt_s=2.0, triggers=[trigger]
        )
    return solver(row, [trigger], boundary=boundary, duration_s=60.0, dt_s=2.0)


def test_runaway_uniform_map_equals_scalar(row):
    scalar = Boundary(h_top_W_m2K=10.0, emissivity_top=0.9)
    mapped = Boundary(h_top_W_m2K=10.0, emissivity_top_map=np.full(row.shape, 0.9))

    expected = cold_run(row, scalar)
    result = cold_run(row, mapped)

    np.testing.assert_array_equal(result.rise_all_K, expected.rise_all_K)
    assert result.energy_lost_J == expected.energy_lost_J


def test_runaway_matches_fast_with_map(row):
    # Bare cells (0.05) between painted pads (0.9). At these temperatures the
    # reactions release about 1e-4 J against 120 J in, so the runaway solver's
    # heat steps must match the LU solver's to that share.
    from thermosynth.physics.fast import simulate_fast

    emissivity = np.where(row.cell_id >= 0, 0.05, 0.9)
    boundary = Boundary(h_top_W_m2K=10.0, emissivity_top_map=emissivity)
    uniform = Boundary(h_top_W_m2K=10.0, emissivity_top=0.9)

    result = cold_run(row, boundary)
    reference = cold_run(row, boundary, solver=simulate_fast)
    painted = cold_run(row, uniform)

    peak_K = reference.rise_K.max()
    error_K = np.abs(result.rise_K[-1] - reference.rise_K[-1]).max()
    effect_K = np.abs(result.rise_K[-1] - painted.rise_K[-1]).max()
    assert error_K <= 1e-5 * peak_K
    assert effect_K > 100 * error_K
    assert result.energy_lost_J < painted.energy_lost_J
    books = result.energy_stored_J + result.energy_lost_J
    balance = result.energy_released_J + result.energy_in_J
    assert books == pytest.approx(balance, rel=1e-9)


# Reached by cell 0 of heated_run at 44 s; 20 J heats the 1 mL cell by about 8 K.
SHORT_AT_45_C = SeparatorShort(onset_C=45.0, energy_J=20.0, duration_s=3.3)


def heated_run(row, separator_short=None, *, max_dT_per_step_K=20.0):
    """Heat cell 0 by 2 W for 60 s, recording every 2 s step; it reaches about 50 C."""
    trigger = hotspot(row, x_mm=5.0, y_mm=5.0, radius_mm=3.0, power_W=2.0)
    return simulate_runaway(
        row,
        boundary=Boundary(h_top_W_m2K=10.0),
        duration_s=60.0,
        dt_s=2.0,
        triggers=[trigger],
        separator_short=separator_short,
        max_dT_per_step_K=max_dT_per_step_K,
        output_times_s=np.arange(0.0, 61.0, 2.0),
    )


def cell_max_C(result, row, cell):
    """Return the hottest temperature of one cell at each output time [C]."""
    return 25.0 + result.rise_all_K[:, :, row.cell_id == cell].max(axis=(1, 2))


def test_short_starts_at_onset(row):
    result = heated_run(row, SHORT_AT_45_C)
    start = result.short_s[0]
    hottest = cell_max_C(result, row, 0)
    step = int(np.flatnonzero(result.times_s == start)[0])

    assert 0.0 < start < 60.0
    assert hottest[step] >= 45.0
    assert hottest[step - 1] < 45.0
    assert np.all(np.isnan(result.short_s[1:]))


def test_short_delivers_its_energy(row):
    # The short ends 3.3 s after its start, inside a 2 s step, and before 60 s.
    result = heated_run(row, SHORT_AT_45_C)
    plain = heated_run(row)

    assert result.short_s[0] + 3.3 < 60.0
    assert result.energy_short_J == pytest.approx(20.0, rel=1e-12)
    assert result.energy_in_J == pytest.approx(plain.energy_in_J + 20.0, rel=1e-12)
    assert result.cell_max_C[0] > plain.cell_max_C[0] + 3.0


def test_short_below_onset_changes_nothing(row):
    result = heated_run(row, replace(SHORT_AT_45_C, onset_C=60.0))
    plain = heated_run(row)

    assert np.all(np.isnan(result.short_s))
    assert result.energy_short_J == 0.0
    np.testing.assert_array_equal(result.rise_all_K, plain.rise_all_K)
    assert result.energy_in_J == plain.energy_in_J
    assert result.n_steps == plain.n_steps


def test_short_limits_rise_per_step(row):
    # 200 J in 3.3 s heats the 1 mL cell by about 80 K, so a 5 K limit needs
    # at least 16 steps while it runs, against 2 steps of 2 s without limit.
    short = SeparatorShort(onset_C=45.0, energy_J=200.0, duration_s=3.3)
    result = heated_run(row, short, max_dT_per_step_K=5.0)
    plain = heated_run(row, max_dT_per_step_K=5.0)
    hottest = cell_max_C(result, row, 0)
    # The trigger's own limit ends steps off the 2 s outputs, so the short
    # starts after output `step`, not exactly on it.
    step = int(np.flatnonzero(result.times_s <= result.short_s[0])[-1])

    assert result.n_steps >= plain.n_steps + 14
    assert hottest[step + 2] - hottest[step] > 60.0


def test_short_too_fast_raises(row):
    short = SeparatorShort(onset_C=45.0, energy_J=1e7, duration_s=1e-12)

    with pytest.raises(SimulationError, match=r"lengthen separator_short_s"):
        heated_run(row, short)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"onset_C": math.nan}, "onset_C = nan"),
        ({"onset_C": -300.0}, "onset_C = -300.0"),
        ({"energy_J": 0.0}, "energy_J = 0.0"),
        ({"energy_J": -5.0}, "energy_J = -5.0"),
        ({"energy_J": math.inf}, "energy_J = inf"),
        ({"duration_s": 0.0}, "duration_s = 0.0"),
        ({"duration_s": True}, "duration_s = True"),
        ({"radius_mm": 0.0}, "radius_mm = 0.0"),
        ({"radius_mm": math.inf}, "radius_mm = inf"),
        ({"radius_mm": math.nan}, "radius_mm = nan"),
    ],
)
def test_short_rejects_invalid_values(values, key):
    arguments = {"onset_C": 130.0, "energy_J": 1000.0, "duration_s": 10.0, **values}

    with pytest.raises(RecipeError, match=f"separator_short: {key} is invalid; give"):
        SeparatorShort(**arguments)


@pytest.fixture(scope="module")
def padded_row():
    """Three 10 x 10 mm prismatic cells with 5 mm thermal pads, on a 5 mm grid."""
    return three_cells(5.0)


@pytest.fixture(scope="module")
def propagation(padded_row):
    """Cell 0 starts at 250 C and runs away; 30 s with and without shorts.

    The short releases 500 J in 5 s, about a quarter of the electrical
    energy of a 1 mL cell at 600 Wh/L.
    """
    initial = np.where(padded_row.cell_id == 0, 250.0, 25.0)
    short = SeparatorShort(onset_C=130.0, energy_J=500.0, duration_s=5.0)
    return {
        name: simulate_runaway(
            padded_row,
            boundary=Boundary(h_top_W_m2K=10.0),
            initial_C=initial,
            duration_s=30.0,
            dt_s=2.0,
            separator_short=separator_short,
            output_times_s=[30.0],
        )
        for name, separator_short in [("plain", None), ("short", short)]
    }


def test_short_spreads_runaway(propagation):
    plain = propagation["plain"]
    shorted = propagation["short"]

    assert plain.onset_s[0] < 1.0
    assert np.isnan(plain.onset_s[1])
    assert shorted.short_s[0] == 0.0
    assert shorted.short_s[1] < shorted.onset_s[1] < 30.0


def test_short_energy_balance(propagation):
    result = propagation["short"]
    books = result.energy_stored_J + result.energy_lost_J
    balance = result.energy_released_J + result.energy_in_J

    assert result.energy_short_J == pytest.approx(1000.0, rel=1e-12)
    assert result.energy_in_J == result.energy_short_J
    assert books == pytest.approx(balance, rel=1e-12)


@pytest.mark.parametrize("radius_mm", [2.0, 4.5])
def test_local_short_heats_ball(row, monkeypatch, radius_mm):
    # One layer on a 2 mm grid, cell 0 is 5 x 5 grid cells. Its hottest grid
    # cell when it shorts is the second of the middle row, next to the
    # cell's outer edge: the ball around it contains 5 grid cells at 2 mm, and
    # 18 at 4.5 mm, where the cell's edge cuts 3 of a full disc's 21.
    shorted_masks = []
    original = runaway._RunawayModel._shorted_cells

    def recording(model, cell, radius):
        where = original(model, cell, radius)
        shorted_masks.append(np.isin(np.arange(model.T.size), where).reshape(row.shape))
        return where

    monkeypatch.setattr(runaway._RunawayModel, "_shorted_cells", recording)
    result = heated_run(row, replace(SHORT_AT_45_C, radius_mm=radius_mm))
    step = int(np.flatnonzero(result.times_s == result.short_s[0])[0])
    rise = np.where(row.cell_id == 0, result.rise_all_K[step, 0], -np.inf)
    j0, i0 = np.unravel_index(np.argmax(rise), row.shape)
    jj, ii = np.mgrid[: row.shape[0], : row.shape[1]]
    distance_mm = np.hypot((jj - j0) * row.dy_mm, (ii - i0) * row.dx_mm)
    inside = (row.cell_id == 0) & (distance_mm <= radius_mm)

    assert (j0, i0) == (2, 1)
    assert inside.sum() == {2.0: 5, 4.5: 18}[radius_mm]
    assert len(shorted_masks) == 1
    np.testing.assert_array_equal(shorted_masks[0], inside)
    assert result.energy_short_J == pytest.approx(20.0, rel=1e-12)


def test_short_wider_than_the_cell_heats_it_uniformly(row):
    local = heated_run(row, replace(SHORT_AT_45_C, radius_mm=100.0))
    uniform = heated_run(row, SHORT_AT_45_C)

    np.testing.assert_array_equal(local.rise_all_K, uniform.rise_all_K)


def prismatic_onset_s(dt_s: float) -> float:
    """Return the onset [s] of one 40 mm prismatic cell under a 600 W trigger.

    This is the cell and trigger of recipes/module-runaway.yaml, cut to one
    40 x 40 mm cell on its 8 mm grid, so a run takes well under a second.
    """
    cell = module(
        n_cells=1,
        cell_width_mm=40.0,
        cell_height_mm=40.0,
        thickness_mm=40.0,
        gap_mm=8.0,
        resolution_mm=8.0,
        cell_material="prismatic_cell",
    )
    trigger = hotspot(cell, x_mm=20.0, y_mm=20.0, radius_mm=12.0, power_W=600.0)
    result = simulate_runaway(
        cell,
        boundary=Boundary(h_top_W_m2K=8.0, emissivity_top=0.9),
        duration_s=35.0,
        dt_s=dt_s,
        triggers=[trigger],
    )
    return float(result.onset_s[0])


def test_trigger_onset_converges_in_dt():
    # The trigger heats its 9 grid cells by 10.8 K/s. Without a bound on
    # that heating, the recipe's 5 s steps marked onset at 35 s, against
    # 26 s at 0.1 s steps.
    reference_s = prismatic_onset_s(0.1)
    recipe_s = prismatic_onset_s(5.0)

    assert 20.0 < reference_s < 35.0
    assert recipe_s == pytest.approx(reference_s, rel=0.05)


def test_held_ramp_limits_rise_per_step(row):
    # A held patch ramped by 100 K over 10 s may change by at most 10 K
    # (half of max_dT_per_step_K) per step, so it needs at least 10 steps
    # where dt_s alone would take 1.
    patch = held_patch(
        row,
        x_mm=5.0,
        y_mm=5.0,
        radius_mm=3.0,
        temperature_C=Ramp(100.0, ramp_s=10.0, start_s=0.0),
    )
    result = simulate_runaway(
        row, duration_s=10.0, dt_s=10.0, triggers=[patch], max_dT_per_step_K=20.0
    )
    balance = result.energy_released_J + result.energy_in_J
    books = result.energy_stored_J + result.energy_lost_J

    assert result.n_steps >= 10
    assert books == pytest.approx(balance, rel=1e-3)


def pad_heater_run(row, dt_s: float, output_times_s=None):
    """Return 12 s of the test row with a 500 C heater in the pad after cell 0.

    The heater is the pad's middle grid cell, which faces one grid cell of
    cell 0 and one of cell 1.
    """
    heater = held_patch(row, x_mm=11.0, y_mm=5.0, radius_mm=1.0, temperature_C=500.0)
    return simulate_runaway(
        row,
        boundary=Boundary(h_top_W_m2K=10.0),
        duration_s=12.0,
        dt_s=dt_s,
        triggers=[heater],
        output_times_s=output_times_s,
    )


def test_held_patch_neighbours_match_small_steps(row):
    # Before the held patch's conduction bounded the step, 2 s steps left the
    # rise of the two facing grid cells 9-10 % short of the 0.02 s rise at
    # 2 s, and 3.5-4.6 % short at 4 s. With the bound all four are within 1 %.
    times_s = [2.0, 4.0]
    reference = pad_heater_run(row, 0.02, times_s).rise_K[:, 2, [4, 6]]
    default = pad_heater_run(row, 2.0, times_s).rise_K[:, 2, [4, 6]]

    assert reference.min() > 60.0
    np.testing.assert_allclose(default[0], reference[0], rtol=0.02)
    np.testing.assert_allclose(default[1], reference[1], rtol=0.02)


def test_held_patch_onset_converges_in_dt(row):
    # Cell 0 runs away at 8.48 s with 0.02 s steps. With 2 s steps it ran
    # away at 12.0 s (42 % late) before the held patch's conduction bounded
    # the step, and at 10.5 s (24 % late) with that bound alone. Bounding
    # conduction into awake cells too brings it to 8.87 s (5 % late).
    reference_s = pad_heater_run(row, 0.02).onset_s[0]
    default_s = pad_heater_run(row, 2.0).onset_s[0]

    assert 8.0 < reference_s < 9.0
    assert default_s == pytest.approx(reference_s, rel=0.08)


def hot_neighbour_onset_s(row, dt_s: float) -> float:
    """Return the onset [s] of cell 1 of the test row with cell 0 at 250 C."""
    initial = np.where(row.cell_id == 0, 250.0, 25.0)
    result = simulate_runaway(
        row,
        boundary=Boundary(h_top_W_m2K=10.0),
        initial_C=initial,
        duration_s=12.0,
        dt_s=dt_s,
    )
    return float(result.onset_s[1])


def test_propagation_onset_converges_in_dt(row):
    # Cell 0 runs away at once and heats cell 1 through the 2 mm pad. With
    # 0.02 s steps cell 1 runs away at 7.16 s. With 2 s steps it did so at
    # 10.47 s (46 % late) before conduction into awake grid cells bounded
    # the step, and at 7.93 s (11 % late) with that bound.
    reference_s = hot_neighbour_onset_s(row, 0.02)
    default_s = hot_neighbour_onset_s(row, 2.0)

    assert 6.5 < reference_s < 8.0
    assert default_s == pytest.approx(reference_s, rel=0.15)


def test_runaway_reaches_outputs_after_many_short_steps(row):
    # 300 steps of 0.02 s end a rounding error short of 6 s. The run must
    # still record the 6 s output, not stop there and leave it NaN.
    result = pad_heater_run(row, 0.02, [2.0, 4.0, 6.0])

    assert np.all(np.isfinite(result.rise_all_K))


def test_step_bounds_count_accepted_steps(spread):
    names = {"dt_s", "halved", "output", "trigger", "held_change"}
    names |= {"held_conduction", "approach", "short"}

    assert sum(spread.step_bounds.values()) == spread.n_steps
    assert set(spread.step_bounds) <= names


def _radiating_run(row):
    """Start cell 0 at 250 C under a radiating top face; return the run to 12 s."""
    initial = np.full(row.shape, 25.0)
    initial[row.cell_id == 0] = 250.0
    return simulate_runaway(
        row,
        boundary=Boundary(h_top_W_m2K=10.0, emissivity_top=0.9),
        initial_C=initial,
        duration_s=12.0,
        dt_s=2.0,
        output_times_s=[6.0, 12.0],
    )


def test_radiating_runaway_same_without_lu_reuse(row, monkeypatch):
    reuse_solver = runaway.DiagonalReuseSolver
    solvers = []

    def recorded(matrix, **options):
        solvers.append(reuse_solver(matrix, **options))
        return solvers[-1]

    monkeypatch.setattr(runaway, "DiagonalReuseSolver", recorded)
    reused = _radiating_run(row)
    # A diagonal change of 0 reuses a factorisation only for an identical
    # step matrix, which radiation does not repeat, so every step factorises.
    monkeypatch.setattr(
        runaway,
        "DiagonalReuseSolver",
        lambda matrix: recorded(matrix, max_change=0.0),
    )
    factorised = _radiating_run(row)

    assert solvers[0].n_reused > solvers[0].n_factorisations
    assert solvers[1].n_reused == 0
    assert np.isfinite(reused.onset_s[:2]).all()
    np.testing.assert_allclose(reused.onset_s, factorised.onset_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(reused.rise_K, factorised.rise_K, rtol=0, atol=1e-6)
    assert reused.n_steps == factorised.n_steps
