"""Share of mask pixels whose bytes a blend leaves unchanged, on the FLIR recipe.

Where the applied rise rounds to the pixel's own level, a pixel inside the
mask keeps the normal frame's bytes. This script generates
recipes/flir-pouch-cell.yaml at its own split into a temporary folder and
compares every anomalous sample with its source frame. It prints the share
over all mask pixels and the range over samples, as docs/benchmarks.md quotes.

    OMP_NUM_THREADS=1 python benchmarks/mask_unchanged_share.py
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
from thermosynth.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "flir-pouch-cell.yaml"


def unchanged_counts(loaded, path: Path) -> list[tuple[int, int]]:  # noqa: ANN001
    """Return (unchanged, mask) pixel counts of every anomalous sample."""
    source = build_source(loaded.recipe.frames, seed=loaded.recipe.seed)
    index = {name: i for i, name in enumerate(source.sources)}
    counts = []
    with h5py.File(path, "r") as h5:
        for row in np.flatnonzero(h5["labels"][:]):
            name = json.loads(h5["metadata"][row])["source_frame"]
            before = source.read(index[name]).raw
            mask = h5["masks"][row].astype(bool)
            same = h5["frames"][row] == before
            if same.ndim == 3:
                same = same.all(axis=-1)  # RGB: all three channels kept
            same &= mask
            counts.append((int(same.sum()), int(mask.sum())))
    return counts


def main() -> None:
    parser = script_parser(__doc__)
    parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        overrides = [f"output.dir={folder}/out", f"bank.path={folder}/bank.h5"]
        loaded = load_recipe(RECIPE, overrides=overrides)
        generate(loaded, progress=False)
        counts = np.array(unchanged_counts(loaded, Path(folder) / "out" / "dataset.h5"))

    shares = counts[:, 0] / counts[:, 1]
    pooled = counts[:, 0].sum() / counts[:, 1].sum()
    print(
        f"{len(counts)} anomalous samples: {pooled:.1%} of all mask pixels keep "
        f"their bytes; per sample {shares.min():.1%} to {shares.max():.1%}"
    )


if __name__ == "__main__":
    main()
