"""Heat equation of :mod:`thermosynth.physics.heat` with Douglas ADI steps.

Same grid, face conductances, loss and sources as
:mod:`thermosynth.physics.fast` (cell-centred finite volumes, harmonic mean
conductivity per face, convection and secant-linearised radiation on the top
and bottom layers). Instead of one sparse solve of the whole implicit Euler
system per step, each step is split by direction (Douglas's scheme with
theta = 1, also called the stabilising correction): with ``D = rho_cp / dt``,
the conduction operator ``A = A_x + A_y + A_z``, the source ``q`` and the
loss ``G u = g (T - T_a)``, whose coefficient ``g`` is taken at the previous
step's temperature (radiation as a secant, as in the other solvers),

    (D + A_x) y1 = D u - (A_y + A_z) u - G u + q
    (D + A_y + g) y2 = D y1 + (A_y + g) u
    (D + A_z) u_new = D y2 + A_z u

Each stage solves independent tridiagonal lines. The x and z lines depend
only on the layout and the step length, so they are factorised once. The y
lines carry the loss, which depends on each scenario's temperature where a
face radiates, so they are then eliminated per scenario. Without radiation
they are factorised once too. Like implicit Euler
the scheme is first order in time, unconditionally stable for two
directions, leaves the steady state unchanged, and conserves energy exactly;
a uniform field takes exactly the implicit Euler step. It differs from
implicit Euler by a splitting term of order ``dt**2``. Modes that are stiff
along z and across the plate at once would be left almost undamped, so a
step is cut into sub-steps that keep ``dt (c_down + c_up) / rho_cp`` at or
below ``MAX_Z_STIFFNESS``; a single layer never needs them. A direct call
takes as many sub-steps as the layers need, up to ``MAX_DIRECT_SUBSTEPS``.
Modes stiff along both x and y are damped by a factor near 1 per step, so
after a change of source power (the first step, a switch, a ramp) the fine
in-plane detail of a small source would lag far behind. The first sub-step
of such a step is cut into start-up sub-steps that double in length from
one whose in-plane stiffness is at most ``MAX_XY_STIFFNESS``
(``AdiGrid.startup_steps``). In float32 they flush subnormal numbers to 0
on x86-64 and run in float64 elsewhere (``FLOAT32_STARTUP``). A ramp
starts up only where its power has moved by more than
``STARTUP_POWER_FRACTION`` since the last start-up, and once more where it
levels off. Scenarios of a batch that start up at different steps
therefore run as separate batches.
``suits`` returns whether they stay within ``MAX_SUBSTEPS``, the limit above
which recipes use the LU solver, and rejects stacks with a layer of a named
material. Many sub-steps make ADI's z error much smaller than implicit
Euler's, so the two solvers then differ by about the LU step's own error.

The loops are compiled with numba and run over all scenarios of a batch at
once (scenarios on the innermost axis), in float64 or, where asked, float32
(``precision``). Held patches (penalty rows) are not
supported: :func:`simulate_adi_batch` rejects them, and
:func:`thermosynth.simulation.simulate_scenario` sends such scenarios to the
sparse LU solver.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, NamedTuple

import numba
import numpy as np

from thermosynth.errors import RecipeError, SimulationError
from thermosynth.geometry.layout import Layout
from thermosynth.physics import adi_kernels as kernels
from thermosynth.physics import buffers
from thermosynth.physics.grid import face_conductances, layer_dz_m, layer_volume_ratio
from thermosynth.physics.heat import (
    ZERO_C_IN_K,
    Boundary,
    FailurePolicy,
    HeatResult,
    _check_policy,
    _check_sources,
    _check_times,
    _FailureLog,
    _initial_state,
    _output_times,
    _step_ends,
)
from thermosynth.physics.profiles import Constant, mean_over
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    check_n_layers,
)

logger = logging.getLogger(__name__)

Source = VolumeSource | HeldPatch

_DEFAULT_BOUNDARY = Boundary()

Precision = Literal["float32", "float64"]

# numba's "The Threading Layers" documentation calls its built-in workqueue
# layer unsafe for parallel launches from several threads at once, so threads
# of one process (a threaded Dask scheduler) take turns.
_LAUNCH = threading.Lock()

# Below this many cell-scenarios a step runs on one thread: waking the other
# threads costs more than it saves, and far more on a loaded machine.
PARALLEL_MIN_CELLS = 1 << 18

# Whether threads share a layer, each stepping a block of its scenarios. It
# is off because it did not pay on a 2-core AMD EPYC VM. There, step_xy on
# two threads ran 0.74 to 1.11 times as fast as on one, for one layer of 64
# x 64 to 256 x 256 cells and 16 or 64 scenarios. Memory bandwidth is the
# likely limit. Layers still go to separate threads.
SPLIT_LAYERS = False

# Largest dt * (c_down + c_up) / rho_cp of a step (see AdiGrid.substeps). At 4
# the top-layer error against a fine reference stayed within 1.1 times
# implicit Euler's on the demo, pouch and cabinet layouts. At 16 it reached
# 1.5 times, and at 64 over 500 times (docs/benchmarks.md).
MAX_Z_STIFFNESS = 4.0

# Largest dt * sqrt(x rate * y rate) of the first sub-step after the source
# power changes (see AdiGrid.startup_steps), with x rate = (c_-x + c_+x) /
# rho_cp and y rate the same along y. Take a 4 W, 2 mm hotspot on the
# one-layer demo pouch at dt 10 s. Its peak rise at 10 s came out 3.8 %,
# 3.9 %, 4.5 % and 9.4 % low with this limit at 1, 4, 16 and 64, and 8.1 %
# low with the LU solver. The rate peaks in the tabs, 10 times the body's.
MAX_XY_STIFFNESS = 4.0

# Largest change of a source's mean power since the last start-up, as a
# fraction of the larger of the two powers, that a step takes without
# start-up sub-steps (see _startup_mask). A switch on or off always starts
# up. A linear ramp over 10, 30 or 60 steps starts up in 6, 10 or 12 of
# them, and once more where it levels off. On the tests' 32 x 32 plate (1 W
# hotspot of 1 mm, dt 1 s, 10 s ramp) ADI's peak error stayed within 1.01
# times the LU solver's at 1 to 16 s. At 0.5 it reached 2.25 times.
# NOTE: measured on linear ramps only. Exponential and tabulated profiles
# follow the same rule, unchecked against the LU solver.
STARTUP_POWER_FRACTION = 0.25

# A step also starts up where the power levels off: its change is at most
# this fraction of the drift since the last start-up and at most half the
# largest change of one step since then. Without that start-up the drift
# lasts, and on the same plate ADI's error 2 s after the ramp's end was
# 9.3 times the LU solver's.
SETTLED_CHANGE_FRACTION = 0.1

# Maximum number of halvings of the first sub-step after a power change.
MAX_STARTUP_HALVINGS = 20

# Smallest normal float32 [K]. Where float64 start-up sub-steps hand the
# state back to float32, rises below it are set to 0, because subnormals
# would slow every later float32 step. The stored energy changes by less
# than this per cell.
FLUSH_BELOW_K = float(np.finfo(np.float32).tiny)

# Whether float32 calls take their start-up sub-steps in float32 with
# subnormal numbers flushed to 0, rather than in float64 (see _start_up).
# Flushing needs x86-64, so elsewhere the start-up runs in float64. The two
# differed by 2.3e-7 of the peak rise on the 128 x 128 plate of
# benchmarks/adi_throughput.py after 1 and 20 steps.
FLOAT32_STARTUP = kernels.CAN_FLUSH_SUBNORMALS

# Sub-steps per step above which the LU solver is the cheaper choice. On the
# demo layout (40 x 50 x 2) ADI with 17 sub-steps per step ran 3 times faster
# than the LU solver.
MAX_SUBSTEPS = 32

# Sub-steps per step above which a direct call raises. That is about 30
# times MAX_SUBSTEPS, past which the LU solver is the cheaper choice. Such
# counts come from a layer far thinner than the grid spacing: a 1 nm
# aluminium layer on a 4 mm plate needed 1e7 sub-steps per 200 s step.
MAX_DIRECT_SUBSTEPS = 1000


def simulate_adi(
    layout: Layout,
    sources: Sequence[Source],
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    output_times_s: Sequence[float] | None = None,
    initial_C: float | np.ndarray | None = None,
    on_failure: FailurePolicy = "raise",
    progress: Callable[[int, int], None] | None = None,
    precision: Precision = "float64",
) -> HeatResult:
    """Simulate one scenario with Douglas ADI steps.

    Takes the arguments of :func:`thermosynth.physics.fast.simulate_fast`
    and returns the same result. Held patches are not accepted.

    Parameters
    ----------
    precision : {"float64", "float32"}
        Type of the state and of the arithmetic of the steps. float32 halves
        the bytes of the state. On the tests' two-layer case it stayed within
        about 1e-6 of the peak rise of float64. The gap grows with the number
        of steps and sub-steps, so long runs on stiff layered plates can
        drift further. The energy books sum in float64 either way, and
        results are float64 arrays.

    Raises
    ------
    RecipeError
        If a source is a HeldPatch, ``precision`` is unknown, or as in
        ``simulate_fast``.
    SimulationError
        If a step needs more than ``MAX_DIRECT_SUBSTEPS`` sub-steps, whatever
        ``on_failure`` is, or if the temperature becomes non-finite or falls
        below absolute zero and ``on_failure == "raise"``.

    Examples
    --------
    >>> from thermosynth.geometry.layout import Layout, Material
    >>> from thermosynth.physics.sources import hotspot
    >>> steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    >>> grid = np.zeros((8, 8), dtype=int)
    >>> layout = Layout(1.0, 1.0, 1.0, grid, (steel,), grid - 1)
    >>> source = hotspot(layout, x_mm=4, y_mm=4, radius_mm=1, power_W=0.1)
    >>> result = simulate_adi(layout, [source], duration_s=1.0, dt_s=0.1)
    >>> result.rise_K.shape
    (1, 8, 8)
    """
    return simulate_adi_batch(
        layout,
        [sources],
        boundary=boundary,
        n_layers=n_layers,
        duration_s=duration_s,
        dt_s=dt_s,
        output_times_s=output_times_s,
        initial_C=initial_C,
        on_failure=on_failure,
        progress=progress,
        precision=precision,
    )[0]


def simulate_adi_batch(
    layout: Layout,
    batch: Sequence[Sequence[Source]],
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    output_times_s: Sequence[float] | None = None,
    initial_C: float | np.ndarray | None = None,
    on_failure: FailurePolicy = "raise",
    progress: Callable[[int, int], None] | None = None,
    precision: Precision = "float64",
) -> list[HeatResult]:
    """Simulate several scenarios on one layout together.

    Arguments as in :func:`simulate_adi`; ``batch`` contains one list of sources
    per scenario, as in :func:`thermosynth.physics.fast.simulate_batch`.
    Result ``i`` equals ``simulate_adi(layout, batch[i], ...)`` exactly: each
    scenario's arithmetic does not depend on the others.
    """
    _check_times(duration_s, dt_s)
    check_n_layers(n_layers, layout)
    outputs = _output_times(output_times_s, duration_s)
    _check_policy(on_failure)
    dtype = _dtype(precision)
    nonzero = _check_batch(batch, (n_layers, *layout.shape))
    initial = _initial_state(initial_C, boundary.ambient_C, layout, n_layers)

    grid = _cached_grid(layout, boundary, initial, dtype=dtype)
    startup_grid = grid
    if dtype is not np.float64 and not FLOAT32_STARTUP:
        startup_grid = _cached_grid(layout, boundary, initial, dtype=np.float64)
    step_ends = _step_ends(duration_s, dt_s, outputs)
    _check_substeps(grid, layout, step_ends)
    startups = _startup_mask(batch, step_ends)
    groups = _group_rows(startups)
    failures = _FailureLog(on_failure)
    results: list[HeatResult | None] = [None] * len(batch)
    for rank, ids in enumerate(groups):
        # Scenarios that start up at different steps take different
        # sub-steps, so they run as separate batches.
        group_progress = _group_progress(progress, rank, len(groups))
        state = _State(grid, [batch[i] for i in ids], [nonzero[i] for i in ids])
        state.startup_grid = startup_grid
        state.ids, state.batch_size = ids, len(batch)
        try:
            group_results = _run(
                state, step_ends, outputs, startups[ids[0]], failures, group_progress
            )
        finally:
            state.release()
        for i, result in zip(ids, group_results, strict=True):
            results[i] = result
    failures.summarise()
    return [result for result in results if result is not None]


def supports(sources: Sequence[Source]) -> bool:
    """Return whether the ADI solver takes these sources (no held patches)."""
    return not any(isinstance(s, HeldPatch) for s in sources)


def suits(
    layout: Layout,
    sources: Sequence[Source],
    *,
    boundary: Boundary,
    n_layers: int,
    dt_s: float,
) -> bool:
    """Return whether ADI takes these sources in at most ``MAX_SUBSTEPS`` per step.

    Layouts with metal that is thin against its layer spacing (tabs, casings)
    couple the layers so stiffly that the sub-steps would cost more than the
    LU solver's step; :func:`thermosynth.simulation.simulate_scenario` then
    uses the LU solver. It does the same for a stack with a layer of a
    named material, such as a can's wall, because the sub-steps do not bound
    that layer's splitting error.
    """
    if not supports(sources):
        return False
    # A thin, conductive wall layer can pass the sub-step test yet leave a
    # large splitting error. Under a 10 W short just below 0.4-2 mm aluminium
    # walls, ADI at dt_s = 10 s peaked 7.5-17.5 % high after 180 s, and fast
    # at 10 s within 0.9 % (benchmarks/prismatic_stack.py).
    if any(layer.material is not None for layer in layout.layers or ()):
        return False
    initial = _initial_state(None, boundary.ambient_C, layout, n_layers)
    grid = _cached_grid(layout, boundary, initial, dtype=np.float64)
    return grid.substeps(dt_s) <= MAX_SUBSTEPS


def _check_substeps(grid: AdiGrid, layout: Layout, step_ends: np.ndarray) -> None:
    """Raise SimulationError if a step needs more than ``MAX_DIRECT_SUBSTEPS``."""
    longest_s = float(np.diff(step_ends, prepend=0.0).max())
    n_sub = grid.substeps(longest_s)
    if n_sub <= MAX_DIRECT_SUBSTEPS:
        return

    max_dt_s = MAX_DIRECT_SUBSTEPS * MAX_Z_STIFFNESS / grid.z_rate_per_s
    raise SimulationError(
        f"ADI heat solver: a step of {longest_s:g} s on layout {layout.name!r} "
        f"needs {n_sub} sub-steps, more than MAX_DIRECT_SUBSTEPS = "
        f"{MAX_DIRECT_SUBSTEPS}, because a thin or highly conductive layer "
        "couples the layers stiffly; use simulate_fast, or dt_s <= "
        f"{max_dt_s:.3g} s"
    )


def _startup_mask(
    batch: Sequence[Sequence[Source]], step_ends: np.ndarray
) -> np.ndarray:
    """Return whether each step starts with start-up sub-steps.

    Shape (n_scenarios, n_steps). A step starts up where a source's mean
    power over it has moved from its power at the scenario's last start-up
    by more than ``STARTUP_POWER_FRACTION`` of the larger of the two, and
    where the power levels off (``SETTLED_CHANGE_FRACTION``). All sources
    are off before the first step. The powers are those of
    :meth:`_State.powers_W`.
    """
    starts = np.concatenate([[0.0], step_ends[:-1]])
    volume_sources = [
        [source for source in sources if isinstance(source, VolumeSource)]
        for sources in batch
    ]
    # Scenarios with fewer sources get sources of 0 W, which never start up.
    n_slots = max([1, *(len(sources) for sources in volume_sources)])
    powers_W = np.zeros((len(batch), n_slots, step_ends.size))
    for scenario, sources in enumerate(volume_sources):
        for slot, source in enumerate(sources):
            powers_W[scenario, slot] = _step_powers_W(source, starts, step_ends)
    return _batch_startups(powers_W)


def _step_powers_W(
    source: VolumeSource, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Return a source's mean power over each step [W]."""
    profile = source.power_W
    if isinstance(profile, Constant):
        return np.full(ends.size, float(profile.value))
    return np.array(
        [
            mean_over(profile, float(start), float(end))
            for start, end in zip(starts, ends, strict=True)
        ]
    )


