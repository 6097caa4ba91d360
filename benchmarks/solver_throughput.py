"""Compare the throughput of the FiPy heat solver and the reused-LU solver.

Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/solver_throughput.py [--steps 50]

Each case simulates a two-material, anisotropic plate with 2 layers, a ramped
hotspot in the bottom layer, and convection on both faces, with and without
radiation. FiPy runs one scenario at a time, so its batch-16 throughput equals
its batch-1 throughput and is not run. Times include building the model and
the first factorisation, spread over all steps. The table prints ms per step
(for the whole batch), cell-steps per second and the speed-up in cell-steps
per second over FiPy on the same grid and boundary.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import fipy
import numpy as np
import scipy

from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.fast import simulate_batch
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Ramp
from thermosynth.physics.sources import hotspot

N_LAYERS = 2
DT_S = 0.1

BOUNDARIES = {
    "convection": Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0),
    "conv+radiation": Boundary(
        h_top_W_m2K=10.0, h_bottom_W_m2K=5.0, emissivity_top=0.9, emissivity_bottom=0.5
    ),
}


def make_layout(n: int) -> Layout:
    """Return an n x n plate of 60 mm: cells crossed by a busbar strip."""
    busbar = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
    cell = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
    grid = np.zeros((n, n), dtype=int)
    grid[:, n // 4 : n // 2] = 1
    grid[n // 8 : n // 8 + n // 16 + 1, :] = 1
    d_mm = 60.0 / n
    return Layout(d_mm, d_mm, 2.0, grid, (busbar, cell), grid - 1)


def make_batch(layout: Layout, size: int) -> list[list]:
    """Return ``size`` scenarios with hotspots at different places and powers."""
    rng = np.random.default_rng(0)
    batch = []
    for _ in range(size):
        x_mm, y_mm = rng.uniform(10.0, 50.0, size=2)
        power = Ramp(float(rng.uniform(1.0, 5.0)), ramp_s=1.0)
        source = hotspot(
            layout,
            x_mm=x_mm,
            y_mm=y_mm,
            radius_mm=2.0,
            power_W=power,
            layer=1,
            n_layers=N_LAYERS,
        )
        batch.append([source])
    return batch


def time_run(run, n_steps: int) -> float:
    """Return the wall time of one run per step [ms]."""
    started = time.perf_counter()
    run()
    return 1e3 * (time.perf_counter() - started) / n_steps


def measure(n: int, boundary_name: str, n_steps: int) -> list[tuple]:
    """Return table rows (grid, boundary, solver, batch, ms/step, cell-steps/s)."""
    layout = make_layout(n)
    boundary = BOUNDARIES[boundary_name]
    options = dict(
        boundary=boundary, n_layers=N_LAYERS, duration_s=n_steps * DT_S, dt_s=DT_S
    )
    n_cells = n * n * N_LAYERS
    batch = make_batch(layout, 16)

    rows = []
    ms = time_run(lambda: simulate(layout, batch[0], **options), n_steps)
    rows.append((n, boundary_name, "fipy", 1, ms, n_cells / ms * 1e3))
    for size in (1, 16):
        run = functools.partial(simulate_batch, layout, batch[:size], **options)
        ms = time_run(run, n_steps)
        rows.append((n, boundary_name, "fast", size, ms, size * n_cells / ms * 1e3))
    return rows


def print_table(rows: list[tuple]) -> None:
    header = "grid      boundary        solver batch  ms/step  cell-steps/s  speed-up"
    print(header)
    print("-" * len(header))
    fipy_rate = {}
    for n, boundary, solver, size, ms, rate in rows:
        if solver == "fipy":
            fipy_rate[(n, boundary)] = rate
        ratio = rate / fipy_rate[(n, boundary)]
        grid = f"{n}x{n}x{N_LAYERS}"
        print(
            f"{grid:<9} {boundary:<15} {solver:<6} {size:>5} {ms:>8.2f} "
            f"{rate:>13.3g} {ratio:>8.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="time steps per run")
    parser.add_argument(
        "--grids", type=int, nargs="+", default=[64, 128], help="grid sizes n (n x n)"
    )
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, "
        f"FiPy {fipy.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(f"steps per run: {args.steps}, dt = {DT_S} s, {N_LAYERS} layers\n")

    rows = []
    for n in args.grids:
        for boundary_name in BOUNDARIES:
            rows += measure(n, boundary_name, args.steps)
    print_table(rows)


if __name__ == "__main__":
    main()
