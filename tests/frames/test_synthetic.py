"""Tests for thermosynth.frames.synthetic."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.synthetic import SyntheticPouchSource


def test_synthetic_same_seed_and_index_identical():
    first = SyntheticPouchSource(4, seed=5).read(2)
    second = SyntheticPouchSource(4, seed=5).read(2)

    np.testing.assert_array_equal(first.raw, second.raw)
    np.testing.assert_array_equal(first.values, second.values)


def test_synthetic_differs_by_index_and_seed():
    source = SyntheticPouchSource(4, seed=5)

    assert not np.array_equal(source.read(1).raw, source.read(2).raw)
    assert not np.array_equal(
        source.read(1).raw, SyntheticPouchSource(4, seed=6).read(1).raw
    )


def test_synthetic_reading_order_irrelevant():
    source = SyntheticPouchSource(3, seed=1)
    later = source.read(2).raw

    np.testing.assert_array_equal(SyntheticPouchSource(3, seed=1).read(2).raw, later)


def test_synthetic_frame_contents():
    source = SyntheticPouchSource(2, shape=(120, 160), noise_sigma_K=0.05)
    frame = source.read(0)
    x0, y0, x1, y1 = source.cell_rect_px
    cell = frame.values[y0 + 5 : y1 - 5, x0 + 5 : x1 - 5]

    assert frame.raw.dtype == np.uint16
    assert frame.unit == "C"
    assert np.median(cell) == pytest.approx(27.0, abs=0.1)
    assert np.median(frame.values[:, :5][frame.valid[:, :5]]) < 23.0
    assert frame.noise_sigma == pytest.approx(0.05, rel=0.1)
    np.testing.assert_array_equal(frame.encoding.encode(frame.values), frame.raw)


def test_synthetic_overlay_invalid():
    source = SyntheticPouchSource(1)
    frame = source.read(0)
    x0, y0, x1, y1 = source.ignore_rects[0]

    assert not frame.valid[y0:y1, x0:x1].any()
    assert frame.valid.sum() == frame.valid.size - (x1 - x0) * (y1 - y0)
    assert frame.values[y0:y1, x0:x1].min() > 50.0


def test_synthetic_len_and_sources():
    source = SyntheticPouchSource(3, seed=9)

    assert len(source) == 3
    assert source.sources[2] == "synthetic-pouch(seed=9)[2]"
    with pytest.raises(IndexError, match="frame index 3 out of range"):
        source.read(3)


def test_synthetic_rejects_tiny_shape():
    with pytest.raises(FrameError, match=r"at least \(32, 32\) px, got \(10, 40\)"):
        SyntheticPouchSource(1, shape=(10, 40))
