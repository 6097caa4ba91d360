"""Tests of thermosynth.validation.frame_grid: frames drawn at whole multiples."""

import cv2
import pytest
from real_frames import BATTERY_FRAMES, PV_IMAGES, grey_frames

from thermosynth.validation.frame_grid import GAP_PX, LABEL_PT, frame_grid, frame_scale


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((40, 24), 5), ((60, 80), 3), ((100, 100), 2), ((240, 320), 1), ((4, 4), 8)],
)
def test_frame_scale_per_shape(shape, scale):
    assert frame_scale(shape) == scale


@pytest.mark.parametrize(
    ("folder", "pattern", "scale"),
    [(PV_IMAGES, "*.jpg", 5), (BATTERY_FRAMES, "*CAM2_thermal.png", 3)],
)
def test_grid_draws_each_pixel_as_block(data_dir, tmp_path, folder, pattern, scale):
    frames = grey_frames(data_dir, folder, pattern, 4)
    height, width = frames.shape[1:]
    grid = frame_grid(2, 2, (height, width), title="four real frames")
    for i, image in enumerate(frames):
        grid.draw(i // 2, i % 2, image, cmap="gray", vmin=0, vmax=255)
    grid.label_rows(["first", "second"])
    grid.save(tmp_path / "grid.png")

    assert grid.scale == scale
    for ax in grid.axes.flat:
        box = ax.get_window_extent()
        assert box.width == pytest.approx(scale * width, abs=0.5)
        assert box.height == pytest.approx(scale * height, abs=0.5)
        assert ax.get_images()[0].get_interpolation() == "nearest"
    saved = cv2.imread(str(tmp_path / "grid.png"))
    assert saved.shape[1] >= 2 * scale * width + GAP_PX
    assert saved.shape[0] >= 2 * scale * height + GAP_PX


def test_grid_labels_are_legible(data_dir):
    frames = grey_frames(data_dir, BATTERY_FRAMES, "*CAM2_thermal.png", 1)
    grid = frame_grid(1, 2, frames.shape[1:], title="one frame", colorbar=True)
    drawn = grid.draw(0, 0, frames[0], cmap="gray", vmin=0, vmax=255)
    grid.hide_empty(0, 1)
    grid.label_rows(["normal"])
    grid.add_colorbar(drawn, "stored level")

    label = grid.axes[0, 0].yaxis.label
    assert label.get_text() == "normal"
    assert label.get_fontsize() >= 10
    colorbar_axes = grid.figure.axes[-1]
    assert colorbar_axes.yaxis.label.get_fontsize() >= 10
    assert grid.figure.texts[0].get_fontsize() == LABEL_PT
    assert not grid.axes[0, 1].get_frame_on()
