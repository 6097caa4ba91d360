"""Building a scenario bank: batches, interrupts, logs and worker processes."""

from __future__ import annotations

import logging
import os

import h5py
import numpy as np
import pytest
from cluster_starts import count_cluster_starts
from trees import assert_same_trees, read_tree

from thermosynth import distributed
from thermosynth.bank import ScenarioBank
from thermosynth.build import build_layout
from thermosynth.cli import Terminated, main
from thermosynth.errors import RecipeError, SimulationError
from thermosynth.output.shards import plan_shards
from thermosynth.pipeline import Generator, first_frame_size, simulate_rise
from thermosynth.recipe.loading import load_demo_recipe

os.environ.setdefault("OMP_NUM_THREADS", "1")

# Longer than any test, so that only the end of a build or an error writes.
NEVER_S = 1e9


def demo(tmp_path, *overrides):
    """Return the demo recipe with a bank of 5 entries in ``tmp_path``, its layout."""
    loaded = load_demo_recipe(
        overrides=[
            f"bank.path={tmp_path / 'bank.h5'}",
            "bank.mode=reuse",
            "bank.size=5",
            f"output.dir={tmp_path / 'out'}",
            *overrides,
        ]
    )
    layout = build_layout(loaded.recipe.layout, loaded.recipe.materials)
    return loaded, layout


class Simulator:
    """Count simulations; raise ``error`` on the call after ``fail_after`` calls."""

    def __init__(self, loaded, layout, *, fail_after=None, error=None):
        self.recipe = loaded.recipe
        self.layout = layout
        self.fail_after = fail_after
        self.error = error
        self.calls = 0

    def __call__(self, drawn, *, events):
        if self.calls == self.fail_after:
            raise self.error
        self.calls += 1
        return simulate_rise(drawn, self.layout, self.recipe, events=events)


def stored_keys(path):
    with h5py.File(path, "r") as bank:
        return sorted(bank["entries"])


def open_bank(loaded, layout, simulator, folder, **options):
    options.setdefault("write_interval_s", NEVER_S)
    return ScenarioBank.open(
        loaded.recipe, layout, simulator, path=folder / "bank.h5", **options
    )


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """Return the entries of an uninterrupted build of the 5-entry demo bank."""
    folder = tmp_path_factory.mktemp("complete")
    loaded, layout = demo(folder)
    return open_bank(loaded, layout, Simulator(loaded, layout), folder).entries


def assert_same_entries(entries, expected):
    assert [e.key for e in entries] == [e.key for e in expected]
    for entry, reference in zip(entries, expected, strict=True):
        assert entry.drawn == reference.drawn
        assert entry.events == reference.events
        np.testing.assert_array_equal(entry.rise_K, reference.rise_K)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, Terminated])
def test_interrupted_build_keeps_entries(interrupt, tmp_path, complete):
    loaded, layout = demo(tmp_path)
    stopped = Simulator(loaded, layout, fail_after=2, error=interrupt())

    with pytest.raises(interrupt) as excinfo:
        open_bank(loaded, layout, stopped, tmp_path)
    kept_keys = stored_keys(tmp_path / "bank.h5")
    rerun = Simulator(loaded, layout)
    bank = open_bank(loaded, layout, rerun, tmp_path)

    assert type(excinfo.value) is interrupt
    message = str(excinfo.value)
    assert f"scenario bank {tmp_path / 'bank.h5'} keeps the 2 of 5 entries" in message
    assert "a rerun simulates only the other 3" in message
    assert kept_keys == sorted(e.key for e in complete[:2])
    assert rerun.calls == 3
    assert_same_entries(bank.entries, complete)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5"]


def test_interrupted_rebuild_advises_reuse(tmp_path):
    loaded, layout = demo(tmp_path, "bank.mode=build")
    stopped = Simulator(loaded, layout, fail_after=1, error=KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt, match="rerun with bank.mode: reuse"):
        open_bank(loaded, layout, stopped, tmp_path)


