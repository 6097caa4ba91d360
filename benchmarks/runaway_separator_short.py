"""Measure how a separator short changes the spread of runaway along a module.

Runs the physics of recipes/module-runaway.yaml without frames. The module
has 8 cells of 40 x 180 x 40 mm (prismatic stack) with 8 mm thermal pads,
on an 8 mm grid of one layer. A 600 W internal short of 12 mm radius in
cell 3 stops at 300 s, and cells vent. The module runs once without a
separator short and twice with one. A cell shorts when its hottest grid cell
reaches 150 C and releases 160 kJ over 20 s, an assumed 30 % of a 40 Ah,
3.7 V cell. The first run spreads it over the whole cell, the second
within 12 mm of the cell's hottest grid cell (``radius_mm``). Each cell's
runaway onset goes to benchmarks/results/runaway_separator_short.md, or to
the file given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/runaway_separator_short.py
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

import numpy as np
from _cli import add_results_file, recorded_command, script_parser

from thermosynth.geometry.layout import Layout
from thermosynth.geometry.layouts import module
from thermosynth.physics.heat import Boundary
from thermosynth.physics.profiles import Pulse
from thermosynth.physics.runaway import SeparatorShort, Venting, simulate_runaway
from thermosynth.physics.sources import VolumeSource, hotspot

OUT = (
    Path(__file__).resolve().parents[1]
    / "benchmarks/results/runaway_separator_short.md"
)
DURATION_S, DT_S = 600.0, 5.0
SHORT = SeparatorShort(onset_C=150.0, energy_J=160e3, duration_s=20.0)
LOCAL_SHORT = SeparatorShort(
    onset_C=150.0, energy_J=160e3, duration_s=20.0, radius_mm=12.0
)


def module_layout() -> Layout:
    """Return the module of recipes/module-runaway.yaml: 8 cells, 8 mm pads."""
    return module(
        n_cells=8,
        cell_width_mm=40,
        cell_height_mm=180,
        thickness_mm=40,
        gap_mm=8,
        gap_material="thermal_pad",
        resolution_mm=8.0,
        cell_material="prismatic_cell",
    )


def module_trigger(layout: Layout) -> VolumeSource:
    """Return the 600 W internal short of 12 mm radius in cell 3, off at 300 s."""
    return hotspot(
        layout,
        x_mm=3 * 48 + 20.0,
        y_mm=90,
        radius_mm=12,
        power_W=Pulse(600.0, start_s=0, stop_s=300.0),
    )


def run(short: SeparatorShort | None) -> tuple[str, float]:
    """Simulate the module; return a table row and the wall time [s]."""
    layout = module_layout()
    start = time.perf_counter()
    result = simulate_runaway(
        layout,
        boundary=Boundary(ambient_C=25, h_top_W_m2K=8, emissivity_top=0.9),
        n_layers=1,
        duration_s=DURATION_S,
        dt_s=DT_S,
        triggers=[module_trigger(layout)],
        venting=Venting(0.9, 2000.0, 0.9),
        separator_short=short,
    )
    elapsed = time.perf_counter() - start

    onsets = ", ".join("-" if np.isnan(t) else f"{t:.0f}" for t in result.onset_s)
    total = result.energy_in_J + result.energy_released_J
    residual = (total - result.energy_stored_J - result.energy_lost_J) / total
    label = "none" if short is None else "150 C, 160 kJ, 20 s"
    if short is not None and short.radius_mm is not None:
        label += f", within {short.radius_mm:g} mm"
    row = (
        f"| {label} | {onsets} | {result.max_temperature_C:.0f} | "
        f"{residual:.0e} | {elapsed:.0f} |"
    )
    return row, elapsed


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    start = time.perf_counter()
    rows = [run(short)[0] for short in (None, SHORT, LOCAL_SHORT)]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        "# Runaway spread with and without a separator short\n\n"
        f"`{command}`, "
        f"{stamp}, {platform.machine()}, {time.perf_counter() - start:.0f} s. "
        f"{DURATION_S:.0f} s simulated, dt {DT_S:g} s; cell 3 is triggered. "
        "Onsets in s, '-' where a cell did not run away.\n\n"
        "| separator short | onset of cells 0-7 [s] | max [C] | energy residual "
        "| wall [s] |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
