"""Compiled loops of the Douglas ADI step in :mod:`thermosynth.physics.adi`.

Every array of state has the shape (n_layers, ny, nx, n_scenarios), with the
scenarios on the innermost, contiguous axis. Each loop over them can then run
on the CPU's vector units, and all scenarios of a batch share one pass over
the layout's coefficients. The loops take float64 or float32 state, and
numba compiles one version per type. Coefficients must come in the state's
type, so that the steps do not widen to float64.
NOTE: the float32 versions were timed but their machine code was not checked
for float64 operations that numba's typing may still insert.

``faces`` holds the conductances [W m-3 K-1] of each cell to its six
neighbours, in the order -x, +x, -y, +y, -z, +z, and is 0 where the neighbour
lies outside the grid. ``loss`` holds, per cell, ``(h / dz, sigma emissivity /
dz)`` for the faces that exchange heat with the surroundings, with sigma the
Stefan-Boltzmann constant. ``excess0`` is the initial temperature minus that
of the surroundings ``ambient_K``, so that a cell's excess over ambient is
``excess0 + u``, free of the round-off of a temperature near 300 K.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

STEFAN_BOLTZMANN_W_m2K4 = 5.670374419e-8


@njit(cache=True, inline="always", fastmath={"contract"})
def _loss_W_m3K(h_dz, e_dz, excess_K, ambient_K):
    """Return the loss coefficient g [W m-3 K-1], radiation as a secant."""
    T_K = ambient_K + excess_K
    radiative = (T_K * T_K + ambient_K * ambient_K) * (T_K + ambient_K)
    return h_dz + e_dz * radiative


@njit(cache=True, inline="always", fastmath={"contract"})
def _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i) -> None:
    """Write the loss coefficient of cell (layer, j, i) per scenario into ``g``.

    The cubic is evaluated only where the cell radiates.
    """
    h_dz, e_dz = loss[0, layer, j, i], loss[1, layer, j, i]
    if e_dz == 0.0:
        g[:] = h_dz
        return
    e0 = excess0[layer, j, i]
    for b in range(g.size):
        g[b] = _loss_W_m3K(h_dz, e_dz, e0 + u[layer, j, i, b], ambient_K)


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


@njit(cache=True)
def scatter_sources(
    out: np.ndarray,
    cells: np.ndarray,
    scenarios: np.ndarray,
    slots: np.ndarray,
    weights: np.ndarray,
    powers: np.ndarray,
) -> None:
    """Write the source density [W m-3] of the sourced cells into ``out``.

    Entry e adds ``weights[e] * powers[slots[e], scenarios[e]]`` to flat cell
    ``cells[e]`` of scenario ``scenarios[e]``. Every scenario of a listed cell
    is set, to 0 where it has no source there. Entries are added in their
    order, which must be by slot within a scenario.
    """
    flat = out.reshape((-1, out.shape[-1]))
    for e in range(cells.size):
        flat[cells[e], :] = 0.0
    for e in range(cells.size):
        b = scenarios[e]
        flat[cells[e], b] += weights[e] * powers[slots[e], b]


@njit(parallel=True, cache=True, fastmath={"contract"})
def predict_and_sweep_x(
    u: np.ndarray,
    out: np.ndarray,
    sourced: np.ndarray,
    steady: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    inverse: np.ndarray,
    ratio: np.ndarray,
    loss: np.ndarray,
    excess0: np.ndarray,
    ambient_K,
    rows: int,
) -> None:
    """Write into ``out`` the x stage of one step from the state ``u``.

    Right-hand side: ``D u - (A_y + A_z + G) u + q`` (the explicit predictor
    plus the x correction), then the implicit x lines ``(D + A_x)``. The
    heat density is ``q + steady`` [W m-3], where ``q`` is read from ``out``
    in the cells where ``sourced`` is true (see :func:`scatter_sources`) and
    is 0 elsewhere. One task steps ``rows`` x lines together.
    """
    n_layers, ny, nx, nb = u.shape
    n_groups = (ny + rows - 1) // rows
    for task in prange(n_layers * n_groups):
        layer, first = task // n_groups, (task % n_groups) * rows
        last = min(first + rows, ny)
        g = np.empty(nb, dtype=u.dtype)
        # The rows of a task are independent lines; stepping them together
        # lets the processor overlap their chains of dependent operations.
        for i in range(nx):
            for j in range(first, last):
                _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i)
                _forward_x_cell(
                    u, out, g, sourced, steady, capacity, faces, inverse,
                    excess0, layer, j, i,
                )  # fmt: skip

        for i in range(nx - 2, -1, -1):
            for j in range(first, last):
                r = ratio[layer * ny + j, i]
                for b in range(nb):
                    out[layer, j, i, b] += r * out[layer, j, i + 1, b]


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_x_cell(
    u, out, g, sourced, steady, capacity, faces, inverse, excess0, layer, j, i
) -> None:
    """Eliminate cell (layer, j, i) of its x line, for every scenario."""
    n_layers, ny, nx, nb = u.shape
    below, above = max(layer - 1, 0), min(layer + 1, n_layers - 1)
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
    c_d, c_u = faces[4, layer, j, i], faces[5, layer, j, i]
    d, c_w = capacity[layer, j, i], faces[0, layer, j, i]
    pivot = inverse[layer * ny + j, i]
    base, e0 = steady[layer, j, i], excess0[layer, j, i]
    has_source = sourced[layer, j, i]
    west = max(i - 1, 0)
    for b in range(nb):
        centre = u[layer, j, i, b]
        value = d * centre + base - g[b] * (e0 + centre)
        if has_source:
            value += out[layer, j, i, b]
        value -= c_s * (centre - u[layer, south, i, b])
        value -= c_n * (centre - u[layer, north, i, b])
        value -= c_d * (centre - u[below, j, i, b])
        value -= c_u * (centre - u[above, j, i, b])
        if i > 0:
            value += c_w * out[layer, j, west, b]
        out[layer, j, i, b] = value * pivot


@njit(parallel=True, cache=True, fastmath={"contract"})
def sweep_y(
    u: np.ndarray,
    out: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    loss: np.ndarray,
    excess0: np.ndarray,
    ambient_K,
    lost: np.ndarray,
    block: int,
) -> None:
    """Solve ``(D + A_y + g) y2 = D y1 + (A_y + g) u`` in place in ``out``.

    ``g`` is each scenario's loss coefficient at the old state, so the lines
    are eliminated per scenario. They advance row by row, ``block`` columns
    per task, so that each row is read as one contiguous run. Adds the loss
    that the step books, ``g (excess0 + y2)`` [W m-3], to ``lost``, shape
    (n_layers * nx, nb), one row per y line, so that the sums do not depend
    on ``block``.
    """
    n_layers, ny, nx, nb = u.shape
    n_blocks = (nx + block - 1) // block
    for task in prange(n_layers * n_blocks):
        layer, first = task // n_blocks, (task % n_blocks) * block
        last = min(first + block, nx)
        ratio = np.empty((ny, last - first, nb), dtype=u.dtype)
        g = np.empty(nb, dtype=u.dtype)
        # A literal 1.0 is float64 in numba, and would widen float32 steps.
        one = np.ones(1, dtype=u.dtype)[0]
        for j in range(ny):
            for i in range(first, last):
                _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i)
                _forward_y_cell(
                    u, out, g, capacity, faces, layer, j, i, first, ratio, one
                )

        for j in range(ny - 1, -1, -1):
            for i in range(first, last):
                if j < ny - 1:
                    for b in range(nb):
                        out[layer, j, i, b] += (
                            ratio[j, i - first, b] * out[layer, j + 1, i, b]
                        )
                if loss[0, layer, j, i] == 0.0 and loss[1, layer, j, i] == 0.0:
                    continue
                _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i)
                e0 = excess0[layer, j, i]
                for b in range(nb):
                    lost[layer * nx + i, b] += g[b] * (e0 + out[layer, j, i, b])


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_y_cell(u, out, g, capacity, faces, layer, j, i, first, ratio, one) -> None:
    """Eliminate cell (layer, j, i) of its y line, for every scenario."""
    ny, nb = u.shape[1], u.shape[3]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
    d = capacity[layer, j, i]
    column = i - first
    for b in range(nb):
        centre = u[layer, j, i, b]
        rhs = d * out[layer, j, i, b] + g[b] * centre
        rhs += c_s * (centre - u[layer, south, i, b])
        rhs += c_n * (centre - u[layer, north, i, b])
        diagonal = d + c_s + c_n + g[b]
        if j > 0:
            diagonal -= c_s * ratio[j - 1, column, b]
            rhs += c_s * out[layer, south, i, b]
        inverse = one / diagonal
        ratio[j, column, b] = c_n * inverse
        out[layer, j, i, b] = rhs * inverse


@njit(parallel=True, cache=True, fastmath={"contract"})
def sweep_y_linear(
    u: np.ndarray,
    out: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    h_dz: np.ndarray,
    excess0: np.ndarray,
    inverse: np.ndarray,
    ratio: np.ndarray,
    lost: np.ndarray,
    block: int,
) -> None:
    """Solve the y stage of :func:`sweep_y` where the loss is linear, ``g = h_dz``.

    The y lines then have the same coefficients in every scenario, and
    ``inverse`` and ``ratio`` are their Thomas factors, shape (n_layers, ny,
    nx), computed once per step length.
    """
    n_layers, ny, nx, nb = u.shape
    n_blocks = (nx + block - 1) // block
    for task in prange(n_layers * n_blocks):
        layer, first = task // n_blocks, (task % n_blocks) * block
        last = min(first + block, nx)
        for j in range(ny):
            south, north = max(j - 1, 0), min(j + 1, ny - 1)
            for i in range(first, last):
                c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
                d, h = capacity[layer, j, i], h_dz[layer, j, i]
                pivot = inverse[layer, j, i]
                for b in range(nb):
                    centre = u[layer, j, i, b]
                    rhs = d * out[layer, j, i, b] + h * centre
                    rhs += c_s * (centre - u[layer, south, i, b])
                    rhs += c_n * (centre - u[layer, north, i, b])
                    if j > 0:
                        rhs += c_s * out[layer, south, i, b]
                    out[layer, j, i, b] = rhs * pivot

        for j in range(ny - 1, -1, -1):
            for i in range(first, last):
                if j < ny - 1:
                    r = ratio[layer, j, i]
                    for b in range(nb):
                        out[layer, j, i, b] += r * out[layer, j + 1, i, b]
                h, e0 = h_dz[layer, j, i], excess0[layer, j, i]
                if h != 0.0:
                    for b in range(nb):
                        lost[layer * nx + i, b] += h * (e0 + out[layer, j, i, b])


@njit(parallel=True, cache=True, fastmath={"contract"})
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
        carried = np.empty((n_layers, nb), dtype=u.dtype)
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
                    if layer > 0:
                        rhs += c_d * carried[layer - 1, b]
                    carried[layer, b] = rhs * pivot

            for layer in range(n_layers - 1, -1, -1):
                r = ratio[layer, j, i]
                for b in range(nb):
                    value = carried[layer, b]
                    if layer < n_layers - 1:
                        value += r * u[layer + 1, j, i, b]
                    u[layer, j, i, b] = value


@njit(cache=True)
def copy_scenarios(
    u: np.ndarray, recorded: np.ndarray, index: int, alive: np.ndarray
) -> None:
    """Copy the state of each live scenario b into ``recorded[b, index]``.

    ``recorded`` has the shape (n_scenarios, n_outputs, n_layers, ny, nx).
    Cells go in blocks, so that reads and writes both stay in cache.
    """
    nb = u.shape[-1]
    flat = u.reshape((-1, nb))
    n_cells = flat.shape[0]
    target = recorded.reshape((nb, recorded.shape[1], n_cells))
    for start in range(0, n_cells, 256):
        stop = min(start + 256, n_cells)
        for b in range(nb):
            if alive[b]:
                for cell in range(start, stop):
                    target[b, index, cell] = flat[cell, b]


@njit(cache=True)
def stored_energy(u: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Return ``sum(capacity * u)`` per scenario [J m-3]; times the cell volume, [J].

    Sums blocks of 256 cells first, so round-off grows with the number of
    blocks and not of cells, in an order that does not depend on the batch.
    """
    nb = u.shape[-1]
    flat = u.reshape((-1, nb))
    weights = capacity.ravel()
    total = np.zeros(nb)
    partial = np.empty(nb)
    for start in range(0, flat.shape[0], 256):
        partial[:] = 0.0
        for cell in range(start, min(start + 256, flat.shape[0])):
            for b in range(nb):
                partial[b] += weights[cell] * flat[cell, b]
        total += partial
    return total


@njit(cache=True)
def check_scenarios(u: np.ndarray, initial_K: np.ndarray) -> np.ndarray:
    """Return per scenario 0 if ``initial_K + u`` is fine, 1 if non-finite, 2 if
    it falls below absolute zero [K] somewhere (and is finite everywhere).
    """
    nb = u.shape[-1]
    flat = u.reshape((-1, nb))
    base = initial_K.ravel()
    non_finite = np.zeros(nb, dtype=np.bool_)
    lowest = np.full(nb, np.inf)
    for cell in range(flat.shape[0]):
        for b in range(nb):
            T_K = base[cell] + flat[cell, b]
            if not np.isfinite(T_K):
                non_finite[b] = True
            elif T_K < lowest[b]:
                lowest[b] = T_K
    status = np.zeros(nb, dtype=np.int8)
    for b in range(nb):
        if non_finite[b]:
            status[b] = 1
        elif lowest[b] < 0.0:
            status[b] = 2
    return status
