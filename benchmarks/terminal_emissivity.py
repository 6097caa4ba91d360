"""Rise of the cabinet's terminals under Joule heating, with and without bare metal.

docs/recipes.md quotes these figures for `physics.emissivity_top_regions`.
The cell is that of recipes/radiometric-cabinet.yaml. Both terminals carry
10 W of Joule heating (100 A through 1 mohm, constant) for 900 s. Each run
reports the peak and the mean rise of the terminals' grid cells, with
``terminals: 0.1`` and without the key (every top-face cell at
``emissivity_top`` = 0.9), on the recipe's ADI solver and on the LU solver.

The result goes to benchmarks/results/terminal_emissivity.md, or to the
file given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/terminal_emissivity.py
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

from _cli import add_results_file, recorded_command, script_parser

from thermosynth.build import build_layout
from thermosynth.recipe import load_recipe
from thermosynth.scenario import DrawnScenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "radiometric-cabinet.yaml"
OUT = ROOT / "benchmarks" / "results" / "terminal_emissivity.md"
DURATION_S = 900.0
JOULE = {
    "profile": "constant",
    "region": "terminals",
    "current_A": 100.0,
    "resistance_mohm": 1.0,
    "power_W": 10.0,
}
CASES = {"adi": (), "fast": ("physics.solver=fast",)}
BARE = "physics.emissivity_top_regions={terminals: 0.1}"
# The recipe itself marks its terminals as bare, so painted clears the key.
PAINTED = "physics.emissivity_top_regions={}"


def terminal_rise_K(overrides: tuple[str, ...]) -> tuple[float, float]:
    """Return the terminals' peak and mean rise [K] after DURATION_S."""
    recipe = load_recipe(RECIPE, overrides=overrides).recipe
    layout = build_layout(
        recipe.layout, recipe.materials, n_layers=recipe.physics.n_layers
    )
    drawn = DrawnScenario("joule", "terminals", DURATION_S, dict(JOULE))
    rise = simulate_scenario(drawn, layout, recipe)[-1]
    terminals = rise[layout.regions["terminals"]]
    return float(terminals.max()), float(terminals.mean())


def cpu_name() -> str:
    """Return the CPU model from /proc/cpuinfo, or the processor name of `platform`."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if "model name" in line]
    return names[0] if names else platform.processor() or "unknown CPU"


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    started = time.perf_counter()
    rows = []
    for solver, overrides in CASES.items():
        bare = terminal_rise_K((*overrides, BARE))
        painted = terminal_rise_K((*overrides, PAINTED))
        for i, statistic in enumerate(("peak", "mean")):
            rows.append(
                f"| {solver} | {statistic} | {bare[i]:.3f} | {painted[i]:.3f} | "
                f"{bare[i] - painted[i]:.3f} |"
            )

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    elapsed_s = time.perf_counter() - started
    text = "\n".join(
        [
            "# Terminal rise with and without bare-metal emissivity",
            "",
            f"`{command}`, {stamp}, "
            f"{platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs, "
            f"{elapsed_s:.0f} s. Recipe radiometric-cabinet.yaml (3 layers, "
            "dt_s 10), 10 W in the terminals for 900 s; peak and mean rise "
            "of the terminals' grid cells.",
            "",
            "| solver | rise | terminals: 0.1 [K] | without the key [K] | "
            "difference [K] |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
