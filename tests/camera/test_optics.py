"""Tests for thermosynth.camera.optics: emissivity correction and blur."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.camera.optics import apparent_rise_K, blur
from thermosynth.errors import RecipeError


def test_apparent_rise_equal_emissivities():
    rise = np.array([[0.0, 0.5], [3.0, 40.0]])
    base = np.array([[20.0, 25.0], [-10.0, 60.0]])
    for eps in (0.3, 0.95, 1.0):
        out = apparent_rise_K(
            rise, base, emissivity_surface=eps, emissivity_setting=eps, reflected_C=22.0
        )
        np.testing.assert_allclose(out, rise, rtol=0, atol=1e-10)


def test_apparent_rise_low_surface_emissivity():
    # Hand computation with T_refl = 293.15 K and apparent base 298.15 K:
    # true base T = ((0.95 * 298.15^4 - 0.15 * 293.15^4) / 0.8)^(1/4)
    #             = 299.0600 K; add 10 K -> 309.0600 K;
    # apparent    = ((0.8 * 309.0600^4 + 0.15 * 293.15^4) / 0.95)^(1/4)
    #             = 306.7086 K, a rise of 8.5586 K.
    out = apparent_rise_K(
        np.array(10.0),
        25.0,
        emissivity_surface=0.8,
        emissivity_setting=0.95,
        reflected_C=20.0,
    )
    assert float(out) == pytest.approx(8.5586, abs=1e-4)
    assert float(out) < 10.0


def test_apparent_rise_zero_rise():
    out = apparent_rise_K(
        np.zeros(3),
        np.array([15.0, 30.0, 80.0]),
        emissivity_surface=0.6,
        emissivity_setting=0.95,
        reflected_C=25.0,
    )
    np.testing.assert_allclose(out, 0.0, atol=1e-10)


def test_apparent_rise_rejects_bad_input():
    with pytest.raises(RecipeError, match=r"emissivity_surface = 1\.3 is invalid"):
        apparent_rise_K(
            np.zeros(1),
            20.0,
            emissivity_surface=1.3,
            emissivity_setting=0.95,
            reflected_C=20.0,
        )
    with pytest.raises(RecipeError, match=r"emissivity_setting = 0\.0 is invalid"):
        apparent_rise_K(
            np.zeros(1),
            20.0,
            emissivity_surface=0.9,
            emissivity_setting=0.0,
            reflected_C=20.0,
        )
    with pytest.raises(RecipeError, match="reflected_C = 500.0 is too hot"):
        apparent_rise_K(
            np.zeros(1),
            20.0,
            emissivity_surface=0.1,
            emissivity_setting=0.95,
            reflected_C=500.0,
        )


def _gaussian_blob(n: int, sigma: float) -> np.ndarray:
    x = np.arange(n) - (n - 1) / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    return np.exp(-r2 / (2 * sigma**2))


def test_blur_conserves_sum():
    field = _gaussian_blob(101, 4.0)
    out = blur(field, sigma_px=3.0)

    assert out.sum() == pytest.approx(field.sum(), rel=1e-6)
    assert out.max() < field.max()


def test_blur_widens_gaussian():
    # A Gaussian of width s blurred by width b is a Gaussian of variance
    # s^2 + b^2, so a 2-D peak drops by s^2 / (s^2 + b^2).
    s, b = 5.0, 3.0
    out = blur(_gaussian_blob(101, s), sigma_px=b)

    assert out[50, 50] == pytest.approx(s**2 / (s**2 + b**2), rel=1e-3)


def test_blur_zero_sigma_identity():
    field = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = blur(field, sigma_px=0.0)

    assert np.array_equal(out, field)
    assert out.dtype == np.float64


def test_blur_rejects_negative_sigma():
    with pytest.raises(RecipeError, match=r"sigma_px = -1\.0 is invalid"):
        blur(np.zeros((2, 2)), sigma_px=-1.0)
