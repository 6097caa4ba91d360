"""Tests for thermosynth.camera.optics: emissivity correction and blur."""

from __future__ import annotations

import numpy as np
import pytest
from planck_quad import apparent_rise_quad

from thermosynth.camera.optics import apparent_rise_K, blur
from thermosynth.errors import RecipeError, SimulationError


@pytest.mark.parametrize("band_um", [(7.5, 14.0), (3.0, 5.0)])
def test_apparent_rise_equal_emissivities(band_um):
    rise = np.array([[0.0, 0.5], [3.0, 40.0], [500.0, 800.0]])
    base = np.array([[20.0, 25.0], [-10.0, 60.0], [30.0, 25.0]])
    for eps in (0.3, 0.95, 1.0):
        out = apparent_rise_K(
            rise,
            base,
            emissivity_surface=eps,
            emissivity_setting=eps,
            reflected_C=22.0,
            band_um=band_um,
        )
        np.testing.assert_allclose(out, rise, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("rise_K", "base_C", "eps_s", "eps_c", "reflected_C"),
    [
        (12.0, 32.0, 0.1, 0.95, 25.0),  # bare terminal under a painted setting
        (10.0, 25.0, 0.8, 0.95, 20.0),
        (5.0, 30.0, 0.9, 1.0, 25.0),
        (500.0, 30.0, 0.8, 0.95, 25.0),  # runaway
        (3.0, 30.0, 0.95, 0.6, 25.0),  # surface above the setting
    ],
)
def test_apparent_rise_matches_quad_balance(rise_K, base_C, eps_s, eps_c, reflected_C):
    options = {
        "emissivity_surface": eps_s,
        "emissivity_setting": eps_c,
        "reflected_C": reflected_C,
    }
    expected = apparent_rise_quad(rise_K, base_C, **options)
    out = apparent_rise_K(np.array(rise_K), base_C, **options)

    # The table's 1e-7 relative interpolation error is about 1e-5 K here.
    assert float(out) == pytest.approx(expected, abs=2e-5)


def test_apparent_rise_bare_terminal():
    # A bare terminal (0.1) at 32 C under a camera set to 0.95, reflecting
    # 25 C, heated by 12 K. The balance in total radiance (T^4) gives
    # 2.006 K; in band radiance over 8-14 um it gives 1.842 K.
    options = {
        "emissivity_surface": 0.1,
        "emissivity_setting": 0.95,
        "reflected_C": 25.0,
        "band_um": (8.0, 14.0),
    }
    out = apparent_rise_K(np.array(12.0), 32.0, **options)
    expected = apparent_rise_quad(12.0, 32.0, **options)

    assert float(out) == pytest.approx(expected, abs=2e-5)
    assert float(out) == pytest.approx(1.842, abs=1e-3)


def test_apparent_rise_depends_on_band():
    # Mid-wave radiance grows far faster with T than long-wave radiance, so
    # the hot true surface of a low-emissivity terminal shows more.
    options = {
        "emissivity_surface": 0.1,
        "emissivity_setting": 0.95,
        "reflected_C": 25.0,
    }
    lwir = apparent_rise_K(np.array(12.0), 32.0, **options, band_um=(7.5, 14.0))
    mwir = apparent_rise_K(np.array(12.0), 32.0, **options, band_um=(3.0, 5.0))
    expected = apparent_rise_quad(12.0, 32.0, **options, band_um=(3.0, 5.0))

    assert float(mwir) == pytest.approx(expected, abs=2e-5)
    assert float(mwir) > float(lwir) + 1.0


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


def test_apparent_rise_rejects_too_hot():
    options = {
        "emissivity_surface": 0.9,
        "emissivity_setting": 0.95,
        "reflected_C": 25.0,
    }
    with pytest.raises(
        SimulationError, match=r"true surface temperature above 100000 K \(200303 K\)"
    ):
        apparent_rise_K(np.array([200_000.0]), 30.0, **options)
    with pytest.raises(
        ValueError, match=r"temperature 100\.00 K is outside 150\.\.100000 K"
    ):
        apparent_rise_K(np.array([1.0]), -173.15, **options)
    with pytest.raises(RecipeError, match=r"band_um = \(5\.0, 3\.0\) is invalid"):
        apparent_rise_K(np.array([1.0]), 30.0, **options, band_um=(5.0, 3.0))


def _gaussian_blob(n: int, sigma: float) -> np.ndarray:
    x = np.arange(n) - (n - 1) / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    return np.exp(-r2 / (2 * sigma**2))


def test_blur_conserves_sum():
    field = _gaussian_blob(101, 4.0)
    out = blur(field, sigma_px=3.0)

    assert out.sum() == pytest.approx(field.sum(), rel=1e-6)
    assert out.max() < field.max()


@pytest.mark.parametrize(("shape", "sigma_px"), [((40, 24), 0.6), ((7, 3), 5.0)])
def test_blur_conserves_sum_at_border(shape, sigma_px):
    # The hot row on the border and a kernel wider than the field both send
    # weight past the border, which reflection must bring back.
    field = np.random.default_rng(0).random(shape)
    field[0, :] = 5.0

    out = blur(field, sigma_px=sigma_px)

    assert out.sum() == pytest.approx(field.sum(), rel=1e-12)


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
