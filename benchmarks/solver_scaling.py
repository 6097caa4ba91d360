"""Heat solver throughput against grid size and batch size, in one run.

Three solvers take the same implicit Euler steps on a two-material plate with
convection (a linear problem, one layer):

- FiPy's default solver on a plain TransientTerm == DiffusionTerm model, which
  factorises the matrix at every step;
- thermosynth.physics.heat.simulate, FiPy with a reused LU;
- thermosynth.physics.fast.simulate_batch, batch sizes 1 to 64;
- thermosynth.physics.stencil.simulate_stencil_batch, explicit sub-steps in
  torch (``--stencil-device``), whose difference is taken against the fast
  solver at dt / 50 (the implicit step's own O(dt) error is printed beside it).

Prints cell-steps per second, the speed-up over FiPy's default solver, the
largest difference from the fast solver's field as a fraction of the peak
(matched accuracy), and the fraction of a memory-bandwidth bound of
``--bandwidth-GBps`` at 8 bytes per cell update. ``--plot FILE`` saves a
plot of the fast solver's throughput.

    OMP_NUM_THREADS=1 python benchmarks/solver_scaling.py
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from thermosynth.geometry.layout import Layout, Material  # noqa: E402
from thermosynth.physics.fast import simulate_batch  # noqa: E402
from thermosynth.physics.heat import Boundary, simulate  # noqa: E402
from thermosynth.physics.sources import hotspot  # noqa: E402
from thermosynth.physics.stencil import (  # noqa: E402
    simulate_stencil_batch,
    stable_substeps,
)

BOUNDARY = Boundary(h_top_W_m2K=10.0)
CELL = Material("cell", 1.0, 30.0, 0.5, 2.0e6)
BUSBAR = Material("busbar", 200.0, 150.0, 50.0, 2.4e6)
DT_S = 0.5


def plate(n: int) -> Layout:
    """Return an n x n plate of 60 mm with a busbar stripe."""
    grid = np.zeros((n, n), dtype=int)
    grid[:, n // 3 : n // 2] = 1
    d = 60.0 / n
    return Layout(d, d, 2.0, grid, (CELL, BUSBAR), grid - 1)


def scenario(layout: Layout, index: int) -> list:
    x = 10.0 + 40.0 * ((index * 0.37) % 1.0)
    return [hotspot(layout, x_mm=x, y_mm=30.0, radius_mm=3.0, power_W=1.0)]


def fipy_default(
    layout: Layout, sources: list, n_steps: int, *, solver=None
) -> tuple[float, np.ndarray]:
    """Step a plain FiPy model with FiPy's default solver, or ``solver``.

    Returns seconds per step and the final rise.
    """
    import fipy

    ny, nx = layout.shape
    mesh = fipy.Grid2D(dx=layout.dx_mm * 1e-3, dy=layout.dy_mm * 1e-3, nx=nx, ny=ny)
    k_x = layout.property_map("k_x_W_mK").ravel()
    k_y = layout.property_map("k_y_W_mK").ravel()
    ids = np.ma.filled(mesh.faceCellIDs, -1)
    second = np.where(ids[1] < 0, ids[0], ids[1])
    axis = np.argmax(np.abs(np.asarray(mesh.faceNormals)), axis=0)
    k_axis = np.array([k_x, k_y])
    k1, k2 = k_axis[axis, ids[0]], k_axis[axis, second]
    k_face = fipy.FaceVariable(mesh=mesh, value=2 * k1 * k2 / (k1 + k2))

    dz = layout.thickness_mm * 1e-3
    g = fipy.CellVariable(mesh=mesh, value=BOUNDARY.h_top_W_m2K / dz)
    q = fipy.CellVariable(mesh=mesh, value=sources[0].weights_m3[0].ravel())
    rise = fipy.CellVariable(mesh=mesh, value=0.0)
    rho_cp = fipy.CellVariable(
        mesh=mesh, value=layout.property_map("rho_cp_J_m3K").ravel()
    )
    equation = fipy.TransientTerm(coeff=rho_cp) == (
        fipy.DiffusionTerm(coeff=k_face) - fipy.ImplicitSourceTerm(coeff=g) + q
    )

    started = time.perf_counter()
    for _ in range(n_steps):
        equation.solve(var=rise, dt=DT_S, solver=solver)
    elapsed = time.perf_counter() - started
    return elapsed / n_steps, np.asarray(rise.value).reshape(ny, nx)


def fast_batch(layout: Layout, batch: int, n_steps: int) -> tuple[float, np.ndarray]:
    scenarios = [scenario(layout, i) for i in range(batch)]
    started = time.perf_counter()
    results = simulate_batch(
        layout, scenarios, boundary=BOUNDARY, duration_s=n_steps * DT_S, dt_s=DT_S
    )
    return (time.perf_counter() - started) / n_steps, results[0].rise_K[-1]


def reference(layout: Layout, n_steps: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = simulate(
        layout,
        scenario(layout, 0),
        boundary=BOUNDARY,
        duration_s=n_steps * DT_S,
        dt_s=DT_S,
    )
    return (time.perf_counter() - started) / n_steps, result.rise_K[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--fipy-steps", type=int, default=4)
    parser.add_argument("--bandwidth-GBps", type=float, default=26.0)
    parser.add_argument("--stencil-device", default="cpu")
    parser.add_argument(
        "--plot",
        type=Path,
        help="save the throughput plot here "
        "(docs/images/solver_throughput.png for the published one)",
    )
    args = parser.parse_args()
    bound = args.bandwidth_GBps * 1e9 / 8

    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        "machine:",
        platform.platform(),
        platform.processor() or "",
        os.cpu_count(),
        "CPUs",
    )
    print("date:", datetime.datetime.now().isoformat(timespec="seconds"))
    print(f"bandwidth bound: {bound:.2e} cell-updates/s at 8 bytes per cell")
    print(
        "| grid | solver | batch | ms / step | cell-steps / s | vs FiPy default "
        "| max diff / peak | of bandwidth bound |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    curves: dict[int, list[tuple[int, float]]] = {}
    for n in args.grids:
        layout = plate(n)
        cells = n * n
        # Same step count for FiPy and fast, so that the fields compare.
        base_s, base_rise = fipy_default(layout, scenario(layout, 0), args.fipy_steps)
        _, fast_rise = fast_batch(layout, 1, args.fipy_steps)
        peak = float(np.abs(fast_rise).max())
        diff = float(np.abs(base_rise - fast_rise).max()) / peak
        row(n, "FiPy default", 1, base_s, cells, base_s, diff, bound)

        ref_s, ref_rise = reference(layout, args.fipy_steps)
        diff = float(np.abs(ref_rise - fast_rise).max()) / peak
        row(n, "FiPy reused LU", 1, ref_s, cells, base_s, diff, bound)

        for batch in args.batches:
            step_s, _ = fast_batch(layout, batch, args.steps)
            rate = row(n, "fast", batch, step_s, cells * batch, base_s, 0.0, bound)
            curves.setdefault(n, []).append((batch, rate))

        stencil_rows(layout, args, base_s, bound)

    if args.plot is not None:
        plot(curves, args.plot)


def stencil_rows(layout: Layout, args: argparse.Namespace, base_s, bound) -> None:
    """Print the stencil's rows: per recipe step, and per explicit sub-step."""
    n = layout.shape[0]
    fine = simulate_batch(
        layout,
        [scenario(layout, 0)],
        boundary=BOUNDARY,
        duration_s=args.steps * DT_S,
        dt_s=DT_S / 50,
    )[0].rise_K[-1]
    implicit_s, implicit = fast_batch(layout, 1, args.steps)
    peak = float(np.abs(fine).max())
    implicit_diff = float(np.abs(implicit - fine).max()) / peak
    n_sub = stable_substeps(layout, boundary=BOUNDARY, dt_s=DT_S)
    for batch in args.batches:
        scenarios = [scenario(layout, i) for i in range(batch)]
        started = time.perf_counter()
        result = simulate_stencil_batch(
            layout,
            scenarios,
            boundary=BOUNDARY,
            duration_s=args.steps * DT_S,
            dt_s=DT_S,
            device=args.stencil_device,
        )
        step_s = (time.perf_counter() - started) / args.steps
        diff = float(np.abs(result[0].rise_K[-1] - fine).max()) / peak
        row(n, "stencil", batch, step_s, n * n * batch, base_s, diff, bound)
        sub_rate = n * n * batch * n_sub / step_s
        print(
            f"|  | stencil sub-steps: {n_sub} per {DT_S} s step | {batch} | | "
            f"{sub_rate:.2e} cell-updates / s | | implicit dt={DT_S} s: "
            f"{implicit_diff:.1e} | {100 * sub_rate / bound:.2f} % |",
            flush=True,
        )


def row(n, name, batch, step_s, cell_updates, base_s, diff, bound) -> float:
    rate = cell_updates / step_s
    base_rate = n * n / base_s
    print(
        f"| {n}x{n} | {name} | {batch} | {1e3 * step_s:.1f} | {rate:.2e} | "
        f"{rate / base_rate:.1f}x | {diff:.1e} | {100 * rate / bound:.2f} % |",
        flush=True,
    )
    return rate


def plot(curves: dict[int, list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for n, points in curves.items():
        batches, rates = zip(*points, strict=True)
        axes.loglog(batches, rates, "o-", label=f"{n} x {n}")
    axes.set_xlabel("batch size (scenarios per solve)")
    axes.set_ylabel("cell-steps per second")
    axes.set_title("fast solver (reused sparse LU), one CPU thread")
    axes.legend(title="grid")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print("plot:", path)


if __name__ == "__main__":
    main()
