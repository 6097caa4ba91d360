"""Staged output: nothing is lost on failure, nothing overwritten by accident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from thermosynth.errors import OutputError
from thermosynth.output import atomic
from thermosynth.output.atomic import check_writable, staged_dir, write_bytes_atomic


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


def test_failure_keeps_previous_output(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "report.md").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_dir(target, overwrite=True) as stage:
            (stage / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert [p.name for p in target.iterdir()] == ["report.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_replaces_whole_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "manifest.json").write_text("old")
    with staged_dir(target, overwrite=True) as stage:
        (stage / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("contents", [[], ["manifest.json"], ["report.md", "x.csv"]])
def test_overwrite_replaces_empty_or_thermosynth_folder(tmp_path, contents):
    target = tmp_path / "out"
    target.mkdir()
    for name in contents:
        (target / name).write_text("old")

    with staged_dir(target, overwrite=True) as stage:
        (stage / "new.txt").write_text("new")

    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_overwrite_refuses_folder_thermosynth_did_not_write(tmp_path):
    target = tmp_path / "mydata"
    target.mkdir()
    (target / "notes.txt").write_text("precious")

    with pytest.raises(OutputError, match="contains files that thermosynth did not"):
        check_writable(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "precious"


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
