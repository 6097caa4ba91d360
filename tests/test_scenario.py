"""Tests of thermosynth.scenario: drawing scenarios and building their sources."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import TypeAdapter

from thermosynth.bank import apply_symmetry, layout_symmetries
from thermosynth.errors import RecipeError
from thermosynth.geometry.layouts import cell_grid, prismatic_cell
from thermosynth.physics.sources import cell_volume_m3
from thermosynth.recipe.models import PhysicsSpec, ScenarioSpec
from thermosynth.scenario import DrawnScenario, build_sources, draw_scenario

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


def joule_spec(region: str) -> ScenarioSpec:
    return TypeAdapter(ScenarioSpec).validate_python(
        {
            "kind": "joule",
            "region": region,
            "current_A": {"uniform": [8.0, 9.0]},
            "resistance_mohm": {"loguniform": [70.0, 550.0]},
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


# The prismatic cell of recipes/radiometric-cabinet.yaml: terminals and air in
# the top 12 mm, a 3 mm steel rim, the cell body inside it.
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
