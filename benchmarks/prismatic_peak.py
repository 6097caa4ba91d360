"""Place on the prismatic cell's imaged face where an internal short peaks.

Draws internal shorts from recipes/radiometric-cabinet.yaml (a 27 mm
prismatic cell, short in the middle layer, aluminium can), simulates each on
the recipe's layout and reports in which layout part the face's peak rise
sits: the cell body, the casing rim or a terminal. It also reports the
body's effective conductivities and the diffusion times that
docs/recipes.md quotes: through half the thickness, and 40 and 50 mm in
the plane. The result goes to benchmarks/results/prismatic_peak.md.

    OMP_NUM_THREADS=1 python benchmarks/prismatic_peak.py [--draws 40]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import platform
import time
from pathlib import Path

import numpy as np

from thermosynth.pipeline import Generator
from thermosynth.recipe import load_recipe
from thermosynth.scenario import draw_scenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "radiometric-cabinet.yaml"
OUT = ROOT / "benchmarks" / "results" / "prismatic_peak.md"
SHORT = "internal_short"


def peak_part(rise: np.ndarray, layout) -> str:  # noqa: ANN001
    """Name the layout part under the face's hottest grid cell."""
    row, col = np.unravel_index(int(np.argmax(rise)), rise.shape)
    if layout.cell_id[row, col] >= 0:
        return "body"
    for name in ("terminals", "casing"):
        if layout.regions[name][row, col]:
            return name
    return "background"


def body_times(layout) -> tuple[str, float, float, float, tuple[float, float]]:  # noqa: ANN001
    """Body material's name, conductivities [W m-1 K-1] and diffusion times [s]."""
    body = layout.materials[int(layout.material_id[layout.cell_id == 0][0])]
    half_m = layout.thickness_mm / 2 * 1e-3
    through_s = half_m**2 * body.rho_cp_J_m3K / body.k_z_W_mK
    plane_s = tuple(d**2 * body.rho_cp_J_m3K / body.k_x_W_mK for d in (0.04, 0.05))
    return body.name, body.k_x_W_mK, body.k_z_W_mK, through_s, plane_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=40, help="shorts to draw")
    args = parser.parse_args()
    start = time.perf_counter()

    loaded = load_recipe(RECIPE)
    layout, recipe = Generator(loaded).layout, loaded.recipe
    spec = next(s for s in recipe.scenarios if s.name == SHORT)
    rng = np.random.default_rng(0)
    parts: collections.Counter[str] = collections.Counter()
    for _ in range(args.draws):
        drawn = draw_scenario(spec, layout, rng)
        parts[peak_part(simulate_scenario(drawn, layout, recipe)[-1], layout)] += 1

    name, k_plane, k_through, through_s, plane_s = body_times(layout)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    elapsed = time.perf_counter() - start
    text = (
        "# Where an internal short shows on the prismatic cell's face\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/prismatic_peak.py --draws "
        f"{args.draws}`, {stamp}, {platform.machine()}, {elapsed:.0f} s. "
        f"Recipe {RECIPE.name}, scenario {SHORT}, seed 0.\n\n"
        f"Body material {name}: {k_plane:.2f} W m-1 K-1 in the plane, "
        f"{k_through:.3f} through the thickness. Diffusion time L^2 / alpha: "
        f"{through_s:.0f} s through half the thickness, {plane_s[0]:.0f} s "
        f"and {plane_s[1]:.0f} s over 40 and 50 mm in the plane.\n\n"
        "| part under the face's peak | shorts |\n|---|---|\n"
        + "".join(f"| {part} | {n} |\n" for part, n in parts.most_common())
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
