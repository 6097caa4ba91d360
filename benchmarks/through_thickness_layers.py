"""Measure how the number of through-thickness layers changes the imaged rise.

The imaged face reads the mean of the top layer, which is
``thickness_mm / n_layers`` deep, and a scenario with ``layer: top`` heats
that whole layer. Two checks:

1. An 8 mm slab of the pouch-cell stack takes 100 W m-2 into its top layer,
   insulated elsewhere. The top layer's rise is compared with the analytic
   surface rise of a finite slab under a constant surface flux, the
   Fourier series that separation of variables gives.
2. Shorts drawn from the ``layer: top`` scenarios of two shipped recipes are
   simulated at several ``physics.n_layers``. The table gives the median
   face peak and its ratio to the finest grid.

The result goes to benchmarks/results/through_thickness_layers.md.

    OMP_NUM_THREADS=1 python benchmarks/through_thickness_layers.py [--draws 8]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import numpy as np

from thermosynth.geometry.layout import Layout
from thermosynth.geometry.materials import DEFAULT_MATERIALS
from thermosynth.physics import Boundary, VolumeSource
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.profiles import Constant
from thermosynth.physics.sources import cell_volume_m3
from thermosynth.recipe import load_recipe
from thermosynth.samples import Generator
from thermosynth.scenario import draw_scenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "through_thickness_layers.md"
SLAB_LAYERS = (1, 2, 4, 8, 16, 32)
SLAB_TIMES_S = (30.0, 120.0, 600.0)
RECIPE_LAYERS = (2, 4, 8, 16)
RECIPES = ("flir-pouch-cell.yaml", "battery-station-inferno.yaml")
FLUX_W_m2 = 100.0
SLAB_MM = 8.0


def analytic_surface_rise_K(time_s: float, k: float, rho_cp: float) -> float:
    """Surface rise of a slab heated by a constant flux on one face [K].

    The series starts at 0 (its sum is pi^2 / 6) and leaves the face
    ``q L / (3 k)`` above the mean rise once it has decayed.
    """
    length_m = SLAB_MM * 1e-3
    alpha = k / rho_cp
    n = np.arange(1, 400)
    decay = np.exp(-((n * np.pi) ** 2) * alpha * time_s / length_m**2)
    series = float(np.sum(decay / n**2))
    mean_rise = FLUX_W_m2 * time_s / (rho_cp * length_m)
    return mean_rise + FLUX_W_m2 * length_m / k * (1 / 3 - 2 / np.pi**2 * series)


def slab_rises_K(n_layers: int) -> list[float]:
    """Top-layer rise of the flux-heated slab at ``SLAB_TIMES_S`` [K]."""
    cell = DEFAULT_MATERIALS["pouch_cell"]
    grid = np.zeros((4, 4), dtype=int)
    layout = Layout(5.0, 5.0, SLAB_MM, grid, (cell,), grid)
    heated = np.zeros((n_layers, 4, 4), dtype=bool)
    heated[0] = True
    power_W = FLUX_W_m2 * (4 * 5e-3) ** 2
    weights = heated / (heated.sum() * cell_volume_m3(layout, n_layers))
    result = simulate_fast(
        layout,
        [VolumeSource(weights, Constant(power_W), "flux")],
        boundary=Boundary(h_top_W_m2K=0.0),
        n_layers=n_layers,
        duration_s=SLAB_TIMES_S[-1],
        dt_s=0.5,
        output_times_s=SLAB_TIMES_S,
    )
    return [float(value) for value in result.rise_K[:, 0, 0]]


def recipe_peaks_K(name: str, draws: int) -> dict[int, float]:
    """Median face peak [K] of ``draws`` top shorts at each n_layers."""
    base = load_recipe(ROOT / "recipes" / name)
    layout = Generator(base).layout
    spec = next(s for s in base.recipe.scenarios if getattr(s, "layer", "") == "top")
    rng = np.random.default_rng(0)
    drawn = [draw_scenario(spec, layout, rng) for _ in range(draws)]

    peaks = {}
    for n_layers in RECIPE_LAYERS:
        override = [f"physics.n_layers={n_layers}"]
        recipe = load_recipe(ROOT / "recipes" / name, overrides=override).recipe
        values = [simulate_scenario(d, layout, recipe)[-1].max() for d in drawn]
        peaks[n_layers] = float(np.median(values))
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=8, help="shorts per recipe")
    args = parser.parse_args()
    start = time.perf_counter()

    cell = DEFAULT_MATERIALS["pouch_cell"]
    exact = [
        analytic_surface_rise_K(t, cell.k_z_W_mK, cell.rho_cp_J_m3K)
        for t in SLAB_TIMES_S
    ]
    header = " | ".join(f"{t:.0f} s" for t in SLAB_TIMES_S)
    lines = [
        "## 1. Slab under a surface flux\n",
        f"{SLAB_MM:g} mm pouch-cell stack ({cell.k_z_W_mK} W m-1 K-1 through "
        f"the thickness), {FLUX_W_m2:g} W m-2 into the top layer, insulated.\n",
        f"| n_layers | {header} |",
        "|---|" + "---|" * len(SLAB_TIMES_S),
        "| analytic surface | " + " | ".join(f"{v:.3f}" for v in exact) + " |",
    ]
    for n_layers in SLAB_LAYERS:
        rises = slab_rises_K(n_layers)
        lines.append(f"| {n_layers} | " + " | ".join(f"{v:.3f}" for v in rises) + " |")

    lines += ["", "## 2. Top shorts of the shipped recipes\n"]
    header = " | ".join(str(n) for n in RECIPE_LAYERS)
    lines += [f"| recipe | {header} |", "|---|" + "---|" * len(RECIPE_LAYERS)]
    for name in RECIPES:
        peaks = recipe_peaks_K(name, args.draws)
        finest = peaks[RECIPE_LAYERS[-1]]
        cells = [f"{peaks[n]:.2f} K ({peaks[n] / finest:.2f})" for n in RECIPE_LAYERS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    elapsed = time.perf_counter() - start
    text = (
        "# Through-thickness layers and the imaged rise\n\n"
        "`OMP_NUM_THREADS=1 python benchmarks/through_thickness_layers.py "
        f"--draws {args.draws}`, {stamp}, {platform.machine()}, "
        f"{elapsed:.0f} s. Rises in K; "
        "in part 2 the median face peak of the same draws (seed 0) and, in "
        "brackets, its ratio to the finest grid.\n\n" + "\n".join(lines) + "\n"
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
