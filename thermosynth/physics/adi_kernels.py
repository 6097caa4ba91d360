"""Compiled loops of the Douglas ADI step in :mod:`thermosynth.physics.adi`.

Every array of state has the shape (n_layers, ny, nx, n_scenarios), with the
scenarios on the innermost, contiguous axis. Each loop over them can then run
on the CPU's vector units, and all scenarios of a batch share one pass over
the layout's coefficients. The loops take float64 or float32 state, and
numba compiles one version per type. Coefficients must come in the state's
type, so that the steps do not widen to float64. With numba 0.68 on an
AVX-512 CPU, the float32 loops compile to packed single-precision zmm
operations; only the energy books (``lost``) add in float64.

``faces`` holds the conductances [W m-3 K-1] of each cell to its six
neighbours, in the order -x, +x, -y, +y, -z, +z, and is 0 where the neighbour
lies outside the grid. ``loss`` holds, per cell, ``(h / dz, sigma emissivity /
dz)`` for the faces that exchange heat with the surroundings, with sigma the
Stefan-Boltzmann constant. ``excess0`` is the initial temperature minus that
of the surroundings ``ambient_K``, so that a cell's excess over ambient is
``excess0 + u``, free of the round-off of a temperature near 300 K.

``step_xy`` and ``sweep_z`` take ``flush``: where it is true and the CPU is
x86-64 (``CAN_FLUSH_SUBNORMALS``), each task sets the FTZ and DAZ bits of
its thread's MXCSR register while it runs, so that subnormal results become
0 and subnormal inputs count as 0. Arithmetic on subnormal numbers is
several times slower, and short float32 steps leave many of them. Each task
restores the register before it returns.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

STEFAN_BOLTZMANN_W_m2K4 = 5.670374419e-8

# MXCSR, the SSE control and status register, exists on x86 only. Its bit
# 15 (FTZ, flush to zero) turns subnormal results into 0, and its bit 6
# (DAZ, denormals are zero) reads subnormal inputs as 0.
CAN_FLUSH_SUBNORMALS = platform.machine().lower() in {"x86_64", "amd64"}
_FTZ_DAZ = np.uint32(0x8040)


def _call_mxcsr(builder, name: str, slot) -> None:
    """Emit a call of the LLVM intrinsic ``name`` on the 32-bit ``slot``."""
    byte_pointer = ir.IntType(8).as_pointer()
    function_type = ir.FunctionType(ir.VoidType(), [byte_pointer])
    function = cgutils.get_or_insert_function(builder.module, function_type, name)
    builder.call(function, [builder.bitcast(slot, byte_pointer)])


@intrinsic
def _read_mxcsr(typingctx):
    """Return the thread's MXCSR register, or 0 unless ``CAN_FLUSH_SUBNORMALS``."""

    def codegen(context, builder, signature, args):
        if not CAN_FLUSH_SUBNORMALS:
            return ir.Constant(ir.IntType(32), 0)
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _call_mxcsr(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, value):
    """Set the thread's MXCSR register; do nothing unless ``CAN_FLUSH_SUBNORMALS``."""

    def codegen(context, builder, signature, args):
        if CAN_FLUSH_SUBNORMALS:
            slot = cgutils.alloca_once_value(builder, args[0])
            _call_mxcsr(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


@njit(cache=True, inline="always")
def _start_flushing(flush):
    """Set FTZ and DAZ where ``flush``; return the register to restore after."""
    saved = _read_mxcsr()
    if flush:
        _write_mxcsr(saved | _FTZ_DAZ)
    return saved


@njit(cache=True, inline="always")
def _stop_flushing(saved):
    """Restore the MXCSR register that :func:`_start_flushing` returned."""
    _write_mxcsr(saved)


@njit(cache=True, inline="always", fastmath={"contract"})
def _loss_W_m3K(h_dz, e_dz, excess_K, ambient_K):
    """Return the loss coefficient g [W m-3 K-1], radiation as a secant."""
    T_K = ambient_K + excess_K
    radiative = (T_K * T_K + ambient_K * ambient_K) * (T_K + ambient_K)
    return h_dz + e_dz * radiative


@njit(cache=True, inline="always", fastmath={"contract"})
def _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i, b0, b1) -> None:
    """Write the loss coefficient of cell (layer, j, i) into ``g[b0:b1]``.

    The cubic is evaluated only where the cell radiates.
    """
    h_dz, e_dz = loss[0, layer, j, i], loss[1, layer, j, i]
    if e_dz == 0.0:
        g[b0:b1] = h_dz
        return
    e0 = excess0[layer, j, i]
    for b in range(b0, b1):
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
    q: np.ndarray,
    rows: np.ndarray,
    scenarios: np.ndarray,
    slots: np.ndarray,
    weights: np.ndarray,
    powers: np.ndarray,
) -> None:
    """Write the source density [W m-3] of the sourced cells into ``q``.

    ``q`` has one row per sourced cell and one column per scenario. Entry e
    adds ``weights[e] * powers[slots[e], scenarios[e]]`` to row ``rows[e]``
    of scenario ``scenarios[e]``, in the order of the entries, which must be
    by slot within a scenario. Every other value is 0.
    """
    q[:] = 0.0
    for e in range(rows.size):
        b = scenarios[e]
        q[rows[e], b] += weights[e] * powers[slots[e], b]


