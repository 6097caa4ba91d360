"""Resume: a run killed at any moment finishes with the bytes of an unbroken one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from interrupts import interrupt_replace
from trees import read_tree

from thermosynth import cli, pipeline, samples
from thermosynth.cli import main
from thermosynth.datasets import HDF5Dataset
from thermosynth.errors import FrameError
from thermosynth.output.shards import SHARD_DIR
from thermosynth.recipe import load_demo_recipe
from thermosynth.samples import SAMPLING_VERSION

SPLIT = (
    "--set",
    "split.train_normal=6",
    "--set",
    "split.test_normal=4",
    "--set",
    "split.test_anomalous=10",
    "--set",
    "frames.n_frames=12",
    "--set",
    "output.shard_size=2",
)


def generate_args(out: Path, *extra: str) -> list[str]:
    return ["generate", "--demo", "-o", str(out), "--no-progress", *SPLIT, *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """An uninterrupted run, moved aside so that later runs can use its name."""
    root = tmp_path_factory.mktemp("reference")
    assert main(generate_args(root / "out")) == 0
    tree = read_tree(root / "out")
    (root / "out").rename(root / "uninterrupted")
    return root / "out", tree


@pytest.fixture
def out(reference):
    """The output path of the reference run, cleared after each test."""
    path, _ = reference
    yield path
    for leftover in [path, *path.parent.glob(f".{path.name}.*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def assert_same_tree(out: Path, expected: dict[str, bytes]) -> None:
    tree = read_tree(out)
    assert sorted(tree) == sorted(expected)
    for name, data in expected.items():
        assert tree[name] == data, name


def test_kill_9_then_resume_same_bytes(reference, out, capsys):
    _, expected = reference
    command = [sys.executable, "-m", "thermosynth.cli", *generate_args(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    pattern = f".{out.name}.partial-*/{SHARD_DIR}/shard-*.h5"
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(pattern)) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    staging = list(out.parent.glob(f".{out.name}.partial-*"))
    assert len(staging) == 1
    shards_left = len(list((staging[0] / SHARD_DIR).glob("shard-*.json")))
    assert shards_left < 10, "the run finished before it was killed"

    assert main([*generate_args(out), "--resume"]) == 0
    assert_same_tree(out, expected)
    assert not list(out.parent.glob(f".{out.name}.partial-*"))
    capsys.readouterr()


def test_resume_redoes_only_incomplete_shards(reference, out, monkeypatch, capsys):
    _, expected = reference
    real_write_shard = pipeline.write_shard
    calls: list[int] = []
    crashed: list[int] = []

    def fail_on_fourth(generator, shard, stage, reference_size, **options):
        calls.append(shard.number)
        if shard.number == 3 and not crashed:
            crashed.append(shard.number)
            (stage / SHARD_DIR / f".{shard.name}.h5.x1.tmp").write_bytes(b"half")
            raise OSError("simulated crash while writing")
        return real_write_shard(generator, shard, stage, reference_size, **options)

    monkeypatch.setattr(pipeline, "write_shard", fail_on_fourth)
    with pytest.raises(OSError, match="simulated crash"):
        main(generate_args(out))
    assert calls == [0, 1, 2, 3]
    assert not out.exists()

    calls.clear()
    assert main([*generate_args(out), "--resume"]) == 0
    assert calls == [3, 4, 5, 6, 7, 8, 9]
    assert_same_tree(out, expected)
    capsys.readouterr()


def _fail_shard_once(monkeypatch, number: int, error: BaseException) -> list[int]:
    """Make shard ``number`` raise ``error`` once, leaving half a shard file.

    Returns the list of shard numbers that the writer is called with.
    """
    real_write_shard = pipeline.write_shard
    calls: list[int] = []
    failed: list[int] = []

    def fail_once(generator, shard, stage, reference_size, **options):
        calls.append(shard.number)
        if shard.number == number and not failed:
            failed.append(shard.number)
            # Half a shard: a temporary HDF5 file, and no marker.
            (stage / SHARD_DIR / f".{shard.name}.h5.x1.tmp").write_bytes(b"half")
            raise error
        return real_write_shard(generator, shard, stage, reference_size, **options)

    monkeypatch.setattr(pipeline, "write_shard", fail_once)
    return calls


def _crash_after_three_shards(out: Path, monkeypatch) -> list[int]:
    """Run until shard 3 fails; return the list that records later shard calls."""
    calls = _fail_shard_once(monkeypatch, 3, OSError("simulated crash while writing"))

    with pytest.raises(OSError, match="simulated crash"):
        main(generate_args(out))
    calls.clear()
    return calls


@pytest.mark.parametrize(
    ("damaged", "size"), [("shard-000001.json", 0), ("shard-000001.h5", 1000)]
)
def test_resume_redoes_damaged_shard(
    reference, out, monkeypatch, capsys, caplog, damaged, size
):
    _, expected = reference
    calls = _crash_after_three_shards(out, monkeypatch)
    (staging,) = out.parent.glob(f".{out.name}.partial-*")
    path = staging / SHARD_DIR / damaged
    os.truncate(path, size)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.shards"):
        assert main([*generate_args(out), "--resume"]) == 0

    assert calls == [1, 3, 4, 5, 6, 7, 8, 9]
    assert_same_tree(out, expected)
    (message,) = [
        r.getMessage() for r in caplog.records if r.name == "thermosynth.output.shards"
    ]
    assert message.startswith(f"{path} is damaged (")
    assert message.endswith("), so its shard counts as incomplete")
    capsys.readouterr()


def test_without_resume_starts_over(reference, out, monkeypatch, capsys):
    _, expected = reference
    calls: list[int] = []
    crashed: list[int] = []
    real_write_shard = pipeline.write_shard

    def count(generator, shard, *args, **options):
        calls.append(shard.number)
        if shard.number == 5 and not crashed:
            crashed.append(shard.number)
            raise OSError("simulated crash")
        return real_write_shard(generator, shard, *args, **options)

    monkeypatch.setattr(pipeline, "write_shard", count)
    with pytest.raises(OSError, match="simulated crash"):
        main(generate_args(out))
    calls.clear()
    assert main(generate_args(out)) == 0
    assert calls == list(range(10))
    assert_same_tree(out, expected)
    capsys.readouterr()


def test_interrupt_names_kept_shards_then_resume(reference, out, capsys, monkeypatch):
    _, expected = reference

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_join_shards", interrupted)
        assert main(generate_args(out)) == 130
    err = capsys.readouterr().err

    staging = list(out.parent.glob(f".{out.name}.partial-*"))
    assert len(staging) == 1
    assert err.startswith("thermosynth: interrupted; 10 of 10 shards are complete")
    assert str(staging[0]) in err
    assert err.rstrip().endswith(
        "rerun with --resume to finish, or without it to start afresh (which "
        "deletes that folder)"
    )
    assert main(generate_args(out, "--resume")) == 0
    assert_same_tree(out, expected)


def test_python_interrupt_names_resume_argument(reference, out, monkeypatch):
    _, expected = reference
    overrides = (*SPLIT[1::2], f"output.dir={out}")
    loaded = load_demo_recipe(overrides=overrides)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_join_shards", interrupted)
        with pytest.raises(KeyboardInterrupt) as info:
            pipeline.generate(loaded, progress=False)

    message = str(info.value)
    assert message.startswith("10 of 10 shards are complete and kept in ")
    assert "rerun with --resume (resume=True in Python) to finish" in message
    pipeline.generate(loaded, progress=False, resume=True)
    assert_same_tree(out, expected)


def test_interrupt_in_second_shard_keeps_first(reference, out, capsys, monkeypatch):
    _, expected = reference
    calls = _fail_shard_once(monkeypatch, 1, KeyboardInterrupt())

    assert main(generate_args(out)) == 130
    err = capsys.readouterr().err
    (staging,) = out.parent.glob(f".{out.name}.partial-*")

    assert err == (
        f"thermosynth: interrupted; 1 of 10 shards is complete and kept in "
        f"{staging}; rerun with --resume to finish, or without it to start "
        "afresh (which deletes that folder)\n"
    )
    assert [p.name for p in (staging / SHARD_DIR).glob("shard-*.json")] == [
        "shard-000000.json"
    ]
    calls.clear()
    assert main(generate_args(out, "--resume")) == 0
    assert calls == list(range(1, 10))
    assert_same_tree(out, expected)
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_resume_rejects_staging_of_old_sampling(reference, out, capsys, monkeypatch):
    _fail_shard_once(monkeypatch, 1, KeyboardInterrupt())
    assert main(generate_args(out)) == 130
    (staging,) = out.parent.glob(f".{out.name}.partial-*")
    manifest = json.loads((staging / "manifest.json").read_text())
    del manifest["sampling_version"]
    (staging / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()

    assert main(generate_args(out, "--resume")) == 2
    err = capsys.readouterr().err

    assert f"staging folder {staging} belongs to another run" in err
    assert (staging / SHARD_DIR / "shard-000000.json").is_file()
    assert not out.exists()


def test_interrupted_overwrite_names_both_options(reference, out, capsys, monkeypatch):
    _, expected = reference
    assert main(generate_args(out, "--set", "seed=9")) == 0
    old = read_tree(out)
    calls = _fail_shard_once(monkeypatch, 1, KeyboardInterrupt())

    assert main(generate_args(out, "--overwrite")) == 130
    err = capsys.readouterr().err
    (staging,) = out.parent.glob(f".{out.name}.partial-*")

    # The last line; a warning about the folder's 8-bit range may come first.
    assert err.splitlines()[-1] == (
        f"thermosynth: interrupted; 1 of 10 shards is complete and kept in "
        f"{staging}; rerun with --resume --overwrite to finish, or with "
        "--overwrite alone to start afresh (which deletes that folder)"
    )
    assert read_tree(out) == old

    # --resume alone keeps the output of the other seed, as the message implies.
    assert main(generate_args(out, "--resume")) == 2
    assert "pass --overwrite to replace it" in capsys.readouterr().err
    assert read_tree(out) == old

    calls.clear()
    assert main(generate_args(out, "--resume", "--overwrite")) == 0
    assert calls == list(range(1, 10))
    assert_same_tree(out, expected)


def test_interrupt_before_any_shard_says_so(out, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_shard", interrupted)
    assert main(generate_args(out)) == 130
    err = capsys.readouterr().err

    assert err == (
        "thermosynth: interrupted; none of the 10 shards was complete, so no "
        "output was written; a smaller output.shard_size keeps more of an "
        "interrupted run for --resume\n"
    )
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_interrupt_in_bank_build_says_so(out, capsys, monkeypatch, tmp_path):
    bank = tmp_path / "bank.h5"
    simulate_entry = samples.Generator.simulate_entry
    calls = []

    def simulate_once(self, drawn, *, events):
        if calls:
            raise KeyboardInterrupt
        calls.append(drawn)
        return simulate_entry(self, drawn, events=events)

    monkeypatch.setattr(samples.Generator, "simulate_entry", simulate_once)
    args = generate_args(out, "--set", "bank.mode=reuse", "--set", f"bank.path={bank}")
    assert main(args) == 130
    err = capsys.readouterr().err

    assert err == (
        "thermosynth: interrupted; stopped while building the scenario bank, before "
        "any sample, so no output was written and --resume has no shards to reuse; "
        f"the scenario bank {bank} keeps the 1 of 2 entries simulated before the "
        "interrupt, so a rerun simulates only the other 1\n"
    )
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))

    rerun_calls = []

    def simulate_counted(self, drawn, *, events):
        rerun_calls.append(drawn)
        return simulate_entry(self, drawn, events=events)

    monkeypatch.setattr(samples.Generator, "simulate_entry", simulate_counted)
    assert main([*args, "--resume"]) == 0
    assert len(rerun_calls) == 1
    assert rerun_calls[0] != calls[0]


def test_sigint_with_workers_then_resume(reference, out, capsys):
    _, expected = reference
    command = [sys.executable, "-m", "thermosynth.cli", *generate_args(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pattern = f".{out.name}.partial-*/{SHARD_DIR}/shard-*.json"
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(pattern)) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.005)
    # Ctrl-C in a terminal signals the whole process group, workers included.
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    (staging,) = out.parent.glob(f".{out.name}.partial-*")
    n_kept = len(list((staging / SHARD_DIR).glob("shard-*.json")))

    assert process.returncode == 130, err
    assert 1 <= n_kept < 10, "the run finished before it was interrupted"
    assert f"interrupted; {n_kept} of 10 shards " in err
    assert f"complete and kept in {staging}; rerun with --resume" in err
    assert main(generate_args(out, "--resume")) == 0
    assert_same_tree(out, expected)


def _interrupted_before_join(out: Path, monkeypatch, capsys) -> Path:
    """Interrupt a run as it joins its shards; return its staging folder."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_join_shards", interrupted)
        assert main(generate_args(out)) == 130
    (kept,) = out.parent.glob(f".{out.name}.partial-*")
    capsys.readouterr()
    return kept


