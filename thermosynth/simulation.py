"""Simulate a drawn scenario with the solver the recipe selects.

The still pipeline, sequences, the bank and the torch datasets all call
`simulate_scenario`, so a scenario kind is routed to its solver in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from thermosynth.errors import RecipeError, SimulationError
from thermosynth.geometry.layout import Layout, require_regions
from thermosynth.physics.adi import simulate_adi, suits
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.runaway import (
    RunawayResult,
    SeparatorShort,
    Venting,
    simulate_runaway,
)
from thermosynth.recipe.models import PhysicsSpec, Recipe
from thermosynth.scenario import (
    SOURCE_KEY_UNITS,
    SOURCE_KEYS,
    DrawnScenario,
    build_sources,
    scenario_numbers,
)

MIN_STEPS = 5
"""Minimum number of time steps per scenario.

``physics.dt_s`` is shortened where needed to reach it.
"""

RUNAWAY_EVENTS = ("onset_s", "short_s", "vent_s")
"""Names of a runaway's per-cell event times [s] in metadata and bank files."""


def boundary_from(physics: PhysicsSpec, *, layout: Layout | None = None) -> Boundary:
    """Return the solver's boundary conditions from the recipe's physics.

    Parameters
    ----------
    physics : PhysicsSpec
        The recipe's ``physics`` section.
    layout : Layout, optional
        Layout whose regions ``physics.emissivity_top_regions`` names;
        required when that mapping is not empty.

    Raises
    ------
    RecipeError
        If ``physics.emissivity_top_regions`` is set and ``layout`` is None,
        or names a region the layout lacks.
    """
    emissivity_map = None
    if physics.emissivity_top_regions:
        if layout is None:
            raise RecipeError(
                "physics.emissivity_top_regions is set, but no layout was given "
                "to place it; call boundary_from(physics, layout=layout)"
            )
        emissivity_map = top_emissivity_map(physics, layout)

    return Boundary(
        ambient_C=physics.ambient_C,
        h_top_W_m2K=physics.h_top_W_m2K,
        h_bottom_W_m2K=physics.h_bottom_W_m2K,
        emissivity_top=physics.emissivity_top,
        emissivity_bottom=physics.emissivity_bottom,
        emissivity_top_map=emissivity_map,
    )


_MATERIAL_KEYS = ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK", "rho_cp_J_m3K")

ADI_SOLVER_NOTE = (
    "scenarios that ADI does not suit run on fast: held patches, layers "
    "coupled too stiffly for the step, and stacks with a layer of a named "
    "material (thermosynth.physics.adi.suits)"
)
"""``solver_note`` of `resolved_physics` where the recipe's solver is ``adi``."""