@njit(parallel=True, cache=True, fastmath={"contract"})
def step_xy(
    u: np.ndarray,
    out: np.ndarray,
    sources: tuple[np.ndarray, np.ndarray],
    steady: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    x_factors: tuple[np.ndarray, np.ndarray],
    y_factors: tuple[np.ndarray, np.ndarray],
    y_scratch: np.ndarray,
    loss: np.ndarray,
    excess0: np.ndarray,
    ambient_K,
    lost: np.ndarray,
    blocks: np.ndarray,
    flush: bool,
) -> None:
    """Write into ``out`` the x and y stages of one step from the state ``u``.

    x stage: ``(D + A_x) y1 = D u - (A_y + A_z + G) u + q``, the explicit
    predictor plus the x correction. The heat density is ``q + steady``
    [W m-3]. ``sources`` is (row, q): ``row`` gives, per cell, its row of
    ``q`` (see :func:`scatter_sources`), or -1 where ``q`` is 0. y stage:
    ``(D + A_y + g) y2 = D y1 + (A_y + g) u``, with ``g`` each scenario's
    loss coefficient at the old state.

    The first pass goes row by row: the x elimination and back-substitution
    of row j, then the y elimination of row j, while the row is still in
    cache. The second pass is the y back-substitution, which adds the loss
    that the step books, ``g (excess0 + y2)`` [W m-3], to ``lost``, shape
    (n_layers * ny, nb), one row per x line, in the state's type. Each task
    first sets its part of ``lost`` to 0.

    ``x_factors`` are (inverse, ratio) of the x lines. ``y_factors`` are the
    y lines' factors, shape (n_layers, ny, nx), where the loss is linear, and
    empty otherwise. The y lines are then eliminated per scenario, with
    their ratios kept in ``y_scratch``, an array of the state's shape.

    ``blocks`` contains increasing scenario indices from 0 to nb, as uint64.
    With signed bounds numba checks every index for wraparound, which made
    the loops 3 to 4.6 times slower (numba 0.68, AVX-512), probably because
    they no longer vectorise. One task steps the scenarios ``blocks[k]`` to
    ``blocks[k + 1] - 1`` of one layer, so that threads can share a layer.
    Each scenario's arithmetic is the same in every block, so the result
    does not depend on ``blocks``. ``flush`` flushes subnormal numbers to 0
    (see the module docstring).
    """
    n_layers, ny, nx, nb = u.shape
    n_blocks = blocks.size - 1
    linear = y_factors[0].size > 0
    for task in prange(n_layers * n_blocks):
        saved = _start_flushing(flush)
        layer = task // n_blocks
        b0, b1 = blocks[task % n_blocks], blocks[task % n_blocks + 1]
        lost[layer * ny : (layer + 1) * ny, b0:b1] = 0.0
        # Loss coefficients of a row, the x line's last cell, and a row of
        # the y lines as last eliminated or solved. The task uses columns b0
        # to b1 - 1 of each.
        g = np.empty((nx, nb), dtype=u.dtype)
        carried = np.zeros(nb, dtype=u.dtype)
        row = np.empty((nx, nb), dtype=u.dtype)
        for j in range(ny):
            if linear and n_layers == 1:
                _forward_row_x_plate(
                    u, out, carried, sources, steady, capacity, faces, loss,
                    excess0, x_factors[0], layer, j, b0, b1,
                )  # fmt: skip
            else:
                _forward_row_x(
                    u, out, g, carried, linear, sources, steady, capacity, faces,
                    loss, excess0, ambient_K, x_factors[0], layer, j, b0, b1,
                )  # fmt: skip
            for i in range(nx - 2, -1, -1):
                _back_x_cell(out, carried, x_factors[1], layer, j, i, b0, b1)
            for i in range(nx):
                if linear:
                    _forward_y_cell_linear(
                        u, out, row, capacity, faces, loss, y_factors[0],
                        layer, j, i, b0, b1,
                    )  # fmt: skip
                else:
                    _forward_y_cell(
                        u, out, g, row, capacity, faces, y_scratch, layer, j, i,
                        b0, b1,
                    )  # fmt: skip

        for j in range(ny - 1, -1, -1):
            if linear:
                _back_row_y_linear(
                    out, row, loss, excess0, y_factors[1], lost, layer, j, b0, b1
                )
            else:
                _back_row_y(
                    u, out, g[0], row, loss, excess0, ambient_K, y_scratch, lost,
                    layer, j, b0, b1,
                )  # fmt: skip
        _stop_flushing(saved)


