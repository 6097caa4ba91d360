"""Compiled loops of the Douglas ADI step in :mod:`thermosynth.physics.adi`.

Every array of state has the shape (n_layers, ny, nx, n_scenarios), with the
scenarios on the innermost, contiguous axis. Each loop over them can then run
on the CPU's vector units, and all scenarios of a batch share one pass over
the layout's coefficients.

``faces`` holds the conductances [W m-3 K-1] of each cell to its six
neighbours, in the order -x, +x, -y, +y, -z, +z, and is 0 where the neighbour
lies outside the grid. ``loss`` holds, per cell, ``(h / dz, emissivity / dz)``
for the faces that exchange heat with the surroundings, and ``ambient_K`` the
temperature of those surroundings.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

STEFAN_BOLTZMANN_W_m2K4 = 5.670374419e-8

# x lines stepped together by one task of predict_and_sweep_x.
ROWS_PER_TASK = 8


@njit(cache=True, inline="always")
def _loss_W_m3K(h_dz: float, e_dz: float, T_K: float, ambient_K: float) -> float:
    """Return the loss coefficient g [W m-3 K-1], radiation as a secant."""
    radiative = (T_K * T_K + ambient_K * ambient_K) * (T_K + ambient_K)
    return h_dz + e_dz * STEFAN_BOLTZMANN_W_m2K4 * radiative


@njit(cache=True)
def thomas_factors(
    diagonal: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (1 / pivot, upper / pivot) of tridiagonal lines along the last axis.

    Line k solves ``-lower[k, i] x[i-1] + diagonal[k, i] x[i] - upper[k, i]
    x[i+1] = d[i]``, with the coupling coefficients given as positive values.
    """
    n_lines, n = diagonal.shape
    inverse = np.empty_like(diagonal)
    ratio = np.empty_like(diagonal)
    for k in range(n_lines):
        previous = 0.0
        for i in range(n):
            inverse[k, i] = 1.0 / (diagonal[k, i] - lower[k, i] * previous)
            previous = upper[k, i] * inverse[k, i]
            ratio[k, i] = previous
    return inverse, ratio


