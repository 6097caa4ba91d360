"""Tests of thermosynth.validation.transfer_page: the figures of a transfer report."""

import re

import numpy as np

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
    _plot_examples,
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
