"""Warnings for frames and samples that look like a unit mistake."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.geometry.layouts import module
from thermosynth.geometry.registration import corners_homography
from thermosynth.pipeline import Generator, generate
from thermosynth.plausibility import UnitChecks, summarise_implausible
from thermosynth.recipe import load_demo_recipe, load_recipe

LOGGER = "thermosynth.plausibility"
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PIPELINE = "thermosynth.pipeline"


def _frame(value: float, unit: str) -> Frame:
    values = np.full((8, 10), value)
    return Frame(
        raw=values.astype(np.float32),
        values=values,
        unit=unit,
        valid=np.ones(values.shape, bool),
        encoding=LinearEncoding(np.float32),
        noise_sigma=0.05,
        source="f.npy",
    )


@pytest.mark.parametrize(
    ("value", "unit", "warned"),
    [
        (30.0, "C", False),
        (303.15, "K", False),
        (500.0, "C", True),  # a kelvin offset on Celsius frames
        (30.0, "K", True),  # Celsius values labelled kelvin
        (5000.0, "level", False),  # relative levels carry no temperature
    ],
)
def test_frame_far_from_ambient_warns(caplog, value, unit, warned):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_frame(_frame(value, unit))

    assert bool(caplog.records) == warned
    if warned:
        assert "from physics.ambient_C = 25 C" in caplog.records[0].getMessage()
        assert "frames.unit, frames.scale_per_level" in caplog.records[0].getMessage()


def test_each_check_warns_once(caplog):
    checks = UnitChecks(ambient_C=25.0)
    metadata = {"peak_rise_K": 3000.0, "scenario": "short", "saturated_px": 4}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for index in range(3):
            checks.check_frame(_frame(500.0, "C"))
            checks.check_sample(index, metadata)

    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "sample 0 (short) rises 3000 K above ambient" in messages[1]
    assert "sample 0 (short) has 4 mask pixels clipped" in messages[2]


def test_checks_sharing_warned_set_warn_once(caplog):
    warned: set[str] = set()
    first = UnitChecks(ambient_C=25.0, warned=warned)
    second = UnitChecks(ambient_C=25.0, warned=warned)
    metadata = {"peak_rise_K": 3000.0, "scenario": "short", "saturated_px": 4}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first.check_sample(0, metadata)
        second.check_sample(1, metadata)
        second.check_frame(_frame(500.0, "C"))

    messages = [record.getMessage() for record in caplog.records]
    assert warned == {"rise", "saturated", "frame"}
    assert len(messages) == 3
    assert messages[0].startswith("sample 0 (short) rises 3000 K")
    assert messages[1].startswith("sample 0 (short) has 4 mask pixels clipped")


def test_hot_separator_short_names_its_keys(caplog):
    metadata = {
        "peak_rise_K": 2244.0,
        "scenario": "runaway",
        "params": {"separator_short": {"radius_mm": 12.0}},
    }
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_sample(3, metadata)

    (record,) = caplog.records
    assert "sample 3 (runaway) rises 2244 K" in record.getMessage()
    assert "separator_short_energy_J is not too large for" in record.getMessage()


def test_power_in_milliwatts_warns(caplog):
    overrides = [
        "split.test_anomalous=4",
        "scenarios.0.power_W={loguniform: [2000, 20000]}",
        "scenarios.1.current_A=2000",
    ]
    generator = Generator(load_demo_recipe(overrides=overrides))
    index, frame_index = next(
        (i, f)
        for i, _, label, f in generator.plan.entries()
        if label and generator.planned_scenario(i) == "internal_short"
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sample = generator.anomalous(index, generator.read_frame(frame_index))

    assert sample.metadata["peak_rise_K"] > 1200.0
    assert any("is in watts" in r.getMessage() for r in caplog.records)


def test_demo_sample_does_not_warn(caplog):
    generator = Generator(load_demo_recipe(overrides=["split.test_anomalous=2"]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for index, _, label, frame_index in generator.plan.entries():
            if label:
                generator.anomalous(index, generator.read_frame(frame_index))

    assert not caplog.records


def _covered(shape: tuple[int, int], corners_px: list[list[float]]) -> np.ndarray:
    """Return the frame pixels inside the polygon ``corners_px`` [px]."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    polygon = np.asarray(corners_px)
    inside = (x >= polygon[:, 0].min()) & (x <= polygon[:, 0].max())
    return inside & (y >= polygon[:, 1].min()) & (y <= polygon[:, 1].max())


