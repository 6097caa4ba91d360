"""Tests of thermosynth.scenario: drawing scenarios and building their sources."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import TypeAdapter

from thermosynth.bank import apply_symmetry, layout_symmetries
from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.geometry.layouts import cell_grid, prismatic_cell
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.grid import layer_volume_ratio
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.runaway import simulate_runaway
from thermosynth.physics.sources import cell_volume_m3
from thermosynth.recipe.models import PhysicsSpec, ScenarioSpec
from thermosynth.scenario import (
    DrawnScenario,
    build_sources,
    check_scenario_regions,
    choose_scenario,
    choose_scenario_index,
    draw_attempt,
    draw_more_sources,
    draw_scenario,
    strength_keys,
)

# A 60-cell PV module, as in recipes/pv-module-hotspots.yaml.
PV_GRID = {
    "rows": 10,
    "cols": 6,
    "cell_width_mm": 152.0,
    "cell_height_mm": 152.0,
    "gap_mm": 8.0,
    "border_mm": 16.0,
    "thickness_mm": 4.6,
    "resolution_mm": 8.0,
}


def joule_spec(region: str, **extra: object) -> ScenarioSpec:
    return TypeAdapter(ScenarioSpec).validate_python(
        {
            "kind": "joule",
            "region": region,
            "current_A": {"uniform": [8.0, 9.0]},
            "resistance_mohm": {"loguniform": [70.0, 550.0]},
            **extra,
        }
    )


def test_one_cell_heats_drawn_cell_uniformly():
    layout = cell_grid(**PV_GRID)
    drawn = draw_scenario(joule_spec("one_cell"), layout, np.random.default_rng(4))

    cell = drawn.params["cell_id"]
    (source,) = build_sources(drawn, layout, PhysicsSpec())
    weights = source.weights_m3[0]

    assert 0 <= cell < 60
    np.testing.assert_array_equal(weights > 0, layout.cell_id == cell)
    assert np.ptp(weights[layout.cell_id == cell]) == 0.0


def test_one_cell_repeats_with_same_generator():
    layout = cell_grid(**PV_GRID)
    spec = joule_spec("one_cell")

    first = draw_scenario(spec, layout, np.random.default_rng(11))
    again = draw_scenario(spec, layout, np.random.default_rng(11))
    cells = {
        draw_scenario(spec, layout, np.random.default_rng(seed)).params["cell_id"]
        for seed in range(40)
    }

    assert first.params == again.params
    assert len(cells) > 1


def test_pv_grid_mirrors_cell_onto_cell():
    layout = cell_grid(**PV_GRID)
    symmetries = layout_symmetries(layout)

    assert set(symmetries) == {"identity", "flip_x", "flip_y", "rotate_180"}
    for symmetry in symmetries:
        for cell in range(60):
            mirrored = apply_symmetry(layout.cell_id == cell, symmetry)
            assert np.unique(layout.cell_id[mirrored]).size == 1


def test_one_cell_rejects_layout_without_cells():
    layout = cell_grid(**PV_GRID)
    no_cells = replace(layout, cell_id=np.full_like(layout.cell_id, -1))

    with pytest.raises(RecipeError, match="'one_cell' needs cells"):
        draw_scenario(joule_spec("one_cell"), no_cells, np.random.default_rng(0))


@pytest.mark.parametrize("width_mm", [20.0, 40.0, 3.0])
def test_one_strip_heats_full_band(width_mm):
    layout = cell_grid(**PV_GRID)
    spec = joule_spec("one_strip", strip_width_mm=width_mm)
    drawn = draw_scenario(spec, layout, np.random.default_rng(5))

    (source,) = build_sources(drawn, layout, PhysicsSpec())
    heated = source.weights_m3[0] > 0
    columns = np.nonzero(heated.any(axis=0))[0]
    centres_mm = (columns + 0.5) * layout.dx_mm
    x_mm = drawn.params["x_mm"]

    # A 2 px border, then 10 rows of 19 px cells with 1 px gaps: rows 2 to 200.
    assert np.array_equal(np.nonzero(heated.any(axis=1))[0], np.arange(2, 201))
    assert np.all(heated[2:201][:, columns])
    assert columns.size == max(1, round(width_mm / layout.dx_mm))
    assert np.all(np.abs(centres_mm - x_mm) <= max(width_mm, layout.dx_mm) / 2)
    assert np.ptp(source.weights_m3[0][heated]) == 0.0
    # The weights spread the drawn power I^2 R over the band exactly once.
    volume_m3 = cell_volume_m3(layout, 1)
    assert np.sum(source.weights_m3 * volume_m3) == pytest.approx(1.0, rel=1e-12)


def test_one_strip_stays_on_the_cells_and_repeats():
    layout = cell_grid(**PV_GRID)
    spec = joule_spec("one_strip", strip_width_mm={"uniform": [8.0, 2000.0]})
    draws = [
        draw_scenario(spec, layout, np.random.default_rng(seed)).params
        for seed in range(30)
    ]
    again = draw_scenario(spec, layout, np.random.default_rng(0)).params

    # Cells span x = 16 to 968 mm; a band wider than that is cut to it.
    for params in draws:
        half_mm = params["strip_width_mm"] / 2
        assert 16.0 - 1e-9 <= params["x_mm"] - half_mm
        assert params["x_mm"] + half_mm <= 968.0 + 1e-9
    assert max(p["strip_width_mm"] for p in draws) == pytest.approx(952.0)
    assert again == draws[0]


def test_strip_width_required_and_exclusive():
    with pytest.raises(ValueError, match="'one_strip' needs strip_width_mm"):
        joule_spec("one_strip")
    with pytest.raises(ValueError, match="applies to region 'one_strip' only"):
        joule_spec("tabs", strip_width_mm=10.0)
    with pytest.raises(ValueError, match="strip_width_mm"):
        joule_spec("one_strip", strip_width_mm=-1.0)


# The prismatic cell of recipes/radiometric-cabinet.yaml: terminals and air in
# the top 12 mm, a 3 mm aluminium rim, the cell body inside it.
PRISMATIC = {
    "width_mm": 150.0,
    "height_mm": 100.0,
    "thickness_mm": 27.0,
    "terminal_width_mm": 20.0,
    "terminal_height_mm": 12.0,
    "terminal_inset_mm": 20.0,
    "casing_mm": 3.0,
    "resolution_mm": 3.0,
}


def short_at(x_mm: float, y_mm: float, radius_mm: float) -> DrawnScenario:
    params = {"profile": "constant", "power_W": 5.0, "layer": "middle"}
    params.update(x_mm=x_mm, y_mm=y_mm, radius_mm=radius_mm)
    return DrawnScenario("hotspot", "internal_short", 60.0, params)


def test_hotspot_near_edge_heats_only_cell():
    layout = prismatic_cell(**PRISMATIC)
    volume_m3 = cell_volume_m3(layout, 3)

    # Centred 1 mm inside the body below the gap beside the left terminal, a
    # disc of radius 10 mm also covers steel rim, aluminium terminal and air.
    (source,) = build_sources(
        short_at(19.0, 16.0, 10.0), layout, PhysicsSpec(n_layers=3)
    )
    heated = source.weights_m3 > 0

    assert heated[1].sum() > 0
    assert not np.any(heated & (layout.cell_id < 0))
    assert source.weights_m3.sum() * volume_m3 == pytest.approx(1.0, rel=1e-12)
    assert np.ptp(source.weights_m3[heated]) == 0.0


def test_hotspot_centred_off_cells_kept_whole():
    layout = prismatic_cell(**PRISMATIC)

    # Centred on the left terminal: a hotspot placed with where: terminals.
    (source,) = build_sources(
        short_at(30.0, 8.0, 10.0), layout, PhysicsSpec(n_layers=3)
    )
    heated = source.weights_m3[1] > 0

    assert np.any(heated & layout.regions["terminals"])
    assert np.any(heated & (layout.cell_id >= 0))


def test_draw_attempt_skips_choice_on_retry():
    layout = cell_grid(**PV_GRID)
    scenarios = [joule_spec("one_cell"), joule_spec("one_cell", weight=3.0)]
    spec = scenarios[0]

    first = draw_attempt(spec, scenarios, layout, np.random.default_rng(4), attempt=1)
    assert first == draw_scenario(spec, layout, np.random.default_rng(4))

    retry = draw_attempt(spec, scenarios, layout, np.random.default_rng(4), attempt=2)
    rng = np.random.default_rng(4)
    choose_scenario_index(scenarios, rng)
    assert retry == draw_scenario(spec, layout, rng)
    assert retry != first


def test_choose_scenario_index_follows_weights():
    scenarios = [joule_spec("one_cell"), joule_spec("one_cell", weight=3.0)]
    rng = np.random.default_rng(0)
    picks = [choose_scenario_index(scenarios, rng) for _ in range(4000)]

    # Binomial share 3/4 of the second scenario, within four standard deviations.
    assert abs(np.mean(picks) - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 4000)
    again = np.random.default_rng(0)
    assert choose_scenario(scenarios, again) is scenarios[picks[0]]


@pytest.mark.parametrize(
    ("stack_layers", "expected"),
    [
        (None, {"top": [0], "middle": [4, 5], "bottom": [9]}),
        (8, {"top": [1], "middle": [4, 5], "bottom": [8]}),
    ],
)
def test_layer_names_follow_electrode_stack(stack_layers, expected):
    # With the walls as stack layers 0 and 9, top is the layer below the wall.
    layout = prismatic_cell(**PRISMATIC, stack_layers=stack_layers)
    physics = PhysicsSpec(n_layers=10)
    for name, indices in expected.items():
        drawn = short_at(75.0, 60.0, 6.0)
        drawn.params["layer"] = name
        (source,) = build_sources(drawn, layout, physics)
        heated = np.flatnonzero(source.weights_m3.any(axis=(1, 2)))

        np.testing.assert_array_equal(heated, indices)


def test_joule_cell_skips_wall_layers():
    layout = prismatic_cell(**PRISMATIC, stack_layers=8)
    drawn = draw_scenario(joule_spec("one_cell"), layout, np.random.default_rng(0))
    (source,) = build_sources(drawn, layout, PhysicsSpec(n_layers=10))

    heated = source.weights_m3 > 0
    volume_m3 = cell_volume_m3(layout, 10) * layer_volume_ratio(layout, 10)
    assert not heated[[0, 9]].any()
    np.testing.assert_array_equal(
        heated[1:9], np.broadcast_to(layout.cell_id == 0, (8, *layout.shape))
    )
    total = (source.weights_m3 * volume_m3[:, None, None]).sum()
    assert total == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("rows", "count", "distinct"), [(10, 3, 3), (1, 8, 6)])
def test_one_cell_sources_take_distinct_cells(rows, count, distinct):
    layout = cell_grid(**{**PV_GRID, "rows": rows})
    spec = joule_spec("one_cell", count=count)
    rng = np.random.default_rng(0)

    for _ in range(50):
        first = draw_scenario(spec, layout, rng)
        drawns = draw_more_sources(spec, layout, rng, first)
        cells = {drawn.params["cell_id"] for drawn in drawns}
        assert len(drawns) == count
        assert len(cells) == distinct


def hotspot_spec(**extra: object) -> ScenarioSpec:
    return TypeAdapter(ScenarioSpec).validate_python(
        {"kind": "hotspot", "power_W": 2.0, "radius_mm": 3.0, **extra}
    )


def test_region_check_names_scenario_key():
    layout = cell_grid(**PV_GRID)
    scenarios = [hotspot_spec(), joule_spec("nowhere")]

    with pytest.raises(RecipeError, match="region 'nowhere' does not exist") as info:
        check_scenario_regions(scenarios, layout)

    assert info.value.keys == (("scenarios", 1, "region"),)


def test_region_check_needs_cells_for_one_cell():
    layout = cell_grid(**PV_GRID)
    no_cells = replace(layout, cell_id=np.full_like(layout.cell_id, -1))
    scenarios = [hotspot_spec(where="any"), joule_spec("one_cell")]

    with pytest.raises(RecipeError, match="'one_cell' needs cells") as info:
        check_scenario_regions(scenarios, no_cells)

    assert info.value.keys == (("scenarios", 1, "region"),)


def test_region_check_skips_fixed_position():
    layout = cell_grid(**PV_GRID)
    fixed = hotspot_spec(where="nowhere", x_mm=50.0, y_mm=50.0)
    half_fixed = hotspot_spec(where="nowhere", x_mm=50.0)

    check_scenario_regions([fixed], layout)
    with pytest.raises(RecipeError, match="region 'nowhere'") as info:
        check_scenario_regions([fixed, half_fixed], layout)

    assert info.value.keys == (("scenarios", 1, "where"),)


def test_strength_keys_follow_kind():
    scenarios = [hotspot_spec(), joule_spec("one_strip", strip_width_mm=20.0)]

    assert strength_keys(scenarios, 0) == (
        ("scenarios", 0, "power_W"),
        ("scenarios", 0, "radius_mm"),
    )
    assert strength_keys(scenarios, 1) == (
        ("scenarios", 1, "current_A"),
        ("scenarios", 1, "resistance_mohm"),
        ("scenarios", 1, "strip_width_mm"),
    )


# A uniform 12 x 12 mm slab of one cell, 4 mm thick: equal layers of one
# isotropic material, so a mid-plane source heats both faces alike.
SLAB_MATERIAL = Material("slab", 20.0, 20.0, 20.0, 2.0e6)


def slab(n_side: int = 12) -> Layout:
    grid = np.zeros((n_side, n_side), dtype=int)
    return Layout(1.0, 1.0, 4.0, grid, (SLAB_MATERIAL,), grid)


def slab_short(layer: str, *, power_W: float = 2.0) -> DrawnScenario:
    params = {"profile": "constant", "power_W": power_W, "layer": layer}
    params.update(x_mm=4.5, y_mm=6.0, radius_mm=2.0)
    return DrawnScenario("hotspot", "internal_short", 10.0, params)


def layer_powers_W(source, layout: Layout, n_layers: int) -> np.ndarray:
    """Return the power [W] per layer of a source of 1 W."""
    volume_m3 = cell_volume_m3(layout, n_layers) * layer_volume_ratio(layout, n_layers)
    return (source.weights_m3 * volume_m3[:, None, None]).sum(axis=(1, 2))


@pytest.mark.parametrize(
    ("n_layers", "expected"),
    [
        (1, [1.0]),
        (2, [0.5, 0.5]),
        (3, [0.0, 1.0, 0.0]),
        (4, [0.0, 0.5, 0.5, 0.0]),
    ],
)
def test_middle_splits_even_layer_counts(n_layers, expected):
    layout = slab()
    (source,) = build_sources(
        slab_short("middle"), layout, PhysicsSpec(n_layers=n_layers)
    )

    powers = layer_powers_W(source, layout, n_layers)
    np.testing.assert_allclose(powers, expected, rtol=1e-12, atol=1e-15)


def test_middle_split_keeps_power_on_uneven_stack():
    # Two electrode layers of 1 and 3 mm between 0.5 mm walls: equal power
    # per layer, so the thin layer's heat density is three times the thick's.
    layers = (
        Layer(0.5, "slab"),
        Layer(1.0, None),
        Layer(3.0, None),
        Layer(0.5, "slab"),
    )
    grid = np.zeros((12, 12), dtype=int)
    layout = Layout(1.0, 1.0, 5.0, grid, (SLAB_MATERIAL,), grid, layers=layers)
    (source,) = build_sources(slab_short("middle"), layout, PhysicsSpec(n_layers=4))

    powers = layer_powers_W(source, layout, 4)
    np.testing.assert_allclose(powers, [0.0, 0.5, 0.5, 0.0], rtol=1e-12, atol=1e-15)
    density = source.weights_m3.max(axis=(1, 2))
    assert density[1] == pytest.approx(3.0 * density[2], rel=1e-12)


def test_middle_held_patch_holds_both_layers():
    drawn = slab_short("middle")
    drawn = DrawnScenario("held_patch", "heater", 10.0, {**drawn.params, "rise_K": 5.0})
    (patch,) = build_sources(drawn, slab(), PhysicsSpec(n_layers=4))

    held = patch.mask.any(axis=(1, 2))
    np.testing.assert_array_equal(held, [False, True, True, False])
    np.testing.assert_array_equal(patch.mask[1], patch.mask[2])


INSULATED = Boundary(ambient_C=25.0, h_top_W_m2K=0.0, h_bottom_W_m2K=0.0)


def run_slab(solver, n_layers: int, layer: str = "middle"):
    layout = slab()
    sources = build_sources(slab_short(layer), layout, PhysicsSpec(n_layers=n_layers))
    options = dict(
        boundary=INSULATED, n_layers=n_layers, duration_s=10.0, dt_s=0.5,
        output_times_s=[5.0, 10.0],
    )  # fmt: skip
    if solver is simulate_runaway:
        return simulate_runaway(layout, triggers=sources, **options)
    return solver(layout, sources, **options)


@pytest.mark.parametrize(
    "solver", [simulate, simulate_fast, simulate_adi, simulate_runaway]
)
@pytest.mark.parametrize("n_layers", [2, 4])
def test_middle_energy_balance_insulated(solver, n_layers):
    result = run_slab(solver, n_layers)

    # 2 W for 10 s, with no face losses: all of it is stored.
    assert result.energy_in_J == pytest.approx(20.0, rel=1e-12)
    assert result.energy_lost_J == pytest.approx(0.0, abs=1e-9)
    released_J = getattr(result, "energy_released_J", 0.0)
    stored_J = result.energy_in_J + released_J
    assert result.energy_stored_J == pytest.approx(stored_J, rel=1e-9)


@pytest.mark.parametrize("solver", [simulate, simulate_fast, simulate_adi])
@pytest.mark.parametrize("n_layers", [2, 4])
def test_middle_heats_faces_equally(solver, n_layers):
    result = run_slab(solver, n_layers)
    top_K = result.rise_all_K[-1, 0]
    bottom_K = result.rise_all_K[-1, -1]

    assert top_K.max() > 0.1
    np.testing.assert_allclose(top_K, bottom_K, rtol=1e-9, atol=1e-12)


def test_top_heats_faces_unequally():
    # The slab alone does not make the faces equal: a top source peaks 1.38
    # times higher on the top face than on the bottom one after 10 s.
    result = run_slab(simulate_fast, 4, layer="top")
    assert result.rise_all_K[-1, 0].max() > 1.2 * result.rise_all_K[-1, -1].max()
