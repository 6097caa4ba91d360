"""Tests of thermosynth.validation.transfer_page: the figures of a transfer report."""

import numpy as np

from thermosynth.validation import generators as gen
from thermosynth.validation.transfer import TransferData, make_pseudo
from thermosynth.validation.transfer_page import _example_rows, _plot_examples

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