@pytest.mark.parametrize(
    ("corners_px", "invalid_rows", "expected"),
    [
        ([[1, 1], [8, 1], [8, 6], [1, 6]], 0, None),
        ([[-0.5, -0.5], [9.5, -0.5], [9.5, 7.5], [-0.5, 7.5]], 0, None),
        # 40 x 16 px, of which the frame contains 10 x 8 = 80 px: 12 %
        ([[-10, -4], [30, -4], [30, 12], [-10, 12]], 0, "only 12% of the layout"),
        # inside the frame on rows 1-6, of which only row 6 is valid: 17 %
        ([[1, 1], [8, 1], [8, 6], [1, 6]], 6, "only 17% of the pixels under"),
    ],
)
def test_layout_off_frame_warns(caplog, corners_px, invalid_rows, expected):
    frame = _frame(30.0, "C")
    frame.valid[:invalid_rows] = False
    covered = _covered(frame.shape, corners_px)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_placement(frame, corners_px, covered)

    messages = [record.getMessage() for record in caplog.records]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert expected in messages[0]
        assert "f.npy (8 x 10 px, height x width)" in messages[0]
        assert "registration.corners_px" in messages[0]


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("hotspot", "scenarios.s.power_W"),
        ("joule", "scenarios.s.current_A or scenarios.s.resistance_mohm"),
        ("held_patch", "scenarios.s.rise_K"),
    ],
)
def test_saturation_names_source_keys(caplog, kind, keys):
    metadata = {"peak_rise_K": 30.0, "scenario": "s", "kind": kind, "saturated_px": 2}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_sample(0, metadata)

    (record,) = caplog.records
    assert f"lower {keys} or check" in record.getMessage()


def test_hot_joule_names_current_and_resistance(caplog):
    metadata = {"peak_rise_K": 1500.0, "scenario": "tab", "kind": "joule"}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_sample(0, metadata)

    (record,) = caplog.records
    assert "current_A is in amperes, its resistance_mohm in milliohms" in (
        record.getMessage()
    )


def test_implausible_summary_counts_every_sample():
    recipe = load_demo_recipe().recipe
    rises = [[9, "tab_overheating", 1300.0]]
    rises += [[i, "internal_short", 1200.0 + i] for i in (20, 3, 4, 5, 6, 7, 8)]

    line = summarise_implausible(rises, recipe.scenarios, n_anomalous=10)

    assert line is not None
    assert line.startswith("8 of 10 anomalous samples rise more than 1200 K")
    assert "(the largest 1300 K)" in line
    assert (
        "samples 3, 4, 5, 6, 7 and 2 more of 'internal_short' (scenarios.0.power_W)"
    ) in line
    assert (
        "samples 9 of 'tab_overheating' (scenarios.1.current_A, "
        "scenarios.1.resistance_mohm)"
    ) in line
    assert summarise_implausible([], recipe.scenarios, n_anomalous=10) is None


@pytest.mark.parametrize(
    ("short_overrides", "keys"),
    [
        ([], "scenarios.0.power_W"),
        (
            [
                "scenarios.0.separator_short_C=150",
                "scenarios.0.separator_short_energy_J=160000",
                "scenarios.0.separator_short_s=20",
            ],
            "scenarios.0.power_W, scenarios.0.separator_short_energy_J",
        ),
    ],
)
def test_implausible_summary_names_short_energy(data_dir, short_overrides, keys):
    recipe_path = RECIPES / "module-runaway-sequence.yaml"
    recipe = load_recipe(recipe_path, overrides=short_overrides).recipe
    rises = [[2, "cell_runaway", 3178.0]]

    line = summarise_implausible(
        rises, recipe.scenarios, n_anomalous=1, noun="sequence"
    )

    assert line is not None
    assert f"sequences 2 of 'cell_runaway' ({keys}). Lower those keys" in line


