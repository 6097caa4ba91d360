"""Heat equation of :mod:`thermosynth.physics.heat` with a reused sparse LU.

The reference solver builds a FiPy equation and solves it step by step. This
module assembles the same linear system directly with :mod:`scipy.sparse`. It
uses cell-centred finite volumes and implicit Euler. The face conductivity is
the harmonic mean of the conductivity along the face normal. Convective and
linearised radiative loss are implicit sources on the top and bottom layers,
and held patches are penalty terms. Per unit volume, one step solves

    (rho_cp / dt + K + g + p) r = rho_cp / dt r_old + g (T_a - T_0) + f_0 + q
                                  + p (T_held - T_0)

for the rise ``r`` over the initial state ``T_0``, where ``K`` is the
conduction matrix and ``f_0`` the heat conducted by ``T_0``.

The matrix depends on the step length, on the set of held cells and, through
radiation, on the previous temperature. Each (step length, held cells) pair
is factorised once with :func:`scipy.sparse.linalg.splu`, with the loss
coefficient ``g`` of the state at that moment. When radiation has since moved
``g``, each step corrects for the difference by iterative refinement against
the exact matrix of the step, so that every step meets the reference's
residual criterion. A fresh factorisation replaces the old one when the drift
in ``g`` exceeds ``_REFACTOR_DRIFT`` or refinement fails to converge.

:func:`simulate_batch` advances several scenarios on the same layout with one
factorisation and an (n_cells, n_scenarios) right-hand side.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layout

# The fast solver shares validation, time stepping, the failure policy and the
# solver constants with the reference, so that both take the same steps.
from thermosynth.physics.grid import conduction_matrix, layer_dz_m, layer_volume_ratio
from thermosynth.physics.heat import (
    _MAX_REFINEMENTS,
    _PENALTY_FACTOR,
    _SOLVER_TOLERANCE,
    ZERO_C_IN_K,
    Boundary,
    FailurePolicy,
    HeatResult,
    STEFAN_BOLTZMANN_W_m2K4,
    _check_policy,
    _check_sources,
    _check_times,
    _FailureLog,
    _initial_state,
    _output_times,
    _step_ends,
    _top_emissivity_cells,
)
from thermosynth.physics.profiles import mean_over
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    check_n_layers,
)

logger = logging.getLogger(__name__)

# A factorisation is replaced when the loss coefficient g of the current state
# differs from the one it was built with by more than this fraction of
# rho_cp / dt. Each refinement pass shrinks the error by about that fraction.
# In the tests and benchmarks the drift stayed below 1e-4 and a step took one
# or two passes.
_REFACTOR_DRIFT = 1e-3

# Factorisations kept per run, one per distinct step length and held set.
_MAX_FACTORISATIONS = 8

Source = VolumeSource | HeldPatch

# Frozen, so one instance can serve as the default of every call.
_DEFAULT_BOUNDARY = Boundary()


def simulate_fast(
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
) -> HeatResult:
    """Simulate the temperature rise of one scenario with a reused sparse LU.

    Takes the same arguments and returns the same result as
    :func:`thermosynth.physics.heat.simulate`, and takes the same steps.

    Parameters
    ----------
    layout : Layout
        Grid, materials and thickness.
    sources : sequence of VolumeSource or HeldPatch
        Heat sources and held patches, built for the same ``n_layers``.
    boundary : Boundary
        Convection and radiation of the top and bottom faces.
    n_layers : int
        Number of through-thickness layers, 1 or more.
    duration_s : float
        Simulated time [s].
    dt_s : float
        Implicit Euler time step [s], shortened where needed to end exactly
        on each output time and on ``duration_s``.
    output_times_s : sequence of float, optional
        Times to record, in 0..``duration_s`` [s]; ``[duration_s]`` by
        default.
    initial_C : float or ndarray, optional
        Initial temperature [C]: a number, an (ny, nx) array or an
        (n_layers, ny, nx) array. Ambient by default.
    on_failure : {"raise", "warn"}
        Policy for a linear solve that does not converge or a temperature
        that is non-finite or below absolute zero, as in ``simulate``.
    progress : callable, optional
        Called as ``progress(step, n_steps)`` after each step.

    Returns
    -------
    HeatResult

    Raises
    ------
    RecipeError
        If a time, ``n_layers``, ``initial_C`` or ``on_failure`` is invalid.
    LayoutError
        If a source's array shape differs from (n_layers, ny, nx).
    SimulationError
        If the solution fails and ``on_failure == "raise"``.

    Examples
    --------
    >>> from thermosynth.geometry.layout import Layout, Material
    >>> from thermosynth.physics.sources import hotspot
    >>> steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    >>> grid = np.zeros((8, 8), dtype=int)
    >>> layout = Layout(1.0, 1.0, 1.0, grid, (steel,), grid - 1)
    >>> source = hotspot(layout, x_mm=4, y_mm=4, radius_mm=1, power_W=0.1)
    >>> result = simulate_fast(layout, [source], duration_s=1.0, dt_s=0.1)
    >>> result.rise_K.shape
    (1, 8, 8)
    >>> bool(abs(result.energy_in_J - 0.1) < 1e-12)
    True
    """
    results = simulate_batch(
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
    )
    return results[0]


def simulate_batch(
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
) -> list[HeatResult]:
    """Simulate several scenarios on one layout together.

    Each scenario is one list of sources. All scenarios share the layout,
    boundary, times and initial state, so one factorisation serves them all
    and each step solves one (n_cells, n_scenarios) right-hand side. Result
    ``i`` equals ``simulate_fast(layout, batch[i], ...)`` to round-off.

    Parameters
    ----------
    layout : Layout
        Grid, materials and thickness.
    batch : sequence of sequences of VolumeSource or HeldPatch
        The sources of each scenario, built for the same ``n_layers``.
    boundary, n_layers, duration_s, dt_s, output_times_s, initial_C, on_failure
        As in :func:`simulate_fast`, shared by all scenarios. A fatal failure
        under ``"warn"`` stops only the scenario it occurs in.
    progress : callable, optional
        Called as ``progress(step, n_steps)`` after each step.

    Returns
    -------
    list of HeatResult
        One result per scenario, in the order of ``batch``.

    Raises
    ------
    RecipeError
        If ``batch`` is empty, or as in :func:`simulate_fast`.
    LayoutError
        If a source's array shape differs from (n_layers, ny, nx).
    SimulationError
        If a solution fails and ``on_failure == "raise"``.
    """
    _check_times(duration_s, dt_s)
    check_n_layers(n_layers, layout)
    outputs = _output_times(output_times_s, duration_s)
    _check_policy(on_failure)
    _check_batch(batch, (n_layers, *layout.shape))
    initial = _initial_state(initial_C, boundary.ambient_C, layout, n_layers)

    system = _System(layout, boundary, initial, dt_s)
    state = _BatchState(system, batch)
    step_ends = _step_ends(duration_s, dt_s, outputs)
    return _run(system, state, step_ends, outputs, _FailureLog(on_failure), progress)


def _check_batch(batch: Sequence[Sequence[Source]], shape: tuple[int, ...]) -> None:
    if len(batch) == 0:
        raise RecipeError(
            "simulate_batch: batch is empty; give one list of sources per scenario"
        )

    for sources in batch:
        _check_sources(sources, shape)


def _run(
    system: _System,
    state: _BatchState,
    step_ends: np.ndarray,
    outputs: np.ndarray,
    failures: _FailureLog,
    progress: Callable[[int, int], None] | None,
) -> list[HeatResult]:
    recorded = np.full((state.n_scenarios, outputs.size, system.n_cells), np.nan)
    recorded[:, outputs == 0] = 0.0
    logger.debug(
        "simulate_batch: grid %s, %d scenarios, %d steps",
        system.shape,
        state.n_scenarios,
        step_ends.size,
    )

    started = time.perf_counter()
    t_prev = 0.0
    for step, t_end in enumerate(step_ends):
        state.advance(t_prev, float(t_end), failures)
        if not state.alive.any():
            break

        hit = np.isclose(outputs, t_end, rtol=0, atol=1e-9 * t_end)
        alive = np.flatnonzero(state.alive)
        recorded[np.ix_(alive, np.flatnonzero(hit))] = state.rise[:, alive].T[:, None]
        t_prev = float(t_end)
        if progress is not None:
            progress(step + 1, step_ends.size)

    elapsed_ms = 1e3 * (time.perf_counter() - started)
    logger.debug(
        "simulate_batch: %.2f ms per step, %d factorisations",
        elapsed_ms / max(step_ends.size, 1),
        system.factorisations,
    )
    failures.summarise()
    return state.results(outputs, recorded)


class _System:
    """Matrices of one layout, boundary and initial state, and their LU cache."""

    def __init__(
        self, layout: Layout, boundary: Boundary, initial_C: np.ndarray, dt_s: float
    ) -> None:
        self.shape = initial_C.shape
        self.n_cells = initial_C.size
        self.boundary = boundary
        self.initial_C = initial_C.ravel()
        n_layers = self.shape[0]
        per_layer = self.n_cells // n_layers
        # A cell's volume is volume_m3 times its volume_ratio, which is
        # exactly 1 without a stack.
        self.volume_m3 = cell_volume_m3(layout, n_layers)
        self.volume_ratio = np.repeat(layer_volume_ratio(layout, n_layers), per_layer)
        dz_m = layer_dz_m(layout, n_layers)
        self.dz_m = np.repeat(dz_m, per_layer)

        rho_cp = layout.layer_property_map("rho_cp_J_m3K", n_layers)
        self.rho_cp = rho_cp.ravel().astype(float)
        spacing_m = (layout.dx_mm * 1e-3, layout.dy_mm * 1e-3, float(dz_m.min()))
        self.conduction = conduction_matrix(layout, self.shape)
        k_face_max = _max_conductivity(layout, self.shape)
        self.initial_flow = -(self.conduction @ self.initial_C)
        self.penalty = _penalty_coefficient(self.rho_cp, k_face_max, spacing_m, dt_s)

        layer = np.repeat(np.arange(n_layers), per_layer)
        self.top = layer == 0
        self.bottom = layer == self.shape[0] - 1
        self.radiative = boundary.radiates
        # One number, or one value per cell as a column against T's (N, B).
        emissivity = _top_emissivity_cells(boundary, self.shape)
        if isinstance(emissivity, np.ndarray):
            emissivity = emissivity[:, None]
        self.emissivity_top = emissivity

        self.cache: dict[tuple[float, bytes], _Factor] = {}
        self.factorisations = 0

    def loss_coefficient(self, T: np.ndarray) -> np.ndarray:
        """Return g = (h + h_rad) / dz [W m-3 K-1] for T [C] of shape (N, B)."""
        b = self.boundary
        T_K = T + ZERO_C_IN_K
        Ta_K = b.ambient_C + ZERO_C_IN_K
        radiative = STEFAN_BOLTZMANN_W_m2K4 * (T_K**2 + Ta_K**2) * (T_K + Ta_K)

        top = b.h_top_W_m2K + self.emissivity_top * radiative
        bottom = b.h_bottom_W_m2K + b.emissivity_bottom * radiative
        faces = self.top[:, None] * top + self.bottom[:, None] * bottom
        return faces / self.dz_m[:, None]

    def factor(self, dt: float, held: np.ndarray, key: bytes, g: np.ndarray) -> _Factor:
        """Return the LU of the step matrix, refactorised when ``g`` drifted.

        Step lengths are compared to 12 significant digits, because ``k dt``
        minus ``(k - 1) dt`` differs from ``dt`` in the last bits. A cached
        LU solves a step whose length differs by that round-off.
        """
        dt = float(f"{dt:.12g}")
        cached = self.cache.get((dt, key))
        if cached is not None and cached.drift(g) <= _REFACTOR_DRIFT:
            return cached

        if len(self.cache) >= _MAX_FACTORISATIONS:
            self.cache.pop(next(iter(self.cache)))

        made = self.factorise(dt, held, g.mean(axis=1))
        self.cache[(dt, key)] = made
        return made

    def factorise(self, dt: float, held: np.ndarray, g_ref: np.ndarray) -> _Factor:
        """Factorise the step matrix with the loss coefficient ``g_ref``."""
        base = self.rho_cp / dt + self.penalty * held
        matrix = self.conduction + sp.diags(base + g_ref)
        self.factorisations += 1
        lu = splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A")
        return _Factor(lu, base, g_ref, float(self.rho_cp.min()) / dt)


class _Factor:
    """One LU factorisation, the diagonal it was built with and its solves."""

    def __init__(
        self, lu: Any, base: np.ndarray, g_ref: np.ndarray, scale: float
    ) -> None:
        self.lu = lu
        self.base = base
        self.g_ref = g_ref
        self.scale = scale
        self.fresh = True

    def drift(self, g: np.ndarray) -> float:
        """Return max |g - g_ref| as a fraction of min(rho_cp) / dt."""
        return float(np.abs(g - self.g_ref[:, None]).max()) / self.scale

    def solve(
        self,
        conduction: sp.csr_matrix,
        g: np.ndarray,
        rhs: np.ndarray,
        guess: np.ndarray,
        *,
        exact: bool,
    ) -> tuple[np.ndarray, float]:
        """Solve the step with loss ``g`` and return the worst relative residual.

        With ``exact`` true, ``g`` equals ``g_ref``, so only the first solve
        of this factorisation is checked. Residual and right-hand side are
        divided by the matrix diagonal before their norms are taken. Unscaled,
        the penalty rows of held cells dominate both norms, and a residual
        that passes can hide errors of 0.01 K in free cells.

        The first solve moves the drift in ``g`` to the right-hand side with
        ``guess``, the rise extrapolated from the last two steps, so that
        refinement starts from the error of that extrapolation rather than of
        the whole rise.
        """
        if exact:
            x = self.lu.solve(rhs)
            if not self.fresh:
                return x, 0.0
        else:
            x = self.lu.solve(rhs - (g - self.g_ref[:, None]) * guess)

        self.fresh = False
        diagonal = self.base[:, None] + g
        scale = 1.0 / (diagonal + conduction.diagonal()[:, None])
        rhs_norm = np.linalg.norm(rhs * scale, axis=0)
        rhs_norm = np.maximum(rhs_norm, np.finfo(float).tiny)
        for _ in range(_MAX_REFINEMENTS + 1):
            residual = rhs - conduction @ x - diagonal * x
            relative = np.linalg.norm(residual * scale, axis=0) / rhs_norm
            worst = _worst_finite(relative)
            if not worst > _SOLVER_TOLERANCE:
                break
            x += self.lu.solve(residual)
        return x, worst


class _BatchState:
    """Rise, sources and energy books of each scenario of a batch."""

    def __init__(self, system: _System, batch: Sequence[Sequence[Source]]) -> None:
        self.system = system
        self.n_scenarios = len(batch)
        self.rise = np.zeros((system.n_cells, self.n_scenarios))
        self.change = np.zeros_like(self.rise)
        self.alive = np.ones(self.n_scenarios, dtype=bool)

        self.volume_sources = [
            [s for s in sources if isinstance(s, VolumeSource)] for sources in batch
        ]
        self.held = [
            [s for s in sources if isinstance(s, HeldPatch)] for sources in batch
        ]
        self.weights = _weight_matrix(self.volume_sources, system.n_cells)
        self.held_keys = {
            id(p): _mask_digest(p.mask) for patches in self.held for p in patches
        }

        self.energy_in_J = np.zeros(self.n_scenarios)
        self.energy_lost_J = np.zeros(self.n_scenarios)

    def advance(self, t_start: float, t_end: float, failures: _FailureLog) -> None:
        """Take one implicit Euler step of every live scenario [s]."""
        dt = t_end - t_start
        source_W_m3 = self._source_density(t_start, t_end)
        held_set = self._held_temperatures(t_end)

        for key, columns in self._groups(held_set).items():
            self._advance_group(
                dt, t_end, columns, key, source_W_m3, held_set, failures
            )

    def _advance_group(
        self,
        dt: float,
        t_end: float,
        columns: np.ndarray,
        key: bytes,
        source_W_m3: np.ndarray,
        held_set: np.ndarray,
        failures: _FailureLog,
    ) -> None:
        system = self.system
        held_set = held_set[:, columns]
        held = np.isfinite(held_set[:, 0])
        T0 = system.initial_C[:, None]
        loss = system.loss_coefficient(T0 + self.rise[:, columns])

        rhs = (system.rho_cp / dt)[:, None] * self.rise[:, columns]
        rhs += loss * (system.boundary.ambient_C - T0) + system.initial_flow[:, None]
        rhs += source_W_m3[:, columns]
        rhs[held] += system.penalty * (held_set[held] - T0[held])

        factor = system.factor(dt, held, key, loss)
        exact = not system.radiative
        old = self.rise[:, columns]
        guess = old + self.change[:, columns]
        new, residual = factor.solve(system.conduction, loss, rhs, guess, exact=exact)
        if not residual <= _SOLVER_TOLERANCE:
            factor = system.factorise(dt, held, loss.mean(axis=1))
            system.cache[(float(f"{dt:.12g}"), key)] = factor
            new, residual = factor.solve(
                system.conduction, loss, rhs, guess, exact=False
            )

        self.change[:, columns] = new - old
        self.rise[:, columns] = new
        self._check(t_end, columns, residual, failures)
        self._book_energy(dt, columns, loss, held, old, source_W_m3)

    def _source_density(self, t_start: float, t_end: float) -> np.ndarray:
        """Return each scenario's mean heat density over a step [W m-3], (N, B)."""
        powers = np.zeros((self.weights.shape[1], self.n_scenarios))
        index = 0
        for scenario, sources in enumerate(self.volume_sources):
            for source in sources:
                powers[index, scenario] = mean_over(source.power_W, t_start, t_end)
                index += 1
        return np.asarray(self.weights @ powers)

    def _held_temperatures(self, t: float) -> np.ndarray:
        """Return the held temperature per cell [C], NaN where free, (N, B)."""
        held_set = np.full((self.system.n_cells, self.n_scenarios), np.nan)
        for scenario, patches in enumerate(self.held):
            for patch in patches:
                held_set[patch.mask.ravel(), scenario] = patch.temperature_C(t)
        return held_set

    def _groups(self, held_set: np.ndarray) -> dict[bytes, np.ndarray]:
        """Group the live scenarios by their set of held cells."""
        groups: dict[bytes, list[int]] = {}
        for scenario in np.flatnonzero(self.alive):
            key = self._held_key(int(scenario), held_set[:, scenario])
            groups.setdefault(key, []).append(int(scenario))
        return {key: np.array(columns) for key, columns in groups.items()}

    def _held_key(self, scenario: int, held_set: np.ndarray) -> bytes:
        """Return a key for the cells held in one scenario."""
        patches = self.held[scenario]
        if all(np.isfinite(held_set[p.mask.ravel()]).all() for p in patches):
            return b"".join(sorted(self.held_keys[id(p)] for p in patches))

        # A profile that returned NaN frees its cells, so key the cells still held.
        return _mask_digest(np.isfinite(held_set))

    def _check(
        self,
        t: float,
        columns: np.ndarray,
        residual: float,
        failures: _FailureLog,
    ) -> None:
        if not residual <= _SOLVER_TOLERANCE:
            failures.report(
                f"fast heat solver: linear solve did not converge at t = {t:g} s "
                f"(relative residual {residual:.3g} > {_SOLVER_TOLERANCE:g}); "
                "check material properties and reduce dt_s",
                fatal=False,
            )

        T = self.system.initial_C[:, None] + self.rise[:, columns]
        for column, scenario in enumerate(columns):
            self._check_scenario(t, int(scenario), T[:, column], failures)

    def _check_scenario(
        self, t: float, scenario: int, T: np.ndarray, failures: _FailureLog
    ) -> None:
        if not np.all(np.isfinite(T)):
            message = "temperature became non-finite"
            fix = "check source powers and material properties"
        elif T.min() < -ZERO_C_IN_K:
            message = f"temperature fell to {T.min():.6g} C, below absolute zero,"
            fix = "check the boundary and sources"
        else:
            return

        failures.report(
            f"fast heat solver: scenario {scenario}: {message} at t = {t:g} s; {fix}",
            fatal=True,
        )
        self.alive[scenario] = False

    def _book_energy(
        self,
        dt: float,
        columns: np.ndarray,
        loss: np.ndarray,
        held: np.ndarray,
        old: np.ndarray,
        source_W_m3: np.ndarray,
    ) -> None:
        system = self.system
        ratio = system.volume_ratio[:, None]
        new = self.rise[:, columns]
        T = system.initial_C[:, None] + new
        source = source_W_m3[:, columns]
        loss_W_m3 = loss * (T - system.boundary.ambient_C)
        held_W_m3 = np.zeros(len(columns))
        if held.any():
            # What held cells deliver is the penalty term p (T_held - T), but
            # that difference is about 1e-8 of the rise and loses most of its
            # digits. The rest of the held cells' equation gives the same
            # power to round-off.
            balance = (system.rho_cp / dt)[:, None] * (new - old)
            balance += system.conduction @ new - system.initial_flow[:, None]
            balance += loss_W_m3 - source
            held_W_m3 = (balance * ratio)[held].sum(axis=0)

        V = system.volume_m3
        in_W_m3 = (source * ratio).sum(axis=0) + held_W_m3
        self.energy_in_J[columns] += dt * V * in_W_m3
        self.energy_lost_J[columns] += dt * V * (loss_W_m3 * ratio).sum(axis=0)

    def results(self, outputs: np.ndarray, recorded: np.ndarray) -> list[HeatResult]:
        """Pack the recorded rises and energy balance of each scenario."""
        system = self.system
        capacity = system.rho_cp * system.volume_ratio
        stored = (capacity[:, None] * self.rise).sum(axis=0) * system.volume_m3
        stored[~self.alive] = np.nan
        results = []
        for scenario in range(self.n_scenarios):
            rise_all = recorded[scenario].reshape(outputs.size, *system.shape)
            results.append(
                HeatResult(
                    times_s=outputs.copy(),
                    rise_K=rise_all[:, 0].copy(),
                    rise_all_K=rise_all,
                    energy_in_J=float(self.energy_in_J[scenario]),
                    energy_stored_J=float(stored[scenario]),
                    energy_lost_J=float(self.energy_lost_J[scenario]),
                )
            )
        return results


