"""Compare test-time variants of DRAEM's image score on the PV development split.

Trains DRAEM (800 steps, no trimming) on the PV recipe's pseudo-anomalies
(contrast spread 2) for each of ``--seeds`` training seeds, with the data,
bank and random streams of ``pv_dev_split.py``, so the networks are that
script's. Every variant scores the reserve hotspots against the 1,500
unused No-Anomaly modules from the same network:

- no flips: the max of the 3 x 3 mean-pooled probability map of the frame;
- four flips, maps averaged: the same of the mean of the maps of the
  frame's four flips (identity, left-right, up-down, both), each flipped
  back. This is DRAEM's default (``flip_tta``);
- four flips, scores averaged: the mean of the four flips' image scores;
- rank fusion: the mean of a frame's two ranks, under DRAEM's default score
  and under the max minus median of the frame without its 3-pixel border.
  Ranks are taken over the scored frames, so the fused score depends on
  which frames are scored, though not on their labels.

The border-excluded max minus median alone is reported too. The test
frames of ``pv_transfer.py`` are not read. Writes
benchmarks/results/pv_dev_test_time.md, or the file given with ``-o``.

The rule, fixed before the run: a variant replaces the default only if its
mean over the seeds beats the default's on Hot-Spot by more than 0.01 and
loses at most 0.002 over all classes.

    OMP_NUM_THREADS=1 python benchmarks/pv_test_time.py [--seeds 3]
"""

from __future__ import annotations

import datetime
import platform
import time

import numpy as np
import torch
from _cli import add_results_file, add_seeds, recorded_command, script_parser
from pv_dev_split import _STATE as STATE
from pv_dev_split import (
    ROOT,
    averaged_cells,
    class_aurocs,
    dev_split,
    make_generator,
    rise_bank,
)
from pv_hotspot_features import inner_max_minus_median
from pv_transfer import format_values
from scipy import stats

from thermosynth.validation.detectors import Draem, _pooled_max
from thermosynth.validation.transfer import make_pseudo

OUT = ROOT / "benchmarks" / "results" / "pv_dev_test_time.md"
STEPS = 800
FLIP_AXES = ((), (2,), (1,), (1, 2))
"""Axes of (N, H, W) frames that each of the four flips reverses."""
DEFAULT = "four flips, maps averaged (default)"
HEURISTIC = "max minus median, 3 px border left out"


def flipped_maps(scorer, images: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Return the probability map of each flip of each frame, flipped back.

    ``scorer`` is a DRAEM scorer without flips. The result is (4, N, H, W).
    """
    maps = []
    for axes in FLIP_AXES:
        flipped = np.ascontiguousarray(np.flip(images, axes))
        maps.append(np.flip(scorer(flipped)[1], axes))
    return np.array(maps)


def image_score(maps: np.ndarray) -> np.ndarray:
    """Return DRAEM's image score: the max of the 3 x 3 mean-pooled map."""
    return _pooled_max(torch.from_numpy(np.ascontiguousarray(maps))).numpy()


def rank_mean(*scores: np.ndarray) -> np.ndarray:
    """Return each frame's mean rank under several scores, ties as midranks."""
    return np.mean([stats.rankdata(s) for s in scores], axis=0)


def variant_scores(maps: np.ndarray, heuristic: np.ndarray) -> dict:
    """Return the image scores of every test-time variant from the flips' maps."""
    default = image_score(maps.mean(axis=0))
    return {
        "no flips": image_score(maps[0]),
        DEFAULT: default,
        "four flips, scores averaged": np.mean([image_score(m) for m in maps], 0),
        "rank fusion of the default and the heuristic": rank_mean(default, heuristic),
        HEURISTIC: heuristic,
    }


def seed_scores(seed: int, heuristic: np.ndarray) -> dict:
    """Train DRAEM with training seed ``seed``; return every variant's scores."""
    split = STATE["split"]
    rng = np.random.default_rng([seed, 7])
    generator = make_generator(("thermosynth", "recipe", 2.0), split["train"])
    anomalous, masks = make_pseudo(split["train"], generator, rng)
    draem = Draem(steps=STEPS, flip_tta=False)
    scorer = draem.fit(split["train"], anomalous, masks, rng)
    return variant_scores(flipped_maps(scorer, split["images"]), heuristic)


def table(runs: list[dict], groups: np.ndarray) -> list[str]:
    """Rows of mean (per seed) AUROC, the Hot-Spot gain and the seeds' mean."""
    default = np.array([class_aurocs(r[DEFAULT], groups)["Hot-Spot"] for r in runs])
    rows = []
    for variant in runs[0]:
        aurocs = [class_aurocs(r[variant], groups) for r in runs]
        cells = []
        for key in ("all", "Hot-Spot"):
            values = np.array([a[key] for a in aurocs])
            cells.append(f"{values.mean():.3f} ({format_values(values)})")
        gain = np.array([a["Hot-Spot"] for a in aurocs]) - default
        cells.append(f"{gain.mean():+.3f} ({format_values(gain)})")
        own = [{"scores": r[variant], "groups": groups} for r in runs]
        cells += averaged_cells(own)
        rows.append(f"| {variant} | {' | '.join(cells)} |")
    return rows


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    add_seeds(parser, "training seeds of DRAEM")
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)
    torch.set_num_threads(1)
    start = time.perf_counter()

    split = STATE["split"] = dev_split(0, n_train=2500, n_test=1500)
    STATE["banks"] = {"recipe": rise_bank("recipe", n_scenarios=64, seed=0)}
    frames = split["images"].astype(np.float32)
    heuristic = np.array([inner_max_minus_median(frame) for frame in frames])
    runs = [seed_scores(seed, heuristic) for seed in range(args.seeds)]

    lines = [
        "# Test-time variants of DRAEM on the PV development split",
        "",
        f"`{command}`, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.processor() or platform.machine()}, "
        f"{time.perf_counter() - start:.0f} s. DRAEM, {STEPS} steps, the "
        f"recipe's pseudo-anomalies at spread 2, {args.seeds} training seeds; "
        "every variant scores with the same networks. Reserve hotspots against "
        "1,500 unused No-Anomaly modules.",
        "",
        "| variant | all, mean (per seed) | Hot-Spot, mean (per seed) "
        "| Hot-Spot minus default (per seed) | all, seeds averaged "
        "| Hot-Spot, seeds averaged |",
        "|---|---|---|---|---|---|",
        *table(runs, split["groups"]),
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
