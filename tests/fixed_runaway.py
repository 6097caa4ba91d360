"""A runaway scenario that every draw repeats, for the tests of per-cell times.

A 300 W short at (54, 36) mm heats cell 1 of a two-cell module, which runs
away about 20 s after the onset. Cell 0 never does. The power and position
are fixed, so the bank, the on-the-fly dataset and ``thermosynth generate``
draw the same scenario whatever their random streams. One simulation took
0.07 s on one thread of a shared 2-core machine.
"""

from __future__ import annotations

from typing import Any

from demo_overrides import NO_TAB_EMISSIVITY

from thermosynth.geometry.layout import Layout

FIXED_RUNAWAY = (
    "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 25, "
    "x_mm: 54, y_mm: 36}]",
    "layout={kind: module, resolution_mm: 6, n_cells: 2, cell_width_mm: 30, "
    "cell_height_mm: 60, thickness_mm: 20, gap_mm: 6}",
    "physics.n_layers=1",
    "frames.shape=[48, 64]",
    *NO_TAB_EMISSIVITY,
)
TRIGGERED_CELL = 1
CELL_TIMES = ("onset_s", "short_s", "vent_s")


def cell_at(layout: Layout, params: dict[str, Any]) -> int:
    """Return the id of the battery cell under a drawn source's x_mm, y_mm."""
    row = int(params["y_mm"] / layout.dy_mm)
    col = int(params["x_mm"] / layout.dx_mm)
    return int(layout.cell_id[row, col])
