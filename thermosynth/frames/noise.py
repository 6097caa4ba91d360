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

MIN_BACKGROUND_FRACTION = 0.05
"""Smallest share of a frame that `constant_background` counts as a background."""

MIN_BACKGROUND_GAP = 0.05
"""Smallest step from a background up to the lowest value outside it, as a
share of the frame's value range. The 902 normal battery-station renders step
up by 17 % or more. The FLIR pouch-cell exports, whose cold scene is clipped
to the palette's lowest colour, rise from it by 0.04 %, so their black is
scene, not background."""


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
    usable = _usable(values, valid)
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


def constant_background(
    values: np.ndarray, *, min_fraction: float = MIN_BACKGROUND_FRACTION
) -> np.ndarray:
    """Find the constant background that a region of interest leaves around it.

    Renders and exports that blank the pixels outside a camera's region of
    interest give them one value below every value inside, such as the
    palette's lowest colour in the battery-station renders.

    Parameters
    ----------
    values : ndarray
        float (H, W) frame, in the frame's unit.
    min_fraction : float, optional
        Smallest share of the frame's pixels that counts as a background.

    Returns
    -------
    ndarray
        Boolean (H, W), True on the pixels at the frame's minimum that
        connect to the frame's edge through such pixels (8-connected). It is
        all False where those cover less than ``min_fraction`` of the frame,
        or where the lowest value outside them lies less than
        `MIN_BACKGROUND_GAP` of the frame's range above them. It is also all
        False where fewer than 16 pixels outside them have their whole 3 x 3
        neighbourhood outside them.
    """
    values = np.asarray(values, dtype=np.float64)
    none = np.zeros(values.shape, dtype=bool)
    finite = np.isfinite(values)
    if not finite.any():
        return none
    low, high = values[finite].min(), values[finite].max()
    labels, _ = ndimage.label(values == low, structure=np.ones((3, 3), bool))
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    background = np.isin(labels, edge[edge > 0])
    if np.count_nonzero(background) < min_fraction * values.size:
        return none

    outside = values[finite & ~background]
    if not outside.size or outside.min() - low < MIN_BACKGROUND_GAP * (high - low):
        return none
    if np.count_nonzero(_usable(values, ~background)) < _MIN_RESIDUALS:
        return none
    return background


def estimate_frame_noise(
    values: np.ndarray,
    *,
    region: np.ndarray | None = None,
    quantum: float = 0.0,
) -> float:
    """Estimate a frame's noise sigma inside its region of interest.

    Parameters
    ----------
    values : ndarray
        float (H, W) frame, in the frame's unit.
    region : ndarray, optional
        Boolean (H, W) region of interest, such as the one a recipe's
        ``frames.valid_mask`` gives ``thermosynth generate``. Without it,
        every pixel counts except the `constant_background` at the frame's
        minimum, so a frame without such a background gives exactly
        `estimate_noise` over the whole frame.
    quantum : float, optional
        Value step of one stored level, in the frame's unit.

    Returns
    -------
    float
        Noise sigma in the frame's unit.
    """
    if region is None:
        region = ~constant_background(values)
    return estimate_noise(values, region, quantum=quantum)


def _usable(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Return the pixels whose whole 3 x 3 neighbourhood is valid and finite."""
    return ndimage.binary_erosion(valid & np.isfinite(values), np.ones((3, 3), bool))
