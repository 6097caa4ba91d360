"""Sharded sequence datasets: the same content for any shard size, worker count
or resume, as for single-frame datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_sequences import SMALL
from trees import assert_same_trees, read_tree

from thermosynth import sequences
from thermosynth.cli import main
from thermosynth.datasets import HDF5Dataset
from thermosynth.errors import FrameError, SimulationError
from thermosynth.output.atomic import OUTPUT_MARKER
from thermosynth.output.shards import SHARD_DIR
from thermosynth.recipe import load_demo_recipe
from thermosynth.sequences import (
    SequenceGenerator,
    first_sequence_frame_size,
    generate_sequences,
)

SHARD_OF_ONE = "output.shard_size=1"


def generate_args(out: Path, *extra: str) -> list[str]:
    sets = [arg for item in (*SMALL, SHARD_OF_ONE) for arg in ("--set", item)]
    return ["generate", "--demo", *sets, "-o", str(out), "--no-progress", *extra]


def assert_same_tree(tree: dict[str, bytes], expected: dict[str, bytes]) -> None:
    assert sorted(tree) == sorted(expected)
    for name, data in expected.items():
        assert tree[name] == data, name


def read_master(path: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Return every dataset's values and the file attributes of ``path``."""
    with h5py.File(path, "r") as h5:
        arrays = {name: h5[name][()] for name in h5}
        attributes = dict(h5.attrs)
        for name in h5:
            attributes.update({f"{name}.{k}": v for k, v in h5[name].attrs.items()})
    return arrays, attributes


def array_bytes(values: np.ndarray) -> bytes:
    """Return the bytes of a numeric array, or of the items of a string array."""
    if values.dtype.kind == "O":
        return b"\0".join(bytes(item) for item in values.ravel())
    return values.tobytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """An uninterrupted in-process run of four shards, moved aside."""
    root = tmp_path_factory.mktemp("reference")
    assert main(generate_args(root / "out")) == 0
    tree = read_tree(root / "out")
    (root / "out").rename(root / "uninterrupted")
    return root / "out", tree


