"""Seconds per training step of the transfer networks against frame size.

Trains the classifier and DRAEM of ``thermosynth.validation.detectors`` for a
few steps on random 8-bit frames at several sizes, one after the other in one
process, and reports the seconds per step and their ratio to the smallest
size. This is the cost that ``validate transfer --resize`` cuts. Each fit
includes its validation passes, as in a real run, so the figures are upper
bounds on the pure step time.

    OMP_NUM_THREADS=1 python benchmarks/transfer_step_time.py
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from thermosynth.validation.detectors import Classifier, Draem

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
SIZES_PX = ((24, 40), (60, 80), (120, 160))
STEPS = 30
FRAMES = 256


def seconds_per_step(detector: type, size_px: tuple[int, int]) -> float:
    """Return the seconds per step of ``detector`` fitted on random frames."""
    rng = np.random.default_rng(0)
    normal = rng.integers(80, 120, (FRAMES, *size_px), dtype=np.uint8)
    anomalous = normal.copy()
    masks = np.zeros(normal.shape, dtype=bool)
    masks[:, 4:8, 4:8] = True
    anomalous[masks] = 200

    start = time.perf_counter()
    detector(steps=STEPS).fit(normal, anomalous, masks, rng)
    return (time.perf_counter() - start) / STEPS


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = []
    for detector in (Classifier, Draem):
        base = None
        for size_px in SIZES_PX:
            seconds = seconds_per_step(detector, size_px)
            base = base or seconds
            rows.append((detector.__name__, size_px, seconds, seconds / base))
            print(rows[-1], flush=True)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Transfer networks: seconds per training step against frame size",
        "",
        "`OMP_NUM_THREADS=1 python benchmarks/transfer_step_time.py`, "
        f"{stamp}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.perf_counter() - started:.0f} s; one torch thread, batches of 64, "
        f"{STEPS} steps per fit including validation passes.",
        "",
        "| network | frame [px] | s per step | ratio to 24 x 40 |",
        "|---|---|---|---|",
    ]
    for name, (height, width), seconds, ratio in rows:
        lines.append(f"| {name} | {height} x {width} | {seconds:.3f} | {ratio:.1f} |")
    (RESULTS / "transfer_step_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
