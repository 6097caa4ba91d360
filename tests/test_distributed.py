"""Sharded output on a local Dask cluster: the same bytes for any worker count."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from trees import assert_same_trees, read_tree

from thermosynth import distributed
from thermosynth.cli import main
from thermosynth.output.shards import plan_shards

SMALL = (
    "--set",
    "split.train_normal=4",
    "--set",
    "split.test_normal=2",
    "--set",
    "split.test_anomalous=3",
    "--set",
    "frames.n_frames=8",
    "--set",
    "output.shard_size=2",
)


def test_plan_shards_covers_every_index():
    shards = plan_shards(7, 3)
    assert [(s.start, s.stop) for s in shards] == [(0, 3), (3, 6), (6, 7)]
    assert [s.name for s in shards] == [
        "shard-000000",
        "shard-000001",
        "shard-000002",
    ]
    assert plan_shards(0, 3) == []


def test_two_workers_write_same_bytes_as_one_process(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--demo", "-o", str(out), "--no-progress", *SMALL]
    assert main(args) == 0
    single = read_tree(out)
    out.rename(tmp_path / "single")

    assert main([*args, "--workers", "2"]) == 0
    assert "wrote 9 samples (3 anomalous" in capsys.readouterr().out
    assert_same_trees(read_tree(out), single)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "single"]


def test_master_joins_shards(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "--demo", "-o", str(out), "--no-progress", *SMALL]) == 0
    capsys.readouterr()
    shard_files = sorted((out / "shards").glob("shard-*.h5"))
    assert len(shard_files) == 5

    with h5py.File(out / "dataset.h5", "r") as master:
        assert master["frames"].is_virtual
        assert master["frames"].shape == (9, 120, 160)
        assert (
            master["frames"].attrs["unit"] == "level (0.01 C per level, offset -40 C)"
        )
        assert master["frames"].attrs["scale_per_level"] == 0.01
        assert master["frames"].attrs["offset"] == -40.0
        assert master["frames"].attrs["value_unit"] == "C"
        assert master["rise_K"].attrs["unit"] == "K"
        assert master.attrs["frame_unit"] == "C"
        assert "recipe_yaml" in master.attrs
        for name in ("frames", "masks", "rise_K", "labels", "metadata"):
            parts = []
            for path in shard_files:
                with h5py.File(path, "r") as shard:
                    parts.append(shard[name][()])
            np.testing.assert_array_equal(master[name][()], np.concatenate(parts))
        assert list(master["labels"][:]) == [0] * 6 + [1] * 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--workers", "0"), r"--workers 0 is invalid; use 1 or more"),
        (
            ("--scheduler", "tcp://127.0.0.1:1"),
            r"could not connect to the Dask scheduler at tcp://127\.0\.0\.1:1",
        ),
        (
            ("--scheduler", "notanaddress"),
            r"--scheduler 'notanaddress' is not a valid address \(missing port",
        ),
    ],
)
def test_bad_cluster_options(options, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("thermosynth.distributed.SCHEDULER_TIMEOUT_S", 1)
    out = tmp_path / "out"
    code = main(
        ["generate", "--demo", "-o", str(out), "--no-progress", *SMALL, *options]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert __import__("re").search(message, err), err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_workers_and_scheduler_exclusive(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["generate", "--demo", "--workers", "2", "--scheduler", "tcp://x:1"])
    assert excinfo.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_worker_processes_ignore_sigint():
    from thermosynth.distributed import _sigint_ignored

    code = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    # A shell starts background jobs with SIGINT ignored, so compare with the
    # handler this process started with.
    before = signal.getsignal(signal.SIGINT)
    with _sigint_ignored():
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    assert child.stdout.strip() == "True"
    assert signal.getsignal(signal.SIGINT) is before


def _periodic_callbacks(dask_worker) -> list[str]:  # noqa: ANN001
    return sorted(dask_worker.periodic_callbacks)


def test_local_workers_run_without_profiler():
    with distributed._connect(workers=1, scheduler=None) as client:
        callbacks = list(client.run(_periodic_callbacks).values())

    assert len(callbacks) == 1
    assert "heartbeat" in callbacks[0]
    assert "profile" not in callbacks[0]


def _warning_task(value: int) -> int:
    logging.getLogger("thermosynth.plausibility").warning("sample %d is hot", value)
    logging.getLogger("thermosynth.plausibility").info("not kept")
    return value


def test_worker_warnings_returned_to_client(caplog):
    package = logging.getLogger("thermosynth")

    with caplog.at_level(logging.INFO):
        result, warnings = distributed._task_with_warnings(_warning_task, 3)

    assert result == 3
    assert warnings == [("thermosynth.plausibility", "sample 3 is hot")]
    assert caplog.records == []
    assert package.propagate
    assert package.handlers == []


def test_two_workers_log_warnings_with_names(tmp_path, caplog):
    args = ["generate", "--demo", "-o", str(tmp_path / "out"), "--no-progress"]
    hot = ["--set", "scenarios.0.power_W=20000", "--set", "scenarios.0.weight=100"]

    with caplog.at_level(logging.WARNING):
        assert main([*args, *SMALL, *hot, "--workers", "2"]) == 0

    names = {record.name for record in caplog.records if "rises" in record.message}
    assert names == {"thermosynth.plausibility"}