@pytest.fixture
def out(reference):
    """The reference run's output path, cleared after each test."""
    path, _ = reference
    yield path
    for leftover in [path, *path.parent.glob(f".{path.name}.*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def test_reference_has_one_shard_per_sequence(reference):
    _, tree = reference
    shard_files = [name for name in tree if name.startswith(f"{SHARD_DIR}/")]
    assert sorted(shard_files) == [
        f"{SHARD_DIR}/shard-00000{n}.{ext}" for n in range(4) for ext in ("h5", "json")
    ]
    assert "folder/times.json" in tree
    hidden = [name for name in tree if name.rsplit("/", 1)[-1].startswith(".")]
    assert hidden == [OUTPUT_MARKER]  # no temporary file is left


def test_one_shard_same_content_as_four(reference, tmp_path):
    path, tree = reference
    one_shard = tmp_path / "one_shard"
    loaded = load_demo_recipe(overrides=[*SMALL, f"output.dir={one_shard}"])
    summary = generate_sequences(loaded, progress=False)
    assert summary.n_sequences == 4
    assert len(list((one_shard / SHARD_DIR).glob("shard-*.h5"))) == 1

    arrays, attributes = read_master(one_shard / "dataset.h5")
    expected_arrays, expected_attributes = read_master(
        path.parent / "uninterrupted" / "dataset.h5"
    )
    assert sorted(arrays) == sorted(expected_arrays)
    for name, values in expected_arrays.items():
        assert arrays[name].dtype == values.dtype, name
        assert arrays[name].shape == values.shape, name
        assert array_bytes(arrays[name]) == array_bytes(values), name
    for recipe_key in ("recipe_yaml", "recipe_sha256"):
        assert attributes.pop(recipe_key) != expected_attributes.pop(recipe_key)
    assert attributes == expected_attributes

    folder = {k: v for k, v in tree.items() if k.startswith("folder/")}
    assert_same_tree(
        {f"folder/{k}": v for k, v in read_tree(one_shard / "folder").items()}, folder
    )


def test_master_joins_sequence_shards(reference):
    path, _ = reference
    master = path.parent / "uninterrupted" / "dataset.h5"
    with h5py.File(master, "r") as h5:
        assert h5["frames"].is_virtual
        assert h5["frames"].shape == (4, 4, 48, 64)
        assert h5["masks"].shape == (4, 4, 48, 64)
        assert not h5["times_s"].is_virtual
        assert h5["times_s"][:].tolist() == [5.0, 10.0, 15.0, 20.0]
        assert h5["times_s"].attrs["unit"] == "s"
        assert h5["rise_K"].attrs["unit"] == "K"
        assert h5.attrs["frame_unit"] == "C"
        assert h5["labels"][:].tolist() == [0, 0, 1, 1]
        for index in range(4):
            shard = master.parent / SHARD_DIR / f"shard-{index:06d}.h5"
            with h5py.File(shard, "r") as part:
                np.testing.assert_array_equal(h5["frames"][index], part["frames"][0])
                assert h5["metadata"][index] == part["metadata"][0]


def test_hdf5_dataset_reads_sharded_sequences(reference):
    path, _ = reference
    master = path.parent / "uninterrupted" / "dataset.h5"
    dataset = HDF5Dataset(master)
    assert len(dataset) == 4
    assert len(HDF5Dataset(master, split="train")) == 1
    item = dataset[3]
    assert tuple(item["mask"].shape) == (4, 48, 64)
    assert int(item["label"]) == 1
    assert item["kind"] == "hotspot"
    assert json.loads(item["metadata"])["times_s"] == [5.0, 10.0, 15.0, 20.0]
    with h5py.File(master, "r") as h5:
        np.testing.assert_array_equal(item["mask"].numpy(), h5["masks"][3] == 1)
        assert item["image"].numel() == h5["frames"][3].size
    dataset.close()


def test_hdf5_dataset_sequence_image_shape(reference):
    path, _ = reference
    dataset = HDF5Dataset(path.parent / "uninterrupted" / "dataset.h5")
    item = dataset[3]
    with h5py.File(path.parent / "uninterrupted" / "dataset.h5", "r") as file:
        frames = file["frames"][dataset.rows[3]]
    dataset.close()

    assert tuple(item["image"].shape) == (1, 4, 48, 64)
    assert np.array_equal(item["image"][0].numpy(), frames.astype(np.float32))


def test_two_workers_same_bytes(reference, out, capsys):
    _, expected = reference
    assert main([*generate_args(out), "--workers", "2"]) == 0
    assert "wrote 4 sequences of 4 frames (2 anomalous" in capsys.readouterr().out

    assert_same_trees(read_tree(out), expected)
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_failure_then_resume_same_bytes(reference, out, monkeypatch, capsys):
    _, expected = reference
    real_write = sequences.write_sequence_shard
    calls: list[int] = []
    crashed: list[int] = []

    def fail_on_third(generator, shard, stage, reference_size, **options):
        calls.append(shard.number)
        if shard.number == 2 and not crashed:
            crashed.append(shard.number)
            (stage / SHARD_DIR / f".{shard.name}.h5.x1.tmp").write_bytes(b"half")
            raise SimulationError("simulated solver failure")
        return real_write(generator, shard, stage, reference_size, **options)

    monkeypatch.setattr(sequences, "write_sequence_shard", fail_on_third)
    assert main(generate_args(out)) == 2
    err = capsys.readouterr().err
    assert "simulated solver failure; 2 complete shards are kept in" in err
    assert "run again with --resume to reuse them" in err
    assert "in Python" not in err
    assert calls == [0, 1, 2]
    assert not out.exists()

    calls.clear()
    assert main([*generate_args(out), "--resume"]) == 0
    assert calls == [2, 3]
    assert_same_tree(read_tree(out), expected)
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_workers_rejected_on_existing_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main([*generate_args(out), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert f"output already exists: {out}; pass --overwrite" in err
    assert list(tmp_path.iterdir()) == [out]
    assert list(out.iterdir()) == []


def test_bad_workers_rejected(tmp_path, capsys):
    assert main([*generate_args(tmp_path / "out"), "--workers", "0"]) == 2
    assert "--workers 0 is invalid; use 1 or more" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


WEAK = ("blend.min_area_px=100000", "blend.max_tries=1")


def test_on_error_skip_records_sequences(tmp_path):
    out = tmp_path / "out"
    overrides = [*SMALL, *WEAK, SHARD_OF_ONE, "frames.on_error=skip"]
    loaded = load_demo_recipe(overrides=[*overrides, f"output.dir={out}"])
    summary = generate_sequences(loaded, progress=False)

    assert summary.n_sequences == 2
    assert summary.n_skipped == 2
    assert summary.n_anomalous == 0
    with h5py.File(out / "dataset.h5", "r") as h5:
        assert h5["labels"][:].tolist() == [0, 0]
        assert h5["frames"].shape == (2, 4, 48, 64)
    marker = json.loads((out / SHARD_DIR / "shard-000002.json").read_text())
    assert marker["n_written"] == 0
    assert marker["skipped"][0].startswith("skipped sequence 2: ")
    assert "blend.min_area_px = 100000" in marker["skipped"][0]
    assert not (out / SHARD_DIR / "shard-000002.h5").exists()
    assert not (out / "folder" / "test" / "hotspot").exists()


def test_on_error_raise_names_skip_option(tmp_path, capsys):
    out = tmp_path / "out"
    sets = [arg for item in WEAK for arg in ("--set", item)]
    assert main([*generate_args(out), *sets]) == 2
    err = capsys.readouterr().err
    assert "no anomaly covered blend.min_area_px = 100000" in err
    assert "set frames.on_error: skip" in err
    assert "2 complete shards are kept" in err


def test_skipping_every_base_frame_keeps_first_reason(monkeypatch):
    loaded = load_demo_recipe(overrides=[*SMALL, "frames.on_error=skip"])
    generator = SequenceGenerator(loaded)
    reads: list[int] = []

    def unreadable(index):
        reads.append(index)
        raise FrameError(f"frame {index} is damaged; replace it")

    monkeypatch.setattr(generator.source, "read", unreadable)
    with pytest.raises(FrameError) as excinfo:
        first_sequence_frame_size(generator)

    assert str(excinfo.value) == (
        f"<demo>: none of the {len(reads)} base frames of the sequences can be "
        "read, so frames.on_error: skip skipped them all; the first failed "
        f"with: frame {reads[0]} is damaged; replace it"
    )
    assert len(reads) > 1


def test_resume_of_complete_output_writes_nothing(reference, out, monkeypatch, capsys):
    _, expected = reference
    shutil.copytree(out.parent / "uninterrupted", out)
    mtimes = {p.as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")}

    def no_work(*args, **kwargs):
        raise AssertionError("a complete output was generated again")

    monkeypatch.setattr(sequences, "SequenceGenerator", no_work)
    assert main([*generate_args(out), "--resume"]) == 0
    printed = capsys.readouterr().out

    assert printed.startswith(f"{out} is already complete with 4 sequences of 4 frames")
    assert "--resume wrote nothing" in printed
    assert_same_tree(read_tree(out), expected)
    assert {p.as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes


def test_resume_rejects_complete_output_of_other_recipe(reference, out, capsys):
    _, expected = reference
    shutil.copytree(out.parent / "uninterrupted", out)

    assert main([*generate_args(out), "--resume", "--set", "seed=99"]) == 2
    err = capsys.readouterr().err

    assert err.startswith(f"thermosynth: error: --resume cannot reuse {out}: its ")
    assert "so it was written by another recipe" in err
    assert_same_tree(read_tree(out), expected)
