"""Anomalous 256 x 256 frames per second: thermosynth with its bank vs Perlin.

thermosynth runs the demo recipe with 256 x 256 synthetic frames and the
scenario bank on (built before timing). Its timing includes everything a run
does per frame and per sample: rendering and reading the synthetic frames,
their noise estimate, registration, bank draw, warp, camera and blend, and
in the second row the HDF5 and folder writers.

anomalib cannot be installed beside this torch, so two baselines stand in for
its ``PerlinAnomalyGenerator`` (no texture folder), both given their frames
ready in memory:

- ``benchmarks/perlin_torch.py``: the same steps as anomalib's generator in
  plain torch (random-scale Perlin noise, its rotation, threshold, the noise
  as texture with three of ten augmentations, beta blend), on 3-channel float
  frames as anomalib makes them. torch runs on one thread; two threads were
  slower on this shared 2-core machine.
- :class:`thermosynth.validation.generators.PerlinBlend`: DRAEM's scheme in
  numpy on 8-bit frames. It does less work than anomalib: no rotation and no
  augmentation, and a normal frame as texture.

All run in one process, one after the other, so the ratios are measured under
the same load.

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
import torch
from perlin_torch import PerlinAnomalyTorch

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


def perlin_torch_rate(work: str, n: int) -> float:
    """Return anomalib-style Perlin frames per second on one torch thread."""
    generator = Generator(recipe(work, 2, writers=False))
    frames = [generator.source.read(i).raw for i in range(8)]
    pool = [
        torch.from_numpy(_to_uint8(f)).float().div(255).expand(3, -1, -1)
        for f in frames
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        perlin = PerlinAnomalyTorch(torch.Generator().manual_seed(0))
        started = time.perf_counter()
        for i in range(n):
            perlin(pool[i % len(pool)])
        return n / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)


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
        anomalib_like = perlin_torch_rate(work, args.samples)
        draem = perlin_rate(work, args.samples)

    rows = [
        ("thermosynth + bank, no writers", bare),
        ("thermosynth + bank, HDF5 + folder", written),
        ("Perlin, anomalib's steps (torch, 1 thread)", anomalib_like),
        ("Perlin, DRAEM scheme (numpy)", draem),
    ]
    print("| generator | frames / s | vs anomalib-style Perlin | vs DRAEM Perlin |")
    print("|---|---:|---:|---:|")
    for name, rate in rows:
        print(
            f"| {name} | {rate:.1f} | {rate / anomalib_like:.2f}x "
            f"| {rate / draem:.2f}x |"
        )


if __name__ == "__main__":
    main()
