"""Split counts: the test set ignores split.train_normal, training ignores tests."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from trees import assert_same_trees

from thermosynth.datasets import HDF5Dataset
from thermosynth.pipeline import generate
from thermosynth.recipe import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "flir-pouch-cell.yaml"
BASE = {"train_normal": 3, "test_normal": 2, "test_anomalous": 2}
ROWS = ("frames", "masks", "rise_K", "recorded_rise", "labels", "kinds", "metadata")


def generate_split(root: Path, **counts: int) -> Path:
    """Generate the pouch-cell recipe with ``BASE`` changed by ``counts``."""
    split = {**BASE, **counts}
    out = root / "-".join(str(count) for count in split.values())
    overrides = [f"split.{key}={count}" for key, count in split.items()]
    overrides += [f"output.dir={out}", f"bank.path={out}.bank.h5"]
    generate(load_recipe(RECIPE, overrides=overrides), progress=False)
    return out


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> dict[str, Path]:
    """Three runs of 38 real FLIR frames: the base split and two changes."""
    root = tmp_path_factory.mktemp("split-counts")
    return {
        "base": generate_split(root),
        "more_train": generate_split(root, train_normal=6),
        "other_test": generate_split(root, test_normal=4, test_anomalous=1),
    }


def split_rows(out: Path, split: str) -> dict[str, list]:
    """Read every dataset of the rows of ``split`` from dataset.h5, in order."""
    with h5py.File(out / "dataset.h5", "r") as h5:
        rows = np.flatnonzero(h5["splits"].asstr()[:] == split)
        return {name: [h5[name][i] for i in rows] for name in ROWS}


def sources(rows: dict[str, list]) -> list[str]:
    return [json.loads(text)["source_frame"] for text in rows["metadata"]]


def split_files(out: Path, parts: tuple[str, ...], first: int) -> dict[str, bytes]:
    """Return the folder tree's PNGs under ``parts``, numbered from ``first``.

    File stems are output positions, so the numbers are shifted to start the
    split at 0 before two runs with other counts before it are compared.
    """
    folder = out / "folder"
    files = {}
    for part in parts:
        for path in sorted((folder / part).rglob("*.png")):
            number, _, mask = path.stem.partition("_")
            stem = f"{int(number) - first:06d}" + (f"_{mask}" if mask else "")
            name = path.relative_to(folder).with_stem(stem).as_posix()
            files[name] = path.read_bytes()
    return files


def bytes_by_position(out: Path) -> dict[tuple[int, int], bytes]:
    """Return each test sample's frame and mask bytes by (label, split_position)."""
    dataset = HDF5Dataset(out / "dataset.h5", split="test")
    content = {}
    with h5py.File(out / "dataset.h5", "r") as h5:
        for row, position in zip(dataset.rows, dataset.split_positions(), strict=True):
            key = (int(h5["labels"][row]), int(position))
            content[key] = h5["frames"][row].tobytes() + h5["masks"][row].tobytes()
    return content


def assert_same_rows(rows: dict[str, list], expected: dict[str, list]) -> None:
    for name in ROWS:
        assert len(rows[name]) == len(expected[name]), name
        pairs = zip(rows[name], expected[name], strict=True)
        for i, (value, wanted) in enumerate(pairs):
            assert np.array_equal(value, wanted), (name, i)


def test_test_rows_ignore_train_count(runs):
    base = split_rows(runs["base"], "test")
    more = split_rows(runs["more_train"], "test")

    assert sources(more) == sources(base)
    assert_same_rows(more, base)
    assert sum(base["labels"]) == 2
    for mask, label in zip(base["masks"], base["labels"], strict=True):
        assert mask.any() == bool(label)


def test_test_files_ignore_train_count(runs):
    parts = ("test", "ground_truth")
    base = split_files(runs["base"], parts, first=3)
    more = split_files(runs["more_train"], parts, first=6)

    assert_same_trees(more, base)
    assert len(base) == 2 + 2 * 2  # two normals, two anomalies with masks
    assert sum(name.startswith("ground_truth/") for name in base) == 2


def test_more_training_keeps_first_frames(runs):
    base = sources(split_rows(runs["base"], "train"))
    more = sources(split_rows(runs["more_train"], "train"))

    assert len(more) == 6
    assert more[:3] == base
    assert not set(more) & set(sources(split_rows(runs["more_train"], "test")))


def test_train_rows_ignore_test_counts(runs):
    base = split_rows(runs["base"], "train")
    other = split_rows(runs["other_test"], "train")

    assert sources(other) == sources(base)
    assert_same_rows(other, base)


def test_train_files_ignore_test_counts(runs):
    base = split_files(runs["base"], ("train",), first=0)
    other = split_files(runs["other_test"], ("train",), first=0)

    assert len(base) == 3
    assert_same_trees(other, base)


def test_more_test_normals_keep_first_frames(runs):
    def normal_sources(out: Path) -> list[str]:
        rows = split_rows(out, "test")
        labels = rows["labels"]
        return [s for s, label in zip(sources(rows), labels, strict=True) if not label]

    base = normal_sources(runs["base"])
    other = normal_sources(runs["other_test"])

    assert len(other) == 4
    assert other[:2] == base


def test_split_position_pairs_test_samples(runs):
    base = bytes_by_position(runs["base"])
    more = bytes_by_position(runs["more_train"])

    assert sorted(base) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert more == base


def test_split_positions_count_each_group(runs):
    dataset = HDF5Dataset(runs["more_train"] / "dataset.h5")
    positions = dataset.split_positions()

    # 6 training normals, then 2 test normals and 2 test anomalies.
    assert positions.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 0, 1]
    assert [dataset[i]["split_position"] for i in range(10)] == positions.tolist()