def resolved_physics(recipe: Recipe, layout: Layout) -> dict[str, Any]:
    """Return the physical constants of a run, defaults filled in.

    The output's ``physics_json`` attribute stores this mapping, so that a
    dataset names the constants it was made with even where they are code
    defaults. Key names carry the units.

    Returns
    -------
    dict
        The solver and its arithmetic (``precision``), where the ``fast``
        and ``fipy`` solvers always use float64. Then ``dt_s`` (the
        longest step), ``n_layers``, ``ambient_C``, the heat transfer
        coefficients and emissivities of the top and bottom faces,
        ``thickness_mm``, ``layer_thickness_mm`` (each simulation layer's,
        top first) and ``materials``. ``materials`` contains each material that covers a
        grid cell or fills a layer, keyed by its name, with its
        conductivities and volumetric heat capacity. With solver ``adi``,
        ``solver_note`` (`ADI_SOLVER_NOTE`) names the scenarios that ran on
        ``fast``. A layout with a through-thickness stack adds ``layers``:
        per stack entry, top first, its ``thickness_mm``, ``n`` (simulation
        layers), ``material`` (a key of ``materials``, or None for the
        in-plane map) and ``region`` (None for the whole layer).
    """
    physics = recipe.physics
    used = {layout.materials[i].name for i in np.unique(layout.material_id)}
    used |= {layer.material for layer in layout.layers or () if layer.material}
    materials = {
        material.name: {key: float(getattr(material, key)) for key in _MATERIAL_KEYS}
        for material in layout.materials
        if material.name in used
    }
    thickness_mm = layout.layer_thickness_mm(physics.n_layers)
    resolved: dict[str, Any] = {
        "solver": physics.solver,
        "precision": physics.precision if physics.solver == "adi" else "float64",
        "dt_s": physics.dt_s,
        "n_layers": physics.n_layers,
        "ambient_C": physics.ambient_C,
        "h_top_W_m2K": physics.h_top_W_m2K,
        "h_bottom_W_m2K": physics.h_bottom_W_m2K,
        "emissivity_top": physics.emissivity_top,
        "emissivity_bottom": physics.emissivity_bottom,
        "emissivity_top_regions": dict(physics.emissivity_top_regions),
        "thickness_mm": layout.thickness_mm,
        "layer_thickness_mm": [float(t) for t in thickness_mm],
        "materials": materials,
    }
    if physics.solver == "adi":
        resolved["solver_note"] = ADI_SOLVER_NOTE
    if layout.layers is not None:
        resolved["layers"] = _stack_entries(layout)
    return resolved


def _stack_entries(layout: Layout) -> list[dict[str, Any]]:
    """Return each entry of the layout's stack as a JSON-ready mapping."""
    return [
        {
            "thickness_mm": float(layer.thickness_mm),
            "n": int(layer.n),
            "material": layer.material,
            "region": layer.region,
        }
        for layer in layout.layers or ()
    ]


def check_emissivity_top_regions(physics: PhysicsSpec, layout: Layout) -> None:
    """Raise RecipeError if ``physics.emissivity_top_regions`` names a missing region.

    Parameters
    ----------
    physics : PhysicsSpec
        The recipe's ``physics`` section.
    layout : Layout
        Layout whose ``regions`` the names must come from.
    """
    require_regions(
        layout, physics.emissivity_top_regions, key="physics.emissivity_top_regions"
    )


def top_emissivity_map(physics: PhysicsSpec, layout: Layout) -> np.ndarray:
    """Place the emissivities of ``physics.emissivity_top_regions`` on the grid.

    Regions are painted in the mapping's order, so where regions overlap the
    later entry wins. Cells of no listed region keep ``physics.emissivity_top``.

    Returns
    -------
    ndarray
        Emissivity of each top-face cell, float64 (ny, nx) in 0..1.

    Raises
    ------
    RecipeError
        If a region name is not among the layout's regions.
    """
    check_emissivity_top_regions(physics, layout)
    emissivity = np.full(layout.shape, physics.emissivity_top, dtype=np.float64)
    for name, value in physics.emissivity_top_regions.items():
        emissivity[np.asarray(layout.regions[name], dtype=bool)] = value
    return emissivity


def simulate_scenario(
    drawn: DrawnScenario,
    layout: Layout,
    recipe: Recipe,
    *,
    output_times_s: Sequence[float] | None = None,
    events: dict[str, Any] | None = None,
    together_with: Sequence[DrawnScenario] = (),
) -> np.ndarray:
    """Simulate ``drawn``; return the imaged face's rise at each output time.

    Parameters
    ----------
    output_times_s : sequence of float, optional
        Times after onset [s]; the run ends at the last. None means one
        output at ``drawn.duration_s``.
    events : dict, optional
        Filled, for a runaway, with each battery cell's event times
        (`runaway_events`); left empty for other kinds.
    together_with : sequence of DrawnScenario, optional
        Further scenarios, not runaways, whose sources heat in the same run
        from the same onset, over ``drawn``'s times. Samples with ``count``
        add separate runs instead (`thermosynth.scenario.superpose`);
        ``benchmarks/superposition_error.py`` compares the two.

    Returns
    -------
    ndarray
        float64 (T, ny, nx) rise on the layout grid [K], never negative:
        round-off of sparse solves (about -1e-13 K far from a source) and
        cooling by venting below the initial state are clipped at zero,
        because blending accepts only non-negative rises. It is zero on the
        layout's ``background`` region, because that air warms in the solve
        but is nearly transparent in the thermal infrared, so a camera records
        the surface behind it.
    """
    try:
        return _simulate(drawn, layout, recipe, output_times_s, events, together_with)
    except SimulationError as error:
        raise SimulationError(_name_failure(error, drawn, recipe)) from error


