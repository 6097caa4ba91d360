"""Decomposition chemistry of a lithium-ion cell under thermal abuse.

Four Arrhenius reactions release heat as they convert, after Hatchard,
MacNeil, Basu and Dahn, "Thermal model of cylindrical and prismatic
lithium-ion cells", J. Electrochem. Soc. 148 (2001) A755, in the form and with
the parameters of Kim, Pesaran and Spotnitz, "A three-dimensional thermal
abuse model for lithium-ion cells", J. Power Sources 170 (2007) 476-489,
Tables 1 and 2 (LiCoO2 / graphite):

    R_sei = A_sei exp(-Ea_sei / R T) c_sei^m_sei
    R_ne  = A_ne  exp(-Ea_ne  / R T) c_neg^m_ne exp(-z / z_ref)
    R_pe  = A_pe  exp(-Ea_pe  / R T) alpha^m_pe1 (1 - alpha)^m_pe2
    R_e   = A_e   exp(-Ea_e   / R T) c_e^m_e

    dc_sei/dt = -R_sei, dc_neg/dt = -R_ne, dz/dt = R_ne,
    dalpha/dt = R_pe,   dc_e/dt = -R_e,
    q = H_sei W_c R_sei + H_ne W_c R_ne + H_pe W_p R_pe + H_e W_e R_e  [W m-3]

``c_sei``, ``c_neg`` and ``c_e`` are the fractions of metastable SEI, of
lithium intercalated in the anode and of electrolyte left; ``alpha`` is the
converted fraction of the cathode and ``z`` the dimensionless SEI thickness,
which slows the anode reaction. A state is an array ``(..., 5)`` of
``(c_sei, c_neg, alpha, c_e, z)``.

The table values match the ones that several public implementations of the
Kim et al. (2007) model repeat. NOTE: the original tables were not opened
here, so the values rest on those independent copies agreeing.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from thermosynth.errors import RecipeError, SimulationError

logger = logging.getLogger(__name__)

GAS_CONSTANT_J_molK = 8.314462618
ZERO_C_IN_K = 273.15

# Indices into a state vector.
C_SEI, C_NEG, ALPHA, C_E, Z = range(5)
REACTION_NAMES = ("sei", "anode", "cathode", "electrolyte")

# A cell runs away once its chemistry heats it faster than this [K s-1].
# 1 K/s is a common criterion in propagation studies; a heater or neighbour
# rarely exceeds it, while a runaway passes it by orders of magnitude.
DEFAULT_ONSET_RATE_K_s = 1.0

FailurePolicy = Literal["raise", "warn"]


@dataclass(frozen=True)
class Reaction:
    """One Arrhenius decomposition reaction.

    Attributes
    ----------
    name : str
        ``"sei"``, ``"anode"``, ``"cathode"`` or ``"electrolyte"``.
    A_per_s : float
        Frequency factor [s-1]; 0 switches the reaction off.
    Ea_J_mol : float
        Activation energy [J mol-1].
    H_J_kg : float
        Heat of reaction per mass of reactant [J kg-1].
    W_kg_m3 : float
        Specific content of the reactant per cell volume [kg m-3].
    """

    name: str
    A_per_s: float
    Ea_J_mol: float
    H_J_kg: float
    W_kg_m3: float

    @property
    def heat_J_m3(self) -> float:
        """Heat per unit of converted fraction and cell volume, H W [J m-3]."""
        return self.H_J_kg * self.W_kg_m3

    def rate_constant_per_s(self, T_K: np.ndarray) -> np.ndarray:
        """Return A exp(-Ea / R T) [s-1]."""
        return self.A_per_s * np.exp(-self.Ea_J_mol / (GAS_CONSTANT_J_molK * T_K))


@dataclass(frozen=True)
class AbuseChemistry:
    """The four-reaction abuse model: reactions, exponents and initial state.

    Attributes
    ----------
    sei, anode, cathode, electrolyte : Reaction
        The reactions; anode and SEI share the carbon content W_c.
    c_sei0, c_neg0, alpha0, c_e0, z0 : float
        Initial fractions of metastable SEI, intercalated lithium, converted
        cathode and electrolyte, and the initial SEI thickness.
    z_ref : float
        Reference SEI thickness of the anode reaction's inhibition.
    m_sei, m_ne, m_pe1, m_pe2, m_e : float
        Reaction orders.
    """

    sei: Reaction
    anode: Reaction
    cathode: Reaction
    electrolyte: Reaction
    c_sei0: float = 0.15
    c_neg0: float = 0.75
    alpha0: float = 0.04
    c_e0: float = 1.0
    z0: float = 0.033
    z_ref: float = 0.033
    m_sei: float = 1.0
    m_ne: float = 1.0
    m_pe1: float = 1.0
    m_pe2: float = 1.0
    m_e: float = 1.0

    @property
    def reactions(self) -> tuple[Reaction, Reaction, Reaction, Reaction]:
        """The reactions in the order of :data:`REACTION_NAMES`."""
        return (self.sei, self.anode, self.cathode, self.electrolyte)

    def only(self, *names: str) -> AbuseChemistry:
        """Return a copy in which only the named reactions run.

        Raises
        ------
        RecipeError
            If a name is not one of :data:`REACTION_NAMES`.
        """
        unknown = sorted(set(names) - set(REACTION_NAMES))
        if unknown:
            raise RecipeError(
                f"unknown reaction(s) {unknown}; choose from {list(REACTION_NAMES)}"
            )

        switched_off = {
            name: replace(getattr(self, name), A_per_s=0.0)
            for name in REACTION_NAMES
            if name not in names
        }
        return replace(self, **switched_off)

    def initial_state(self, n: int = 1) -> np.ndarray:
        """Return ``n`` fresh states, shape (n, 5)."""
        state = np.array([self.c_sei0, self.c_neg0, self.alpha0, self.c_e0, self.z0])
        return np.tile(state, (n, 1))

    def reactant_left(self, state: np.ndarray) -> np.ndarray:
        """Return the unconverted fraction of each reaction, shape (..., 4)."""
        left = state[..., [C_SEI, C_NEG, ALPHA, C_E]]
        left[..., 2] = 1.0 - left[..., 2]
        return left

    def rates_per_s(self, state: np.ndarray, T_K: np.ndarray) -> np.ndarray:
        """Return the reaction rates (R_sei, R_ne, R_pe, R_e) [s-1], (..., 4).

        Fractions are clipped to 0..1 inside the powers, so that an
        integrator's small overshoot below zero cannot raise a negative number
        to a fractional power.
        """
        left = np.clip(self.reactant_left(state), 0.0, 1.0)
        alpha = np.clip(state[..., ALPHA], 0.0, 1.0)
        orders = np.array([self.m_sei, self.m_ne, self.m_pe2, self.m_e])

        # One array operation for all four reactions, because solve_ivp calls
        # this for a few cells at a time and numpy's overhead per call counts.
        rates = self.rate_constants_per_s(T_K) * left**orders
        rates[..., 1] *= np.exp(-state[..., Z] / self.z_ref)
        rates[..., 2] *= alpha**self.m_pe1
        return rates

    def rate_constants_per_s(self, T_K: np.ndarray) -> np.ndarray:
        """Return A exp(-Ea / R T) of each reaction [s-1], shape (..., 4)."""
        A = np.array([r.A_per_s for r in self.reactions])
        Ea = np.array([r.Ea_J_mol for r in self.reactions])
        T = np.asarray(T_K)[..., None]
        return A * np.exp(-Ea / (GAS_CONSTANT_J_molK * T))

    def rate_derivatives(
        self, state: np.ndarray, T_K: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the derivatives of :meth:`rates_per_s` by state and temperature.

        Each rate depends on its own reactant fraction, the anode's also on
        the SEI thickness ``z``, and every rate on ``T`` through ``dk/dT = k
        Ea / (R T**2)``. As in :meth:`rates_per_s`, fractions are clipped to
        0..1, so a rate does not change with a fraction outside 0..1, such as
        an integrator's overshoot below zero. The slope of a power of 0 to a
        negative exponent counts as 0, so the result stays finite.

        Returns
        -------
        by_state : ndarray
            dR_i / d(state_j) [s-1], shape (..., 4, 5).
        by_T : ndarray
            dR_i / dT [s-1 K-1], shape (..., 4).
        """
        left = self.reactant_left(state)
        alpha = state[..., ALPHA]
        k = self.rate_constants_per_s(T_K)
        inhibition = np.exp(-state[..., Z] / self.z_ref)

        sei = _power_and_slope(left[..., 0], self.m_sei)
        anode = _power_and_slope(left[..., 1], self.m_ne)
        converted = _power_and_slope(alpha, self.m_pe1)
        cathode = _power_and_slope(left[..., 2], self.m_pe2)
        electrolyte = _power_and_slope(left[..., 3], self.m_e)

        by_state = np.zeros((*left.shape[:-1], 4, 5))
        by_state[..., 0, C_SEI] = k[..., 0] * sei[1]
        by_state[..., 1, C_NEG] = k[..., 1] * anode[1] * inhibition
        R_ne = k[..., 1] * anode[0] * inhibition
        by_state[..., 1, Z] = -R_ne / self.z_ref
        # 1 - alpha is the cathode's reactant, so its slope enters negated.
        by_state[..., 2, ALPHA] = k[..., 2] * (
            converted[1] * cathode[0] - converted[0] * cathode[1]
        )
        by_state[..., 3, C_E] = k[..., 3] * electrolyte[1]

        rates = np.stack(
            [
                k[..., 0] * sei[0],
                R_ne,
                k[..., 2] * converted[0] * cathode[0],
                k[..., 3] * electrolyte[0],
            ],
            axis=-1,
        )
        Ea = np.array([r.Ea_J_mol for r in self.reactions])
        T = np.asarray(T_K)[..., None]
        by_T = rates * Ea / (GAS_CONSTANT_J_molK * T**2)
        return by_state, by_T

    def heat_weights_J_m3(self) -> np.ndarray:
        """Return H W of each reaction [J m-3], shape (4,)."""
        return np.array([r.heat_J_m3 for r in self.reactions])

    def heat_W_m3(self, state: np.ndarray, T_K: np.ndarray) -> np.ndarray:
        """Return the heat released per cell volume [W m-3], shape (...)."""
        return self.rates_per_s(state, T_K) @ self.heat_weights_J_m3()

    def derivatives(self, state: np.ndarray, T_K: np.ndarray) -> np.ndarray:
        """Return d(state)/dt [s-1], shape (..., 5)."""
        R = self.rates_per_s(state, T_K)
        return np.stack(
            [-R[..., 0], -R[..., 1], R[..., 2], -R[..., 3], R[..., 1]], axis=-1
        )

    def remaining_heat_J_m3(self, state: np.ndarray) -> np.ndarray:
        """Return the heat the unconverted reactants can still release [J m-3].

        The heat released between two states is the drop of this value, so
        the chemistry's energy books do not depend on any integrator.
        """
        return self.reactant_left(state) @ self.heat_weights_J_m3()

    def adiabatic_rise_K(self, name: str, rho_cp_J_m3K: float) -> float:
        """Return the rise of one reaction run to completion adiabatically [K].

        That is H W times the reactant fraction at the initial state, over the
        volumetric heat capacity: ``c_sei0``, ``c_neg0``, ``1 - alpha0`` or
        ``c_e0``.
        """
        index = REACTION_NAMES.index(name)
        left = self.reactant_left(self.initial_state(1))[0, index]
        return float(self.reactions[index].heat_J_m3 * left / rho_cp_J_m3K)


