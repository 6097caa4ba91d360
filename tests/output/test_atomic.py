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

from thermosynth.errors import OutputError
from thermosynth.output import atomic
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
        {"manifest.json": '{"n_samples": 2, "recipe_sha256": "ab"}', "d.h5": ""},
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
    with caplog.at_level(logging.WARNING, logger="thermosynth.output.atomic"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")
    return [record.getMessage() for record in caplog.records]


def test_overwrite_names_entries_a_user_added(tmp_path, caplog):
    target = tmp_path / "out"
    _earlier_output(target)
    (target / "NOTES.txt").write_text("mine")
    (target / "mine" / "deep").mkdir(parents=True)

    assert _overwrite_warnings(target, caplog) == [
        f"--overwrite removes 2 file(s) or folder(s) in {target} that thermosynth "
        "did not write: NOTES.txt, mine/"
    ]
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "report.md"]


def test_overwrite_names_closeness_write_back(tmp_path, caplog):
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
        f"--overwrite removes 1 file(s) or folder(s) in {target} that thermosynth "
        "did not write: NOTES.txt",
    ]


def test_overwrite_names_entries_added_deeper(tmp_path, caplog):
    target = tmp_path / "out"
    with staged_dir(target, overwrite=False) as stage:
        (stage / "train" / "good").mkdir(parents=True)
        (stage / "train" / "good" / "000.png").write_bytes(b"png")
    (target / "train" / "good" / "notes.txt").write_text("mine")
    (target / "train" / "extra" / "deep").mkdir(parents=True)

    assert _overwrite_warnings(target, caplog) == [
        f"--overwrite removes 2 file(s) or folder(s) in {target} that thermosynth "
        "did not write: train/extra/, train/good/notes.txt"
    ]


def test_overwrite_reads_top_level_marker(tmp_path, caplog):
    target = tmp_path / "out"
    (target / "train").mkdir(parents=True)
    (target / "train" / "000.png").write_bytes(b"png")
    (target / "NOTES.txt").write_text("mine")
    (target / OUTPUT_MARKER).write_text(
        "written by thermosynth; --overwrite may replace this folder\n"
        "files and folders that thermosynth wrote here:\ntrain\n"
    )

    assert _overwrite_warnings(target, caplog) == [
        f"--overwrite removes 1 file(s) or folder(s) in {target} that thermosynth "
        "did not write: NOTES.txt"
    ]


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

    with pytest.raises(KeyboardInterrupt):
        _new_output(target, monkeypatch, fail_after="aside")

    assert (target / "report.md").read_text() == "old"
    assert not list(tmp_path.glob(".out.old-*"))


def test_failed_second_rename_restores_old(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _earlier_output(target)
    real_replace = os.replace

    def replace(source, destination):
        if ".partial-" in str(source) and Path(destination) == target:
            raise OSError("simulated failure of the second rename")
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="simulated failure"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "report.md").write_text("new")

    assert (target / "report.md").read_text() == "old"
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

    assert _overwrite_warnings(target, caplog) == [
        f"--overwrite removes 2 file(s) or folder(s) in {target} that thermosynth "
        "did not write: notes.txt, precious/"
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
