"""Read a palette from a colour bar drawn in a pseudo-colour frame."""

from __future__ import annotations

import numpy as np

from thermosynth.errors import FrameError


def read_colorbar(
    rgb: np.ndarray, *, x_px: tuple[int, int], y_px: tuple[int, int]
) -> np.ndarray:
    """Read the colours of a vertical colour bar, from bottom to top.

    Parameters
    ----------
    rgb : ndarray
        uint8 (H, W, 3) RGB frame that shows the bar.
    x_px, y_px : tuple of int
        First and last column and row of the bar [px], both inclusive. Rows
        grow downwards, so ``y_px[1]`` is the bottom of the bar.

    Returns
    -------
    ndarray
        uint8 (N, 3) RGB lookup table. Entry 0 is the bottom of the bar (the
        lowest value) and entry N-1 the top. Each row's colour is the median
        over the columns, which removes compression noise and thin marks, and
        consecutive rows of equal colour are merged into one entry.

    Raises
    ------
    FrameError
        If the bar lies outside the frame or yields fewer than two colours.
    """
    _check_bar_box(rgb, x_px, y_px)

    bar = rgb[y_px[0] : y_px[1] + 1, x_px[0] : x_px[1] + 1].astype(np.float64)
    rows = np.rint(np.median(bar, axis=1)).astype(np.uint8)[::-1]
    changed = np.any(rows[1:] != rows[:-1], axis=1)
    lut = rows[np.concatenate([[True], changed])]

    if lut.shape[0] < 2:
        raise FrameError(
            f"colour bar at x {x_px}, y {y_px} contains one colour only; "
            "check the bar's position in the frame"
        )
    return lut


def _check_bar_box(
    rgb: np.ndarray, x_px: tuple[int, int], y_px: tuple[int, int]
) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise FrameError(f"a colour bar needs an (H, W, 3) RGB frame, got {rgb.shape}")

    height, width = rgb.shape[:2]
    x0, x1 = x_px
    y0, y1 = y_px
    if not (0 <= x0 <= x1 < width and 0 <= y0 < y1 < height):
        raise FrameError(
            f"colour bar x {x_px}, y {y_px} [px] does not fit a {height} x {width} "
            "px (height x width) frame; give first <= last column and first < "
            "last row inside the frame"
        )
