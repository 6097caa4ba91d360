"""Tests of thermosynth.validation.transfer_page: the figures of a transfer report."""

import re

import cv2
import numpy as np
import pytest
from real_frames import BATTERY_FRAMES, PV_IMAGES, grey_frames

from thermosynth import __version__
from thermosynth.validation import generators as gen
from thermosynth.validation.detectors import max_minus_median
from thermosynth.validation.transfer import (
    TransferData,
    TransferResult,
    make_pseudo,
    transfer_report,
)
from thermosynth.validation.transfer_page import (
    _contamination_table,
    _example_rows,
    _examples_figure,
    _plot_examples,
    _severity_figure,
    _signed,
)

SHAPE = (20, 12)


def _data(*, with_masks: bool) -> TransferData:
    rng = np.random.default_rng(0)
    images = rng.integers(60, 100, (10, *SHAPE), dtype=np.uint8)
    labels = np.array([False] * 4 + [True] * 6)
    masks = np.zeros((10, *SHAPE), bool)
    for i in range(4, 10):
        masks[i, i : i + 3, 2:5] = True
    return TransferData(
        train_normal=rng.integers(60, 100, (8, *SHAPE), dtype=np.uint8),
        test_images=images,
        test_labels=labels,
        test_groups=np.where(labels, "hot", "normal"),
        test_masks=masks if with_masks else None,
    )


def test_examples_outline_real_masks():
    data = _data(with_masks=True)
    generators = {"cutpaste": gen.CutPaste}

    rows = _example_rows(data, generators, np.random.default_rng(1), n=4)

    names = [row[0] for row in rows]
    assert names == ["normal", "real anomaly", "cutpaste"]
    _, reals, real_masks, real_colour = rows[1]
    assert data.test_masks is not None
    assert np.array_equal(reals, data.test_images[4:8])
    assert real_masks is not None
    assert np.array_equal(real_masks, data.test_masks[4:8])
    _, _, pseudo_masks, pseudo_colour = rows[2]
    assert pseudo_masks is not None
    assert real_colour != pseudo_colour


def test_examples_without_real_masks(tmp_path):
    data = _data(with_masks=False)

    rows = _example_rows(data, {}, np.random.default_rng(1), n=4)
    _plot_examples(data, {}, np.random.default_rng(1), tmp_path / "examples.png")

    assert rows[1][2] is None
    assert (tmp_path / "examples.png").stat().st_size > 0


def test_examples_pseudo_follow_seed():
    data = _data(with_masks=True)
    factory = gen.CutPaste

    rows = _example_rows(data, {"cutpaste": factory}, np.random.default_rng(5), n=4)
    expected, _ = make_pseudo(
        data.train_normal[:4], factory(data.train_normal), np.random.default_rng(5)
    )

    assert np.array_equal(rows[2][1], expected)


def _real_data(frames: np.ndarray) -> TransferData:
    """Train on frames 0-7; test 8-11 as normal and 12-15 as anomalous."""
    labels = np.array([False] * 4 + [True] * 4)
    masks = np.zeros((8, *frames.shape[1:]), bool)
    masks[4:, 5:15, 5:15] = True
    return TransferData(
        train_normal=frames[:8],
        test_images=frames[8:16],
        test_labels=labels,
        test_groups=np.where(labels, "hot", "normal"),
        test_masks=masks,
    )


@pytest.mark.parametrize(
    ("folder", "pattern", "min_scale"),
    [(PV_IMAGES, "*.jpg", 3), (BATTERY_FRAMES, "*CAM2_thermal.png", 2)],
)
def test_examples_enlarge_real_frames(data_dir, tmp_path, folder, pattern, min_scale):
    frames = grey_frames(data_dir, folder, pattern, 16)
    height, width = frames.shape[1:]
    data = _real_data(frames)
    generators = {"cutpaste": gen.CutPaste}
    path = tmp_path / "examples.png"

    _plot_examples(data, generators, np.random.default_rng(0), path, n=6)
    rows = _example_rows(data, generators, np.random.default_rng(0), n=6)
    grid = _examples_figure(rows, 6, real_masks=True)

    saved = cv2.imread(str(path))
    assert saved.shape[1] >= 6 * min_scale * width
    assert saved.shape[0] >= 3 * min_scale * height
    for ax in grid.axes.flat:
        box = ax.get_window_extent()
        assert box.width >= min_scale * width
        assert box.height >= min_scale * height
    # Six normal frames, four real anomalies and six cutpaste frames.
    images = [image for ax in grid.axes.flat for image in ax.get_images()]
    assert len(images) == 16
    assert {image.get_interpolation() for image in images} == {"nearest"}
    for ax in grid.axes[:, 0]:
        assert ax.yaxis.label.get_fontsize() >= 10


