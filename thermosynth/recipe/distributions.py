"""Distributions of scenario parameters, as written in recipes.

A parameter is either a fixed number or a one-key mapping such as
``{uniform: [0.5, 2.0]}``. Draws always go through an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from thermosynth.recipe.numbers import Float


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Uniform(_Dist):
    """Uniform between two bounds, ``{uniform: [low, high]}``."""

    uniform: tuple[Float, Float]

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        low, high = self.uniform
        if not low <= high:
            raise ValueError(
                f"uniform bounds must satisfy low <= high, got {low}, {high}"
            )
        return self

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(*self.uniform))


class LogUniform(_Dist):
    """Log-uniform between two positive bounds, ``{loguniform: [low, high]}``."""

    loguniform: tuple[Float, Float]

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        low, high = self.loguniform
        if not 0 < low <= high:
            raise ValueError(
                f"loguniform bounds must satisfy 0 < low <= high, got {low}, {high}"
            )
        return self

    def draw(self, rng: np.random.Generator) -> float:
        low, high = np.log(self.loguniform)
        return float(np.exp(rng.uniform(low, high)))


class Normal(_Dist):
    """Normal with a mean and a standard deviation, ``{normal: [mean, std]}``."""

    normal: tuple[Float, Float]

    @model_validator(mode="after")
    def _std(self) -> Normal:
        if self.normal[1] < 0:
            raise ValueError(f"normal std must be >= 0, got {self.normal[1]}")
        return self

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.normal(*self.normal))


class Choice(_Dist):
    """One of a list of values with equal probability, ``{choice: [...]}``."""

    choice: list[Float] = Field(min_length=1)

    def draw(self, rng: np.random.Generator) -> float:
        return float(self.choice[int(rng.integers(len(self.choice)))])


Distribution = Float | Uniform | LogUniform | Normal | Choice


def draw(value: Distribution, rng: np.random.Generator) -> float:
    """Draw one number from a fixed value or a distribution."""
    if isinstance(value, (int, float)):
        return float(value)
    return value.draw(rng)


def bounds(value: Distribution) -> tuple[float, float]:
    """Return the smallest and largest value a distribution can take."""
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    if isinstance(value, Uniform):
        return value.uniform
    if isinstance(value, LogUniform):
        return value.loguniform
    if isinstance(value, Choice):
        return (min(value.choice), max(value.choice))
    return (-np.inf, np.inf)


def describe(value: Any) -> str:
    """Render a distribution as it was written in the recipe."""
    if isinstance(value, BaseModel):
        return str(value.model_dump())
    return repr(value)
