"""Face rise of an internal short in the ``middle`` layer against n_layers.

docs/recipes.md quotes these figures for ``layer: middle``. A constant 4 W
short of radius 3 mm at the centre of the demo recipe's 6 mm pouch cell
heats for 60 s at ``dt_s`` 1 s. The run reports the face's peak rise for
``middle`` at 2, 3, 4, 12 and 13 layers, and for ``bottom`` at 2 layers.
Before ``middle`` split an even count between the two layers at the
mid-plane, it chose that bottom layer of 2.

The result goes to benchmarks/results/middle_layer.md, or to the file
given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/middle_layer.py
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

from _cli import add_results_file, recorded_command, script_parser

from thermosynth.build import build_layout
from thermosynth.recipe import load_demo_recipe
from thermosynth.scenario import DrawnScenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "middle_layer.md"
DURATION_S = 60.0
SHORT = {
    "profile": "constant",
    "power_W": 4.0,
    "radius_mm": 3.0,
    "x_mm": 50.0,  # the body spans x 0-100 mm and y 10-80 mm
    "y_mm": 45.0,
}
CASES = [
    (2, "bottom"),
    (2, "middle"),
    (3, "middle"),
    (4, "middle"),
    (12, "middle"),
    (13, "middle"),
]


def face_peak_K(n_layers: int, layer: str) -> float:
    """Return the face's peak rise [K] after DURATION_S."""
    overrides = [f"physics.n_layers={n_layers}", "physics.dt_s=1.0"]
    recipe = load_demo_recipe(overrides=overrides).recipe
    layout = build_layout(recipe.layout, recipe.materials, n_layers=n_layers)
    drawn = DrawnScenario("hotspot", "short", DURATION_S, {**SHORT, "layer": layer})
    return float(simulate_scenario(drawn, layout, recipe)[-1].max())


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    started = time.perf_counter()
    rows = [
        f"| {n_layers} | {layer} | {face_peak_K(n_layers, layer):.2f} |"
        for n_layers, layer in CASES
    ]

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    elapsed_s = time.perf_counter() - started
    text = "\n".join(
        [
            "# Face rise of a middle-layer short against n_layers",
            "",
            f"`{command}`, {stamp}, {platform.machine()}, {elapsed_s:.0f} s. "
            "Demo recipe's pouch cell (6 mm thick), a constant 4 W short of "
            "radius 3 mm at (50, 45) mm for 60 s, dt_s 1 s, the recipe's "
            "solver (ADI, or LU where the layers couple too stiffly for it).",
            "",
            "| n_layers | layer | face peak rise [K] |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
