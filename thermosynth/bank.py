"""A bank of simulated rises: simulate a scenario once, blend it many times.

Each entry contains the final rise of the imaged face [K] of one drawn scenario
and, for a runaway, each battery cell's event times [s].
An entry is keyed by a SHA-256 of the layout (its property maps, regions,
spacing and through-thickness stack), the physics section of the recipe, the
solver and its version, and the drawn scenario. A key that matches therefore
never serves a rise computed for another geometry, boundary or solver.

When an anomalous sample reuses an entry, its own generator chooses the
scenario by weight, picks one of that scenario's entries, redraws the
scenario's amplitude (power or held rise) and picks one of the mirror images
that the layout allows. What stays exact:

- A mirror image is exact when the layout's property maps and source regions
  are mirror-symmetric, because the boundary and initial state are uniform.
  A translation is not offered. On a heterogeneous layout (cells, gaps, tabs)
  a shifted source sees other materials, so its rise differs.
- Scaling by the amplitude is exact to round-off when the problem is linear:
  no radiation (every emissivity 0), temperature-independent properties and
  no runaway chemistry. With radiation the loss coefficient grows with
  temperature, so a scaled rise is an approximation. Measured on the shipped
  recipes with a 4x power scale, the error was 3e-5 to 2e-4 of the peak rise
  on the pouch, module and prismatic cells and 1 to 2 % on the PV module,
  where radiation carries most of the loss (peaks of 20 to 37 K).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np
from tqdm import tqdm

from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layout
from thermosynth.recipe.distributions import draw
from thermosynth.recipe.loading import tidy_path
from thermosynth.recipe.models import Recipe
from thermosynth.scenario import (
    DrawnScenario,
    choose_scenario_index,
    draw_scenario,
    mean_count,
)
from thermosynth.simulation import RUNAWAY_EVENTS

logger = logging.getLogger(__name__)

# Version of the fast solver's numerics. Raise it when a change to
# thermosynth.physics.fast changes results beyond round-off, so that old
# entries stop matching.
FAST_SOLVER_VERSION = "1"

# The same for thermosynth.physics.adi. An "adi" bank key names both
# versions, because scenarios with held patches fall back to the fast solver.
# Version 3 adds the start-up sub-steps after a change of source power,
# which a ramp takes in only some of its steps.
ADI_SOLVER_VERSION = "3"

# Version of how a drawn scenario becomes the imaged rise: the heat sources
# of thermosynth.scenario.build_sources and the masking in
# thermosynth.simulation.simulate_scenario. Raise it when either changes
# (version 2 keeps a hotspot's disc inside the battery cells, version 3
# zeroes the rise of background air, version 4 splits a ``middle`` source of
# an even number of layers between the two layers at the mid-plane).
SOURCES_VERSION = "4"

# Spawn key of the entries' random streams; samples use 1 and splits 0.
_BANK_STREAM = 2

# The parameter that a scenario's rise is proportional to, per kind.
LINEAR_AMPLITUDE = {"hotspot": "power_W", "joule": "power_W", "held_patch": "rise_K"}

SYMMETRIES = ("identity", "flip_x", "flip_y", "rotate_180")

# Seconds between two writes of a bank file while its entries are simulated.
# Each write rewrites the whole file, so the interval bounds the share of the
# build spent writing. A build killed without cleanup (SIGKILL, power loss)
# loses the entries finished since the last write.
WRITE_INTERVAL_S = 30.0

CellTimes = dict[str, list[float | None]]
"""A runaway's ``onset_s``, ``short_s`` and ``vent_s`` [s] per battery cell id."""

SimulatedEntry = tuple[np.ndarray, CellTimes]
"""Final rise of the imaged face [K], shape (ny, nx), and a runaway's cell times."""

PlannedEntry = tuple[str, int, DrawnScenario]
"""Key, scenario index and drawn scenario of one planned entry."""


class SimulateFn(Protocol):
    """Callable that simulates the drawn scenario of one bank entry.

    It returns the final rise of the imaged face [K] and, for a runaway, fills
    ``events`` with each cell's event times as
    `thermosynth.simulation.simulate_scenario` does.
    """

    def __call__(self, drawn: DrawnScenario, *, events: CellTimes) -> np.ndarray: ...


class EntryRunner(Protocol):
    """Callable that simulates the drawn scenarios of several bank entries.

    It yields ``(i, (rise_K, events))`` for ``drawns[i]`` as each simulation
    finishes, in any order, as `SimulateFn` would compute them.
    `thermosynth.distributed.simulate_entries` runs them on a Dask cluster.
    """

    def __call__(
        self, drawns: Sequence[DrawnScenario]
    ) -> Iterator[tuple[int, SimulatedEntry]]: ...


