"""Peak memory (max RSS) of `thermosynth generate` against sample count.

It runs the demo recipe, or the recipe given with ``--recipe``. Each size
runs in its own subprocess with the scenario bank on. A fixed ``bank.size``
keeps the bank itself from growing with the run. A fresh parent process reads
the child's max RSS with ``resource.getrusage(RUSAGE_CHILDREN)``, which covers
only that child. Goal: the same peak within 10 % for all sizes.

    python benchmarks/generation_memory.py --sizes 1000 5000
    python benchmarks/generation_memory.py --recipe recipes/pv-module-hotspots.yaml
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

_CHILD = """
import resource, subprocess, sys, json, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"max_rss_MiB": usage.ru_maxrss / 1024,
                  "wall_s": time.perf_counter() - started}))
"""


def measure(n_samples: int, work: str, bank_size: int, recipe: str | None) -> dict:
    """Run one generation of ``n_samples`` anomalous samples; return its figures."""
    command = [
        sys.executable, "-m", "thermosynth.cli", "generate",
        "--demo" if recipe is None else recipe,
        "-o", os.path.join(work, f"out-{n_samples}"), "--overwrite", "--no-progress",
        "--set", f"split.test_anomalous={n_samples}",
        "--set", "bank.mode=reuse",
        "--set", f"bank.size={bank_size}",
        "--set", f"bank.path={os.path.join(work, 'bank.h5')}",
    ]  # fmt: skip
    output = subprocess.run(
        [sys.executable, "-c", _CHILD, *command],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--bank-size", type=int, default=32)
    parser.add_argument("--recipe", help="recipe file (default: the demo recipe)")
    args = parser.parse_args()

    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print("machine:", platform.platform(), os.cpu_count(), "CPUs")
    print("date:", datetime.datetime.now().isoformat(timespec="seconds"))
    print("| anomalous samples | max RSS [MiB] | wall [s] | samples / s |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        # Build the bank outside the timings.
        measure(8, work, args.bank_size, args.recipe)
        peaks = []
        for n in args.sizes:
            started = time.perf_counter()
            figures = measure(n, work, args.bank_size, args.recipe)
            wall = time.perf_counter() - started
            peaks.append(figures["max_rss_MiB"])
            print(
                f"| {n} | {figures['max_rss_MiB']:.1f} | {wall:.1f} | "
                f"{n / figures['wall_s']:.1f} |",
                flush=True,
            )
    print(f"max RSS spread: {100 * (max(peaks) / min(peaks) - 1):.1f} %")


if __name__ == "__main__":
    main()
