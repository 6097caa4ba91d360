"""Measure how fast thermal runaway spreads from cell to cell.

Two cases, each triggered by an internal short in the first cell:

- a row of 18650 cells seen from the top (cylindrical_array), 3 mm air gaps;
- a module of prismatic cells with 4 mm thermal pads (module).

Prints the onset time of every cell, the spread rate in cells per minute and
the wall time. Literature on 18650 packs reports roughly 0.2-0.5 cells per
minute; the numbers here are reported, not asserted.

Run: python benchmarks/runaway_propagation.py [--duration-s 1800]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np

from thermosynth.geometry.layouts import cylindrical_array, module
from thermosynth.physics.heat import Boundary
from thermosynth.physics.profiles import Pulse
from thermosynth.physics.runaway import RunawayResult, simulate_runaway
from thermosynth.physics.sources import hotspot


def cylindrical_row(duration_s: float) -> tuple[RunawayResult, float]:
    """Run five 18650 cells, 18 mm wide on a 21 mm pitch, top view."""
    layout = cylindrical_array(
        rows=1,
        cols=5,
        diameter_mm=18.0,
        pitch_mm=21.0,
        thickness_mm=65.0,
        resolution_mm=1.5,
    )
    trigger = hotspot(
        layout,
        x_mm=10.5,
        y_mm=10.5,
        radius_mm=4.0,
        power_W=Pulse(40.0, start_s=0.0, stop_s=120.0),
    )
    return _timed(layout, trigger, duration_s)


def prismatic_module(duration_s: float) -> tuple[RunawayResult, float]:
    """Run five 40 x 120 mm prismatic cells, 20 mm thick, 4 mm pads."""
    layout = module(
        n_cells=5,
        cell_width_mm=40.0,
        cell_height_mm=120.0,
        thickness_mm=20.0,
        gap_mm=4.0,
        gap_material="thermal_pad",
        resolution_mm=4.0,
        cell_material="prismatic_cell",
    )
    trigger = hotspot(
        layout,
        x_mm=20.0,
        y_mm=60.0,
        radius_mm=10.0,
        power_W=Pulse(200.0, start_s=0.0, stop_s=300.0),
    )
    return _timed(layout, trigger, duration_s)


def _timed(layout, trigger, duration_s: float) -> tuple[RunawayResult, float]:
    started = time.perf_counter()
    result = simulate_runaway(
        layout,
        boundary=Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=10.0),
        duration_s=duration_s,
        dt_s=5.0,
        triggers=[trigger],
    )
    return result, time.perf_counter() - started


def _spread_per_min(onset_s: np.ndarray) -> float:
    """Return cells per minute from the first to the last cell that ran away."""
    ran = np.flatnonzero(np.isfinite(onset_s))
    if ran.size < 2:
        return float("nan")
    return 60.0 * (ran.size - 1) / (onset_s[ran[-1]] - onset_s[ran[0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=1800.0)
    args = parser.parse_args()

    print(
        f"date {datetime.date.today()}, machine {platform.machine()} "
        f"{platform.processor() or platform.system()}, "
        f"python {platform.python_version()}"
    )
    for name, case in (
        ("18650 row, 3 mm air", cylindrical_row),
        ("prismatic module, 4 mm pads", prismatic_module),
    ):
        result, wall_s = case(args.duration_s)
        onsets = ", ".join("-" if np.isnan(t) else f"{t:.0f}" for t in result.onset_s)
        print(
            f"{name}: onset [s] {onsets}; spread "
            f"{_spread_per_min(result.onset_s):.2f} cells/min; max "
            f"{result.max_temperature_C:.0f} C; {result.n_steps} steps; "
            f"wall {wall_s:.1f} s"
        )


if __name__ == "__main__":
    main()
