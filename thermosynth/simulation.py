"""Simulate a drawn scenario with the solver the recipe selects.

The still pipeline, sequences, the bank and the torch datasets all call
`simulate_scenario`, so a scenario kind is routed to its solver in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from thermosynth.geometry.layout import Layout
from thermosynth.physics.adi import simulate_adi, suits
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.runaway import Venting, simulate_runaway
from thermosynth.recipe.models import PhysicsSpec, Recipe
from thermosynth.scenario import DrawnScenario, build_sources

MIN_STEPS = 5
"""Minimum number of time steps per scenario.

``physics.dt_s`` is shortened where needed to reach it.
"""


def boundary_from(physics: PhysicsSpec) -> Boundary:
    """Return the solver's boundary conditions from the recipe's physics."""
    return Boundary(
        ambient_C=physics.ambient_C,
        h_top_W_m2K=physics.h_top_W_m2K,
        h_bottom_W_m2K=physics.h_bottom_W_m2K,
        emissivity_top=physics.emissivity_top,
        emissivity_bottom=physics.emissivity_bottom,
    )


def simulate_scenario(
    drawn: DrawnScenario,
    layout: Layout,
    recipe: Recipe,
    *,
    output_times_s: Sequence[float] | None = None,
) -> np.ndarray:
    """Simulate ``drawn``; return the imaged face's rise at each output time.

    Parameters
    ----------
    output_times_s : sequence of float, optional
        Times after onset [s]; the run ends at the last. None means one
        output at ``drawn.duration_s``.

    Returns
    -------
    ndarray
        float64 (T, ny, nx) rise on the layout grid [K], never negative:
        round-off of sparse solves (about -1e-13 K far from a source) and
        cooling by venting below the initial state are clipped at zero,
        because blending accepts only non-negative rises.
    """
    physics = recipe.physics
    times = [drawn.duration_s] if output_times_s is None else list(output_times_s)
    duration_s = float(times[-1])
    options: dict[str, Any] = {
        "boundary": boundary_from(physics),
        "n_layers": physics.n_layers,
        "duration_s": duration_s,
        "dt_s": min(physics.dt_s, duration_s / MIN_STEPS),
        "output_times_s": times,
    }
    sources = build_sources(drawn, layout, physics)

    result: Any
    if drawn.kind == "runaway":
        venting = drawn.params["venting"]
        result = simulate_runaway(
            layout,
            triggers=sources,
            venting=None if venting is None else Venting(**venting),
            max_dT_per_step_K=drawn.params["max_dT_per_step_K"],
            **options,
        )
    else:
        solve = _solver(physics.solver, layout, sources, options)
        if solve is simulate_adi:
            options["precision"] = physics.precision
        result = solve(layout, sources, **options)
    return np.maximum(np.asarray(result.rise_K, dtype=float), 0.0)


def _solver(
    name: str, layout: Layout, sources: Sequence[Any], options: dict[str, Any]
) -> Any:
    """Return the solve function for a recipe's solver name and these sources.

    ``adi`` does not support held patches, and it slows down on layouts whose
    layers are coupled stiffly (see :func:`thermosynth.physics.adi.suits`).
    Such scenarios go to the sparse LU solver, which solves the same implicit
    Euler step without splitting.
    """
    if name == "fipy":
        return simulate
    geometry = {key: options[key] for key in ("boundary", "n_layers", "dt_s")}
    if name == "adi" and suits(layout, sources, **geometry):
        return simulate_adi
    return simulate_fast
