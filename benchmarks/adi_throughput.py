"""Heat solver throughput at matched accuracy: FiPy, sparse LU and ADI, in one run.

The plate of ``solver_scaling.py`` (60 mm square, one layer, a busbar stripe
with k from 1 to 200 W m-1 K-1, convection 10 W m-2 K-1, one 1 W hotspot of
3 mm radius per scenario), stepped with dt = 0.5 s by:

- FiPy's default solver (it factorises the matrix at every step);
- FiPy with its scipy PCG solver, the best of its iterative solvers here;
- thermosynth.physics.fast.simulate_batch, one sparse LU reused for all steps;
- thermosynth.physics.adi.simulate_adi_batch, Douglas ADI compiled with numba,
  on ``--threads`` threads.

Each figure is the best of ``--repeats`` runs, for every solver alike, because
other jobs share the machine. Accuracy: every solver's final field is
compared with the LU solver at dt / 50, which is close to the exact time
integral. "error / peak" is the largest difference over the peak rise.
Throughput is cell-steps per second, the speed-up is against FiPy's default
solver on the same grid, and the last column is the fraction of a
memory-bandwidth bound of ``--bandwidth-GBps`` at 8 bytes per cell update,
for float32 rows too (at their 4 bytes the bound would be twice as high).
``--plot FILE`` saves a plot of throughput against batch size. ``--solvers adi`` with
``--no-error`` times only the ADI rows, for float64 and float32 steps as
``--precisions`` lists, and skips the fine reference. ``--emissivity 0.9``
makes the top face radiate as the recipes' default does. The ADI solver then
eliminates its y lines per scenario, and FiPy's rows cannot be run because
its model here has no radiation.

    OMP_NUM_THREADS=1 python benchmarks/adi_throughput.py --threads 1 \
        --plot docs/images/adi_throughput.png
    OMP_NUM_THREADS=1 python benchmarks/adi_throughput.py --solvers adi --no-error
    OMP_NUM_THREADS=1 python benchmarks/adi_throughput.py --solvers lu adi \
        --emissivity 0.9
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solver_scaling import BOUNDARY, DT_S, fipy_default, plate, scenario  # noqa: E402

from thermosynth.physics.adi import simulate_adi_batch  # noqa: E402
from thermosynth.physics.fast import simulate_batch  # noqa: E402
from thermosynth.physics.heat import Boundary  # noqa: E402


def fipy_pcg(layout, sources, n_steps: int) -> tuple[float, np.ndarray]:
    """Step the plain FiPy model with its scipy PCG solver; return s/step, rise."""
    from fipy.solvers.scipy import LinearPCGSolver

    solver = LinearPCGSolver(tolerance=1e-10, iterations=2000)
    return fipy_default(layout, sources, n_steps, solver=solver)


def timed(
    solve, layout, batch: int, n_steps: int, boundary: Boundary = BOUNDARY
) -> tuple[float, np.ndarray]:
    """Run ``solve`` on ``batch`` scenarios; return s per step and scenario 0's rise.

    The results are dropped before the next run, as a generator drops a batch
    once it has blended and written it, so that their memory can serve the
    next batch.
    """
    scenarios = [scenario(layout, i) for i in range(batch)]
    started = time.perf_counter()
    results = solve(
        layout,
        scenarios,
        boundary=boundary,
        duration_s=n_steps * DT_S,
        dt_s=DT_S,
        output_times_s=[n_steps * DT_S],
    )
    seconds = time.perf_counter() - started
    return seconds / n_steps, results[0].rise_K[-1].copy()


def fine_reference(layout, n_steps: int, boundary: Boundary) -> np.ndarray:
    """Return scenario 0's rise from the LU solver at dt / 50."""
    return simulate_batch(
        layout,
        [scenario(layout, 0)],
        boundary=boundary,
        duration_s=n_steps * DT_S,
        dt_s=DT_S / 50,
        output_times_s=[n_steps * DT_S],
    )[0].rise_K[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bandwidth-GBps", type=float, default=26.0)
    parser.add_argument(
        "--solvers",
        nargs="+",
        choices=["fipy", "lu", "adi"],
        default=["fipy", "lu", "adi"],
        help="solvers to time; without fipy the speed-up column is n/a",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=["float64", "float32"],
        default=["float32", "float64"],
        help="arithmetic of the ADI rows; the recipes use float32",
    )
    parser.add_argument(
        "--no-error",
        action="store_true",
        help="skip the LU reference at dt / 50; the error column is then n/a",
    )
    parser.add_argument(
        "--emissivity",
        type=float,
        default=0.0,
        help="top-face emissivity of the LU and ADI rows; above 0 the loss "
        "radiates, as in the recipes, and the FiPy rows cannot be run",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="save a plot of throughput against batch size here "
        "(docs/images/adi_throughput.png for the published one)",
    )
    args = parser.parse_args()
    if not 0.0 <= args.emissivity <= 1.0:
        parser.error(f"--emissivity {args.emissivity} must be in 0..1")
    if args.emissivity > 0 and "fipy" in args.solvers:
        parser.error("--emissivity above 0 needs --solvers without fipy")
    if min(args.grids + args.batches + [args.steps, args.repeats]) < 1:
        parser.error("--grids, --batches, --steps and --repeats must be >= 1")
    args.boundary = Boundary(h_top_W_m2K=10.0, emissivity_top=args.emissivity)
    bound = args.bandwidth_GBps * 1e9 / 8

    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    header(args, bound, numba.get_num_threads())
    warm = plate(16)
    for precision in args.precisions:
        simulate_adi_batch(
            warm,
            [scenario(warm, 0)],
            boundary=args.boundary,
            duration_s=1.0,
            dt_s=0.5,
            precision=precision,
        )

    curves: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for n in args.grids:
        grid_rows(n, args, bound, curves)
    if args.plot is not None:
        plot(curves, args.plot)


def header(args: argparse.Namespace, bound: float, threads: int) -> None:
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(
        "machine:",
        platform.platform(),
        os.cpu_count(),
        "CPUs;",
        threads,
        "numba threads",
    )
    print("date:", datetime.datetime.now().isoformat(timespec="seconds"))
    print(f"bandwidth bound: {bound:.2e} cell-updates/s at 8 bytes per cell")
    print(
        "| grid | solver | batch | ms / step | cell-steps / s | vs FiPy default "
        "| error / peak | of bandwidth bound |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")


def grid_rows(n: int, args, bound: float, curves: dict) -> None:
    layout = plate(n)
    cells = n * n
    fine = None if args.no_error else fine_reference(layout, args.steps, args.boundary)

    def error(rise: np.ndarray) -> float:
        if fine is None:
            return float("nan")
        return float(np.abs(rise - fine).max()) / float(np.abs(fine).max())

    base_s = float("nan")
    if "fipy" in args.solvers:
        base_s = fipy_rows(n, layout, args, bound, error)

    for name, solve in solvers(args):
        for batch in args.batches:
            step_s, rise = best(
                args.repeats, timed, solve, layout, batch, args.steps, args.boundary
            )
            rate = row(
                n, name, batch, step_s, cells * batch, base_s, error(rise), bound
            )
            curves.setdefault((name, n), []).append((batch, rate))


def fipy_rows(n: int, layout, args, bound: float, error) -> float:
    """Print the two FiPy rows; return the default solver's seconds per step."""
    fipy_steps = args.steps if n <= 128 else max(args.steps // 4, 1)
    sources = scenario(layout, 0)
    base_s, rise = best(args.repeats, fipy_default, layout, sources, fipy_steps)
    base_error = error(rise) if fipy_steps == args.steps else float("nan")
    row(n, "FiPy default", 1, base_s, n * n, base_s, base_error, bound)
    pcg_s, rise = best(args.repeats, fipy_pcg, layout, sources, fipy_steps)
    pcg_error = error(rise) if fipy_steps == args.steps else float("nan")
    row(n, "FiPy PCG", 1, pcg_s, n * n, base_s, pcg_error, bound)
    return base_s


def solvers(args: argparse.Namespace) -> list[tuple[str, object]]:
    """Return the (row name, batch solve function) pairs to time."""
    chosen: list[tuple[str, object]] = []
    if "lu" in args.solvers:
        chosen.append(("LU (fast)", simulate_batch))
    if "adi" in args.solvers:
        for precision in args.precisions:
            name = "ADI" if precision == "float64" else f"ADI {precision}"
            solve = functools.partial(simulate_adi_batch, precision=precision)
            chosen.append((name, solve))
    return chosen


def best(repeats: int, run, *args) -> tuple[float, np.ndarray]:
    """Return the shortest time per step of ``repeats`` runs, and a field."""
    runs = [run(*args) for _ in range(repeats)]
    return min(seconds for seconds, _ in runs), runs[0][1]


def row(n, name, batch, step_s, cell_updates, base_s, err, bound) -> float:
    rate = cell_updates / step_s
    base_rate = n * n / base_s if base_s > 0 else float("nan")
    speedup = f"{rate / base_rate:.0f}x" if np.isfinite(base_rate) else "n/a"
    error = f"{err:.1e}" if np.isfinite(err) else "n/a"
    print(
        f"| {n}x{n} | {name} | {batch} | {1e3 * step_s:.2f} | {rate:.2e} | "
        f"{speedup} | {error} | {100 * rate / bound:.2f} % |",
        flush=True,
    )
    return rate


def plot(curves: dict[tuple[str, int], list[tuple[int, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    for (name, n), points in curves.items():
        batches, rates = zip(*points, strict=True)
        style = "o-" if name.startswith("ADI") else "s--"
        axes.loglog(batches, rates, style, label=f"{name}, {n} x {n}")
    axes.set_xlabel("batch size (scenarios per call)")
    axes.set_ylabel("cell-steps per second")
    axes.set_title("Heat solver throughput, dt = 0.5 s, one layer")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print("plot:", path)


if __name__ == "__main__":
    main()