@dataclass(frozen=True)
class BankEntry:
    """One simulated scenario and its rise.

    Attributes
    ----------
    key : str
        SHA-256 of the layout, physics, solver and drawn scenario.
    scenario_index : int
        Index of the scenario in the recipe's ``scenarios`` list.
    drawn : DrawnScenario
        The scenario as simulated.
    rise_K : ndarray
        Final rise of the imaged face [K], shape (ny, nx).
    events : dict
        A runaway's per-cell times (`CellTimes`), indexed by cell id with None
        where the event did not happen. Empty for other kinds, and for
        runaway entries of bank files written before the times were stored.
    """

    key: str
    scenario_index: int
    drawn: DrawnScenario
    rise_K: np.ndarray
    events: CellTimes = field(default_factory=dict)


def solver_version(solver: str, *, precision: str = "float64") -> str:
    """Return the name and version of a solver, as stored in bank keys.

    ``precision`` is named only for ``adi`` in float32, the one solver and
    setting that it changes.
    """
    if solver == "fast":
        return f"fast-{FAST_SOLVER_VERSION}"
    if solver == "adi":
        single = "-float32" if precision == "float32" else ""
        return f"adi-{ADI_SOLVER_VERSION}{single}-fast-{FAST_SOLVER_VERSION}"

    try:
        return f"fipy-{version('fipy')}"
    except PackageNotFoundError:
        return "fipy-unknown"


# Material properties that the solvers read [W m-1 K-1, J m-3 K-1].
_PROPERTIES = ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK", "rho_cp_J_m3K")


def layout_key(layout: Layout) -> str:
    """Return a SHA-256 of everything in a layout that the simulation reads."""
    digest = hashlib.sha256()
    spacing = (layout.dx_mm, layout.dy_mm, layout.thickness_mm)
    digest.update(np.asarray(spacing, dtype=float).tobytes())
    for name in _PROPERTIES:
        digest.update(np.ascontiguousarray(layout.property_map(name)).tobytes())

    digest.update(np.ascontiguousarray(layout.cell_id >= 0).tobytes())
    for name in sorted(layout.regions):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(layout.regions[name]).tobytes())
    # Only a stack adds to the digest, so keys of layouts without one stay
    # as they were before stacks existed.
    if layout.layers is not None:
        digest.update(_stack_json(layout).encode())
    return digest.hexdigest()


def _stack_json(layout: Layout) -> str:
    """Return the layout's stack as JSON: each layer and its material's properties."""
    materials = {m.name: m for m in layout.materials}
    layers = []
    for layer in layout.layers or ():
        properties = None
        if layer.material is not None:
            material = materials[layer.material]
            properties = [float(getattr(material, key)) for key in _PROPERTIES]
        layers.append(
            {
                "thickness_mm": float(layer.thickness_mm),
                "material": layer.material,
                "properties": properties,
                "n": int(layer.n),
                "region": layer.region,
            }
        )
    return json.dumps(layers, sort_keys=True)