# The loops over scenarios below take the previous cell of a line from
# ``carried`` or ``row``, not from the array they write. Reading it from
# ``out`` made them up to twice slower (numba 0.68, AVX-512), because LLVM
# cannot see how far apart the two accesses are and keeps them scalar. The
# per-scenario y elimination reads the previous row's ratio from ``ratio``,
# the array it writes, and measured no slower than with a separate buffer.
# Joining the x back-substitution and the y elimination of a cell into one
# loop over four arrays made the step about twice slower, probably for the
# same reason. Each loop covers the scenarios b0 to b1 - 1 of a block.


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_row_x_plate(
    u, out, carried, sources, steady, capacity, faces, loss, excess0, inverse,
    layer, j, b0, b1,
):  # fmt: skip
    """Write the x stage's right-hand side of x line (0, j) and eliminate it.

    For one layer with a linear loss, in one loop per cell. ``carried``
    contains the line's cell i - 1 as eliminated. Before cell 0 it contains
    any finite value (0, or the last row's cell 0), which the -x conductance
    of 0 multiplies away.
    """
    ny, nx = u.shape[1], u.shape[2]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    for i in range(nx):
        c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
        d, h = capacity[layer, j, i], loss[0, layer, j, i]
        base, e0 = steady[layer, j, i], excess0[layer, j, i]
        c_w, pivot = faces[0, layer, j, i], inverse[layer * ny + j, i]
        source = sources[0][layer, j, i]
        for b in range(b0, b1):
            value = _rhs_x_value(
                u, sources[1], layer, j, i, b, south, north, c_s, c_n, d, base,
                e0, h, source,
            )  # fmt: skip
            value = value + c_w * carried[b]
            value = value * pivot
            carried[b] = value
            out[layer, j, i, b] = value


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_row_x(
    u, out, g, carried, linear, sources, steady, capacity, faces, loss, excess0,
    ambient_K, inverse, layer, j, b0, b1,
):  # fmt: skip
    """Write the x stage's right-hand side of x line (layer, j) and eliminate it.

    Leaves the line's last cell in ``carried`` and the row's loss
    coefficients in ``g``, shape (nx, nb), unless the loss is ``linear``.
    """
    n_layers, ny, nx = u.shape[0], u.shape[1], u.shape[2]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    below, above = max(layer - 1, 0), min(layer + 1, n_layers - 1)
    for i in range(nx):
        c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
        d, h = capacity[layer, j, i], loss[0, layer, j, i]
        base, e0 = steady[layer, j, i], excess0[layer, j, i]
        if not linear:
            _fill_loss(g[i], u, loss, excess0, ambient_K, layer, j, i, b0, b1)
        # A loop that may read q ran about five times slower (numba 0.68,
        # AVX-512), so cells without a source get loops in which the literal
        # -1 removes that branch.
        source = sources[0][layer, j, i]
        if linear and source < 0:
            for b in range(b0, b1):
                out[layer, j, i, b] = _rhs_x_value(
                    u, sources[1], layer, j, i, b, south, north, c_s, c_n, d,
                    base, e0, h, -1,
                )  # fmt: skip
        elif source < 0:
            for b in range(b0, b1):
                out[layer, j, i, b] = _rhs_x_value(
                    u, sources[1], layer, j, i, b, south, north, c_s, c_n, d,
                    base, e0, g[i, b], -1,
                )  # fmt: skip
        else:
            for b in range(b0, b1):
                g_b = h if linear else g[i, b]
                out[layer, j, i, b] = _rhs_x_value(
                    u, sources[1], layer, j, i, b, south, north, c_s, c_n, d,
                    base, e0, g_b, source,
                )  # fmt: skip

        if n_layers > 1:
            c_d, c_u = faces[4, layer, j, i], faces[5, layer, j, i]
            for b in range(b0, b1):
                centre = u[layer, j, i, b]
                value = out[layer, j, i, b]
                value -= c_d * (centre - u[below, j, i, b])
                value -= c_u * (centre - u[above, j, i, b])
                out[layer, j, i, b] = value

        c_w, pivot = faces[0, layer, j, i], inverse[layer * ny + j, i]
        for b in range(b0, b1):
            value = out[layer, j, i, b] + c_w * carried[b]
            value = value * pivot
            carried[b] = value
            out[layer, j, i, b] = value


