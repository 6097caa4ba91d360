"""Transient heat conduction on a layered layout grid, solved with FiPy.

The plate of a :class:`~thermosynth.geometry.layout.Layout` is split into
``n_layers`` layers of equal thickness, or into the layers of the layout's
through-thickness stack. Layer 0 is the imaged top face and layer
``n_layers - 1`` the bottom face. Each step solves, with implicit Euler,

    rho_cp dT/dt = div(k grad T) + q - g (T - T_a) - p (T - T_held)

on cell-centred finite volumes in SI units. ``k`` is set per face: the
conductivity along the face normal (k_x, k_y or k_z), as the harmonic mean of
the two neighbouring cells, or their series value between stacked layers of
different thickness. ``g`` [W m-3 K-1] is the convective plus radiative loss
of the top and bottom faces divided by the outer layer's thickness, on the
top and bottom layer cells only, and ``p`` is a large penalty coefficient on
held cells. Lateral edges are insulated.

The unknown is the rise over the initial state, so that small rises keep
their precision on top of a large absolute temperature.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout
from thermosynth.physics.grid import conduction_matrix, layer_dz_m, layer_volume_ratio
from thermosynth.physics.profiles import mean_over
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    check_n_layers,
)

logger = logging.getLogger(__name__)

STEFAN_BOLTZMANN_W_m2K4 = 5.670374419e-8
ZERO_C_IN_K = 273.15

# Held cells get a penalty coefficient this many times larger than the largest
# diagonal entry of the heat equation without it. By that estimate they follow
# their set temperature to about 1e-8 of the local rise (tests check 1e-4 K).
_PENALTY_FACTOR = 1e8

# Relative residual of each linear solve, scaled by the norm of the right-hand
# side, with every row divided by its diagonal entry. With it the energy
# balance closed to about 1e-11 relative in the tests.
_SOLVER_TOLERANCE = 1e-12

# Refinement passes with a reused LU factorisation before it is replaced.
_MAX_REFINEMENTS = 6


@dataclass(frozen=True, eq=False)
class Boundary:
    """Heat exchange of the top and bottom faces with the surroundings.

    Attributes
    ----------
    ambient_C : float
        Temperature of the air and of the radiative surroundings [C].
    h_top_W_m2K, h_bottom_W_m2K : float
        Convective heat transfer coefficient of the top (imaged) and bottom
        face [W m-2 K-1]; 0 insulates the face.
    emissivity_top, emissivity_bottom : float
        Emissivity of each face for radiation to ambient, 0..1. Radiation is
        linearised with the temperature of the previous step.
    emissivity_top_map : ndarray, optional
        Emissivity of each top-face cell, float (ny, nx) in 0..1, on the
        layout's grid. Where given, it replaces ``emissivity_top`` on the
        top face. Stored as a read-only float64 copy. Boundaries compare
        equal when all values and the map's contents are equal.
    """

    ambient_C: float = 25.0
    h_top_W_m2K: float = 10.0
    h_bottom_W_m2K: float = 0.0
    emissivity_top: float = 0.0
    emissivity_bottom: float = 0.0
    emissivity_top_map: np.ndarray | None = None
    _map_digest: bytes = field(default=b"", init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ambient_C) and self.ambient_C > -ZERO_C_IN_K):
            raise RecipeError(
                f"boundary: ambient_C = {self.ambient_C} is invalid; it must be "
                "a finite temperature above absolute zero"
            )

        for key in ("h_top_W_m2K", "h_bottom_W_m2K"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise RecipeError(
                    f"boundary: {key} = {value} is invalid; it must be >= 0"
                )

        for key in ("emissivity_top", "emissivity_bottom"):
            value = getattr(self, key)
            if not (0.0 <= value <= 1.0):
                raise RecipeError(
                    f"boundary: {key} = {value} is invalid; it must be in 0..1"
                )

        if self.emissivity_top_map is not None:
            emissivity = _checked_emissivity_map(self.emissivity_top_map)
            object.__setattr__(self, "emissivity_top_map", emissivity)
            digest = hashlib.blake2b(emissivity.tobytes(), digest_size=16).digest()
            object.__setattr__(self, "_map_digest", digest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Boundary):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        shape = (
            None if self.emissivity_top_map is None else self.emissivity_top_map.shape
        )
        return (
            self.ambient_C,
            self.h_top_W_m2K,
            self.h_bottom_W_m2K,
            self.emissivity_top,
            self.emissivity_bottom,
            shape,
            self._map_digest,
        )

    @property
    def radiates(self) -> bool:
        """Whether any cell of the top or bottom face has an emissivity above 0."""
        if self.emissivity_top_map is None:
            top = self.emissivity_top > 0
        else:
            top = bool(self.emissivity_top_map.any())
        return top or self.emissivity_bottom > 0

    def top_emissivity(self, shape: tuple[int, int]) -> float | np.ndarray:
        """Return the emissivity of the top-face cells of an (ny, nx) grid.

        Returns ``emissivity_top`` without a map, else the map.

        Raises
        ------
        LayoutError
            If ``emissivity_top_map`` has a shape other than ``shape``.
        """
        if self.emissivity_top_map is None:
            return self.emissivity_top

        if self.emissivity_top_map.shape != tuple(shape):
            raise LayoutError(
                f"boundary: emissivity_top_map has shape "
                f"{self.emissivity_top_map.shape}, but the layout grid is "
                f"{tuple(shape)}; build the map on the layout's grid"
            )
        return self.emissivity_top_map


def _checked_emissivity_map(values: Any) -> np.ndarray:
    """Return a read-only float64 copy of an (ny, nx) map of emissivities in 0..1."""
    emissivity = np.array(values, dtype=np.float64)
    if emissivity.ndim != 2:
        raise RecipeError(
            f"boundary: emissivity_top_map has shape {emissivity.shape}; give "
            "one emissivity per top-face cell, an (ny, nx) array"
        )

    inside = np.isfinite(emissivity) & (emissivity >= 0.0) & (emissivity <= 1.0)
    if not inside.all():
        bad = emissivity[~inside][:5].tolist()
        raise RecipeError(
            f"boundary: emissivity_top_map contains {bad}, which is invalid; "
            "every emissivity must be in 0..1"
        )

    emissivity.flags.writeable = False
    return emissivity


@dataclass(frozen=True, eq=False)
class HeatResult:
    """Temperature rise over time and the energy balance of a simulation.

    Attributes
    ----------
    times_s : ndarray
        Output times [s], shape (n_out,).
    rise_K : ndarray
        Rise of the imaged face (layer 0) over the initial state [K],
        shape (n_out, ny, nx).
    rise_all_K : ndarray
        Rise of every layer [K], shape (n_out, n_layers, ny, nx).
    energy_in_J : float
        Heat the sources delivered, including the power that held patches
        deliver (negative where they draw heat) [J]: the sum over steps of
        each step's mean power times the step. For the built-in profiles
        this is the time integral of the power; a plain callable is taken at
        each step's end (see :func:`~thermosynth.physics.profiles.mean_over`).
    energy_stored_J : float
        ``sum(rho_cp * V * (T_end - T_0))`` [J].
    energy_lost_J : float
        Time integral of the convective and radiative loss to ambient [J].
    """

    times_s: np.ndarray
    rise_K: np.ndarray
    rise_all_K: np.ndarray
    energy_in_J: float
    energy_stored_J: float
    energy_lost_J: float


FailurePolicy = Literal["raise", "warn"]


def simulate(
    layout: Layout,
    sources: Sequence[VolumeSource | HeldPatch],
    *,
    boundary: Boundary = Boundary(),
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    output_times_s: Sequence[float] | None = None,
    initial_C: float | np.ndarray | None = None,
    on_failure: FailurePolicy = "raise",
    progress: Callable[[int, int], None] | None = None,
) -> HeatResult:
    """Simulate the temperature rise caused by sources on a layout with FiPy.

    This is the reference solver that the faster ``simulate_adi`` and
    ``simulate_fast`` are tested against; recipes use ADI by default.

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
        Implicit Euler time step [s]. Steps are shortened where needed to end
        exactly on each output time and on ``duration_s``.
    output_times_s : sequence of float, optional
        Times to record, in 0..``duration_s`` [s]; ``[duration_s]`` by
        default.
    initial_C : float or ndarray, optional
        Initial temperature [C]: a number, an (ny, nx) array for all layers,
        or an (n_layers, ny, nx) array. Ambient by default.
    on_failure : {"raise", "warn"}
        What to do when a linear solve does not converge or the temperature
        becomes non-finite or falls below absolute zero: raise
        :class:`SimulationError`, or warn. After a non-finite or negative
        absolute temperature, ``"warn"`` stops stepping and fills the
        remaining outputs with NaN. The energy figures then describe the
        failed state.
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
    >>> result = simulate(layout, [source], duration_s=1.0, dt_s=0.1)
    >>> result.rise_K.shape
    (1, 8, 8)
    >>> bool(abs(result.energy_in_J - 0.1) < 1e-12)
    True
    """
    _check_times(duration_s, dt_s)
    check_n_layers(n_layers, layout)
    outputs = _output_times(output_times_s, duration_s)
    _check_policy(on_failure)
    _check_sources(sources, (n_layers, *layout.shape))
    initial = _initial_state(initial_C, boundary.ambient_C, layout, n_layers)

    model = _HeatModel(layout, sources, boundary, initial, dt_s)
    step_ends = _step_ends(duration_s, dt_s, outputs)
    return _run(model, step_ends, outputs, on_failure, progress)


def _run(
    model: _HeatModel,
    step_ends: np.ndarray,
    outputs: np.ndarray,
    on_failure: FailurePolicy,
    progress: Callable[[int, int], None] | None,
) -> HeatResult:
    recorded = np.full((outputs.size, *model.shape), np.nan)
    recorded[outputs == 0] = 0.0
    failures = _FailureLog(on_failure)
    logger.debug("simulate: grid %s, %d steps", model.shape, step_ends.size)

    started = time.perf_counter()
    t_prev = 0.0
    for step, t_end in enumerate(step_ends):
        model.advance(t_prev, float(t_end), failures)
        if failures.stopped:
            break

        recorded[np.isclose(outputs, t_end, rtol=0, atol=1e-9 * t_end)] = model.rise
        t_prev = float(t_end)
        if progress is not None:
            progress(step + 1, step_ends.size)

    elapsed_ms = 1e3 * (time.perf_counter() - started)
    logger.debug("simulate: %.2f ms per step", elapsed_ms / max(step_ends.size, 1))
    failures.summarise()
    return model.result(outputs, recorded)


class _FailureLog:
    """Apply the ``on_failure`` policy and count repeated failures."""

    def __init__(self, policy: FailurePolicy) -> None:
        self.policy = policy
        self.count = 0
        self.stopped = False

    def report(self, message: str, *, fatal: bool) -> None:
        if self.policy == "raise":
            raise SimulationError(message)

        self.count += 1
        self.stopped = fatal
        if self.count == 1 or fatal:
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def summarise(self) -> None:
        if self.count > 1:
            warnings.warn(
                f"heat solver: {self.count} failures in total; the first was "
                "reported above",
                RuntimeWarning,
                stacklevel=3,
            )


class _HeatModel:
    """FiPy mesh, variables and equation, built once and stepped in place."""

    def __init__(
        self,
        layout: Layout,
        sources: Sequence[VolumeSource | HeldPatch],
        boundary: Boundary,
        initial_C: np.ndarray,
        dt_s: float,
    ) -> None:
        import fipy

        self.shape = initial_C.shape
        self.boundary = boundary
        self.initial_C = initial_C.ravel()
        n_layers = self.shape[0]
        per_layer = self.initial_C.size // n_layers
        # A cell's volume is volume_m3 times its volume_ratio, which is
        # exactly 1 without a stack.
        self.volume_m3 = cell_volume_m3(layout, n_layers)
        self.volume_ratio = np.repeat(layer_volume_ratio(layout, n_layers), per_layer)
        self.dz_m = np.repeat(layer_dz_m(layout, n_layers), per_layer)

        self.mesh = _make_mesh(layout, n_layers)
        rho_cp = layout.layer_property_map("rho_cp_J_m3K", n_layers)
        self.rho_cp = rho_cp.ravel().astype(float)
        k_face = _face_conductivity(self.mesh, layout, self.shape)
        self.initial_flow = _initial_flow(self.mesh, layout, k_face, initial_C)

        self.volume_sources = [s for s in sources if isinstance(s, VolumeSource)]
        self.held_patches = [s for s in sources if isinstance(s, HeldPatch)]
        self.weights = np.array([s.weights_m3.ravel() for s in self.volume_sources])
        self.penalty = self._penalty_coefficient(layout, k_face, dt_s)
        self.top, self.bottom = _face_layer_masks(self.shape)
        self.emissivity_top = _top_emissivity_cells(boundary, self.shape)

        self.rise_var = fipy.CellVariable(mesh=self.mesh, value=0.0)
        self.implicit = fipy.CellVariable(mesh=self.mesh, value=0.0)
        self.explicit = fipy.CellVariable(mesh=self.mesh, value=0.0)
        self.equation = fipy.TransientTerm(
            coeff=fipy.CellVariable(mesh=self.mesh, value=self.rho_cp)
        ) == (
            fipy.DiffusionTerm(coeff=fipy.FaceVariable(mesh=self.mesh, value=k_face))
            - fipy.ImplicitSourceTerm(coeff=self.implicit)
            + self.explicit
        )
        self.solver = _make_solver()

        self.source_W = 0.0
        self.energy_in_J = 0.0
        self.energy_lost_J = 0.0

    @property
    def rise(self) -> np.ndarray:
        """Current rise over the initial state [K], (n_layers, ny, nx)."""
        return np.asarray(self.rise_var.value).reshape(self.shape)

    def _penalty_coefficient(
        self, layout: Layout, k_face: np.ndarray, dt_s: float
    ) -> float:
        """Return the held-cell coefficient p [W m-3 K-1], 0 without patches."""
        if not self.held_patches:
            return 0.0

        d_min = min(layout.dx_mm * 1e-3, layout.dy_mm * 1e-3, self.dz_m.min())
        diagonal = (
            float(self.rho_cp.max()) / dt_s + 6.0 * float(k_face.max()) / d_min**2
        )
        return _PENALTY_FACTOR * diagonal

    def advance(self, t_start: float, t_end: float, failures: _FailureLog) -> None:
        """Take one implicit Euler step from ``t_start`` to ``t_end`` [s]."""
        dt = t_end - t_start
        loss, held_set = self._set_coefficients(t_start, t_end)
        self.equation.solve(var=self.rise_var, dt=dt, solver=self.solver)

        residual = self.solver.relative_residual
        if not residual <= _SOLVER_TOLERANCE:
            failures.report(
                f"heat solver: linear solve did not converge at t = {t_end:g} s "
                f"(relative residual {residual:.3g} > {_SOLVER_TOLERANCE:g}); "
                "check material properties and reduce dt_s",
                fatal=False,
            )

        self._check_state(t_end, failures)
        self._book_energy(dt, loss, held_set)

    def _set_coefficients(
        self, t_start: float, t: float
    ) -> tuple[np.ndarray, np.ndarray]:
        T = self.initial_C + np.asarray(self.rise_var.value)
        loss = self._loss_coefficient(T)
        implicit = loss.copy()
        explicit = loss * (self.boundary.ambient_C - self.initial_C)
        explicit += self.initial_flow

        if self.volume_sources:
            powers = np.array(
                [mean_over(s.power_W, t_start, t) for s in self.volume_sources]
            )
            heat_W_m3 = powers @ self.weights
            explicit += heat_W_m3
            heat_W_m3 = heat_W_m3 * self.volume_ratio
            self.source_W = float(heat_W_m3.sum()) * self.volume_m3

        held_set = np.full(T.shape, np.nan)
        for patch in self.held_patches:
            cells = patch.mask.ravel()
            held_set[cells] = patch.temperature_C(t)

        held_cells = np.isfinite(held_set)
        implicit[held_cells] += self.penalty
        target_rise = held_set[held_cells] - self.initial_C[held_cells]
        explicit[held_cells] += self.penalty * target_rise

        self.implicit.setValue(implicit)
        self.explicit.setValue(explicit)
        return loss, held_set

    def _loss_coefficient(self, T: np.ndarray) -> np.ndarray:
        """Return g = (h + h_rad) / dz per cell [W m-3 K-1], lagged in ``T``."""
        b = self.boundary
        T_K = T + ZERO_C_IN_K
        Ta_K = b.ambient_C + ZERO_C_IN_K
        radiative = STEFAN_BOLTZMANN_W_m2K4 * (T_K**2 + Ta_K**2) * (T_K + Ta_K)

        top = b.h_top_W_m2K + self.emissivity_top * radiative
        bottom = b.h_bottom_W_m2K + b.emissivity_bottom * radiative
        return (self.top * top + self.bottom * bottom) / self.dz_m

    def _check_state(self, t: float, failures: _FailureLog) -> None:
        T = self.initial_C + np.asarray(self.rise_var.value)
        if not np.all(np.isfinite(T)):
            failures.report(
                f"heat solver: temperature became non-finite at t = {t:g} s; "
                "check source powers and material properties",
                fatal=True,
            )
        elif T.min() < -ZERO_C_IN_K:
            failures.report(
                f"heat solver: temperature fell to {T.min():.6g} C, below "
                f"absolute zero, at t = {t:g} s; check the boundary and sources",
                fatal=True,
            )

    def _book_energy(self, dt: float, loss: np.ndarray, held_set: np.ndarray) -> None:
        T = self.initial_C + np.asarray(self.rise_var.value)
        held_cells = np.isfinite(held_set)
        ratio = self.volume_ratio
        gap_K = held_set[held_cells] - T[held_cells]
        held_W = (
            self.penalty * float((gap_K * ratio[held_cells]).sum()) * self.volume_m3
        )
        lost_W_m3 = loss * (T - self.boundary.ambient_C) * ratio
        lost_W = float(lost_W_m3.sum()) * self.volume_m3

        self.energy_in_J += dt * (self.source_W + held_W)
        self.energy_lost_J += dt * lost_W

    def result(self, outputs: np.ndarray, recorded: np.ndarray) -> HeatResult:
        """Pack the recorded rises and the energy balance."""
        stored_J_m3 = self.rho_cp * self.rise.ravel() * self.volume_ratio
        stored = float(stored_J_m3.sum()) * self.volume_m3
        logger.debug(
            "simulate: energy in %.6g J, stored %.6g J, lost %.6g J",
            self.energy_in_J,
            stored,
            self.energy_lost_J,
        )
        return HeatResult(
            times_s=outputs,
            rise_K=recorded[:, 0].copy(),
            rise_all_K=recorded,
            energy_in_J=self.energy_in_J,
            energy_stored_J=stored,
            energy_lost_J=self.energy_lost_J,
        )


def _make_mesh(layout: Layout, n_layers: int) -> Any:
    import fipy

    ny, nx = layout.shape
    dx, dy = layout.dx_mm * 1e-3, layout.dy_mm * 1e-3
    if n_layers == 1:
        return fipy.Grid2D(dx=dx, dy=dy, nx=nx, ny=ny)

    if layout.layers is None:
        dz = layout.thickness_mm * 1e-3 / n_layers
        return fipy.Grid3D(dx=dx, dy=dy, dz=dz, nx=nx, ny=ny, nz=n_layers)

    # A list of dz makes FiPy build a non-uniform grid, whose interior face
    # distances are those between cell centres.
    dz_m = layer_dz_m(layout, n_layers).tolist()
    return fipy.Grid3D(dx=dx, dy=dy, dz=dz_m, nx=nx, ny=ny, nz=n_layers)


def _tile_layers(plane: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat an (ny, nx) map over the layers, flattened in FiPy's cell order."""
    return np.broadcast_to(plane, shape).ravel().astype(float)


