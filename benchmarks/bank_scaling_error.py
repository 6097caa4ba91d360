"""How far a scaled bank rise is from a direct simulation, per shipped recipe.

A bank reuses a simulated rise at another power by scaling it, which is
exact only without radiation (docs/bank.md). This script draws scenarios
of linear amplitude (hotspot, joule, held_patch) from each still recipe
and simulates each at its drawn amplitude a. It then simulates it again at
a new amplitude b, once redrawn from the recipe as the bank does and once
at ``--factor`` times a, and takes the largest |rise(b) - b/a rise(a)|
over the face as a fraction of the peak of rise(b). The result goes to
benchmarks/results/bank_scaling_error.md.

    OMP_NUM_THREADS=1 python benchmarks/bank_scaling_error.py [--draws 20]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from thermosynth.bank import LINEAR_AMPLITUDE, _redraw_amplitude
from thermosynth.pipeline import Generator
from thermosynth.recipe import load_recipe
from thermosynth.scenario import choose_scenario, draw_scenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
RECIPES = (
    "flir-pouch-cell.yaml",
    "battery-station-inferno.yaml",
    "radiometric-cabinet.yaml",
    "pv-module-hotspots.yaml",
)
OUT = ROOT / "benchmarks" / "results" / "bank_scaling_error.md"


def relative_error(drawn, factor: float, layout, recipe, base) -> tuple[float, float]:  # noqa: ANN001
    """Return the scaling error / peak and the peak [K] at ``factor`` times."""
    key = LINEAR_AMPLITUDE[drawn.kind]
    params = {**drawn.params, key: drawn.params[key] * factor}
    direct = simulate_scenario(replace(drawn, params=params), layout, recipe)[-1]
    peak = float(direct.max())
    return float(np.abs(direct - factor * base).max()) / peak, peak


def recipe_errors(name: str, draws: int, factor: float) -> dict[str, list[float]]:
    """Return errors / peak, factors and peaks [K] of ``draws`` scenarios."""
    loaded = load_recipe(ROOT / "recipes" / name)
    recipe, layout = loaded.recipe, Generator(loaded).layout
    linear = [s for s in recipe.scenarios if s.kind in LINEAR_AMPLITUDE]
    rng = np.random.default_rng(0)
    out: dict[str, list[float]] = {"redrawn": [], "factor": [], "fixed": [], "peak": []}
    for _ in range(draws):
        spec = choose_scenario(linear, rng)
        drawn = draw_scenario(spec, layout, rng)
        base = simulate_scenario(drawn, layout, recipe)[-1]
        _, redrawn = _redraw_amplitude(spec, drawn, rng)

        out["redrawn"].append(relative_error(drawn, redrawn, layout, recipe, base)[0])
        out["factor"].append(redrawn)
        error, peak = relative_error(drawn, factor, layout, recipe, base)
        out["fixed"].append(error)
        out["peak"].append(peak)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20, help="scenarios per recipe")
    parser.add_argument("--factor", type=float, default=4.0, help="amplitude factor")
    args = parser.parse_args()
    start = time.perf_counter()

    lines = []
    for name in RECIPES:
        e = recipe_errors(name, args.draws, args.factor)
        lines.append(
            f"| {name} | {min(e['factor']):.2f}-{max(e['factor']):.2f} | "
            f"{np.median(e['redrawn']):.1e} | {max(e['redrawn']):.1e} | "
            f"{np.median(e['fixed']):.1e} | {max(e['fixed']):.1e} | "
            f"{min(e['peak']):.0f}-{max(e['peak']):.0f} |\n"
        )

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        "# Error of a scaled bank rise against a direct simulation\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/bank_scaling_error.py --draws "
        f"{args.draws} --factor {args.factor:g}`, {stamp}, {platform.machine()}, "
        f"{time.perf_counter() - start:.0f} s. Seed 0; each recipe's scenarios "
        "of linear amplitude. Error: the largest |rise(b) - b/a rise(a)| over "
        "the face over the peak of rise(b), for b redrawn from the recipe as "
        f"the bank does (b/a in the second column) and for b = {args.factor:g} a "
        f"(whose peaks the last column gives).\n\n"
        "| recipe | b/a redrawn | median error, redrawn | largest, redrawn | "
        f"median error, b = {args.factor:g} a | largest, b = {args.factor:g} a | "
        f"peak at {args.factor:g} a [K] |\n"
        "|---|---|---|---|---|---|---|\n" + "".join(lines)
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
