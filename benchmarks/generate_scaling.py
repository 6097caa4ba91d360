"""Throughput of ``generate`` in one process and on 1 and 2 local Dask workers.

Runs the demo recipe with mostly anomalous samples three times in one
process, one after the other, so the ratios hold under the same load: in
this process, on a local cluster of 1 worker and of 2 workers. Each time
includes the cluster's start and stop, as a user sees it. Scaling
efficiency is ``t(1 worker) / (2 * t(2 workers))``.

Machine: the 2-core development container shared with other jobs, so the
2-worker figure is an estimate that other load can lower.

    OMP_NUM_THREADS=1 python benchmarks/generate_scaling.py --anomalous 48
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def time_run(out: Path, anomalous: int, workers: int | None) -> tuple[float, int]:
    """Generate the demo dataset into ``out``; return seconds and sample count."""
    overrides = (
        "split.train_normal=8",
        "split.test_normal=4",
        f"split.test_anomalous={anomalous}",
        "frames.n_frames=16",
        "output.shard_size=4",
        f"output.dir={out}",
    )
    loaded = load_demo_recipe(overrides=overrides)
    start = time.perf_counter()
    summary = generate(loaded, progress=False, workers=workers)
    return time.perf_counter() - start, summary.n_samples


def main() -> None:
    """Time the three runs and write generate_scaling.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anomalous", type=int, default=48)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, workers in (("in_process", None), ("1_worker", 1), ("2_workers", 2)):
            seconds, n = time_run(Path(folder) / label, args.anomalous, workers)
            rows[label] = {"seconds": round(seconds, 2), "samples_per_s": n / seconds}
            print(f"{label:10s} {n} samples in {seconds:6.2f} s, {n / seconds:6.2f} /s")

    efficiency = rows["1_worker"]["seconds"] / (2 * rows["2_workers"]["seconds"])
    print(f"scaling efficiency 1 -> 2 workers: {efficiency:.2f}")
    record = {
        "runs": rows,
        "scaling_efficiency_1_to_2": round(efficiency, 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared, "
        f"Python {platform.python_version()}",
        "command": " ".join(["python", *sys.argv]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generate_scaling.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