def _batch_startups(powers_W: np.ndarray) -> np.ndarray:
    """Return whether each step of each scenario starts up.

    ``powers_W`` has the shape (n_scenarios, n_sources, n_steps) [W]. The
    loop runs over the steps, and numpy takes all scenarios and sources at
    once. Each scenario's row depends only on its own powers.
    """
    n_scenarios, n_sources, n_steps = powers_W.shape
    startups = np.zeros((n_scenarios, n_steps), dtype=bool)
    balanced_W = np.zeros((n_scenarios, n_sources))
    previous_W = np.zeros((n_scenarios, n_sources))
    # Largest change of power in one step since the last start-up [W].
    fastest_W = np.zeros(n_scenarios)
    for step in range(n_steps):
        step_powers_W = powers_W[:, :, step]
        # A non-finite power starts up too, but leaves the powers kept since
        # the last start-up unchanged. The run then fails.
        finite = np.isfinite(step_powers_W).all(axis=1)
        with np.errstate(invalid="ignore"):
            start, fastest_now_W = _step_startups(
                step_powers_W, balanced_W, previous_W, fastest_W
            )
        startups[:, step] = start | ~finite

        restart = finite & start
        fastest_W = np.where(finite, fastest_now_W, fastest_W)
        fastest_W[restart] = 0.0
        balanced_W = np.where(restart[:, None], step_powers_W, balanced_W)
        previous_W = np.where(finite[:, None], step_powers_W, previous_W)
    return startups


