"""Time runaway spreading along a row of six prismatic cells on a 4 mm grid.

Runs the physics of a user's six-cell runaway recipe without frames. The
cells are 148 x 91 x 27 mm (prismatic_cell) with 4 mm thermal pads, in one
layer. The top face loses 8 W m-2 K-1 and radiates with emissivity 0.9,
the bottom face loses 300 W m-2 K-1, and dt is 5 s. A
600 W internal short of 12 mm radius in cell 5, 20 mm from its edge next to
cell 4, stops at 160 s; power and stop time are the middle of the recipe's
draws. Cells vent (2 kJ, heat capacity to 0.9), and a separator short of
120 kJ over 20 s within 40 mm of the hottest grid cell starts at 150 C.
60 s simulated cover the onset of cells 5 and 4.

Prints and writes the wall and CPU time, the accepted and rejected steps,
the bound that set the length of each accepted step, the number of LU
factorisations of the heat matrix, each cell's runaway onset and the peak
temperature. With ``--json FILE`` the figures also go to a JSON file.
``--baseline FILE`` reads such a file, written by an older version of the
package (put it first on PYTHONPATH), and adds its row and the
differences to the table:

    PYTHONPATH=old OMP_NUM_THREADS=1 python benchmarks/runaway_row_speed.py \\
        --json old.json -o old.md
    OMP_NUM_THREADS=1 python benchmarks/runaway_row_speed.py --baseline old.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from _cli import add_results_file, recorded_command, script_parser
from scipy.sparse.linalg import splu

from thermosynth.geometry.layout import Layout
from thermosynth.geometry.layouts import module
from thermosynth.physics import runaway
from thermosynth.physics.heat import Boundary
from thermosynth.physics.profiles import Pulse
from thermosynth.physics.runaway import SeparatorShort, Venting
from thermosynth.physics.sources import VolumeSource, hotspot

OUT = Path(__file__).resolve().parents[1] / "benchmarks/results/runaway_row_speed.md"
DURATION_S, DT_S = 60.0, 5.0
PITCH_MM = 148.0 + 4.0
_SOLVER_MODULES = [runaway]
try:
    from thermosynth.physics import lu_reuse

    _SOLVER_MODULES.append(lu_reuse)
except ImportError:  # versions before the heat solver reused factorisations
    pass


def row_layout() -> Layout:
    """Return six 148 x 91 x 27 mm prismatic cells with 4 mm pads, 4 mm grid."""
    return module(
        n_cells=6,
        cell_width_mm=148.0,
        cell_height_mm=91.0,
        thickness_mm=27.0,
        gap_mm=4.0,
        gap_material="thermal_pad",
        resolution_mm=4.0,
        cell_material="prismatic_cell",
    )


def row_trigger(layout: Layout) -> VolumeSource:
    """Return the 600 W internal short of 12 mm radius in cell 5, off at 160 s.

    Its centre is 20 mm from the edge of cell 5 next to cell 4.
    """
    return hotspot(
        layout,
        x_mm=5 * PITCH_MM + 20.0,
        y_mm=45.5,
        radius_mm=12.0,
        power_W=Pulse(600.0, start_s=0.0, stop_s=160.0),
    )


def run(duration_s: float) -> dict[str, Any]:
    """Simulate the row for ``duration_s`` [s] and return the measured figures."""
    layout = row_layout()
    # The heat solver's factorisations are counted by wrapping splu where
    # the runaway modules call it, which works for older versions too.
    modules = [module for module in _SOLVER_MODULES if hasattr(module, "splu")]
    factorise = splu
    factorisations = 0

    def counted_splu(*args: Any, **kwargs: Any) -> Any:
        nonlocal factorisations
        factorisations += 1
        return factorise(*args, **kwargs)

    for solver_module in modules:
        solver_module.splu = counted_splu
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        result = runaway.simulate_runaway(
            layout,
            boundary=Boundary(
                ambient_C=25.0,
                h_top_W_m2K=8.0,
                h_bottom_W_m2K=300.0,
                emissivity_top=0.9,
            ),
            duration_s=duration_s,
            dt_s=DT_S,
            triggers=[row_trigger(layout)],
            venting=Venting(0.9, 2000.0, 0.9),
            separator_short=SeparatorShort(150.0, 120e3, 20.0, radius_mm=40.0),
        )
    finally:
        for solver_module in modules:
            solver_module.splu = factorise
    wall_s = time.perf_counter() - start
    cpu_s = time.process_time() - start_cpu

    return {
        "duration_s": duration_s,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "n_steps": result.n_steps,
        "n_rejected": result.n_rejected,
        "factorisations": factorisations,
        "step_bounds": getattr(result, "step_bounds", {}),
        "onset_s": [None if np.isnan(t) else float(t) for t in result.onset_s],
        "vent_s": [None if np.isnan(t) else float(t) for t in result.vent_s],
        "short_s": [None if np.isnan(t) else float(t) for t in result.short_s],
        "max_temperature_C": result.max_temperature_C,
        "rise_K": result.rise_K[-1].tolist(),
    }


def _times(values: list[float | None]) -> str:
    return ", ".join("-" if t is None else f"{t:.2f}" for t in values)


def _row(label: str, figures: dict[str, Any]) -> str:
    bounds = ", ".join(
        f"{name} {count}" for name, count in sorted(figures["step_bounds"].items())
    )
    return (
        f"| {label} | {figures['wall_s']:.1f} | {figures['cpu_s']:.1f} | "
        f"{figures['n_steps']} | "
        f"{figures['n_rejected']} | {figures['factorisations']} | "
        f"{_times(figures['onset_s'])} | {figures['max_temperature_C']:.1f} | "
        f"{bounds or 'not recorded'} |"
    )


def _differences(new: dict[str, Any], old: dict[str, Any]) -> str:
    """Return the largest differences of events, peak and final rise to ``old``."""
    lines = []
    for key in ("onset_s", "short_s", "vent_s"):
        pairs = list(zip(new[key], old[key], strict=True))
        if any((a is None) != (b is None) for a, b in pairs):
            lines.append(f"- {key}: a cell has the event in one run only")
        shifts = [abs(a - b) for a, b in pairs if a is not None and b is not None]
        if shifts:
            lines.append(f"- {key}: largest shift {max(shifts):.3g} s")
    peak = new["max_temperature_C"] - old["max_temperature_C"]
    lines.append(f"- peak temperature: {peak:+.3g} K")
    rise = np.abs(np.subtract(new["rise_K"], old["rise_K"]))
    lines.append(
        f"- rise of the imaged face at the end: largest difference "
        f"{rise.max():.3g} K, mean {rise.mean():.3g} K"
    )
    return "\n".join(lines) + "\n"


def _baseline(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """Return the figures of ``--baseline``, checked before the run starts."""
    try:
        old = json.loads(args.baseline.read_text())
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"--baseline {args.baseline} could not be read: {error}")
    if old.get("duration_s") != args.duration_s:
        parser.error(
            f"--baseline {args.baseline} simulated {old.get('duration_s')} s, "
            f"but --duration-s is {args.duration_s:g} s; give the baseline's "
            "duration"
        )
    return old


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    parser.add_argument(
        "--duration-s",
        type=float,
        default=DURATION_S,
        help="simulated time [s] (default: %(default)s)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the figures as JSON"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="JSON file of an older run to compare with, from --json",
    )
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)
    if args.duration_s != DURATION_S:
        command += f" --duration-s {args.duration_s:g}"
    if args.baseline is not None:
        command += f" --baseline {args.baseline}"

    old = None if args.baseline is None else _baseline(parser, args)

    figures = run(args.duration_s)
    if args.json is not None:
        args.json.write_text(json.dumps(figures))
    rows = [_row("this version", figures)]
    notes = ""
    if old is not None:
        rows.insert(0, _row(f"baseline ({args.baseline.name})", old))
        notes = "\nDifferences to the baseline:\n\n" + _differences(figures, old)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        "# Runaway along a row of six prismatic cells: speed\n\n"
        f"`{command}`, {stamp}, {platform.machine()}, one thread. "
        f"{args.duration_s:g} s simulated, dt {DT_S:g} s, cell 5 triggered. "
        "Onsets in s, '-' where a cell did not run away. LU counts the heat "
        "matrix factorisations, and the last column the accepted steps by the "
        "bound that set their length.\n\n"
        "| code | wall [s] | CPU [s] | steps | rejected | LU | onset of cells 0-5 "
        "[s] | max [C] | steps by bound |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
        + notes
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
