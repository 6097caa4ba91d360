"""How often shards written on Dask workers differ in bytes from one process.

Generates a small sequence dataset from the demo recipe (4 sequences of 4
frames, one per shard) in one process, then repeatedly with ``--workers 2``
into the same output path. It counts the runs in which any shard's HDF5
file differs in bytes from the in-process run. Each run calls the command
line in this process, as the tests do, and starts its own local cluster.

    OMP_NUM_THREADS=1 python benchmarks/worker_bytes.py --runs 50

The local cluster of ``--workers`` runs without Dask's sampling profiler
(``thermosynth.distributed``); ``--profiler`` turns it on again, as a cluster
given by ``--scheduler`` may have it.
"""

from __future__ import annotations

import contextlib
import datetime
import filecmp
import io
import platform
import shutil
import tempfile
import time
from pathlib import Path

from _cli import script_parser

from thermosynth import cli, distributed

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
SMALL_SEQUENCES = (
    "split.train_normal=1",
    "split.test_normal=1",
    "split.test_anomalous=2",
    "frames.n_frames=4",
    "frames.shape=[48, 64]",
    "sequence={fps: 0.2, window_s: 20}",
    "scenarios=[{kind: hotspot, power_W: 2.0, radius_mm: 4.0, duration_s: 20, "
    "layer: middle}]",
    "output.shard_size=1",
)


def generate(out: Path, *extra: str) -> None:
    """Run ``thermosynth generate`` on the small sequence recipe into ``out``."""
    sets = [arg for item in SMALL_SEQUENCES for arg in ("--set", item)]
    args = ["generate", "--demo", *sets, "-o", str(out), "--no-progress", *extra]
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(args)
    if code != 0:
        raise SystemExit(f"thermosynth {' '.join(args)} exited with {code}")


def differing_shards(reference: Path, out: Path) -> list[str]:
    """Return the names of the shard files whose bytes differ."""
    return [
        path.name
        for path in sorted((reference / "shards").glob("*.h5"))
        if not filecmp.cmp(path, out / "shards" / path.name, shallow=False)
    ]


def keep_run(root: Path, folder: Path, run: int) -> None:
    """Move a differing run, and a copy of the reference once, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "reference").exists():
        shutil.copytree(root / "reference", folder / "reference")
    shutil.move(root / "out", folder / f"run-{run:03d}")


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--runs",
        type=int,
        default=50,
        help="runs on 2 workers, a few seconds each (default 50)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="report file (default benchmarks/results/worker_bytes.md, or "
        "worker_bytes_profiler.md with --profiler)",
    )
    parser.add_argument(
        "--profiler",
        action="store_true",
        help="run the workers with Dask's sampling profiler",
    )
    parser.add_argument(
        "--keep", type=Path, help="folder to move the reference and differing runs to"
    )
    args = parser.parse_args()

    if args.profiler:
        # An empty Dask configuration leaves the workers' profiler at its default, on.
        distributed._NO_PROFILER = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "out")
        (root / "out").rename(root / "reference")
        differing = 0
        for run in range(args.runs):
            shutil.rmtree(root / "out", ignore_errors=True)
            generate(root / "out", "--workers", "2")
            names = differing_shards(root / "reference", root / "out")
            differing += bool(names)
            print(f"run {run}: {names or 'identical'}", flush=True)
            if names and args.keep:
                keep_run(root, args.keep, run)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    report = (
        "# Shards written on 2 Dask workers against one process\n\n"
        f"`OMP_NUM_THREADS=1 python benchmarks/worker_bytes.py --runs {args.runs}"
        f"{' --profiler' if args.profiler else ''}`, "
        f"{stamp}, {platform.machine()}, {time.perf_counter() - started:.0f} s, "
        f"Dask's profiler on the workers: {'on' if args.profiler else 'off'}.\n\n"
        f"Runs with a shard that differs in bytes: {differing} of {args.runs}.\n"
    )
    print(report)
    name = "worker_bytes_profiler.md" if args.profiler else "worker_bytes.md"
    (args.output or RESULTS / name).write_text(report)


if __name__ == "__main__":
    main()
