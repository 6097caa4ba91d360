"""Parameter distributions draw within their bounds from an explicit generator."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from thermosynth.recipe.distributions import (
    Choice,
    LogUniform,
    Normal,
    Uniform,
    bounds,
    draw,
)


def test_fixed_value_is_returned():
    assert draw(2.5, np.random.default_rng(0)) == 2.5


def test_uniform_within_bounds():
    rng = np.random.default_rng(1)
    values = [draw(Uniform(uniform=(2.0, 3.0)), rng) for _ in range(200)]
    assert min(values) >= 2.0
    assert max(values) <= 3.0
    assert abs(np.mean(values) - 2.5) < 0.05


def test_loguniform_median_is_geometric_mean():
    rng = np.random.default_rng(2)
    values = [draw(LogUniform(loguniform=(1.0, 100.0)), rng) for _ in range(2000)]
    assert abs(np.median(values) - 10.0) < 1.5


def test_same_seed_same_draws():
    dist = Normal(normal=(0.0, 1.0))
    a = [draw(dist, np.random.default_rng(5)) for _ in range(3)]
    b = [draw(dist, np.random.default_rng(5)) for _ in range(3)]
    assert a == b


def test_choice_draws_members():
    rng = np.random.default_rng(3)
    assert {draw(Choice(choice=[1.0, 2.0]), rng) for _ in range(50)} == {1.0, 2.0}


def test_bounds():
    assert bounds(4.0) == (4.0, 4.0)
    assert bounds(Choice(choice=[3.0, 1.0])) == (1.0, 3.0)


def test_reversed_uniform_rejected():
    with pytest.raises(ValidationError, match="low <= high"):
        Uniform(uniform=(3.0, 1.0))


def test_loguniform_needs_positive_bounds():
    with pytest.raises(ValidationError, match="0 < low <= high"):
        LogUniform(loguniform=(0.0, 1.0))
