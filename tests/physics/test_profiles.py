"""Tests for thermosynth.physics.profiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from thermosynth.errors import RecipeError
from thermosynth.physics.profiles import (
    Constant,
    Exponential,
    Pulse,
    Ramp,
    Tabulated,
    mean_over,
    profile_from_spec,
)


def test_constant_value():
    assert Constant(2.5)(0.0) == 2.5
    assert Constant(2.5)(1e6) == 2.5


@pytest.mark.parametrize(
    ("t_s", "expected"),
    [(0.0, 0.0), (4.999, 0.0), (5.0, 0.0), (7.5, 1.0), (15.0, 4.0), (100.0, 4.0)],
)
def test_ramp_values(t_s, expected):
    assert Ramp(4.0, ramp_s=10.0, start_s=5.0)(t_s) == pytest.approx(expected)


def test_ramp_zero_duration_is_step():
    ramp = Ramp(3.0, ramp_s=0.0, start_s=1.0)
    assert ramp(0.999) == 0.0
    assert ramp(1.0) == 3.0


@pytest.mark.parametrize(
    ("t_s", "expected"), [(0.5, 0.0), (1.0, 3.0), (1.999, 3.0), (2.0, 0.0)]
)
def test_pulse_values(t_s, expected):
    assert Pulse(3.0, start_s=1.0, stop_s=2.0)(t_s) == expected


def test_exponential_values():
    profile = Exponential(2.0, tau_s=3.0)
    assert profile(-1.0) == 0.0
    assert profile(0.0) == 0.0
    assert profile(3.0) == pytest.approx(2.0 * (1 - math.exp(-1)), rel=1e-15)
    assert profile(1e4) == pytest.approx(2.0, rel=1e-15)


def test_tabulated_interpolates_and_clamps():
    profile = Tabulated([0.0, 10.0, 20.0], [25.0, 45.0, 40.0])
    assert profile(-5.0) == 25.0
    assert profile(5.0) == 35.0
    assert profile(15.0) == 42.5
    assert profile(30.0) == 40.0
    assert isinstance(profile.times_s, np.ndarray)


def test_tabulated_rejects_unsorted_times():
    with pytest.raises(RecipeError, match="strictly increasing"):
        Tabulated([0.0, 2.0, 1.0], [1.0, 2.0, 3.0])


def test_tabulated_rejects_shape_mismatch():
    with pytest.raises(RecipeError, match=r"times_s shape \(2,\) and values shape"):
        Tabulated([0.0, 1.0], [1.0, 2.0, 3.0])


def test_pulse_rejects_reversed_times():
    with pytest.raises(RecipeError, match="stop_s = 1.0 must be greater"):
        Pulse(1.0, start_s=2.0, stop_s=1.0)


def test_exponential_rejects_zero_tau():
    with pytest.raises(RecipeError, match="tau_s = 0"):
        Exponential(1.0, tau_s=0)


def test_ramp_rejects_negative_duration():
    with pytest.raises(RecipeError, match="ramp_s = -1"):
        Ramp(1.0, ramp_s=-1)


PROFILES = {
    "constant": Constant(2.5),
    "ramp": Ramp(4.0, ramp_s=10.0, start_s=5.0),
    "step": Ramp(3.0, ramp_s=0.0, start_s=1.0),
    "pulse": Pulse(3.0, start_s=1.0, stop_s=2.0),
    "exponential": Exponential(2.0, tau_s=3.0),
    "tabulated": Tabulated([1.0, 4.0, 6.0], [5.0, -1.0, 2.0]),
}

# Intervals inside one piece, across corners and starts, and before time 0.
INTERVALS = [(-2.0, 0.5), (0.0, 1.5), (1.2, 1.7), (0.5, 7.0), (4.5, 12.0), (3.0, 20.0)]


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize(("start_s", "end_s"), INTERVALS)
def test_integral_matches_quadrature(name, start_s, end_s):
    profile = PROFILES[name]
    corners = [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 15.0]
    inside = [t for t in corners if start_s < t < end_s]
    expected, _ = quad(profile, start_s, end_s, points=inside or None, limit=200)
    assert profile.integral(start_s, end_s) == pytest.approx(expected, abs=1e-9)


def test_mean_over_pulse_inside_step():
    pulse = Pulse(3.0, start_s=1.2, stop_s=1.45)
    assert pulse(1.0) == pulse(1.5) == 0.0
    assert mean_over(pulse, 1.0, 1.5) == pytest.approx(3.0 * 0.25 / 0.5)


def test_mean_over_plain_callable_at_end():
    assert mean_over(lambda t_s: t_s**2, 1.0, 3.0) == 9.0
    assert mean_over(Ramp(4.0, ramp_s=2.0), 1.0, 1.0) == 2.0


def test_spec_number_is_constant():
    assert profile_from_spec(1.5) == Constant(1.5)
    assert profile_from_spec(np.int64(2))(10.0) == 2.0


def test_spec_ramp():
    profile = profile_from_spec({"kind": "ramp", "value": 2.0, "ramp_s": 30})
    assert profile == Ramp(2.0, ramp_s=30)
    assert profile(15.0) == pytest.approx(1.0)


def test_spec_tabulated():
    spec = {"kind": "tabulated", "times_s": [0, 10], "values": [20, 30]}
    assert profile_from_spec(spec)(2.5) == pytest.approx(22.5)


def test_spec_unknown_kind_lists_valid_kinds():
    with pytest.raises(RecipeError, match=r"kind 'sine' is unknown.*'constant'"):
        profile_from_spec({"kind": "sine", "value": 1.0})


def test_spec_missing_kind():
    with pytest.raises(RecipeError, match="kind None is unknown"):
        profile_from_spec({"value": 1.0})


def test_spec_unknown_key():
    with pytest.raises(RecipeError, match=r"unknown key\(s\) \['tau'\]"):
        profile_from_spec({"kind": "exponential", "value": 1.0, "tau": 2.0})


def test_spec_missing_key():
    with pytest.raises(RecipeError, match=r"missing key\(s\) \['ramp_s'\]"):
        profile_from_spec({"kind": "ramp", "value": 1.0})


def test_spec_non_numeric_value():
    with pytest.raises(RecipeError, match="value = 'hot' is invalid"):
        profile_from_spec({"kind": "constant", "value": "hot"})


def test_spec_wrong_type():
    with pytest.raises(RecipeError, match="profile spec 'fast' is invalid"):
        profile_from_spec("fast")


def test_docstring_examples_run():
    import doctest

    import thermosynth.physics.profiles as module

    assert doctest.testmod(module).failed == 0
