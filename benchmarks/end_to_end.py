"""Anomalous 256 x 256 frames per second: thermosynth with its bank vs Perlin.

thermosynth runs the demo recipe with 256 x 256 synthetic frames and the
scenario bank on (built before timing): registration, bank draw, warp,
camera, blend, and optionally the HDF5 and folder writers. The baseline is
DRAEM's Perlin-noise scheme as :class:`thermosynth.validation.generators.
PerlinBlend` implements it in numpy (anomalib cannot be installed beside this
torch), on the same frames converted to 8-bit. Both run in one process, one
after the other, so both ratios are measured under the same load.

    python benchmarks/end_to_end.py --samples 200
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from thermosynth.pipeline import Generator, generate
from thermosynth.recipe.loading import load_demo_recipe
from thermosynth.validation.generators import PerlinBlend


def recipe(work: str, n: int, *, writers: bool):
    return load_demo_recipe(
        overrides=[
            "frames.shape=[256, 256]",
            f"split.test_anomalous={n}",
            "split.train_normal=0",
            "split.test_normal=0",
            "bank.mode=reuse",
            "bank.size=32",
            f"bank.path={Path(work) / 'bank.h5'}",
            f"output.dir={Path(work) / 'out'}",
            f"output.hdf5={str(writers).lower()}",
            f"output.folder={str(writers).lower()}",
        ]
    )


def thermosynth_rate(work: str, n: int) -> tuple[float, float]:
    """Return samples per second without and with the writers."""
    list(Generator(recipe(work, 2, writers=False)).samples())  # builds the bank

    generator = Generator(recipe(work, n, writers=False))
    started = time.perf_counter()
    count = sum(1 for _ in generator.samples())
    bare = count / (time.perf_counter() - started)

    started = time.perf_counter()
    generate(recipe(work, n, writers=True), overwrite=True, progress=False)
    written = n / (time.perf_counter() - started)
    return bare, written


def perlin_rate(work: str, n: int) -> float:
    generator = Generator(recipe(work, 2, writers=False))
    frames = [generator.source.read(i).raw for i in range(8)]
    pool = np.stack([_to_uint8(f) for f in frames])
    perlin = PerlinBlend(pool)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(n):
        perlin(pool[i % len(pool)], rng)
    return n / (time.perf_counter() - started)


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    raw = raw.astype(float)
    return np.round(255 * (raw - raw.min()) / max(np.ptp(raw), 1)).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print("machine:", platform.platform(), os.cpu_count(), "CPUs")
    print("date:", datetime.datetime.now().isoformat(timespec="seconds"))
    with tempfile.TemporaryDirectory() as work:
        bare, written = thermosynth_rate(work, args.samples)
        perlin = perlin_rate(work, args.samples)
    print("| generator | frames / s | vs Perlin |")
    print("|---|---:|---:|")
    print(f"| thermosynth + bank, no writers | {bare:.1f} | {bare / perlin:.2f}x |")
    ratio = written / perlin
    print(f"| thermosynth + bank, HDF5 + folder | {written:.1f} | {ratio:.2f}x |")
    print(f"| Perlin (DRAEM scheme, numpy) | {perlin:.1f} | 1.00x |")


if __name__ == "__main__":
    main()