def _face_conductivity(mesh: Any, layout: Layout, shape: tuple[int, ...]) -> np.ndarray:
    """Return the conductivity across each face [W m-1 K-1].

    FiPy numbers cells x fastest, then y, then z, which is the C order of an
    (n_layers, ny, nx) array. On this axis-aligned grid a face's flux depends
    only on the conductivity along its normal, so a scalar per face carries
    the anisotropy. Equal spacing on both sides makes the harmonic mean exact
    for two cells in series. Between stacked layers of different thickness
    FiPy's coefficient ``k A / d``, with ``d`` the distance between the cell
    centres, gets ``k = d / (dz_1 / (2 k_1) + dz_2 / (2 k_2))``, the exact
    series value. FiPy 4.0.3 builds that coefficient in
    ``AbstractDiffusionTerm`` from ``mesh._faceAreas / mesh._cellDistances``.
    """
    keys = ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK")
    k_axis = np.array(
        [layout.layer_property_map(key, shape[0]).ravel() for key in keys]
    )

    normals = np.abs(np.asarray(mesh.faceNormals))
    axis = np.argmax(normals, axis=0)
    ids = np.ma.filled(mesh.faceCellIDs, -1)
    first = ids[0]
    second = np.where(ids[1] < 0, first, ids[1])

    k1 = k_axis[axis, first]
    k2 = k_axis[axis, second]
    k_face = 2.0 * k1 * k2 / (k1 + k2)
    if layout.layers is None:
        return k_face

    between = (axis == 2) & (ids[1] >= 0)
    dz_m = np.repeat(layer_dz_m(layout, shape[0]), shape[1] * shape[2])
    dz1, dz2 = dz_m[first[between]], dz_m[second[between]]
    k1, k2 = k1[between], k2[between]
    per_area = 1.0 / (dz1 / (2.0 * k1) + dz2 / (2.0 * k2))
    k_face[between] = per_area * np.asarray(mesh._cellDistances)[between]
    return k_face


