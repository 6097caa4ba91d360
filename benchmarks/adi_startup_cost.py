"""Cost of ADI's start-up sub-steps on the plate of adi_throughput.py.

Times simulate_adi_batch on the same 20 steps of dt = 0.5 s with the
start-up sub-steps (the default) and without them
(``MAX_XY_STIFFNESS = inf``), alternating the two in one process so that
other jobs on a shared machine slow both alike. Prints each setting's best
time per step of ``--repeats`` runs [ms] and their ratio, on one numba
thread.

    OMP_NUM_THREADS=1 python benchmarks/adi_startup_cost.py
"""

from __future__ import annotations

import datetime
import math
import platform
import time

import numba
from _cli import script_parser
from solver_scaling import DT_S, plate, scenario

from thermosynth.physics import adi
from thermosynth.physics.heat import Boundary

BOUNDARY = Boundary(h_top_W_m2K=10.0)


def measure_step_s(n: int, batch: int, precision: str, steps: int) -> float:
    """Run ``batch`` scenarios on the n x n plate and return seconds per step."""
    layout = plate(n)
    scenarios = [scenario(layout, i) for i in range(batch)]
    started = time.perf_counter()
    adi.simulate_adi_batch(
        layout,
        scenarios,
        boundary=BOUNDARY,
        duration_s=steps * DT_S,
        dt_s=DT_S,
        output_times_s=[steps * DT_S],
        precision=precision,
    )
    return (time.perf_counter() - started) / steps


def time_both_settings(n: int, batch: int, precision: str, args) -> tuple[float, float]:
    """Return the best seconds per step with and without start-up sub-steps."""
    default = adi.MAX_XY_STIFFNESS
    with_startup = without = math.inf
    try:
        for _ in range(args.repeats):
            adi.MAX_XY_STIFFNESS = default
            with_startup = min(
                with_startup, measure_step_s(n, batch, precision, args.steps)
            )
            adi.MAX_XY_STIFFNESS = math.inf
            without = min(without, measure_step_s(n, batch, precision, args.steps))
    finally:
        adi.MAX_XY_STIFFNESS = default
    return with_startup, without


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    numba.set_num_threads(1)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(f"{stamp}, {platform.machine()}, {args.steps} steps of {DT_S} s")
    print("| grid | precision | batch | with start-up [ms/step] | without | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for precision in ("float64", "float32"):
        measure_step_s(16, 1, precision, 2)  # compile the kernels before timing
    for n in args.grids:
        for precision in ("float64", "float32"):
            for batch in args.batches:
                with_startup, without = time_both_settings(n, batch, precision, args)
                print(
                    f"| {n}x{n} | {precision} | {batch} | {1e3 * with_startup:.3f} "
                    f"| {1e3 * without:.3f} | {with_startup / without:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
