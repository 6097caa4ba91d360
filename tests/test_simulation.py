"""Scenario routing: one entry point for heat and runaway scenarios."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from demo_overrides import NO_TAB_EMISSIVITY

import thermosynth.physics.adi as adi
import thermosynth.simulation as simulation
from thermosynth.build import build_layout
from thermosynth.cli import main
from thermosynth.errors import RecipeError, SimulationError
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.physics.heat import Boundary
from thermosynth.physics.runaway import SeparatorShort
from thermosynth.recipe import load_demo_recipe
from thermosynth.recipe.models import PhysicsSpec
from thermosynth.scenario import draw_scenario
from thermosynth.simulation import (
    ADI_SOLVER_NOTE,
    boundary_from,
    resolved_physics,
    simulate_scenario,
    top_emissivity_map,
)

RUNAWAY = (
    "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 40}]",
    "layout={kind: module, resolution_mm: 6, n_cells: 2, cell_width_mm: 30,"
    " cell_height_mm: 60, thickness_mm: 20, gap_mm: 6}",
    "physics.n_layers=1",
    *NO_TAB_EMISSIVITY,
)


# The demo's three layers are coupled so stiffly that its scenarios go to LU;
# at two layers they stay with ADI, which these tests are about.
ADI_LAYERS = "physics.n_layers=2"


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


def test_background_air_records_no_rise(monkeypatch):
    # The demo's tab heating warms the air between the tabs in the solve.
    loaded = load_demo_recipe(overrides=(ADI_LAYERS,))
    drawn, layout = drawn_for(loaded, index=1)
    background = layout.regions["background"]
    solved = []
    real_simulate = simulation.simulate_adi

    def keep_solved(*args, **kwargs):
        result = real_simulate(*args, **kwargs)
        solved.append(np.asarray(result.rise_K))
        return result

    monkeypatch.setattr(simulation, "simulate_adi", keep_solved)
    rise = simulate_scenario(drawn, layout, loaded.recipe)

    assert drawn.kind == "joule"
    assert solved[0][..., background].max() > 0.01
    assert rise[..., background].max() == 0.0
    np.testing.assert_array_equal(
        rise[..., ~background], np.maximum(solved[0], 0.0)[..., ~background]
    )
    assert rise[..., layout.regions["tabs"]].max() > 0.1


def test_runaway_scenario_routes_to_chemistry():
    loaded = load_demo_recipe(overrides=RUNAWAY)
    drawn, layout = drawn_for(loaded)
    rise = simulate_scenario(drawn, layout, loaded.recipe, output_times_s=[10.0, 40.0])
    assert rise.shape == (2, *layout.shape)
    assert rise.min() >= 0.0
    assert rise[1].max() > rise[0].max() > 0.0


@pytest.mark.parametrize(
    ("trigger", "low_J", "high_J"),
    [("", 6000, 6000), (", trigger_s: 17.5", 5250, 5250)],
)
def test_runaway_trigger_stops_at_trigger_s(monkeypatch, trigger, low_J, high_J):
    scenario = RUNAWAY[0].replace("duration_s: 40", f"duration_s: 40{trigger}")
    loaded = load_demo_recipe(overrides=(scenario, *RUNAWAY[1:], "physics.dt_s=5"))
    drawn, layout = drawn_for(loaded)
    results = []
    original = simulation.simulate_runaway

    def spy(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(simulation, "simulate_runaway", spy)
    simulate_scenario(drawn, layout, loaded.recipe, output_times_s=[20.0])

    # 300 W until the trigger ends, delivered exactly although 17.5 s falls
    # inside a 5 s step.
    assert low_J - 1e-6 <= results[0].energy_in_J <= high_J + 1e-6
    assert ("trigger_s" in drawn.params) == bool(trigger)


SHORT = "separator_short_C: 130, separator_short_energy_J: 5000, separator_short_s: 10"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("", None),
        (f", {SHORT}", SeparatorShort(130.0, 5000.0, 10.0)),
        (
            f", {SHORT}, separator_short_radius_mm: 4",
            SeparatorShort(130.0, 5000.0, 10.0, radius_mm=4.0),
        ),
    ],
)
def test_runaway_separator_short_reaches_solver(monkeypatch, keys, expected):
    scenario = RUNAWAY[0].replace("duration_s: 40", f"duration_s: 40{keys}")
    loaded = load_demo_recipe(overrides=(scenario, *RUNAWAY[1:]))
    drawn, layout = drawn_for(loaded)
    seen = []
    original = simulation.simulate_runaway

    def spy(*args, **kwargs):
        seen.append(kwargs["separator_short"])
        return original(*args, **kwargs)

    monkeypatch.setattr(simulation, "simulate_runaway", spy)
    simulate_scenario(drawn, layout, loaded.recipe, output_times_s=[5.0])

    assert seen == [expected]
    # Left out when unset, so bank keys of recipes without a short stay put.
    assert ("separator_short" in drawn.params) == bool(keys)


def test_runaway_separator_short_needs_all_keys():
    scenario = RUNAWAY[0].replace(
        "duration_s: 40", "duration_s: 40, separator_short_C: 130"
    )
    message = (
        r"separator short keys missing: separator_short_energy_J, "
        r"separator_short_s\. A separator short needs separator_short_C"
    )

    with pytest.raises(RecipeError, match=message):
        load_demo_recipe(overrides=(scenario, *RUNAWAY[1:]))


def test_runaway_separator_short_radius_needs_a_short():
    scenario = RUNAWAY[0].replace(
        "duration_s: 40", "duration_s: 40, separator_short_radius_mm: 4"
    )

    with pytest.raises(RecipeError, match=r"radius_mm is given without a separator"):
        load_demo_recipe(overrides=(scenario, *RUNAWAY[1:]))


def test_runaway_separator_short_rejects_bad_energy():
    scenario = RUNAWAY[0].replace(
        "duration_s: 40", f"duration_s: 40, {SHORT.replace('5000', '-1')}"
    )

    with pytest.raises(RecipeError, match=r"separator_short_energy_J' = -1"):
        load_demo_recipe(overrides=(scenario, *RUNAWAY[1:]))


def test_recipe_precision_reaches_adi(monkeypatch):
    seen = []
    original = adi.simulate_adi_batch

    def spy(*args, precision="float64", **kwargs):
        seen.append(precision)
        return original(*args, precision=precision, **kwargs)

    monkeypatch.setattr(adi, "simulate_adi_batch", spy)
    for overrides, expected in [
        ((ADI_LAYERS,), "float32"),
        ((ADI_LAYERS, "physics.precision=float64"), "float64"),
    ]:
        loaded = load_demo_recipe(overrides=overrides)
        drawn, layout = drawn_for(loaded)
        simulate_scenario(drawn, layout, loaded.recipe)
        assert seen[-1] == expected


JOULE_TABS = (
    "scenarios=[{kind: joule, region: tabs, current_A: 40, resistance_mohm: 2.0,"
    " duration_s: 120}]"
)


def test_bare_tabs_end_hotter():
    # 3.2 W of Joule heat in the tabs for 120 s. With bare tabs (0.1 instead
    # of 0.9) they lose about 4.8 W m-2 K-1 less by radiation, but most of
    # their heat flows into the cell body, so the rise grows by about 0.4 %.
    rises = {}
    for regions in ("{}", "{tabs: 0.1}"):
        overrides = (JOULE_TABS, f"physics.emissivity_top_regions={regions}")
        loaded = load_demo_recipe(overrides=overrides)
        drawn, layout = drawn_for(loaded)
        rises[regions] = simulate_scenario(drawn, layout, loaded.recipe)[-1]

    tabs = layout.regions["tabs"]
    painted, bare = rises["{}"][tabs].mean(), rises["{tabs: 0.1}"][tabs].mean()
    assert painted > 9.0
    assert bare > painted * 1.003
    assert np.all(rises["{tabs: 0.1}"] >= rises["{}"])


def test_unknown_emissivity_region_raises_first(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a solver ran before the region check")

    monkeypatch.setattr(simulation, "simulate_adi", fail)
    monkeypatch.setattr(simulation, "simulate_fast", fail)
    loaded = load_demo_recipe(
        overrides=("physics.emissivity_top_regions={tabs: 0.1, terminals: 0.1}",)
    )
    drawn, layout = drawn_for(loaded)

    message = (
        r"physics.emissivity_top_regions names region 'terminals'.*use one of its "
        r"regions: background, tab_negative, tab_positive, tabs"
    )
    with pytest.raises(RecipeError, match=message):
        simulate_scenario(drawn, layout, loaded.recipe)


def test_later_emissivity_region_wins():
    recipe = load_demo_recipe().recipe
    layout = build_layout(recipe.layout, recipe.materials)
    positive = layout.regions["tab_positive"]
    negative = layout.regions["tab_negative"]
    physics = PhysicsSpec(
        emissivity_top=0.9, emissivity_top_regions={"tabs": 0.2, "tab_positive": 0.05}
    )
    reverse = PhysicsSpec(
        emissivity_top=0.9, emissivity_top_regions={"tab_positive": 0.05, "tabs": 0.2}
    )

    emissivity = top_emissivity_map(physics, layout)
    assert np.all(emissivity[positive] == 0.05)
    assert np.all(emissivity[negative] == 0.2)
    assert np.all(emissivity[~layout.regions["tabs"]] == 0.9)
    assert np.all(top_emissivity_map(reverse, layout)[positive] == 0.2)


def test_boundary_from_places_regions_on_layout():
    loaded = load_demo_recipe(overrides=("physics.emissivity_top_regions={tabs: 0.1}",))
    drawn, layout = drawn_for(loaded)

    boundary = boundary_from(loaded.recipe.physics, layout=layout)
    assert boundary.emissivity_top_map is not None
    assert np.all(boundary.emissivity_top_map[layout.regions["tabs"]] == 0.1)
    painted = load_demo_recipe(overrides=("physics.emissivity_top_regions={}",))
    assert boundary_from(painted.recipe.physics).emissivity_top_map is None
    with pytest.raises(RecipeError, match="no layout was given"):
        boundary_from(loaded.recipe.physics)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "scenarios.0.power_W=1e9",
            "scenario 'internal_short' (scenarios.0, drawn power_W = 1e+09 W): "
            "ADI heat solver: temperature became non-finite",
        ),
        (
            "scenarios.1.current_A=1e9",
            "scenario 'tab_overheating' (scenarios.1, drawn current_A = 1e+09 A, "
            "resistance_mohm = ",
        ),
    ],
)
def test_failure_names_scenario_key(override, expected):
    loaded = load_demo_recipe(overrides=[ADI_LAYERS, override])
    index = int(override.split(".")[1])
    drawn, layout = drawn_for(loaded, index)

    with pytest.raises(SimulationError) as raised:
        simulate_scenario(drawn, layout, loaded.recipe)

    message = str(raised.value)
    assert message.startswith(expected)
    assert "scenario 0:" not in message
    keys = "scenarios.0.power_W" if index == 0 else "scenarios.1.current_A or "
    assert f"; lower {keys}" in message


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_cli_simulation_failure_not_skipped(tmp_path, capsys, on_error):
    args = ["generate", "--demo", "-o", str(tmp_path / "out"), "--no-progress"]
    for item in (
        "scenarios=[{kind: hotspot, power_W: 1, radius_mm: 3},"
        " {kind: hotspot, name: big, power_W: 1e9, radius_mm: 3}]",
        "split.test_anomalous=3",
        f"frames.on_error={on_error}",
        ADI_LAYERS,
    ):
        args += ["--set", item]

    assert main(args) == 2
    err = capsys.readouterr().err

    assert err.startswith("thermosynth: error: scenario 'big' (scenarios.1, ")
    assert "drawn power_W = 1e+09 W" in err
    assert "lower scenarios.1.power_W" in err
    assert "frames.on_error" not in err
    assert "synthetic-pouch" not in err


# A small prismatic cell whose can walls are stack layers: 4 layers of the
# electrode stack between two 0.8 mm walls.
STACKED = (
    "layout={kind: prismatic_cell, width_mm: 60, height_mm: 40, thickness_mm: 12,"
    " terminal_width_mm: 10, terminal_height_mm: 4, terminal_inset_mm: 6,"
    " casing_mm: 2, resolution_mm: 2, stack_layers: 4}",
    "physics.n_layers=6",
    *NO_TAB_EMISSIVITY,
)


def test_physics_lists_stack_layers():
    loaded = load_demo_recipe(overrides=STACKED)
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)

    physics = resolved_physics(loaded.recipe, layout)

    entries = physics["layers"]
    wall = "casing_aluminium"
    assert [entry["material"] for entry in entries] == [wall, None, wall]
    assert [entry["region"] for entry in entries] == ["can", None, "can"]
    assert [entry["n"] for entry in entries] == [1, 4, 1]
    thickness_mm = [entry["thickness_mm"] for entry in entries]
    assert thickness_mm == pytest.approx([0.8, 10.4, 0.8])
    assert "casing_aluminium" in physics["materials"]
    assert json.loads(json.dumps(physics)) == physics


def test_physics_notes_adi_fallback():
    loaded = load_demo_recipe()
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    fast = load_demo_recipe(overrides=("physics.solver=fast",))

    adi_physics = resolved_physics(loaded.recipe, layout)
    fast_physics = resolved_physics(fast.recipe, layout)

    assert adi_physics["solver"] == "adi"
    assert adi_physics["solver_note"] == ADI_SOLVER_NOTE
    assert "solver_note" not in fast_physics
    assert "layers" not in adi_physics


def test_wall_layers_route_adi_to_fast():
    grid = np.zeros((10, 12), dtype=int)
    cell = Material("cell", 26.6, 26.6, 0.52, 2.4e6)
    alu = Material("alu", 154.0, 154.0, 154.0, 2.44e6)
    plain = Layout(
        3.0, 3.0, 27.0, grid, (cell, alu), grid,
        layers=(Layer(0.8), Layer(25.4, n=8), Layer(0.8)),
    )  # fmt: skip
    walled = replace(
        plain, layers=(Layer(0.8, "alu"), Layer(25.4, n=8), Layer(0.8, "alu"))
    )
    options = {"boundary": Boundary(), "n_layers": 10, "dt_s": 10.0}

    assert simulation._solver("adi", plain, [], options) is simulation.simulate_adi
    assert simulation._solver("adi", walled, [], options) is simulation.simulate_fast
