"""Seconds per training step of the transfer networks against frame size.

Trains the classifier and DRAEM of ``thermosynth.validation.detectors`` for a
few steps on random 8-bit frames at several sizes, one after the other in one
process, and reports the seconds per step and their ratio to the smallest
size. This is the cost that ``validate transfer --resize`` cuts. Each fit
includes its validation passes, as in a real run, so the figures are upper
bounds on the pure step time. Writes
benchmarks/results/transfer_step_time.md, or the file given with ``-o``.

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
from _cli import add_results_file, script_parser

from thermosynth.validation.detectors import Classifier, Draem

OUT = Path(__file__).resolve().parents[1] / "benchmarks/results/transfer_step_time.md"
SIZES_PX = ((24, 40), (60, 80), (120, 160))
STEPS = 30
FRAMES = 256


def seconds_per_step(detector: type, size_px: tuple[int, int], steps: int) -> float:
    """Return the seconds per step of ``detector`` fitted on random frames."""
    rng = np.random.default_rng(0)
    normal = rng.integers(80, 120, (FRAMES, *size_px), dtype=np.uint8)
    anomalous = normal.copy()
    masks = np.zeros(normal.shape, dtype=bool)
    masks[:, 4:8, 4:8] = True
    anomalous[masks] = 200

    start = time.perf_counter()
    detector(steps=steps).fit(normal, anomalous, masks, rng)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    parser.add_argument(
        "--steps",
        type=int,
        default=STEPS,
        help="training steps per fit (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    command = "OMP_NUM_THREADS=1 python benchmarks/transfer_step_time.py"
    if args.steps != STEPS:
        command += f" --steps {args.steps}"
    if args.output != OUT:
        command += f" -o {args.output}"

    torch.set_num_threads(1)
    started = time.perf_counter()
    rows = []
    for detector in (Classifier, Draem):
        base = None
        for size_px in SIZES_PX:
            seconds = seconds_per_step(detector, size_px, args.steps)
            base = base or seconds
            rows.append((detector.__name__, size_px, seconds, seconds / base))
            print(rows[-1], flush=True)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Transfer networks: seconds per training step against frame size",
        "",
        f"`{command}`, "
        f"{stamp}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{time.perf_counter() - started:.0f} s; one torch thread, batches of 64, "
        f"{args.steps} steps per fit including validation passes.",
        "",
        "| network | frame [px] | s per step | ratio to 24 x 40 |",
        "|---|---|---|---|",
    ]
    for name, (height, width), seconds, ratio in rows:
        lines.append(f"| {name} | {height} x {width} | {seconds:.3f} | {ratio:.1f} |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
