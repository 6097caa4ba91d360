"""Staged output: nothing is lost on failure, nothing overwritten by accident."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
