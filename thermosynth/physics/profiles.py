"""Time profiles for source power [W] and held temperature [C].

A profile is a frozen dataclass that maps a time [s] to a value. The unit of
the value depends on where the profile is used: a power [W] for a
:class:`~thermosynth.physics.sources.VolumeSource`, a temperature [C] for a
:class:`~thermosynth.physics.sources.HeldPatch`.

Each built-in profile also integrates itself exactly over an interval
(``integral``), and the solvers apply a source's mean power over each step
(:func:`mean_over`). A pulse or a ramp's corner that falls inside a step
therefore delivers its whole energy whatever the step. A held temperature is
taken at each step's end, as implicit Euler needs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np

from thermosynth.errors import RecipeError

Profile = Callable[[float], float]


@dataclass(frozen=True)
class Constant:
    """A value that does not change with time.

    Examples
    --------
    >>> Constant(2.0)(10.0)
    2.0
    """

    value: float

    def __post_init__(self) -> None:
        _check_value("constant", self.value)

    def __call__(self, t_s: float) -> float:
        return float(self.value)

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the integral from ``start_s`` to ``end_s`` [value s]."""
        return float(self.value) * (end_s - start_s)


@dataclass(frozen=True)
class Ramp:
    """Zero before ``start_s``, then a linear rise to ``value`` over ``ramp_s``.

    Attributes
    ----------
    value : float
        Final value.
    ramp_s : float
        Duration of the rise [s]; 0 gives a step at ``start_s``.
    start_s : float
        Time the rise begins [s].

    Examples
    --------
    >>> Ramp(4.0, ramp_s=10.0, start_s=5.0)(10.0)
    2.0
    """

    value: float
    ramp_s: float = field(kw_only=True)
    start_s: float = field(default=0.0, kw_only=True)

    def __post_init__(self) -> None:
        _check_value("ramp", self.value)
        _check_non_negative("ramp", "ramp_s", self.ramp_s)

    def __call__(self, t_s: float) -> float:
        if t_s < self.start_s:
            return 0.0
        if self.ramp_s == 0 or t_s >= self.start_s + self.ramp_s:
            return float(self.value)
        return float(self.value) * (t_s - self.start_s) / self.ramp_s

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the integral from ``start_s`` to ``end_s`` [value s]."""
        return self._antiderivative(end_s) - self._antiderivative(start_s)

    def _antiderivative(self, t_s: float) -> float:
        """Return the integral from ``start_s`` to ``t_s`` [value s], 0 before."""
        elapsed = max(t_s - self.start_s, 0.0)
        rising = min(elapsed, self.ramp_s)
        area = rising**2 / (2 * self.ramp_s) if self.ramp_s else 0.0
        return float(self.value) * (area + elapsed - rising)


@dataclass(frozen=True)
class Pulse:
    """``value`` for ``start_s <= t < stop_s``, zero outside.

    As a source's power, a pulse delivers ``value * (stop_s - start_s)``
    whatever the step: the solvers apply each step's mean power. The steps
    still do not end at ``start_s`` or ``stop_s``, so a pulse shorter than
    a step spreads its heat over that step.

    Examples
    --------
    >>> Pulse(3.0, start_s=1.0, stop_s=2.0)(1.5)
    3.0
    """

    value: float
    start_s: float = field(kw_only=True)
    stop_s: float = field(kw_only=True)

    def __post_init__(self) -> None:
        _check_value("pulse", self.value)
        if not self.stop_s > self.start_s:
            raise RecipeError(
                f"pulse: stop_s = {self.stop_s} must be greater than "
                f"start_s = {self.start_s}"
            )

    def __call__(self, t_s: float) -> float:
        if self.start_s <= t_s < self.stop_s:
            return float(self.value)
        return 0.0

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the integral from ``start_s`` to ``end_s`` [value s]."""

        def inside(t_s: float) -> float:
            return min(max(t_s, self.start_s), self.stop_s)

        return float(self.value) * (inside(end_s) - inside(start_s))