def test_generate_logs_implausible_summary(tmp_path, caplog):
    overrides = [
        f"output.dir={tmp_path / 'out'}",
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=3",
        "frames.n_frames=2",
        "output.shard_size=1",
        "scenarios.0.power_W=20000",
        "scenarios.0.weight=100",
        "output.folder=false",  # the folder's clipping warning is another line
    ]
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(load_demo_recipe(overrides=overrides), progress=False)

    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    per_sample = [message for message in messages if " rises " in message]
    summary = [r.getMessage() for r in caplog.records if r.name == PIPELINE]
    assert len(per_sample) == 1
    assert summary == [
        "3 of 3 anomalous samples rise more than 1200 K above ambient (the largest "
        f"{max_peak_K(tmp_path / 'out'):.0f} K), more than any battery surface: "
        "samples 1, 2, 3 of 'internal_short' (scenarios.0.power_W). Lower those "
        "keys or check their units"
    ]


def max_peak_K(output: Path) -> float:
    with h5py.File(output / "dataset.h5", "r") as file:
        peaks = [json.loads(m)["peak_rise_K"] for m in file["metadata"].asstr()[1:]]
    return max(peaks)


@pytest.mark.parametrize(
    ("corners_px", "expected"),
    [
        # 2.5 px/mm across and down: the module's own shape
        ([[0, 0], [250, 0], [250, 100], [0, 100]], None),
        # a 25 % foreshortening by perspective
        ([[0, 0], [250, 0], [230, 75], [20, 75]], None),
        # 0.4 px/mm across, 1 px/mm down
        ([[0, 0], [40, 0], [40, 40], [0, 40]], "2.5 times taller than wide"),
        # 2.5 px/mm across, 0.5 px/mm down
        ([[0, 0], [250, 0], [250, 20], [0, 20]], "5.0 times wider than tall"),
    ],
)
def test_stretched_layout_warns(caplog, corners_px, expected):
    layout = module(
        n_cells=2,
        cell_width_mm=48.0,
        cell_height_mm=40.0,
        gap_mm=4.0,
        thickness_mm=8.0,
        resolution_mm=2.0,
    )
    homography = corners_homography(layout, np.asarray(corners_px, float))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        UnitChecks(ambient_C=25.0).check_scale(_frame(30.0, "C"), layout, homography)

    messages = [record.getMessage() for record in caplog.records]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert expected in messages[0]
        assert "layout of 100 x 40 mm (width x height) on f.npy" in messages[0]
        assert "registration.corners_px" in messages[0]


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ((), False),
        # six cells of 148 x 91 mm placed on the camera's 4:3 region
        (
            (
                "layout.n_cells=6",
                "layout.cell_width_mm=148",
                "layout.cell_height_mm=91",
            ),
            True,
        ),
    ],
)
def test_battery_station_layout_scale(data_dir, caplog, overrides, warned):
    loaded = load_recipe(RECIPES / "battery-station-inferno.yaml", overrides=overrides)
    generator = Generator(loaded)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        generator.prepare(generator.source.read(0))

    messages = [r.getMessage() for r in caplog.records if "px/mm" in r.getMessage()]
    assert len(messages) == int(warned)
    if warned:
        assert "layout of 908 x 91 mm" in messages[0]
        assert "times taller than wide" in messages[0]


def test_stretched_sequence_layout_warns(data_dir, tmp_path, caplog):
    overrides = (
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=1",
        "sequence={fps: 0.2, window_s: 10, base: still}",
        "layout.n_cells=6",
        "layout.cell_width_mm=148",
        "layout.cell_height_mm=91",
        f"output.dir={tmp_path / 'out'}",
    )
    loaded = load_recipe(
        RECIPES / "module-growing-hotspot-sequence.yaml", overrides=overrides
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        generate(loaded, progress=False)

    messages = [r.getMessage() for r in caplog.records if "px/mm" in r.getMessage()]
    assert len(messages) == 1
    assert "layout of 908 x 91 mm" in messages[0]
