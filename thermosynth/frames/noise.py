"""Estimate the noise level of a frame."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

# Separable second-difference kernel: the outer product of [1, -2, 1] with
# itself. It cancels any sum g(x) + h(y), so plane and ramp gradients leave no
# residual, and white noise of sigma gives a residual of sigma * sqrt(36).
_KERNEL = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0])
_KERNEL_NORM = 6.0

# Median absolute deviation of a Gaussian, in units of its sigma.
_MAD_TO_SIGMA = 1.482602218505602

_MIN_RESIDUALS = 16


def estimate_noise(
    values: np.ndarray, valid: np.ndarray, *, quantum: float = 0.0
) -> float:
    """Estimate the standard deviation of a frame's pixel noise.

    Parameters
    ----------
    values : ndarray
        float (H, W) decoded frame, in the frame's unit.
    valid : ndarray
        Boolean (H, W); only 3 x 3 neighbourhoods that are entirely valid count.
    quantum : float, optional
        Value step of one stored level, in the frame's unit. The result is
        never below the quantisation noise ``quantum / sqrt(12)``.

    Returns
    -------
    float
        Noise sigma in the frame's unit.

    Notes
    -----
    The frame is filtered with the 3 x 3 kernel ``[1, -2, 1]^T [1, -2, 1]``,
    which removes smooth content (any sum of a function of x and a function of
    y) and keeps pixel noise. The median absolute deviation of that residual,
    scaled by 1.4826 for a Gaussian and by 1/6 for the kernel's gain, is
    the estimate. The median ignores edges and small hot spots, which affect
    only a minority of the residuals. Noise that is correlated between
    neighbouring pixels (optics blur, demosaicing, JPEG) is underestimated.
    """
    floor = quantum / np.sqrt(12.0)
    values = np.asarray(values, dtype=np.float64)
    usable = ndimage.binary_erosion(valid & np.isfinite(values), np.ones((3, 3), bool))
    if np.count_nonzero(usable) < _MIN_RESIDUALS:
        logger.warning(
            "only %d pixels have a fully valid 3 x 3 neighbourhood; noise sigma "
            "set to the quantisation floor %.4g",
            np.count_nonzero(usable),
            floor,
        )
        return float(floor)

    filled = np.where(np.isfinite(values), values, 0.0)
    residual = ndimage.correlate(filled, _KERNEL, mode="nearest")[usable]
    mad = np.median(np.abs(residual - np.median(residual)))
    sigma = _MAD_TO_SIGMA * mad / _KERNEL_NORM
    return float(max(sigma, floor))