def test_interrupt_before_first_entry(tmp_path):
    loaded, layout = demo(tmp_path)
    stopped = Simulator(loaded, layout, fail_after=0, error=KeyboardInterrupt())

    with pytest.raises(
        KeyboardInterrupt,
        match="none of the 5 entries to simulate into the scenario bank .* was written",
    ):
        open_bank(loaded, layout, stopped, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_build_writes_batches(tmp_path, complete):
    loaded, layout = demo(tmp_path)
    path = tmp_path / "bank.h5"
    simulator = Simulator(loaded, layout)
    seen = []

    def simulate(drawn, *, events):
        seen.append(len(stored_keys(path)) if path.exists() else 0)
        return simulator(drawn, events=events)

    bank = open_bank(loaded, layout, simulate, tmp_path, write_interval_s=0)

    assert seen == [0, 1, 2, 3, 4]
    assert_same_entries(bank.entries, complete)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5"]


def test_failed_build_keeps_entries(tmp_path, complete):
    loaded, layout = demo(tmp_path)
    error = SimulationError("solver diverged")
    failing = Simulator(loaded, layout, fail_after=3, error=error)

    with pytest.raises(SimulationError, match="solver diverged"):
        open_bank(loaded, layout, failing, tmp_path)

    assert stored_keys(tmp_path / "bank.h5") == sorted(e.key for e in complete[:3])


def test_open_logs_path_and_counts(tmp_path, caplog):
    small, layout = demo(tmp_path, "bank.size=2")
    loaded, _ = demo(tmp_path, "bank.size=3")
    path = tmp_path / "bank.h5"
    open_bank(small, layout, Simulator(small, layout), tmp_path)

    with caplog.at_level(logging.INFO, logger="thermosynth.bank"):
        open_bank(loaded, layout, Simulator(loaded, layout), tmp_path)
        open_bank(loaded, layout, Simulator(loaded, layout), tmp_path)

    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == f"scenario bank: 1 of 3 entries to simulate into {path}"
    assert messages[1].startswith("scenario bank: simulated 1 entry in ")
    assert messages[2] == f"scenario bank: read 3 entries from {path}"
    assert len(messages) == 3


def test_build_shows_progress_bar(tmp_path, capsys):
    loaded, layout = demo(tmp_path, "bank.size=2")
    open_bank(loaded, layout, Simulator(loaded, layout), tmp_path, progress=True)

    err = capsys.readouterr().err
    assert "scenario bank" in err
    assert "2/2" in err


def test_read_only_bank_rejects_missing_entries(tmp_path):
    loaded, _ = demo(tmp_path)
    reader = Generator(loaded, read_only_bank=True)

    with pytest.raises(RecipeError, match=r"lacks 5 of 5 entries of this recipe"):
        reader.open_bank()
    assert not (tmp_path / "bank.h5").exists()


def test_read_only_bank_matches_built_bank(tmp_path):
    loaded, _ = demo(tmp_path, "bank.mode=build")
    built = Generator(loaded).open_bank()
    before = (tmp_path / "bank.h5").stat()

    read = Generator(loaded, read_only_bank=True).open_bank()

    assert_same_entries(read.entries, built.entries)
    assert (tmp_path / "bank.h5").stat().st_mtime_ns == before.st_mtime_ns
    assert (tmp_path / "bank.h5").stat().st_ino == before.st_ino


def test_shard_task_only_reads_bank(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "_GENERATORS", {})
    loaded, _ = demo(tmp_path, "split.train_normal=0", "split.test_normal=0")
    reference = first_frame_size(Generator(loaded))
    shard = plan_shards(1, 1)[0]
    (tmp_path / "stage" / "shards").mkdir(parents=True)

    with pytest.raises(RecipeError, match=r"lacks 5 of 5 entries"):
        distributed._write_shard_task(loaded, shard, str(tmp_path / "stage"), reference)
    assert not (tmp_path / "bank.h5").exists()


SMALL = (
    "--set",
    "split.train_normal=2",
    "--set",
    "split.test_normal=1",
    "--set",
    "split.test_anomalous=3",
    "--set",
    "frames.n_frames=4",
    "--set",
    "output.shard_size=2",
    "--set",
    "bank.mode=reuse",
    "--set",
    "bank.size=4",
)


def test_workers_build_bank_once(tmp_path, caplog, monkeypatch):
    out, bank = tmp_path / "out", tmp_path / "bank.h5"
    args = ["generate", "--demo", "-o", str(out), "--no-progress", *SMALL]
    args += ["--set", f"bank.path={bank}"]
    assert main(args) == 0
    single, single_bank = read_tree(out), read_bank(out, bank)
    out.rename(tmp_path / "single")
    bank.unlink()

    starts = count_cluster_starts(monkeypatch)
    with caplog.at_level(logging.INFO, logger="thermosynth"):
        assert main([*args, "--workers", "2"]) == 0

    messages = [r.getMessage() for r in caplog.records]
    building = [m for m in messages if "to simulate into" in m]
    assert building == [f"scenario bank: 4 of 4 entries to simulate into {bank}"]
    assert starts == [2]
    assert messages.count("started a local Dask cluster of 2 workers") == 1
    assert any(m.startswith("scenario bank: simulated 4 entries") for m in messages)
    assert_same_trees(read_tree(out), single)
    assert_same_entries(read_bank(out, bank).entries, single_bank.entries)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.h5", "out", "single"]


def read_bank(out, bank):
    """Read the bank of a `test_workers_build_bank_once` run, without simulating."""
    overrides = [SMALL[i + 1] for i in range(0, len(SMALL), 2)]
    loaded = load_demo_recipe(
        overrides=[*overrides, f"bank.path={bank}", f"output.dir={out}"]
    )
    return Generator(loaded, read_only_bank=True).open_bank()
