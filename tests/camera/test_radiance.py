"""Tests for thermosynth.camera.radiance: band radiance and its inverse."""

from __future__ import annotations

import numpy as np
import pytest
from planck_quad import band_radiance_quad

from thermosynth.camera.radiance import (
    LWIR_BAND_UM,
    band_radiance,
    band_temperature,
    check_band,
    radiance_table,
)
from thermosynth.errors import RecipeError


@pytest.mark.parametrize("band_um", [LWIR_BAND_UM, (8.0, 14.0), (3.0, 5.0)])
def test_band_radiance_matches_quad(band_um):
    # Off-node temperatures too, so the check covers the interpolation.
    temperatures_K = (150.0, 233.71, 298.15, 305.15, 873.15, 1517.3, 16779.0, 1e5)
    for temperature_K in temperatures_K:
        expected = band_radiance_quad(temperature_K, band_um)
        actual = float(band_radiance(temperature_K, band_um))
        assert actual == pytest.approx(expected, rel=1e-6), temperature_K


def test_band_radiance_exponent():
    # d ln L / d ln T over 8-14 um: steeper than T^4 near room temperature,
    # flatter than T^4 for a runaway.
    def exponent(temperature_K: float) -> float:
        ratio = band_radiance(temperature_K * 1.001, (8.0, 14.0)) / band_radiance(
            temperature_K, (8.0, 14.0)
        )
        return float(np.log(ratio) / np.log(1.001))

    assert exponent(300.0) == pytest.approx(4.57, abs=0.01)
    assert exponent(873.0) == pytest.approx(2.05, abs=0.01)


@pytest.mark.parametrize("band_um", [LWIR_BAND_UM, (3.0, 5.0)])
def test_band_temperature_round_trip(band_um):
    rng = np.random.default_rng(7)
    temperature_K = np.concatenate(
        [
            rng.uniform(150.0, 2000.0, 20_000),
            rng.uniform(2000.0, 100_000.0, 5_000),
            radiance_table(*band_um).temperature_K[::97],
        ]
    )

    back = band_temperature(band_radiance(temperature_K, band_um), band_um)
    np.testing.assert_allclose(back, temperature_K, rtol=1e-14, atol=0)


def test_band_radiance_keeps_shape():
    temperature_K = np.full((3, 4), 300.0)

    assert band_radiance(temperature_K).shape == (3, 4)
    assert band_temperature(band_radiance(temperature_K)).shape == (3, 4)
    assert band_radiance(300.0).shape == ()


def test_radiance_table_increasing_and_read_only():
    table = radiance_table(*LWIR_BAND_UM)
    nodes_K, radiance = table.temperature_K, table.radiance

    assert nodes_K[0] == 150.0
    assert nodes_K[-1] == 100_000.0
    assert np.all(np.diff(nodes_K) > 0)
    assert np.all(np.diff(radiance) > 0)
    assert not radiance.flags.writeable
    assert radiance_table(*LWIR_BAND_UM) is table


def test_band_radiance_rejects_out_of_range():
    with pytest.raises(
        ValueError, match=r"temperature 149\.00 K is outside 150\.\.100000 K"
    ):
        band_radiance(np.array([149.0, 300.0]))
    with pytest.raises(ValueError, match=r"temperature 100100\.00 K is outside"):
        band_radiance(100_100.0)
    with pytest.raises(ValueError, match=r"temperature nan K is outside"):
        band_radiance(np.array([np.nan]))
    hottest = float(radiance_table(*LWIR_BAND_UM).radiance[-1])
    with pytest.raises(ValueError, match=r"band radiance .* is outside"):
        band_temperature(2 * hottest)


@pytest.mark.parametrize(
    ("band_um", "reason"),
    [
        ((14.0, 7.5), "first wavelength must be shorter than its second"),
        ((7.5, 7.5), "first wavelength must be shorter than its second"),
        ((0.0, 14.0), r"must lie within 0\.5\.\.100 um"),
        ((7.5, 1000.0), r"must lie within 0\.5\.\.100 um"),
        ((float("nan"), 14.0), "must be finite"),
        ((7.5,), "must contain two wavelengths, not 1"),
        ("lwir", "must be a list of two wavelengths"),
        (("a", 14.0), "must be numbers"),
    ],
)
def test_check_band_rejects(band_um, reason):
    with pytest.raises(
        RecipeError, match=rf"camera\.band_um = .* is invalid: .*{reason}"
    ):
        check_band(band_um, key="camera.band_um")


def test_check_band_returns_floats():
    assert check_band([3, 5], key="band_um") == (3.0, 5.0)


@pytest.mark.parametrize("band_um", [LWIR_BAND_UM, (3.0, 5.0), (0.9, 1.7), (2.0, 20.0)])
def test_table_lookup_matches_numpy_interp(band_um):
    # The constant-time node search must land on the segment that a bisection
    # finds, at the nodes themselves too.
    table = radiance_table(*band_um)
    rng = np.random.default_rng(3)
    temperature_K = np.concatenate(
        [
            rng.uniform(150.0, 2000.0, 50_000),
            rng.uniform(2000.0, 100_000.0, 5_000),
            table.temperature_K,
        ]
    )
    radiance = np.interp(temperature_K, table.temperature_K, table.radiance)

    np.testing.assert_allclose(
        table.radiance_at(temperature_K), radiance, rtol=1e-14, atol=0
    )
    np.testing.assert_allclose(
        table.temperature_at(radiance),
        np.interp(radiance, table.radiance, table.temperature_K),
        rtol=1e-14,
        atol=0,
    )