@dataclass(frozen=True)
class Exponential:
    """A first-order approach to ``value``: ``value * (1 - exp(-t / tau_s))``.

    Times before 0 give 0.

    Examples
    --------
    >>> round(Exponential(1.0, tau_s=2.0)(2.0), 6)
    0.632121
    """

    value: float
    tau_s: float = field(kw_only=True)

    def __post_init__(self) -> None:
        _check_value("exponential", self.value)
        if not self.tau_s > 0:
            raise RecipeError(
                f"exponential: tau_s = {self.tau_s} is invalid; "
                "it must be a positive time in s"
            )

    def __call__(self, t_s: float) -> float:
        if t_s <= 0:
            return 0.0
        return float(self.value) * -math.expm1(-t_s / self.tau_s)

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the integral from ``start_s`` to ``end_s`` [value s]."""
        return self._antiderivative(end_s) - self._antiderivative(start_s)

    def _antiderivative(self, t_s: float) -> float:
        """Return the integral from 0 to ``t_s`` [value s], 0 before 0."""
        if t_s <= 0:
            return 0.0
        return float(self.value) * (t_s + self.tau_s * math.expm1(-t_s / self.tau_s))


@dataclass(frozen=True, eq=False)
class Tabulated:
    """Linear interpolation in a table, such as a measured heater temperature.

    Before the first time the first value holds, after the last time the last.

    Attributes
    ----------
    times_s : ndarray
        Strictly increasing times [s], shape (n,).
    values : ndarray
        Values at those times, shape (n,).

    Examples
    --------
    >>> Tabulated([0.0, 10.0], [25.0, 45.0])(5.0)
    35.0
    """

    times_s: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=float)
        values = np.asarray(self.values, dtype=float)
        _check_table(times, values)
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "values", values)

    def __call__(self, t_s: float) -> float:
        return float(np.interp(t_s, self.times_s, self.values))

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the integral from ``start_s`` to ``end_s`` [value s]."""
        inner = (self.times_s > start_s) & (self.times_s < end_s)
        times = np.concatenate([[start_s], self.times_s[inner], [end_s]])
        values = np.interp(times, self.times_s, self.values)
        return float(np.sum(np.diff(times) * (values[1:] + values[:-1]) / 2))


def mean_over(profile: Profile, start_s: float, end_s: float) -> float:
    """Return a profile's mean value from ``start_s`` to ``end_s`` [s].

    A profile with an ``integral`` method (every built-in one) is averaged
    exactly. Any other callable is taken at ``end_s``, the value that an
    implicit Euler step ending there would use.

    Examples
    --------
    >>> mean_over(Pulse(6.0, start_s=1.0, stop_s=1.5), 0.0, 2.0)
    1.5
    """
    integral = getattr(profile, "integral", None)
    if integral is None or not end_s > start_s:
        return float(profile(end_s))
    return float(integral(start_s, end_s)) / (end_s - start_s)


def _check_value(kind: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RecipeError(f"{kind}: value = {value!r} is invalid; give a number")

    if not math.isfinite(value):
        raise RecipeError(f"{kind}: value = {value} is invalid; give a finite number")


def _check_non_negative(kind: str, key: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise RecipeError(
            f"{kind}: {key} = {value} is invalid; it must be a time >= 0 in s"
        )


def _check_table(times: np.ndarray, values: np.ndarray) -> None:
    if times.ndim != 1 or times.shape != values.shape or times.size == 0:
        raise RecipeError(
            f"tabulated: times_s shape {times.shape} and values shape "
            f"{values.shape} must be equal and one-dimensional, with one entry "
            "or more"
        )

    if np.any(np.diff(times) <= 0):
        raise RecipeError("tabulated: times_s must be strictly increasing")

    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(values))):
        raise RecipeError("tabulated: times_s and values must be finite")


PROFILE_KINDS: dict[str, type] = {
    "constant": Constant,
    "ramp": Ramp,
    "pulse": Pulse,
    "exponential": Exponential,
    "tabulated": Tabulated,
}


def profile_from_spec(spec: Mapping[str, Any] | float) -> Profile:
    """Build a profile from a recipe entry.

    Parameters
    ----------
    spec : dict or float
        A number (a :class:`Constant`), or a mapping with ``"kind"`` (one of
        ``constant``, ``ramp``, ``pulse``, ``exponential``, ``tabulated``)
        and that profile's fields, for example
        ``{"kind": "ramp", "value": 2.0, "ramp_s": 30}``.

    Returns
    -------
    profile : callable
        Maps a time [s] to a value.

    Raises
    ------
    RecipeError
        If the kind is unknown, a key is missing or unknown, or a value is
        invalid.

    Examples
    --------
    >>> profile_from_spec({"kind": "pulse", "value": 5, "start_s": 0, "stop_s": 1})(0.5)
    5.0
    """
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return Constant(float(spec))

    if not isinstance(spec, Mapping):
        raise RecipeError(
            f"profile spec {spec!r} is invalid; give a number or a mapping "
            f"with 'kind' set to one of {sorted(PROFILE_KINDS)}"
        )

    kind = spec.get("kind")
    if kind not in PROFILE_KINDS:
        raise RecipeError(
            f"profile kind {kind!r} is unknown; valid kinds are {sorted(PROFILE_KINDS)}"
        )

    cls = PROFILE_KINDS[kind]
    kwargs = {key: value for key, value in spec.items() if key != "kind"}
    _check_keys(kind, cls, kwargs)
    return cls(**kwargs)


def _check_keys(kind: str, cls: type, kwargs: Mapping[str, Any]) -> None:
    valid = [f.name for f in fields(cls)]
    required = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING
    ]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise RecipeError(
            f"profile kind {kind!r}: unknown key(s) {unknown}; valid keys are {valid}"
        )

    missing = [key for key in required if key not in kwargs]
    if missing:
        raise RecipeError(
            f"profile kind {kind!r}: missing key(s) {missing}; required keys "
            f"are {required}"
        )