def _initial_flow(
    mesh: Any, layout: Layout, k_face: np.ndarray, initial_C: np.ndarray
) -> np.ndarray:
    """Return the net heat conducted into each cell by ``initial_C`` [W m-3]."""
    if layout.layers is not None:
        # The shared matrix has the same face conductances as k_face.
        return -(conduction_matrix(layout, initial_C.shape) @ initial_C.ravel())

    spacing_m = (
        layout.dx_mm * 1e-3,
        layout.dy_mm * 1e-3,
        layout.thickness_mm * 1e-3 / initial_C.shape[0],
    )
    return _conduction_W_m3(mesh, k_face, spacing_m, initial_C)


def _conduction_W_m3(
    mesh: Any, k_face: np.ndarray, spacing_m: tuple[float, ...], T: np.ndarray
) -> np.ndarray:
    """Return the net heat conducted into each cell by a field ``T`` [W m-3].

    The unknown is the rise over ``T``, so a non-uniform initial state enters
    the equation through this constant term. It sums to zero over the grid.
    """
    T = T.ravel()
    flow = np.zeros_like(T)
    if np.ptp(T) == 0:
        return flow

    ids = np.ma.filled(mesh.faceCellIDs, -1)
    interior = ids[1] >= 0
    first, second = ids[0][interior], ids[1][interior]
    axis = np.argmax(np.abs(np.asarray(mesh.faceNormals)), axis=0)[interior]

    conductance = k_face[interior] / np.asarray(spacing_m)[axis] ** 2
    flux = conductance * (T[second] - T[first])
    np.add.at(flow, first, flux)
    np.add.at(flow, second, -flux)
    return flow


