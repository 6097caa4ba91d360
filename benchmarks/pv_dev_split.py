"""Choose the PV pseudo-anomaly settings on a development split, not the test set.

pv_transfer.py tests on 1,500 No-Anomaly modules and half of each hotspot
class. This script scores frames that the test never reads: the other half
of each hotspot class (the reserve) against 1,500 No-Anomaly modules that
the benchmark leaves unused. The split is drawn with the same seed, so the
training normals are the benchmark's. It trains DRAEM (no trimming, no
contamination) on the pseudo-anomalies of each variant of the thermosynth
generator, over several training seeds, and writes the mean AUROC per
variant to benchmarks/results/pv_dev_split.md.

The variants cross the recipe's scenarios (without ``hot_region``, with it,
or with its radius range narrowed to the first one tried, 40-120 mm) with
the generator's per-sample contrast spread (1 or 2). Two more rows train
the binary classifier on the recipe's pseudo-anomalies, with its logit map
pooled by the max or by the mean.

    OMP_NUM_THREADS=1 python benchmarks/pv_dev_split.py [--seeds 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import multiprocessing
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from pv_transfer import (
    DATA,
    HOTSPOT_CLASSES,
    RECIPE,
    ROOT,
    build_data,
    format_values,
)

from thermosynth.pipeline import Generator
from thermosynth.recipe import load_recipe
from thermosynth.validation import generators as gen
from thermosynth.validation.detectors import Classifier, Draem
from thermosynth.validation.metrics import auroc
from thermosynth.validation.transfer import make_pseudo
from thermosynth.validation.transfer_data import load_classes

OUT = ROOT / "benchmarks" / "results" / "pv_dev_split.md"
N_DEV_NORMAL = 1500
REGION_SCENARIO = "hot_region"

_STATE: dict = {}


def dev_split(seed: int, n_train: int, n_test: int) -> dict:
    """Return the benchmark's training normals and the development frames.

    Development normals are the No-Anomaly modules that follow the
    benchmark's training and test normals in the same permutation.
    Development anomalies are the reserve half of each hotspot class.
    """
    classes = load_classes(DATA)
    data = build_data(
        classes, np.random.default_rng(seed), n_train=n_train, n_test=n_test
    )
    normal = classes["No-Anomaly"]
    order = np.random.default_rng(seed).permutation(len(normal))
    # The split's first draw is this permutation; check it, so that a change
    # there cannot put training or test normals into the development set.
    if not np.array_equal(normal[order][:n_train], data.train_normal):
        raise RuntimeError("the development normals no longer follow the split")
    dev_normal = normal[order][n_train + n_test :][:N_DEV_NORMAL]
    groups = np.concatenate(
        [np.full(len(classes[name]) // 2, name) for name in HOTSPOT_CLASSES]
    )
    return {
        "train": data.train_normal,
        "images": np.concatenate([dev_normal, data.reserve_anomalies]),
        "groups": np.concatenate([np.full(len(dev_normal), "normal"), groups]),
    }


def rise_bank(region: str, n_scenarios: int, seed: int):
    """Simulate the PV recipe's bank with the hot_region variant ``region``.

    ``region`` is "none" (scenario dropped), "narrow" (radius 40-120 mm) or
    "recipe" (as the recipe has it).
    """
    scenarios = yaml.safe_load(RECIPE.read_text())["scenarios"]
    if region == "none":
        scenarios = [s for s in scenarios if s.get("name") != REGION_SCENARIO]
    elif region == "narrow":
        for spec in scenarios:
            if spec.get("name") == REGION_SCENARIO:
                spec["radius_mm"] = {"uniform": [40.0, 120.0]}
    overrides = ["scenarios=" + json.dumps(scenarios)]
    loaded = load_recipe(RECIPE, overrides=overrides)
    pipeline = Generator(loaded)
    bank = gen.simulate_rise_bank(
        loaded, pipeline.read_frame(0), n_scenarios=n_scenarios, seed=seed
    )
    return bank, pipeline.camera, loaded.recipe.physics.ambient_C


def detector(name: str, steps: int) -> Draem | Classifier:
    """Return DRAEM, or the classifier for "classifier, <pooling> pooling"."""
    if name.startswith("classifier"):
        return Classifier(steps=steps, pooling=name.split(", ")[1].split()[0])
    return Draem(steps=steps)


def run_one(task: tuple[str, str, float, str, int]) -> dict:
    """Train one detector on one variant and seed, and return its development AUROC."""
    name, region, spread, detector_name, seed = task
    torch.set_num_threads(1)
    split, banks, steps = _STATE["split"], _STATE["banks"], _STATE["steps"]
    bank, camera, ambient_C = banks[region]
    generator = gen.ThermalHotspots(bank, camera, ambient_C=ambient_C, spread=spread)
    rng = np.random.default_rng([seed, 7])
    anomalous, masks = make_pseudo(split["train"], generator, rng)
    scorer = detector(detector_name, steps).fit(split["train"], anomalous, masks, rng)
    scores = scorer(split["images"])[0]

    groups = split["groups"]
    normal = groups == "normal"
    row = {
        "variant": f"{name}, {detector_name}",
        "seed": seed,
        "all": auroc(~normal, scores),
    }
    for group in HOTSPOT_CLASSES:
        keep = normal | (groups == group)
        row[group] = auroc(~normal[keep], scores[keep])
    return row


def markdown(rows: list[dict], args: argparse.Namespace, elapsed: float) -> str:
    """Tabulate the mean and per-seed AUROC of each variant."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Development split for the PV pseudo-anomaly settings",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/pv_dev_split.py --seeds {args.seeds} "
        f"--jobs {args.jobs}`, {stamp}, {platform.processor() or platform.machine()}, "
        f"{elapsed:.0f} s. {args.steps} training steps, no trimming; "
        f"{len(rows) // max(1, args.seeds)} variants x {args.seeds} seeds. Scored "
        "on the reserve hotspots against unused No-Anomaly modules; the "
        "benchmark's test frames are not read.",
        "",
        "| variant | all, mean (per seed) | Hot-Spot, mean (per seed) |",
        "|---|---|---|",
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        cells = []
        for key in ("all", "Hot-Spot"):
            values = np.array([r[key] for r in rows if r["variant"] == variant])
            cells.append(f"{values.mean():.3f} ({format_values(values)})")
        lines.append(f"| {variant} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the data split (default 0)"
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="training seeds per variant (default 3)"
    )
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-o", "--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()

    _STATE["split"] = dev_split(args.seed, n_train=2500, n_test=1500)
    recipe = "three kinds, hot_region 40-200 mm (recipe)"
    variants = [
        ("two kinds, fixed contrast", "none", 1.0, "draem"),
        ("two kinds, spread 2", "none", 2.0, "draem"),
        ("three kinds, hot_region 40-120 mm, fixed contrast", "narrow", 1.0, "draem"),
        ("three kinds, hot_region 40-120 mm, spread 2", "narrow", 2.0, "draem"),
        (f"{recipe}, fixed contrast", "recipe", 1.0, "draem"),
        (f"{recipe}, spread 2", "recipe", 2.0, "draem"),
        (f"{recipe}, spread 2", "recipe", 2.0, "classifier, max pooling"),
        (f"{recipe}, spread 2", "recipe", 2.0, "classifier, mean pooling"),
    ]
    regions = dict.fromkeys(region for _, region, _, _ in variants)
    _STATE["banks"] = {
        region: rise_bank(region, n_scenarios=64, seed=args.seed) for region in regions
    }
    _STATE["steps"] = args.steps
    tasks = [(*v, seed) for v in variants for seed in range(args.seeds)]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        rows = pool.map(run_one, tasks, chunksize=1)

    text = markdown(rows, args, time.perf_counter() - start)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
