"""Rise per PV pixel: one sample at the pixel's centre against the footprint mean.

docs/recipes.md quotes these figures for the warp to frame pixels. The frame
is the first module crop of recipes/pv-module-hotspots.yaml, registered to the
whole frame: about 41 mm, 5 layout cells of 8 mm, per pixel side. Two cases:

- A Gaussian spot of 20 K peak and 10, 20 or 40 mm sigma, moved across one
  pixel in tenths of a pixel. The table gives the range of its peak pixel
  and of its integral over the frame, relative to the grid's.
- Eight `hot_spot` rises simulated from the recipe's distributions (random
  generator seed 5): peak pixel and integral, both ways, and the peak rise
  that the camera records on the frame from the footprint's samples (mean
  radiance) against the one it records from their mean temperature.
- The bank of `thermosynth validate transfer` as benchmarks/pv_transfer.py
  simulates it (64 scenarios, seed 0): the ratio of the peak rise recorded
  from the samples to the one recorded from their mean, on a flat frame.

The result goes to benchmarks/results/pixel_footprint.md, or to the file
given with ``-o``.

    OMP_NUM_THREADS=1 python benchmarks/pixel_footprint.py
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
from _cli import add_results_file, recorded_command, script_parser

from thermosynth.camera.model import record_rise
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.geometry.sampling import samples_per_pixel, warp_plane
from thermosynth.recipe import load_recipe
from thermosynth.samples import Generator, simulate_rise
from thermosynth.scenario import draw_scenario
from thermosynth.validation import generators as gen

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "pv-module-hotspots.yaml"
OUT = ROOT / "benchmarks" / "results" / "pixel_footprint.md"
SIGMAS_MM = (10.0, 20.0, 40.0)
N_RISES = 8


def warp_both(prepared, rise, frame_shape):
    """Return the rise at frame pixels [K]: centre sample, then footprint mean."""
    homography = prepared.homography
    samples = samples_per_pixel(homography, rise.shape, frame_shape)
    warped = []
    for k in (1, samples):
        rise_px = warp_plane(rise, homography, frame_shape, k)
        rise_px[~prepared.covered] = 0
        warped.append(rise_px)
    return warped


def spot_rows(generator, prepared, frame_shape) -> list[str]:
    """Return table rows for Gaussian spots moved across one pixel."""
    ny, nx = generator.layout.shape
    height, width = frame_shape
    pixel_cells = (nx / width) * (ny / height)
    resolution_mm = generator.recipe.layout.resolution_mm
    rows, cols = np.mgrid[0:ny, 0:nx].astype(float)
    lines = []
    for sigma_mm in SIGMAS_MM:
        peaks, integrals = [[], []], [[], []]
        for shift in np.linspace(0.0, 1.0, 11):
            col = (10.5 + shift) * nx / width - 0.5
            row = 20.5 * ny / height - 0.5
            distance2 = ((cols - col) ** 2 + (rows - row) ** 2) * resolution_mm**2
            rise = 20.0 * np.exp(-distance2 / (2 * sigma_mm**2))
            for i, px in enumerate(warp_both(prepared, rise, frame_shape)):
                peaks[i].append(px.max())
                integrals[i].append(px.sum() * pixel_cells / rise.sum())
        lines.append(
            f"| spot, sigma {sigma_mm:g} mm | {_span(peaks[0])} | "
            f"{_span(peaks[1])} | {_span(integrals[0], 3)} | "
            f"{_span(integrals[1], 3)} | | |"
        )
    return lines


def hot_spot_rows(generator, prepared, frame) -> list[str]:
    """Return table rows for simulated hot_spot rises of the recipe."""
    frame_shape = frame.shape
    ny, nx = generator.layout.shape
    height, width = frame_shape
    pixel_cells = (nx / width) * (ny / height)
    spec = next(s for s in generator.recipe.scenarios if s.name == "hot_spot")
    rng = np.random.default_rng(5)
    lines = []
    for _ in range(N_RISES):
        drawn = draw_scenario(spec, generator.layout, rng)
        rise = simulate_rise(drawn, generator.layout, generator.recipe)
        centre, mean = warp_both(prepared, rise, frame_shape)
        params = drawn.params
        lines.append(
            f"| hot_spot {params['power_W']:.1f} W, {params['radius_mm']:.1f} mm "
            f"| {centre.max():.2f} | {mean.max():.2f} | "
            f"{centre.sum() * pixel_cells / rise.sum():.3f} | "
            f"{mean.sum() * pixel_cells / rise.sum():.3f} | "
            f"{_recorded_peak_K(generator, prepared, frame, rise, True):.2f} | "
            f"{_recorded_peak_K(generator, prepared, frame, rise, False):.2f} |"
        )
    return lines


def _recorded_peak_K(generator, prepared, frame, rise, radiance: bool) -> float:
    """Return the peak recorded rise [K] of a layout rise on ``frame``."""
    samples = warp_to_frame(rise, prepared.homography, frame.shape, keep_samples=True)
    if not radiance:
        samples = samples.mean(axis=-1)
    camera = generator.camera
    recorded = record_rise(
        camera,
        samples,
        frame,
        ambient_C=generator.recipe.physics.ambient_C,
        emissivity_map=prepared.emissivity,
    )
    return float(recorded.max()) / (camera.levels_per_kelvin or 1.0)


def bank_line(frame) -> str:
    """Return the spread of the bank's peak ratio, samples against mean."""
    loaded = load_recipe(RECIPE)
    bank = gen.simulate_rise_bank(loaded, frame, n_scenarios=64, seed=0)
    shape = bank.shape[1:3]
    flat = Frame(
        np.full(shape, 100, np.uint8),
        np.full(shape, 100.0),
        "level",
        np.ones(shape, bool),
        LinearEncoding(np.uint8),
        1.0,
        "flat",
    )
    camera = Generator(loaded).camera
    ambient_C = loaded.recipe.physics.ambient_C
    ratios = []
    for rise in bank.astype(np.float64):
        sampled = record_rise(camera, rise, flat, ambient_C=ambient_C)
        averaged = record_rise(camera, rise.mean(axis=-1), flat, ambient_C=ambient_C)
        ratios.append(sampled.max() / averaged.max())
    return (
        f"Bank of {len(bank)} rises ({bank.shape[-1]} samples per pixel): peak "
        "recorded from the samples over peak recorded from their mean, median "
        f"{np.median(ratios):.3f}, 90th percentile {np.quantile(ratios, 0.9):.3f}, "
        f"largest {np.max(ratios):.3f}."
    )


def _span(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}..{max(values):.{digits}f}"


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)

    overrides = ["bank.mode=off", "frames.select=null"]
    generator = Generator(load_recipe(RECIPE, overrides=overrides))
    frame = generator.read_frame(0)
    prepared = generator.prepare(frame)
    samples = samples_per_pixel(
        prepared.homography, generator.layout.shape, frame.shape
    )
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = "\n".join(
        [
            "# Rise per PV pixel: centre sample against footprint mean",
            "",
            f"`{command}`, {stamp}. Frame {Path(frame.source).name}, "
            f"{frame.shape[0]} x {frame.shape[1]} px; the footprint mean takes "
            f"{samples} x {samples} samples per pixel.",
            "",
            "| rise | centre: peak [K] | mean: peak [K] | centre: integral | "
            "mean: integral | recorded, radiance [K] | recorded, temperature [K] |",
            "|---|---|---|---|---|---|---|",
            *spot_rows(generator, prepared, frame.shape),
            *hot_spot_rows(generator, prepared, frame),
            "",
            "The last two columns are the peak rise recorded on the frame, from "
            "the footprint's samples (mean radiance) and from their mean "
            "temperature; spot rows leave them empty.",
            "",
            bank_line(frame),
            "",
        ]
    )
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
