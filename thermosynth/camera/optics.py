"""Optics of the thermal camera: emissivity correction and lens blur."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from thermosynth.camera.radiance import (
    LWIR_BAND_UM,
    T_MAX_K,
    T_MIN_K,
    band_radiance,
    band_temperature,
    check_band,
    check_temperature,
    radiance_table,
)
from thermosynth.errors import RecipeError, SimulationError

ZERO_C_IN_K = 273.15
# Kernel half-width of the blur in standard deviations (scipy's default).
_TRUNCATE = 4.0


def check_emissivity(value: float | np.ndarray, *, key: str) -> None:
    """Raise RecipeError unless ``value``, or every element of it, lies in (0, 1].

    Parameters
    ----------
    value : float or ndarray
        Emissivity [-], one value or one per pixel.
    key : str
        Recipe key or parameter name shown in the message.
    """
    if np.ndim(value) == 0:
        scalar = float(value)
        if not (math.isfinite(scalar) and 0.0 < scalar <= 1.0):
            raise RecipeError(f"{key} = {value} is invalid; it must lie in (0, 1]")
        return

    values = np.asarray(value, dtype=np.float64)
    bad = values[~(np.isfinite(values) & (values > 0.0) & (values <= 1.0))]
    if bad.size:
        raise RecipeError(
            f"{key} has {bad.size} invalid values, such as {bad[0]}; every "
            "emissivity must lie in (0, 1]"
        )


def check_sigma(value: float, *, key: str) -> None:
    """Raise RecipeError unless the blur sigma ``value`` [px] is finite and >= 0."""
    if not (math.isfinite(value) and value >= 0.0):
        raise RecipeError(
            f"{key} = {value} is invalid; it must be a finite number >= 0 [px]"
        )


class RadianceBase(NamedTuple):
    """Per-pixel state of a frame before the rise, from `radiance_base`.

    Every field is float64 with the shape of the apparent base temperature.
    """

    apparent_K: np.ndarray
    """Apparent base temperature that the camera reports [K]."""
    true_K: np.ndarray
    """True surface temperature that the emissivity balance gives [K]."""
    apparent_radiance: np.ndarray
    """Band radiance of ``apparent_K`` [W m-2 sr-1]."""
    true_radiance: np.ndarray
    """Band radiance of ``true_K`` [W m-2 sr-1]."""


def apparent_rise_K(
    rise_K: np.ndarray,
    base_C: np.ndarray | float,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    reflected_C: float,
    band_um: Sequence[float] = LWIR_BAND_UM,
) -> np.ndarray:
    """Convert a true surface temperature rise into the rise the camera reports.

    The camera measures band radiance: Planck's law integrated over its
    spectral band, ``L(T)`` (`band_radiance`). The surface, with emissivity
    ``eps_s``, emits and reflects ``eps_s L(T) + (1 - eps_s) L(T_refl)``. A
    camera set to emissivity ``eps_c`` reports the apparent temperature
    ``T_app`` that solves
    ``eps_c L(T_app) + (1 - eps_c) L(T_refl) = eps_s L(T) + (1 - eps_s) L(T_refl)``.
    The base apparent temperature is inverted through the same relation to
    the true base temperature (`radiance_base`), the rise is added to that
    (`excess_radiance` returns the radiance it adds), and the result is
    converted back.

    Parameters
    ----------
    rise_K : ndarray
        True surface temperature rise [K], any shape.
    base_C : ndarray or float
        Apparent temperature that the camera reports without the rise [C],
        broadcastable to ``rise_K``.
    emissivity_surface : float or ndarray
        Emissivity of the imaged surface, in (0, 1]: one value, or one per
        pixel, broadcastable to ``rise_K``. Each pixel's result equals the
        result for its own emissivity given as one value.
    emissivity_setting : float
        Emissivity set in the camera, in (0, 1].
    reflected_C : float
        Reflected apparent temperature [C], usually the ambient temperature.
    band_um : sequence of two floats
        Spectral band of the camera [um]; default 7.5-14 um, an uncooled
        microbolometer.

    Returns
    -------
    ndarray
        Apparent temperature rise [K], float64, shape of the broadcast inputs.
        It equals ``rise_K`` to rounding when both emissivities are equal.

    Raises
    ------
    RecipeError
        If an emissivity or the band is invalid, or if no true base
        temperature within ``T_MIN_K..T_MAX_K`` balances the base apparent
        temperature.
    SimulationError
        If the rise takes the true or the apparent temperature above
        ``T_MAX_K``.
    ValueError
        If the base or reflected temperature lies outside
        ``T_MIN_K..T_MAX_K``.
    """
    base = radiance_base(
        base_C,
        emissivity_surface=emissivity_surface,
        emissivity_setting=emissivity_setting,
        reflected_C=reflected_C,
        band_um=band_um,
    )
    excess = excess_radiance(
        rise_K,
        base.true_K,
        base.true_radiance,
        emissivity_surface=emissivity_surface,
        emissivity_setting=emissivity_setting,
        band_um=band_um,
    )
    apparent = radiance_temperature_K(base.apparent_radiance + excess, band_um=band_um)
    return apparent - base.apparent_K


def radiance_base(
    base_C: np.ndarray | float,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    reflected_C: float,
    band_um: Sequence[float] = LWIR_BAND_UM,
) -> RadianceBase:
    """Solve the emissivity balance of a frame before the rise, per pixel.

    This is the part of `apparent_rise_K` that does not depend on the rise,
    so a caller that records many rises on one frame computes it once.

    Parameters
    ----------
    base_C : ndarray or float
        Apparent temperature that the camera reports without the rise [C].
    emissivity_surface : float or ndarray
        Emissivity of the surface, in (0, 1], one value or one per pixel of
        ``base_C``.
    emissivity_setting : float
        Emissivity of the camera setting, in (0, 1].
    reflected_C : float
        Reflected apparent temperature [C].
    band_um : sequence of two floats
        Spectral band of the camera [um].

    Returns
    -------
    RadianceBase
        Shape of ``base_C``.

    Raises
    ------
    RecipeError, ValueError
        As `apparent_rise_K`.
    """
    check_emissivity(emissivity_surface, key="emissivity_surface")
    check_emissivity(emissivity_setting, key="emissivity_setting")
    band = check_band(band_um, key="band_um")
    table = radiance_table(*band)
    eps_s, eps_c = emissivity_surface, emissivity_setting
    reflected = band_radiance(reflected_C + ZERO_C_IN_K, band)
    apparent_K = np.asarray(base_C, dtype=np.float64) + ZERO_C_IN_K
    apparent = band_radiance(apparent_K, band)

    true = (eps_c * apparent + (eps_s - eps_c) * reflected) / eps_s
    if np.any(true < table.radiance[0]):
        raise RecipeError(
            f"reflected_C = {reflected_C} is too hot for the frame's apparent "
            f"temperature (min {float(np.min(base_C)):.2f} C) at emissivity "
            f"{_describe(eps_s)} vs setting {eps_c}: the true surface would be "
            f"colder than {T_MIN_K:g} K; lower the reflected temperature or check "
            "the emissivities"
        )
    if np.any(true > table.radiance[-1]):
        raise RecipeError(
            f"the frame's apparent temperature (max {float(np.max(base_C)):.2f} C) "
            f"at emissivity {_describe(eps_s)} vs setting {eps_c} and reflected_C "
            f"= {reflected_C} means a true surface hotter than {T_MAX_K:g} K; "
            "check the emissivities"
        )
    true_K = table.temperature_at(true)
    # The table's own radiance of true_K, so that a zero rise adds exactly 0.
    return RadianceBase(apparent_K, true_K, apparent, table.radiance_at(true_K))


def _describe(emissivity: float | np.ndarray) -> str:
    if np.ndim(emissivity) == 0:
        return str(emissivity)
    return f"{np.min(emissivity)}..{np.max(emissivity)} (per pixel)"


def excess_radiance(
    rise_K: np.ndarray,
    true_K: np.ndarray,
    true_radiance: np.ndarray,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    band_um: Sequence[float] = LWIR_BAND_UM,
) -> np.ndarray:
    """Return the band radiance [W m-2 sr-1] that a rise adds to the apparent one.

    Subtracting the balance before the rise from the balance after it leaves
    ``eps_c dL_app = eps_s (L(T + rise) - L(T))``: the reflected term cancels.
    ``true_K`` and ``true_radiance`` come from `radiance_base`, or any matching
    slices of them, as does ``emissivity_surface`` where it is one value per
    pixel. Each pixel's result depends on that pixel alone, and is exactly 0
    where the rise is 0.

    Raises
    ------
    SimulationError
        If the rise takes the true surface temperature above ``T_MAX_K``.
    ValueError
        If it takes it below ``T_MIN_K``.
    """
    table = radiance_table(*check_band(band_um, key="band_um"))
    hot_K = true_K + np.asarray(rise_K, dtype=np.float64)
    if hot_K.size:
        hottest = float(np.max(hot_K))
        if hottest > T_MAX_K:
            raise SimulationError(_too_hot("true surface temperature", hottest))
        if not float(np.min(hot_K)) >= T_MIN_K:
            check_temperature(hot_K)

    excess = table.radiance_at(hot_K) - true_radiance
    return excess * (emissivity_surface / emissivity_setting)


def radiance_temperature_K(
    radiance: np.ndarray, *, band_um: Sequence[float] = LWIR_BAND_UM
) -> np.ndarray:
    """Return the apparent temperature [K] of band ``radiance`` [W m-2 sr-1].

    As `band_temperature`, but a radiance above the table's raises
    SimulationError, as only a rise can put it there.
    """
    table = radiance_table(*check_band(band_um, key="band_um"))
    if np.size(radiance) and float(np.max(radiance)) > table.radiance[-1]:
        raise SimulationError(_too_hot("apparent temperature", None))
    return band_temperature(radiance, table.band_um)


def _too_hot(quantity: str, value_K: float | None) -> str:
    detail = "" if value_K is None else f" ({value_K:.0f} K)"
    return (
        f"the rise takes the {quantity} above {T_MAX_K:g} K{detail}, the top of "
        "the camera model's radiance table; check the scenario's power and "
        "duration"
    )


def blur_radius_px(sigma_px: float) -> int:
    """Return the radius [px] of `blur`'s kernel: 4 sigma, rounded.

    An output pixel of `blur` depends only on inputs within this many rows and
    columns of it, as scipy.ndimage truncates the kernel (scipy 1.x).
    """
    check_sigma(sigma_px, key="sigma_px")
    return int(_TRUNCATE * sigma_px + 0.5)


def blur(field: np.ndarray, *, sigma_px: float) -> np.ndarray:
    """Blur a field with the camera's Gaussian point spread function.

    Borders are reflected (``scipy.ndimage.gaussian_filter``, mode "reflect",
    kernel truncated at 4 sigma and normalised), so the integral of any field
    is preserved to round-off, also where it reaches the border: what the
    kernel spreads past a border is reflected back in.

    Parameters
    ----------
    field : ndarray
        Field to blur, (H, W), in any unit.
    sigma_px : float
        Standard deviation of the point spread function [px]. 0 returns a
        float64 copy of ``field``.

    Returns
    -------
    ndarray
        Blurred field, float64 (H, W).
    """
    check_sigma(sigma_px, key="sigma_px")
    field64 = np.asarray(field, dtype=np.float64)
    if sigma_px == 0.0:
        return field64.copy()
    return ndimage.gaussian_filter(
        field64, sigma=sigma_px, mode="reflect", truncate=_TRUNCATE
    )
