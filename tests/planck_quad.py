"""Band radiance by adaptive quadrature and root finding, independent of the
table in thermosynth.camera.radiance, for tests to check it against."""

from __future__ import annotations

import numpy as np
from scipy import integrate, optimize

H_J_S = 6.62607015e-34
C_M_S = 2.99792458e8
K_J_K = 1.380649e-23
ZERO_C_IN_K = 273.15


def band_radiance_quad(temperature_K: float, band_um: tuple[float, float]) -> float:
    """Integrate Planck's spectral radiance over the band [W m-2 sr-1]."""

    def spectral(wavelength_m: float) -> float:
        x = H_J_S * C_M_S / (wavelength_m * K_J_K * temperature_K)
        return 2 * H_J_S * C_M_S**2 / wavelength_m**5 / np.expm1(x)

    low, high = band_um
    value, _ = integrate.quad(spectral, low * 1e-6, high * 1e-6, epsabs=0, epsrel=1e-12)
    return value


def temperature_quad(radiance: float, band_um: tuple[float, float]) -> float:
    """Return the temperature [K] whose band radiance is ``radiance``."""
    return optimize.brentq(
        lambda T: band_radiance_quad(T, band_um) - radiance, 100.0, 3000.0, xtol=1e-12
    )


def apparent_rise_quad(
    rise_K: float,
    base_C: float,
    *,
    emissivity_surface: float,
    emissivity_setting: float,
    reflected_C: float,
    band_um: tuple[float, float] = (7.5, 14.0),
) -> float:
    """Solve the emissivity balance in band radiance for one pixel [K].

    ``eps_c L(T_app) + (1 - eps_c) L(T_refl) = eps_s L(T) + (1 - eps_s) L(T_refl)``
    gives the true base from the apparent base, and the apparent temperature
    after the rise from the true one.
    """
    eps_s, eps_c = emissivity_surface, emissivity_setting
    apparent_base_K = base_C + ZERO_C_IN_K
    reflected = band_radiance_quad(reflected_C + ZERO_C_IN_K, band_um)
    apparent = band_radiance_quad(apparent_base_K, band_um)

    true_base = (eps_c * apparent + (eps_s - eps_c) * reflected) / eps_s
    true_base_K = temperature_quad(true_base, band_um)
    true = band_radiance_quad(true_base_K + rise_K, band_um)
    apparent_new = (eps_s * true + (eps_c - eps_s) * reflected) / eps_c
    return temperature_quad(apparent_new, band_um) - apparent_base_K
