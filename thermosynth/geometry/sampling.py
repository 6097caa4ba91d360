"""Sample a layout field over each frame pixel's footprint.

A camera pixel integrates the radiance of its whole footprint. Where a pixel
covers several layout cells, a field sampled at the pixel's centre alone
keeps only the few cells nearest to it. A hot spot narrower than a pixel then
records its full peak or vanishes, depending on where it falls between pixel
centres, and its integrated rise is not preserved. `warp_plane` averages each
pixel over ``k x k`` samples instead, where `samples_per_pixel` sets ``k``
from the number of layout cells per pixel side.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_SAMPLES_PER_PIXEL = 8
"""Largest number of samples per pixel side [1]."""

MAX_SAMPLES_PER_PLANE = 2**22
"""Largest number of samples of one warped plane; bounds its memory (32 MiB
in float64) on large frames."""


def samples_per_pixel(
    homography: np.ndarray,
    grid_shape: tuple[int, int],
    frame_shape: tuple[int, int],
) -> int:
    """Return how many samples per pixel side average a field over each pixel.

    Parameters
    ----------
    homography : ndarray
        (3, 3) map from layout indices to frame pixels.
    grid_shape : (int, int)
        Layout grid size (ny, nx) [cells].
    frame_shape : (int, int)
        Frame size (H, W) [px].

    Returns
    -------
    int
        The largest number of layout cells that one pixel side covers, at
        the layout's corners and centre, rounded up: 1 where a pixel covers
        at most one cell. It is capped by `MAX_SAMPLES_PER_PIXEL` and by
        `MAX_SAMPLES_PER_PLANE`.
    """
    ny, nx = grid_shape
    height, width = frame_shape
    cells = np.array(
        [[-0.5, -0.5], [nx - 0.5, -0.5], [nx - 0.5, ny - 0.5], [-0.5, ny - 0.5]]
        + [[(nx - 1) / 2, (ny - 1) / 2]]
    )
    points = np.c_[cells, np.ones(len(cells))] @ np.asarray(homography, float).T
    inverse = np.linalg.inv(homography)
    largest = 1.0
    for x, y, scale in points:
        if scale <= 0.0:
            continue
        largest = max(largest, _cells_per_pixel(inverse, x / scale, y / scale))

    # NOTE: past the cap a pixel side covers more cells than samples, so a
    # spot narrower than a cell can still fall between the samples.
    cap = math.isqrt(MAX_SAMPLES_PER_PLANE // (height * width))
    # The tolerance keeps an exact 6 cells per pixel, rounded up to
    # 6.000000000001, at 6 samples.
    return max(1, min(math.ceil(largest - 1e-9), MAX_SAMPLES_PER_PIXEL, cap))


def _cells_per_pixel(inverse: np.ndarray, x: float, y: float) -> float:
    """Return the longer side [cells] of the one-pixel step at frame point (x, y)."""
    u, v, w = inverse @ (x, y, 1.0)
    jacobian = (inverse[:2, :2] * w - np.outer((u, v), inverse[2, :2])) / w**2
    return float(np.max(np.hypot(jacobian[0], jacobian[1])))


def warp_plane(
    plane: np.ndarray,
    homography: np.ndarray,
    frame_shape: tuple[int, int],
    samples: int,
) -> np.ndarray:
    """Warp one layout plane to frame pixels, averaged over each pixel.

    Each pixel is the mean of the ``samples x samples`` values that
    `warp_samples`, which takes the same arguments, returns for it. With
    ``samples == 1`` this is one bilinear sample at the pixel's centre.
    Returns an (H, W) array of ``plane``'s dtype.
    """
    height, width = frame_shape
    k = int(samples)
    fine = _warp_fine(plane, homography, frame_shape, k)
    if k == 1:
        return fine
    return (
        fine.reshape(height, k, width, k)
        .mean(axis=(1, 3), dtype=np.float64)
        .astype(plane.dtype)
    )


def warp_samples(
    plane: np.ndarray,
    homography: np.ndarray,
    frame_shape: tuple[int, int],
    samples: int,
) -> np.ndarray:
    """Warp one layout plane to ``samples x samples`` values per frame pixel.

    The values are bilinear samples at the centres of equal sub-pixels, with
    edge values repeated past the layout's boundary. A camera that integrates
    radiance over each pixel needs them separately: radiance is not linear in
    temperature, so the mean of the samples' radiance is not the radiance of
    their mean temperature.

    Parameters
    ----------
    plane : ndarray
        (ny, nx) float32 or float64 field on the layout grid.
    homography : ndarray
        (3, 3) map from layout indices to frame pixels.
    frame_shape : (int, int)
        Frame size (H, W) [px].
    samples : int
        Samples per pixel side, from `samples_per_pixel`.

    Returns
    -------
    ndarray
        (H, W, samples**2), dtype of ``plane``. Their mean over the last axis
        is `warp_plane`'s result, up to rounding.
    """
    height, width = frame_shape
    k = int(samples)
    fine = _warp_fine(plane, homography, frame_shape, k)
    return (
        fine.reshape(height, k, width, k)
        .transpose(0, 2, 1, 3)
        .reshape(height, width, k * k)
    )


def _warp_fine(
    plane: np.ndarray, homography: np.ndarray, frame_shape: tuple[int, int], k: int
) -> np.ndarray:
    """Warp ``plane`` to a grid with ``k x k`` sub-pixels per frame pixel."""
    height, width = frame_shape
    # Frame pixel (x, y) covers sub-pixels k x .. k x + k - 1, whose centres
    # lie at k (x + 0.5) - 0.5.
    to_fine = np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2], [0, 0, 1.0]])
    return cv2.warpPerspective(
        plane,
        to_fine @ np.asarray(homography, dtype=np.float64),
        (width * k, height * k),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
