"""Repeat the PV benchmark's classifier over training seeds, for every generator.

pv_transfer.py repeats DRAEM over seeds within its 20-minute budget, but
trains the binary classifier once per generator. This script trains the
classifier (with the same trimming) on each generator's pseudo-anomalies
for ``--seeds`` training seeds on pv_transfer.py's data split and bank. It
writes the mean test AUROC over the four hotspot classes and on Hot-Spot,
and thermosynth's lead over the best other generator, to
benchmarks/results/pv_classifier_seeds.md. A training task's random stream
follows its seed and its position in the run's plan. This run plans only
the classifier, so even its seed 0 trains on other draws than the
benchmark's main run.

    OMP_NUM_THREADS=1 python benchmarks/pv_classifier_seeds.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import platform
import time

import numpy as np
import torch
from _cli import add_seeds
from pv_transfer import DATA, ROOT, build_data, format_values, pv_generators

from thermosynth.validation.detectors import Classifier
from thermosynth.validation.transfer import ALL, transfer_report
from thermosynth.validation.transfer_data import load_classes
from thermosynth.validation.transfer_setup import DEFAULT_TRIM_FRACTION, trimmed

OUT = ROOT / "benchmarks" / "results" / "pv_classifier_seeds.md"
STEPS = 800


def seed_aurocs(data, generators: dict, seed: int, jobs: int) -> dict:  # noqa: ANN001
    """Train the classifier on every generator with ``seed``; return AUROCs."""
    result = transfer_report(
        data,
        generators,
        {"classifier": trimmed(Classifier, STEPS, DEFAULT_TRIM_FRACTION)},
        out_dir=None,
        seed=seed,
        n_boot=20,
        n_pixel=0,
        jobs=jobs,
    )
    return {
        (r["generator"], r["group"]): r["auroc"]
        for r in result.image
        if r["detector"] == "classifier"
    }


def table(runs: list[dict], names: list[str]) -> list[str]:
    """Rows of mean (per seed) AUROC, all classes and Hot-Spot, per generator."""
    rows = []
    for name in names:
        cells = []
        for group in (ALL, "Hot-Spot"):
            values = np.array([run[(name, group)] for run in runs])
            cells.append(f"{values.mean():.3f} ({format_values(values)})")
        rows.append(f"| {name} | {' | '.join(cells)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_seeds(parser, "training seeds, from 0")
    parser.add_argument("--jobs", type=int, default=2, help="training processes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()

    rng = np.random.default_rng(0)
    data = build_data(load_classes(DATA), rng, n_train=2500, n_test=1500)
    generators = pv_generators(0)
    runs = [seed_aurocs(data, generators, s, args.jobs) for s in range(args.seeds)]

    names = list(generators)
    means = {n: np.mean([run[(n, ALL)] for run in runs]) for n in names}
    rival = max((n for n in names if n != "thermosynth"), key=means.__getitem__)
    lead = means["thermosynth"] - means[rival]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = "\n".join(
        [
            "# The PV benchmark's classifier over training seeds",
            "",
            f"`OMP_NUM_THREADS=1 python benchmarks/pv_classifier_seeds.py --seeds "
            f"{args.seeds}`, {stamp}, {platform.machine()}, "
            f"{time.perf_counter() - start:.0f} s. pv_transfer.py's split and "
            f"bank (seed 0), {STEPS} steps, trimming {DEFAULT_TRIM_FRACTION}; "
            f"training seeds 0 to {args.seeds - 1}, whose draws differ from "
            "the main run's, as only the classifier is planned here. Test image "
            "AUROC, mean (per seed).",
            "",
            "| generator | all hotspot classes | Hot-Spot |",
            "|---|---|---|",
            *table(runs, names),
            "",
            f"thermosynth ahead of the best other generator ({rival}) by "
            f"{lead:+.3f} on the mean over all classes.",
            "",
        ]
    )
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
