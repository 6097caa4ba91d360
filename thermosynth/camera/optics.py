"""Optics of the thermal camera: emissivity correction and lens blur."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from thermosynth.errors import RecipeError

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


def apparent_rise_K(
    rise_K: np.ndarray,
    base_C: np.ndarray | float,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    reflected_C: float,
) -> np.ndarray:
    """Convert a true surface temperature rise into the rise the camera reports.

    The surface, with emissivity ``eps_s``, emits and reflects total radiance
    ``eps_s T^4 + (1 - eps_s) T_refl^4`` (in units of the Stefan-Boltzmann
    constant). A camera set to emissivity ``eps_c`` reports the apparent
    temperature ``T_app`` that solves
    ``eps_c T_app^4 + (1 - eps_c) T_refl^4 = eps_s T^4 + (1 - eps_s) T_refl^4``.
    The base apparent temperature is inverted through the same relation to
    the true base temperature, the rise is added to that, and the result is
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

    Returns
    -------
    ndarray
        Apparent temperature rise [K], float64, shape of the broadcast inputs.
        It equals ``rise_K`` to rounding when both emissivities are equal.

    Raises
    ------
    RecipeError
        If an emissivity is outside (0, 1], or if the base apparent temperature
        is colder than the reflected radiance alone allows, so that no true
        base temperature exists.
    """
    # NOTE: this uses total (Stefan-Boltzmann) radiance. A real camera
    # integrates Planck's law over its spectral band (about 7.5-14 um for a
    # microbolometer), where radiance grows more slowly than T^4, so the
    # emissivity correction here is an approximation of the camera's own.
    options: dict[str, Any] = {
        "emissivity_surface": emissivity_surface,
        "emissivity_setting": emissivity_setting,
        "reflected_C": reflected_C,
    }
    apparent_base_K, true_base_K = base_temperatures_K(base_C, **options)
    return rise_from_base_K(rise_K, apparent_base_K, true_base_K, **options)


def base_temperatures_K(
    base_C: np.ndarray | float,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    reflected_C: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the apparent and the true base temperature [K] of a frame.

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

    Returns
    -------
    apparent_base_K, true_base_K : ndarray
        float64, shape of ``base_C``.

    Raises
    ------
    RecipeError
        As `apparent_rise_K`.
    """
    check_emissivity(emissivity_surface, key="emissivity_surface")
    check_emissivity(emissivity_setting, key="emissivity_setting")
    eps_s, eps_c = emissivity_surface, emissivity_setting
    reflected4 = (reflected_C + ZERO_C_IN_K) ** 4
    apparent_base_K = np.asarray(base_C, dtype=np.float64) + ZERO_C_IN_K

    true_base4 = (eps_c * apparent_base_K**4 + (eps_s - eps_c) * reflected4) / eps_s
    if np.any(true_base4 <= 0.0):
        raise RecipeError(
            f"reflected_C = {reflected_C} is too hot for the frame's apparent "
            f"temperature (min {float(np.min(base_C)):.2f} C) at emissivity "
            f"{_describe(eps_s)} vs setting {eps_c}; lower the reflected "
            "temperature or check the emissivities"
        )
    return apparent_base_K, true_base4**0.25


def _describe(emissivity: float | np.ndarray) -> str:
    if np.ndim(emissivity) == 0:
        return str(emissivity)
    return f"{np.min(emissivity)}..{np.max(emissivity)} (per pixel)"


def rise_from_base_K(
    rise_K: np.ndarray,
    apparent_base_K: np.ndarray,
    true_base_K: np.ndarray,
    *,
    emissivity_surface: float | np.ndarray,
    emissivity_setting: float,
    reflected_C: float,
) -> np.ndarray:
    """Return the apparent rise [K] for bases from `base_temperatures_K`.

    The arrays, and ``emissivity_surface`` where it is one value per pixel,
    may be any matching slices of the frame: each pixel's result depends on
    that pixel alone, and equals `apparent_rise_K` bit for bit.
    """
    eps_s, eps_c = emissivity_surface, emissivity_setting
    reflected4 = (reflected_C + ZERO_C_IN_K) ** 4
    true_K = true_base_K + np.asarray(rise_K, dtype=np.float64)

    apparent_new4 = (eps_s * true_K**4 + (eps_c - eps_s) * reflected4) / eps_c
    return apparent_new4**0.25 - apparent_base_K


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
    kernel truncated at 4 sigma and normalised), so the integral of a field is
    preserved wherever the field is zero within 4 sigma of the border.

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