def test_resume_of_changed_recipe_says_it_starts_afresh(
    out, capsys, monkeypatch, caplog
):
    kept = _interrupted_before_join(out, monkeypatch, capsys)

    changed = generate_args(out, "--resume", "--set", "seed=99")
    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        assert main(changed) == 0
    err = caplog.text

    assert "--resume found no staging folder of this recipe" in err
    assert f"such as {kept}; this run cannot reuse them" in err
    assert kept.exists()


def test_changed_rerun_names_the_staging_folder_it_leaves(
    out, capsys, monkeypatch, caplog
):
    kept = _interrupted_before_join(out, monkeypatch, capsys)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        assert main(generate_args(out, "--set", "seed=99")) == 0

    assert (
        f"1 staging folder(s) of an interrupted run of another recipe are left "
        f"beside {out}, such as {kept}; this run cannot reuse them. Rerun that "
        "recipe with --resume (resume=True in Python) to finish it, or delete "
        "them" in caplog.text
    )
    assert kept.exists()


def finished_output(reference) -> dict[str, int]:
    """Copy the reference run to its output path; return each file's mtime [ns]."""
    path, _ = reference
    shutil.copytree(path.parent / "uninterrupted", path)
    return {p.as_posix(): p.stat().st_mtime_ns for p in path.rglob("*")}


