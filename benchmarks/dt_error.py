"""Measure how the time step dt_s shifts the peak rise of the demo's anomalies.

Makes the embedded demo recipe's anomalous samples (the same draws as
``thermosynth generate --demo``), then simulates each drawn scenario again
with the ``fast`` (sparse LU) and ``adi`` solvers at dt_s 5 (the demo's
own), 2 and 0.25 s. The reference is ``fast`` at dt_s 0.25. For each sample
it reports the relative error of the final peak rise, the difference
between the two solvers at dt_s 0.25 [K], and how many sub-steps ADI takes
per step. The result goes to benchmarks/results/dt_error.md
(``dt_error_n_layers1.md`` with ``--n-layers 1``).

    OMP_NUM_THREADS=1 python benchmarks/dt_error.py [--n-layers 1]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import time
from pathlib import Path

from thermosynth.recipe import load_demo_recipe
from thermosynth.samples import Generator
from thermosynth.scenario import DrawnScenario
from thermosynth.simulation import simulate_scenario

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STEPS_S = (5.0, 2.0)
REFERENCE_DT_S = 0.25
SOLVERS = ("fast", "adi")


class SubstepLog(logging.Handler):
    """Collect the sub-steps per step that simulate_adi logs at debug level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.substeps: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "sub-steps per step" in record.msg:
            count = record.args[4] if isinstance(record.args, tuple) else None
            if isinstance(count, int):
                self.substeps.append(count)


def demo_scenarios(overrides: list[str]) -> tuple[Generator, list[DrawnScenario]]:
    """Make the demo's anomalous samples and rebuild their drawn scenarios."""
    generator = Generator(load_demo_recipe(overrides=overrides))
    drawn = []
    for index, _, label, frame_index in generator.plan.entries():
        if not label:
            continue
        meta = generator.anomalous(index, generator.read_frame(frame_index)).metadata
        drawn.append(
            DrawnScenario(
                kind=meta["kind"],
                name=meta["scenario"],
                duration_s=meta["duration_s"],
                params=meta["params"],
            )
        )
    return generator, drawn


def peak_rise_K(
    generator: Generator, drawn: DrawnScenario, solver: str, dt_s: float
) -> float:
    """Return the final peak rise [K] of ``drawn`` simulated at ``dt_s``."""
    recipe = generator.recipe
    physics = recipe.physics.model_copy(update={"solver": solver, "dt_s": dt_s})
    recipe = recipe.model_copy(update={"physics": physics})
    return float(simulate_scenario(drawn, generator.layout, recipe)[-1].max())


def table_row(generator: Generator, drawn: DrawnScenario, log: SubstepLog) -> str:
    """Simulate one scenario with each solver and step into a table row."""
    peaks = {}
    for solver in SOLVERS:
        for dt_s in (*STEPS_S, REFERENCE_DT_S):
            log.substeps.clear()
            peaks[solver, dt_s] = peak_rise_K(generator, drawn, solver, dt_s)
            if solver == "adi" and dt_s == STEPS_S[0]:
                substeps = ", ".join(map(str, sorted(set(log.substeps)))) or "none (LU)"

    reference = peaks["fast", REFERENCE_DT_S]
    errors = [
        f"{100 * (peaks[solver, dt_s] / reference - 1):+.2f} %"
        for dt_s in STEPS_S
        for solver in SOLVERS
    ]
    gap_K = peaks["adi", REFERENCE_DT_S] - reference
    return (
        f"| {drawn.name} | {drawn.duration_s:.0f} | {reference:.3f} | "
        + " | ".join(errors)
        + f" | {gap_K:+.1e} | {substeps} |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-layers", type=int, default=None, help="override physics.n_layers"
    )
    args = parser.parse_args()
    start = time.perf_counter()

    overrides = [] if args.n_layers is None else [f"physics.n_layers={args.n_layers}"]
    generator, scenarios = demo_scenarios(overrides)
    log = SubstepLog()
    adi_logger = logging.getLogger("thermosynth.physics.adi")
    adi_logger.addHandler(log)
    adi_logger.setLevel(logging.DEBUG)
    rows = [table_row(generator, drawn, log) for drawn in scenarios]

    physics = generator.recipe.physics
    suffix = "" if args.n_layers is None else f"_n_layers{args.n_layers}"
    command = "OMP_NUM_THREADS=1 python benchmarks/dt_error.py" + (
        "" if args.n_layers is None else f" --n-layers {args.n_layers}"
    )
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = platform.processor() or platform.machine()
    elapsed = time.perf_counter() - start
    text = (
        "# Time-step error of the peak rise on the demo recipe\n\n"
        f"`{command}`, {stamp}, {machine}, {elapsed:.0f} s. The demo's "
        f"{len(rows)} anomalous samples, n_layers {physics.n_layers}, "
        f"{physics.precision}. Errors are of the final peak rise against "
        f"`fast` at dt_s {REFERENCE_DT_S:g}; negative is below it. The last "
        "column gives ADI's sub-steps per step at dt_s 5 (none where the "
        "scenario goes to LU).\n\n"
        "| scenario | duration [s] | reference peak [K] | fast dt 5 | adi dt 5 "
        "| fast dt 2 | adi dt 2 | adi - fast at dt 0.25 [K] | ADI sub-steps |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "".join(rows)
    )
    (RESULTS / f"dt_error{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
