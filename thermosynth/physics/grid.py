"""Layer thicknesses and face conductances of a layout's finite-volume grid.

Shared by the solvers, so that the explicit stencil and the ADI solver do not
import each other's dependencies (torch, numba).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from thermosynth.geometry.layout import Layout


def layer_dz_m(layout: Layout, n_layers: int) -> np.ndarray:
    """Return the thickness of each simulation layer [m], shape (n_layers,).

    Without a stack every entry is ``thickness_mm * 1e-3 / n_layers``.

    Raises
    ------
    LayoutError
        If the layout has a stack of another number of layers.
    """
    if layout.layers is None:
        return np.full(n_layers, layout.thickness_mm * 1e-3 / n_layers)
    return layout.layer_thickness_mm(n_layers) * 1e-3


def layer_volume_ratio(layout: Layout, n_layers: int) -> np.ndarray:
    """Return each layer's cell volume over the mean layer's, shape (n_layers,).

    The mean layer's cell volume is
    :func:`thermosynth.physics.sources.cell_volume_m3`. Without a stack every
    ratio is exactly 1.
    """
    return layer_dz_m(layout, n_layers) / (layout.thickness_mm * 1e-3 / n_layers)


def face_conductances(
    layout: Layout, shape: tuple[int, ...]
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Return (axis, c_first, c_second) [W m-3 K-1] for each conducting axis.

    ``shape`` is (n_layers, ny, nx). Along ``axis`` each array has one entry
    fewer than the grid, and entry i is the face between cells i and i + 1.
    ``c_first`` is its conductance per unit volume of cell i, ``c_second``
    that of cell i + 1. In-plane, and between layers of equal thickness
    without a stack, both are the harmonic mean of the two cells'
    conductivity along the face normal over the spacing squared. Between
    stacked layers the conductance per area is
    ``1 / (dz_i / (2 k_i) + dz_j / (2 k_j))``, divided by each cell's own
    ``dz``. An axis with one cell has no faces, so it is left out.
    """
    keys = ("k_z_W_mK", "k_y_W_mK", "k_x_W_mK")
    dz_m = layer_dz_m(layout, shape[0])
    spacing_m = (dz_m[0], layout.dy_mm * 1e-3, layout.dx_mm * 1e-3)
    faces = []
    for axis in range(3):
        if shape[axis] < 2:
            continue
        k = layout.layer_property_map(keys[axis], shape[0])
        first = np.take(k, range(shape[axis] - 1), axis=axis)
        second = np.take(k, range(1, shape[axis]), axis=axis)
        if axis == 0 and layout.layers is not None:
            faces.append((axis, *_series_conductances(first, second, dz_m)))
            continue
        harmonic = 2.0 * first * second / (first + second)
        conductance = harmonic / spacing_m[axis] ** 2
        faces.append((axis, conductance, conductance))
    return faces


def _series_conductances(
    k_first: np.ndarray, k_second: np.ndarray, dz_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the z conductance per volume of the upper and lower cell of each face."""
    dz_first = dz_m[:-1, None, None]
    dz_second = dz_m[1:, None, None]
    per_area = 1.0 / (dz_first / (2.0 * k_first) + dz_second / (2.0 * k_second))
    return per_area / dz_first, per_area / dz_second


def conduction_matrix(layout: Layout, shape: tuple[int, ...]) -> sp.csr_matrix:
    """Return K [W m-3 K-1]: ``(K @ T)[i]`` is the heat conducted out of cell i.

    ``shape`` is (n_layers, ny, nx) and cells are numbered in its C order.
    Conductances are those of :func:`face_conductances`, so K is symmetric
    unless stacked layers differ in thickness. Outer faces carry no
    conduction.
    """
    index = np.arange(int(np.prod(shape))).reshape(shape)
    rows, cols, values = [], [], []
    for axis, c_first, c_second in face_conductances(layout, shape):
        i = np.take(index, range(shape[axis] - 1), axis=axis).ravel()
        j = np.take(index, range(1, shape[axis]), axis=axis).ravel()
        first, second = c_first.ravel(), c_second.ravel()
        rows += [i, j, i, j]
        cols += [i, j, j, i]
        values += [first, second, -first, -second]

    n = index.size
    if not values:
        return sp.csr_matrix((n, n))
    matrix = sp.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
    )
    return matrix.tocsr()
