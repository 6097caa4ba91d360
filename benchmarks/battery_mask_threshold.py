"""Mask area of the battery-station recipe at several blend thresholds.

The battery-station frames are 8-bit palette renders, so their noise estimate
is the quantisation floor (0.289 level) and the default threshold, 3 noise
sigmas, is about 1 level: 0.04-0.07 K at the recipe's assumed 20 levels per
K. This script generates recipes/battery-station-inferno.yaml with one
temporary bank at each threshold and prints, per threshold, the median mask
area and the median area of the region that `validate closeness` estimates
from per-pixel normal statistics. That estimated region is the part of the
rise that exceeds 3 deviations of the normal frames at each pixel, an
estimate of what a person or a detector can see. The thresholds share one
seed and one bank, so they blend the same simulated rises.

    OMP_NUM_THREADS=1 python benchmarks/battery_mask_threshold.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _cli import script_parser

from thermosynth.pipeline import generate
from thermosynth.recipe import load_recipe
from thermosynth.validation import AutoencoderFeatures, closeness_report

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "battery-station-inferno.yaml"
SPLIT = ["split.train_normal=100", "split.test_normal=20", "split.test_anomalous=40"]
THRESHOLDS = (None, 2.0, 5.0, 10.0, 20.0, 40.0)
"""``blend.threshold`` values [level]; None is the code default, 3 noise sigmas."""


def measure(folder: Path, threshold: float | None) -> dict[str, float]:
    """Generate at one threshold and return the medians over anomalous samples."""
    name = "noise" if threshold is None else f"t{threshold:g}"
    overrides = [
        *SPLIT,
        f"output.dir={folder / name}",
        f"bank.path={folder}/bank.h5",
        "blend.noise_multiple=3.0",
        f"blend.threshold={'null' if threshold is None else threshold}",
    ]
    loaded = load_recipe(RECIPE, overrides=overrides)
    start = time.perf_counter()
    generate(loaded, progress=False)
    seconds = time.perf_counter() - start

    dataset = folder / name / "dataset.h5"
    with h5py.File(dataset, "r") as h5:
        anomalous = h5["labels"][:] == 1
        area = h5["masks"][anomalous].reshape(anomalous.sum(), -1).sum(axis=1)
        metadata = [json.loads(m) for m in h5["metadata"][anomalous]]
    used = [m["threshold"] for m in metadata]
    report = closeness_report(
        dataset,
        dataset,
        out_dir=folder / f"{name}_closeness",
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(epochs=2),
        hdf5="none",
    )
    pseudo = [r for r in report.per_sample if r["set"] == "pseudo"]
    return {
        "mask_px": float(np.median(area)),
        "mask_q90_px": float(np.percentile(area, 90)),
        "est_px": float(np.median([r["est_area_px"] for r in pseudo])),
        "est_contrast": float(np.nanmedian([r["est_contrast"] for r in pseudo])),
        "threshold_min": min(used),
        "threshold_max": max(used),
        "seconds": seconds,
    }


def main() -> None:
    parser = script_parser(__doc__)
    parser.parse_args()

    print(
        "| blend | mask px, median | mask px, 90th pct | estimated visible px, "
        "median | estimated contrast [level], median | generate [s] |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as name:
        for threshold in THRESHOLDS:
            row = measure(Path(name), threshold)
            if threshold is None:
                label = (
                    f"noise_multiple 3 ({row['threshold_min']:.2f}-"
                    f"{row['threshold_max']:.2f} level)"
                )
            else:
                label = f"threshold {threshold:g} level"
            print(
                f"| {label} | {row['mask_px']:.0f} | {row['mask_q90_px']:.0f} | "
                f"{row['est_px']:.0f} | {row['est_contrast']:.1f} | "
                f"{row['seconds']:.0f} |"
            )


if __name__ == "__main__":
    main()
