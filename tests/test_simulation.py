"""Scenario routing: one entry point for heat and runaway scenarios."""

from __future__ import annotations

import numpy as np

import thermosynth.physics.adi as adi
from thermosynth.build import build_layout
from thermosynth.recipe import load_demo_recipe
from thermosynth.scenario import draw_scenario
from thermosynth.simulation import simulate_scenario

RUNAWAY = (
    "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 40}]",
    "layout={kind: module, resolution_mm: 6, n_cells: 2, cell_width_mm: 30,"
    " cell_height_mm: 60, thickness_mm: 20, gap_mm: 6}",
    "physics.n_layers=1",
)


def drawn_for(loaded, index: int = 0):
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    spec = loaded.recipe.scenarios[index]
    return draw_scenario(spec, layout, np.random.default_rng(0)), layout


def test_heat_scenario_outputs_each_time():
    loaded = load_demo_recipe()
    drawn, layout = drawn_for(loaded)
    times = [drawn.duration_s / 3, drawn.duration_s * 2 / 3, drawn.duration_s]
    rise = simulate_scenario(drawn, layout, loaded.recipe, output_times_s=times)
    final = simulate_scenario(drawn, layout, loaded.recipe)
    assert rise.shape == (3, *layout.shape)
    assert rise.min() >= 0.0
    assert rise[0].max() < rise[1].max() < rise[2].max()
    # Steps are cut at each output time, so the two runs differ by the time
    # discretisation only.
    assert np.abs(rise[-1] - final[-1]).max() < 0.03 * final.max()


def test_runaway_scenario_routes_to_chemistry():
    loaded = load_demo_recipe(overrides=RUNAWAY)
    drawn, layout = drawn_for(loaded)
    rise = simulate_scenario(drawn, layout, loaded.recipe, output_times_s=[10.0, 40.0])
    assert rise.shape == (2, *layout.shape)
    assert rise.min() >= 0.0
    assert rise[1].max() > rise[0].max() > 0.0


def test_recipe_precision_reaches_adi(monkeypatch):
    seen = []
    original = adi.simulate_adi_batch

    def spy(*args, precision="float64", **kwargs):
        seen.append(precision)
        return original(*args, precision=precision, **kwargs)

    monkeypatch.setattr(adi, "simulate_adi_batch", spy)
    for overrides, expected in [
        ((), "float32"),
        (("physics.precision=float64",), "float64"),
    ]:
        loaded = load_demo_recipe(overrides=overrides)
        drawn, layout = drawn_for(loaded)
        simulate_scenario(drawn, layout, loaded.recipe)
        assert seen[-1] == expected
