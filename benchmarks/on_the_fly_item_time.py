"""Time per anomalous item of OnTheFlyDataset without a bank, on the demo recipe.

Every item simulates its own rise (``bank_size=0``, ``anomaly_fraction=1``),
so this is the cost that docs/benchmarks.md and the dataset's docstring
quote. The first item, which compiles the ADI solver's loops, is left out.

    OMP_NUM_THREADS=1 python benchmarks/on_the_fly_item_time.py
"""

from __future__ import annotations

import platform
import time

import torch
from _cli import script_parser

from thermosynth.datasets import OnTheFlyDataset
from thermosynth.recipe import load_demo_recipe

N_ITEMS = 20


def seconds_per_item(overrides: list[str], n_items: int) -> float:
    """Return the mean time of one anomalous item after a warm-up item [s]."""
    loaded = load_demo_recipe(overrides=overrides)
    dataset = OnTheFlyDataset(
        loaded, length=n_items + 1, anomaly_fraction=1.0, bank_size=0
    )
    dataset[0]
    start = time.perf_counter()
    for index in range(1, n_items + 1):
        dataset[index]
    return (time.perf_counter() - start) / n_items


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--items",
        type=int,
        default=N_ITEMS,
        help="timed anomalous items per setting, after the warm-up item "
        "(default: %(default)s)",
    )
    args = parser.parse_args()
    if args.items < 1:
        parser.error(f"--items must be at least 1, got {args.items}")

    torch.set_num_threads(1)
    machine = platform.processor() or platform.machine()
    print(f"{machine}, one thread, {args.items} anomalous items each")
    for label, overrides in [
        ("demo recipe (resolution_mm 2)", []),
        ("demo recipe, resolution_mm 5", ["layout.resolution_mm=5"]),
    ]:
        print(f"{label}: {seconds_per_item(overrides, args.items):.3f} s per item")


if __name__ == "__main__":
    main()