def _power_and_slope(x: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """Return ``c**m`` and ``d(c**m)/dx``, where ``c`` is ``x`` clipped to 0..1.

    The derivative is ``m c**(m - 1)`` for x inside 0..1, and 0 outside or
    where that power is inf.
    """
    clipped = np.clip(x, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        slope = m * np.power(clipped, m - 1.0)
    inside = (x >= 0.0) & (x <= 1.0) & np.isfinite(slope)
    return np.power(clipped, m), np.where(inside, slope, 0.0)


# Kim, Pesaran and Spotnitz, J. Power Sources 170 (2007) 476, Tables 1 and 2.
# W_c = 610.4 kg m-3 of carbon (SEI and anode), W_p = 1221 kg m-3 of cathode
# material, W_e = 406.9 kg m-3 of electrolyte.
KIM_2007 = AbuseChemistry(
    sei=Reaction("sei", 1.667e15, 1.3508e5, 2.57e5, 610.4),
    anode=Reaction("anode", 2.5e13, 1.3508e5, 1.714e6, 610.4),
    cathode=Reaction("cathode", 6.667e13, 1.396e5, 3.14e5, 1221.0),
    electrolyte=Reaction("electrolyte", 5.14e25, 2.74e5, 1.55e5, 406.9),
)

# Volumetric heat capacity of the 18650 LiCoO2 cell the 2007 table describes
# [J m-3 K-1], as public copies of the model use it. NOTE: not checked
# against the paper's own table.
RHO_CP_18650_J_m3K = 2.14e6


@dataclass(frozen=True, eq=False)
class LumpedResult:
    """Temperature and chemistry of a lumped cell over time.

    Attributes
    ----------
    times_s : ndarray
        Output times [s], shape (n_out,).
    temperature_C : ndarray
        Cell temperature [C], shape (n_out,).
    state : ndarray
        Chemical state at each output time, shape (n_out, 5).
    onset_s : float
        First time the chemistry heats the cell faster than the onset rate
        [s]; NaN if it never does.
    max_temperature_C : float
        Highest temperature the integrator stepped through [C].
    energy_released_J_m3 : float
        Heat released by the reactions per cell volume [J m-3].
    """

    times_s: np.ndarray
    temperature_C: np.ndarray
    state: np.ndarray
    onset_s: float
    max_temperature_C: float
    energy_released_J_m3: float

    @property
    def ran_away(self) -> bool:
        """Whether the onset rate was passed."""
        return bool(np.isfinite(self.onset_s))


def simulate_lumped(
    chemistry: AbuseChemistry = KIM_2007,
    *,
    rho_cp_J_m3K: float = RHO_CP_18650_J_m3K,
    initial_C: float,
    ambient_C: float | None = None,
    loss_W_m3K: float = 0.0,
    duration_s: float,
    output_times_s: Sequence[float] | None = None,
    onset_rate_K_s: float = DEFAULT_ONSET_RATE_K_s,
    method: Literal["BDF", "Radau"] = "BDF",
    rtol: float = 1e-8,
    on_failure: FailurePolicy = "raise",
) -> LumpedResult:
    """Integrate a lumped cell: chemistry plus Newton cooling to ambient.

    Solves ``rho_cp dT/dt = q(state, T) - G (T - T_ambient)`` with the
    chemistry's state equations, where ``G = loss_W_m3K`` is the heat
    transfer coefficient times surface over volume. ``G = 0`` is adiabatic.

    Parameters
    ----------
    chemistry : AbuseChemistry
        Reactions and initial state; :data:`KIM_2007` by default.
    rho_cp_J_m3K : float
        Volumetric heat capacity of the cell [J m-3 K-1].
    initial_C : float
        Initial cell temperature [C].
    ambient_C : float, optional
        Ambient (oven) temperature [C]; ``initial_C`` by default.
    loss_W_m3K : float
        Loss coefficient G = h A / V [W m-3 K-1], >= 0.
    duration_s : float
        Simulated time [s].
    output_times_s : sequence of float, optional
        Times to record in 0..``duration_s`` [s]; ``[0, duration_s]`` by
        default.
    onset_rate_K_s : float
        Chemical heating rate that marks the runaway onset [K s-1].
    method : {"BDF", "Radau"}
        Stiff integrator of :func:`scipy.integrate.solve_ivp`.
    rtol : float
        Relative tolerance of the integrator.
    on_failure : {"raise", "warn"}
        What to do when the integrator fails: raise :class:`SimulationError`,
        or warn and return the outputs reached, NaN after them.

    Returns
    -------
    LumpedResult

    Raises
    ------
    RecipeError
        If a parameter is invalid.
    SimulationError
        If the integration fails and ``on_failure == "raise"``.

    Examples
    --------
    >>> result = simulate_lumped(KIM_2007.only("sei"), initial_C=200.0,
    ...                          duration_s=1e5)
    >>> expected = KIM_2007.adiabatic_rise_K("sei", RHO_CP_18650_J_m3K)
    >>> bool(abs(result.temperature_C[-1] - 200.0 - expected) < 1e-3)
    True
    """
    _check_lumped(rho_cp_J_m3K, loss_W_m3K, duration_s, onset_rate_K_s, on_failure)
    ambient = initial_C if ambient_C is None else ambient_C
    outputs = _lumped_outputs(output_times_s, duration_s)
    y0 = np.append(chemistry.initial_state(1)[0], initial_C + ZERO_C_IN_K)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        state, T_K = y[:5], y[5]
        q = chemistry.heat_W_m3(state, T_K)
        loss = loss_W_m3K * (T_K - ambient - ZERO_C_IN_K)
        return np.append(chemistry.derivatives(state, T_K), (q - loss) / rho_cp_J_m3K)

    solution = solve_ivp(
        rhs,
        (0.0, duration_s),
        y0,
        method=method,
        dense_output=True,
        rtol=rtol,
        atol=np.array([1e-12] * 5 + [1e-6]),
    )
    if solution.status != 0:
        _report_lumped(solution.message, on_failure)
    return _lumped_result(chemistry, rho_cp_J_m3K, solution, outputs, onset_rate_K_s)


def _lumped_result(
    chemistry: AbuseChemistry,
    rho_cp: float,
    solution: object,
    outputs: np.ndarray,
    onset_rate_K_s: float,
) -> LumpedResult:
    t = np.asarray(solution.t)  # type: ignore[attr-defined]
    y = np.asarray(solution.y)  # type: ignore[attr-defined]
    temperature = np.full(outputs.size, np.nan)
    state = np.full((outputs.size, 5), np.nan)
    reached = outputs <= t[-1] if t.size else np.zeros(outputs.size, bool)
    if reached.any():
        dense = solution.sol(outputs[reached])  # type: ignore[attr-defined]
        temperature[reached] = dense[5] - ZERO_C_IN_K
        state[reached] = dense[:5].T

    onset, peak = _onset_and_peak(chemistry, rho_cp, solution, onset_rate_K_s)
    initial = chemistry.remaining_heat_J_m3(chemistry.initial_state(1))[0]
    last = chemistry.remaining_heat_J_m3(y[:5, -1]) if t.size else initial
    return LumpedResult(
        times_s=outputs,
        temperature_C=temperature,
        state=state,
        onset_s=onset,
        max_temperature_C=peak,
        energy_released_J_m3=float(initial - last),
    )


def _onset_and_peak(
    chemistry: AbuseChemistry,
    rho_cp: float,
    solution: object,
    onset_rate_K_s: float,
) -> tuple[float, float]:
    """Return the onset time [s] and peak temperature [C] on the solver's steps.

    The solver's own steps are dense where the temperature moves fast, so
    the onset is found to within one step without a dense output.
    """
    y = np.asarray(solution.y)  # type: ignore[attr-defined]
    t = np.asarray(solution.t)  # type: ignore[attr-defined]
    if t.size == 0:
        return math.nan, math.nan

    rate = chemistry.heat_W_m3(y[:5].T, y[5]) / rho_cp
    above = np.flatnonzero(rate > onset_rate_K_s)
    onset = float(t[above[0]]) if above.size else math.nan
    return onset, float(y[5].max() - ZERO_C_IN_K)


def _lumped_outputs(times: Sequence[float] | None, duration_s: float) -> np.ndarray:
    if times is None:
        return np.array([0.0, float(duration_s)])

    outputs = np.asarray(times, dtype=float).ravel()
    if outputs.size == 0 or np.any((outputs < 0) | (outputs > duration_s)):
        raise RecipeError(
            f"output_times_s {outputs.tolist()} is invalid; give times within "
            f"0..{duration_s} s"
        )
    return np.sort(outputs)


def _check_lumped(
    rho_cp: float, loss: float, duration_s: float, onset_rate: float, policy: str
) -> None:
    positive = {"rho_cp_J_m3K": rho_cp, "duration_s": duration_s}
    positive["onset_rate_K_s"] = onset_rate
    for key, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise RecipeError(f"{key} = {value!r} is invalid; it must be positive")

    if not (math.isfinite(loss) and loss >= 0):
        raise RecipeError(f"loss_W_m3K = {loss!r} is invalid; it must be >= 0")

    check_policy(policy)


def check_policy(on_failure: str) -> None:
    """Raise :class:`RecipeError` unless ``on_failure`` is "raise" or "warn"."""
    if on_failure not in ("raise", "warn"):
        raise RecipeError(
            f"on_failure = {on_failure!r} is invalid; give 'raise' or 'warn'"
        )


def _report_lumped(message: str, on_failure: str) -> None:
    text = (
        f"lumped runaway model: the stiff integrator failed ({message}); "
        "lower rtol or shorten duration_s"
    )
    if on_failure == "raise":
        raise SimulationError(text)
    warnings.warn(text, RuntimeWarning, stacklevel=3)


# Cells whose chemistry would heat them by less than this over a step, and
# convert less than _COLD_CONVERSION of any reactant, take one explicit Euler
# step instead of the stiff integrator [K]. Its relative error is then of the
# order of the conversion, and the step is clipped so that no reactant
# overshoots past zero. NOTE: chosen for speed (a slowly reacting cell after
# its runaway otherwise calls the stiff solver every step); the onset times
# of the tests moved by less than one step when it was lowered to 0.05 K.
_COLD_RISE_K = 0.5
_COLD_CONVERSION = 5e-3


def advance_adiabatic(
    chemistry: AbuseChemistry,
    state: np.ndarray,
    T_C: np.ndarray,
    rho_cp_J_m3K: np.ndarray,
    dt_s: float,
    *,
    method: Literal["BDF", "Radau"] = "BDF",
    rtol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Advance many independent cells' chemistry over one step, adiabatically.

    Cells that barely react take one explicit Euler step; the others are
    integrated together by a stiff solver with a block-diagonal Jacobian.
    The new temperature is then set from the heat released, ``T + (E_old -
    E_new) / rho_cp`` with ``E`` the remaining heat, so the step conserves
    energy exactly whatever the integrator's error.

    Parameters
    ----------
    chemistry : AbuseChemistry
        Reactions and exponents.
    state : ndarray
        States, shape (n, 5).
    T_C : ndarray
        Temperatures [C], shape (n,).
    rho_cp_J_m3K : ndarray
        Volumetric heat capacity of each cell [J m-3 K-1], shape (n,).
    dt_s : float
        Step length [s].
    method : {"BDF", "Radau"}
        Stiff integrator of :func:`scipy.integrate.solve_ivp`.
    rtol : float
        Relative tolerance of the integrator.

    Returns
    -------
    state : ndarray
        New states, shape (n, 5).
    T_C : ndarray
        New temperatures [C], shape (n,).
    failure : str or None
        The integrator's message if it failed, else None. On failure the
        returned arrays are the inputs, unchanged.
    """
    T_K = T_C + ZERO_C_IN_K
    derivative = chemistry.derivatives(state, T_K)
    new_state = _explicit_step(state, derivative, dt_s)
    remaining = chemistry.remaining_heat_J_m3(state)
    rise = (remaining - chemistry.remaining_heat_J_m3(new_state)) / rho_cp_J_m3K
    conversion = np.abs(new_state[:, :4] - state[:, :4]).max(axis=1)
    hot = (rise > _COLD_RISE_K) | (conversion > _COLD_CONVERSION)

    if hot.any():
        integrated, message = _integrate_hot(
            chemistry, state[hot], T_K[hot], rho_cp_J_m3K[hot], dt_s, method, rtol
        )
        if integrated is None:
            return state, T_C, message
        new_state[hot] = integrated

    released = remaining - chemistry.remaining_heat_J_m3(new_state)
    return new_state, T_C + released / rho_cp_J_m3K, None


def _explicit_step(
    state: np.ndarray, derivative: np.ndarray, dt_s: float
) -> np.ndarray:
    """Take one explicit Euler step, clipped so that every fraction stays in 0..1.

    The SEI thickness grows by exactly the lithium the anode reaction used.
    """
    new = state + dt_s * derivative
    new[:, :4] = np.clip(new[:, :4], 0.0, 1.0)
    new[:, Z] = state[:, Z] + (state[:, C_NEG] - new[:, C_NEG])
    return new


def _integrate_hot(
    chemistry: AbuseChemistry,
    state: np.ndarray,
    T_K: np.ndarray,
    rho_cp: np.ndarray,
    dt_s: float,
    method: str,
    rtol: float,
) -> tuple[np.ndarray | None, str | None]:
    """Integrate (state, T) of reacting cells over ``dt_s`` with solve_ivp.

    The cells do not interact, so the Jacobian is block diagonal with 6 x 6
    blocks, each given analytically by :func:`_block_jacobian`.
    """
    n = state.shape[0]

    heat = chemistry.heat_weights_J_m3()

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        y = y.reshape(n, 6)
        R = chemistry.rates_per_s(y[:, :5], y[:, 5])
        dy = np.empty_like(y)
        dy[:, C_SEI], dy[:, C_NEG], dy[:, ALPHA] = -R[:, 0], -R[:, 1], R[:, 2]
        dy[:, C_E], dy[:, Z] = -R[:, 3], R[:, 1]
        dy[:, 5] = R @ heat / rho_cp
        return dy.ravel()

    # solve_ivp takes the RMS of the error over all n cells, which hides one
    # cell's error by up to sqrt(n); tighter tolerances undo that.
    dilution = math.sqrt(n)
    y0 = np.column_stack([state, T_K]).ravel()
    atol = np.tile([1e-10] * 5 + [1e-4], n) / dilution
    # Overflow inside a trial step that the solver then rejects is routine
    # here. A failed or unphysical result is reported below instead, and the
    # caller retries with a shorter step.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            solution = solve_ivp(
                rhs,
                (0.0, dt_s),
                y0,
                method=method,
                rtol=rtol / dilution,
                atol=atol,
                jac=_block_jacobian(chemistry, rho_cp),
                t_eval=[dt_s],
            )
        except RuntimeError as error:
            # SuperLU raises RuntimeError for a singular iteration matrix.
            return None, f"the stiff solver failed: {error}"
    if solution.status != 0:
        return None, str(solution.message)

    # A stiff step can throw a fraction far outside 0..1; such a result
    # fails, and the caller retries with a shorter step. Overshoots within
    # the integrator's tolerance are clipped, because a fraction that starts
    # below zero drifts further with every step.
    result = solution.y[:, -1].reshape(n, 6)[:, :5]
    fractions = result[:, :4]
    if not np.all((fractions > -1e-4) & (fractions < 1 + 1e-4)):
        return None, "a reactant fraction left 0..1"
    result[:, :4] = np.clip(fractions, 0.0, 1.0)
    return result, None


# Nonzero (row, column) entries of one cell's 6 x 6 Jacobian block, rows and
# columns in the order (c_sei, c_neg, alpha, c_e, z, T). Each fraction's rate
# depends on itself and T, the anode's and z's also on z, and T on all six.
_BLOCK_ROWS = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5, 5])
_BLOCK_COLUMNS = np.array([0, 5, 1, 4, 5, 2, 5, 3, 5, 1, 4, 5, 0, 1, 2, 3, 4, 5])
# Sign of each rate in d(state)/dt: c_sei, c_neg and c_e fall, alpha grows.
_RATE_SIGNS = np.array([-1.0, -1.0, 1.0, -1.0])


def _block_jacobian(
    chemistry: AbuseChemistry, rho_cp: np.ndarray
) -> Callable[[float, np.ndarray], sp.csr_matrix]:
    """Return the Jacobian of ``_integrate_hot``'s right-hand side, in CSR.

    The matrix is block diagonal, one 6 x 6 block per cell, and stores only
    the entries of ``_BLOCK_ROWS`` and ``_BLOCK_COLUMNS``.
    """
    n = rho_cp.size
    counts = np.bincount(_BLOCK_ROWS, minlength=6)
    indptr = np.append(0, np.cumsum(np.tile(counts, n)))
    indices = (6 * np.arange(n)[:, None] + _BLOCK_COLUMNS).ravel()
    heat = chemistry.heat_weights_J_m3()

    def jac(_t: float, y: np.ndarray) -> sp.csr_matrix:
        y = y.reshape(n, 6)
        by_state, by_T = chemistry.rate_derivatives(y[:, :5], y[:, 5])
        block = np.empty((n, 6, 6))
        block[:, :4, :5] = _RATE_SIGNS[:, None] * by_state
        block[:, :4, 5] = _RATE_SIGNS * by_T
        block[:, Z] = -block[:, C_NEG]
        block[:, 5, :5] = np.einsum("i,nij->nj", heat, by_state) / rho_cp[:, None]
        block[:, 5, 5] = by_T @ heat / rho_cp
        data = block[:, _BLOCK_ROWS, _BLOCK_COLUMNS].ravel()
        return sp.csr_matrix((data, indices, indptr), shape=(6 * n, 6 * n))

    return jac
