"""Tests of thermosynth.scenario: drawing scenarios and building their sources."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import TypeAdapter

from thermosynth.bank import apply_symmetry, layout_symmetries
from thermosynth.errors import RecipeError
from thermosynth.geometry.layouts import cell_grid
from thermosynth.recipe.models import PhysicsSpec, ScenarioSpec
from thermosynth.scenario import build_sources, draw_scenario

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