def _worst_finite(relative: np.ndarray) -> float:
    """Return the largest finite residual, because non-finite states fail apart."""
    finite = relative[np.isfinite(relative)]
    return float(finite.max()) if finite.size else 0.0


def _max_conductivity(layout: Layout, shape: tuple[int, ...]) -> float:
    """Return the largest face conductivity of the grid [W m-1 K-1].

    Counts boundary faces, as FiPy's does: a single-layer grid is 2D and has
    no faces normal to z.
    """
    keys = ("k_z_W_mK", "k_y_W_mK", "k_x_W_mK")
    n_axes = 3 if shape[0] > 1 else 2
    k_face_max = 0.0
    for axis in range(3 - n_axes, 3):
        k = layout.layer_property_map(keys[axis], shape[0])
        k_face_max = max(k_face_max, _max_face_k(k, axis))
    return k_face_max


def _max_face_k(k: np.ndarray, axis: int) -> float:
    """Return the largest face conductivity along one axis [W m-1 K-1]."""
    edges = max(
        float(np.take(k, 0, axis=axis).max()), float(np.take(k, -1, axis=axis).max())
    )
    if k.shape[axis] < 2:
        return edges

    first = np.take(k, range(k.shape[axis] - 1), axis=axis)
    second = np.take(k, range(1, k.shape[axis]), axis=axis)
    return max(edges, float((2.0 * first * second / (first + second)).max()))


def _penalty_coefficient(
    rho_cp: np.ndarray, k_face_max: float, spacing_m: tuple[float, ...], dt_s: float
) -> float:
    """Return the held-cell coefficient p [W m-3 K-1], as the reference sets it."""
    diagonal = float(rho_cp.max()) / dt_s + 6.0 * k_face_max / min(spacing_m) ** 2
    return _PENALTY_FACTOR * diagonal


def _weight_matrix(
    volume_sources: list[list[VolumeSource]], n_cells: int
) -> sp.csr_matrix:
    """Stack the weights of all sources of all scenarios as (N, n_sources)."""
    columns = [
        sp.csc_matrix(s.weights_m3.reshape(-1, 1))
        for sources in volume_sources
        for s in sources
    ]
    if not columns:
        return sp.csr_matrix((n_cells, 0))
    return sp.hstack(columns).tocsr()


def _mask_digest(mask: np.ndarray) -> bytes:
    """Return a short digest of a boolean mask, to key factorisations."""
    return hashlib.blake2b(np.packbits(mask.ravel()).tobytes(), digest_size=16).digest()