@njit(parallel=True, cache=True)
def predict_and_sweep_x(
    u: np.ndarray,
    out: np.ndarray,
    weights: np.ndarray,
    powers: np.ndarray,
    steady: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    inverse: np.ndarray,
    ratio: np.ndarray,
    loss: np.ndarray,
    initial_K: np.ndarray,
    ambient_K: float,
) -> None:
    """Write into ``out`` the x stage of one step from the state ``u``.

    Right-hand side: ``D u - (A_y + A_z + G) u + q`` (the explicit predictor
    plus the x correction), then the implicit x lines ``(D + A_x)``. The
    heat density is ``q = sum_k weights[k] * powers[k] + steady`` [W m-3].
    """
    n_layers, ny, nx, nb = u.shape
    n_groups = (ny + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for task in prange(n_layers * n_groups):
        layer, first = task // n_groups, (task % n_groups) * ROWS_PER_TASK
        last = min(first + ROWS_PER_TASK, ny)
        rhs = np.empty(nb)
        # The rows of a task are independent lines; stepping them together
        # lets the processor overlap their chains of dependent operations.
        for i in range(nx):
            for j in range(first, last):
                _source_row(weights, powers, layer, j, i, rhs)
                _forward_x_cell(
                    u,
                    out,
                    rhs,
                    steady,
                    capacity,
                    faces,
                    inverse,
                    loss,
                    initial_K,
                    ambient_K,
                    layer,
                    j,
                    i,
                )

        for i in range(nx - 2, -1, -1):
            for j in range(first, last):
                r = ratio[layer * ny + j, i]
                for b in range(nb):
                    out[layer, j, i, b] += r * out[layer, j, i + 1, b]


@njit(cache=True, inline="always")
def _forward_x_cell(
    u,
    out,
    rhs,
    steady,
    capacity,
    faces,
    inverse,
    loss,
    initial_K,
    ambient_K,
    layer,
    j,
    i,
) -> None:
    """Eliminate cell (layer, j, i) of its x line, for every scenario."""
    n_layers, ny, nx, nb = u.shape
    below, above = max(layer - 1, 0), min(layer + 1, n_layers - 1)
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
    c_d, c_u = faces[4, layer, j, i], faces[5, layer, j, i]
    h_dz, e_dz = loss[0, layer, j, i], loss[1, layer, j, i]
    d, c_w = capacity[layer, j, i], faces[0, layer, j, i]
    pivot = inverse[layer * ny + j, i]
    base, T0_K = steady[layer, j, i], initial_K[layer, j, i]
    west = max(i - 1, 0)
    for b in range(nb):
        centre = u[layer, j, i, b]
        T_K = T0_K + centre
        g = _loss_W_m3K(h_dz, e_dz, T_K, ambient_K)
        value = rhs[b] + d * centre + base - g * (T_K - ambient_K)
        value -= c_s * (centre - u[layer, south, i, b])
        value -= c_n * (centre - u[layer, north, i, b])
        value -= c_d * (centre - u[below, j, i, b])
        value -= c_u * (centre - u[above, j, i, b])
        carried = out[layer, j, west, b] if i > 0 else 0.0
        out[layer, j, i, b] = (value + c_w * carried) * pivot


@njit(cache=True, inline="always")
def _source_row(weights, powers, layer, j, i, rhs) -> None:
    """Write the source density of one cell for every scenario into ``rhs``."""
    nb = rhs.size
    for b in range(nb):
        rhs[b] = weights[0, layer, j, i, b] * powers[0, b]
    for k in range(1, weights.shape[0]):
        for b in range(nb):
            rhs[b] += weights[k, layer, j, i, b] * powers[k, b]


@njit(parallel=True, cache=True)
def sweep_y(
    u: np.ndarray,
    out: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    loss: np.ndarray,
    initial_K: np.ndarray,
    ambient_K: float,
    lost: np.ndarray,
    block: int,
) -> None:
    """Solve ``(D + A_y + g) y2 = D y1 + (A_y + g) u`` in place in ``out``.

    ``g`` is each scenario's loss coefficient at the old state, so the lines
    are eliminated per scenario. They advance row by row, ``block`` columns
    per task, so that each row is read as one contiguous run. Adds the loss
    that the step books, ``g (T0 + y2 - T_a)`` [W m-3], to ``lost`` (n_tasks, nb).
    """
    n_layers, ny, nx, nb = u.shape
    n_blocks = (nx + block - 1) // block
    for task in prange(n_layers * n_blocks):
        layer, first = task // n_blocks, (task % n_blocks) * block
        last = min(first + block, nx)
        ratio = np.empty((ny, last - first, nb))
        for j in range(ny):
            _forward_y_row(
                u,
                out,
                capacity,
                faces,
                loss,
                initial_K,
                ambient_K,
                layer,
                j,
                first,
                last,
                ratio,
            )

        for j in range(ny - 1, -1, -1):
            for i in range(first, last):
                T0_K, h_dz, e_dz = (
                    initial_K[layer, j, i],
                    loss[0, layer, j, i],
                    loss[1, layer, j, i],
                )
                for b in range(nb):
                    if j < ny - 1:
                        out[layer, j, i, b] += (
                            ratio[j, i - first, b] * out[layer, j + 1, i, b]
                        )
                    g = _loss_W_m3K(h_dz, e_dz, T0_K + u[layer, j, i, b], ambient_K)
                    lost[task, b] += g * (T0_K + out[layer, j, i, b] - ambient_K)


@njit(cache=True, inline="always")
def _forward_y_row(
    u, out, capacity, faces, loss, initial_K, ambient_K, layer, j, first, last, ratio
) -> None:
    """Eliminate row ``j`` of the y lines of columns ``first:last``."""
    ny, nb = u.shape[1], u.shape[3]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    for i in range(first, last):
        c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
        d, T0_K = capacity[layer, j, i], initial_K[layer, j, i]
        h_dz, e_dz = loss[0, layer, j, i], loss[1, layer, j, i]
        column = i - first
        for b in range(nb):
            centre = u[layer, j, i, b]
            g = _loss_W_m3K(h_dz, e_dz, T0_K + centre, ambient_K)
            rhs = d * out[layer, j, i, b] + g * centre
            rhs += c_s * (centre - u[layer, south, i, b])
            rhs += c_n * (centre - u[layer, north, i, b])
            diagonal = d + c_s + c_n + g
            if j > 0:
                diagonal -= c_s * ratio[j - 1, column, b]
                rhs += c_s * out[layer, south, i, b]
            inverse = 1.0 / diagonal
            ratio[j, column, b] = c_n * inverse
            out[layer, j, i, b] = rhs * inverse


@njit(parallel=True, cache=True)
def sweep_z(
    u: np.ndarray,
    stage: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    inverse: np.ndarray,
    ratio: np.ndarray,
) -> None:
    """Solve ``(D + A_z) u_new = D y2 + A_z u`` along z and write ``u``.

    ``inverse`` and ``ratio`` are the Thomas factors of the z lines, shape
    (n_layers, ny, nx).
    """
    n_layers, ny, nx, nb = u.shape
    for j in prange(ny):
        carried = np.empty((n_layers, nb))
        for i in range(nx):
            for layer in range(n_layers):
                below, above = max(layer - 1, 0), min(layer + 1, n_layers - 1)
                c_d, c_u = faces[4, layer, j, i], faces[5, layer, j, i]
                d, pivot = capacity[layer, j, i], inverse[layer, j, i]
                for b in range(nb):
                    centre = u[layer, j, i, b]
                    rhs = d * stage[layer, j, i, b]
                    rhs += c_d * (centre - u[below, j, i, b])
                    rhs += c_u * (centre - u[above, j, i, b])
                    previous = carried[layer - 1, b] if layer > 0 else 0.0
                    carried[layer, b] = (rhs + c_d * previous) * pivot

            for layer in range(n_layers - 1, -1, -1):
                r = ratio[layer, j, i]
                for b in range(nb):
                    value = carried[layer, b]
                    if layer < n_layers - 1:
                        value += r * u[layer + 1, j, i, b]
                    u[layer, j, i, b] = value
