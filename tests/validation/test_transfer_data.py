"""Tests of thermosynth.validation.transfer_data: splitting frames and masks."""

import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.validation.transfer_data import split_transfer_data

SHAPE = (6, 4)


def _numbered(n: int, start: int) -> np.ndarray:
    """Frames whose pixels all equal the frame's own number."""
    return (np.arange(start, start + n, dtype=np.uint8)[:, None, None]) + np.zeros(
        SHAPE, dtype=np.uint8
    )


def test_split_keeps_masks_with_their_frames():
    hot, cell = _numbered(6, 100), _numbered(4, 200)
    # Each mask marks as many pixels as its frame's number minus the class base.
    masks = {
        name: np.stack([np.arange(24).reshape(SHAPE) < f[0, 0] - base for f in frames])
        for name, frames, base in (("Hot", hot, 99), ("Cell", cell, 199))
    }
    data = split_transfer_data(
        _numbered(20, 0),
        {"Hot": hot, "Cell": cell},
        np.random.default_rng(0),
        n_train=10,
        n_test=5,
        anomaly_masks=masks,
    )

    assert data.test_masks is not None
    assert data.test_masks.shape == data.test_images.shape
    assert not data.test_masks[~data.test_labels].any()
    for image, mask, group in zip(
        data.test_images, data.test_masks, data.test_groups, strict=True
    ):
        if group != "normal":
            base = 99 if group == "Hot" else 199
            assert mask.sum() == image[0, 0] - base


def test_split_without_masks_has_none():
    data = split_transfer_data(
        _numbered(20, 0),
        {"Hot": _numbered(6, 100)},
        np.random.default_rng(0),
        n_train=10,
        n_test=5,
    )
    assert data.test_masks is None
    assert len(data.reserve_anomalies) == 3


def test_split_rejects_missing_class_masks():
    with pytest.raises(FrameError, match="masks of anomaly class 'Cell' are missing"):
        split_transfer_data(
            _numbered(20, 0),
            {"Hot": _numbered(6, 100), "Cell": _numbered(4, 200)},
            np.random.default_rng(0),
            n_train=10,
            n_test=5,
            anomaly_masks={"Hot": np.zeros((6, *SHAPE), dtype=bool)},
        )