def _severity_rows(groups: list[str], factors: list[float]) -> list[dict]:
    """Rows of severity.csv, one per factor and group, AUROC rising with factor."""
    rows = []
    for level, factor in enumerate(factors):
        for offset, group in enumerate(groups):
            auroc = 0.6 + 0.1 * level + 0.02 * offset
            rows.append(
                {
                    "severity": factor,
                    "generator": "thermosynth",
                    "detector": "classifier",
                    "contrast_noise_median": 10.0 * (level + 1),
                    "group": group,
                    "auroc": auroc,
                    "low": auroc - 0.05,
                    "high": auroc + 0.05,
                }
            )
    return rows


def _legend_lines(figure) -> list[str]:
    """Return the labels of the drawn lines; the legend must list the same."""
    lines = figure.axes[0].get_lines()
    labels = [
        line.get_label() for line in lines if not line.get_label().startswith("_")
    ]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == labels
    return labels


def test_severity_one_class_draws_one_line():
    # With one class its rows equal the "all" rows, as transfer writes them.
    rows = _severity_rows(["all", "contrast"], [0.5, 1.0])
    for row in rows:
        row["auroc"], row["low"], row["high"] = 0.9, 0.85, 0.95

    figure = _severity_figure(rows)

    assert _legend_lines(figure) == ["all classes (contrast only)"]
    assert len(figure.axes[0].collections) == 1


def test_severity_classes_get_own_lines():
    rows = _severity_rows(["all", "Cell", "Hot-Spot"], [0.5, 1.0, 2.0])

    figure = _severity_figure(rows)

    assert _legend_lines(figure) == ["all classes", "Cell", "Hot-Spot"]
    bands = figure.axes[0].collections
    assert len(bands) == 3
    # Where all three bands overlap, at most 40 % of the lines below is hidden.
    clear = np.prod([1.0 - band.get_alpha() for band in bands])
    assert 1.0 - clear <= 0.4 + 1e-9


def test_severity_one_level_draws_bars():
    rows = _severity_rows(["all", "Cell", "Hot-Spot"], [1.0])
    # A bootstrap interval can leave out its own AUROC.
    rows[1]["low"] = rows[1]["auroc"] + 0.01

    figure = _severity_figure(rows)

    assert _legend_lines(figure) == ["all classes", "Cell", "Hot-Spot"]
    assert "bars: 95 % CI" in figure.axes[0].get_title()
    bars = [bar.get_segments()[0] for bar in figure.axes[0].collections]
    for bar, row in zip(bars, rows, strict=True):
        assert bar[:, 0] == pytest.approx([10.0, 10.0])
        assert bar[:, 1] == pytest.approx([row["low"], row["high"]])


def _contaminated_result() -> TransferResult:
    keys = {"generator": "none", "detector": "knn", "group": "all"}
    clean = {**keys, "auroc": 0.6250004, "low": 0.5, "high": 0.75, "n_anomalous": 6}
    dirty = {**clean, "auroc": 0.6249998, "low": 0.48, "high": 0.74}
    return TransferResult(
        image=[clean], contamination=[{**dirty, "contamination": 0.1}]
    )


def test_contamination_table_has_intervals():
    table = _contamination_table(_contaminated_result())
    row = table.splitlines()[-1]

    assert "| 0.625 [0.500, 0.750] | 0.625 [0.480, 0.740] |" in row
    assert "clean AUROC [95 % CI]" in table


def test_contamination_change_has_no_negative_zero():
    row = _contamination_table(_contaminated_result()).splitlines()[-1]

    assert "-0.000" not in row
    assert "| 0.000 |" in row
    assert _signed(-0.0004) == "0.000"
    assert _signed(-0.0123) == "-0.012"
    assert _signed(0.0123) == "+0.012"


def test_report_records_version_date_and_interval_scope(tmp_path):
    data = _data(with_masks=False)

    transfer_report(
        data, {}, {}, out_dir=tmp_path, scorers={"max": max_minus_median}, n_boot=5
    )
    report = (tmp_path / "report.md").read_text()

    assert f"by thermosynth {__version__} on " in report
    assert re.search(r"Written \d{4}-\d\d-\d\d \d\d:\d\d UTC", report)
    assert "covers the resampling of the test set only, not training noise" in report
