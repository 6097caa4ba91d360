"""Staged output: nothing is lost on failure, nothing overwritten by accident."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from interrupts import interrupt_replace
from trees import read_tree

from thermosynth.cli import main
from thermosynth.errors import OutputError
from thermosynth.output import added, atomic
from thermosynth.output.atomic import (
    OUTPUT_MARKER,
    check_writable,
    open_staging,
    staged_dir,
    write_bytes_atomic,
)


def test_staged_dir_moves_into_place(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target, overwrite=False) as stage:
        (stage / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_existing_output_rejected_without_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(
        OutputError, match="output already exists: .*out; pass --overwrite"
    ):
        with staged_dir(target, overwrite=False):
            pass


def _earlier_output(target: Path) -> None:
    with staged_dir(target, overwrite=False) as stage:
        (stage / "report.md").write_text("old")


def test_failure_keeps_previous_output(tmp_path):
    target = tmp_path / "out"
    _earlier_output(target)
    with pytest.raises(RuntimeError, match="boom"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "report.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_replaces_whole_folder(tmp_path):
    target = tmp_path / "out"
    _earlier_output(target)
    with staged_dir(target, overwrite=True) as stage:
        (stage / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    "contents",
    [
        {},
        {OUTPUT_MARKER: "x", "x.csv": "old"},
        {"manifest.json": '{"n_samples": 2, "recipe_sha256": "ab"}', "dataset.h5": ""},
    ],
)
def test_overwrite_replaces_empty_or_thermosynth_folder(tmp_path, contents):
    target = tmp_path / "out"
    target.mkdir()
    for name, text in contents.items():
        (target / name).write_text(text)

    with staged_dir(target, overwrite=True) as stage:
        (stage / "new.txt").write_text("new")

    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "new.txt"]


@pytest.mark.parametrize(
    "contents",
    [
        {"notes.txt": "precious"},
        {"report.md": "# my thesis", "thesis.tex": "precious"},
        {"calibration.json": "{}", "notes.txt": "precious"},
        {"manifest.json": '{"name": "my app"}', "notes.txt": "precious"},
        {"manifest.json": "not json", "notes.txt": "precious"},
    ],
)
def test_overwrite_refuses_folder_thermosynth_did_not_write(tmp_path, contents):
    target = tmp_path / "mydata"
    target.mkdir()
    for name, text in contents.items():
        (target / name).write_text(text)

    with pytest.raises(OutputError, match="contains files that thermosynth did not"):
        check_writable(target, overwrite=True)
    for name, text in contents.items():
        assert (target / name).read_text() == text


def test_overwrite_refuses_working_folder_and_its_parents(tmp_path, monkeypatch):
    work = tmp_path / "run"
    work.mkdir()
    (work / "manifest.json").write_text("{}")
    monkeypatch.chdir(work)

    for target in (Path("."), work, tmp_path):
        with pytest.raises(OutputError, match="is the working folder or contains"):
            check_writable(target, overwrite=True)
    assert (work / "manifest.json").exists()


def test_write_bytes_atomic_refuses_existing_file(tmp_path):
    path = tmp_path / "p.png"
    write_bytes_atomic(path, b"one", overwrite=False)
    with pytest.raises(OutputError, match="already exists: .*p.png; pass --overwrite"):
        write_bytes_atomic(path, b"two", overwrite=False)
    write_bytes_atomic(path, b"two", overwrite=True)
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_outputs_get_normal_permissions(tmp_path):
    target = tmp_path / "out"
    with staged_dir(target, overwrite=False) as stage:
        (stage / "a.txt").write_text("x")
    write_bytes_atomic(tmp_path / "p.png", b"x", overwrite=False)
    assert target.stat().st_mode & 0o755 == 0o755
    assert (tmp_path / "p.png").stat().st_mode & 0o644 == 0o644


def test_staged_dir_removes_folders_of_killed_runs(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = atomic._host()
    leftovers = {
        "killed": f".out.partial-{host}-{ended.stdout.strip()}-abc1_2",
        "running": f".out.partial-{host}-{os.getpid()}-xyz",
        "other host": f".out.partial-elsewhere-{ended.stdout.strip()}-abc",
        "resumable": ".out.partial-0f3a9c",
        "other output": f".out2.partial-{host}-{ended.stdout.strip()}-abc",
    }
    for name in leftovers.values():
        (tmp_path / name).mkdir()

    with staged_dir(tmp_path / "out", overwrite=False) as stage:
        (stage / "a.txt").write_text("a")

    assert not (tmp_path / leftovers["killed"]).exists()
    for case in ("running", "other host", "resumable", "other output"):
        assert (tmp_path / leftovers[case]).is_dir(), case
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


@pytest.mark.parametrize("existing", [False, True])
def test_resume_without_staging_gives_reason(existing, tmp_path, caplog):
    target = tmp_path / "out"
    if existing:
        target.mkdir()

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        staging = open_staging(target, "0f3a9c", resume=True)

    assert staging.is_dir()
    message = caplog.records[0].getMessage()
    assert message.startswith(
        f"--resume found no staging folder of this recipe for {target}"
    )
    replacing = "starts afresh and replaces the output there, as --overwrite requests"
    assert (replacing in message) == existing
    assert ("no earlier run into this folder left one" in message) != existing
    if existing:
        assert message.endswith(
            "a finished run leaves none, and --resume without --overwrite keeps an "
            "output of this recipe that is already complete"
        )


def _overwrite_warnings(target: Path, caplog) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="thermosynth.output"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")
    return [record.getMessage() for record in caplog.records]


def _add_user_entries(target: Path) -> dict[str, bytes]:
    """Add a file and a folder to the output ``target`` and return their files."""
    (target / "notes.txt").write_text("checkpoint 3 is the best\n")
    (target / "plots" / "runs").mkdir(parents=True)
    (target / "plots" / "runs" / "loss.png").write_bytes(bytes(range(256)))
    return {
        "notes.txt": b"checkpoint 3 is the best\n",
        "plots/runs/loss.png": bytes(range(256)),
    }


def _overwrite_logs(target: Path, caplog, text: str = "new") -> list[str]:
    """Replace ``target`` with an output of report.md and return the log lines."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="thermosynth.output"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text(text)
    return [record.getMessage() for record in caplog.records]


