"""Tests for thermosynth.frames.noise."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.frames.noise import (
    constant_background,
    estimate_frame_noise,
    estimate_noise,
)
from thermosynth.frames.readers import read_image, read_mask

BATTERY = "battery-station-inferno"
LUMA = np.array([0.299, 0.587, 0.114])


def _battery_cam1(data_dir):
    """Return a CAM1 render's luminance [level] and the CAM1 region of interest."""
    path = sorted((data_dir / BATTERY / "normal_masked").glob("*CAM1_thermal.png"))[0]
    values = read_image(path).astype(np.float64) @ LUMA
    region = read_mask(data_dir / BATTERY / "camera_masks" / "MASK_CAM1_thermal.png")
    return values, region


@pytest.mark.parametrize("sigma", [0.05, 0.5, 3.0])
def test_noise_recovers_sigma_on_ramp(sigma):
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:200, 0:240].astype(float)
    smooth = 25.0 + 0.05 * cols - 0.03 * rows + 1e-4 * cols**2
    values = smooth + rng.normal(0.0, sigma, smooth.shape)

    estimate = estimate_noise(values, np.ones(values.shape, bool))

    assert estimate == pytest.approx(sigma, rel=0.10)


def test_noise_ignores_invalid_and_edges():
    rng = np.random.default_rng(8)
    values = 20.0 + rng.normal(0.0, 0.2, (150, 150))
    values[:, 75:] += 30.0  # a sharp step
    values[:20, :20] = np.nan
    valid = np.ones(values.shape, bool)
    valid[:20, :20] = False

    assert estimate_noise(values, valid) == pytest.approx(0.2, rel=0.10)


def test_noise_floor_is_quantisation():
    values = np.full((50, 50), 3.0)

    assert estimate_noise(
        values, np.ones((50, 50), bool), quantum=0.01
    ) == pytest.approx(0.01 / np.sqrt(12.0))


def test_noise_too_few_pixels_returns_floor():
    valid = np.zeros((30, 30), bool)
    valid[5:7, 5:7] = True

    assert estimate_noise(np.ones((30, 30)), valid, quantum=1.0) == pytest.approx(
        1.0 / np.sqrt(12.0)
    )


# The render's own structure inside the region (palette steps, edges) adds to
# the added noise, so with 1 level added the estimate comes out 11 % high here.
@pytest.mark.parametrize("sigma", [2.0, 4.0])
def test_battery_background_left_out(data_dir, sigma):
    values, region = _battery_cam1(data_dir)
    rng = np.random.default_rng(11)
    noisy = values + np.where(region, rng.normal(0.0, sigma, values.shape), 0.0)

    estimate = estimate_frame_noise(noisy, quantum=1.0)
    whole_frame = estimate_noise(noisy, np.ones(values.shape, bool), quantum=1.0)

    assert estimate == pytest.approx(sigma, rel=0.10)
    # Counted, the blanked pixels outside the region pull the median down.
    assert whole_frame < 0.5 * sigma


def test_battery_background_is_outside_region(data_dir):
    values, region = _battery_cam1(data_dir)

    background = constant_background(values)

    # The render blanks exactly the pixels outside the camera mask.
    np.testing.assert_array_equal(background, ~region)


def test_given_region_used_as_is(data_dir):
    values, region = _battery_cam1(data_dir)
    rng = np.random.default_rng(12)
    noisy = values + np.where(region, rng.normal(0.0, 2.0, values.shape), 0.0)

    estimate = estimate_frame_noise(noisy, region=region, quantum=1.0)

    assert estimate == estimate_noise(noisy, region, quantum=1.0)
    assert estimate == pytest.approx(2.0, rel=0.10)


@pytest.mark.parametrize(
    "relative",
    [
        "pv-modules-raptormaps/images/0.jpg",
        "pv-modules-raptormaps/images/1.jpg",
        "pouch-cell-flir-screen/id1_cha_1c/1211.png",
    ],
)
def test_no_background_gives_whole_frame(data_dir, relative):
    image = read_image(data_dir / relative).astype(np.float64)
    values = image @ LUMA if image.ndim == 3 else image

    estimate = estimate_frame_noise(values, quantum=1.0)

    assert not constant_background(values).any()
    assert estimate == estimate_noise(values, np.ones(values.shape, bool), quantum=1.0)


def test_background_below_fraction_ignored():
    rng = np.random.default_rng(13)
    values = 50.0 + rng.normal(0.0, 1.0, (40, 40))
    values[:2, :30] = 0.0  # 60 px, under 5 % of 1600

    assert not constant_background(values).any()


def test_background_needs_frame_edge():
    rng = np.random.default_rng(14)
    values = 50.0 + rng.normal(0.0, 1.0, (40, 40))
    values[10:30, 10:30] = 0.0  # a blank hole, away from the edge

    assert not constant_background(values).any()


def test_background_needs_step_up():
    cols = np.mgrid[0:40, 0:40][1].astype(float)
    ramp = 300.0 + np.maximum(cols - 10.0, 0.0)  # flat at 300 K up to column 10
    blanked = np.where(cols <= 10, 250.0, ramp)

    background = constant_background(blanked)

    # The ramp rises 1 K over its 29 K range from the plateau: scene, not blank.
    assert not constant_background(ramp).any()
    assert background[:, :11].all()
    assert not background[:, 11:].any()


def test_all_background_frame_counts_every_pixel():
    values = np.zeros((30, 30))

    assert not constant_background(values).any()
    assert estimate_frame_noise(values, quantum=1.0) == pytest.approx(1 / np.sqrt(12))
