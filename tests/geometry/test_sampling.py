"""Tests for thermosynth.geometry.sampling: fields averaged over each pixel."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from thermosynth.geometry.registration import warp_to_frame
from thermosynth.geometry.sampling import (
    MAX_SAMPLES_PER_PIXEL,
    samples_per_pixel,
    warp_plane,
    warp_samples,
)
from thermosynth.recipe import load_recipe
from thermosynth.samples import Generator, _warp_rise

PV_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "pv-module-hotspots.yaml"


def _full_frame(grid_shape, frame_shape) -> np.ndarray:
    """Map the grid's outer corners onto the frame's outer corners."""
    ny, nx = grid_shape
    height, width = frame_shape
    right, bottom = width - 0.5, height - 0.5
    source = np.float32([[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5]])
    target = np.float32([[-0.5, -0.5], [right, -0.5], [right, bottom]])
    affine = cv2.getAffineTransform(source, target)
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def test_hot_cell_keeps_integral_anywhere():
    # 6 x 6 cells per pixel: a single hot cell covers 1/36 of one pixel,
    # wherever it sits in it. A sample at the pixel centre alone reads 1/4
    # (the centre lies on the corner of four cells) or 0.
    grid_shape, frame_shape = (24, 30), (4, 5)
    homography = _full_frame(grid_shape, frame_shape)
    assert samples_per_pixel(homography, grid_shape, frame_shape) == 6

    for row in range(6, 12):
        for col in range(12, 18):
            field = np.zeros(grid_shape)
            field[row, col] = 1.0
            warped = warp_to_frame(field, homography, frame_shape)

            assert warped[1, 2] == pytest.approx(1 / 36, abs=1e-12)
            assert warped.sum() * 36 == pytest.approx(1.0, abs=1e-12)


def test_coarse_grid_samples_pixel_centre():
    # A pixel smaller than a cell takes one bilinear sample, as before.
    homography = _full_frame((30, 40), (60, 80))
    field = np.random.default_rng(2).random((30, 40))
    plain = cv2.warpPerspective(
        field,
        homography,
        (80, 60),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )

    assert samples_per_pixel(homography, (30, 40), (60, 80)) == 1
    assert np.array_equal(warp_plane(field, homography, (60, 80), 1), plain)
    assert np.array_equal(warp_to_frame(field, homography, (60, 80)), plain)


def test_samples_capped():
    homography = _full_frame((400, 400), (4, 4))

    assert samples_per_pixel(homography, (400, 400), (4, 4)) == MAX_SAMPLES_PER_PIXEL
    assert samples_per_pixel(homography, (400, 400), (2000, 2100)) == 1


def test_warp_plane_keeps_float32():
    field = np.ones((24, 30), dtype=np.float32)
    homography = _full_frame(field.shape, (4, 5))

    warped = warp_plane(field, homography, (4, 5), 6)
    assert warped.dtype == np.float32
    assert np.all(warped == 1.0)


@pytest.fixture(scope="module")
def pv_generator(data_dir):
    overrides = [
        "bank.mode=off",
        "frames.select=null",
        f"frames.path={data_dir / 'pv-modules-raptormaps' / 'images'}",
    ]
    return Generator(load_recipe(PV_RECIPE, overrides=overrides))


def test_pv_small_spot_integral_any_position(pv_generator):
    # A real 24 x 40 px module crop shows a 984 x 1624 mm layout on an 8 mm
    # grid: about 41 mm and 5 cells per pixel side. A hot spot of 12 mm
    # sigma moved across a pixel in tenths of a pixel keeps its integral.
    # Its peak pixel still changes with the position, as on a real camera.
    # A sample at each pixel centre alone gives 0.75 to 2.3 times the
    # integral of a 10 mm spot; 6 x 6 bilinear samples stay within 3 %.
    generator = pv_generator
    frame = generator.read_frame(0)
    prepared = generator.prepare(frame)
    ny, nx = generator.layout.shape
    height, width = frame.shape
    cells_per_px = nx / width
    assert samples_per_pixel(prepared.homography, (ny, nx), frame.shape) == 6

    rows, cols = np.mgrid[0:ny, 0:nx].astype(float)
    integrals = []
    for shift in np.linspace(0.0, 1.0, 11):
        col = (10.5 + shift) * cells_per_px - 0.5
        row = 20.5 * ny / height - 0.5
        spot = np.exp(-((cols - col) ** 2 + (rows - row) ** 2) / (2 * 1.5**2))
        rise_px = _warp_rise(20.0 * spot, prepared, frame.shape)
        rise_px = rise_px.mean(axis=-1)
        integrals.append(rise_px.sum() * (nx / width) * (ny / height) / spot.sum())

    np.testing.assert_allclose(integrals, 20.0, rtol=0.03)


def test_warp_samples_mean_is_warp_plane():
    grid_shape, frame_shape = (24, 30), (4, 5)
    homography = _full_frame(grid_shape, frame_shape)
    field = np.random.default_rng(4).random(grid_shape)
    samples = warp_samples(field, homography, frame_shape, 6)

    assert samples.shape == (4, 5, 36)
    np.testing.assert_allclose(
        samples.mean(axis=-1),
        warp_plane(field, homography, frame_shape, 6),
        rtol=0,
        atol=1e-14,
    )


def test_warp_samples_hot_cell_one_sample():
    # One hot cell of a 6 x 6 block sits at one sub-pixel centre of pixel
    # (1, 2) only when the cell's centre is that sub-pixel's centre: here
    # every sub-pixel centre is a cell centre, so one sample holds 1.
    grid_shape, frame_shape = (24, 30), (4, 5)
    homography = _full_frame(grid_shape, frame_shape)
    field = np.zeros(grid_shape)
    field[8, 15] = 1.0
    warped = warp_to_frame(field, homography, frame_shape, keep_samples=True)

    assert warped.shape == (4, 5, 36)
    assert np.count_nonzero(warped) == 1
    assert warped[1, 2].max() == pytest.approx(1.0, abs=1e-12)
