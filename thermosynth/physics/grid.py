"""Face conductances of a layout's cell-centred finite-volume grid.

Shared by the explicit stencil and the ADI solver, so that neither imports
the other's dependencies (torch, numba).
"""

from __future__ import annotations

import numpy as np

from thermosynth.geometry.layout import Layout


def face_conductances(
    layout: Layout, shape: tuple[int, ...], spacing_m: tuple[float, float, float]
) -> list[tuple[int, np.ndarray]]:
    """Return (axis, k_face / spacing**2 [W m-3 K-1]) for each conducting axis.

    ``shape`` is (n_layers, ny, nx) and ``spacing_m`` the cell size along the
    same axes [m]. The face conductivity is the harmonic mean of the two
    cells' conductivity along the face normal. An axis with one cell has no
    faces, so it is left out. Along ``axis`` the array has one entry fewer than
    the grid: entry i joins cells i and i + 1.
    """
    keys = ("k_z_W_mK", "k_y_W_mK", "k_x_W_mK")
    faces = []
    for axis in range(3):
        if shape[axis] < 2:
            continue
        k = np.broadcast_to(layout.property_map(keys[axis]), shape)
        first = np.take(k, range(shape[axis] - 1), axis=axis)
        second = np.take(k, range(1, shape[axis]), axis=axis)
        harmonic = 2.0 * first * second / (first + second)
        faces.append((axis, harmonic / spacing_m[axis] ** 2))
    return faces