def _step_startups(
    powers_W: np.ndarray,
    balanced_W: np.ndarray,
    previous_W: np.ndarray,
    fastest_W: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return whether each scenario starts up at one step, and the new ``fastest_W``.

    ``powers_W`` are the step's powers, ``balanced_W`` those at the last
    start-up and ``previous_W`` those of the step before, each (n_scenarios,
    n_sources) [W].
    """
    drift_W = np.abs(powers_W - balanced_W)
    scale_W = np.maximum(np.abs(powers_W), np.abs(balanced_W))
    change_W = np.abs(powers_W - previous_W).max(axis=1)
    fastest_W = np.maximum(fastest_W, change_W)
    large = np.any(drift_W > STARTUP_POWER_FRACTION * scale_W, axis=1)
    # A start-up where the power levels off clears the drift, which would
    # else last. A linear ramp's steady change does not count.
    largest_drift_W = drift_W.max(axis=1)
    settled = change_W <= SETTLED_CHANGE_FRACTION * largest_drift_W
    settled &= (change_W <= 0.5 * fastest_W) & (largest_drift_W > 0.0)
    return large | settled, fastest_W


def _group_rows(mask: np.ndarray) -> list[list[int]]:
    """Return the scenario indices of each distinct row, in order of first use."""
    groups: dict[bytes, list[int]] = {}
    for scenario, row in enumerate(mask):
        groups.setdefault(row.tobytes(), []).append(scenario)
    return list(groups.values())


def _group_progress(
    progress: Callable[[int, int], None] | None, rank: int, n_groups: int
) -> Callable[[int, int], None] | None:
    """Return a callback that reports group ``rank``'s steps as steps of all groups."""
    if progress is None or n_groups == 1:
        return progress

    def report(step: int, total: int) -> None:
        progress(rank * total + step, n_groups * total)

    return report


def _dtype(precision: str) -> type[np.floating]:
    if precision == "float64":
        return np.float64
    if precision == "float32":
        return np.float32
    raise RecipeError(
        f"ADI heat solver: precision = {precision!r} is invalid; use 'float64' "
        "or 'float32'"
    )


# Per source, the flat cell indices and values of its non-zero weights [m-3].
_Entries = list[tuple[np.ndarray, np.ndarray]]


def _check_batch(
    batch: Sequence[Sequence[Source]], shape: tuple[int, ...]
) -> list[_Entries]:
    """Check every scenario's sources; return the non-zero weights of each.

    Item ``i`` contains, per source of scenario ``i``, the flat cell indices
    into ``shape`` and the weights [m-3] of its non-zero weights.
    """
    if len(batch) == 0:
        raise RecipeError(
            "simulate_adi_batch: batch is empty; give one list of sources per scenario"
        )

    nonzero = []
    for sources in batch:
        entries = [_nonzero_weights(source, shape) for source in sources]
        if any(entry is None for entry in entries):
            # Raises the error of the first invalid source. Where none is
            # invalid, the sources without entries are held patches.
            _check_sources(sources, shape)
        if not supports(sources):
            raise RecipeError(
                "the ADI solver does not support held patches (HeldPatch); use "
                "physics.solver: fast for such scenarios"
            )
        nonzero.append([entry for entry in entries if entry is not None])
    return nonzero


def _nonzero_weights(
    source: Source, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the flat cells and values of a source's non-zero weights [m-3].

    Returns None unless ``source`` is a VolumeSource whose weights have the
    shape ``shape`` and are finite and >= 0.
    """
    if not isinstance(source, VolumeSource):
        return None
    weights = np.asarray(source.weights_m3)
    if weights.shape != shape:
        return None
    if weights.dtype != np.float64:
        weights = weights.astype(np.float64)

    cells, values, valid = kernels.nonzero_weights(weights.ravel())
    return (cells, values) if valid else None


class Factors(NamedTuple):
    """D = rho_cp / dt [W m-3 K-1] and the Thomas factors of one step length.

    The y factors are None unless the loss is linear.
    """

    d: np.ndarray
    x_inverse: np.ndarray
    x_ratio: np.ndarray
    z_inverse: np.ndarray
    z_ratio: np.ndarray
    y_inverse: np.ndarray | None
    y_ratio: np.ndarray | None


class AdiGrid:
    """Coefficients of one layout, boundary and initial state, per direction.

    Attributes
    ----------
    shape : tuple of int
        (n_layers, ny, nx).
    capacity_J_m3K : ndarray
        rho_cp per cell [J m-3 K-1].
    volume_m3 : float
        Cell volume of the mean layer [m3].
    volume_ratio : ndarray
        Each layer's cell volume over ``volume_m3``, shape (n_layers,).
    faces_W_m3K : ndarray
        Conductance to the -x, +x, -y, +y, -z, +z neighbour [W m-3 K-1],
        shape (6, n_layers, ny, nx).
    loss : ndarray
        ``h / dz`` [W m-3 K-1] and ``sigma emissivity / dz`` [W m-3 K-4] per
        cell, with sigma the Stefan-Boltzmann constant, shape (2, n_layers,
        ny, nx).
    linear : bool
        True where no face radiates, so that the loss does not depend on the
        temperature.
    dtype : type
        numpy float type of the state and of the arrays the kernels read.
    """

    def __init__(
        self,
        layout: Layout,
        boundary: Boundary,
        initial_C: np.ndarray,
        *,
        dtype: type[np.floating] = np.float64,
    ):
        self.shape = initial_C.shape
        self.dtype = dtype
        n_layers = self.shape[0]
        # A layer's cell volume is volume_m3 times its volume_ratio, which
        # is exactly 1 without a stack.
        self.volume_m3 = cell_volume_m3(layout, n_layers)
        self.volume_ratio = layer_volume_ratio(layout, n_layers)
        dz_m = layer_dz_m(layout, n_layers)

        rho_cp = layout.layer_property_map("rho_cp_J_m3K", n_layers)
        self.capacity_J_m3K = np.ascontiguousarray(rho_cp, dtype=float)
        self.faces_W_m3K = _faces(layout, self.shape)
        self.loss = _loss_terms(boundary, self.shape, dz_m)
        self.linear = not self.loss[1].any()
        self.ambient_K = boundary.ambient_C + ZERO_C_IN_K
        self.initial_K = np.ascontiguousarray(initial_C + ZERO_C_IN_K, dtype=float)
        self.initial_flow_W_m3 = _flow_W_m3(self.faces_W_m3K, initial_C)
        z_rate = (self.faces_W_m3K[4] + self.faces_W_m3K[5]) / self.capacity_J_m3K
        self.z_rate_per_s = float(z_rate.max())
        f = self.faces_W_m3K
        xy_rate = np.sqrt((f[0] + f[1]) * (f[2] + f[3])) / self.capacity_J_m3K
        self.xy_rate_per_s = float(xy_rate.max())

        # The kernels read these in the state's type.
        self.excess0_K = self.cast(initial_C - boundary.ambient_C)
        self.kernel_faces = self.cast(self.faces_W_m3K)
        self.kernel_loss = self.cast(self.loss)
        self.kernel_steady = self.cast(self.initial_flow_W_m3)
        self.kernel_ambient_K = dtype(self.ambient_K)
        self._factors: dict[float, Factors] = {}

    def cast(self, values: np.ndarray) -> np.ndarray:
        """Return ``values`` as a C-contiguous array of the state's type."""
        return np.ascontiguousarray(values, dtype=self.dtype)

    def substeps(self, dt_s: float) -> int:
        """Return the number of equal sub-steps that keep z mildly stiff.

        The splitting leaves modes that are stiff both along z and across the
        plate almost undamped, where implicit Euler removes them. Sub-steps
        keep ``dt * (c_down + c_up) / rho_cp`` at or below
        ``MAX_Z_STIFFNESS`` in every cell.
        """
        return max(1, math.ceil(dt_s * self.z_rate_per_s / MAX_Z_STIFFNESS - 1e-9))

    def startup_steps(self, dt_s: float) -> list[float]:
        """Return sub-step lengths [s] that double from a short one to fill ``dt_s``.

        The lengths are ``dt/2**k, dt/2**k, dt/2**(k-1), ..., dt/2``, with
        the fewest halvings ``k`` (at most ``MAX_STARTUP_HALVINGS``) that
        keep ``dt * xy_rate_per_s`` of the first at or below
        ``MAX_XY_STIFFNESS``. They sum to ``dt_s`` exactly, because each
        partial sum is ``dt_s`` over a power of two. A step that needs no
        halving is returned whole.
        """
        ratio = dt_s * self.xy_rate_per_s / MAX_XY_STIFFNESS
        halvings = 0
        if ratio > 1.0:
            halvings = min(math.ceil(math.log2(ratio) - 1e-9), MAX_STARTUP_HALVINGS)
        if halvings == 0:
            return [dt_s]
        lengths = [dt_s / 2**halvings]
        lengths += [dt_s / 2**k for k in range(halvings, 0, -1)]
        return lengths

    def factors(self, dt_s: float) -> Factors:
        """Return D and the Thomas factors of the x, z and y lines for a step [s].

        Factorised in float64 and cast to the state's type. The y factors are
        None unless the loss is linear.
        """
        key = float(f"{dt_s:.12g}")
        if key not in self._factors:
            factors = self._factorise(dt_s)
            cast = {
                name: self.cast(a)
                for name, a in factors._asdict().items()
                if a is not None
            }
            self._factors[key] = factors._replace(**cast)
        return self._factors[key]

    def _factorise(self, dt_s: float) -> Factors:
        n_layers, ny, nx = self.shape
        d = self.capacity_J_m3K / dt_s
        f = self.faces_W_m3K
        x_lines = [a.reshape(-1, nx) for a in (d + f[0] + f[1], f[0], f[1])]
        x_inverse, x_ratio = kernels.thomas_factors(*x_lines)
        z_inverse, z_ratio = _factorise_lines(d + f[4] + f[5], f[4], f[5], axis=0)
        factors = Factors(d, x_inverse, x_ratio, z_inverse, z_ratio, None, None)
        if not self.linear:
            return factors

        # Same operations as the per-scenario elimination in kernels.step_xy.
        y_diagonal = d + f[2] + f[3] + self.loss[0]
        y_inverse, y_ratio = _factorise_lines(y_diagonal, f[2], f[3], axis=1)
        return factors._replace(y_inverse=y_inverse, y_ratio=y_ratio)


class _CachedGrid(NamedTuple):
    layout: weakref.ref[Layout]
    material_id: np.ndarray
    grid: AdiGrid


# Grids of recent calls with their layout's material_id as it was, keyed by
# layout identity, boundary, shape, uniform initial temperature and dtype.
# An entry goes when its layout is garbage-collected.
_GRIDS: dict[tuple[object, ...], _CachedGrid] = {}
_GRIDS_LOCK = threading.Lock()
GRID_CACHE_SIZE = 4


def _cached_grid(
    layout: Layout,
    boundary: Boundary,
    initial_C: np.ndarray,
    *,
    dtype: type[np.floating],
) -> AdiGrid:
    """Return the AdiGrid of these inputs, built anew or kept from a recent call.

    A grid is reused, factors included, only for the same Layout object
    with an unchanged ``material_id`` and a uniform initial temperature.
    Kernels only read a grid, so calls from several threads can share it.
    """
    first = float(initial_C.flat[0])
    if not np.all(initial_C == first):
        return AdiGrid(layout, boundary, initial_C, dtype=dtype)

    key = (id(layout), boundary, initial_C.shape, first, np.dtype(dtype).name)
    with _GRIDS_LOCK:
        cached = _GRIDS.get(key)
    if (
        cached is not None
        and cached.layout() is layout
        and np.array_equal(cached.material_id, layout.material_id)
    ):
        return cached.grid

    grid = AdiGrid(layout, boundary, initial_C, dtype=dtype)
    layout_ref = weakref.ref(layout, functools.partial(_forget_grid, key))
    entry = _CachedGrid(layout_ref, layout.material_id.copy(), grid)
    with _GRIDS_LOCK:
        _GRIDS.pop(key, None)
        _GRIDS[key] = entry
        while len(_GRIDS) > GRID_CACHE_SIZE:
            del _GRIDS[next(iter(_GRIDS))]
    return grid


def _forget_grid(key: tuple[object, ...], layout_ref: weakref.ref[Layout]) -> None:
    """Drop the cached grid of a layout that was garbage-collected."""
    # No lock: the collector may run this while this thread holds it.
    entry = _GRIDS.get(key)
    if entry is not None and entry.layout is layout_ref:
        _GRIDS.pop(key, None)


def _factorise_lines(
    diagonal: np.ndarray, lower: np.ndarray, upper: np.ndarray, *, axis: int
) -> list[np.ndarray]:
    """Return the Thomas factors of the lines along ``axis`` of (n_layers, ny, nx).

    The factors come back in the layout of the coefficients.
    """
    moved = [np.moveaxis(a, axis, -1) for a in (diagonal, lower, upper)]
    shape = moved[0].shape
    lines = [np.ascontiguousarray(a).reshape(-1, shape[-1]) for a in moved]
    return [
        np.ascontiguousarray(np.moveaxis(a.reshape(shape), -1, axis))
        for a in kernels.thomas_factors(*lines)
    ]


def _faces(layout: Layout, shape: tuple[int, ...]) -> np.ndarray:
    """Return the six neighbour conductances per cell [W m-3 K-1].

    Order -x, +x, -y, +y, -z, +z; 0 where the neighbour is outside the grid.
    A face's two cells see different conductances where stacked layers
    differ in thickness.
    """
    faces = np.zeros((6, *shape))
    for axis, c_first, c_second in face_conductances(layout, shape):
        n = shape[axis]
        low, high = [slice(None)] * 3, [slice(None)] * 3
        low[axis], high[axis] = slice(0, n - 1), slice(1, n)
        side = 2 * (2 - axis)
        faces[side + 1][tuple(low)] = c_first
        faces[side][tuple(high)] = c_second
    return faces


def _flow_W_m3(faces: np.ndarray, T_C: np.ndarray) -> np.ndarray:
    """Return the heat conducted into each cell by the field ``T_C`` [W m-3].

    Exactly 0 for a uniform field, since each face term is a difference.
    """
    flow = np.zeros(T_C.shape)
    for axis in range(3):
        n = T_C.shape[2 - axis]
        if n < 2:
            continue
        low, high = [slice(None)] * 3, [slice(None)] * 3
        low[2 - axis], high[2 - axis] = slice(0, n - 1), slice(1, n)
        low_t, high_t = tuple(low), tuple(high)
        difference = T_C[high_t] - T_C[low_t]
        flow[low_t] += faces[2 * axis + 1][low_t] * difference
        flow[high_t] -= faces[2 * axis][high_t] * difference
    return flow


def _loss_terms(
    boundary: Boundary, shape: tuple[int, ...], dz_m: np.ndarray
) -> np.ndarray:
    """Return h / dz and sigma emissivity / dz per cell on the top and bottom layers.

    ``dz_m`` is the thickness of each layer [m]. The top layer's emissivity
    is ``boundary.emissivity_top_map`` where given.
    """
    loss = np.zeros((2, *shape))
    loss[0, 0] += boundary.h_top_W_m2K / dz_m[0]
    loss[0, -1] += boundary.h_bottom_W_m2K / dz_m[-1]
    loss[1, 0] += boundary.top_emissivity((shape[1], shape[2])) / dz_m[0]
    loss[1, -1] += boundary.emissivity_bottom / dz_m[-1]
    loss[1] *= kernels.STEFAN_BOLTZMANN_W_m2K4
    return loss


class _State:
    """Rise, sources and energy books of a batch, scenarios on the last axis."""

    def __init__(
        self,
        grid: AdiGrid,
        batch: Sequence[Sequence[Source]],
        nonzero: list[_Entries],
    ) -> None:
        self.grid = grid
        self.n_scenarios = len(batch)
        # Index of each scenario in the caller's batch, and that batch's size.
        self.ids = list(range(self.n_scenarios))
        self.batch_size = self.n_scenarios
        # Grid of the start-up sub-steps where they run in float64.
        self.startup_grid = grid
        # Held patches were rejected before this point.
        self.sources = [
            [s for s in sources if isinstance(s, VolumeSource)] for sources in batch
        ]
        self.n_slots = max(1, max(len(s) for s in self.sources))
        self._init_powers()
        self._init_sources(nonzero)

        shape = (*grid.shape, self.n_scenarios)
        self.rise = buffers.take(shape, grid.dtype, zero=True)
        self.stage = buffers.take(shape, grid.dtype, zero=False)
        n_layers, ny, _ = grid.shape
        self.lost = buffers.take(
            (n_layers * ny, self.n_scenarios), grid.dtype, zero=False
        )
        # Volume ratio of each row of ``lost``, one row per x line.
        self.row_ratio = np.repeat(grid.volume_ratio, ny)
        self.y_scratch: np.ndarray | None = None
        self.alive = np.ones(self.n_scenarios, dtype=bool)
        # Whether the kernels flush subnormal numbers to 0 (start-up only).
        self.flush = False
        self.energy_in_J = np.zeros(self.n_scenarios)
        self.energy_lost_J = np.zeros(self.n_scenarios)

        threads = 1
        if self.rise.size >= PARALLEL_MIN_CELLS:
            threads = _num_threads()
        splits = threads if SPLIT_LAYERS else 1
        itemsize = np.dtype(grid.dtype).itemsize
        self.blocks = _scenario_blocks(self.n_scenarios, n_layers, splits, itemsize)
        # A thread without a task of step_xy still costs its wake-up.
        self.threads = min(threads, n_layers * (self.blocks.size - 1))

    def _init_sources(self, nonzero: list[_Entries]) -> None:
        """Number the sourced cells: row k of ``q`` is the k-th in flat order."""
        shape = self.grid.shape
        cells, scenarios, slots, weights_m3 = _source_entries(nonzero)
        sourced = np.zeros(math.prod(shape), dtype=bool)
        sourced[cells] = True
        self.source_row = np.cumsum(sourced).reshape(shape) - 1
        self.source_row[~sourced.reshape(shape)] = -1
        rows = self.source_row.ravel()[cells]
        self.entries = (rows, scenarios, slots, weights_m3)
        self.q = np.zeros((int(sourced.sum()), self.n_scenarios), self.grid.dtype)
        self.scattered: np.ndarray | None = None
        self.power_in_W = np.zeros(self.n_scenarios)
        self.totals_m3 = np.zeros((self.n_slots, self.n_scenarios))
        ratio = np.repeat(self.grid.volume_ratio, math.prod(shape[1:]))
        for scenario, scenario_entries in enumerate(nonzero):
            for slot, (cells, weights_m3) in enumerate(scenario_entries):
                self.totals_m3[slot, scenario] = (weights_m3 * ratio[cells]).sum()

    def _init_powers(self) -> None:
        """Fill the constant source powers and list the sources whose power varies."""
        self.constant_powers_W = np.zeros((self.n_slots, self.n_scenarios))
        self.varying: list[tuple[int, int, Callable[[float], float]]] = []
        for scenario, sources in enumerate(self.sources):
            for slot, source in enumerate(sources):
                if isinstance(source.power_W, Constant):
                    self.constant_powers_W[slot, scenario] = source.power_W.value
                else:
                    self.varying.append((slot, scenario, source.power_W))

    def powers_W(self, start_s: float, end_s: float) -> np.ndarray:
        """Return each source slot's mean power over a step [W], (n_slots, B)."""
        powers = self.constant_powers_W.copy()
        for slot, scenario, power_W in self.varying:
            powers[slot, scenario] = mean_over(power_W, start_s, end_s)
        return powers

    def advance(self, dt_s: float, powers_W: np.ndarray) -> None:
        """Take one Douglas step of ``dt_s`` [s] for every scenario."""
        g = self.grid
        factors = g.factors(dt_s)
        if self.scattered is None or not np.array_equal(powers_W, self.scattered):
            kernels.scatter_sources(self.q, *self.entries, powers_W)
            self.scattered = powers_W
            self.power_in_W = g.volume_m3 * _sum_rows(powers_W * self.totals_m3)

        with _LAUNCH, _threads(self.threads):
            self._step_xy(factors)
            if g.shape[0] > 1:
                kernels.sweep_z(
                    self.rise,
                    self.stage,
                    factors.d,
                    g.kernel_faces,
                    factors.z_inverse,
                    factors.z_ratio,
                    self.flush,
                )
            else:
                self.rise, self.stage = self.stage, self.rise

        # Sums run in a fixed order, so that a scenario's books do not depend
        # on the batch it was simulated in.
        self.energy_in_J += dt_s * self.power_in_W
        lost = self.lost * self.row_ratio[:, None]
        self.energy_lost_J += dt_s * g.volume_m3 * _sum_rows(lost)

    def _step_xy(self, factors: Factors) -> None:
        """Take the x and y stages of a step from ``rise`` into ``stage``."""
        g = self.grid
        if factors.y_inverse is None or factors.y_ratio is None:
            empty = np.zeros((0, 0, 0), dtype=g.dtype)
            y_factors = (empty, empty)
            if self.y_scratch is None:
                self.y_scratch = buffers.take(self.rise.shape, g.dtype, zero=False)
            scratch = self.y_scratch
        else:
            y_factors = (factors.y_inverse, factors.y_ratio)
            scratch = np.zeros((0, 0, 0, 0), dtype=g.dtype)

        kernels.step_xy(
            self.rise,
            self.stage,
            (self.source_row, self.q),
            g.kernel_steady,
            factors.d,
            g.kernel_faces,
            (factors.x_inverse, factors.x_ratio),
            y_factors,
            scratch,
            g.kernel_loss,
            g.excess0_K,
            g.kernel_ambient_K,
            self.lost,
            self.blocks,
            self.flush,
        )

    @contextlib.contextmanager
    def startup_arithmetic(self) -> Iterator[None]:
        """Keep subnormal numbers out of the steps taken inside the block.

        A float64 state steps as it is. A float32 state flushes subnormal
        numbers to 0 where ``FLOAT32_STARTUP`` is true, and otherwise steps
        in float64 (:meth:`float64_steps`).
        """
        if self.grid.dtype is np.float64:
            yield
        elif FLOAT32_STARTUP:
            self.flush = True
            try:
                yield
            finally:
                self.flush = False
        else:
            with self.float64_steps():
                yield

    @contextlib.contextmanager
    def float64_steps(self) -> Iterator[None]:
        """Step in float64 inside the block, on ``startup_grid``.

        The rise is cast to float64 on entry and back to the state's type on
        exit. The sources are scattered again at the next step.
        """
        if self.startup_grid is self.grid:
            yield
            return

        narrow = (self.grid, self.rise, self.stage, self.q, self.lost, self.y_scratch)
        self.grid = self.startup_grid
        # Pooled arrays, because a fresh one faults in each page it writes.
        # At 128 x 128 cells and 64 float32 scenarios this cut the first step
        # from 79 to 58 ms on a shared 2-core machine (docs/benchmarks.md).
        self.rise = buffers.take(narrow[1].shape, np.float64, zero=False)
        self.rise[...] = narrow[1]
        self.stage = buffers.take(self.rise.shape, np.float64, zero=False)
        self.q = narrow[3].astype(np.float64)
        self.lost = buffers.take(narrow[4].shape, np.float64, zero=False)
        # _step_xy takes a scratch array where the y lines need one.
        self.y_scratch = None
        try:
            yield
        finally:
            wide = (self.rise, self.stage, self.lost, self.y_scratch)
            self.grid, self.rise, self.stage, self.q, self.lost, self.y_scratch = narrow
            # A diverged step overflows float32 here, and the caller's
            # finiteness check reports it.
            kernels.narrow_flushed(wide[0], self.rise, FLUSH_BELOW_K)
            buffers.give(*wide)
            self.scattered = None

    def release(self) -> None:
        """Return the work arrays to the pool, after which the state must not step."""
        buffers.give(self.rise, self.stage, self.lost, self.y_scratch)
        self.y_scratch = None

    def results(self, outputs: np.ndarray, recorded: np.ndarray) -> list[HeatResult]:
        """Pack the recorded rises and energy balance of each scenario."""
        g = self.grid
        capacity = g.capacity_J_m3K * g.volume_ratio[:, None, None]
        stored = kernels.stored_energy(self.rise, capacity)
        stored = stored * self.grid.volume_m3
        stored[~self.alive] = np.nan
        surface = recorded[:, :, 0]
        if self.grid.shape[0] > 1:
            surface = surface.copy()
        return [
            HeatResult(
                times_s=outputs.copy(),
                rise_K=surface[scenario],
                rise_all_K=recorded[scenario],
                energy_in_J=float(self.energy_in_J[scenario]),
                energy_stored_J=float(stored[scenario]),
                energy_lost_J=float(self.energy_lost_J[scenario]),
            )
            for scenario in range(self.n_scenarios)
        ]


def _source_entries(
    nonzero: list[_Entries],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the non-zero source weights as (cells, scenarios, slots, weights).

    ``nonzero`` is the output of :func:`_check_batch`. ``cells`` are flat
    indices into (n_layers, ny, nx) and ``weights`` are in [m-3], ordered by
    scenario, then slot, as :func:`kernels.scatter_sources` requires.
    """
    owners = [
        (scenario, slot)
        for scenario, entries in enumerate(nonzero)
        for slot in range(len(entries))
    ]
    if not owners:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0)

    parts = [entry for entries in nonzero for entry in entries]
    counts = [cells.size for cells, _ in parts]
    repeated = np.repeat(np.array(owners, dtype=np.int64), counts, axis=0)
    scenarios = np.ascontiguousarray(repeated[:, 0])
    slots = np.ascontiguousarray(repeated[:, 1])
    cells = np.concatenate([cells for cells, _ in parts])
    weights = np.concatenate([weights for _, weights in parts])
    return cells, scenarios, slots, weights


@functools.cache
def _scenario_blocks(
    n_scenarios: int, n_layers: int, threads: int, itemsize: int
) -> np.ndarray:
    """Return the bounds of the scenario blocks that threads step separately.

    Each layer is cut into blocks, as many as give every thread a task while
    every block but the last is a whole number of 64-byte cache lines of
    scenarios (8 in float64, 16 in float32). Threads then write separate
    cache lines of a row wherever the array starts on a line.
    """
    lanes = 64 // itemsize
    per_layer = -(-threads // n_layers)
    n_blocks = max(1, min(per_layer, n_scenarios // lanes))
    half = n_blocks * lanes
    inner = [
        lanes * ((2 * k * n_scenarios + half) // (2 * half)) for k in range(n_blocks)
    ]
    bounds = np.array([*inner, n_scenarios], dtype=np.uint64)
    bounds.flags.writeable = False
    return bounds


def _num_threads() -> int:
    """Return numba's thread count, first asking for a fork-safe threading layer.

    numba starts its threading layer at the first thread count it is asked
    for. On Linux it picks GNU OpenMP where TBB is missing, and a child
    forked from a process that used GNU OpenMP (a torch DataLoader worker)
    is killed at its first parallel loop. So unless the user chose a layer
    (``NUMBA_THREADING_LAYER``), ask for one that survives fork: TBB where
    installed, else numba's workqueue, whose launches ``_LAUNCH`` serialises.
    """
    # numba.config sets its attributes from the environment at import.
    if getattr(numba.config, "THREADING_LAYER", "default") == "default":
        numba.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]
    return numba.get_num_threads()


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run numba's parallel loops of this thread on ``n`` threads."""
    previous = _num_threads()
    if n == previous:
        yield
        return
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _sum_rows(values: np.ndarray) -> np.ndarray:
    """Return the float64 sum over the first axis, each column summed as its own
    array."""
    return np.ascontiguousarray(values.T, dtype=np.float64).sum(axis=1)


def _run(
    state: _State,
    step_ends: np.ndarray,
    outputs: np.ndarray,
    startups: np.ndarray,
    failures: _FailureLog,
    progress: Callable[[int, int], None] | None,
) -> list[HeatResult]:
    """Step a batch that starts up at the same steps (``startups``)."""
    shape = state.grid.shape
    # copy_scenarios fills every output after t = 0.
    recorded = np.empty((state.n_scenarios, outputs.size, *shape))
    recorded[:, outputs == 0] = 0.0

    started = time.perf_counter()
    t_prev = 0.0
    for step, t_end in enumerate(step_ends):
        t_end = float(t_end)
        # As in the implicit Euler step, the step's mean source power stays
        # constant over all its sub-steps.
        powers_W = state.powers_W(t_prev, t_end)
        n_sub = state.grid.substeps(t_end - t_prev)
        dt_s = (t_end - t_prev) / n_sub
        if startups[step]:
            _start_up(state, dt_s, powers_W)
            n_sub -= 1
        for _ in range(n_sub):
            state.advance(dt_s, powers_W)
        # Output k is recorded after every step whose end is within 1e-9 t of it.
        hit = np.flatnonzero(np.abs(outputs - t_end) <= 1e-9 * t_end)
        if hit.size or step == step_ends.size - 1:
            _check_state(state, t_end, failures)
        for index in hit:
            kernels.copy_scenarios(state.rise, recorded, int(index), state.alive)
        t_prev = t_end
        if progress is not None:
            progress(step + 1, step_ends.size)

    logger.debug(
        "simulate_adi_batch: grid %s, %d scenarios in %s, %.3f ms per step, "
        "%d sub-steps per step of %g s",
        shape,
        state.n_scenarios,
        np.dtype(state.grid.dtype).name,
        1e3 * (time.perf_counter() - started) / max(step_ends.size, 1),
        state.grid.substeps(float(step_ends[0])),
        float(step_ends[0]),
    )
    return state.results(outputs, recorded)


def _start_up(state: _State, dt_s: float, powers_W: np.ndarray) -> None:
    """Take a sub-step of ``dt_s`` [s] as start-up sub-steps that double in length.

    ``_run`` does this for the first sub-step of the steps that
    ``_startup_mask`` selects: the first step with power, a switch, and the
    steps of a ramp whose power has moved far from its power at the last
    start-up. ``AdiGrid.startup_steps`` sets the lengths.

    The splitting damps a mode stiff along both x and y by a factor near 1
    per step, where implicit Euler damps it almost fully. A source that
    changes power excites such modes: the fine in-plane detail of a small
    hotspot. With equal 10 s steps, the peak rise of a 2 mm, 4 W hotspot
    on the one-layer demo pouch was 57.7 % low at 10 s, 7 times the LU
    solver's error. Halving the first step 8 times brought it to 3.9 % low,
    against 8.1 % for LU. Short first sub-steps bring these modes to their
    balance with the new power, and longer steps keep them there, because
    the scheme's fixed point is the implicit Euler steady state. Taking
    such a step with the LU solver instead would need its factorisation as
    well as ADI's. Which steps start up depends only on a scenario's own
    sources (``_startup_mask``), so batching does not change its result.

    In float32 the short steps leave subnormal values far from the source,
    which made each start-up sub-step about 25 times slower than a whole
    step on a 64 x 64 plate. So float32 sub-steps flush subnormal numbers
    to 0 (``FLOAT32_STARTUP``), or else run in float64. Either way rises
    below ``FLUSH_BELOW_K`` become 0.
    """
    with state.startup_arithmetic():
        for length_s in state.grid.startup_steps(dt_s):
            state.advance(length_s, powers_W)


def _check_state(state: _State, t_s: float, failures: _FailureLog) -> None:
    """Stop scenarios whose temperature is non-finite or below absolute zero."""
    status = kernels.check_scenarios(state.rise, state.grid.initial_K)
    for scenario in np.flatnonzero(state.alive & (status != 0)):
        problem = "non-finite" if status[scenario] == 1 else "below absolute zero"
        # The index counts the solver's own batch, so a batch of one omits it.
        batch = ""
        if state.batch_size > 1:
            batch = f"batch scenario {state.ids[scenario]}: "
        failures.report(
            f"ADI heat solver: {batch}temperature became {problem} "
            f"at t = {t_s:g} s; check source powers and material properties",
            fatal=True,
        )
        state.alive[scenario] = False
