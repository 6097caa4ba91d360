"""Thermal runaway of the cells of a layout, and its spread from cell to cell.

Every grid cell that belongs to a battery cell (``layout.cell_id >= 0``)
in a layer of the layout's in-plane map (:meth:`Layout.in_plane_mask`)
carries the decomposition chemistry of :mod:`thermosynth.physics.chemistry`.
Gaps, pads, busbars, casing and stack layers of a named material, such as a
can's walls, only conduct. Each step is split in two
(Lie operator splitting):

1. chemistry: each grid cell's reactions advance adiabatically over the step
   with a stiff integrator, and release their heat into that grid cell;
2. heat: one implicit Euler step of

       rho_cp dT/dt = div(k grad T) + q_trigger + q_short - g (T - T_a)
                      - p (T - T_held)

   on cell-centred finite volumes, with the face conductivity the harmonic
   mean of the two cells' conductivity along the face normal, and the
   convective plus linearised radiative loss ``g`` of the top and bottom
   faces, as in :mod:`thermosynth.physics.heat`. Lateral edges are
   insulated.

A step whose chemistry heats any grid cell by more than ``max_dT_per_step_K``
is rejected and retried at half the length, because the splitting error grows
with that rise; steps grow back to ``dt_s`` once the chemistry calms down.
The limit is waived for steps shorter than 1 % of the time heat takes to
cross the most conductive grid cell: there the chemistry (a cathode reaction
can heat a cell by 1e5 K/s) is adiabatic in fact, and the split is exact.

An optional separator short (:class:`SeparatorShort`) adds ``q_short``: once
a battery cell's separator fails, the cell releases its electrical energy
uniformly over its grid cells, or over a ball around its hottest grid cell
(``radius_mm``). While a short runs, steps are also cut so
that it heats no grid cell by more than ``max_dT_per_step_K`` per step,
because the chemistry of a step runs at the temperature of the step's start.
For the same reason, while a trigger heats, steps are cut so that the
trigger heats no grid cell by more than half of ``max_dT_per_step_K``. For a
held patch that bound applies both to its own temperature change and to the
heat it conducts into the free grid cells next to it. Conduction may heat a
grid cell whose chemistry is awake, before its battery cell runs away, by a
tenth of ``max_dT_per_step_K`` per step.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from thermosynth.errors import LayoutError, RecipeError, SimulationError
from thermosynth.geometry.layout import Layout
from thermosynth.physics.chemistry import (
    C_SEI,
    KIM_2007,
    AbuseChemistry,
    DEFAULT_ONSET_RATE_K_s,
    advance_adiabatic,
    check_policy,
)
from thermosynth.physics.grid import conduction_matrix, layer_dz_m, layer_volume_ratio
from thermosynth.physics.heat import (
    ZERO_C_IN_K,
    Boundary,
    STEFAN_BOLTZMANN_W_m2K4,
    _check_sources,
    _check_times,
    _initial_state,
    _output_times,
    _top_emissivity_cells,
)
from thermosynth.physics.lu_reuse import DiagonalReuseSolver
from thermosynth.physics.profiles import Pulse, mean_over
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    check_n_layers,
)

logger = logging.getLogger(__name__)

FailurePolicy = Literal["raise", "warn"]

# Held cells get a penalty coefficient this many times the largest diagonal
# entry of the step matrix, as in the reference heat solver.
_PENALTY_FACTOR = 1e8

# Share of max_dT_per_step_K that a trigger may add to a grid cell per step.
# Onset is marked at the end of the step that passes it, so its error grows
# with the step. A 600 W trigger in one 40 mm prismatic cell at dt_s = 5 s
# marks onset 7 % later than at 0.1 s with the full bound, and 3 % later
# with half of it (test_trigger_onset_converges_in_dt).
_TRIGGER_DT_FRACTION = 0.5

# Share of max_dT_per_step_K that conduction may add per step to a grid cell
# whose chemistry is awake, heating it faster than _AWAKE_FRACTION *
# onset_rate_K_s, while its battery cell has not run away. The chemistry
# runs at the step's start temperature, so that heat reaches the reactions
# one step late, and near onset they speed up about e-fold per 10 K. With
# cell 0 of the 2 mm test row at 250 C, cell 1 runs away at 7.16 s with
# 0.02 s steps. With 2 s steps it did so at 10.47 s (46 % late) without this
# bound and at 8.26 s with a share of 0.25. NOTE: with 0.1 it still runs
# away at 7.93 s (11 % late), in 111 steps to 12 s against 103 without the
# bound (test_propagation_onset_converges_in_dt).
_APPROACH_DT_FRACTION = 0.1
_AWAKE_FRACTION = 0.1

# Halving a rejected step more often than this is a failure.
_MAX_HALVINGS = 24

# LU factorisations kept, keyed by step length and heat-capacity version.
_MAX_FACTORISATIONS = 16

# Frozen, so one instance can serve as the default of every call.
_DEFAULT_BOUNDARY = Boundary()


@dataclass(frozen=True)
class Venting:
    """Opening of a cell's vent: a sudden loss of mass and heat.

    A battery cell vents once, when the mean SEI conversion of its grid cells
    reaches ``sei_conversion``. Its grid cells then lose ``energy_J`` of heat
    (spread in proportion to their heat capacity), and their volumetric heat
    capacity is multiplied by ``heat_capacity_fraction``, which stands for
    the ejected electrolyte and gas. The enthalpy that mass carries away
    counts as vented energy.

    Attributes
    ----------
    sei_conversion : float
        Converted fraction of the initial metastable SEI that opens the vent,
        in 0..1.
    energy_J : float
        Heat carried away by the vented gas [J], >= 0.
    heat_capacity_fraction : float
        Fraction of the heat capacity left after venting, in 0..1.
    """

    sei_conversion: float = 0.9
    energy_J: float = 0.0
    heat_capacity_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sei_conversion <= 1.0:
            raise RecipeError(
                f"venting: sei_conversion = {self.sei_conversion} is invalid; "
                "give a fraction in (0, 1]"
            )
        if not (math.isfinite(self.energy_J) and self.energy_J >= 0):
            raise RecipeError(
                f"venting: energy_J = {self.energy_J} is invalid; it must be >= 0"
            )
        if not 0.0 < self.heat_capacity_fraction <= 1.0:
            raise RecipeError(
                "venting: heat_capacity_fraction = "
                f"{self.heat_capacity_fraction} is invalid; give a fraction in (0, 1]"
            )


@dataclass(frozen=True)
class SeparatorShort:
    """Internal short that opens when a battery cell's separator fails.

    A battery cell shorts once, when its hottest grid cell reaches
    ``onset_C``. It then releases ``energy_J`` at the constant power
    ``energy_J / duration_s``, spread uniformly over all its grid cells in
    every layer, or, with ``radius_mm``, over those of its grid cells whose
    centres lie within ``radius_mm`` of the hottest one's, where the
    separator failed. A polyethylene (PE) separator melts at about 130 C and
    a polypropylene (PP) one at about 165 C.

    Attributes
    ----------
    onset_C : float
        Temperature at which the separator fails [C].
    energy_J : float
        Electrical energy the short releases in each cell [J], > 0: the
        cell's capacity times its nominal voltage times the fraction
        released, e.g. 50 Ah x 3.7 V x 0.5 = 333 kJ.
    duration_s : float
        Time over which the short releases ``energy_J`` [s], > 0.
    radius_mm : float or None
        Radius of the shorted region around the hottest grid cell [mm], > 0;
        None (the default) spreads the heat over the whole cell. The region
        always contains the hottest grid cell, however small the radius.
    """

    onset_C: float
    energy_J: float
    duration_s: float
    radius_mm: float | None = None

    def __post_init__(self) -> None:
        if not (_is_real(self.onset_C) and self.onset_C > -ZERO_C_IN_K):
            raise RecipeError(
                f"separator_short: onset_C = {self.onset_C!r} is invalid; give the "
                "separator's failure temperature in C, e.g. 130 for PE"
            )
        if not (_is_real(self.energy_J) and self.energy_J > 0):
            raise RecipeError(
                f"separator_short: energy_J = {self.energy_J!r} is invalid; give "
                "the electrical energy released [J], > 0: capacity x nominal "
                "voltage x fraction released"
            )
        if not (_is_real(self.duration_s) and self.duration_s > 0):
            raise RecipeError(
                f"separator_short: duration_s = {self.duration_s!r} is invalid; "
                "give the time the short takes to release its energy [s], > 0"
            )
        radius = self.radius_mm
        if radius is not None and not (_is_real(radius) and 0 < radius < math.inf):
            raise RecipeError(
                f"separator_short: radius_mm = {radius!r} is invalid; give the "
                "radius of the shorted region [mm], > 0, or leave it out to "
                "heat the whole cell"
            )


@dataclass(frozen=True, eq=False)
class RunawayResult:
    """Temperatures, onset times and energy balance of a runaway simulation.

    Attributes
    ----------
    times_s : ndarray
        Output times [s], shape (n_out,).
    rise_K : ndarray
        Rise of the imaged face (layer 0) over the initial state [K],
        shape (n_out, ny, nx).
    rise_all_K : ndarray
        Rise of every layer [K], shape (n_out, n_layers, ny, nx).
    onset_s : ndarray
        Runaway onset of each battery cell, indexed by cell id [s]: the
        first time the chemistry heats one of its grid cells faster than
        ``onset_rate_K_s``. NaN for cells that did not run away.
    vent_s : ndarray
        Time each battery cell vented [s], NaN if it did not.
    short_s : ndarray
        Time the separator short of each battery cell started [s], NaN if it
        did not.
    cell_max_C : ndarray
        Highest temperature of each battery cell over the run [C].
    max_temperature_C : float
        Highest temperature anywhere over the run [C].
    energy_released_J : float
        Heat released by the decomposition reactions [J].
    energy_in_J : float
        Heat delivered by the triggers (sources and held patches) and by the
        separator shorts [J].
    energy_stored_J : float
        ``sum(rho_cp * V * (T_end - T_0))`` with the heat capacity at the
        end [J].
    energy_lost_J : float
        Heat lost through the top and bottom faces, plus vented heat [J].
    energy_vented_J : float
        Part of ``energy_lost_J`` carried away by venting [J].
    energy_short_J : float
        Part of ``energy_in_J`` released by separator shorts [J].
    n_steps, n_rejected : int
        Accepted and rejected steps.
    step_bounds : dict of str to int
        Accepted steps by the bound that set their length: ``"dt_s"``,
        ``"halved"`` (after rejected steps), ``"output"``, ``"trigger"``,
        ``"held_change"``, ``"held_conduction"``, ``"approach"`` or
        ``"short"``.
    """

    times_s: np.ndarray
    rise_K: np.ndarray
    rise_all_K: np.ndarray
    onset_s: np.ndarray
    vent_s: np.ndarray
    short_s: np.ndarray
    cell_max_C: np.ndarray
    max_temperature_C: float
    energy_released_J: float
    energy_in_J: float
    energy_stored_J: float
    energy_lost_J: float
    energy_vented_J: float
    energy_short_J: float
    n_steps: int
    n_rejected: int
    step_bounds: dict[str, int] = field(default_factory=dict)


def simulate_runaway(
    layout: Layout,
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    triggers: Sequence[VolumeSource | HeldPatch] = (),
    initial_C: float | np.ndarray | None = None,
    chemistry: AbuseChemistry = KIM_2007,
    venting: Venting | None = None,
    separator_short: SeparatorShort | None = None,
    max_dT_per_step_K: float = 20.0,
    onset_rate_K_s: float = DEFAULT_ONSET_RATE_K_s,
    output_times_s: Sequence[float] | None = None,
    on_failure: FailurePolicy = "raise",
) -> RunawayResult:
    """Simulate runaway chemistry coupled to heat conduction on a layout.

    Parameters
    ----------
    layout : Layout
        Grid, materials and cell ids. Grid cells with ``cell_id >= 0`` react
        where the in-plane map applies (``layout.in_plane_mask``), so not in
        stack layers of a named material.
    boundary : Boundary
        Convection and radiation of the top and bottom faces.
    n_layers : int
        Number of through-thickness layers, 1 or more.
    duration_s : float
        Simulated time [s].
    dt_s : float
        Maximum step [s]. Steps are halved while the chemistry heats a grid
        cell by more than ``max_dT_per_step_K`` per step, and end exactly on
        the output times.
    triggers : sequence of VolumeSource or HeldPatch
        What starts the runaway: an internal short (a
        :func:`~thermosynth.physics.sources.hotspot`), a heater held at a
        temperature, built for the same ``n_layers``.
    initial_C : float or ndarray, optional
        Initial temperature [C]: a number, (ny, nx) or (n_layers, ny, nx).
        Ambient by default. A hot neighbour can be set up here.
    chemistry : AbuseChemistry
        Reaction table; :data:`~thermosynth.physics.chemistry.KIM_2007` by
        default.
    venting : Venting, optional
        Vent opening of each battery cell; none by default.
    separator_short : SeparatorShort, optional
        Internal short of each battery cell whose separator fails. None by
        default. A cell already at ``onset_C`` at t = 0 shorts from t = 0.
    max_dT_per_step_K : float
        Largest chemical rise of a grid cell in one step [K], waived for
        steps shorter than 1 % of the shortest grid diffusion time. A
        separator short's rise per step is kept below it too, and a
        trigger's rise per step below half of it. For a held patch, that
        covers the grid cells it heats by conduction. Conduction into a grid
        cell whose chemistry is awake, before its battery cell's onset, is
        kept below a tenth of it per step.
    onset_rate_K_s : float
        Chemical heating rate that marks a cell's runaway onset [K s-1].
    output_times_s : sequence of float, optional
        Times to record in 0..``duration_s`` [s]; ``[duration_s]`` by
        default.
    on_failure : {"raise", "warn"}
        What to do when a step fails even at ``dt_s / 2**24``, or the
        temperature becomes non-finite: raise :class:`SimulationError`, or
        warn, stop stepping and fill the remaining outputs with NaN.

    Returns
    -------
    RunawayResult

    Raises
    ------
    RecipeError
        If a time, ``max_dT_per_step_K``, ``initial_C`` or ``on_failure`` is
        invalid.
    LayoutError
        If the layout has no battery cell in a layer of its in-plane map, or
        a trigger's shape differs from (n_layers, ny, nx).
    SimulationError
        If the solution fails and ``on_failure == "raise"``.
    """
    _check_times(duration_s, dt_s)
    check_policy(on_failure)
    _check_positive(max_dT_per_step_K=max_dT_per_step_K, onset_rate_K_s=onset_rate_K_s)
    outputs = _output_times(output_times_s, duration_s)
    check_n_layers(n_layers, layout)
    _check_sources(triggers, (n_layers, *layout.shape))
    if not np.any(_battery_mask(layout, n_layers)):
        raise LayoutError(
            f"layout {layout.name!r} has no battery cell (cell_id >= 0) in a "
            "layer of its in-plane map, so nothing can run away; use a layout "
            "with cells, and give its stack a layer of material None"
        )

    initial = _initial_state(initial_C, boundary.ambient_C, layout, n_layers)
    model = _RunawayModel(layout, boundary, initial, triggers, chemistry)
    model.venting = venting
    model.separator_short = separator_short
    model.onset_rate_K_s = onset_rate_K_s
    model.start_shorts(0.0)
    stepper = _Stepper(model, dt_s, max_dT_per_step_K, on_failure)
    return stepper.run(outputs, duration_s)


class _RunawayModel:
    """Temperature, chemistry, matrices and energy books of one run."""

    def __init__(
        self,
        layout: Layout,
        boundary: Boundary,
        initial_C: np.ndarray,
        triggers: Sequence[VolumeSource | HeldPatch],
        chemistry: AbuseChemistry,
    ) -> None:
        self.shape = initial_C.shape
        self.boundary = boundary
        self.chemistry = chemistry
        self.T0 = initial_C.ravel().copy()
        self.T = self.T0.copy()
        n_layers = self.shape[0]
        per_layer = self.T.size // n_layers
        # A cell's volume is volume_m3 times its volume_ratio, which is
        # exactly 1 without a stack.
        self.volume_m3 = cell_volume_m3(layout, n_layers)
        self.volume_ratio = np.repeat(layer_volume_ratio(layout, n_layers), per_layer)
        dz_m = layer_dz_m(layout, n_layers)
        self.dz_m = np.repeat(dz_m, per_layer)
        self.layer_z_mm = _layer_positions_mm(layout, dz_m)
        self.dx_mm, self.dy_mm = layout.dx_mm, layout.dy_mm

        rho_cp = layout.layer_property_map("rho_cp_J_m3K", n_layers)
        self.rho_cp = rho_cp.ravel().astype(float)
        self.conduction = conduction_matrix(layout, self.shape)
        self.diagonal_max = float(self.conduction.diagonal().max())
        # Time for heat to cross the fastest grid cell [s]. A step much
        # shorter than it moves almost no heat between cells, so splitting
        # chemistry from conduction costs nothing there however fast the
        # chemistry heats.
        self.shortest_diffusion_s = float(self.rho_cp.min()) / max(
            self.diagonal_max, 1e-300
        )

        cell_id = np.broadcast_to(layout.cell_id, self.shape).ravel()
        self.reacting = np.flatnonzero(_battery_mask(layout, n_layers).ravel())
        self.cell_of = cell_id[self.reacting]
        self.n_cells = int(layout.cell_id.max()) + 1
        self.state = chemistry.initial_state(self.reacting.size)
        self.remaining0 = self._remaining_heat(self.state)

        self.sources = [s for s in triggers if isinstance(s, VolumeSource)]
        self.held = [s for s in triggers if isinstance(s, HeldPatch)]
        self.held_conductance = _held_conductance(self.conduction, self.held)
        self.held_conductance_sum = np.asarray(
            self.held_conductance.sum(axis=1)
        ).ravel()
        self.top = np.zeros(self.T.size, bool)
        self.bottom = np.zeros(self.T.size, bool)
        self.top[:per_layer] = True
        self.bottom[-per_layer:] = True
        self.emissivity_top = _top_emissivity_cells(boundary, self.shape)

        self.onset_s = np.full(self.n_cells, np.nan)
        self.vent_s = np.full(self.n_cells, np.nan)
        self.short_s = np.full(self.n_cells, np.nan)
        self.shorts: list[VolumeSource] = []
        self.cell_max_C = np.full(self.n_cells, -np.inf)
        np.maximum.at(self.cell_max_C, self.cell_of, self.T[self.reacting])
        self.energy_in_J = 0.0
        self.energy_lost_J = 0.0
        self.energy_vented_J = 0.0
        self.energy_short_J = 0.0
        self.venting: Venting | None = None
        self.separator_short: SeparatorShort | None = None
        self.onset_rate_K_s = DEFAULT_ONSET_RATE_K_s
        self.capacity_version = 0
        self.cache: dict[tuple[float, int, bytes], Any] = {}
        # Radiation is linearised at each step's temperature, so its step
        # matrix changes every step and only near-repeats can be reused.
        self.radiating_solver = (
            DiagonalReuseSolver(self.conduction) if boundary.radiates else None
        )

    def chemistry_step(self, dt: float) -> tuple[np.ndarray, np.ndarray, str | None]:
        """Return the new chemical state and temperatures of the reacting cells."""
        return advance_adiabatic(
            self.chemistry,
            self.state,
            self.T[self.reacting],
            self.rho_cp[self.reacting],
            dt,
        )

    def heat_step(self, t_end: float, dt: float) -> None:
        """Take one implicit Euler conduction step from the current T."""
        g = self._loss_coefficient()
        short = self._short_W_m3(t_end - dt, t_end)
        source = self._source_W_m3(t_end - dt, t_end) + short
        held_T = self._held_temperatures(t_end)
        held = np.isfinite(held_T)
        penalty = _PENALTY_FACTOR * (self.rho_cp.max() / dt + self.diagonal_max)

        rhs = self.rho_cp / dt * self.T + g * self.boundary.ambient_C + source
        rhs[held] += penalty * held_T[held]
        diagonal = self.rho_cp / dt + g + penalty * held
        old = self.T
        if self.radiating_solver is not None:
            self.T = self.radiating_solver.solve(diagonal, rhs)
        else:
            self.T = self._factor(dt, held, diagonal).solve(rhs)

        lost_W_m3 = g * (self.T - self.boundary.ambient_C)
        held_W_m3 = self._held_power(old, dt, lost_W_m3, source, held)
        ratio = self.volume_ratio
        self.energy_lost_J += dt * self.volume_m3 * (lost_W_m3 * ratio).sum()
        self.energy_in_J += dt * self.volume_m3 * ((source * ratio).sum() + held_W_m3)
        self.energy_short_J += dt * self.volume_m3 * (short * ratio).sum()

    def _held_power(
        self,
        old: np.ndarray,
        dt: float,
        lost_W_m3: np.ndarray,
        source: np.ndarray,
        held: np.ndarray,
    ) -> float:
        """Return the power held cells deliver, divided by ``volume_m3`` [W m-3].

        The penalty term p (T_held - T) loses its digits, so the power comes
        from the rest of the held cells' equation, as in the fast solver.
        """
        if not held.any():
            return 0.0

        balance = self.rho_cp / dt * (self.T - old) + self.conduction @ self.T
        balance += lost_W_m3 - source
        return float((balance * self.volume_ratio)[held].sum())

    def _factor(self, dt: float, held: np.ndarray, diagonal: np.ndarray) -> Any:
        """Return the LU factorisation of the step matrix without radiation.

        Its diagonal then depends only on the step, the heat capacity and the
        held cells, so factorisations are kept by those.
        """
        key = (float(f"{dt:.12g}"), self.capacity_version, np.packbits(held).tobytes())
        if key in self.cache:
            return self.cache[key]

        lu = splu((self.conduction + sp.diags(diagonal)).tocsc())
        if len(self.cache) >= _MAX_FACTORISATIONS:
            self.cache.pop(next(iter(self.cache)))
        self.cache[key] = lu
        return lu

    def _loss_coefficient(self) -> np.ndarray:
        """Return g = (h + h_rad) / dz [W m-3 K-1], radiation lagged in T."""
        b = self.boundary
        T_K = self.T + ZERO_C_IN_K
        Ta_K = b.ambient_C + ZERO_C_IN_K
        radiative = STEFAN_BOLTZMANN_W_m2K4 * (T_K**2 + Ta_K**2) * (T_K + Ta_K)
        top = b.h_top_W_m2K + self.emissivity_top * radiative
        bottom = b.h_bottom_W_m2K + b.emissivity_bottom * radiative
        return (self.top * top + self.bottom * bottom) / self.dz_m

    def _source_W_m3(self, t_start: float, t_end: float) -> np.ndarray:
        q = np.zeros(self.T.size)
        for source in self.sources:
            power_W = mean_over(source.power_W, t_start, t_end)
            q += power_W * source.weights_m3.ravel()
        return q

    def _short_W_m3(self, t_start: float, t_end: float) -> np.ndarray:
        q = np.zeros(self.T.size)
        for short in self.shorts:
            q += mean_over(short.power_W, t_start, t_end) * short.weights_m3
        return q

    def step_limits_s(self, t: float, dt: float, max_dT_K: float) -> dict[str, float]:
        """Return the longest step [s] from ``t`` under each bound on imposed heat.

        The chemistry of a step runs at the temperature of the step's start,
        so heat the triggers and shorts impose within the step would reach it
        one step late. Trigger sources and held patches may heat a grid cell
        by ``_TRIGGER_DT_FRACTION * max_dT_K`` per step (``"trigger"``,
        ``"held_change"``), and a held patch also the grid cells next to it
        by conduction (``"held_conduction"``). Shorts may heat a grid cell by
        ``max_dT_K`` (``"short"``). Conduction may heat an awake grid cell of
        a battery cell that has not run away by ``_APPROACH_DT_FRACTION *
        max_dT_K`` per step (``"approach"``). A source's power is the largest
        of its value at ``t``, at ``t + dt`` and its mean over the step, so a
        pulse or ramp that starts, rises or stops inside the step counts. As
        for the chemistry, every bound but the short's is raised to at least
        1 % of the shortest grid diffusion time, so a strong trigger cannot
        stall the run. A bound is inf while it imposes nothing.
        """
        trigger_dT_K = _TRIGGER_DT_FRACTION * max_dT_K
        held_change_s = math.inf
        for patch in self.held:
            change_K = abs(patch.temperature_C(t + dt) - patch.temperature_C(t))
            if change_K > trigger_dT_K:
                held_change_s = min(held_change_s, dt * trigger_dT_K / change_K)

        approach_dT_K = _APPROACH_DT_FRACTION * max_dT_K
        limits = {
            "trigger": self._trigger_limit_s(t, dt, trigger_dT_K),
            "held_change": held_change_s,
            "held_conduction": self.held_heating_limit_s(t + dt, trigger_dT_K),
            "approach": self.approach_heating_limit_s(approach_dT_K),
        }
        floor_s = self.shortest_diffusion_s * 1e-2
        limits = {name: max(value, floor_s) for name, value in limits.items()}
        limits["short"] = self.short_step_limit_s(t, max_dT_K)
        return limits

    def _trigger_limit_s(self, t: float, dt: float, dT_K: float) -> float:
        """Return the step [s] in which trigger sources heat a grid cell by dT_K."""
        rate_K_s = np.zeros(self.T.size)
        for source in self.sources:
            power_W = max(
                abs(float(source.power_W(t))),
                abs(float(source.power_W(t + dt))),
                abs(mean_over(source.power_W, t, t + dt)),
            )
            rate_K_s += power_W * source.weights_m3.ravel() / self.rho_cp
        fastest = float(rate_K_s.max(initial=0.0))
        return dT_K / fastest if fastest > 0 else math.inf

    def held_heating_limit_s(self, t_end: float, dT_K: float) -> float:
        """Return the step [s] in which held patches heat a free grid cell by dT_K.

        A free grid cell next to a held patch heats at the rate of the heat
        that the held cells, at their temperature at ``t_end``, conduct into
        it. Where its net conductive heating is lower, because it passes heat
        on to cells further out, that lower rate counts. The rate is taken at
        the step's start, so the step is an estimate. Next to a patch at a
        constant temperature the rate falls as the cell warms. Returns inf
        while no patch heats a free grid cell.
        """
        if not self.held:
            return math.inf

        held_T = self._held_temperatures(t_end)
        held = np.isfinite(held_T)
        T = np.where(held, held_T, self.T)
        conducted_in = self.held_conductance @ T[held]
        conducted_in -= self.held_conductance_sum * T
        net = -(self.conduction @ T)
        rate_K_s = np.minimum(conducted_in, net)[~held] / self.rho_cp[~held]
        fastest = float(rate_K_s.max(initial=0.0))
        return dT_K / fastest if fastest > 0 else math.inf

    def approach_heating_limit_s(self, dT_K: float) -> float:
        """Return the step [s] in which conduction heats an awake grid cell by dT_K.

        A reacting grid cell is awake while its battery cell has no onset and
        its chemistry heats it faster than ``_AWAKE_FRACTION`` times
        ``onset_rate_K_s``. Its net conductive heating at the step's start
        sets the rate. Returns inf while no grid cell is awake or none of
        them warms by conduction.
        """
        rho_cp = self.rho_cp[self.reacting]
        T_K = self.T[self.reacting] + ZERO_C_IN_K
        chemical_K_s = self.chemistry.heat_W_m3(self.state, T_K) / rho_cp
        waiting = np.isnan(self.onset_s[self.cell_of])
        awake = waiting & (chemical_K_s > _AWAKE_FRACTION * self.onset_rate_K_s)
        if not awake.any():
            return math.inf

        conducted_K_s = -(self.conduction @ self.T)[self.reacting] / rho_cp
        fastest = float(conducted_K_s[awake].max(initial=0.0))
        return dT_K / fastest if fastest > 0 else math.inf

    def short_step_limit_s(self, t: float, max_dT_K: float) -> float:
        """Return the longest step [s] from ``t`` whose short heating is <= max_dT_K.

        Shorts start at the end of a step, so one that starts later than
        ``t`` cannot act during a step that begins at ``t``. Returns inf
        while no short runs.
        """
        rate_K_s = np.zeros(self.T.size)
        for short in self.shorts:
            rate_K_s += short.power_W(t) * short.weights_m3 / self.rho_cp
        fastest = float(rate_K_s.max(initial=0.0))
        return max_dT_K / fastest if fastest > 0 else math.inf

    def _held_temperatures(self, t: float) -> np.ndarray:
        held_T = np.full(self.T.size, np.nan)
        for patch in self.held:
            held_T[patch.mask.ravel()] = float(patch.temperature_C(t))
        return held_T

    def accept_chemistry(
        self, t_end: float, dt: float, state: np.ndarray, T_new: np.ndarray
    ) -> None:
        """Store a chemistry step and mark the onset of cells that passed it."""
        rate = (T_new - self.T[self.reacting]) / dt
        self.state = state
        self.T[self.reacting] = T_new

        fast = rate > self.onset_rate_K_s
        cells = np.unique(self.cell_of[fast])
        fresh = cells[np.isnan(self.onset_s[cells])]
        self.onset_s[fresh] = t_end
        if fresh.size:
            logger.debug("runaway: cells %s ran away at t = %g s", fresh, t_end)

    def after_step(self, t_end: float) -> None:
        """Vent and short cells past their thresholds, and track peak temperatures."""
        if self.venting is not None:
            self._vent(t_end, self.venting)
        np.maximum.at(self.cell_max_C, self.cell_of, self.T[self.reacting])
        self.start_shorts(t_end)

    def start_shorts(self, t: float) -> None:
        """Start the separator short of each cell that has reached its onset."""
        short = self.separator_short
        if short is None:
            return

        # The hottest grid cell decides, because one hole in the separator
        # shorts the electrodes. cell_max_C is a running maximum, so it first
        # passes onset_C at the step where a grid cell does.
        ready = (self.cell_max_C >= short.onset_C) & np.isnan(self.short_s)
        for cell in np.flatnonzero(ready):
            where = self._shorted_cells(int(cell), short.radius_mm)
            weights = np.zeros(self.T.size)
            volume_m3 = float(self.volume_ratio[where].sum()) * self.volume_m3
            weights[where] = 1.0 / volume_m3
            power = Pulse(
                short.energy_J / short.duration_s,
                start_s=t,
                stop_s=t + short.duration_s,
            )
            self.shorts.append(VolumeSource(weights, power, f"short of cell {cell}"))
            self.short_s[cell] = t
            logger.debug("runaway: separator of cell %d failed at t = %g s", cell, t)

    def _shorted_cells(self, cell: int, radius_mm: float | None) -> np.ndarray:
        """Return the flat indices of the grid cells a separator short heats.

        All of battery cell ``cell``'s grid cells, or, with ``radius_mm``,
        those whose centres lie within ``radius_mm`` of its hottest one.
        """
        where = self.reacting[self.cell_of == cell]
        if radius_mm is None:
            return where

        layer, row, column = np.unravel_index(where, self.shape)
        centres_mm = np.stack(
            [self.layer_z_mm[layer], row * self.dy_mm, column * self.dx_mm], axis=1
        )
        hottest_mm = centres_mm[np.argmax(self.T[where])]
        distance_mm = np.linalg.norm(centres_mm - hottest_mm, axis=1)
        return where[distance_mm <= radius_mm]

    def _vent(self, t_end: float, venting: Venting) -> None:
        c0 = self.chemistry.c_sei0
        conversion = 1.0 - self.state[:, C_SEI] / c0
        total = np.bincount(self.cell_of, conversion, minlength=self.n_cells)
        count = np.bincount(self.cell_of, minlength=self.n_cells)
        mean = total / np.maximum(count, 1)
        ready = (mean >= venting.sei_conversion) & np.isnan(self.vent_s)
        for cell in np.flatnonzero(ready):
            self._vent_cell(int(cell), venting)
            self.vent_s[cell] = t_end

    def _vent_cell(self, cell: int, venting: Venting) -> None:
        where = self.reacting[self.cell_of == cell]
        ratio = self.volume_ratio[where]
        capacity_J_K = float((self.rho_cp[where] * ratio).sum()) * self.volume_m3
        self.T[where] -= venting.energy_J / capacity_J_K

        lost_capacity = self.rho_cp[where] * (1.0 - venting.heat_capacity_fraction)
        carried_K = lost_capacity * (self.T[where] - self.T0[where])
        carried = float((carried_K * ratio).sum())
        self.rho_cp[where] -= lost_capacity
        self.energy_vented_J += venting.energy_J + carried * self.volume_m3
        self.capacity_version += 1
        self.cache.clear()
        logger.debug("runaway: cell %d vented", cell)

    def stored_J(self) -> float:
        """Return sum(rho_cp V (T - T0)) [J]."""
        stored = self.rho_cp * (self.T - self.T0) * self.volume_ratio
        return float(stored.sum()) * self.volume_m3

    def released_J(self) -> float:
        """Return the heat the reactions have released so far [J]."""
        remaining = self._remaining_heat(self.state)
        return float(self.remaining0 - remaining) * self.volume_m3

    def _remaining_heat(self, state: np.ndarray) -> float:
        """Return the heat the reacting cells can still release / volume_m3 [J m-3]."""
        heat_J_m3 = self.chemistry.remaining_heat_J_m3(state)
        return float((heat_J_m3 * self.volume_ratio[self.reacting]).sum())


class _Stepper:
    """Adaptive step control, output recording and the failure policy."""

    def __init__(
        self,
        model: _RunawayModel,
        dt_s: float,
        max_dT_K: float,
        on_failure: FailurePolicy,
    ) -> None:
        self.model = model
        self.dt_s = dt_s
        self.max_dT_K = max_dT_K
        self.on_failure = on_failure
        self.level = 0
        self.calm_steps = 0
        self.stopped = False
        self.n_steps = 0
        self.n_rejected = 0
        self.step_bounds: Counter[str] = Counter()
        self.max_C = float(model.T.max())

    def run(self, outputs: np.ndarray, duration_s: float) -> RunawayResult:
        model = self.model
        recorded = np.full((outputs.size, model.T.size), np.nan)
        recorded[outputs == 0] = 0.0
        targets = np.unique(np.append(outputs[outputs > 0], duration_s))

        t = 0.0
        for target in targets:
            t = self._advance_to(t, float(target))
            # A run of short steps can end a rounding error short of the
            # target, within the tolerance of _advance_to, so only a stop ends
            # the run early.
            if self.stopped:
                break
            hit = np.isclose(outputs, target, rtol=0, atol=1e-9 * target)
            recorded[hit] = model.T - model.T0
        return self._result(outputs, recorded)

    def _advance_to(self, t: float, target: float) -> float:
        """Step from ``t`` to ``target`` [s]; return the time reached."""
        while target - t > 1e-9 * target:
            smallest_s = self.dt_s / 2**_MAX_HALVINGS
            if self.model.short_step_limit_s(t, self.max_dT_K) < smallest_s:
                # Steps this short would stall the run, or stop advancing t.
                self._fail(
                    "runaway solver: a separator short heats its cell by more "
                    f"than max_dT_per_step_K = {self.max_dT_K:g} K within "
                    f"{smallest_s:.3g} s at t = {t:g} s; lengthen separator_short_s "
                    "or lower "
                    "separator_short_energy_J to the cell's electrical energy"
                )
                self.stopped = True
                return t
            dt, bound = self._next_step(t, target)
            if self._try_step(t, dt):
                t += dt
                self.step_bounds[bound] += 1
                continue
            if self.stopped:
                return t

            self.n_rejected += 1
            self.level += 1
            if self.level > _MAX_HALVINGS:
                self._fail(
                    "runaway solver: the chemistry failed for every step down to "
                    f"{self.dt_s / 2**_MAX_HALVINGS:.3g} s at t = {t:g} s; check "
                    "the reaction table and the initial temperature"
                )
                self.stopped = True
                return t
        return t

    def _next_step(self, t: float, target: float) -> tuple[float, str]:
        """Return the next step [s] from ``t`` and the name of the bound that set it.

        ``"dt_s"`` is the maximum step, ``"halved"`` the maximum step after
        rejections, ``"output"`` the next output time, and the other names
        those of :meth:`_RunawayModel.step_limits_s`.
        """
        bounds = {
            "halved" if self.level else "dt_s": self.dt_s / 2**self.level,
            "output": target - t,
        }
        dt = min(bounds.values())
        bounds.update(self.model.step_limits_s(t, dt, self.max_dT_K))
        bound = min(bounds, key=bounds.__getitem__)
        return bounds[bound], bound

    def _try_step(self, t: float, dt: float) -> bool:
        model = self.model
        state, T_new, failure = model.chemistry_step(dt)
        if failure is not None:
            logger.debug(
                "runaway: chemistry step of %g s from t = %g s rejected (%s); "
                "retrying with half the step",
                dt,
                t,
                failure,
            )
            return False

        rise = float((T_new - model.T[model.reacting]).max(initial=0.0))
        if rise > self.max_dT_K and dt > model.shortest_diffusion_s * 1e-2:
            return False

        model.accept_chemistry(t + dt, dt, state, T_new)
        model.heat_step(t + dt, dt)
        if not np.all(np.isfinite(model.T)):
            self._fail(
                f"runaway solver: temperature became non-finite at t = {t + dt:g} s; "
                "check trigger powers and material properties"
            )
            self.stopped = True
            return False

        model.after_step(t + dt)
        self.max_C = max(self.max_C, float(model.T.max()))
        self.n_steps += 1
        self._relax(rise)
        return True

    def _relax(self, rise: float) -> None:
        """Double the step after a few calm steps, up to ``dt_s``."""
        self.calm_steps = self.calm_steps + 1 if rise < self.max_dT_K / 4 else 0
        if self.calm_steps >= 2 and self.level > 0:
            self.level -= 1
            self.calm_steps = 0

    def _fail(self, message: str) -> None:
        if self.on_failure == "raise":
            raise SimulationError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=5)

    def _result(self, outputs: np.ndarray, recorded: np.ndarray) -> RunawayResult:
        model = self.model
        rise_all = recorded.reshape(outputs.size, *model.shape)
        lost = model.energy_lost_J + model.energy_vented_J
        logger.debug(
            "runaway: %d steps, %d rejected; accepted steps by bound: %s",
            self.n_steps,
            self.n_rejected,
            dict(self.step_bounds),
        )
        if model.radiating_solver is not None:
            logger.debug(
                "runaway: heat step matrix factorised %d times, reused %d times",
                model.radiating_solver.n_factorisations,
                model.radiating_solver.n_reused,
            )
        return RunawayResult(
            times_s=outputs,
            rise_K=rise_all[:, 0].copy(),
            rise_all_K=rise_all,
            onset_s=model.onset_s.copy(),
            vent_s=model.vent_s.copy(),
            short_s=model.short_s.copy(),
            cell_max_C=model.cell_max_C.copy(),
            max_temperature_C=self.max_C,
            energy_released_J=model.released_J(),
            energy_in_J=model.energy_in_J,
            energy_stored_J=model.stored_J(),
            energy_lost_J=lost,
            energy_vented_J=model.energy_vented_J,
            energy_short_J=model.energy_short_J,
            n_steps=self.n_steps,
            n_rejected=self.n_rejected,
            step_bounds=dict(self.step_bounds),
        )


def _held_conductance(
    conduction: sp.csr_matrix, held: Sequence[HeldPatch]
) -> sp.csr_matrix:
    """Return the conductances [W m-3 K-1] from every grid cell to each held one.

    Shape (n, n_held), with the held cells in flat order. Entries of rows of
    free grid cells are >= 0.
    """
    mask = np.zeros(conduction.shape[0], bool)
    for patch in held:
        mask |= patch.mask.ravel()
    return (-conduction[:, mask]).tocsr()


def _battery_mask(layout: Layout, n_layers: int) -> np.ndarray:
    """Return the grid cells of battery material, (n_layers, ny, nx) bool."""
    return (layout.cell_id >= 0) & layout.in_plane_mask(n_layers)


def _layer_positions_mm(layout: Layout, dz_m: np.ndarray) -> np.ndarray:
    """Return the z coordinate of each layer [mm], for distances between cells."""
    if layout.layers is None:
        return np.arange(dz_m.size) * (dz_m[0] * 1e3)
    return (np.cumsum(dz_m) - dz_m / 2) * 1e3


def _is_real(value: object) -> bool:
    """Return whether ``value`` is a finite int or float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _check_positive(**values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise RecipeError(f"{key} = {value!r} is invalid; it must be positive")