@njit(cache=True, inline="always", fastmath={"contract"})
def _rhs_x_value(
    u, q, layer, j, i, b, south, north, c_s, c_n, d, base, e0, g_b, source
):
    """Return the in-layer part of the x stage's right-hand side of one value.

    ``source`` is the cell's row of ``q``, or -1 where it has no source.
    """
    centre = u[layer, j, i, b]
    value = d * centre + base - g_b * (e0 + centre)
    if source >= 0:
        value += q[source, b]
    value -= c_s * (centre - u[layer, south, i, b])
    value -= c_n * (centre - u[layer, north, i, b])
    return value


@njit(cache=True, inline="always", fastmath={"contract"})
def _back_x_cell(out, carried, ratio, layer, j, i, b0, b1) -> None:
    """Back-substitute cell i of x line (layer, j), whose cell i + 1 is in
    ``carried``."""
    ny = out.shape[1]
    r = ratio[layer * ny + j, i]
    for b in range(b0, b1):
        value = out[layer, j, i, b] + r * carried[b]
        carried[b] = value
        out[layer, j, i, b] = value


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_y_cell_linear(
    u, out, row, capacity, faces, loss, inverse, layer, j, i, b0, b1
):
    """Eliminate cell (layer, j, i) along its y line, with shared y factors.

    ``row`` contains row j - 1 of the y lines as eliminated, and receives
    cell i of row j.
    """
    ny = u.shape[1]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
    d, h = capacity[layer, j, i], loss[0, layer, j, i]
    pivot = inverse[layer, j, i]
    for b in range(b0, b1):
        centre = u[layer, j, i, b]
        rhs = d * out[layer, j, i, b] + h * centre
        rhs += c_s * (centre - u[layer, south, i, b])
        rhs += c_n * (centre - u[layer, north, i, b])
        if j > 0:
            rhs += c_s * row[i, b]
        value = rhs * pivot
        row[i, b] = value
        out[layer, j, i, b] = value


@njit(cache=True, inline="always", fastmath={"contract"})
def _forward_y_cell(u, out, g, row, capacity, faces, ratio, layer, j, i, b0, b1):
    """Eliminate cell (layer, j, i) along its y line per scenario.

    ``g`` contains the row's loss coefficients, shape (nx, nb). ``row``
    contains row j - 1 as eliminated, and receives cell i of row j.
    ``ratio`` keeps every row's elimination ratios, shape of the state.
    """
    ny = u.shape[1]
    south, north = max(j - 1, 0), min(j + 1, ny - 1)
    one = u.dtype.type(1.0)
    c_s, c_n = faces[2, layer, j, i], faces[3, layer, j, i]
    d = capacity[layer, j, i]
    for b in range(b0, b1):
        centre = u[layer, j, i, b]
        rhs = d * out[layer, j, i, b] + g[i, b] * centre
        rhs += c_s * (centre - u[layer, south, i, b])
        rhs += c_n * (centre - u[layer, north, i, b])
        diagonal = d + c_s + c_n + g[i, b]
        if j > 0:
            diagonal -= c_s * ratio[layer, j - 1, i, b]
            rhs += c_s * row[i, b]
        inverse = one / diagonal
        ratio[layer, j, i, b] = c_n * inverse
        value = rhs * inverse
        row[i, b] = value
        out[layer, j, i, b] = value


@njit(cache=True, inline="always", fastmath={"contract"})
def _back_row_y_linear(out, row, loss, excess0, ratio, lost, layer, j, b0, b1):
    """Back-substitute row j of the y lines and book its linear loss.

    ``row`` contains row j + 1 as solved, and receives row j.
    """
    ny, nx = out.shape[1], out.shape[2]
    books = lost[layer * ny + j]
    for i in range(nx):
        h, e0 = loss[0, layer, j, i], excess0[layer, j, i]
        if j == ny - 1:
            for b in range(b0, b1):
                books[b] += h * (e0 + row[i, b])
            continue
        r = ratio[layer, j, i]
        for b in range(b0, b1):
            value = out[layer, j, i, b] + r * row[i, b]
            row[i, b] = value
            out[layer, j, i, b] = value
            books[b] += h * (e0 + value)


