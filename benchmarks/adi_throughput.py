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
other jobs share the machine. Within a grid and batch size the LU and ADI
solvers take turns, repeat by repeat, so that load from other jobs slows
them alike. Accuracy: every solver's final field is compared with the LU
solver at dt / 50, which is close to the exact time integral. "error /
peak" is the largest difference over the peak rise. Throughput is
cell-steps per second, with one cell-step per cell, scenario and step of
dt: ADI's sub-steps do not count. The speed-up is against FiPy's default
solver on the same grid. "of bandwidth bound" is the fraction of a
memory-bandwidth bound of ``--bandwidth-GBps`` at 8 bytes per cell update,
for float32 rows too (at their 4 bytes the bound would be twice as high).

The sources switch on at t = 0, so ADI takes its start-up sub-steps in
the first step. "ms / step", "cell-steps / s", the speed-up and
"of bandwidth bound" time the whole call over ``--steps`` steps, as a user
runs it: set-up, start-up and all steps. The "steps 2+" columns time only
the steps after the first (from the solvers' progress callback), the rate
that a longer run with constant power approaches.
``--ramp`` ramps the power over the first half of the run, as a recipe's
``profile: ramp`` does, so ADI starts up in the steps of the ramp that
``adi.STARTUP_POWER_FRACTION`` selects.
``--max-xy-stiffness`` times ADI rows at other values of
``adi.MAX_XY_STIFFNESS``, which sets how short the first start-up
sub-step is. With ``inf`` the first step is taken whole.
``--float64-startup`` adds float32 rows whose start-up sub-steps run in
float64 (``adi.FLOAT32_STARTUP`` off), timed in turns with the others.
``--startup-power-fraction`` does the same for
``adi.STARTUP_POWER_FRACTION``, which sets which steps of a ramp start up;
``0`` starts up in every step whose power changes.
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
    OMP_NUM_THREADS=1 python benchmarks/adi_throughput.py --solvers adi --no-error \
        --grids 128 --batches 64 --max-xy-stiffness 4 16 inf
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solver_scaling import BOUNDARY, DT_S, fipy_default, plate, scenario  # noqa: E402

from thermosynth.physics import adi  # noqa: E402
from thermosynth.physics.adi import simulate_adi_batch  # noqa: E402
from thermosynth.physics.fast import simulate_batch  # noqa: E402
from thermosynth.physics.heat import Boundary  # noqa: E402
from thermosynth.physics.profiles import Ramp  # noqa: E402


def fipy_pcg(layout, sources, n_steps: int) -> tuple[float, np.ndarray]:
    """Step the plain FiPy model with its scipy PCG solver; return s/step, rise."""
    from fipy.solvers.scipy import LinearPCGSolver

    solver = LinearPCGSolver(tolerance=1e-10, iterations=2000)
    return fipy_default(layout, sources, n_steps, solver=solver)


def sources(layout, index: int, ramp_s: float | None) -> list:
    """Return scenario ``index``'s hotspots, ramped over ``ramp_s`` [s] unless None."""
    hotspots = scenario(layout, index)
    if ramp_s is None:
        return hotspots
    return [dataclasses.replace(s, power_W=Ramp(1.0, ramp_s=ramp_s)) for s in hotspots]


class Timing(NamedTuple):
    """Seconds per step of one timed call [s], and scenario 0's final rise [K]."""

    step_s: float
    after_first_step_s: float
    rise_K: np.ndarray


def timed(
    solve,
    layout,
    batch: int,
    n_steps: int,
    boundary: Boundary = BOUNDARY,
    *,
    ramp_s: float | None = None,
) -> Timing:
    """Run ``solve`` on ``batch`` scenarios and time the call.

    ``step_s`` is the whole call over ``n_steps``, and ``after_first_step_s``
    the mean of the steps after the first (NaN for a single step). The results
    are dropped before the next run, as a generator drops a batch once it
    has blended and written it, so that their memory can serve the next
    batch.
    """
    scenarios = [sources(layout, i, ramp_s) for i in range(batch)]
    step_ends: list[float] = []

    def mark(step: int, total: int) -> None:
        step_ends.append(time.perf_counter())

    started = time.perf_counter()
    results = solve(
        layout,
        scenarios,
        boundary=boundary,
        duration_s=n_steps * DT_S,
        dt_s=DT_S,
        output_times_s=[n_steps * DT_S],
        progress=mark,
    )
    seconds = time.perf_counter() - started
    after_first_s = float("nan")
    if n_steps > 1:
        after_first_s = (step_ends[-1] - step_ends[0]) / (n_steps - 1)
    return Timing(seconds / n_steps, after_first_s, results[0].rise_K[-1].copy())


def fine_reference(
    layout, n_steps: int, boundary: Boundary, ramp_s: float | None
) -> np.ndarray:
    """Return scenario 0's rise from the LU solver at dt / 50."""
    return simulate_batch(
        layout,
        [sources(layout, 0, ramp_s)],
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
        "--ramp",
        action="store_true",
        help="ramp each hotspot's power from 0 to 1 W over the first half of "
        "the run, as a recipe's profile: ramp does; ADI then takes start-up "
        "sub-steps in some steps of the ramp. Not with --solvers fipy",
    )
    parser.add_argument(
        "--max-xy-stiffness",
        type=float,
        nargs="+",
        help="time the ADI rows once per value of adi.MAX_XY_STIFFNESS [-] "
        f"(default: only its own value, {adi.MAX_XY_STIFFNESS:g}); inf takes "
        "the first step whole",
    )
    parser.add_argument(
        "--float64-startup",
        action="store_true",
        help="also time float32 ADI rows with adi.FLOAT32_STARTUP off, whose "
        "start-up sub-steps then run in float64",
    )
    parser.add_argument(
        "--startup-power-fraction",
        type=float,
        nargs="+",
        help="time the ADI rows once per value of adi.STARTUP_POWER_FRACTION "
        f"[-] (default: only its own value, {adi.STARTUP_POWER_FRACTION:g}); "
        "0 starts up in every step whose power changes",
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
    if any(not value > 0 for value in args.max_xy_stiffness or ()):
        parser.error(f"--max-xy-stiffness {args.max_xy_stiffness} must be > 0")
    if any(not value >= 0 for value in args.startup_power_fraction or ()):
        parser.error(
            f"--startup-power-fraction {args.startup_power_fraction} must be >= 0"
        )
    if args.ramp and "fipy" in args.solvers:
        parser.error("--ramp needs --solvers without fipy")
    args.boundary = Boundary(h_top_W_m2K=10.0, emissivity_top=args.emissivity)
    args.ramp_s = args.steps * DT_S / 2 if args.ramp else None
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
    print("load average (1, 5, 15 min):", *os.getloadavg())
    print(f"bandwidth bound: {bound:.2e} cell-updates/s at 8 bytes per cell")
    print(
        "| grid | solver | batch | ms / step | cell-steps / s | vs FiPy default "
        "| error / peak | of bandwidth bound | steps 2+: ms / step "
        "| steps 2+: of bound |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def grid_rows(n: int, args, bound: float, curves: dict) -> None:
    layout = plate(n)
    cells = n * n
    fine = None
    if not args.no_error:
        fine = fine_reference(layout, args.steps, args.boundary, args.ramp_s)

    def error(rise: np.ndarray) -> float:
        if fine is None:
            return float("nan")
        return float(np.abs(rise - fine).max()) / float(np.abs(fine).max())

    base_s = float("nan")
    if "fipy" in args.solvers:
        base_s = fipy_rows(n, layout, args, bound, error)

    chosen = solvers(args)
    timings = time_solvers(chosen, layout, args)

    for name, _ in chosen:
        for batch in args.batches:
            timing = timings[name, batch]
            rate = row(
                n,
                name,
                batch,
                timing.step_s,
                cells * batch,
                base_s,
                error(timing.rise_K),
                bound,
                after_first_step_s=timing.after_first_step_s,
            )
            curves.setdefault((name, n), []).append((batch, rate))


def time_solvers(chosen, layout, args) -> dict[tuple[str, int], Timing]:
    """Return the fastest timing of each (row name, batch size).

    The solvers take turns within each repeat, so that load from other jobs
    slows them alike.
    """
    timings: dict[tuple[str, int], Timing] = {}
    for batch in args.batches:
        runs: dict[str, list[Timing]] = {name: [] for name, _ in chosen}
        for _ in range(args.repeats):
            for name, solve in chosen:
                timing = timed(
                    solve,
                    layout,
                    batch,
                    args.steps,
                    args.boundary,
                    ramp_s=args.ramp_s,
                )
                runs[name].append(timing)
        for name, _ in chosen:
            timings[name, batch] = fastest(runs[name])
    return timings


def fipy_rows(n: int, layout, args, bound: float, error) -> float:
    """Print the two FiPy rows; return the default solver's seconds per step."""
    fipy_steps = args.steps if n <= 128 else max(args.steps // 4, 1)
    hotspots = scenario(layout, 0)
    base_s, rise = best(args.repeats, fipy_default, layout, hotspots, fipy_steps)
    base_error = error(rise) if fipy_steps == args.steps else float("nan")
    row(n, "FiPy default", 1, base_s, n * n, base_s, base_error, bound)
    pcg_s, rise = best(args.repeats, fipy_pcg, layout, hotspots, fipy_steps)
    pcg_error = error(rise) if fipy_steps == args.steps else float("nan")
    row(n, "FiPy PCG", 1, pcg_s, n * n, base_s, pcg_error, bound)
    return base_s


def solvers(args: argparse.Namespace) -> list[tuple[str, object]]:
    """Return the (row name, batch solve function) pairs to time."""
    chosen: list[tuple[str, object]] = []
    if "lu" in args.solvers:
        chosen.append(("LU (fast)", simulate_batch))
    if "adi" not in args.solvers:
        return chosen

    for precision in args.precisions:
        name = "ADI" if precision == "float64" else f"ADI {precision}"
        solve = functools.partial(simulate_adi_batch, precision=precision)
        startups = [None]
        if args.float64_startup and precision == "float32":
            startups.append(False)
        for stiffness in args.max_xy_stiffness or [None]:
            for fraction in args.startup_power_fraction or [None]:
                for float32_startup in startups:
                    settings = {
                        "MAX_XY_STIFFNESS": stiffness,
                        "STARTUP_POWER_FRACTION": fraction,
                        "FLOAT32_STARTUP": float32_startup,
                    }
                    run = functools.partial(with_settings, settings, solve)
                    chosen.append((row_name(name, settings), run))
    return chosen


def row_name(name: str, settings: dict[str, float | None]) -> str:
    """Return an ADI row's name with the settings that differ from the module's."""
    if settings["MAX_XY_STIFFNESS"] is not None:
        name += f", xy stiffness {settings['MAX_XY_STIFFNESS']:g}"
    if settings["STARTUP_POWER_FRACTION"] is not None:
        name += f", power fraction {settings['STARTUP_POWER_FRACTION']:g}"
    if settings["FLOAT32_STARTUP"] is not None:
        name += ", float64 start-up"
    return name


def with_settings(settings: dict[str, float | None], solve, *args, **kwargs):
    """Call ``solve`` with the ``adi`` constants of ``settings``, skipping None."""
    defaults = {key: getattr(adi, key) for key in settings}
    for key, value in settings.items():
        if value is not None:
            setattr(adi, key, value)
    try:
        return solve(*args, **kwargs)
    finally:
        for key, value in defaults.items():
            setattr(adi, key, value)


def best(repeats: int, run, *args) -> tuple[float, np.ndarray]:
    """Return the shortest time per step of ``repeats`` runs, and a field."""
    runs = [run(*args) for _ in range(repeats)]
    return min(seconds for seconds, _ in runs), runs[0][1]


def fastest(runs: list[Timing]) -> Timing:
    """Return the shortest of each time over ``runs``, with the first run's field."""
    return Timing(
        min(run.step_s for run in runs),
        min(run.after_first_step_s for run in runs),
        runs[0].rise_K,
    )


def row(
    n,
    name,
    batch,
    step_s,
    cell_updates,
    base_s,
    err,
    bound,
    *,
    after_first_step_s=math.nan,
) -> float:
    rate = cell_updates / step_s
    base_rate = n * n / base_s if base_s > 0 else float("nan")
    speedup = f"{rate / base_rate:.0f}x" if np.isfinite(base_rate) else "n/a"
    error = f"{err:.1e}" if np.isfinite(err) else "n/a"
    after_first = "n/a | n/a"
    if np.isfinite(after_first_step_s):
        after_first_rate = cell_updates / after_first_step_s
        after_first = (
            f"{1e3 * after_first_step_s:.2f} | {100 * after_first_rate / bound:.2f} %"
        )
    print(
        f"| {n}x{n} | {name} | {batch} | {1e3 * step_s:.2f} | {rate:.2e} | "
        f"{speedup} | {error} | {100 * rate / bound:.2f} % | {after_first} |",
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