def group_key(layout: Layout, recipe: Recipe) -> str:
    """Return the key shared by the entries of one layout, physics, solver, sources."""
    # precision enters through the solver's name, so that keys of solvers
    # that ignore it stay as they were before the key existed.
    physics = recipe.physics.model_dump(mode="json", exclude={"precision"})
    solver = solver_version(recipe.physics.solver, precision=recipe.physics.precision)
    sources = f"sources-{SOURCES_VERSION}"
    text = json.dumps([layout_key(layout), physics, solver, sources], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_key(group: str, drawn: DrawnScenario) -> str:
    """Return the key of one drawn scenario within a group."""
    text = json.dumps([group, _drawn_to_json(drawn)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def is_linear(recipe: Recipe, kind: str) -> bool:
    """Return whether a rise of ``kind`` scales exactly with its amplitude."""
    physics = recipe.physics
    emissivities = [
        physics.emissivity_top,
        physics.emissivity_bottom,
        *physics.emissivity_top_regions.values(),
    ]
    no_radiation = all(value == 0 for value in emissivities)
    return no_radiation and kind in LINEAR_AMPLITUDE


def layout_symmetries(
    layout: Layout, *, regions: Sequence[str] | None = None
) -> list[str]:
    """Return the mirror images that leave the layout's physics unchanged.

    A symmetry is allowed when every property map, the cell mask, each
    region in ``regions`` (all named regions by default) and each region
    that a stack layer fills equal their own mirror image, so a mirrored
    source is a valid draw and its rise is the mirrored rise.
    """
    names = set(layout.regions) if regions is None else set(regions)
    names |= {layer.region for layer in layout.layers or () if layer.region}
    maps = [layout.property_map(name) for name in _PROPERTIES]
    maps.append(layout.cell_id >= 0)
    maps.extend(
        layout.regions[name] for name in sorted(names) if name in layout.regions
    )
    return [
        name
        for name in SYMMETRIES
        if all(np.array_equal(apply_symmetry(m, name), m) for m in maps)
    ]


def apply_symmetry(field: np.ndarray, symmetry: str) -> np.ndarray:
    """Return ``field`` (..., ny, nx) mirrored by ``symmetry``."""
    if symmetry == "identity":
        return field
    if symmetry == "flip_x":
        return field[..., ::-1]
    if symmetry == "flip_y":
        return field[..., ::-1, :]
    if symmetry == "rotate_180":
        return field[..., ::-1, ::-1]
    raise RecipeError(
        f"symmetry {symmetry!r} is unknown; choose one of {', '.join(SYMMETRIES)}"
    )


def superpose(rises_K: Sequence[np.ndarray], scales: Sequence[float]) -> np.ndarray:
    """Return ``sum(scale * rise)`` [K]: the rise of several sources together.

    Exact to round-off for a linear problem (see :func:`is_linear`) whose
    sources share the layout, physics, duration and time profile shape.
    """
    if len(rises_K) != len(scales) or not rises_K:
        raise RecipeError(
            f"superpose: {len(rises_K)} rises and {len(scales)} scales; give "
            "one scale per rise, at least one"
        )
    total = np.zeros_like(np.asarray(rises_K[0], dtype=float))
    for rise, scale in zip(rises_K, scales, strict=True):
        total += float(scale) * np.asarray(rise, dtype=float)
    return total


def bank_size(recipe: Recipe) -> int:
    """Return the number of entries: ``bank.size``, or derived from the split.

    Without ``bank.size``, each entry serves ``bank.reuse_per_entry`` of the
    sources that the anomalous samples draw, on average, so a scenario with
    ``count`` gets more entries.

    `ScenarioBank.open` adds one entry for each scenario that these leave
    without an entry (see `bank_scenarios`).
    """
    spec = recipe.bank
    if spec.size is not None:
        return spec.size
    return max(1, math.ceil(_sources_drawn(recipe) / spec.reuse_per_entry))


def _sources_drawn(recipe: Recipe) -> float:
    """Return the mean number of sources that the anomalous samples draw in all."""
    n_samples = recipe.split.test_anomalous
    counts = [mean_count(spec) for spec in recipe.scenarios]
    if all(count == 1 for count in counts):
        return float(n_samples)
    weights = [spec.weight for spec in recipe.scenarios]
    per_sample = sum(w * c for w, c in zip(weights, counts, strict=True)) / sum(weights)
    return n_samples * per_sample


def resolve_bank_path(path: Path, recipe_source: str) -> Path:
    """Resolve a relative bank path against the recipe file's folder.

    The embedded demo recipe (source ``<demo>``) resolves against the current
    folder, as its output folder does.
    """
    if path.is_absolute():
        return path
    base = Path.cwd() if recipe_source.startswith("<") else Path(recipe_source).parent
    return tidy_path((base / path).absolute())


class ScenarioBank:
    """Entries of one recipe, in memory, and the draw of a sample from them.

    Use :meth:`open` to read or build the bank that a recipe requests.
    """

    def __init__(
        self, entries: Sequence[BankEntry], recipe: Recipe, layout: Layout
    ) -> None:
        if not entries:
            raise RecipeError(
                "scenario bank: no entries; give bank.size >= 1",
                keys=(("bank", "size"),),
            )
        self.entries = list(entries)
        self.recipe = recipe
        self.layout = layout
        self._by_scenario: dict[int, list[BankEntry]] = {}
        for entry in self.entries:
            self._by_scenario.setdefault(entry.scenario_index, []).append(entry)
        self.variation = RiseVariation(recipe, layout)
        self.symmetries = self.variation.symmetries

    @classmethod
    def open(
        cls,
        recipe: Recipe,
        layout: Layout,
        simulate: SimulateFn,
        *,
        path: Path,
        progress: bool = False,
        run_entries: EntryRunner | None = None,
        write_interval_s: float = WRITE_INTERVAL_S,
    ) -> ScenarioBank:
        """Read the recipe's entries from ``path``, simulating where asked.

        Parameters
        ----------
        recipe : Recipe
            Its ``bank.mode`` decides: ``reuse`` reads the stored entries and
            simulates only the missing ones; ``build`` simulates every entry
            again. Either rewrites the file atomically when it adds entries,
            keeping the entries of other recipes.
        layout : Layout
            The recipe's layout.
        simulate : SimulateFn
            Called as ``simulate(drawn, events=events)``; returns the final
            rise of the imaged face [K] and fills ``events`` for a runaway.
        path : Path
            The bank file, already resolved.
        progress : bool, optional
            Show a progress bar over the entries to simulate.
        run_entries : EntryRunner, optional
            Simulates the missing entries instead of calling ``simulate`` on
            each in turn, for example on the workers of a cluster.
        write_interval_s : float, optional
            Time between two writes of the file while entries are simulated
            [s]. A write adds the entries finished since the last one, so an
            interrupted build keeps them. 0 writes after every entry.

        Raises
        ------
        KeyboardInterrupt
            Of the type caught, after the finished entries are written. Its
            message states how many entries the file keeps.
        """
        group, planned = _plan_entries(recipe, layout)
        stored = _read_entries(path, [key for key, _, _ in planned])
        if recipe.bank.mode == "build":
            stored = {}
        missing = [p for p in planned if p[0] not in stored]
        _log_open(path, len(missing), len(planned))

        if missing:
            if run_entries is None:
                run_entries = _serial_runner(simulate)
            builder = _BankBuilder(path, group, missing, write_interval_s)
            stored.update(builder.build(run_entries, recipe, progress=progress))

        _warn_missing_times(path, planned, stored)
        entries = [
            BankEntry(key, index, drawn, *stored[key]) for key, index, drawn in planned
        ]
        return cls(entries, recipe, layout)

    @classmethod
    def read(cls, recipe: Recipe, layout: Layout, *, path: Path) -> ScenarioBank:
        """Read the recipe's entries from ``path`` without simulating or writing.

        Worker processes read the bank that the client built, whatever
        ``bank.mode`` is.

        Raises
        ------
        RecipeError
            If ``path`` lacks any of the recipe's entries.
        """
        _, planned = _plan_entries(recipe, layout)
        stored = _read_entries(path, [key for key, _, _ in planned])
        n_missing = sum(key not in stored for key, _, _ in planned)
        if n_missing:
            raise RecipeError(
                f"scenario bank {path} lacks {n_missing} of {_entries(len(planned))} "
                "of this recipe; a worker reads the bank that the client built, "
                "so it must see the file at the same path (a shared file system), "
                "and no other run may rewrite the file meanwhile"
            )
        _warn_missing_times(path, planned, stored)
        entries = [
            BankEntry(key, index, drawn, *stored[key]) for key, index, drawn in planned
        ]
        return cls(entries, recipe, layout)

    def draw(
        self,
        rng: np.random.Generator,
        *,
        scenario_index: int | None = None,
        avoid: Collection[str] = (),
    ) -> tuple[DrawnScenario, np.ndarray, dict]:
        """Draw an entry, an amplitude and a mirror image for one sample.

        Parameters
        ----------
        rng : Generator
            The sample's generator.
        scenario_index : int, optional
            Index in the recipe's ``scenarios`` of the scenario to draw; the
            entry is drawn uniformly among that scenario's entries. A sample
            chooses it once and passes it to every retry, so a retry keeps
            the scenario. None chooses it here by weight, with
            `thermosynth.scenario.choose_scenario_index`.
        avoid : collection of str, optional
            Keys of entries that the sample drew already, for its other
            sources (``count``). The entry is drawn among the others, unless
            the scenario has no other.

        Returns
        -------
        drawn : DrawnScenario
            The scenario the rise stands for, positions mirrored and the
            amplitude redrawn.
        rise_K : ndarray
            Rise of the imaged face [K], (ny, nx).
        info : dict
            ``bank_entry``, ``bank_scale``, ``bank_symmetry`` and
            ``bank_exact`` (false where scaling is an approximation) for the
            sample's metadata. A runaway entry adds its ``onset_s``,
            ``short_s`` and ``vent_s`` lists, reordered so that each cell id
            gets the times of the entry's cell that the mirror image puts there.

        Raises
        ------
        RecipeError
            If the bank has no entry of the scenario. `open` plans at least
            one entry of every scenario.
        """
        if scenario_index is None:
            scenario_index = choose_scenario_index(self.recipe.scenarios, rng)
        entries = self._by_scenario.get(scenario_index)
        if not entries:
            raise RecipeError(
                f"scenario bank: no entry of scenario {scenario_index} "
                f"(of {len(self.recipe.scenarios)}); open the bank with "
                "ScenarioBank.open, which plans at least one entry per scenario"
            )
        unused = [entry for entry in entries if entry.key not in avoid]
        entries = unused or entries
        entry = entries[int(rng.integers(len(entries)))]
        drawn, rise, varied = self.variation.draw(
            entry.drawn,
            entry.rise_K,
            entry.events,
            rng,
            scenario_index=entry.scenario_index,
        )
        return drawn, rise, {"bank_entry": entry.key, **varied}


class RiseVariation:
    """Redraw of a stored rise's amplitude and mirror image for one sample.

    `ScenarioBank` applies it to its entries, and
    `thermosynth.datasets.OnTheFlyDataset` to the slots of its in-memory bank,
    so both vary a stored rise by the same rules (see the module docstring).

    Attributes
    ----------
    symmetries : list of str
        The mirror images that leave the layout's physics unchanged, given
        the regions that the recipe's scenarios and emissivities use.
    """

    def __init__(self, recipe: Recipe, layout: Layout) -> None:
        self.recipe = recipe
        self.layout = layout
        used = {getattr(s, "where", None) for s in recipe.scenarios}
        used |= {getattr(s, "region", None) for s in recipe.scenarios}
        used |= set(recipe.physics.emissivity_top_regions)
        self.symmetries = layout_symmetries(
            layout, regions=[name for name in used if name is not None]
        )

    def draw(
        self,
        drawn: DrawnScenario,
        rise_K: np.ndarray,
        events: CellTimes,
        rng: np.random.Generator,
        *,
        scenario_index: int,
    ) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
        """Draw a mirror image and a new amplitude of one stored rise.

        Parameters
        ----------
        drawn : DrawnScenario
            The scenario as simulated.
        rise_K : ndarray
            Its rise of the imaged face [K], (ny, nx).
        events : CellTimes
            A runaway's per-cell times; empty for other kinds.
        rng : Generator
            The sample's generator. It draws the mirror image, then the
            amplitude from scenario ``scenario_index``'s distribution.
        scenario_index : int
            Index of ``drawn``'s scenario in the recipe's ``scenarios``.

        Returns
        -------
        drawn : DrawnScenario
            The scenario the rise stands for, positions mirrored and the
            amplitude redrawn. Kinds without a linear amplitude (runaway)
            keep theirs, at scale 1.
        rise_K : ndarray
            The stored rise, mirrored and scaled by the ratio of the new
            amplitude to the stored one [K], (ny, nx).
        info : dict
            ``bank_scale``, ``bank_symmetry`` and ``bank_exact`` (false where
            scaling is an approximation, as with radiation), and a runaway's
            ``onset_s``, ``short_s`` and ``vent_s`` lists, reordered so that
            each cell id gets the times of the stored cell that the mirror
            image puts there.
        """
        symmetry = self.symmetries[int(rng.integers(len(self.symmetries)))]
        spec = self.recipe.scenarios[scenario_index]
        params, scale = _redraw_amplitude(spec, drawn, rng)
        params = _mirror_params(params, symmetry, self.layout)

        rise = scale * apply_symmetry(rise_K, symmetry)
        if drawn.kind in LINEAR_AMPLITUDE:
            # These sources only add heat, so the rise is >= 0. The solvers
            # leave round-off of about -1e-14 K far from the source, which the
            # blend step rejects as negative.
            rise = np.maximum(rise, 0.0)
        exact = scale == 1.0 or is_linear(self.recipe, drawn.kind)
        info = {
            "bank_scale": scale,
            "bank_symmetry": symmetry,
            "bank_exact": bool(exact),
            **_mirror_cell_times(events, symmetry, self.layout),
        }
        return replace(drawn, params=params), np.ascontiguousarray(rise), info


def _plan_entries(recipe: Recipe, layout: Layout) -> tuple[str, list[PlannedEntry]]:
    """Return the group key and every planned entry of the recipe's bank."""
    group = group_key(layout, recipe)
    # A scenario's share of the entries is its share of the sources drawn.
    weights = [spec.weight * mean_count(spec) for spec in recipe.scenarios]
    kinds = bank_scenarios(weights, bank_size(recipe))
    planned = [
        _plan_entry(recipe, layout, group, i, kind) for i, kind in enumerate(kinds)
    ]
    return group, planned


def _plan_entry(
    recipe: Recipe, layout: Layout, group: str, index: int, scenario_index: int
) -> PlannedEntry:
    """Draw entry ``index`` of scenario ``scenario_index`` from its own stream.

    The stream is spawned from the recipe's seed for the entry. Its first
    number is skipped because it used to pick the scenario, so the entries
    of a one-scenario recipe, and the bank files that store them, stay valid.
    """
    rng = np.random.default_rng(
        np.random.SeedSequence(recipe.seed, spawn_key=(_BANK_STREAM, index))
    )
    rng.random()
    drawn = draw_scenario(recipe.scenarios[scenario_index], layout, rng)
    return entry_key(group, drawn), scenario_index, drawn


def bank_scenarios(weights: Sequence[float], n_entries: int) -> list[int]:
    """Return the scenario of each planned entry: stratified, then one per missing.

    The first ``n_entries`` follow `stratified_scenarios`. Then each scenario
    that none of them took gets one more entry, in scenario order, because
    a sample draws only entries of the scenario it chose by weight.
    """
    kinds = stratified_scenarios(weights, n_entries)
    with_entry = set(kinds)
    return kinds + [i for i in range(len(weights)) if i not in with_entry]


def stratified_scenarios(weights: Sequence[float], n_entries: int) -> list[int]:
    """Return the scenario of each bank entry, in shares that follow ``weights``.

    Each entry goes to the scenario furthest below its share of the entries
    so far (the lowest index on a tie). So after any first ``n`` entries a
    scenario of weight share ``w`` has within one of ``w * n`` entries, a
    small bank contains every kind whose share is at least one entry, and a
    bank that grows keeps its first entries.
    """
    shares = np.asarray(weights, dtype=float) / float(np.sum(weights))
    counts = np.zeros(len(shares))
    kinds = []
    for n in range(1, n_entries + 1):
        kind = int(np.argmax(shares * n - counts))
        counts[kind] += 1
        kinds.append(kind)
    return kinds


def _redraw_amplitude(
    spec: Any, drawn: DrawnScenario, rng: np.random.Generator
) -> tuple[dict[str, Any], float]:
    """Return the params with a new amplitude and the ratio new / entry."""
    params = dict(drawn.params)
    key = LINEAR_AMPLITUDE.get(drawn.kind)
    if key is None:
        return params, 1.0

    if drawn.kind == "joule":
        params["current_A"] = draw(spec.current_A, rng)
        params["resistance_mohm"] = draw(spec.resistance_mohm, rng)
        params["power_W"] = params["current_A"] ** 2 * params["resistance_mohm"] * 1e-3
    else:
        params[key] = draw(getattr(spec, key), rng)
    return params, float(params[key]) / float(drawn.params[key])


def _mirror_params(
    params: dict[str, Any], symmetry: str, layout: Layout
) -> dict[str, Any]:
    """Mirror the source position in ``params`` [mm] with the rise."""
    if "x_mm" in params and symmetry in ("flip_x", "rotate_180"):
        params["x_mm"] = layout.width_mm - params["x_mm"]
    if "y_mm" in params and symmetry in ("flip_y", "rotate_180"):
        params["y_mm"] = layout.height_mm - params["y_mm"]
    if "cell_id" in params:
        # The heated cell moves with the rise. On a symmetric grid of equal
        # cells, such as cell_grid, the mirror image of a cell is one cell.
        mirrored = apply_symmetry(layout.cell_id == params["cell_id"], symmetry)
        params["cell_id"] = int(layout.cell_id[mirrored][0])
    return params


def _mirror_cell_times(events: CellTimes, symmetry: str, layout: Layout) -> CellTimes:
    """Reorder per-cell times to follow a rise mirrored by ``symmetry``.

    Cell ``c`` of the mirrored rise behaves as the entry's cell at ``c``'s
    mirror image, so it takes that cell's times.

    Raises
    ------
    RecipeError
        If the mirror image of a battery cell covers parts of several cells.
        `layout_symmetries` checks only the mask of all cells, so cells of
        unequal sizes side by side can pass it.
    """
    if not events:
        return {}
    cells = layout.cell_id >= 0
    mirrored = apply_symmetry(layout.cell_id, symmetry)
    # Each column pairs a cell with the entry's cell at its mirror image.
    pairs = np.unique(np.stack([layout.cell_id[cells], mirrored[cells]]), axis=1)
    if np.unique(pairs[0]).size != pairs.shape[1]:
        raise RecipeError(
            f"layout {layout.name!r}: the {symmetry} mirror image of a battery "
            "cell covers parts of several cells, so a banked runaway cannot be "
            "mirrored; set bank.mode: off for runaway scenarios on this layout",
            keys=(("bank", "mode"),),
        )
    source = np.arange(int(layout.cell_id.max()) + 1)
    source[pairs[0]] = pairs[1]
    return {name: [times[i] for i in source] for name, times in events.items()}


def _drawn_to_json(drawn: DrawnScenario) -> dict[str, Any]:
    return {
        "kind": drawn.kind,
        "name": drawn.name,
        "duration_s": drawn.duration_s,
        "params": drawn.params,
    }


def _drawn_from_json(text: str) -> DrawnScenario:
    data = json.loads(text)
    return DrawnScenario(
        kind=data["kind"],
        name=data["name"],
        duration_s=float(data["duration_s"]),
        params=data["params"],
    )


def simulate_bank_entry(simulate: SimulateFn, drawn: DrawnScenario) -> SimulatedEntry:
    """Simulate one entry with ``simulate``; return its rise [K] and cell times."""
    events: CellTimes = {}
    rise_K = simulate(drawn, events=events)
    # As `_read_entries` returns it, so that an entry simulated in this run
    # and one read back from the file give the same samples.
    return np.asarray(rise_K, dtype=float), events


def _serial_runner(simulate: SimulateFn) -> EntryRunner:
    """Return an `EntryRunner` that calls ``simulate`` on each entry in turn."""

    def run(drawns: Sequence[DrawnScenario]) -> Iterator[tuple[int, SimulatedEntry]]:
        for i, drawn in enumerate(drawns):
            yield i, simulate_bank_entry(simulate, drawn)

    return run


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _log_open(path: Path, n_missing: int, n_planned: int) -> None:
    if n_missing:
        logger.info(
            "scenario bank: %d of %s to simulate into %s",
            n_missing,
            _entries(n_planned),
            path,
        )
    else:
        logger.info("scenario bank: read %s from %s", _entries(n_planned), path)


class _BankBuilder:
    """Simulate the missing entries of a bank and write them in batches.

    Every ``write_interval_s`` the entries finished since the last write are
    added to the file by an atomic rewrite (`_write_entries`), and so are the
    last ones, or those finished before an exception.
    """

    def __init__(
        self,
        path: Path,
        group: str,
        missing: Sequence[PlannedEntry],
        write_interval_s: float,
    ) -> None:
        self.path = path
        self.group = group
        self.missing = list(missing)
        self.write_interval_s = write_interval_s
        self.done: dict[str, SimulatedEntry] = {}
        self.pending: list[PlannedEntry] = []
        self.n_written = 0

    def build(
        self, run_entries: EntryRunner, recipe: Recipe, *, progress: bool
    ) -> dict[str, SimulatedEntry]:
        """Simulate and write every missing entry; return them by key."""
        start = time.monotonic()
        drawns = [drawn for _, _, drawn in self.missing]
        results = run_entries(drawns)
        try:
            self._collect(results, progress=progress)
            self._write_pending()
        except KeyboardInterrupt as interrupt:
            self._write_after_error()
            raise type(interrupt)(self._interrupted(recipe)) from interrupt
        except BaseException:
            self._write_after_error()
            raise
        finally:
            # Stops a cluster's remaining tasks when the loop ends early.
            close = getattr(results, "close", None)
            if close is not None:
                close()

        logger.info(
            "scenario bank: simulated %s in %.1f s",
            _entries(len(self.done)),
            time.monotonic() - start,
        )
        return self.done

    def _collect(
        self, results: Iterator[tuple[int, SimulatedEntry]], *, progress: bool
    ) -> None:
        """Keep each result, writing the batch every ``write_interval_s``."""
        last_write = time.monotonic()
        bar = tqdm(
            total=len(self.missing),
            disable=not progress,
            unit="entry",
            desc="scenario bank",
        )
        with bar:
            for i, result in results:
                self.done[self.missing[i][0]] = result
                self.pending.append(self.missing[i])
                bar.update()
                if time.monotonic() - last_write >= self.write_interval_s:
                    self._write_pending()
                    last_write = time.monotonic()

    def _write_pending(self) -> None:
        if not self.pending:
            return
        _write_entries(self.path, self.group, self.pending, self.done)
        logger.debug(
            "scenario bank: wrote %s to %s", _entries(len(self.pending)), self.path
        )
        self.n_written += len(self.pending)
        self.pending = []

    def _write_after_error(self) -> None:
        """Write the finished entries; log, and do not raise, if that fails.

        A write that an interrupt stopped is tried once more here.
        """
        try:
            self._write_pending()
        except Exception as error:
            logger.error(
                "scenario bank: could not write %s simulated before the error "
                "to %s: %s",
                _entries(len(self.pending)),
                self.path,
                error,
            )

    def _interrupted(self, recipe: Recipe) -> str:
        n_written, n_missing = self.n_written, len(self.missing)
        if not n_written:
            return (
                f"none of the {_entries(n_missing)} to simulate into the "
                f"scenario bank {self.path} was written"
            )
        rerun = "a rerun"
        if recipe.bank.mode == "build":
            rerun = "a rerun with bank.mode: reuse"
        return (
            f"the scenario bank {self.path} keeps the {n_written} of "
            f"{_entries(n_missing)} simulated before the interrupt, so {rerun} "
            f"simulates only the other {n_missing - n_written}"
        )


def _warn_missing_times(
    path: Path,
    planned: Sequence[PlannedEntry],
    stored: dict[str, SimulatedEntry],
) -> None:
    """Warn once if runaway entries of ``path`` lack their per-cell times."""
    old = {
        key
        for key, _, drawn in planned
        if drawn.kind == "runaway" and not stored[key][1]
    }
    if old:
        logger.warning(
            "scenario bank %s: %d runaway entries were written without per-cell "
            "times, so samples drawn from them lack onset_s, short_s and vent_s; "
            "run once with bank.mode: build, or delete the file, to simulate "
            "them again with the times",
            path,
            len(old),
        )


def _read_entries(path: Path, keys: Sequence[str]) -> dict[str, SimulatedEntry]:
    """Return the rise and per-cell times stored under each of ``keys`` in ``path``.

    Keys that the file lacks are left out.
    """
    if not path.exists():
        return {}

    found: dict[str, SimulatedEntry] = {}
    with h5py.File(path, "r") as bank:
        entries = bank.get("entries")
        if entries is None:
            return {}
        for key in keys:
            if key in entries:
                dataset = entries[key]
                rise_K = np.asarray(dataset[()], dtype=float)
                found[key] = rise_K, _read_cell_times(dataset.attrs)
    return found


def _read_cell_times(attributes: h5py.AttributeManager) -> CellTimes:
    """Return the per-cell times of an entry's attributes, NaN as None."""
    if not all(name in attributes for name in RUNAWAY_EVENTS):
        return {}
    return {
        name: [None if np.isnan(t) else float(t) for t in attributes[name]]
        for name in RUNAWAY_EVENTS
    }


def _write_entries(
    path: Path,
    group: str,
    planned: Sequence[PlannedEntry],
    simulated: dict[str, SimulatedEntry],
) -> None:
    """Write a new bank file with the old entries plus ``planned``, atomically.

    The rise and times of each entry of ``planned`` come from ``simulated``.

    A runaway entry stores each cell's times as float64 attributes named as
    in `RUNAWAY_EVENTS`, NaN where the event did not happen.

    The new file is written beside ``path`` under a temporary name and then
    renamed over it, so a reader never sees a half-written bank.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as bank:
            bank.attrs["format"] = "thermosynth-scenario-bank-1"
            entries = bank.create_group("entries")
            _copy_old_entries(path, entries)
            for key, _, drawn in planned:
                if key in entries:
                    del entries[key]
                rise_K, events = simulated[key]
                dataset = entries.create_dataset(key, data=rise_K)
                dataset.attrs["unit"] = "K"
                dataset.attrs["group"] = group
                dataset.attrs["scenario"] = json.dumps(_drawn_to_json(drawn))
                for name, times in events.items():
                    values = [np.nan if t is None else t for t in times]
                    dataset.attrs[name] = np.asarray(values, dtype=np.float64)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _copy_old_entries(path: Path, entries: h5py.Group) -> None:
    if not path.exists():
        return
    with h5py.File(path, "r") as old:
        for key in old.get("entries", {}):
            if key not in entries:
                old.copy(old["entries"][key], entries, name=key)


def read_bank_entry(path: Path, key: str) -> tuple[DrawnScenario, np.ndarray]:
    """Return the scenario and rise [K] stored under ``key`` in a bank file."""
    with h5py.File(path, "r") as bank:
        if key not in bank.get("entries", {}):
            raise RecipeError(f"scenario bank {path} contains no entry {key}")
        dataset = bank["entries"][key]
        return _drawn_from_json(dataset.attrs["scenario"]), np.asarray(dataset[()])
