"""Draw an anomaly scenario from the recipe and turn it into heat sources."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layout
from thermosynth.physics.grid import layer_volume_ratio
from thermosynth.physics.profiles import Constant, Exponential, Ramp, mean_over
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    held_patch,
    hotspot,
    region_source,
)
from thermosynth.recipe.distributions import Choice, draw
from thermosynth.recipe.models import (
    HeldPatchScenario,
    HotspotScenario,
    JouleScenario,
    PhysicsSpec,
    RunawayScenario,
    ScenarioSpec,
)

# Joule region that heats one whole cell, drawn per sample, such as a PV cell
# driven into reverse bias.
ONE_CELL = "one_cell"
# Joule region of a band along y across every cell row, at an x drawn per
# sample, such as a thin-film PV cell (a long narrow strip) in reverse bias.
ONE_STRIP = "one_strip"


@dataclass(frozen=True)
class DrawnScenario:
    """One concrete anomaly: its kind, name and every drawn parameter.

    ``params`` keys carry their units, e.g. ``power_W`` or ``x_mm``.
    """

    kind: str
    name: str
    duration_s: float
    params: dict[str, Any]


# Recipe keys of each scenario kind that set how strongly it heats, with the
# unit of each key's value.
SOURCE_KEYS = {
    "hotspot": ("power_W",),
    "runaway": ("power_W",),
    "joule": ("current_A", "resistance_mohm"),
    "held_patch": ("rise_K",),
}
SOURCE_KEY_UNITS = {
    "power_W": "W",
    "current_A": "A",
    "resistance_mohm": "mOhm",
    "rise_K": "K",
}


def scenario_numbers(name: str, scenarios: Sequence[ScenarioSpec]) -> list[int]:
    """Return the list indices of the recipe's scenarios named ``name``.

    A scenario without a name goes by its kind, as `DrawnScenario.name` does.
    """
    return [i for i, spec in enumerate(scenarios) if (spec.name or spec.kind) == name]


def strength_keys(
    scenarios: Sequence[ScenarioSpec], index: int
) -> tuple[tuple[Any, ...], ...]:
    """Return the key paths that set the power and size of scenario ``index``.

    The error on too weak an anomaly names them, such as
    ``("scenarios", 0, "power_W")`` and ``("scenarios", 0, "radius_mm")``.
    """
    spec = scenarios[index]
    names = [*SOURCE_KEYS[spec.kind], "radius_mm", "strip_width_mm"]
    fields = type(spec).model_fields
    return tuple(("scenarios", index, name) for name in names if name in fields)


def choose_scenario(
    scenarios: list[ScenarioSpec], rng: np.random.Generator
) -> ScenarioSpec:
    """Pick one scenario with probability proportional to its weight."""
    return scenarios[choose_scenario_index(scenarios, rng)]


def choose_scenario_index(
    scenarios: list[ScenarioSpec], rng: np.random.Generator
) -> int:
    """Return the index of one scenario, picked as `choose_scenario` picks it."""
    weights = np.array([s.weight for s in scenarios], dtype=float)
    return int(rng.choice(len(scenarios), p=weights / weights.sum()))


def draw_attempt(
    spec: ScenarioSpec,
    scenarios: list[ScenarioSpec],
    layout: Layout,
    rng: np.random.Generator,
    *,
    attempt: int,
) -> DrawnScenario:
    """Draw the parameters of one attempt at an anomalous sample of ``spec``.

    A sample chooses its scenario ``spec`` once, with `choose_scenario`, and
    every attempt draws that scenario, so a scenario's share of the samples
    is its weight share even where its draws often end too weak. A retry
    (``attempt`` > 1) first reads and discards the number that
    `choose_scenario` reads. So a retry draws the parameters that choosing
    the same scenario again would draw, and a one-scenario recipe draws as
    if it chose on every attempt.
    """
    if attempt > 1:
        choose_scenario_index(scenarios, rng)
    return draw_scenario(spec, layout, rng)


def draw_count(spec: ScenarioSpec, rng: np.random.Generator) -> int:
    """Return how many sources of ``spec`` one sample superposes (``count``).

    A fixed count reads no number from ``rng``.
    """
    return int(draw(getattr(spec, "count", 1), rng))


def mean_count(spec: ScenarioSpec) -> float:
    """Return the mean number of sources of ``spec`` per sample (``count``)."""
    count = getattr(spec, "count", 1)
    if isinstance(count, Choice):
        return float(np.mean(count.choice))
    return float(count)


def draw_attempt_sources(
    spec: ScenarioSpec,
    scenarios: list[ScenarioSpec],
    layout: Layout,
    rng: np.random.Generator,
    *,
    attempt: int,
) -> list[DrawnScenario]:
    """Draw every source of one attempt: `draw_attempt`, then ``count - 1`` more.

    The count is read after the first source, so a scenario without
    ``count`` draws what `draw_attempt` alone draws.
    """
    first = draw_attempt(spec, scenarios, layout, rng, attempt=attempt)
    return draw_more_sources(spec, layout, rng, first)


def draw_more_sources(
    spec: ScenarioSpec, layout: Layout, rng: np.random.Generator, first: DrawnScenario
) -> list[DrawnScenario]:
    """Return ``first`` and the other ``count - 1`` sources of one sample.

    A ``one_cell`` source is drawn again while it falls on a cell that the
    sample heats already, so that ``count`` cells heat where the layout has
    that many.
    """
    drawns = [first]
    for _ in range(draw_count(spec, rng) - 1):
        heated = heated_cells(drawns)
        drawns.append(
            draw_on_new_cell(lambda: draw_scenario(spec, layout, rng), heated)
        )
    return drawns


# Draws of a one_cell source at most, while it falls on a heated cell.
MAX_CELL_REDRAWS = 64

Part = TypeVar("Part", DrawnScenario, tuple)


def draw_on_new_cell(draw_part: Callable[[], Part], heated: set[int]) -> Part:
    """Call ``draw_part`` again while its source heats a cell in ``heated``.

    ``draw_part`` returns a `DrawnScenario` or a tuple that starts with one,
    such as a bank draw. After `MAX_CELL_REDRAWS` redraws the last is kept,
    because a layout may have fewer cells than ``count``.
    """
    part = draw_part()
    for _ in range(MAX_CELL_REDRAWS):
        drawn = part if isinstance(part, DrawnScenario) else part[0]
        if drawn.params.get("cell_id") not in heated:
            break
        part = draw_part()
    return part


def heated_cells(drawns: Sequence[DrawnScenario]) -> set[int]:
    """Return the ids of the cells that ``one_cell`` sources among ``drawns`` heat."""
    return {d.params["cell_id"] for d in drawns if "cell_id" in d.params}


def sources_metadata(
    parts: Sequence[tuple[DrawnScenario, dict[str, Any]]],
) -> dict[str, Any]:
    """Describe the drawn sources of one sample for its metadata.

    ``parts`` pairs each source with what else its metadata records (such as
    its bank entry). One source puts ``duration_s``, ``params`` and those
    keys at the top level; several put ``count`` and ``sources``, a list of
    such mappings, one per source.
    """
    described = [
        {"duration_s": drawn.duration_s, "params": drawn.params, **info}
        for drawn, info in parts
    ]
    if len(described) == 1:
        return described[0]
    return {"count": len(described), "sources": described}


def superpose(rises_K: Sequence[np.ndarray]) -> np.ndarray:
    """Return the sum of the sources' rises [K]; one rise is returned as it is.

    The sum is the rise of all sources heating together where the problem is
    linear (no radiation, properties independent of temperature).
    """
    total = rises_K[0]
    for rise in rises_K[1:]:
        total = total + rise
    return total


def draw_scenario(
    spec: ScenarioSpec, layout: Layout, rng: np.random.Generator
) -> DrawnScenario:
    """Draw every parameter of ``spec``; positions fall inside its region."""
    params: dict[str, Any] = {"profile": spec.profile}
    if isinstance(spec, JouleScenario):
        params["region"] = spec.region
        params.update(_draw_joule_region(spec, layout, rng))
        params["current_A"] = draw(spec.current_A, rng)
        params["resistance_mohm"] = draw(spec.resistance_mohm, rng)
        params["power_W"] = params["current_A"] ** 2 * params["resistance_mohm"] * 1e-3
    else:
        params["radius_mm"] = draw(spec.radius_mm, rng)
        params["layer"] = spec.layer
        params.update(_draw_position(spec, layout, rng))
        if isinstance(spec, HotspotScenario | RunawayScenario):
            params["power_W"] = draw(spec.power_W, rng)
        if isinstance(spec, RunawayScenario):
            params.update(_runaway_options(spec))
            if spec.trigger_s is not None:
                params["trigger_s"] = draw(spec.trigger_s, rng)
        elif isinstance(spec, HeldPatchScenario):
            params["rise_K"] = draw(spec.rise_K, rng)

    return DrawnScenario(
        kind=spec.kind,
        name=spec.name or spec.kind,
        duration_s=draw(spec.duration_s, rng),
        params=params,
    )


def build_sources(
    drawn: DrawnScenario, layout: Layout, physics: PhysicsSpec
) -> list[VolumeSource | HeldPatch]:
    """Turn a drawn scenario into the heat sources of the solver."""
    p = drawn.params
    n_layers = physics.n_layers
    if drawn.kind == "joule":
        power = _profile(drawn, p["power_W"])
        region = _joule_mask(layout, p)
        source = region_source(layout, region, power_W=power, n_layers=n_layers)
        return [_in_plane_only(source, layout)]

    layers = _layer_indices(p["layer"], layout, n_layers)
    where = {"x_mm": p["x_mm"], "y_mm": p["y_mm"], "radius_mm": p["radius_mm"]}
    if drawn.kind in ("hotspot", "runaway"):
        power = _profile(drawn, p["power_W"])
        if "trigger_s" in p:
            power = _Stopped(power, stop_s=p["trigger_s"])
        discs = [
            hotspot(layout, **where, power_W=power, layer=layer, n_layers=n_layers)
            for layer in layers
        ]
        kept = [_inside_cells(disc, layout, p["x_mm"], p["y_mm"]) for disc in discs]
        return [_split_equally(kept)]

    temperature = _profile(drawn, p["rise_K"])
    held_C = _Shifted(temperature, physics.ambient_C)
    patches = [
        held_patch(
            layout, **where, temperature_C=held_C, layer=layer, n_layers=n_layers
        )
        for layer in layers
    ]
    mask = np.logical_or.reduce([patch.mask for patch in patches])
    return [HeldPatch(mask, patches[0].temperature_C, patches[0].name)]


def _split_equally(sources: list[VolumeSource]) -> VolumeSource:
    """Merge single-layer sources of one power into one source.

    Each source releases an equal share of the power, whatever the volume of
    its grid cells. Every ``weights_m3`` is normalised to 1, so their mean is
    too.
    """
    if len(sources) == 1:
        return sources[0]

    weights = np.mean([source.weights_m3 for source in sources], axis=0)
    return VolumeSource(weights, sources[0].power_W, sources[0].name)


def _inside_cells(
    source: VolumeSource, layout: Layout, x_mm: float, y_mm: float
) -> VolumeSource:
    """Drop the grid cells of a hotspot that lie outside every battery cell.

    A disc centred near a cell's edge would otherwise release part of an
    internal short's power in casing, terminals, gaps or air, and air's small
    heat capacity then heats its grid cells by hundreds of kelvin. Stack
    layers of a named material, such as a can's wall, are outside the cells
    too (`Layout.in_plane_mask`). The full power goes to the grid cells
    left. A disc centred outside every cell, such as a hotspot placed on a
    terminal, or one that lies wholly in such a stack layer, is kept whole.
    """
    row = min(int(y_mm / layout.dy_mm), layout.shape[0] - 1)
    col = min(int(x_mm / layout.dx_mm), layout.shape[1] - 1)
    if layout.cell_id[row, col] < 0:
        return source

    n_layers = source.weights_m3.shape[0]
    battery = (layout.cell_id >= 0) & layout.in_plane_mask(n_layers)
    return _restricted_to(source, battery, layout)


def _in_plane_only(source: VolumeSource, layout: Layout) -> VolumeSource:
    """Drop a joule source's grid cells in stack layers of a named material.

    Such a layer, a can's wall over the cell for one, replaces the in-plane
    map that the joule region is drawn on. Without a stack, or where nothing
    is left, the source is kept whole.
    """
    n_layers = source.weights_m3.shape[0]
    return _restricted_to(source, layout.in_plane_mask(n_layers), layout)


def _restricted_to(
    source: VolumeSource, allowed: np.ndarray, layout: Layout
) -> VolumeSource:
    """Return ``source`` heating only its grid cells in ``allowed``, at full power.

    ``allowed`` is bool (n_layers, ny, nx), or (ny, nx) for every layer. The
    source is returned as it is where it heats no grid cell outside
    ``allowed``, or none inside it.
    """
    heated = source.weights_m3 > 0
    remaining = heated & allowed
    if remaining.sum() == heated.sum() or not remaining.any():
        return source

    weights = np.where(remaining, source.weights_m3, 0.0)
    n_layers = weights.shape[0]
    ratio = layer_volume_ratio(layout, n_layers)[:, None, None]
    weights /= (weights * ratio).sum() * cell_volume_m3(layout, n_layers)
    return VolumeSource(weights, source.power_W, source.name)


@dataclass(frozen=True)
class _Shifted:
    """A profile of a rise [K] turned into a temperature [C]."""

    rise: Any
    ambient_C: float

    def __call__(self, t_s: float) -> float:
        return self.ambient_C + float(self.rise(t_s))


@dataclass(frozen=True)
class _Stopped:
    """A power profile [W] cut to zero from ``stop_s`` [s] on."""

    power: Any
    stop_s: float

    def __call__(self, t_s: float) -> float:
        return float(self.power(t_s)) if t_s < self.stop_s else 0.0

    def integral(self, start_s: float, end_s: float) -> float:
        """Return the energy delivered from ``start_s`` to ``end_s`` [J]."""
        end_s = min(end_s, self.stop_s)
        if not end_s > start_s:
            return 0.0
        return mean_over(self.power, start_s, end_s) * (end_s - start_s)


def _profile(drawn: DrawnScenario, value: float) -> Any:
    """Shape a constant value in time: ramp over half, or grow with tau a third.

    ``value`` is a power [W] (a joule source's I²R too, not its current) or
    a held patch's temperature rise [K].
    """
    if drawn.params["profile"] == "ramp":
        return Ramp(value, ramp_s=drawn.duration_s / 2)
    if drawn.params["profile"] == "exponential":
        return Exponential(value, tau_s=drawn.duration_s / 3)
    return Constant(value)


def _runaway_options(spec: RunawayScenario) -> dict[str, Any]:
    """Return the venting, separator short and step options of a runaway scenario.

    ``separator_short`` (and its ``radius_mm``) is left out when the recipe
    sets none, so the bank keys of recipes without it stay as they were.
    """
    venting = None
    if spec.venting:
        venting = {
            "sei_conversion": spec.vent_sei_conversion,
            "energy_J": spec.vent_energy_J,
            "heat_capacity_fraction": spec.vent_heat_capacity_fraction,
        }
    options: dict[str, Any] = {
        "venting": venting,
        "max_dT_per_step_K": spec.max_dT_per_step_K,
    }
    if spec.separator_short_C is not None:
        options["separator_short"] = {
            "onset_C": spec.separator_short_C,
            "energy_J": spec.separator_short_energy_J,
            "duration_s": spec.separator_short_s,
        }
        if spec.separator_short_radius_mm is not None:
            options["separator_short"]["radius_mm"] = spec.separator_short_radius_mm
    return options


def check_scenario_regions(scenarios: Sequence[ScenarioSpec], layout: Layout) -> None:
    """Check the region of every scenario against ``layout``, before any draw.

    It checks what the draws check, so a scenario that no sample draws fails
    too. A scenario that gives both ``x_mm`` and ``y_mm`` draws no position
    in its ``where`` region, so that region is not checked.

    Raises
    ------
    RecipeError
        If a region is not in ``layout``, is empty in it, or needs cells that
        ``layout`` lacks. The error names the key, such as
        ``("scenarios", 0, "where")``.
    """
    for index, spec in enumerate(scenarios):
        key = "region" if isinstance(spec, JouleScenario) else "where"
        try:
            _check_region(spec, layout)
        except RecipeError as error:
            raise RecipeError(str(error), keys=(("scenarios", index, key),)) from None


def _check_region(spec: ScenarioSpec, layout: Layout) -> None:
    if not isinstance(spec, JouleScenario):
        if spec.x_mm is None or spec.y_mm is None:
            _region_mask(layout, spec.where)
    elif spec.region in (ONE_CELL, ONE_STRIP):
        _require_cells(int(np.count_nonzero(layout.cell_id >= 0)), spec.region, layout)
    else:
        _region_mask(layout, spec.region)


def _draw_joule_region(
    spec: JouleScenario, layout: Layout, rng: np.random.Generator
) -> dict[str, Any]:
    """Draw the cell or strip that a joule scenario heats, or check its region."""
    if spec.region == ONE_CELL:
        cell_ids = np.unique(layout.cell_id[layout.cell_id >= 0])
        _require_cells(cell_ids.size, spec.region, layout)
        return {"cell_id": int(cell_ids[rng.integers(cell_ids.size)])}
    if spec.region == ONE_STRIP:
        assert spec.strip_width_mm is not None  # checked by JouleScenario
        return _draw_strip(draw(spec.strip_width_mm, rng), layout, rng)

    _region_mask(layout, spec.region)
    return {}


def _require_cells(n_cells: int, region: str, layout: Layout) -> None:
    if n_cells == 0:
        raise RecipeError(
            f"scenario region {region!r} needs cells, but layout "
            f"{layout.name!r} has none; choose a layout with cells or a region"
        )


def _draw_strip(
    width_mm: float, layout: Layout, rng: np.random.Generator
) -> dict[str, float]:
    """Place a band ``width_mm`` wide [mm] inside the cells' x extent.

    A band wider than the cells is cut to their extent.
    """
    columns = np.nonzero((layout.cell_id >= 0).any(axis=0))[0]
    _require_cells(columns.size, ONE_STRIP, layout)
    left_mm = columns[0] * layout.dx_mm
    right_mm = (columns[-1] + 1) * layout.dx_mm
    width_mm = min(width_mm, right_mm - left_mm)

    x_mm = rng.uniform(left_mm + width_mm / 2, right_mm - width_mm / 2)
    return {"strip_width_mm": float(width_mm), "x_mm": float(x_mm)}


def _strip_mask(layout: Layout, x_mm: float, width_mm: float) -> np.ndarray:
    """Grid cells whose centres lie in the band, from the first to the last cell row.

    A band narrower than one grid cell heats the column nearest its centre.
    """
    rows = np.nonzero((layout.cell_id >= 0).any(axis=1))[0]
    in_rows = np.zeros(layout.shape[0], dtype=bool)
    in_rows[rows[0] : rows[-1] + 1] = True

    offset_mm = np.abs((np.arange(layout.shape[1]) + 0.5) * layout.dx_mm - x_mm)
    in_band = offset_mm <= width_mm / 2
    in_band[np.argmin(offset_mm)] = True
    return in_rows[:, None] & in_band[None, :]


def _joule_mask(layout: Layout, params: dict[str, Any]) -> np.ndarray:
    """Return the heated mask of a joule scenario: a region, one cell or a strip."""
    if params["region"] == ONE_CELL:
        return layout.cell_id == params["cell_id"]
    if params["region"] == ONE_STRIP:
        return _strip_mask(layout, params["x_mm"], params["strip_width_mm"])
    return _region_mask(layout, params["region"])


def _layer_indices(layer: str, layout: Layout, n_layers: int) -> tuple[int, ...]:
    """Return the simulation layers of ``top``, ``middle`` or ``bottom``.

    They are the first, middle and last layers of the in-plane map
    (`Layout.in_plane_layers`): with a can's walls as stack layers, the
    electrode stack's, and without a stack all ``n_layers``. ``middle`` of an
    even number of layers is the two centre layers, which share the source's
    power equally and meet at the mid-plane where the layers are equally
    thick. Of an odd number it is the centre layer.
    """
    layers = layout.in_plane_layers(n_layers)
    half = layers.size // 2
    position = {
        "top": [0],
        "middle": [half - 1, half] if layers.size % 2 == 0 else [half],
        "bottom": [layers.size - 1],
    }
    return tuple(int(layers[i]) for i in position[layer])


def _draw_position(
    spec: HotspotScenario | HeldPatchScenario | RunawayScenario,
    layout: Layout,
    rng: np.random.Generator,
) -> dict[str, float]:
    if spec.x_mm is not None and spec.y_mm is not None:
        return {"x_mm": draw(spec.x_mm, rng), "y_mm": draw(spec.y_mm, rng)}

    rows, cols = np.nonzero(_region_mask(layout, spec.where))
    pick = int(rng.integers(len(rows)))
    x_mm = (cols[pick] + rng.uniform()) * layout.dx_mm
    y_mm = (rows[pick] + rng.uniform()) * layout.dy_mm
    if spec.x_mm is not None:
        x_mm = draw(spec.x_mm, rng)
    if spec.y_mm is not None:
        y_mm = draw(spec.y_mm, rng)
    return {"x_mm": float(x_mm), "y_mm": float(y_mm)}


def _region_mask(layout: Layout, where: str) -> np.ndarray:
    if where == "cells":
        mask = layout.cell_id >= 0
    elif where == "any":
        mask = np.ones(layout.shape, dtype=bool)
    elif where in layout.regions:
        mask = layout.regions[where]
    else:
        names = ", ".join(["cells", "any", *sorted(layout.regions)])
        raise RecipeError(
            f"scenario region {where!r} does not exist in layout {layout.name!r}; "
            f"choose one of: {names}"
        )
    if not mask.any():
        raise RecipeError(
            f"scenario region {where!r} is empty in layout {layout.name!r}; "
            "choose another region or change the layout"
        )
    return mask
