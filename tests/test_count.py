"""Scenarios with ``count``: several sources superposed in one sample."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from demo_overrides import NO_TAB_EMISSIVITY
from small_sequences import SMALL_SEQUENCES

from thermosynth.bank import apply_symmetry, bank_size, read_bank_entry
from thermosynth.datasets import OnTheFlyDataset
from thermosynth.errors import RecipeError
from thermosynth.recipe import load_demo_recipe
from thermosynth.samples import Generator, simulate_rise
from thermosynth.scenario import DrawnScenario, draw_scenario
from thermosynth.sequences import SequenceGenerator, simulate_sequence_rise
from thermosynth.simulation import simulate_scenario
from thermosynth.validation.generators import simulate_rise_bank

SHORT = "scenarios.internal_short"


def _generator(*overrides: str) -> Generator:
    return Generator(load_demo_recipe(overrides=["split.test_anomalous=4", *overrides]))


def _first_sample(generator: Generator):
    index, _, _, frame_index = next(e for e in generator.plan.entries() if e[2] == 1)
    return generator.anomalous(index, generator.read_frame(frame_index))


def _drawn(metadata: dict, source: dict) -> DrawnScenario:
    return DrawnScenario(
        kind=metadata["kind"],
        name=metadata["scenario"],
        duration_s=source["duration_s"],
        params=source["params"],
    )


@pytest.mark.parametrize(
    ("emissivity", "low", "high"), [(0.0, 0.0, 1e-9), (0.9, 1e-8, 1e-3)]
)
def test_sum_of_runs_against_one_run_of_both(emissivity, low, high):
    precision = "physics.precision=float64"
    # The demo's bare tabs radiate at 0.1 whatever emissivity_top is.
    regions = "physics.emissivity_top_regions={}"
    loaded = load_demo_recipe(
        overrides=[f"physics.emissivity_top={emissivity}", regions, precision]
    )
    recipe, layout = loaded.recipe, Generator(loaded).layout
    rng = np.random.default_rng(3)
    first = draw_scenario(recipe.scenarios[0], layout, rng)
    # Near the first, so that the two rises overlap.
    second = replace(first, params={**first.params, "x_mm": first.params["x_mm"] + 6})

    both = simulate_scenario(first, layout, recipe, together_with=[second])[-1]
    apart = sum(simulate_scenario(d, layout, recipe)[-1] for d in (first, second))

    error = float(np.abs(both - apart).max() / both.max())
    assert both.max() > 1.0
    assert low <= error <= high


def test_count_one_matches_no_count():
    plain = _first_sample(_generator())
    counted = _first_sample(_generator(f"{SHORT}.count=1"))

    assert np.array_equal(plain.raw, counted.raw)
    assert plain.metadata == counted.metadata
    assert "params" in plain.metadata
    assert "sources" not in plain.metadata


def test_simulated_sources_add_up():
    sample = _first_sample(_generator(f"{SHORT}.count=3", f"{SHORT}.weight=100"))
    metadata = sample.metadata
    generator = _generator()

    assert metadata["count"] == 3
    assert len(metadata["sources"]) == 3
    assert "params" not in metadata
    rises = [
        simulate_rise(_drawn(metadata, source), generator.layout, generator.recipe)
        for source in metadata["sources"]
    ]
    positions = {
        (s["params"]["x_mm"], s["params"]["y_mm"]) for s in metadata["sources"]
    }
    assert len(positions) == 3
    assert metadata["peak_rise_K"] == float((rises[0] + rises[1] + rises[2]).max())


def test_bank_sources_add_up(tmp_path):
    bank_path = tmp_path / "bank.h5"
    generator = _generator(
        f"{SHORT}.count={{choice: [2]}}",
        f"{SHORT}.weight=100",
        "bank.mode=build",
        f"bank.path={bank_path}",
        "bank.size=4",
    )
    metadata = _first_sample(generator).metadata

    total = 0.0
    for source in metadata["sources"]:
        _, rise = read_bank_entry(bank_path, source["bank_entry"])
        scaled = source["bank_scale"] * apply_symmetry(rise, source["bank_symmetry"])
        total = total + np.maximum(scaled, 0.0)
    assert metadata["count"] == 2
    assert metadata["peak_rise_K"] == pytest.approx(float(np.max(total)), rel=1e-12)


def test_bank_sources_of_a_sample_differ(tmp_path):
    generator = _generator(
        f"{SHORT}.count=2",
        f"{SHORT}.weight=100",
        "bank.mode=build",
        f"bank.path={tmp_path / 'bank.h5'}",
        "bank.size=2",
    )
    anomalous = [e for e in generator.plan.entries() if e[2] == 1]

    for index, _, _, frame_index in anomalous:
        frame = generator.read_frame(frame_index)
        sources = generator.anomalous(index, frame).metadata["sources"]
        assert sources[0]["bank_entry"] != sources[1]["bank_entry"]


@pytest.mark.parametrize(("count", "entries"), [("1", 1), ("{choice: [1, 2, 3]}", 2)])
def test_bank_size_follows_sources_drawn(count, entries):
    # 8 anomalous samples, half of them internal shorts, 8 per entry.
    loaded = load_demo_recipe(
        overrides=[f"{SHORT}.count={count}", f"{SHORT}.weight=0.5"]
    )

    assert bank_size(loaded.recipe) == entries


def test_dataset_items_carry_each_source():
    loaded = load_demo_recipe(overrides=[f"{SHORT}.count=2", f"{SHORT}.weight=100"])
    dataset = OnTheFlyDataset(loaded, length=2, anomaly_fraction=1.0, bank_size=2)

    metadata = json.loads(dataset[0]["metadata"])
    slots = sorted(source["bank_slot"] for source in metadata["sources"])
    assert metadata["count"] == 2
    assert slots == [0, 1]


def test_fixed_sources_double_the_validation_bank():
    fixed = [
        f"{SHORT}.x_mm=50",
        f"{SHORT}.y_mm=35",
        f"{SHORT}.power_W=2",
        f"{SHORT}.radius_mm=3",
        f"{SHORT}.duration_s=60",
        f"{SHORT}.weight=100",
        "physics.emissivity_top=0",
    ]
    frame = _generator().read_frame(0)

    def bank(*count: str) -> np.ndarray:
        loaded = load_demo_recipe(overrides=[*fixed, *count])
        return simulate_rise_bank(loaded, frame, n_scenarios=1, seed=0, n_times=1)

    single, double = bank(), bank(f"{SHORT}.count=2")
    assert single.max() > 0.5
    np.testing.assert_allclose(double, 2 * single, rtol=1e-5, atol=1e-6)


def test_sequence_sources_add_up():
    counted = load_demo_recipe(overrides=[*SMALL_SEQUENCES, "scenarios.0.count=2"])
    generator = SequenceGenerator(counted)
    entry = next(entry for entry in generator.entries if entry.label)
    metadata = generator.make(entry).metadata

    assert metadata["count"] == 2
    rises = [
        simulate_sequence_rise(
            _drawn(metadata, source),
            generator.layout,
            generator.recipe,
            generator.times_s,
        )
        for source in metadata["sources"]
    ]
    assert metadata["peak_rise_K"] == [float(r.max()) for r in rises[0] + rises[1]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "got 0"),
        ("2.5", "got 2.5"),
        ("17", "from 1 to 16"),
        ("{choice: [1, 0]}", "got 0"),
        ("{uniform: [1, 3]}", r"whole number from 1 to 16, or \{choice"),
        ("{choice: [1.5, 2]}", r"got 1\.5; fix it in the recipe or with --set"),
    ],
)
def test_count_must_be_a_whole_number_in_range(value, expected):
    with pytest.raises(RecipeError, match=expected) as error:
        load_demo_recipe(overrides=[f"{SHORT}.count={value}"])

    assert "count" in str(error.value)


def test_count_rejected_on_fixed_joule_region():
    with pytest.raises(RecipeError, match="one_cell, one_strip") as error:
        load_demo_recipe(overrides=["scenarios.tab_overheating.count=2"])

    assert "region is 'tabs'" in str(error.value)


def test_count_on_held_patch_says_why():
    patch = "scenarios=[{kind: held_patch, rise_K: 3, radius_mm: 3, count: 2}]"

    with pytest.raises(RecipeError, match="unknown key 'scenarios.0.count'") as error:
        load_demo_recipe(overrides=[patch])

    assert "a held temperature and runaway chemistry do not add up" in str(error.value)


CELL_GRID = (
    "layout={{kind: cell_grid, rows: 1, cols: {cols}, cell_width_mm: 30, "
    "cell_height_mm: 30, gap_mm: 4, border_mm: 4, thickness_mm: 6, "
    "resolution_mm: 2}}"
)
HOT_CELLS = (
    "scenarios=[{kind: joule, name: hot_cell, region: one_cell, current_A: 30, "
    "resistance_mohm: 5, duration_s: 60, count: 2}]"
)


def test_bank_sources_heat_distinct_cells(tmp_path):
    bank = ["bank.mode=build", f"bank.path={tmp_path / 'bank.h5'}", "bank.size=2"]
    # Two cells that mirror into each other, so two entries' images often
    # fall on one cell.
    grid = CELL_GRID.format(cols=2)
    generator = _generator(
        grid, HOT_CELLS, "split.test_anomalous=12", *bank, *NO_TAB_EMISSIVITY
    )
    anomalous = [e for e in generator.plan.entries() if e[2] == 1]

    for index, _, _, frame_index in anomalous:
        frame = generator.read_frame(frame_index)
        sources = generator.anomalous(index, frame).metadata["sources"]
        cells = {source["params"]["cell_id"] for source in sources}
        assert len(cells) == 2


def test_dataset_sources_heat_distinct_cells():
    overrides = [CELL_GRID.format(cols=3), HOT_CELLS, *NO_TAB_EMISSIVITY]
    dataset = OnTheFlyDataset(
        load_demo_recipe(overrides=overrides),
        length=12,
        anomaly_fraction=1.0,
        bank_size=3,
    )

    for i in range(len(dataset)):
        sources = json.loads(dataset[i]["metadata"])["sources"]
        cells = {source["params"]["cell_id"] for source in sources}
        assert len(cells) == 2
