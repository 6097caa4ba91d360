"""Score the PV development split with hand-made image features.

Each feature is one number per frame: a global statistic, a local-contrast
filter or the spread of the row means. The features score the reserve
hotspots against the unused No-Anomaly modules, the development split of
``pv_dev_split.py``, and the test frames are not read. The AUROCs show what
kind of signal separates each class, in particular Hot-Spot, on which every
detector of the transfer benchmark stays below 0.85. Writes
benchmarks/results/pv_hotspot_features.md, or the file given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/pv_hotspot_features.py
"""

from __future__ import annotations

import datetime
import platform
import time
from collections.abc import Callable

import cv2
import numpy as np
from _cli import add_results_file, recorded_command, script_parser
from pv_dev_split import ROOT, class_aurocs, dev_split

OUT = ROOT / "benchmarks" / "results" / "pv_hotspot_features.md"
INNER_PX = 3  # border left out of the inner-frame features [px]
CLASSES = ("all", "Cell", "Cell-Multi", "Hot-Spot", "Hot-Spot-Multi")


def max_minus_median(frame: np.ndarray) -> float:
    return float(frame.max() - np.median(frame))


def inner_max_minus_median(frame: np.ndarray) -> float:
    return max_minus_median(frame[INNER_PX:-INNER_PX, INNER_PX:-INNER_PX])


def top_hat(size_px: int) -> Callable[[np.ndarray], float]:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size_px, size_px))

    def score(frame: np.ndarray) -> float:
        opened = cv2.morphologyEx(frame, cv2.MORPH_OPEN, kernel)
        return float((frame - opened)[2:-2, 2:-2].max())

    return score


def gaussian_difference(sigma_px: float) -> Callable[[np.ndarray], float]:
    def score(frame: np.ndarray) -> float:
        smooth = cv2.GaussianBlur(frame, (0, 0), 0.7)
        background = cv2.GaussianBlur(frame, (0, 0), sigma_px)
        return float((smooth - background)[2:-2, 2:-2].max())

    return score


def row_mean_spread(frame: np.ndarray) -> float:
    inner = frame[4:-4, 4:-4]
    return float(inner.mean(axis=1).std())


def column_mean_spread(frame: np.ndarray) -> float:
    inner = frame[4:-4, 4:-4]
    return float(inner.mean(axis=0).std())


FEATURES: dict[str, Callable[[np.ndarray], float]] = {
    "max minus median": max_minus_median,
    "max minus median, inner frame": inner_max_minus_median,
    "median": lambda frame: float(np.median(frame)),
    "standard deviation": lambda frame: float(frame.std()),
    "top-hat, 5 px disc": top_hat(5),
    "top-hat, 7 px disc": top_hat(7),
    "difference of Gaussians, 3 px": gaussian_difference(3.0),
    "difference of Gaussians, 5 px": gaussian_difference(5.0),
    "spread of row means (horizontal bands)": row_mean_spread,
    "spread of column means (vertical bands)": column_mean_spread,
}


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    start = time.perf_counter()
    split = dev_split(0, n_train=2500, n_test=1500)
    frames = split["images"].astype(np.float32)

    rows = []
    for name, feature in FEATURES.items():
        scores = np.array([feature(frame) for frame in frames])
        aurocs = class_aurocs(scores, split["groups"])
        cells = " | ".join(f"{aurocs[group]:.3f}" for group in CLASSES)
        rows.append(f"| {name} | {cells} |")

    lines = [
        "# Hand-made features on the PV development split",
        "",
        f"`{command}`, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.processor() or platform.machine()}, "
        f"{time.perf_counter() - start:.0f} s. Image AUROC of each feature as "
        "the anomaly score: reserve hotspots against 1,500 unused No-Anomaly "
        "modules.",
        "",
        "| feature | " + " | ".join(CLASSES) + " |",
        "|---" * (len(CLASSES) + 1) + "|",
        *rows,
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
