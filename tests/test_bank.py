"""Tests for thermosynth.bank: exact reuse, keys, atomic files, the pipeline."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import h5py
import numpy as np
import pytest
from fixed_runaway import CELL_TIMES, FIXED_RUNAWAY, TRIGGERED_CELL, cell_at

from thermosynth.bank import (
    BankEntry,
    ScenarioBank,
    apply_symmetry,
    bank_scenarios,
    bank_size,
    entry_key,
    group_key,
    is_linear,
    layout_key,
    layout_symmetries,
    stratified_scenarios,
    superpose,
)
from thermosynth.build import build_layout
from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.geometry.layouts import prismatic_cell
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary
from thermosynth.physics.profiles import Ramp
from thermosynth.physics.sources import hotspot
from thermosynth.pipeline import Generator, simulate_rise
from thermosynth.recipe.loading import load_demo_recipe
from thermosynth.scenario import DrawnScenario, draw_scenario

os.environ.setdefault("OMP_NUM_THREADS", "1")

CONVECTIVE = Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0)
RADIATING = Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0, emissivity_top=0.9)
CELL = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
BUSBAR = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)


def striped_layout(*, symmetric=True):
    """Return a 24 x 32 grid of 0.5 mm cells crossed by a busbar."""
    grid = np.zeros((24, 32), dtype=int)
    grid[:, 12:20] = 1
    if not symmetric:
        grid[:, 2:5] = 1
    return Layout(0.5, 0.5, 2.0, grid, (CELL, BUSBAR), grid - 1)


def rise_of(layout, spots, boundary=CONVECTIVE):
    """Simulate ramped hotspots given as (x_mm, y_mm, power_W) on two layers."""
    sources = [
        hotspot(
            layout,
            x_mm=x,
            y_mm=y,
            radius_mm=1.5,
            power_W=Ramp(p, ramp_s=1.0),
            layer=1,
            n_layers=2,
        )
        for x, y, p in spots
    ]
    result = simulate_fast(
        layout, sources, boundary=boundary, n_layers=2, duration_s=3.0, dt_s=0.25
    )
    return result.rise_K[-1]


def test_scaled_rise_matches_simulation():
    layout = striped_layout()
    once = rise_of(layout, [(5.0, 6.0, 0.5)])
    direct = rise_of(layout, [(5.0, 6.0, 3.5)])

    assert direct.max() > 1.0
    np.testing.assert_allclose(7.0 * once, direct, rtol=0, atol=1e-12 * direct.max())


def test_superposed_rises_match_simulation():
    layout = striped_layout()
    first = rise_of(layout, [(5.0, 6.0, 1.0)])
    second = rise_of(layout, [(11.0, 4.0, 1.0)])
    direct = rise_of(layout, [(5.0, 6.0, 2.0), (11.0, 4.0, 0.5)])

    combined = superpose([first, second], [2.0, 0.5])
    np.testing.assert_allclose(combined, direct, rtol=0, atol=1e-12 * direct.max())


def test_scaling_with_radiation_is_approximate():
    layout = striped_layout()
    once = rise_of(layout, [(5.0, 6.0, 0.5)], RADIATING)
    direct = rise_of(layout, [(5.0, 6.0, 3.5)], RADIATING)

    # Radiative loss grows with temperature, so the scaled rise runs high.
    error = np.abs(7.0 * once - direct).max() / direct.max()
    assert direct.max() > 5.0
    assert 1e-6 < error < 1e-2


def test_mirrored_rise_matches_simulation():
    layout = striped_layout()
    rise = rise_of(layout, [(5.0, 6.0, 1.0)])
    mirrored = rise_of(layout, [(layout.width_mm - 5.0, 6.0, 1.0)])

    assert "flip_x" in layout_symmetries(layout)
    np.testing.assert_allclose(
        apply_symmetry(rise, "flip_x"), mirrored, rtol=0, atol=1e-12 * rise.max()
    )


def test_symmetries_of_asymmetric_layout():
    assert layout_symmetries(striped_layout(symmetric=False)) == [
        "identity",
        "flip_y",
    ]


def test_symmetries_follow_layer_region():
    # The left columns are a region that only a stack layer names.
    layout = striped_layout()
    left = np.zeros(layout.shape, dtype=bool)
    left[:, :3] = True
    plain = replace(layout, regions={"left": left})
    stacked = replace(plain, layers=(Layer(0.5, "busbar", region="left"), Layer(1.5)))

    assert "flip_x" in layout_symmetries(plain, regions=[])
    assert "flip_x" not in layout_symmetries(stacked, regions=[])


def test_layout_key_unchanged_without_stack():
    # Computed before stacks entered the key; a change invalidates old banks.
    expected = "a361c6d3817f451aa4a29aeaa2182b8d5eeb59d2c9a005568e2be97911a88404"

    assert layout_key(striped_layout()) == expected


def walled_cell(wall_mm=0.8, **changes):
    """Return a small prismatic cell with its walls as stack layers."""
    options = {
        "width_mm": 60.0, "height_mm": 40.0, "thickness_mm": 12.0,
        "terminal_width_mm": 10.0, "terminal_height_mm": 4.0,
        "terminal_inset_mm": 6.0, "casing_mm": 2.0, "resolution_mm": 2.0,
        "wall_mm": wall_mm, "stack_layers": 4,
    }  # fmt: skip
    options.update(changes)
    return prismatic_cell(**options)


def test_layout_key_follows_stack():
    layout = walled_cell()
    wall, stack, _ = layout.layers
    whole_wall = replace(wall, region=None)

    keys = {
        "walls 0.8 mm": layout_key(layout),
        "walls 1.5 mm": layout_key(walled_cell(wall_mm=1.5)),
        "walls 3.0 mm": layout_key(walled_cell(wall_mm=3.0)),
        "stack n = 5": layout_key(walled_cell(stack_layers=5)),
        "walls everywhere": layout_key(
            replace(layout, layers=(whole_wall, stack, whole_wall))
        ),
        "no stack": layout_key(replace(layout, layers=None)),
    }

    assert len(set(keys.values())) == len(keys)
    assert layout_key(walled_cell()) == keys["walls 0.8 mm"]


def test_layout_key_follows_layer_material():
    # WALL fills only the top layer, so the in-plane maps stay the same.
    layout = striped_layout()
    wall = Material("wall", 150.0, 150.0, 150.0, 2.4e6)
    stacked = replace(
        layout,
        materials=(CELL, BUSBAR, wall),
        layers=(Layer(0.5, "wall"), Layer(1.5)),
    )
    steel = replace(stacked, materials=(CELL, BUSBAR, replace(wall, k_z_W_mK=15.0)))

    assert layout_key(steel) != layout_key(stacked)


def test_superpose_rejects_mismatched_lengths():
    with pytest.raises(RecipeError, match="2 rises and 1 scales"):
        superpose([np.zeros(2), np.zeros(2)], [1.0])


def demo(tmp_path, *overrides):
    """Return the demo recipe with a bank in ``tmp_path`` and its layout."""
    loaded = load_demo_recipe(
        overrides=[
            f"bank.path={tmp_path / 'bank.h5'}",
            "bank.mode=reuse",
            "bank.size=3",
            f"output.dir={tmp_path / 'out'}",
            *overrides,
        ]
    )
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    return loaded, layout


class CountingSimulator:
    def __init__(self, recipe, layout):
        self.recipe = recipe
        self.layout = layout
        self.calls = 0

    def __call__(self, drawn, *, events):
        self.calls += 1
        return simulate_rise(drawn, self.layout, self.recipe, events=events)


def open_bank(loaded, layout, tmp_path):
    simulator = CountingSimulator(loaded.recipe, layout)
    bank = ScenarioBank.open(
        loaded.recipe, layout, simulator, path=tmp_path / "bank.h5"
    )
    return bank, simulator


def test_bank_reuse_simulates_once(tmp_path):
    loaded, layout = demo(tmp_path)
    first, simulator = open_bank(loaded, layout, tmp_path)
    again, repeat = open_bank(loaded, layout, tmp_path)

    assert simulator.calls == 3
    assert repeat.calls == 0
    for a, b in zip(first.entries, again.entries, strict=True):
        assert a.key == b.key
        np.testing.assert_array_equal(a.rise_K, b.rise_K)


def test_bank_entry_equals_direct_simulation(tmp_path):
    loaded, layout = demo(tmp_path)
    bank, _ = open_bank(loaded, layout, tmp_path)

    entry = bank.entries[0]
    direct = simulate_rise(entry.drawn, layout, loaded.recipe)
    np.testing.assert_array_equal(entry.rise_K, direct)


def test_bank_draw_is_deterministic(tmp_path):
    loaded, layout = demo(tmp_path)
    bank, _ = open_bank(loaded, layout, tmp_path)

    draws = [bank.draw(np.random.default_rng(5)) for _ in range(2)]
    (drawn_a, rise_a, info_a), (drawn_b, rise_b, info_b) = draws
    assert info_a == info_b
    assert drawn_a == drawn_b
    np.testing.assert_array_equal(rise_a, rise_b)


def test_bank_draw_scales_entry(tmp_path):
    loaded, layout = demo(tmp_path)
    bank, _ = open_bank(loaded, layout, tmp_path)

    drawn, rise, info = bank.draw(np.random.default_rng(1))
    entry = next(e for e in bank.entries if e.key == info["bank_entry"])
    ratio = drawn.params["power_W"] / entry.drawn.params["power_W"]
    assert info["bank_symmetry"] == "identity"  # the demo pouch cell has no mirror
    assert info["bank_scale"] == pytest.approx(ratio, rel=1e-15)
    assert info["bank_exact"] is False  # the demo radiates
    expected = np.maximum(ratio * entry.rise_K, 0.0)
    np.testing.assert_allclose(rise, expected, rtol=1e-15)


def test_bank_exact_without_radiation(tmp_path):
    loaded, _ = demo(
        tmp_path,
        "physics.emissivity_top=0.0",
        "physics.emissivity_bottom=0.0",
        "physics.emissivity_top_regions={}",
    )
    assert is_linear(loaded.recipe, "hotspot")
    assert not is_linear(loaded.recipe, "runaway")


def test_bank_reuse_adds_missing_entries(tmp_path):
    loaded, layout = demo(tmp_path)
    open_bank(loaded, layout, tmp_path)
    _, again = open_bank(loaded, layout, tmp_path)
    assert again.calls == 0

    other, _ = demo(tmp_path, "physics.h_top_W_m2K=12.0")
    _, simulator = open_bank(other, layout, tmp_path)
    assert simulator.calls == 3
    with h5py.File(tmp_path / "bank.h5", "r") as bank:
        assert len(bank["entries"]) == 6


def test_bank_build_simulates_again(tmp_path):
    loaded, layout = demo(tmp_path)
    open_bank(loaded, layout, tmp_path)
    rebuilt, _ = demo(tmp_path, "bank.mode=build")
    _, simulator = open_bank(rebuilt, layout, tmp_path)
    assert simulator.calls == 3
    with h5py.File(tmp_path / "bank.h5", "r") as bank:
        assert len(bank["entries"]) == 3


def test_bank_build_keeps_other_entries(tmp_path):
    loaded, layout = demo(tmp_path)
    open_bank(loaded, layout, tmp_path)
    other, _ = demo(tmp_path, "physics.h_top_W_m2K=12.0", "bank.mode=build")
    _, simulator = open_bank(other, layout, tmp_path)

    with h5py.File(tmp_path / "bank.h5", "r") as bank:
        assert len(bank["entries"]) == 6
        scenario = json.loads(
            bank["entries"][next(iter(bank["entries"]))].attrs["scenario"]
        )
    assert simulator.calls == 3
    assert "params" in scenario


def test_bank_file_unchanged_when_build_fails(tmp_path):
    loaded, layout = demo(tmp_path)
    open_bank(loaded, layout, tmp_path)
    before = (tmp_path / "bank.h5").read_bytes()
    other, _ = demo(tmp_path, "physics.h_top_W_m2K=12.0", "bank.mode=build")

    def failing(drawn, *, events):
        raise RuntimeError("simulation failed")

    with pytest.raises(RuntimeError, match="simulation failed"):
        ScenarioBank.open(other.recipe, layout, failing, path=tmp_path / "bank.h5")
    assert (tmp_path / "bank.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5"]


def test_bank_size_from_reuse_per_entry(tmp_path):
    loaded, _ = demo(tmp_path, "bank.size=null", "bank.reuse_per_entry=3")
    assert bank_size(loaded.recipe) == 3  # ceil(8 anomalous / 3)


def test_generator_with_bank_is_reproducible(tmp_path):
    loaded, _ = demo(tmp_path, "split.train_normal=1", "split.test_normal=0")
    runs = []
    for _ in range(2):
        generator = Generator(loaded)
        runs.append([sample for sample, _ in generator.samples()])

    first, second = runs
    assert len(first) == 9
    for a, b in zip(first, second, strict=True):
        assert a.metadata == b.metadata
        np.testing.assert_array_equal(a.raw, b.raw)
    assert all("bank_entry" in s.metadata for s in first if s.label)


def test_mirrored_sample_names_mirrored_cell():
    from thermosynth.bank import _mirror_params, apply_symmetry
    from thermosynth.geometry.layouts import cell_grid

    layout = cell_grid(
        rows=3, cols=2, cell_width_mm=10, cell_height_mm=10, gap_mm=2,
        thickness_mm=4, resolution_mm=2,
    )  # fmt: skip
    for symmetry in ("flip_x", "flip_y", "rotate_180"):
        params = _mirror_params({"cell_id": 0}, symmetry, layout)
        heated = apply_symmetry(layout.cell_id == 0, symmetry)
        assert np.array_equal(heated, layout.cell_id == params["cell_id"])
        assert params["cell_id"] != 0


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 2], [3, 1, 1, 5], [3, 1, 1], [1]])
@pytest.mark.parametrize("n_entries", [1, 2, 5, 6, 10, 20, 64])
def test_bank_kinds_follow_weights(weights, n_entries):
    kinds = stratified_scenarios(weights, n_entries)
    assert len(kinds) == n_entries
    shares = np.asarray(weights) / sum(weights)
    counts = np.zeros(len(weights))
    for n, kind in enumerate(kinds, start=1):
        counts[kind] += 1
        # Every prefix stays within one entry of each share.
        assert np.all(np.abs(counts - shares * n) <= 1 + 1e-9)


def test_small_bank_has_every_kind():
    assert sorted(stratified_scenarios([1, 1, 1], 3)) == [0, 1, 2]
    assert sorted(stratified_scenarios([3, 1, 1], 5)) == [0, 0, 0, 1, 2]
    assert sorted(stratified_scenarios([1] * 5, 5)) == [0, 1, 2, 3, 4]


def test_growing_bank_keeps_first_entries():
    first = stratified_scenarios([2, 1, 1], 8)
    grown = stratified_scenarios([2, 1, 1], 32)
    assert grown[:8] == first


# The physics fields that group keys hashed before emissivity_top_regions
# existed; a default recipe must dump exactly these, so its keys stay valid.
KEYED_PHYSICS = {
    "ambient_C",
    "h_top_W_m2K",
    "h_bottom_W_m2K",
    "emissivity_top",
    "emissivity_bottom",
    "n_layers",
    "dt_s",
    "solver",
}


def demo_group_key(*overrides):
    loaded = load_demo_recipe(overrides=overrides)
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    return group_key(layout, loaded.recipe)


def test_group_key_unchanged_without_emissivity_regions():
    # The demo sets emissivity_top_regions for its tabs. Emptied, the key is
    # dropped, so recipes without it keep the group keys of older banks.
    loaded = load_demo_recipe(overrides=["physics.emissivity_top_regions={}"])
    dumped = loaded.recipe.physics.model_dump(mode="json", exclude={"precision"})
    with_tabs = load_demo_recipe().recipe.physics.model_dump(
        mode="json", exclude={"precision"}
    )

    assert set(dumped) == KEYED_PHYSICS
    assert set(with_tabs) == KEYED_PHYSICS | {"emissivity_top_regions"}


def test_group_key_follows_emissivity_regions():
    default = demo_group_key("physics.emissivity_top_regions={}")
    bare_tabs = demo_group_key("physics.emissivity_top_regions={tabs: 0.1}")
    # tab_positive lies inside tabs, so the order decides its emissivity.
    positive_last = demo_group_key(
        "physics.emissivity_top_regions={tabs: 0.1, tab_positive: 0.5}"
    )
    positive_first = demo_group_key(
        "physics.emissivity_top_regions={tab_positive: 0.5, tabs: 0.1}"
    )

    assert bare_tabs != default
    assert bare_tabs != demo_group_key("physics.emissivity_top_regions={tabs: 0.2}")
    assert positive_last != positive_first


RUNAWAY_PARAMS = {
    "profile",
    "radius_mm",
    "layer",
    "x_mm",
    "y_mm",
    "power_W",
    "venting",
    "max_dT_per_step_K",
}


def runaway_entry(extra=""):
    """Return the drawn runaway scenario and its bank key, drawn with seed 0."""
    scenario = (
        "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 40"
        f"{extra}}}]"
    )
    loaded = load_demo_recipe(overrides=(scenario,))
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    spec = loaded.recipe.scenarios[0]
    drawn = draw_scenario(spec, layout, np.random.default_rng(0))
    return drawn, entry_key(group_key(layout, loaded.recipe), drawn)


def test_entry_key_follows_separator_short():
    plain, plain_key = runaway_entry()
    short = (
        ", separator_short_C: 130, separator_short_energy_J: 5000, "
        "separator_short_s: {}"
    )
    _, short_key = runaway_entry(short.format(10))
    _, longer_key = runaway_entry(short.format(20))

    # Without a short the drawn parameters, and so the keys, are as before.
    assert set(plain.params) == RUNAWAY_PARAMS
    assert short_key != plain_key
    assert longer_key != short_key


def test_is_linear_with_emissivity_regions():
    no_radiation = ("physics.emissivity_top=0.0", "physics.emissivity_bottom=0.0")
    dark = load_demo_recipe(
        overrides=(*no_radiation, "physics.emissivity_top_regions={tabs: 0.0}")
    )
    radiating_tabs = load_demo_recipe(
        overrides=(*no_radiation, "physics.emissivity_top_regions={tabs: 0.1}")
    )

    assert is_linear(dark.recipe, "hotspot")
    assert not is_linear(radiating_tabs.recipe, "hotspot")


def test_emissivity_region_limits_mirror_images():
    layout = striped_layout()
    corner = np.zeros(layout.shape, dtype=bool)
    corner[:4, :4] = True
    layout = Layout(
        layout.dx_mm,
        layout.dy_mm,
        layout.thickness_mm,
        layout.material_id,
        layout.materials,
        layout.cell_id,
        regions={"corner": corner},
    )
    plain = load_demo_recipe().recipe
    bare = load_demo_recipe(
        overrides=["physics.emissivity_top_regions={corner: 0.1}"]
    ).recipe
    entry = BankEntry("key", 0, None, np.zeros(layout.shape))

    # The demo's scenarios name "cells" and "tabs", which this layout lacks,
    # so only the corner region can break the grid's four symmetries.
    assert len(ScenarioBank([entry], plain, layout).symmetries) == 4
    assert ScenarioBank([entry], bare, layout).symmetries == ["identity"]


def test_bank_scenarios_add_missing_kinds():
    assert bank_scenarios([3, 1, 1], 1) == [0, 1, 2]
    assert bank_scenarios([3, 1, 1], 2) == [*stratified_scenarios([3, 1, 1], 2), 2]
    assert bank_scenarios([1, 2], 5) == stratified_scenarios([1, 2], 5)
    assert bank_scenarios([9, 1], 4) == [0, 0, 0, 0, 1]


def fake_entries(scenario_indices):
    """Return entries with a unit rise [K], one per scenario index.

    Their kind, runaway, has no amplitude to redraw, whatever the scenario.
    """
    drawn = DrawnScenario("runaway", "fake", 10.0, {"power_W": 1.0})
    rise = np.ones((4, 4))
    return [
        BankEntry(f"key{i}", scenario, drawn, rise)
        for i, scenario in enumerate(scenario_indices)
    ]


def test_bank_draw_stays_in_scenario():
    recipe = load_demo_recipe().recipe  # scenarios: hotspot, joule
    layout = striped_layout(symmetric=False)
    bank = ScenarioBank(fake_entries([0, 1, 0, 1, 0]), recipe, layout)
    rng = np.random.default_rng(2)

    for scenario in (0, 1):
        keys = {
            bank.draw(rng, scenario_index=scenario)[2]["bank_entry"] for _ in range(40)
        }
        expected = {e.key for e in bank.entries if e.scenario_index == scenario}
        assert keys == expected


def test_bank_draw_chooses_scenario_by_weight():
    recipe = load_demo_recipe().recipe  # weights 1.0 and 0.5
    bank = ScenarioBank(fake_entries([0, 1, 1, 1]), recipe, striped_layout())
    rng = np.random.default_rng(3)
    keys = [bank.draw(rng)[2]["bank_entry"] for _ in range(600)]

    # Binomial share 2/3 of the hotspot's one entry, within four standard deviations.
    share = np.mean([key == "key0" for key in keys])
    assert abs(share - 2 / 3) < 4 * np.sqrt(2 / 9 / 600)


def test_bank_draw_rejects_scenario_without_entry():
    recipe = load_demo_recipe().recipe
    bank = ScenarioBank(fake_entries([0]), recipe, striped_layout())
    with pytest.raises(RecipeError, match="no entry of scenario 1"):
        bank.draw(np.random.default_rng(0), scenario_index=1)


@pytest.fixture(scope="module")
def runaway_bank(tmp_path_factory):
    """Return the fixed runaway recipe, its layout, a one-entry bank and its folder."""
    folder = tmp_path_factory.mktemp("runaway_bank")
    loaded, layout = demo(folder, *FIXED_RUNAWAY, "bank.size=1")
    bank, _ = open_bank(loaded, layout, folder)
    return loaded, layout, bank, folder


def test_bank_entry_has_simulated_cell_times(runaway_bank):
    loaded, layout, bank, _ = runaway_bank
    entry = bank.entries[0]
    direct = {}
    simulate_rise(entry.drawn, layout, loaded.recipe, events=direct)

    assert entry.events == direct
    assert entry.events["onset_s"][TRIGGERED_CELL] > 0.0
    assert entry.events["onset_s"][1 - TRIGGERED_CELL] is None


def test_bank_reads_cell_times_back(runaway_bank):
    loaded, layout, bank, folder = runaway_bank
    again, simulator = open_bank(loaded, layout, folder)

    assert simulator.calls == 0
    assert again.entries[0].events == bank.entries[0].events
    with h5py.File(folder / "bank.h5", "r") as file:
        onset = file["entries"][bank.entries[0].key].attrs["onset_s"]
    assert np.isnan(onset[1 - TRIGGERED_CELL])
    assert onset[TRIGGERED_CELL] == bank.entries[0].events["onset_s"][TRIGGERED_CELL]


def test_bank_draw_mirrors_cell_times(runaway_bank):
    _, layout, bank, _ = runaway_bank
    entry = bank.entries[0]
    draws = {}
    for seed in range(30):
        drawn, _, info = bank.draw(np.random.default_rng(seed))
        draws[info["bank_symmetry"]] = drawn, info

    assert set(draws) == {"identity", "flip_x", "flip_y", "rotate_180"}
    for drawn, info in draws.values():
        cell = cell_at(layout, drawn.params)
        expected = entry.events["onset_s"][TRIGGERED_CELL]
        assert info["onset_s"][cell] == expected
        assert info["onset_s"][1 - cell] is None
        assert info["short_s"] == [None, None]
        assert info["vent_s"] == [None, None]


def test_bank_sample_matches_generate_cell_times(tmp_path):
    metadata = {}
    for mode in ("off", "reuse"):
        loaded, layout = demo(tmp_path, *FIXED_RUNAWAY, f"bank.mode={mode}")
        generator = Generator(loaded)
        index, _, _, frame_index = next(e for e in generator.plan.entries() if e[2])
        frame = generator.read_frame(frame_index)
        metadata[mode] = generator.anomalous(index, frame).metadata

    simulated, banked = metadata["off"], metadata["reuse"]
    cell = cell_at(layout, banked["params"])
    assert banked["onset_s"][cell] == simulated["onset_s"][TRIGGERED_CELL]
    assert banked["onset_s"][1 - cell] is None
    assert banked["short_s"] == simulated["short_s"]
    assert banked["vent_s"] == simulated["vent_s"]
    json.dumps(banked, allow_nan=False)


def test_old_bank_read_without_cell_times(runaway_bank, tmp_path, caplog):
    loaded, layout, bank, folder = runaway_bank
    old = tmp_path / "bank.h5"
    old.write_bytes((folder / "bank.h5").read_bytes())
    with h5py.File(old, "r+") as file:
        for name in CELL_TIMES:
            del file["entries"][bank.entries[0].key].attrs[name]

    with caplog.at_level("WARNING", logger="thermosynth.bank"):
        again, simulator = open_bank(loaded, layout, tmp_path)
    _, _, info = again.draw(np.random.default_rng(0))

    assert simulator.calls == 0
    assert again.entries[0].events == {}
    assert not set(CELL_TIMES) & set(info)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert str(old) in warnings[0]
    assert "bank.mode: build" in warnings[0]


def test_heat_bank_entries_have_no_cell_times(tmp_path):
    loaded, layout = demo(tmp_path)
    bank, _ = open_bank(loaded, layout, tmp_path)
    _, _, info = bank.draw(np.random.default_rng(0))

    assert all(entry.events == {} for entry in bank.entries)
    assert set(info) == {"bank_entry", "bank_scale", "bank_symmetry", "bank_exact"}
    with h5py.File(tmp_path / "bank.h5", "r") as file:
        attributes = set(file["entries"][bank.entries[0].key].attrs)
    assert attributes == {"unit", "group", "scenario"}


def test_mirror_rejects_cells_of_unequal_size(runaway_bank):
    from dataclasses import replace

    from thermosynth.bank import _mirror_cell_times

    _, layout, bank, _ = runaway_bank
    cell_id = layout.cell_id.copy()
    cell_id[:, 3:5] = 1  # cell 0 narrows, cell 1 spans both sides of the gap
    uneven = replace(layout, cell_id=cell_id)
    events = bank.entries[0].events

    assert _mirror_cell_times(events, "flip_y", uneven) == events
    with pytest.raises(RecipeError, match=r"flip_x mirror image of a battery cell"):
        _mirror_cell_times(events, "flip_x", uneven)
