"""How much of each anomaly the 8-bit folder tree keeps, on two recipes.

The folder's PNGs map 16-bit and float frames to 8-bit levels through one
scale (``folder/scale.json``). This script generates each recipe at its own
split into a temporary folder. Per anomalous sample it prints the mask
pixels whose 8-bit level equals that of the same pixel in the unblended
source frame, where ``folder/`` does not show the anomaly. It also prints
the mask pixels clipped at level 255 (``folder_clipped_px``), the scale's
step in K and the run's peak rises.

    OMP_NUM_THREADS=1 python benchmarks/folder_levels.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import h5py
import numpy as np
from _cli import script_parser

from thermosynth.build import build_source
from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe, load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "radiometric-cabinet.yaml"


def report(name: str, loaded, out: Path) -> None:  # noqa: ANN001
    """Print the scale's step, the peak rises and each sample's figures."""
    scale = json.loads((out / "folder" / "scale.json").read_text())
    offset, per_level = scale["raw_offset"], scale["raw_per_level"]
    source = build_source(loaded.recipe.frames, seed=loaded.recipe.seed)
    index = {name: i for i, name in enumerate(source.sources)}

    def levels(raw: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((raw.astype(np.float64) - offset) / per_level), 0, 255)

    rows = []
    with h5py.File(out / "dataset.h5", "r") as h5:
        for row in np.flatnonzero(h5["labels"][:]):
            meta = json.loads(h5["metadata"][row])
            before = source.read(index[meta["source_frame"]]).raw
            mask = h5["masks"][row].astype(bool)
            same = (levels(h5["frames"][row]) == levels(before)) & mask
            rows.append(
                (
                    int(row),
                    meta["peak_rise_K"],
                    int(same.sum()),
                    int(mask.sum()),
                    meta["folder_clipped_px"],
                )
            )

    peaks = [peak for _, peak, *_ in rows]
    step = scale["level_to_value"]["value_per_level"]
    print(
        f"{name}: {step:.3f} K per level; peak rise mean {np.mean(peaks):.2f} K, "
        f"median {np.median(peaks):.2f} K"
    )
    for row, peak, same, total, clipped in rows:
        print(
            f"  sample {row:3d}: peak {peak:6.2f} K, {same:6d} / {total:6d} mask px "
            f"({same / total:5.1%}) keep the normal 8-bit level, {clipped} clipped"
        )


def main() -> None:
    parser = script_parser(__doc__)
    parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        overrides = [f"output.dir={folder}/rad", f"bank.path={folder}/bank.h5"]
        loaded = load_recipe(RECIPE, overrides=overrides)
        generate(loaded, progress=False)
        report("radiometric-cabinet.yaml", loaded, Path(folder) / "rad")

        loaded = load_demo_recipe(overrides=[f"output.dir={folder}/demo"])
        generate(loaded, progress=False)
        report("demo recipe", loaded, Path(folder) / "demo")


if __name__ == "__main__":
    main()
