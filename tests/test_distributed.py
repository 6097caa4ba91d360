"""Sharded output on a local Dask cluster: the same bytes for any worker count."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask.distributed
import h5py
import numpy as np
import pytest
from cluster_starts import count_cluster_starts
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
    "frames.n_frames=9",
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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_signals_held_then_raised(signum):
    code = (
        "import signal; "
        "print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    )

    def stop(received, frame):  # noqa: ANN001
        raise KeyboardInterrupt(received)

    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {
        stop_signal: signal.signal(stop_signal, stop) for stop_signal in stop_signals
    }
    try:
        with distributed._stop_signals_held() as held:
            child = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            os.kill(os.getpid(), signum)
        handlers = [signal.getsignal(stop_signal) for stop_signal in stop_signals]
        with pytest.raises(KeyboardInterrupt) as raised:
            distributed._raise_held(held)
    finally:
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)

    assert held == [signum]
    assert child.stdout.strip() == "True"
    assert handlers == [stop, stop]
    assert raised.value.args == (signum,)


def _periodic_callbacks(dask_worker) -> list[str]:  # noqa: ANN001
    return sorted(dask_worker.periodic_callbacks)


def _sigint_blocked() -> bool:
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_local_cluster_shared_by_steps(monkeypatch):
    starts = count_cluster_starts(monkeypatch)
    with distributed.DaskCluster(workers=1, scheduler=None) as cluster:
        with cluster.connect() as first:
            blocked = list(first.run(_sigint_blocked).values())
        with pytest.raises(ValueError, match="task failed"):
            with cluster.connect(last_step=True) as last:
                running = last.status
                raise ValueError("task failed")
        closed = first.status

    assert starts == [1]
    assert last is first
    assert running == "running"
    assert closed == "closed"
    assert blocked == [True]


def test_scheduler_connects_per_step():
    with dask.distributed.LocalCluster(
        n_workers=0,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as scheduler:
        address = scheduler.scheduler_address
        with distributed.DaskCluster(workers=None, scheduler=address) as cluster:
            with cluster.connect() as first:
                first_status = first.status
            with cluster.connect() as second:
                second_status = second.status
        scheduler_status = scheduler.status.name

    assert second is not first
    assert first_status == second_status == "running"
    assert first.status == second.status == "closed"
    assert scheduler_status == "running"


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


# Runs the command line of argv[2:] and, once the local cluster's first
# worker process has started, sends SIGINT to the process group as Ctrl-C in a
# terminal does. The cluster's constructor waits for this start, so the
# signal always comes during the cluster's start-up. The worker's process id
# goes to the file argv[1].
INTERRUPT_CLUSTER_START = """
import os, signal, sys
from distributed.nanny import Nanny
from thermosynth.cli import main

pid_file = sys.argv.pop(1)
start = Nanny.start_unsafe

async def start_then_interrupt(self):
    result = await start(self)
    if not os.path.exists(pid_file):
        with open(pid_file, "w") as pids:
            pids.write(str(self.pid))
        os.killpg(os.getpid(), signal.SIGINT)
    return result

Nanny.start_unsafe = start_then_interrupt
sys.exit(main())
"""

BANK = ("--set", "bank.mode=reuse", "--set", "bank.size=4")

# Worker preload whose shard tasks send Ctrl-C and block until the worker closes.
BLOCKED_SHARDS = Path(__file__).with_name("blocked_shards.py")


def _running(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group_gone(pgid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for every process of group ``pgid`` to exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("options", "detail"),
    [
        (
            BANK,
            "stopped while building the scenario bank, before any sample, so no "
            "output was written and --resume has no shards to reuse; none of the 4 "
            "entries to simulate into the scenario bank {bank} was written",
        ),
        (
            (),
            "none of the 5 shards was complete, so no output was written; a "
            "smaller output.shard_size keeps more of an interrupted run for --resume",
        ),
    ],
    ids=["bank", "shards"],
)
def test_sigint_during_cluster_start(options, detail, tmp_path):
    out, bank, pid_file = tmp_path / "out", tmp_path / "bank.h5", tmp_path / "pid"
    out.mkdir()
    (out / ".thermosynth-output").touch()
    (out / "old.txt").write_text("the output of an earlier run")
    before = read_tree(out)
    args = ["generate", "--demo", "-o", str(out), "--no-progress", "--overwrite"]
    args += [*SMALL, *options, "--set", f"bank.path={bank}", "--workers", "2"]

    process = subprocess.Popen(
        [sys.executable, "-c", INTERRUPT_CLUSTER_START, str(pid_file), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _, err = process.communicate(timeout=120)
    worker = int(pid_file.read_text())

    assert process.returncode == 130, err
    assert err == f"thermosynth: interrupted; {detail.format(bank=bank)}\n"
    assert not _running(worker)
    assert _group_gone(process.pid, timeout_s=10)
    assert read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "pid"]


@pytest.mark.parametrize("verbose", ["-v", "-vv"])
def test_sigint_during_shards_one_line(verbose, tmp_path):
    out, flag = tmp_path / "out", tmp_path / "flag"
    args = ["generate", "--demo", "-o", str(out), "--no-progress", *SMALL]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "DASK_DISTRIBUTED__WORKER__PRELOAD": str(BLOCKED_SHARDS),
        "BLOCKED_SHARDS_FLAG": str(flag),
    }

    process = subprocess.Popen(
        [sys.executable, "-m", "thermosynth", verbose, *args, "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _, err = process.communicate(timeout=120)
    lines = err.splitlines()

    assert process.returncode == 130, err
    assert flag.exists()
    assert lines[-1] == (
        "thermosynth: interrupted; none of the 5 shards was complete, so no "
        "output was written; a smaller output.shard_size keeps more of an "
        "interrupted run for --resume"
    )
    assert _group_gone(process.pid, timeout_s=10)
    if verbose == "-v":
        assert "Traceback" not in err
        assert lines[:-1] == [
            "INFO thermosynth.distributed: started a local Dask cluster of 2 workers"
        ]