def _top_emissivity_cells(
    boundary: Boundary, shape: tuple[int, ...]
) -> float | np.ndarray:
    """Return the top emissivity as one number, or per cell of (n_layers, ny, nx).

    A map is repeated over the layers and flattened in C order, FiPy's cell
    order. Only its top-layer values are read, through the top-layer mask.
    """
    emissivity = boundary.top_emissivity((shape[1], shape[2]))
    if isinstance(emissivity, np.ndarray):
        return _tile_layers(emissivity, shape)
    return emissivity


def _face_layer_masks(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    top = np.zeros(shape, dtype=bool)
    bottom = np.zeros(shape, dtype=bool)
    top[0] = True
    bottom[-1] = True
    return top.ravel(), bottom.ravel()


def _make_solver() -> Any:
    """Return a FiPy solver that reuses its LU factorisation between steps."""
    from fipy.solvers.scipy.scipySolver import ScipySolver
    from scipy.sparse.linalg import splu

    class ReusedLUSolver(ScipySolver):
        """Sparse LU, refactorised only when reuse stops converging.

        The matrix of a step differs from the previous one only where the
        time step or the lagged radiation changed, so the last factorisation
        serves as a preconditioner for iterative refinement. A factorisation
        that fails to reach the tolerance in ``_MAX_REFINEMENTS`` passes is
        replaced by a fresh one.
        """

        def __init__(self) -> None:
            super().__init__(tolerance=_SOLVER_TOLERANCE, criterion="RHS")
            self.lu: Any = None
            self.relative_residual = 0.0
            self.factorisations = 0

        def _factorise(self, L: Any) -> None:
            self.lu = splu(L.tocsc(), permc_spec="MMD_AT_PLUS_A")
            self.factorisations += 1

        def _refine(self, L: Any, x: np.ndarray, b: np.ndarray) -> np.ndarray:
            # Each row is divided by its diagonal entry before the norms are
            # taken. Unscaled, the penalty rows of held cells dominate both
            # norms, and a residual that passes can hide errors of 0.1 % of
            # the peak rise in free cells after the matrix changes.
            # The residual is measured as a normwise backward error,
            # |r| / (|L| |x| + |b|), so round-off in large conduction terms
            # does not fail a solve whose right-hand side is small.
            scale = 1.0 / np.abs(L.diagonal())
            abs_L = abs(L)
            x = self.lu.solve(b)
            for _ in range(_MAX_REFINEMENTS):
                r = b - L @ x
                size = float(np.linalg.norm((abs_L @ np.abs(x) + np.abs(b)) * scale))
                size = max(size, float(np.finfo(float).tiny))
                self.relative_residual = float(np.linalg.norm(r * scale)) / size
                if not self.relative_residual > _SOLVER_TOLERANCE:
                    break
                x = x + self.lu.solve(r)
            return x

        def _solve_(self, L: Any, x: np.ndarray, b: np.ndarray) -> np.ndarray:
            try:
                return self._solve_or_raise(L, x, b)
            except RuntimeError as error:
                # SuperLU raises RuntimeError for a singular matrix, and a
                # NaN coefficient causes one. The caller reports the failure.
                logger.debug("heat solver: LU factorisation failed: %s", error)
                self.lu = None
                self.relative_residual = math.inf
                return np.full_like(x, np.nan)

        def _solve_or_raise(self, L: Any, x: np.ndarray, b: np.ndarray) -> np.ndarray:
            if self.lu is None or self.lu.shape != L.shape:
                self._factorise(L)

            x = self._refine(L, x, b)
            if not self.relative_residual <= _SOLVER_TOLERANCE:
                self._factorise(L)
                x = self._refine(L, x, b)
            return x

    return ReusedLUSolver()


def _check_times(duration_s: float, dt_s: float) -> None:
    for key, value in (("duration_s", duration_s), ("dt_s", dt_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise RecipeError(
                f"{key} = {value!r} is invalid; it must be a positive time in s"
            )


def _output_times(times: Sequence[float] | None, duration_s: float) -> np.ndarray:
    if times is None:
        return np.array([float(duration_s)])

    outputs = np.asarray(times, dtype=float).ravel()
    bad = outputs[~((outputs >= 0) & (outputs <= duration_s))]
    if bad.size:
        raise RecipeError(
            f"output_times_s {bad.tolist()} lie outside 0..{duration_s} s; "
            "give times within the simulated duration"
        )
    return outputs


def _step_ends(duration_s: float, dt_s: float, outputs: np.ndarray) -> np.ndarray:
    """Return the end time of each step: multiples of dt plus output times [s].

    A multiple of dt closer than 1e-6 dt to an output time or to the duration
    is dropped, so that round-off in ``k * dt`` never makes a sliver step.
    """
    exact = np.unique(np.append(outputs[outputs > 0], duration_s))
    n_regular = int(math.floor(duration_s / dt_s * (1 + 1e-12)))
    regular = dt_s * np.arange(1, n_regular + 1)

    right = np.minimum(np.searchsorted(exact, regular), exact.size - 1)
    left = np.maximum(right - 1, 0)
    gap = np.minimum(np.abs(exact[right] - regular), np.abs(exact[left] - regular))
    return np.sort(np.concatenate([exact, regular[gap > 1e-6 * dt_s]]))


def _check_policy(on_failure: str) -> None:
    if on_failure not in ("raise", "warn"):
        raise RecipeError(
            f"on_failure = {on_failure!r} is invalid; give 'raise' or 'warn'"
        )


def _check_sources(sources: Sequence[Any], shape: tuple[int, ...]) -> None:
    for index, source in enumerate(sources):
        if isinstance(source, VolumeSource):
            array, key = np.asarray(source.weights_m3), "weights_m3"
        elif isinstance(source, HeldPatch):
            array, key = np.asarray(source.mask), "mask"
        else:
            raise RecipeError(
                f"sources[{index}] is a {type(source).__name__}; give "
                "VolumeSource or HeldPatch objects"
            )

        if array.shape != shape:
            raise LayoutError(
                f"source {source.name!r}: {key} shape {array.shape} differs "
                f"from (n_layers, ny, nx) = {shape}; build it with the same "
                "layout and n_layers"
            )

        if key == "weights_m3" and not (
            np.all(np.isfinite(array)) and array.min() >= 0
        ):
            raise LayoutError(
                f"source {source.name!r}: weights_m3 must be finite and >= 0"
            )


def _initial_state(
    initial_C: float | np.ndarray | None,
    ambient_C: float,
    layout: Layout,
    n_layers: int,
) -> np.ndarray:
    shape = (n_layers, *layout.shape)
    value = ambient_C if initial_C is None else initial_C
    array = np.asarray(value, dtype=float)
    if array.shape not in ((), layout.shape, shape):
        raise RecipeError(
            f"initial_C shape {array.shape} is invalid; give a number, "
            f"{layout.shape} or {shape}"
        )

    if not (np.all(np.isfinite(array)) and array.min() > -ZERO_C_IN_K):
        raise RecipeError(
            "initial_C must be finite and above absolute zero (-273.15 C)"
        )
    return np.broadcast_to(array, shape).astype(float)
