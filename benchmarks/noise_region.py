"""Noise sigma of battery-station renders: whole frame against region of interest.

docs/validation.md quotes these figures for `noise_sigma` and
`contrast_noise`. Every normal render of ../shared/data/battery-station-inferno
blanks the pixels outside its camera mask. For each camera the script adds
Gaussian noise of 1, 2 and 4 levels inside the mask (random generator seed
0) and divides three estimates by the true sigma. The first is over the whole
frame. The second leaves the constant background out (`estimate_frame_noise`,
as closeness does), and the third uses the camera mask (as transfer does with
the recipe's region). The table gives the minimum, median and maximum over
the camera's frames.

The result goes to benchmarks/results/noise_region.md, or to the file given
with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/noise_region.py
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
from _cli import add_results_file, recorded_command, script_parser

from thermosynth.frames.noise import (
    constant_background,
    estimate_frame_noise,
    estimate_noise,
)
from thermosynth.frames.readers import read_image, read_mask

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "battery-station-inferno"
OUT = ROOT / "benchmarks" / "results" / "noise_region.md"
LUMA = np.array([0.299, 0.587, 0.114])
SIGMAS_LEVEL = (1.0, 2.0, 4.0)


def _spread(ratios: list[float]) -> str:
    """Return "min / median / max" of estimate-to-true ratios."""
    low, mid, high = np.percentile(ratios, [0, 50, 100])
    return f"{low:.2f} / {mid:.2f} / {high:.2f}"


def camera_rows(camera: str, rng: np.random.Generator) -> list[str]:
    """Return the table rows of one camera's normal renders."""
    region = read_mask(DATA / "camera_masks" / f"MASK_{camera}_thermal.png")
    files = sorted((DATA / "normal_masked").glob(f"*{camera}_thermal.png"))
    frames = [read_image(path).astype(float) @ LUMA for path in files]
    whole = np.ones(region.shape, bool)
    background = np.median([constant_background(v).mean() for v in frames])
    rows = []
    for sigma in SIGMAS_LEVEL:
        ratios: dict[str, list[float]] = {"whole": [], "left out": [], "in mask": []}
        for values in frames:
            noisy = values + np.where(region, rng.normal(0.0, sigma, values.shape), 0)
            ratios["whole"].append(estimate_noise(noisy, whole, quantum=1.0) / sigma)
            ratios["left out"].append(estimate_frame_noise(noisy, quantum=1.0) / sigma)
            in_mask = estimate_frame_noise(noisy, region=region, quantum=1.0)
            ratios["in mask"].append(in_mask / sigma)
        rows.append(
            f"| {camera} ({len(files)} frames, background {background:.0%}) | "
            f"{sigma:g} | {_spread(ratios['whole'])} | "
            f"{_spread(ratios['left out'])} | {_spread(ratios['in mask'])} |"
        )
    return rows


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    rng = np.random.default_rng(0)
    rows = camera_rows("CAM1", rng) + camera_rows("CAM2", rng)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = "\n".join(
        [
            "# Noise sigma of battery-station renders",
            "",
            f"`{command}`, {stamp}. Estimate over true sigma, min / median / "
            "max over each camera's frames; background is the median share of "
            "a frame left out as constant background.",
            "",
            "| camera | added sigma [level] | whole frame | background left out "
            "| camera mask given |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
