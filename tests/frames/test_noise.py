"""Tests for thermosynth.frames.noise."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.frames.noise import estimate_noise


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