@njit(cache=True, inline="always", fastmath={"contract"})
def _back_row_y(
    u, out, g, row, loss, excess0, ambient_K, ratio, lost, layer, j, b0, b1
):
    """Back-substitute row j of the per-scenario y lines and book its loss.

    ``g`` is a buffer of nb values. ``row`` contains row j + 1 as solved,
    and receives row j.
    """
    ny, nx = out.shape[1], out.shape[2]
    books = lost[layer * ny + j]
    for i in range(nx):
        books_cell = loss[0, layer, j, i] != 0.0 or loss[1, layer, j, i] != 0.0
        if j < ny - 1 and not books_cell:
            for b in range(b0, b1):
                value = out[layer, j, i, b] + ratio[layer, j, i, b] * row[i, b]
                row[i, b] = value
                out[layer, j, i, b] = value
        if not books_cell:
            continue

        _fill_loss(g, u, loss, excess0, ambient_K, layer, j, i, b0, b1)
        e0 = excess0[layer, j, i]
        if j == ny - 1:
            for b in range(b0, b1):
                books[b] += g[b] * (e0 + row[i, b])
            continue
        # One loop that also books the loss ran about 5 % faster than two.
        for b in range(b0, b1):
            value = out[layer, j, i, b] + ratio[layer, j, i, b] * row[i, b]
            row[i, b] = value
            out[layer, j, i, b] = value
            books[b] += g[b] * (e0 + value)


@njit(parallel=True, cache=True, fastmath={"contract"})
def sweep_z(
    u: np.ndarray,
    stage: np.ndarray,
    capacity: np.ndarray,
    faces: np.ndarray,
    inverse: np.ndarray,
    ratio: np.ndarray,
    flush: bool,
) -> None:
    """Solve ``(D + A_z) u_new = D y2 + A_z u`` along z and write ``u``.

    ``inverse`` and ``ratio`` are the Thomas factors of the z lines, shape
    (n_layers, ny, nx). ``flush`` flushes subnormal numbers to 0.
    """
    n_layers, ny, nx, nb = u.shape
    for j in prange(ny):
        saved = _start_flushing(flush)
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
        _stop_flushing(saved)


@njit(cache=True)
def copy_scenarios(
    u: np.ndarray, recorded: np.ndarray, index: int, alive: np.ndarray
) -> None:
    """Copy the state of scenario b into ``recorded[b, index]``, NaN unless alive.

    ``recorded`` has the shape (n_scenarios, n_outputs, n_layers, ny, nx).
    Cells go in blocks, so that reads and writes both stay in cache.
    """
    nb = u.shape[-1]
    flat = u.reshape((-1, nb))
    n_cells = flat.shape[0]
    target = recorded.reshape((nb, recorded.shape[1], n_cells))
    for start in range(0, n_cells, 64):
        stop = min(start + 64, n_cells)
        for b in range(nb):
            if not alive[b]:
                target[b, index, start:stop] = np.nan
                continue
            for cell in range(start, stop):
                target[b, index, cell] = flat[cell, b]


@njit(cache=True)
def nonzero_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return the flat indices and values of the non-zero entries of 1D ``weights``.

    The third value is whether every weight is finite and >= 0.
    """
    # Branch-free, so that the pass vectorises. NaN fails both comparisons.
    count = 0
    n_valid = 0
    for k in range(weights.size):
        w = weights[k]
        n_valid += (w >= 0.0) & (w < np.inf)
        count += w != 0.0
    valid = n_valid == weights.size

    cells = np.empty(count, dtype=np.int64)
    values = np.empty(count, dtype=weights.dtype)
    count = 0
    for k in range(weights.size):
        if weights[k] != 0.0:
            cells[count] = k
            values[count] = weights[k]
            count += 1
    return cells, values, valid


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


@njit(cache=True)
def narrow_flushed(wide: np.ndarray, narrow: np.ndarray, tiny: float) -> None:
    """Copy C-contiguous ``wide`` into ``narrow`` of another type, in one pass.

    Values of magnitude below ``tiny`` become 0, so that a float32 copy has
    no subnormal numbers. NaN and infinities are copied as they are.
    """
    source = wide.reshape(-1)
    target = narrow.reshape(-1)
    for k in range(source.size):
        value = source[k]
        target[k] = 0.0 if abs(value) < tiny else value