def _name_failure(error: SimulationError, drawn: DrawnScenario, recipe: Recipe) -> str:
    """Prefix a solver's message with the scenario's name, recipe key and draw.

    A solver numbers the scenarios of its own batch, which are not the
    recipe's list, so the message names the recipe's ``scenarios.N``.
    """
    numbers = scenario_numbers(drawn.name, recipe.scenarios)
    keys = SOURCE_KEYS[drawn.kind]
    values = ", ".join(
        f"{key} = {drawn.params[key]:.4g} {SOURCE_KEY_UNITS[key]}" for key in keys
    )
    where = " or ".join(f"scenarios.{number}" for number in numbers)
    lower = " or ".join(f"scenarios.{n}.{key}" for n in numbers for key in keys)
    return (
        f"scenario {drawn.name!r} ({where}, drawn {values}): {error}; lower "
        f"{lower}, because a drawn value too large for the layout is the usual "
        "cause"
    )


def _simulate(
    drawn: DrawnScenario,
    layout: Layout,
    recipe: Recipe,
    output_times_s: Sequence[float] | None,
    events: dict[str, Any] | None,
    together_with: Sequence[DrawnScenario] = (),
) -> np.ndarray:
    """Run the solver that suits ``drawn``; see `simulate_scenario`."""
    physics = recipe.physics
    times = [drawn.duration_s] if output_times_s is None else list(output_times_s)
    duration_s = float(times[-1])
    options: dict[str, Any] = {
        "boundary": boundary_from(physics, layout=layout),
        "n_layers": physics.n_layers,
        "duration_s": duration_s,
        "dt_s": min(physics.dt_s, duration_s / MIN_STEPS),
        "output_times_s": times,
    }
    if any(d.kind == "runaway" for d in (drawn, *together_with)) and together_with:
        raise ValueError(
            "together_with cannot run with a runaway scenario, because runaway "
            "chemistry does not add up; simulate the runaway alone"
        )
    sources = build_sources(drawn, layout, physics)
    for other in together_with:
        sources += build_sources(other, layout, physics)

    result: Any
    if drawn.kind == "runaway":
        venting = drawn.params["venting"]
        short = drawn.params.get("separator_short")
        result = simulate_runaway(
            layout,
            triggers=sources,
            venting=None if venting is None else Venting(**venting),
            separator_short=None if short is None else SeparatorShort(**short),
            max_dT_per_step_K=drawn.params["max_dT_per_step_K"],
            **options,
        )
        if events is not None:
            events.update(runaway_events(result))
    else:
        solve = _solver(physics.solver, layout, sources, options)
        if solve is simulate_adi:
            options["precision"] = physics.precision
        result = solve(layout, sources, **options)

    rise_K = np.maximum(np.asarray(result.rise_K, dtype=float), 0.0)
    background = layout.regions.get("background")
    if background is not None:
        rise_K[..., background] = 0.0
    return rise_K


def runaway_events(result: RunawayResult) -> dict[str, list[float | None]]:
    """Return each battery cell's onset, short and vent times [s] after onset.

    The lists are indexed by cell id, as `RunawayResult` stores them, with
    None (null in JSON) for a cell that did not run away, short or vent.
    """
    return {
        name: [None if np.isnan(t) else float(t) for t in getattr(result, name)]
        for name in RUNAWAY_EVENTS
    }


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
