"""Tests of thermosynth.validation.closeness_figures: the example frames figure."""

import dataclasses

import cv2
import numpy as np
import pytest
from real_frames import BATTERY_FRAMES, PV_IMAGES

from thermosynth.validation.closeness_figures import examples_figure
from thermosynth.validation.io import load_frame_set


@pytest.mark.parametrize("folder", [BATTERY_FRAMES, PV_IMAGES])
def test_examples_rows_fill_the_height(data_dir, tmp_path, folder):
    normal = load_frame_set(
        data_dir / folder, max_frames=8, rng=np.random.default_rng(0)
    )
    height, width = normal.values.shape[1:]
    masks = np.zeros(normal.values.shape, bool)
    masks[:, height // 4 : height // 2, width // 4 : width // 2] = True
    pseudo = dataclasses.replace(normal, masks=masks)
    hottest = (
        normal.values >= np.percentile(normal.values, 99, axis=(1, 2))[:, None, None]
    )
    regions = {"normal": hottest, "pseudo": hottest}

    grid = examples_figure({"normal": normal, "pseudo": pseudo}, regions)
    grid.save(tmp_path / "examples.png")

    saved = cv2.imread(str(tmp_path / "examples.png"))
    frames_height = 2 * grid.scale * height
    # Two rows of frames, one line of title: no empty bands between rows.
    assert frames_height / saved.shape[0] >= 0.8
    assert grid.scale >= 3
    for ax in grid.axes.flat:
        assert ax.get_window_extent().height == pytest.approx(grid.scale * height)
        assert ax.get_images()[0].get_interpolation() == "nearest"
    assert [ax.yaxis.label.get_text() for ax in grid.axes[:, 0]] == [
        "normal",
        "pseudo",
    ]
    # The pseudo row outlines its given masks in green.
    assert all(len(ax.collections) >= 1 for ax in grid.axes[1])
