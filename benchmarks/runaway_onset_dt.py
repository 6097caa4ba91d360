"""Measure how late runaway onsets come at the recipe's step against small steps.

Runs the module of benchmarks/runaway_separator_short.py (8 prismatic cells,
8 mm thermal pads, 600 W trigger in cell 3, separator short of 160 kJ over
20 s at 150 C, venting) for ``--duration-s`` simulated seconds, three times:
at dt_s = 5 s, at 5 s with the step bound on conduction into awake cells
switched off (``_APPROACH_DT_FRACTION`` set to infinity), and at the
reference step ``--reference-dt-s``. Writes each cell's onset, its error
against the reference [s and %], steps and CPU time (time.process_time) to
benchmarks/results/runaway_onset_dt.md, or to the file given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/runaway_onset_dt.py
"""

from __future__ import annotations

import datetime
import math
import platform
import time
from pathlib import Path

import numpy as np
from _cli import add_results_file, recorded_command, script_parser
from runaway_separator_short import SHORT, module_layout, module_trigger

from thermosynth.physics import runaway
from thermosynth.physics.heat import Boundary
from thermosynth.physics.runaway import RunawayResult, Venting, simulate_runaway

OUT = Path(__file__).resolve().parents[1] / "benchmarks/results/runaway_onset_dt.md"
DT_S = 5.0


def run(dt_s: float, duration_s: float) -> tuple[RunawayResult, float]:
    """Simulate the module; return the result and its CPU time [s]."""
    layout = module_layout()
    start = time.process_time()
    result = simulate_runaway(
        layout,
        boundary=Boundary(ambient_C=25, h_top_W_m2K=8, emissivity_top=0.9),
        duration_s=duration_s,
        dt_s=dt_s,
        triggers=[module_trigger(layout)],
        venting=Venting(0.9, 2000.0, 0.9),
        separator_short=SHORT,
    )
    return result, time.process_time() - start


def run_without_bound(duration_s: float) -> tuple[RunawayResult, float]:
    """Run at DT_S with the bound on conduction into awake cells switched off."""
    shipped = runaway._APPROACH_DT_FRACTION
    runaway._APPROACH_DT_FRACTION = math.inf
    try:
        return run(DT_S, duration_s)
    finally:
        runaway._APPROACH_DT_FRACTION = shipped


def table_row(
    label: str, result: RunawayResult, cpu_s: float, reference_s: np.ndarray
) -> str:
    """Return a table row: onsets, errors against the reference, steps, CPU."""
    onsets = ", ".join("-" if np.isnan(t) else f"{t:.2f}" for t in result.onset_s)
    error_s = result.onset_s - reference_s
    errors = ", ".join(
        "-" if np.isnan(e) else f"{e:+.2f} ({100 * e / r:+.1f} %)"
        for e, r in zip(error_s, reference_s, strict=True)
    )
    return (
        f"| {label} | {onsets} | {errors} | {result.n_steps} | "
        f"{result.n_rejected} | {cpu_s:.0f} |"
    )


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--duration-s", type=float, default=200.0, metavar="S")
    parser.add_argument("--reference-dt-s", type=float, default=0.5, metavar="S")
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    reference, reference_cpu_s = run(args.reference_dt_s, args.duration_s)
    default, default_cpu_s = run(DT_S, args.duration_s)
    unbounded, unbounded_cpu_s = run_without_bound(args.duration_s)
    onset_s = reference.onset_s
    label = f"{args.reference_dt_s:g} (reference)"
    rows = [
        table_row(label, reference, reference_cpu_s, onset_s),
        table_row(f"{DT_S:g}", default, default_cpu_s, onset_s),
        table_row(f"{DT_S:g}, unbounded", unbounded, unbounded_cpu_s, onset_s),
    ]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        "# Runaway onsets at the recipe's step against small steps\n\n"
        f"`{command} --duration-s {args.duration_s:g} --reference-dt-s "
        f"{args.reference_dt_s:g}`, {stamp}, {platform.machine()}. "
        f"{args.duration_s:g} s simulated; cell 3 is triggered. Onsets and "
        "errors in s, '-' where a cell did not run away by the end. "
        "'unbounded' switches off the bound on conduction into awake cells.\n\n"
        "| dt [s] | onset of cells 0-7 [s] | error [s] (%) | steps | rejected "
        "| CPU [s] |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
