"""The recipe YAML loader reads YAML 1.2 exponent floats and nothing else new."""

from __future__ import annotations

import math

import pytest
import yaml

from thermosynth.recipe.yaml12 import load_yaml


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("2.4e6", 2.4e6),
        ("1e-3", 1e-3),
        ("1E+6", 1e6),
        ("-3e2", -300.0),
        ("+5e0", 5.0),
        (".5e3", 500.0),
        ("1.e3", 1000.0),
        ("6.0e+3", 6000.0),
    ],
)
def test_exponent_forms_are_floats(text, number):
    value = load_yaml(f"x: {text}")["x"]
    assert isinstance(value, float)
    assert value == number


@pytest.mark.parametrize("text", ["1e3x", "e3", "1e", "1.2.3e4", "'1e-3'", "0x1F"])
def test_other_scalars_as_safe_loader_reads_them(text):
    assert load_yaml(f"x: {text}") == yaml.safe_load(f"x: {text}")


def test_inf_and_nan_unchanged():
    values = load_yaml("[.inf, -.inf, .nan, 1.5, 12, on]")
    assert values[0] == math.inf
    assert values[1] == -math.inf
    assert math.isnan(values[2])
    assert values[3:] == [1.5, 12, True]


def test_safe_loader_left_unchanged():
    load_yaml("x: 1")
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}