def test_resume_of_complete_output_writes_nothing(reference, out, monkeypatch, capsys):
    _, expected = reference
    mtimes = finished_output(reference)

    def no_work(*args, **kwargs):
        raise AssertionError("a complete output was generated again")

    monkeypatch.setattr(pipeline, "Generator", no_work)
    assert main(generate_args(out, "--resume")) == 0
    printed = capsys.readouterr().out

    assert printed.startswith(
        f"{out} is already complete with 20 samples (10 anomalous"
    )
    assert "--resume wrote nothing" in printed
    assert_same_tree(out, expected)
    assert {p.as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes
    assert not list(out.parent.glob(f".{out.name}.*"))


def test_resume_rejects_complete_output_of_other_recipe(reference, out, capsys):
    _, expected = reference
    finished_output(reference)

    assert main(generate_args(out, "--resume", "--set", "seed=99")) == 2
    err = capsys.readouterr().err

    assert err.startswith(f"thermosynth: error: --resume cannot reuse {out}: its ")
    assert "so it was written by another recipe" in err
    assert "pass --overwrite to replace it, or choose another output folder" in err
    assert_same_tree(out, expected)


def test_resume_rejects_output_of_old_sampling(reference, out, capsys):
    finished_output(reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest.pop("sampling_version") == SAMPLING_VERSION
    (out / "manifest.json").write_text(json.dumps(manifest))

    assert main(generate_args(out, "--resume")) == 2
    err = capsys.readouterr().err

    assert err.startswith(f"thermosynth: error: --resume cannot reuse {out}: its ")
    assert "has sampling_version 1, but this thermosynth draws samples by " in err
    assert f"version {SAMPLING_VERSION}" in err
    assert err.rstrip().endswith("pass --overwrite to write the output again")


def test_resume_rejects_output_with_missing_shard(reference, out, capsys):
    finished_output(reference)
    (out / SHARD_DIR / "shard-000004.json").unlink()

    assert main(generate_args(out, "--resume")) == 2
    err = capsys.readouterr().err

    assert "1 of its 10 shards are missing or incomplete" in err
    assert f"such as {SHARD_DIR}/shard-000004; pass --overwrite" in err
    assert (out / SHARD_DIR / "shard-000004.h5").is_file()


def test_resume_rejects_unreadable_manifest(reference, out, capsys):
    finished_output(reference)
    (out / "manifest.json").write_text("{not json")

    assert main(generate_args(out, "--resume")) == 2
    err = capsys.readouterr().err

    assert f"could not read {out / 'manifest.json'} (" in err
    assert f"pass --overwrite to replace {out}" in err


def test_resume_redoes_shard_with_damaged_png(
    reference, out, monkeypatch, capsys, caplog
):
    _, expected = reference
    calls = _crash_after_three_shards(out, monkeypatch)
    (staging,) = out.parent.glob(f".{out.name}.partial-*")
    markers = [staging / SHARD_DIR / f"shard-00000{n}.json" for n in (1, 2)]
    truncated, deleted = [
        staging / sorted(json.loads(marker.read_text())["folder_files"])[0]
        for marker in markers
    ]
    os.truncate(truncated, 10)
    deleted.unlink()

    with caplog.at_level(logging.INFO, logger="thermosynth.output.shards"):
        assert main([*generate_args(out), "--resume"]) == 0

    assert calls == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert_same_tree(out, expected)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"shard-000001: {truncated} has 10 bytes, but")
    assert messages[1] == (
        f"shard-000002: {deleted} is missing, so the shard is written again"
    )
    capsys.readouterr()


def test_shard_marker_records_png_sizes(reference):
    path, expected = reference
    uninterrupted = path.parent / "uninterrupted"
    marker = json.loads(expected[f"{SHARD_DIR}/shard-000000.json"])

    assert marker["folder_files"]
    for name, size in marker["folder_files"].items():
        assert name.startswith("folder/")
        assert name.endswith(".png")
        assert (uninterrupted / name).stat().st_size == size


def test_sigterm_keeps_shards_exit_143(reference, out, capsys, monkeypatch):
    _, expected = reference
    real_write_shard = pipeline.write_shard

    def terminated_at_third(generator, shard, *args, **options):
        if shard.number == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_write_shard(generator, shard, *args, **options)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "write_shard", terminated_at_third)
        assert main(generate_args(out)) == 143
    err = capsys.readouterr().err
    (staging,) = out.parent.glob(f".{out.name}.partial-*")

    assert err.startswith(
        f"thermosynth: terminated; 2 of 10 shards are complete and kept in {staging}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert main(generate_args(out, "--resume")) == 0
    assert_same_tree(out, expected)


def test_interrupt_after_output_complete_exits_0(reference, out, capsys, monkeypatch):
    _, expected = reference

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_log_implausible", interrupted)
    assert main(generate_args(out)) == 0
    captured = capsys.readouterr()

    assert captured.out.startswith("wrote 20 samples")
    assert "interrupted after" in captured.err
    assert_same_tree(out, expected)


def test_sigint_after_output_complete_exits_0(reference, out, capsys, monkeypatch):
    _, expected = reference
    real_summary_line = cli._summary_line

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real_summary_line(*args, **kwargs)

    monkeypatch.setattr(cli, "_summary_line", interrupted)
    assert main(generate_args(out)) == 0

    assert capsys.readouterr().out.startswith("wrote 20 samples")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert_same_tree(out, expected)


def test_interrupt_between_renames_keeps_old_output(
    reference, out, capsys, monkeypatch
):
    _, expected = reference
    assert main(generate_args(out, "--set", "seed=9")) == 0
    old = read_tree(out)

    with monkeypatch.context() as patch:
        interrupt_replace(patch, "aside")
        assert main(generate_args(out, "--overwrite")) == 130
    err = capsys.readouterr().err
    (staging,) = out.parent.glob(f".{out.name}.partial-*")

    # The last line; a warning about the folder's 8-bit range may come first.
    assert err.splitlines()[-1].startswith(
        f"thermosynth: interrupted; 10 of 10 shards are complete and kept in {staging}"
    )
    assert read_tree(out) == old
    assert not list(out.parent.glob(f".{out.name}.old-*"))
    assert main(generate_args(out, "--overwrite", "--resume")) == 0
    assert_same_tree(out, expected)


def test_interrupt_deleting_old_output_exits_0(reference, out, capsys, monkeypatch):
    _, expected = reference
    assert main(generate_args(out, "--set", "seed=9")) == 0

    with monkeypatch.context() as patch:
        interrupt_replace(patch, "delete")
        assert main(generate_args(out, "--overwrite")) == 0
    captured = capsys.readouterr()
    (retired,) = out.parent.glob(f".{out.name}.old-*")

    assert captured.out.startswith("wrote 20 samples")
    assert f"{out} is complete, but the output it replaced was not fully " in (
        captured.err
    )
    assert f"deleted; remove {retired}" in captured.err
    assert "none of the" not in captured.err
    assert_same_tree(out, expected)


def test_killed_swap_restored_by_next_run(reference, out, capsys, caplog):
    _, expected = reference
    assert main(generate_args(out, "--set", "seed=9")) == 0
    old = read_tree(out)
    # What SIGKILL between the two renames of the final move leaves behind.
    retired = out.parent / f".{out.name}.old-k9"
    retired.mkdir()
    out.rename(retired / out.name)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        assert main(generate_args(out)) == 2

    assert "output already exists" in capsys.readouterr().err
    assert read_tree(out) == old
    assert not retired.exists()
    (restored, *_) = [
        r.getMessage() for r in caplog.records if r.name == "thermosynth.output.atomic"
    ]
    assert restored.startswith(f"restored the earlier output {out} from {retired}")


def test_resume_newer_sampling_names_writer(reference, out, capsys):
    finished_output(reference)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["sampling_version"] = SAMPLING_VERSION + 1
    (out / "manifest.json").write_text(json.dumps(manifest))

    assert main(generate_args(out, "--resume")) == 2
    err = capsys.readouterr().err

    newer = SAMPLING_VERSION + 1
    assert f"has sampling_version {newer}, but this thermosynth draws " in err
    assert err.rstrip().endswith(
        "pass --overwrite to write the output again, or resume with the newer "
        "thermosynth that wrote it"
    )


def make_shard_old(folder: Path, number: int) -> None:
    """Rewrite a shard as thermosynth wrote it before split_position existed."""
    shard = folder / SHARD_DIR / f"shard-{number:06d}"
    marker = json.loads(shard.with_suffix(".json").read_text())
    assert marker.pop("metadata_version") == 2
    shard.with_suffix(".json").write_text(json.dumps(marker, sort_keys=True))
    with h5py.File(shard.with_suffix(".h5"), "r+") as h5:
        records = [json.loads(text) for text in h5["metadata"][()]]
        for record in records:
            del record["split_position"]
        h5["metadata"][...] = [json.dumps(r, sort_keys=True) for r in records]


def test_resume_rewrites_shards_without_split_position(
    reference, out, monkeypatch, capsys, caplog
):
    _, expected = reference
    calls = _crash_after_three_shards(out, monkeypatch)
    (staging,) = out.parent.glob(f".{out.name}.partial-*")
    make_shard_old(staging, 0)
    make_shard_old(staging, 1)

    with caplog.at_level(logging.INFO, logger="thermosynth.pipeline"):
        assert main([*generate_args(out, "--resume")]) == 0

    assert calls == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    assert_same_tree(out, expected)
    assert (
        "shard 0: its samples' metadata are of version 1, not this "
        "thermosynth's 2, so the shard is written again"
    ) in caplog.messages
    capsys.readouterr()


def test_resume_keeps_complete_output_without_split_position(
    reference, out, capsys, caplog
):
    finished_output(reference)
    make_shard_old(out, 4)
    before = read_tree(out)

    with caplog.at_level(logging.INFO, logger="thermosynth.pipeline"):
        assert main(generate_args(out, "--resume")) == 0

    assert "already complete with 20 samples" in capsys.readouterr().out
    assert read_tree(out) == before
    assert (
        f"{out}: 1 of its 10 shards were written by an earlier thermosynth, whose "
        "sample metadata lack split_position; it is kept as it is, so pass "
        "--overwrite to write it again with split_position"
    ) in caplog.messages


def test_old_output_has_no_split_positions(reference, out):
    finished_output(reference)
    make_shard_old(out, 4)
    dataset = HDF5Dataset(out / "dataset.h5")

    assert dataset[7]["split_position"] == 1
    assert dataset[8]["split_position"] == -1
    with pytest.raises(FrameError, match="row 8 of .* does not record split_pos"):
        dataset.split_positions()
