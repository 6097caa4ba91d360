"""Measure where DRAEM misses the PV Hot-Spot class, on the development split.

Trains one DRAEM network (the recipe's pseudo-anomalies, contrast spread 2,
training seed 0) as ``pv_dev_split.py`` does and scores the reserve hotspots
against the unused No-Anomaly modules. It reports the share of Hot-Spot
frames that score above the 95th percentile of the normal frames. It also
reports the AUROC when the image score leaves a border of 0 to 3 pixels
out, which tests whether dark background at the crop's edge explains the
misses. Writes benchmarks/results/pv_hotspot_misses.md, or the file given
with ``-o``. The test frames are not read.

    OMP_NUM_THREADS=1 python benchmarks/pv_hotspot_misses.py
"""

from __future__ import annotations

import datetime
import platform
import time

import numpy as np
import torch
from _cli import add_results_file, recorded_command, script_parser
from pv_dev_split import _STATE as STATE
from pv_dev_split import ROOT, class_aurocs, dev_split, make_generator, rise_bank
from torch.nn import functional as F

from thermosynth.validation.detectors import Draem
from thermosynth.validation.transfer import make_pseudo

OUT = ROOT / "benchmarks" / "results" / "pv_hotspot_misses.md"
BORDERS_PX = (0, 1, 2, 3)


def border_scores(maps: np.ndarray, border_px: int) -> np.ndarray:
    """Return the max of the 3 x 3 mean map, leaving ``border_px`` pixels out."""
    pooled = F.avg_pool2d(torch.from_numpy(maps).float()[:, None], 3, 1, 1)[:, 0]
    if border_px:
        pooled = pooled[:, border_px:-border_px, border_px:-border_px]
    return pooled.amax(dim=(1, 2)).numpy()


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    torch.set_num_threads(1)
    start = time.perf_counter()
    split = STATE["split"] = dev_split(0, n_train=2500, n_test=1500)
    STATE["banks"] = {"recipe": rise_bank("recipe", n_scenarios=64, seed=0)}

    rng = np.random.default_rng([0, 7])
    generator = make_generator(("thermosynth", "recipe", 2.0), split["train"])
    anomalous, masks = make_pseudo(split["train"], generator, rng)
    scorer = Draem(steps=800).fit(split["train"], anomalous, masks, rng)
    scores, maps = scorer(split["images"])

    groups = split["groups"]
    normal, hot = groups == "normal", groups == "Hot-Spot"
    above = float((scores[hot] > np.quantile(scores[normal], 0.95)).mean())
    lines = [
        "# Where DRAEM misses the Hot-Spot class (development split)",
        "",
        f"`{command}`, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.processor() or platform.machine()}, "
        f"{time.perf_counter() - start:.0f} s. One DRAEM network, seed 0.",
        "",
        f"Hot-Spot frames above the normals' 95th percentile: {above:.0%}.",
        "",
        "| border left out [px] | all | Hot-Spot |",
        "|---|---|---|",
    ]
    for border_px in BORDERS_PX:
        aurocs = class_aurocs(border_scores(maps, border_px), groups)
        lines.append(
            f"| {border_px} | {aurocs['all']:.3f} | {aurocs['Hot-Spot']:.3f} |"
        )
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