def test_overwrite_keeps_entries_a_user_added(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    user = _add_user_entries(target)

    for text in ("new", "newer"):
        logs = _overwrite_logs(target, caplog, text)

        assert logs == [
            f"replaced existing output {target}",
            f"kept 2 file(s) or folder(s) you added to {target}: notes.txt, plots/",
        ]
        tree = read_tree(target)
        assert {name: tree[name] for name in user} == user
        assert tree["report.md"] == text.encode()
        assert atomic.added_entries(target) == ["notes.txt", "plots/"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_removes_closeness_write_back(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    (target / "closeness.csv").write_text("index,contrast_K\n")
    (target / "dataset_closeness.h5").write_bytes(b"h5")
    (target / "NOTES.txt").write_text("mine")

    assert _overwrite_warnings(target, caplog) == [
        "--overwrite removes the per-sample closeness that validate closeness "
        f"wrote into {target} (closeness.csv, dataset_closeness.h5), because it "
        "describes the replaced samples; run validate closeness again on the "
        "new output",
        f"kept 1 file(s) or folder(s) you added to {target}: NOTES.txt",
    ]
    assert sorted(p.name for p in target.iterdir()) == [
        OUTPUT_MARKER,
        "NOTES.txt",
        "report.md",
    ]
    assert (target / "NOTES.txt").read_text() == "mine"


def test_overwrite_keeps_entries_added_deeper(tmp_path, caplog):
    target = tmp_path / "out"
    with staged_dir(target, overwrite=False) as stage:
        (stage / "train" / "good").mkdir(parents=True)
        (stage / "train" / "good" / "000.png").write_bytes(b"png")
    (target / "train" / "good" / "notes.txt").write_text("mine")
    (target / "train" / "extra" / "deep").mkdir(parents=True)

    logs = _overwrite_logs(target, caplog)

    assert logs[-1] == (
        f"kept 2 file(s) or folder(s) you added to {target}: train/extra/, "
        "train/good/notes.txt"
    )
    assert (target / "train" / "good" / "notes.txt").read_text() == "mine"
    assert (target / "train" / "extra" / "deep").is_dir()
    assert not (target / "train" / "good" / "000.png").exists()
    # The new output wrote no train/, so all of it is now the user's.
    assert atomic.added_entries(target) == ["train/"]


def test_overwrite_renames_entry_new_output_uses(tmp_path, caplog):
    target = tmp_path / "out"
    with staged_dir(target, overwrite=False) as stage:
        (stage / "figures").mkdir()
    (target / "summary.md").write_text("mine")
    (target / "summary.md.kept").write_text("also mine")
    (target / "figures" / "a.png").write_bytes(b"mine")

    with caplog.at_level(logging.WARNING, logger="thermosynth.output"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "summary.md").write_text("new")
            (stage / "figures").write_text("new, a file")

    (message,) = [record.getMessage() for record in caplog.records]
    assert message == (
        f"kept 3 file(s) or folder(s) you added to {target}: figures/a.png, "
        "summary.md, summary.md.kept; because the new output uses their paths, "
        "figures/a.png is now figures.kept/a.png, summary.md is now "
        "summary.md.kept-2"
    )
    assert read_tree(target) == {
        OUTPUT_MARKER: (target / OUTPUT_MARKER).read_bytes(),
        "figures": b"new, a file",
        "figures.kept/a.png": b"mine",
        "summary.md": b"new",
        "summary.md.kept": b"also mine",
        "summary.md.kept-2": b"mine",
    }
    assert atomic.added_entries(target) == [
        "figures.kept/",
        "summary.md.kept",
        "summary.md.kept-2",
    ]


def test_failed_move_keeps_old_output(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _earlier_output(target)
    _add_user_entries(target)
    before = read_tree(target)
    real_replace = os.replace
    calls = []

    def replace(source, destination):
        calls.append(source)
        if len(calls) == 2:
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(
        OutputError,
        match=f"could not move plots/, which you added to {target}, into the new "
        f"output: Permission denied; {target} is unchanged. Make that entry "
        f"writable, or move it out of {target} yourself, and run again",
    ):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")

    assert read_tree(target) == before
    assert not list(tmp_path.glob(".out.old-*"))
    (staging,) = tmp_path.glob(".out.partial-*")
    assert sorted(p.name for p in staging.iterdir()) == [OUTPUT_MARKER, "report.md"]


def test_overwrite_of_untouched_output_is_quiet(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "other.md").write_text("new")

    assert caplog.records == []


def _new_output(target: Path, monkeypatch, fail_after: str) -> None:
    """Replace ``target`` with a new output; raise KeyboardInterrupt at one step.

    ``fail_after`` is "aside" (the old output has moved to ``.out.old-*``) or
    "delete" (the new output is in place and the old one is being deleted).
    """
    interrupt_replace(monkeypatch, fail_after)
    with staged_dir(target, overwrite=True) as stage:
        (stage / "report.md").write_text("new")


def test_interrupt_between_renames_restores_old(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _earlier_output(target)
    _add_user_entries(target)
    before = read_tree(target)

    with pytest.raises(KeyboardInterrupt):
        _new_output(target, monkeypatch, fail_after="aside")

    assert read_tree(target) == before
    assert not list(tmp_path.glob(".out.old-*"))


def test_failed_second_rename_restores_old(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _earlier_output(target)
    _add_user_entries(target)
    before = read_tree(target)
    real_replace = os.replace

    def replace(source, destination):
        if ".partial-" in str(source) and Path(destination) == target:
            raise OSError("simulated failure of the second rename")
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="simulated failure"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")

    assert read_tree(target) == before
    assert not list(tmp_path.glob(".out.old-*"))


def test_interrupt_while_deleting_old_keeps_new(tmp_path, monkeypatch, caplog):
    target = tmp_path / "out"
    _earlier_output(target)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        _new_output(target, monkeypatch, fail_after="delete")

    assert (target / "report.md").read_text() == "new"
    (retired,) = tmp_path.glob(".out.old-*")
    (message,) = [record.getMessage() for record in caplog.records]
    assert message == (
        f"interrupted after the new output moved into place: {target} is "
        f"complete, but the output it replaced was not fully deleted; remove "
        f"{retired}"
    )


def test_sigint_during_renames_is_deferred(tmp_path, monkeypatch, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    real_replace = os.replace

    def replace(source, destination):
        real_replace(source, destination)
        if ".old-" in str(destination):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")

    assert (target / "report.md").read_text() == "new"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    (retired,) = tmp_path.glob(".out.old-*")
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.endswith(f"was not fully deleted; remove {retired}")


def test_recover_replaced_restores_killed_swap(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    retired = tmp_path / ".out.old-x1"
    retired.mkdir()
    target.rename(retired / "out")

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        atomic.recover_replaced(target)

    assert (target / "report.md").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (message,) = [record.getMessage() for record in caplog.records]
    assert message == (
        f"restored the earlier output {target} from {retired}, where a run that "
        "was killed while replacing it had moved it"
    )


def test_unwritable_journal_keeps_old_output(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _earlier_output(target)
    _add_user_entries(target)
    before = read_tree(target)

    def write_journal(journal, staging, moves):
        journal.write_text('{"host": ')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(added, "_write_journal", write_journal)
    with pytest.raises(
        OutputError,
        match=r"cannot write .*out\.moved\.json, the list of the entries that "
        f"--overwrite keeps: No space left on device; {target} is unchanged",
    ):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")

    assert read_tree(target) == before
    assert not list(tmp_path.glob(".out.old-*"))


# Replaces the output argv[1] and kills itself with SIGKILL at the rename
# argv[2]: "moved" kills before the old output moves aside (the added entries
# are in the staging folder), "aside" just after.
KILLED_REPLACE = """
import os, signal, sys
from pathlib import Path
from thermosynth.output import added, atomic

target, step = Path(sys.argv[1]), sys.argv[2]
real_replace = os.replace

def replace(source, destination):
    if Path(source) == target and step == "moved":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, destination)
    if Path(source) == target and step == "aside":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
with atomic.staged_dir(target, overwrite=True) as stage:
    (stage / "report.md").write_text("new")
"""


@pytest.mark.parametrize("step", ["moved", "aside"])
def test_next_run_restores_entries_of_killed_swap(tmp_path, caplog, step):
    target = tmp_path / "out"
    _earlier_output(target)
    user = _add_user_entries(target)
    command = [sys.executable, "-c", KILLED_REPLACE, str(target), step]
    killed = subprocess.run(command, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (staging,) = tmp_path.glob(".out.partial-*")
    assert sorted(p.name for p in staging.iterdir()) == [
        OUTPUT_MARKER,
        "notes.txt",
        "plots",
        "report.md",
    ]

    logs = _overwrite_logs(target, caplog, "newer")

    assert (
        f"moved 2 file(s) or folder(s) that you added to {target} back from "
        f"{staging}, where a run that was killed while replacing {target} had "
        "moved them: notes.txt, plots/"
    ) in logs
    tree = read_tree(target)
    assert {name: tree[name] for name in user} == user
    assert tree["report.md"] == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_recover_replaced_names_leftover(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    (tmp_path / ".out.old-x2" / "out" / "train").mkdir(parents=True)

    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        atomic.recover_replaced(target)

    assert (tmp_path / ".out.old-x2").is_dir()
    (message,) = [record.getMessage() for record in caplog.records]
    assert message == (
        f"found 1 folder(s) with the rest of an earlier output of {target}, left "
        "by a run that was stopped while deleting it: "
        f"{tmp_path / '.out.old-x2'}; remove them"
    )


def test_overwrite_names_entries_of_unmarked_output(tmp_path, caplog):
    target = tmp_path / "out"
    (target / "shards").mkdir(parents=True)
    (target / "folder").mkdir()
    (target / "dataset.h5").write_bytes(b"h5")
    (target / "manifest.json").write_text('{"recipe_sha256": "ab", "n_samples": 2}')
    (target / "notes.txt").write_text("mine")
    (target / "precious").mkdir()

    assert _overwrite_logs(target, caplog)[-1] == (
        f"kept 2 file(s) or folder(s) you added to {target}: notes.txt, precious/"
    )
    assert sorted(p.name for p in target.iterdir()) == [
        OUTPUT_MARKER,
        "notes.txt",
        "precious",
        "report.md",
    ]


def test_output_lock_rejects_second_run(tmp_path):
    target = tmp_path / "out"
    with atomic.output_lock(target):
        assert (tmp_path / ".out.lock").is_file()
        with pytest.raises(
            OutputError,
            match=r"another run is writing the output .*out \(it has locked "
            r".*\.out\.lock\); wait for it to finish, or choose another",
        ):
            with atomic.output_lock(target):
                pass
    assert list(tmp_path.iterdir()) == []


def test_output_lock_in_unwritable_folder(tmp_path, monkeypatch):
    target = tmp_path / "locked" / "out"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path) == tmp_path / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(
        OutputError,
        match=f"cannot write the output {target}: {tmp_path / 'locked'}: "
        "Permission denied; choose an output folder on a writable disk",
    ):
        with atomic.output_lock(target):
            pass


def test_open_staging_in_unwritable_folder(tmp_path, monkeypatch):
    target = tmp_path / "out"

    def mkdir(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(OutputError, match="Permission denied; choose an output"):
        open_staging(target, "abc", resume=False)


def test_dangling_symlink_output_rejected(tmp_path):
    target = tmp_path / "link"
    target.symlink_to(tmp_path / "missing" / "place")

    with pytest.raises(
        OutputError,
        match=f"output path {target} is a symbolic link to .*place, which does "
        "not exist; remove the link",
    ):
        check_writable(target, overwrite=True)
    assert not (tmp_path / "missing").exists()


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SMALL_SPLIT = (
    "--set",
    "split.train_normal=2",
    "--set",
    "split.test_normal=1",
    "--set",
    "split.test_anomalous=1",
)


@pytest.mark.usefixtures("data_dir")
def test_generate_overwrite_keeps_user_entries(tmp_path, capsys):
    out = tmp_path / "out"
    recipe = RECIPES / "pv-module-hotspots.yaml"
    args = ["generate", str(recipe), "-o", str(out), "--no-progress", *SMALL_SPLIT]
    assert main(args) == 0, capsys.readouterr().err
    written = read_tree(out)
    user = _add_user_entries(out)
    (out / "closeness.csv").write_text("index,contrast_K\n0,1.5\n")
    (out / "dataset_closeness.h5").write_bytes(b"h5")

    for _ in range(2):
        assert main([*args, "--overwrite"]) == 0, capsys.readouterr().err

        tree = read_tree(out)
        assert {name: tree[name] for name in user} == user
        # The same recipe and seed write the same bytes again.
        assert {name: tree[name] for name in written} == written
        assert sorted(tree) == sorted([*written, *user])
        assert atomic.added_entries(out) == ["notes.txt", "plots/"]
