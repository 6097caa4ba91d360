"""Throughput of an explicit 5-point stencil in numba, the reference for the ADI solver.

Each step reads every cell of the state once and writes every cell once. It
measures how many cell updates per second this machine reaches on the layout
of :mod:`thermosynth.physics.adi_kernels`. The state has the shape (ny, nx,
batch), scenarios on the innermost axis, in float64 or float32. Edges copy
their nearest cell (insulated). Two arrays swap roles every step. The last column
is the fraction of a memory-bandwidth bound of ``--bandwidth-GBps`` at 8
bytes per cell update, the bound that ``adi_throughput.py`` prints, so the
two tables compare row by row. Float32 moves 4 bytes per cell, so it can
exceed that bound's cell rate.

    OMP_NUM_THREADS=1 python benchmarks/stencil_roofline.py --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath={"contract"})
def stencil_step(u: np.ndarray, out: np.ndarray, ratio: float) -> None:
    """Write one forward Euler step of ``u`` into ``out``.

    ``ratio`` is alpha dt / dx**2, the same along both axes.
    """
    ny, nx, nb = u.shape
    r = u.dtype.type(ratio)
    four = u.dtype.type(4.0)
    for j in prange(ny):
        south, north = max(j - 1, 0), min(j + 1, ny - 1)
        for i in range(nx):
            west, east = max(i - 1, 0), min(i + 1, nx - 1)
            for b in range(nb):
                centre = u[j, i, b]
                total = u[south, i, b] + u[north, i, b]
                total += u[j, west, b] + u[j, east, b]
                out[j, i, b] = centre + r * (total - four * centre)


def seconds_per_step(
    n: int, batch: int, dtype: type, steps: int, repeats: int
) -> float:
    """Return the best time per step [s] of ``repeats`` runs of ``steps`` steps."""
    rng = np.random.default_rng(0)
    u = rng.random((n, n, batch)).astype(dtype)
    out = np.empty_like(u)
    stencil_step(u, out, 0.2)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            stencil_step(u, out, 0.2)
            u, out = out, u
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--precisions", nargs="+", choices=["float64", "float32"],
        default=["float64", "float32"],
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bandwidth-GBps", type=float, default=26.0)
    args = parser.parse_args()
    bound = args.bandwidth_GBps * 1e9 / 8

    print("machine:", platform.platform(), os.cpu_count(), "CPUs")
    print(f"bandwidth bound: {bound:.2e} cell-updates/s at 8 bytes per cell")
    print("| grid | precision | threads | batch | ms / step | cell-steps / s "
          "| of bandwidth bound |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        numba.set_num_threads(threads)
        for n in args.grids:
            for precision in args.precisions:
                for batch in args.batches:
                    step_s = seconds_per_step(
                        n, batch, np.dtype(precision).type, args.steps, args.repeats
                    )
                    rate = n * n * batch / step_s
                    fraction = 100 * rate / bound
                    print(
                        f"| {n}x{n} | {precision} | {threads} | {batch} | "
                        f"{1e3 * step_s:.3f} | {rate:.2e} | {fraction:.1f} % |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
