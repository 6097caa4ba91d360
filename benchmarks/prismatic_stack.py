"""A shallow short under a prismatic can's wall layers, and ADI on thin walls.

docs/recipes.md quotes these figures for `layout.stack_layers`.

Part 1 builds the cell of recipes/radiometric-cabinet.yaml with
``stack_layers: 8``: a 0.8 mm aluminium wall, 8 stack layers and another
0.8 mm wall. A 10 W short of radius 6 mm sits at the face centre for 180 s,
once in layer 1 (the recipe's ``layer: top``, just below the wall) and
once in the wall itself (layer 0). The script reports the face peak and the width
of the spot along its row at half the peak, on ``simulate_fast`` with
``dt_s`` 2 s, with the recipe's convection and top emissivity.

Part 2 puts the same short in layer 1 of a 90 x 60 mm, 27 mm plate with
aluminium walls of 0.4 to 2 mm, with convection only. It compares the face
peak of ``simulate_adi`` and ``simulate_fast`` at ``dt_s`` 10 s with that
of ``simulate_fast`` at 0.25 s.

The result goes to benchmarks/results/prismatic_stack.md, or to the file
given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/prismatic_stack.py
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

import numpy as np
from _cli import add_results_file, recorded_command, script_parser

from thermosynth.build import build_layout
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary
from thermosynth.physics.sources import hotspot
from thermosynth.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "radiometric-cabinet.yaml"
OUT = ROOT / "benchmarks" / "results" / "prismatic_stack.md"
# The recipe's boundary (convection and top emissivity 0.9), and the same
# without radiation for the solver comparison.
RECIPE_BOUNDARY = Boundary(25.0, 10.0, 5.0, 0.9, 0.0)
BOUNDARY = Boundary(25.0, 10.0, 5.0, 0.0, 0.0)
SHORT = {"radius_mm": 6.0, "power_W": 10.0}
DURATION_S = 180.0
WALLS_MM = (2.0, 0.8, 0.4)


def cabinet_spot(layer: int) -> tuple[float, float]:
    """Return the face peak [K] and its width at half peak [mm] on the cabinet."""
    overrides = ("layout.stack_layers=8", "physics.n_layers=10")
    recipe = load_recipe(RECIPE, overrides=overrides).recipe
    layout = build_layout(recipe.layout, recipe.materials, n_layers=10)
    x_mm, y_mm = layout.width_mm / 2, layout.height_mm / 2
    source = hotspot(layout, x_mm=x_mm, y_mm=y_mm, layer=layer, n_layers=10, **SHORT)
    result = simulate_fast(
        layout, [source], boundary=RECIPE_BOUNDARY, n_layers=10,
        duration_s=DURATION_S, dt_s=2.0,
    )  # fmt: skip
    face = result.rise_K[-1]
    row = np.unravel_index(face.argmax(), face.shape)[0]
    width_mm = float((face[row] > face.max() / 2).sum() * layout.dx_mm)
    return float(face.max()), width_mm


def wall_peaks(wall_mm: float) -> tuple[float, float, float]:
    """Return the face peak [K]: fast at 0.25 s, fast at 10 s and ADI at 10 s."""
    core = Material("core", 26.6, 26.6, 0.52, 2.4e6)
    wall = Material("wall", 154.0, 154.0, 154.0, 2.44e6)
    grid = np.zeros((20, 30), dtype=int)
    stack = (Layer(wall_mm, "wall"), Layer(27.0 - 2 * wall_mm, None, n=8))
    layout = Layout(
        3.0, 3.0, 27.0, grid, (core, wall), grid.copy(), {}, "plate",
        (*stack, Layer(wall_mm, "wall")),
    )  # fmt: skip
    source = hotspot(layout, x_mm=45.0, y_mm=30.0, layer=1, n_layers=10, **SHORT)
    peaks = []
    runs = ((simulate_fast, 0.25), (simulate_fast, 10.0), (simulate_adi, 10.0))
    for solver, dt_s in runs:
        result = solver(
            layout, [source], boundary=BOUNDARY, n_layers=10, duration_s=DURATION_S,
            dt_s=dt_s,
        )  # fmt: skip
        peaks.append(float(result.rise_K[-1].max()))
    return peaks[0], peaks[1], peaks[2]


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    started = time.perf_counter()
    lines = ["| short in | face peak [K] | width at half peak [mm] |", "|---|---|---|"]
    for layer, name in ((1, "layer 1, below the wall (`layer: top`)"), (0, "the wall")):
        peak_K, width_mm = cabinet_spot(layer)
        lines.append(f"| {name} | {peak_K:.2f} | {width_mm:.0f} |")

    lines += ["", "| wall [mm] | converged peak [K] | fast, dt 10 s | ADI, dt 10 s |"]
    lines.append("|---|---|---|---|")
    for wall_mm in WALLS_MM:
        reference, fast, adi = wall_peaks(wall_mm)
        lines.append(
            f"| {wall_mm} | {reference:.3f} | {fast / reference - 1:+.1%} | "
            f"{adi / reference - 1:+.1%} |"
        )

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    elapsed_s = time.perf_counter() - started
    header = (
        "# A shallow short under wall layers, and ADI on thin walls\n\n"
        f"`{command}`, "
        f"{stamp}, {platform.machine()}, {elapsed_s:.0f} s. A 10 W short of "
        "radius 6 mm for 180 s; h 10 and 5 W m-2 K-1, with top emissivity "
        "0.9 on the cabinet and none on the plates.\n\n"
    )
    args.output.write_text(header + "\n".join(lines) + "\n")
    print(args.output.read_text())


if __name__ == "__main__":
    main()
