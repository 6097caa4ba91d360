"""How far a sum of separate rises is from one run of all sources, per recipe.

A sample with ``count`` sources shows the sum of their separately simulated
rises (`thermosynth.scenario.superpose`), which equals one run of all the
sources together only without radiation (docs/recipes.md). This script
draws pairs of sources from each still recipe's scenarios that take
``count``, gives the second source the first one's duration, and takes the
largest |together - (first + second)| over the face as a fraction of the
peak of the run together. The result goes to
benchmarks/results/superposition_error.md.

    OMP_NUM_THREADS=1 python benchmarks/superposition_error.py [--pairs 20]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from thermosynth.pipeline import Generator
from thermosynth.recipe import load_recipe
from thermosynth.scenario import choose_scenario, draw_scenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
RECIPES = (
    "flir-pouch-cell.yaml",
    "pv-module-hotspots.yaml",
    "pv-thin-film-hotspots.yaml",
)
OUT = ROOT / "benchmarks" / "results" / "superposition_error.md"


def takes_count(spec) -> bool:  # noqa: ANN001
    """Return whether a scenario may have ``count`` above 1."""
    if spec.kind == "hotspot":
        return True
    return spec.kind == "joule" and spec.region in ("one_cell", "one_strip")


def pair_error(spec, layout, recipe, rng) -> tuple[float, float]:  # noqa: ANN001
    """Return the error / peak and the peak [K] of one drawn pair."""
    first = draw_scenario(spec, layout, rng)
    second = replace(draw_scenario(spec, layout, rng), duration_s=first.duration_s)
    together = simulate_scenario(first, layout, recipe, together_with=[second])[-1]
    apart = (
        simulate_scenario(first, layout, recipe)[-1]
        + simulate_scenario(second, layout, recipe)[-1]
    )
    peak = float(together.max())
    return float(np.abs(together - apart).max()) / peak, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="pairs per recipe")
    args = parser.parse_args()
    start = time.perf_counter()

    lines = []
    for name in RECIPES:
        loaded = load_recipe(ROOT / "recipes" / name)
        recipe, layout = loaded.recipe, Generator(loaded).layout
        eligible = [spec for spec in recipe.scenarios if takes_count(spec)]
        rng = np.random.default_rng(0)
        errors, peaks = zip(
            *(
                pair_error(choose_scenario(eligible, rng), layout, recipe, rng)
                for _ in range(args.pairs)
            ),
            strict=True,
        )
        names = ", ".join(spec.name or spec.kind for spec in eligible)
        lines.append(
            f"| {name} | {names} | {np.median(errors):.1e} | {max(errors):.1e} | "
            f"{min(peaks):.1f}-{max(peaks):.1f} |\n"
        )

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        "# Error of superposed rises against one run of all sources\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/superposition_error.py --pairs "
        f"{args.pairs}`, {stamp}, {platform.machine()}, "
        f"{time.perf_counter() - start:.0f} s. Seed 0; pairs of sources drawn "
        "from each recipe's scenarios that take `count`, the second at the "
        "first one's duration. Error: the largest |together - (first + "
        "second)| over the face over the peak of the run together.\n\n"
        "| recipe | scenarios | median error | largest error | peak together [K] |\n"
        "|---|---|---|---|---|\n" + "".join(lines)
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
