"""Tests of the preview's choice of samples."""

import logging
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np

from thermosynth.pipeline import Generator
from thermosynth.preview import draw_rows, pick_varied, write_preview
from thermosynth.recipe import load_demo_recipe, load_recipe


def rows(kinds):
    return [(SimpleNamespace(index=i, kind=k), None) for i, k in enumerate(kinds)]


def sample_kind(row):
    return row[0].kind


def picked(kinds, n, n_kinds):
    return [
        s.index
        for s, _ in pick_varied(
            iter(rows(kinds)), n=n, n_kinds=n_kinds, kind=sample_kind
        )
    ]


def test_each_kind_before_a_repeat():
    kinds = ["spot"] * 5 + ["cell", "spot", "region", "cell"]
    assert picked(kinds, n=3, n_kinds=3) == [0, 5, 7]
    assert picked(kinds, n=4, n_kinds=3) == [0, 1, 5, 7]


def test_one_kind_fills_rows_in_order():
    assert picked(["spot"] * 6, n=4, n_kinds=3) == [0, 1, 2, 3]
    assert picked(["spot", "cell"], n=5, n_kinds=2) == [0, 1]


def test_reading_stops_once_picks_settle():
    consumed = []

    def samples():
        for row in rows(["spot", "cell", "spot", "spot", "cell"]):
            consumed.append(row[0].index)
            yield row

    pick_varied(samples(), n=2, n_kinds=2, kind=sample_kind)
    assert consumed == [0, 1]


def test_kinds_take_turns_for_repeats():
    kinds = ["spot"] * 5 + ["cell", "region", "cell", "region"]
    assert picked(kinds, n=5, n_kinds=3) == [0, 1, 5, 6, 7]


def test_planned_scenario_matches_sample_kind():
    generator = Generator(load_demo_recipe(overrides=["split.test_anomalous=6"]))
    anomalous = [(i, f) for i, _, label, f in generator.plan.entries() if label]
    for index, frame_index in anomalous:
        frame = generator.read_frame(frame_index)
        sample = generator.anomalous(index, frame)
        assert sample.kind == generator.planned_scenario(index)


def test_preview_simulates_only_picked_rows(tmp_path, monkeypatch):
    simulated = []
    real_anomalous = Generator.anomalous

    def counting(self, index, frame):
        simulated.append(self.planned_scenario(index))
        return real_anomalous(self, index, frame)

    monkeypatch.setattr(Generator, "anomalous", counting)
    # The demo plans tab, tab, short, short, ...: the three rows are samples
    # 0, 1 and 2, and the fourth is read only to fill the short kind's share.
    # A preview that simulated samples to learn their kinds would draw it too.
    loaded = load_demo_recipe(overrides=["split.test_anomalous=12"])
    path, n_drawn = write_preview(loaded, n=3, path=tmp_path / "p.png")

    assert n_drawn == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(simulated) == ["internal_short", "tab_overheating", "tab_overheating"]


def test_preview_outlines_the_layout_corners():
    generator = Generator(load_demo_recipe(overrides=["split.test_anomalous=1"]))
    index, frame_index = next(
        (i, f) for i, _, label, f in generator.plan.entries() if label
    )
    frame = generator.read_frame(frame_index)
    sample = generator.anomalous(index, frame)
    figure = draw_rows([(sample, frame)])
    normal_axes = figure.axes[0]
    corners = np.asarray(sample.metadata["corners_px"], float)

    (line,) = normal_axes.lines
    np.testing.assert_array_equal(line.get_xydata(), np.vstack([corners, corners[:1]]))
    assert normal_axes.get_xlim() == (-0.5, frame.shape[1] - 0.5)
    plt.close(figure)


def test_preview_names_the_sources_of_a_sample():
    short = "scenarios.internal_short"
    overrides = ["split.test_anomalous=1", f"{short}.count=3", f"{short}.weight=100"]
    generator = Generator(load_demo_recipe(overrides=overrides))
    index, frame_index = next(
        (i, f) for i, _, label, f in generator.plan.entries() if label
    )
    frame = generator.read_frame(frame_index)
    sample = generator.anomalous(index, frame)

    figure = draw_rows([(sample, frame)])

    assert figure.axes[0].get_ylabel() == f"#{index} internal_short, 3 sources"
    plt.close(figure)


def test_preview_logs_each_drawn_sample(data_dir, tmp_path, caplog):
    recipe = Path(__file__).resolve().parents[1] / "recipes/pv-module-hotspots.yaml"
    loaded = load_recipe(recipe, overrides=["bank.mode=off", "split.test_anomalous=3"])
    with caplog.at_level(logging.INFO, logger="thermosynth.preview"):
        write_preview(loaded, n=2, path=tmp_path / "p.png")

    messages = [
        r.getMessage() for r in caplog.records if r.name == "thermosynth.preview"
    ]
    assert len(messages) == 2
    assert messages[0].startswith("preview: drew sample ")
    assert ", 1 of 2, in " in messages[0]
    assert ", 2 of 2, in " in messages[1]
