"""Command line: one-line errors with exit code 2, and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from thermosynth.cli import main

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_INPUTS = [
    (("--set", "physcs.dt_s=1"), r"unknown key 'physcs'; did you mean 'physics'"),
    (("--set", "physics.dt_s=fast"), r"key 'physics\.dt_s' = 'fast' is invalid"),
    (
        ("--set", "layout.thickness_mm=0"),
        r"thickness_mm = 0(\.0)? .*invalid|thickness_mm.*positive",
    ),
    (
        (
            "--set",
            "materials={cell: {k_in_plane_W_mK: -26, k_through_W_mK: 0.5, rho_cp_J_m3K: 2.4e6}}",
        ),
        r"-26",
    ),
    (("--set", "scenarios.0.power_W=-2"), r"power_W must be positive"),
    (("--set", "layout.widht_mm=10"), r"unknown key 'layout\.widht_mm'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_one_line_exit_2(args, message, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "generate", "--demo", "-o", str(out), *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("thermosynth: error: ")
    assert __import__("re").search(message, err), err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_frame_folder(capsys, tmp_path):
    recipe = str(RECIPES / "flir-pouch-cell.yaml")
    args = ("--set", "frames.path=/no/such/folder", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", recipe, *args)
    assert code == 2
    assert "key 'frames.path': file or folder not found: /no/such/folder" in err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    code, _, err = run_cli(capsys, "generate", "--demo", "-o", str(out))
    assert code == 2
    assert "output already exists" in err
    assert "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_recipe_or_demo_required(capsys):
    code, _, err = run_cli(capsys, "generate")
    assert code == 2
    assert "give either a recipe file or --demo" in err


def test_missing_recipe_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "recipe file not found" in err


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["generate", "--demo", "--frobnicate"])
    assert excinfo.value.code == 2


def test_generate_and_preview_demo(capsys, tmp_path):
    small = [
        "--set",
        "split.train_normal=2",
        "--set",
        "split.test_normal=1",
        "--set",
        "split.test_anomalous=2",
    ]
    code, out, _ = run_cli(
        capsys, "generate", "--demo", "-o", str(tmp_path / "d"), "--no-progress", *small
    )
    assert code == 0
    assert "wrote 5 samples (2 anomalous" in out
    assert (tmp_path / "d" / "dataset.h5").is_file()
    assert (tmp_path / "d" / "recipe.yaml").is_file()

    png = tmp_path / "p.png"
    code, _, _ = run_cli(capsys, "preview", "--demo", "-n", "2", "-o", str(png), *small)
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli(
        capsys, "preview", "--demo", "-n", "2", "-o", str(png), *small
    )
    assert code == 2
    assert "already exists" in err


def test_console_script_runs_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "thermosynth.cli",
            "generate",
            "--demo",
            "--set",
            "seed=-1",
            "-o",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "key 'seed' = -1 is invalid" in result.stderr


def test_calibrate_short_window(capsys, tmp_path, data_dir):
    folder = str(data_dir / "pouch-cell-heater-ir")
    out = tmp_path / "cal"
    args = ("--cell-mm", "19", "--n-layers", "3", "--stop-s", "200", "-o", str(out))
    code, stdout, _ = run_cli(capsys, "calibrate", folder, *args)
    assert code == 0
    assert "RMSE" in stdout
    summary = __import__("json").loads((out / "calibration.json").read_text())
    assert summary["rmse_K"] < 0.2
    assert "k_z_W_mK" in (out / "materials.yaml").read_text()
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"


def test_calibrate_missing_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "calibrate", str(tmp_path / "none"))
    assert code == 2
    assert str(tmp_path / "none") in err
