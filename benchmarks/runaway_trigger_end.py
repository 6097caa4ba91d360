"""Peak rise of the module runaway sequence with its short ended and kept on.

Generates recipes/module-runaway-sequence.yaml with one anomalous sequence
(split 1/1/1) twice: as the recipe has it, the internal short ending at the
drawn ``trigger_s``, and with the short on for the whole window
(``trigger_s`` removed). Prints the drawn short's power [W] and end [s], the
energy it would deliver over the window [J], and the peak rise [K] of the
last frame of each, as docs/runaway.md quotes them.

    OMP_NUM_THREADS=1 python benchmarks/runaway_trigger_end.py
"""

from __future__ import annotations

import datetime
import json
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from _cli import script_parser

from thermosynth.recipe import load_recipe
from thermosynth.sequences import generate_sequences

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "module-runaway-sequence.yaml"
SPLIT = ("split.train_normal=1", "split.test_normal=1", "split.test_anomalous=1")


def last_peak(folder: Path, *overrides: str) -> tuple[float, dict]:
    """Generate one anomalous sequence; return its last frame's peak rise [K]."""
    loaded = load_recipe(RECIPE, overrides=[*SPLIT, f"output.dir={folder}", *overrides])
    generate_sequences(loaded, progress=False)
    with h5py.File(folder / "dataset.h5", "r") as file:
        row = int(np.flatnonzero(file["labels"][:])[0])
        metadata = json.loads(file["metadata"].asstr()[row])
        return float(file["rise_K"][row][-1].max()), metadata


def main() -> None:
    parser = script_parser(__doc__)
    parser.parse_args()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ended, metadata = last_peak(Path(tmp) / "ended")
        throughout, _ = last_peak(Path(tmp) / "on", "scenarios.0.trigger_s=null")
    params = metadata["params"]
    window_s = load_recipe(RECIPE).recipe.sequence.window_s
    energy_kJ = params["power_W"] * window_s / 1e3
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    print(
        f"{stamp}, {platform.machine()}, {time.perf_counter() - start:.0f} s\n"
        f"short {params['power_W']:.1f} W, ends at {params['trigger_s']:.1f} s; "
        f"on for the {window_s:g} s window it would deliver {energy_kJ:.0f} kJ\n"
        f"peak rise of the last frame: {ended:.1f} K with the short ended, "
        f"{throughout:.1f} K with it on throughout"
    )


if __name__ == "__main__":
    main()
