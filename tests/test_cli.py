"""Command line: one-line errors with exit code 2, and nothing written."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import yaml

from thermosynth import cli
from thermosynth.build import LAYOUT_BUILDERS, build_layout
from thermosynth.cli import main
from thermosynth.errors import RecipeError
from thermosynth.geometry import layouts
from thermosynth.recipe import load_demo_recipe
from thermosynth.validation.io import load_frame_set

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
            "materials={cell: {k_in_plane_W_mK: -26, k_through_W_mK: 0.5,"
            " rho_cp_J_m3K: 2.4e6}}",
        ),
        r"-26",
    ),
    (("--set", "scenarios.0.power_W=-2"), r"power_W must be positive"),
    (("--set", "layout.widht_mm=10"), r"unknown key 'layout\.widht_mm'"),
    (("-s", "physics.precision=float16"), r"key 'physics\.precision' = 'float16'"),
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


def test_frame_path_to_file(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    image = tmp_path / "1211.png"
    cv2.imwrite(str(image), np.zeros((24, 32, 3), np.uint8))
    args = ("--set", f"frames.path={image}", "-o", str(tmp_path / "out"))

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    message = (
        f"--set frames.path={image} (recipe {recipe}): key 'frames.path': "
        f"{image} is a file, but frames of kind "
        "'images' are read from a folder; set frames.path to the folder that "
        f"contains the frames, such as {tmp_path}, and frames.pattern to the "
        "files to read in it ('1211.png' reads this file alone)"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_reversed_colorbar_rows_rejected(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    args = ("--set", "frames.colorbar.y_px=[207, 30]", "-o", str(tmp_path / "out"))

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    message = (
        f"--set frames.colorbar.y_px=[207, 30] (recipe {recipe}): key "
        "'frames.colorbar.y_px' = [207, 30] is invalid: rows [px] "
        "must be 0 <= first < last; rows count down from 0 at the top, so the "
        "bar's top row comes first; fix it in the recipe or with --set "
        "frames.colorbar.y_px=..."
    )
    assert_one_line_error(code, err, message)


COLORBAR_PAST_FRAME = (
    r"key 'frames\.colorbar\.x_px' = \[306, 330\] \[px\] lies outside frame "
    r"\S+/id1_cha_1c/\d+\.png, which is 240 x 320 px \(height x width\); set "
    r"frames\.colorbar\.x_px to columns within 0\.\.319"
)


@pytest.mark.usefixtures("data_dir")
def test_colorbar_past_frames_names_key(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    args = ("--set", "frames.colorbar.x_px=[306, 330]", "-o", str(tmp_path / "out"))

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    assert code == 2
    blame = re.escape(f"--set {args[1]} (recipe {recipe})")
    pattern = rf"thermosynth: error: {blame}: {COLORBAR_PAST_FRAME}\n"
    assert re.fullmatch(pattern, err), err
    assert "on_error" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("data_dir")
def test_skipping_every_frame_keeps_first_reason(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    sets = ("frames.colorbar.x_px=[306, 330]", "frames.on_error=skip")
    args = [arg for item in sets for arg in ("--set", item)]

    code, _, err = run_cli(
        capsys, "generate", str(recipe), *args, "-o", str(tmp_path / "out")
    )

    assert code == 2
    blame = re.escape(f"--set {sets[0]} (recipe {recipe})")
    pattern = (
        rf"thermosynth: error: {blame}: none of the 38 frames of the split can "
        r"be read, so frames\.on_error: skip skipped them all; the first failed "
        rf"with: {COLORBAR_PAST_FRAME}\n"
    )
    assert re.fullmatch(pattern, err), err
    assert not (tmp_path / "out").exists()


def test_empty_recipe_file(capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("")

    code, _, err = run_cli(capsys, "generate", str(recipe))

    message = (
        f"{recipe}: the recipe file is empty; a recipe needs at least the keys "
        "frames, layout and scenarios, as in the example recipes in the "
        "recipes/ folder"
    )
    assert_one_line_error(code, err, message)


def test_validate_path_options_expand_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    parser = cli._parser()

    closeness = parser.parse_args(
        ["validate", "closeness", "--normal=~/n", "--pseudo", "~/p", "--real=~/r"]
        + ["--metadata=~/m.json", "-o", "~/c"]
    )
    transfer = parser.parse_args(
        ["validate", "transfer", "--normal=~/n", "--real=~/r", "--metadata=~/m.json"]
        + ["--recipe=~/a.yaml", "--recipe", "~/b.yaml", "--output=~/t"]
    )

    assert closeness.normal == tmp_path / "n"
    assert closeness.pseudo == tmp_path / "p"
    assert closeness.real == tmp_path / "r"
    assert closeness.metadata == tmp_path / "m.json"
    assert closeness.output == tmp_path / "c"
    assert transfer.normal == tmp_path / "n"
    assert transfer.real == tmp_path / "r"
    assert transfer.metadata == tmp_path / "m.json"
    assert transfer.recipe == [tmp_path / "a.yaml", tmp_path / "b.yaml"]
    assert transfer.output == tmp_path / "t"


def leaf_commands(parser, words=()):
    """Yield the words and parser of each command that runs, such as
    ``("validate", "closeness")``."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield words, parser
        return
    for name, command in groups[0].choices.items():
        yield from leaf_commands(command, (*words, name))


def tilde_arguments(action):
    """Return ``action``'s command-line words with the value ``~/<dest>``."""
    value = f"~/{action.dest}"
    if not action.option_strings:
        return [value]
    return [f"{action.option_strings[-1]}={value}"]


def test_every_path_option_expands_home(monkeypatch, tmp_path):
    # Each argument that takes a value is parsed as ~/<dest>, beside the
    # command's required options. Arguments whose type rejects that text,
    # such as numbers, are skipped. Every value that parses to a Path must
    # have ~ expanded, so a new path option without expansion fails here.
    monkeypatch.setenv("HOME", str(tmp_path))
    parser = cli._parser()
    checked = set()

    for words, command in leaf_commands(parser):
        takes_value = [a for a in command._actions if a.nargs != 0 and not a.choices]
        required = [a for a in takes_value if a.required]
        for action in takes_value:
            others = [a for a in required if a is not action]
            args = [word for a in [*others, action] for word in tilde_arguments(a)]
            try:
                parsed = parser.parse_args([*words, *args])
            except SystemExit:
                continue
            value = getattr(parsed, action.dest)
            paths = value if isinstance(value, list) else [value]
            if not all(isinstance(path, Path) for path in paths):
                continue

            checked.add((" ".join(words), action.dest))
            assert paths == [tmp_path / action.dest], (words, action.dest)

    assert checked >= {
        ("generate", "recipe"),
        ("generate", "output"),
        ("preview", "recipe"),
        ("preview", "output"),
        ("calibrate", "measurement"),
        ("calibrate", "output"),
        ("validate closeness", "normal"),
        ("validate closeness", "pseudo"),
        ("validate closeness", "real"),
        ("validate closeness", "metadata"),
        ("validate closeness", "output"),
        ("validate transfer", "normal"),
        ("validate transfer", "real"),
        ("validate transfer", "metadata"),
        ("validate transfer", "recipe"),
        ("validate transfer", "output"),
    }


def test_output_option_expands_home(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    small = ("--set", "split.train_normal=1", "--set", "split.test_normal=1")
    small += ("--set", "split.test_anomalous=0")

    code, out, _ = run_cli(
        capsys, "generate", "--demo", "--output=~/demo", "--no-progress", *small
    )

    assert code == 0
    assert out.strip() == (
        f"wrote 2 samples (0 anomalous, mean area 0.0 px, mean peak rise 0.00 K) "
        f"to {tmp_path / 'home' / 'demo'}"
    )
    assert (tmp_path / "home" / "demo" / "dataset.h5").is_file()
    assert not (tmp_path / "~").exists()


def test_existing_output_needs_overwrite(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    code, _, err = run_cli(capsys, "generate", "--demo", "-o", str(out))
    assert code == 2
    assert "output already exists" in err
    assert "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


OUTPUT_EXISTS = (
    "output already exists: {}; pass --overwrite to replace it, or choose "
    "another output folder"
)


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize(
    ("option", "typed", "label"),
    [("-o", "out/pv", "-o out/pv"), ("--output", "out #2", "--output 'out #2'")],
)
def test_existing_output_names_option(
    capsys, tmp_path, monkeypatch, option, typed, label
):
    # A --set value would lose " #2" as a YAML comment, but -o keeps it.
    recipe = RECIPES / "flir-pouch-cell.yaml"
    out = tmp_path / typed
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("keep")
    monkeypatch.chdir(tmp_path)

    code, _, err = run_cli(capsys, "generate", str(recipe), option, typed)

    message = f"{label} (recipe {recipe}): " + OUTPUT_EXISTS.format(out.resolve())
    assert_one_line_error(code, err, message)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.usefixtures("data_dir")
def test_existing_output_names_set_item(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    out = tmp_path / "out"
    out.mkdir()

    args = ("--set", f"output.dir={out}")
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    message = f"--set output.dir={out} (recipe {recipe}): " + OUTPUT_EXISTS.format(out)
    assert_one_line_error(code, err, message)


def test_output_option_into_scalar_output_section(capsys, tmp_path, data_dir):
    text = (RECIPES / "flir-pouch-cell.yaml").read_text()
    frames = "pouch-cell-flir-screen/id1_cha_1c"
    text = text.replace(f"../../shared/data/{frames}", str(data_dir / frames))
    text = text.replace("output:\n  dir: ../out/flir-pouch-cell\n", "output: old-out\n")
    recipe = tmp_path / "scalar-output.yaml"
    recipe.write_text(text)

    code, _, err = run_cli(capsys, "generate", str(recipe), "-o", "out/pv")

    message = (
        f"-o out/pv (recipe {recipe}): cannot set output.dir, because key "
        "'output' = 'old-out' is not a mapping; make 'output' a mapping with "
        "keys such as 'dir', or remove it from the recipe"
    )
    assert_one_line_error(code, err, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scalar-output.yaml"]


def test_recipe_or_demo_required(capsys):
    code, _, err = run_cli(capsys, "generate")
    assert_one_line_error(code, err, "give a recipe file or --demo")


def test_recipe_and_demo_rejected(capsys):
    code, _, err = run_cli(capsys, "preview", "--demo", "recipe.yaml")
    assert_one_line_error(code, err, "give a recipe file or --demo, not both")


@pytest.mark.parametrize("command", ["generate", "preview"])
def test_image_as_recipe_one_line(command, capsys, tmp_path, data_dir):
    image = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"
    code, _, err = run_cli(capsys, command, str(image), "-o", str(tmp_path / "out"))
    message = (
        f"{image} is not a YAML recipe because it is not UTF-8 text (byte 0 is "
        "invalid), so it may be an image or another binary file; give the path "
        "of a YAML recipe, such as those in recipes/, and name the frames in its "
        "frames.path key"
    )
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


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
    code, out, _ = run_cli(
        capsys, "preview", "--demo", "-n", "5", "-o", str(png), *small
    )
    assert code == 0
    assert out.strip().endswith(
        f"wrote preview of 2 samples to {png} (-n 5 requested more, but the "
        "recipe's split has 2 anomalous; raise split.test_anomalous with --set "
        "for more)"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli(
        capsys, "preview", "--demo", "-n", "2", "-o", str(png), *small
    )
    assert code == 2
    assert "already exists" in err


@pytest.mark.parametrize(
    "command", [["generate", "--demo", "--no-progress"], ["preview", "--demo"]]
)
def test_output_under_a_file_rejected(capsys, tmp_path, command):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder would go")
    target = blocker / "sub" / ("p.png" if command[0] == "preview" else "out")

    code, _, err = run_cli(capsys, *command, "-o", str(target))

    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert f"{blocker} is a file, not a folder" in err
    assert blocker.read_text() == "a file where a folder would go"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_generate_into_file_rejected(capsys, tmp_path, overwrite):
    afile = tmp_path / "afile"
    afile.write_text("important")

    code, _, err = run_cli(
        capsys, "generate", "--demo", "--no-progress", "-o", str(afile), *overwrite
    )

    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert f"output path {afile} is a file" in err
    assert "choose a folder path" in err
    assert afile.read_text() == "important"


def test_generate_empty_output_is_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--demo", "--no-progress", "-o", ""])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "thermosynth generate: error: argument -o/--output: the output folder is "
        "empty; give a folder path, such as out/pv; see 'thermosynth generate "
        "--help'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_generate_into_dangling_link_rejected(capsys, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "missing" / "place")

    code, _, err = run_cli(
        capsys, "generate", "--demo", "--no-progress", "-o", str(link)
    )

    assert_one_line_error(
        code,
        err,
        f"output path {link} is a symbolic link to {tmp_path}/missing/place, "
        "which does not exist; remove the link or choose another output folder",
    )
    assert not (tmp_path / "missing").exists()


def test_generate_while_another_run_holds_lock(capsys, tmp_path):
    from thermosynth.output.atomic import output_lock

    out = tmp_path / "out"
    with output_lock(out):
        code, _, err = run_cli(
            capsys, "generate", "--demo", "--no-progress", "-o", str(out)
        )

    assert_one_line_error(
        code,
        err,
        f"another run is writing the output {out} (it has locked "
        f"{tmp_path}/.out.lock); wait for it to finish, or choose another "
        "output folder",
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux procfs")
def test_generate_into_proc_one_line(capsys):
    code, _, err = run_cli(
        capsys, "generate", "--demo", "--no-progress", "-o", "/proc/x"
    )

    assert code == 2
    assert err.startswith("thermosynth: error: cannot write the output /proc/x: ")
    assert err.endswith(
        "; choose an output folder on a writable disk where you may create files\n"
    )
    assert "Traceback" not in err


def test_generate_into_unwritable_folder_one_line(capsys, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        # As for a parent folder without write permission, which root ignores.
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    out = locked / "out"
    code, _, err = run_cli(
        capsys, "generate", "--demo", "--no-progress", "-o", str(out)
    )

    assert_one_line_error(
        code,
        err,
        f"cannot write the output {out}: {locked}: Permission denied; choose an "
        "output folder on a writable disk where you may create files",
    )


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_preview_into_folder_rejected(capsys, tmp_path, overwrite):
    folder = tmp_path / "p.png"
    folder.mkdir()

    code, _, err = run_cli(capsys, "preview", "--demo", "-o", str(folder), *overwrite)

    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert f"{folder} is a folder; give a file path" in err
    assert folder.is_dir()


def test_preview_without_anomalies_rejected(capsys, tmp_path):
    png = tmp_path / "p.png"
    code, _, err = run_cli(
        capsys, "preview", "--demo", "-o", str(png), "--set", "split.test_anomalous=0"
    )

    message = (
        "--set split.test_anomalous=0 (recipe <demo>): the recipe plans no "
        "anomalous sample to preview; raise split.test_anomalous to 1 or more"
    )
    assert_one_line_error(code, err, message)
    assert not png.exists()


def test_preview_rejects_other_suffix(capsys, tmp_path):
    code, _, err = run_cli(capsys, "preview", "--demo", "-o", str(tmp_path / "p.jpg"))

    assert code == 2
    assert "does not end in .png" in err
    assert not (tmp_path / "p.jpg").exists()


def test_console_script_runs_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "thermosynth",
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
    assert "h_top_W_m2K" in (out / "materials.yaml").read_text()
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"


WINDOW_ERRORS = [
    (
        ("--start-s", "100", "--stop-s", "100"),
        "--start-s 100 --stop-s 100 selects 1 frame (100 s), but the fit needs at "
        "least 2 frames to see the surface change over time; the frames span "
        "0..976 s, so give --start-s and --stop-s that take at least 2 frames "
        "within that span",
    ),
    (
        ("--start-s", "976"),
        "--start-s 976 selects 1 frame (976 s), but the fit needs at least 2 "
        "frames to see the surface change over time; the frames span 0..976 s, "
        "so move --start-s earlier so that the window takes at least 2 frames",
    ),
    (
        ("--start-s", "500", "--stop-s", "400"),
        "--start-s 500 --stop-s 400 selects no frame; the frames span 0..976 s, "
        "so give --start-s below --stop-s, within that span",
    ),
]


@pytest.mark.parametrize(("window", "message"), WINDOW_ERRORS)
def test_calibrate_window_names_options(capsys, tmp_path, data_dir, window, message):
    folder = str(data_dir / "pouch-cell-heater-ir")
    out = tmp_path / "cal"
    code, stdout, err = run_cli(capsys, "calibrate", folder, "-o", str(out), *window)
    assert_one_line_error(code, err, message)
    assert stdout == ""
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_calibrate_poorly_determined_writes_nothing(capsys, tmp_path, data_dir):
    folder = str(data_dir / "pouch-cell-heater-ir")
    out = tmp_path / "cal"
    grid = ("--cell-mm", "10", "--n-layers", "6")
    window = ("--start-s", "100", "--stop-s", "102")
    code, _, err = run_cli(capsys, "calibrate", folder, "-o", str(out), *grid, *window)
    assert code == 2
    assert err.count("\n") == 1
    assert "h_top_W_m2K = " in err
    assert "poorly determined" in err
    assert "in the window 100..102 s with 19 x 15 modes" in err
    assert list(tmp_path.iterdir()) == []


def test_calibrate_missing_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "calibrate", str(tmp_path / "none"))
    assert code == 2
    assert str(tmp_path / "none") in err


def test_level_frames_need_scale_before_work(capsys, tmp_path, data_dir):
    recipe = str(RECIPES / "pv-module-hotspots.yaml")
    out = tmp_path / "out"
    args = ("--set", "camera.levels_per_kelvin=null", "-o", str(out), "--no-progress")
    code, _, err = run_cli(capsys, "generate", recipe, *args)
    assert code == 2
    assert "set camera.levels_per_kelvin [level K-1]" in err
    assert list(tmp_path.iterdir()) == []


def assert_one_line_error(code: int, err: str, message: str) -> None:
    assert code == 2
    assert err == f"thermosynth: error: {message}\n"
    assert "Traceback" not in err


def test_verbose_counts_before_and_after_command(capsys, monkeypatch, tmp_path):
    counts = []
    monkeypatch.setattr("thermosynth.cli._configure_logging", counts.append)
    args = ("-v", "generate", "--demo", "-vv", "--set", "seed=-1")
    code, _, _ = run_cli(capsys, *args, "-o", str(tmp_path / "out"))
    assert code == 2
    assert counts == [3]


def test_verbose_after_validate_check(capsys, monkeypatch, tmp_path):
    counts = []
    monkeypatch.setattr("thermosynth.cli._configure_logging", counts.append)
    folder = str(tmp_path)
    args = ("validate", "-v", "closeness", "-v", "--normal", folder)
    code, _, _ = run_cli(capsys, *args, "--pseudo", folder, "-o", folder)
    assert code == 2
    assert counts == [2]


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_keeps_third_party_at_warning(verbose):
    from thermosynth.cli import THIRD_PARTY_LOGGERS, _configure_logging

    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        _configure_logging(verbose)
        for logger in loggers:
            assert logger.level == logging.WARNING, logger.name
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def test_layout_unknown_key_names_recipe(capsys, tmp_path):
    args = ("--set", "layout.widht_mm=10", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    message = (
        "--set layout.widht_mm=10 (recipe <demo>): unknown key 'layout.widht_mm' "
        "for layout kind 'pouch_cell'; did "
        "you mean 'width_mm'? Valid keys: kind, resolution_mm, width_mm, "
        "height_mm, thickness_mm, tab_width_mm, tab_length_mm, tab_centres_mm"
    )
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


ROWS_0_LAYOUT = (
    "{kind: cell_grid, rows: 0, cols: 3, resolution_mm: 2, cell_width_mm: 10, "
    "cell_height_mm: 20, gap_mm: 1, thickness_mm: 3}"
)
ROWS_0 = "key 'layout': rows = 0 is invalid; it must be a positive integer"


def demo_recipe_file(tmp_path: Path, **sections: object) -> Path:
    """Write the demo recipe with whole sections replaced, as recipe.yaml."""
    data = yaml.safe_load(load_demo_recipe().text)
    data.update(sections)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_layout_bad_value_names_set(capsys, tmp_path):
    args = ("--set", f"layout={ROWS_0_LAYOUT}", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    message = f"--set layout={ROWS_0_LAYOUT} (recipe <demo>): {ROWS_0}"
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_layout_bad_subkey_names_set(capsys, tmp_path):
    recipe = demo_recipe_file(tmp_path, layout=yaml.safe_load(ROWS_0_LAYOUT))
    args = ("--set", "layout.rows=0", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)
    assert_one_line_error(code, err, f"--set layout.rows=0 (recipe {recipe}): {ROWS_0}")


def test_layout_bad_value_in_file_names_file(capsys, tmp_path):
    recipe = demo_recipe_file(tmp_path, layout=yaml.safe_load(ROWS_0_LAYOUT))
    args = ("--set", "layout.cols=2", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)
    assert_one_line_error(code, err, f"{recipe}: {ROWS_0}")
    assert not (tmp_path / "out").exists()


def bmp_pattern_frames(tmp_path: Path) -> dict[str, str]:
    """Return a frames section whose folder contains one PNG, read as '*.bmp'."""
    folder = tmp_path / "frames"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), np.zeros((24, 32), np.uint16))
    return {"kind": "images", "path": str(folder), "pattern": "*.bmp", "unit": "K"}


def no_bmp_message(tmp_path: Path) -> str:
    return (
        "key 'frames.pattern': no files match '*.bmp' in the frames.path folder "
        f"{tmp_path / 'frames'}, which contains 1 '*.png' files; set "
        "frames.pattern to match the frame files, or frames.path to their folder"
    )


def test_pattern_set_names_set(capsys, tmp_path):
    frames = {**bmp_pattern_frames(tmp_path), "pattern": "*.png"}
    recipe = demo_recipe_file(tmp_path, frames=frames)
    args = ("--set", "frames.pattern=*.bmp", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)
    message = (
        f"--set frames.pattern=*.bmp (recipe {recipe}): {no_bmp_message(tmp_path)}"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_pattern_in_file_names_file(capsys, tmp_path):
    recipe = demo_recipe_file(tmp_path, frames=bmp_pattern_frames(tmp_path))
    args = ("--set", "frames.unit=C", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)
    assert_one_line_error(code, err, f"{recipe}: {no_bmp_message(tmp_path)}")


SPLIT_30 = (
    "split asks for 30 training and 6 test normal frames but the source has only "
    "24; lower split.train_normal or split.test_normal"
)


def test_split_count_names_set(capsys, tmp_path):
    args = ("--set", "split.train_normal=30", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    message = f"--set split.train_normal=30 (recipe <demo>): {SPLIT_30}"
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_split_counts_name_both_sets(capsys, tmp_path):
    sets = ("--set", "split.train_normal=20", "--set", "split.test_normal=5")
    args = (*sets, "--set", "seed=3", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    message = (
        "--set split.train_normal=20, --set split.test_normal=5 (recipe <demo>): "
        "split asks for 20 training and 5 test normal frames but the source has "
        "only 24; lower split.train_normal or split.test_normal"
    )
    assert_one_line_error(code, err, message)


def test_split_count_in_file_names_file(capsys, tmp_path):
    split = {"train_normal": 30, "test_normal": 6, "test_anomalous": 8}
    recipe = demo_recipe_file(tmp_path, split=split)
    args = ("--set", "split.test_anomalous=2", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", str(recipe), *args)
    assert_one_line_error(code, err, f"{recipe}: {SPLIT_30}")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("thin", "'thin'"), ("{uniform: [1, 2]}", "{'uniform': [1, 2]}")],
)
def test_layout_value_of_wrong_type_names_key(capsys, tmp_path, value, shown):
    args = ("--set", f"layout.thickness_mm={value}", "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    message = (
        f"--set layout.thickness_mm={value} (recipe <demo>): key "
        f"'layout.thickness_mm' = {shown} is invalid for layout kind "
        "'pouch_cell'; give a number, such as 0.8 (layout keys take one value, "
        "not a distribution)"
    )
    assert_one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_mask_layout_builds_from_recipe(tmp_path):
    # Two 20 x 30 px cells with a 10 px gap, on a 50 x 40 mm mask.
    mask = np.zeros((40, 50), np.uint8)
    mask[5:35, 5:25] = mask[5:35, 30:45] = 255
    cv2.imwrite(str(tmp_path / "cells.png"), mask)
    layout = (
        f"layout={{kind: mask, path: {tmp_path / 'cells.png'}, resolution_mm: 1, "
        "width_mm: 50, height_mm: 40, thickness_mm: 5}"
    )
    built = build_layout(load_demo_recipe(overrides=[layout]).recipe.layout, {})

    assert built.shape == (40, 50)
    np.testing.assert_array_equal(built.cell_id >= 0, mask > 0)
    assert built.cell_id.max() == 1


def test_mask_layout_bad_path_names_recipe_key():
    layout = (
        "layout={kind: mask, path: [1, 2], resolution_mm: 1, width_mm: 50, "
        "height_mm: 40, thickness_mm: 5}"
    )
    message = (
        r"^--set layout=\{kind: mask, .*\} \(recipe <demo>\): key 'layout\.path' = "
        r"\[1, 2\] is invalid; give the mask"
    )

    with pytest.raises(RecipeError, match=message):
        load_demo_recipe(overrides=[layout])


def test_layout_number_text_becomes_number():
    spec = load_demo_recipe().recipe.layout
    thin = spec.model_copy(update={"thickness_mm": "1e-3"})  # YAML 1.1 text
    flag = spec.model_copy(update={"thickness_mm": True})

    assert build_layout(thin, {}).thickness_mm == 0.001
    with pytest.raises(RecipeError, match="'layout.thickness_mm' = True is invalid"):
        build_layout(flag, {})


def test_calibrate_existing_output_names_flag(capsys, tmp_path):
    out = tmp_path / "calibration"
    out.mkdir()
    measurement = str(tmp_path / "measurement")
    code, _, err = run_cli(capsys, "calibrate", measurement, "-o", str(out))
    message = (
        f"output already exists: {out}; pass --overwrite to replace it, or "
        "choose another output folder"
    )
    assert_one_line_error(code, err, message)


def test_closeness_existing_output_names_flag(capsys, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    folder = str(tmp_path / "frames")
    args = ("--normal", folder, "--pseudo", folder, "-o", str(report))
    code, _, err = run_cli(capsys, "validate", "closeness", *args)
    message = (
        f"output already exists: {report}; pass --overwrite to replace it, or "
        "choose another output folder"
    )
    assert_one_line_error(code, err, message)


def test_closeness_file_as_set_named(capsys, tmp_path, data_dir):
    folder = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c"
    image = folder / "1211.png"
    args = ("--normal", str(folder), "--pseudo", str(image))
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    message = (
        f"cannot load the pseudo set: {image} is a file, but a frame set is a "
        "thermosynth dataset.h5 (or the output folder that contains it), an MVTec "
        "folder tree, a folder of images or .npy files, or one .npy file of (N, "
        "H, W) frames; give one of those"
    )
    assert_one_line_error(code, err, message)


def test_closeness_mixed_units_one_line(capsys, tmp_path, data_dir):
    folder = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c"
    normal = load_frame_set(folder)
    dataset = tmp_path / "dataset.h5"
    with h5py.File(dataset, "w") as file:
        file["frames"] = normal.values[:8] * 0.1 + 20.0
        file["labels"] = np.ones(8, np.uint8)
        file.attrs["frame_unit"] = "C"
    args = ("--normal", str(folder), "--pseudo", str(dataset), "--no-write-back")
    args += ("--epochs", "1", "--permutations", "20")
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    message = (
        f"pseudo frames from {dataset} are in C but normal frames from {folder} are "
        "in luminance level, so contrasts and distances between them would mix "
        "units. Give both sets in one unit: colour frames, such as palette "
        "renders, are compared by their luminance, which no scale per level "
        "turns into a temperature, so give both sets as colour frames or both "
        "in one unit of temperature"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "r").exists()


def _write_kelvin_pseudo(path: Path, rng: np.random.Generator) -> None:
    """Write 6 anomalous 16 x 12 px frames near 298 K with a 3 K hot square."""
    frames = 298.0 + rng.normal(scale=0.05, size=(6, 16, 12))
    masks = np.zeros(frames.shape, np.uint8)
    masks[:, 6:9, 4:7] = 1
    frames[masks == 1] += 3.0
    with h5py.File(path, "w") as file:
        file["frames"] = frames
        file["masks"] = masks
        file["labels"] = np.ones(6, np.uint8)
        file.attrs["frame_unit"] = "K"


def test_closeness_npy_stack_with_normal_scale(capsys, tmp_path):
    rng = np.random.default_rng(7)
    levels = np.rint(29800 + rng.normal(scale=5.0, size=(12, 16, 12)))
    stack = tmp_path / "normal.npy"
    np.save(stack, levels.astype(np.uint16))
    dataset = tmp_path / "dataset.h5"
    _write_kelvin_pseudo(dataset, rng)
    args = ("--normal", str(stack), "--pseudo", str(dataset), "--no-write-back")
    args += ("--epochs", "1", "--permutations", "20", "-o", str(tmp_path / "r"))

    code, _, err = run_cli(capsys, "validate", "closeness", *args)
    assert_one_line_error(
        code,
        err,
        f"pseudo frames from {dataset} are in K but normal frames from {stack} "
        "are in level, so contrasts and distances between them would mix units. "
        "Give both sets in one unit: decode the normal levels with their "
        "calibration, --normal-scale K_PER_LEVEL and --normal-offset K on the "
        "command line (FrameSet.decoded in Python), or give a thermosynth "
        "dataset.h5 or output folder, whose normal samples are decoded to its "
        "frame unit",
    )

    code, out, _ = run_cli(
        capsys, "validate", "closeness", *args, "--normal-scale", "0.01"
    )
    report = (tmp_path / "r" / "report.md").read_text()
    assert code == 0
    assert out.startswith(f"wrote closeness report to {tmp_path / 'r'}/report.md")
    assert f"| normal | 6 | K | {stack} |" in report


def test_closeness_float_stack_labelled_kelvin(capsys, tmp_path, caplog):
    rng = np.random.default_rng(8)
    stack = tmp_path / "normal.npy"
    np.save(stack, 298.0 + rng.normal(scale=0.05, size=(12, 16, 12)))
    dataset = tmp_path / "dataset.h5"
    _write_kelvin_pseudo(dataset, rng)
    args = ("--normal", str(stack), "--pseudo", str(dataset), "--no-write-back")
    args += ("--epochs", "1", "--permutations", "20", "-o", str(tmp_path / "r"))

    with caplog.at_level(logging.WARNING):
        code, _, _ = run_cli(
            capsys, "validate", "closeness", *args, "--normal-unit", "K"
        )
    report = (tmp_path / "r" / "report.md").read_text()

    assert code == 0
    assert f"| normal | 6 | K | {stack} |" in report
    assert not [r for r in caplog.records if "normal frames in value" in r.getMessage()]


def test_closeness_unit_label_rejected_on_levels(capsys, tmp_path):
    stack = tmp_path / "normal.npy"
    np.save(stack, np.full((12, 16, 12), 29800, np.uint16))
    args = ("--normal", str(stack), "--pseudo", str(stack), "--normal-unit", "K")

    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )

    assert_one_line_error(
        code,
        err,
        f"frames from {stack} are in level already, so a unit label does not "
        "apply to them; give it only for frames that record no unit (a float "
        ".npy stack or float images)",
    )


def test_closeness_normal_offset_needs_scale(capsys, tmp_path):
    folder = str(tmp_path / "frames")
    args = ("--normal", folder, "--pseudo", folder, "--normal-offset", "-40")
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    message = (
        "--normal-offset -40 was given without --normal-scale; give the scale in "
        "K per level as well"
    )
    assert_one_line_error(code, err, message)


def test_closeness_rejects_scale_of_kelvin_set(capsys, tmp_path):
    dataset = tmp_path / "dataset.h5"
    _write_kelvin_pseudo(dataset, np.random.default_rng(8))
    args = ("--normal", str(dataset), "--pseudo", str(dataset))
    args += ("--normal-scale", "0.01", "-o", str(tmp_path / "r"))
    with h5py.File(dataset, "a") as file:
        file["labels"][:3] = 0

    code, _, err = run_cli(capsys, "validate", "closeness", *args)
    message = (
        f"frames from {dataset} are in K, not in stored integer levels, so a "
        "scale per level does not apply to them; give the scale and offset only "
        "for a folder of integer images or an integer .npy stack"
    )
    assert_one_line_error(code, err, message)


def test_closeness_train_folder_not_good(capsys, tmp_path, data_dir):
    images = data_dir / "pv-modules-raptormaps" / "images"
    tree = tmp_path / "modules"
    for folder, stems in (("train/ok", ("0", "1")), ("test/good", ("2",))):
        (tree / folder).mkdir(parents=True)
        for stem in stems:
            (tree / folder / f"{stem}.jpg").write_bytes(
                (images / f"{stem}.jpg").read_bytes()
            )
    args = ("--normal", str(tree), "--pseudo", str(tree), "--no-write-back")
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    message = (
        f"cannot load the normal set: {tree / 'train'} contains the folder 'ok', "
        "but train/ of an MVTec tree may contain only 'good', the normal training "
        f"frames; move normal frames to {tree / 'train' / 'good'} and anomalous "
        f"ones to {tree / 'test'}/<kind>"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option", ["--permutations", "--epochs"])
def test_closeness_rejects_count_below_one(capsys, tmp_path, option):
    folder = str(tmp_path / "frames")
    args = ("--normal", folder, "--pseudo", folder, option, "0")
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    assert_one_line_error(code, err, f"{option} 0 is invalid; give 1 or more")
    assert not (tmp_path / "r").exists()


def test_where_without_metadata_names_flag(capsys, tmp_path):
    (tmp_path / "frames").mkdir()
    folder = str(tmp_path / "frames")
    args = ("--normal", folder, "--pseudo", folder, "--normal-where", "a=b")
    code, _, err = run_cli(
        capsys, "validate", "closeness", *args, "-o", str(tmp_path / "r")
    )
    message = (
        f"cannot load the normal set: --normal-where a=b was given for "
        f"{folder} without a metadata JSON file; pass --metadata as well, a "
        "JSON file whose records give each file's path under 'image_filepath'"
    )
    assert_one_line_error(code, err, message)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "scenarios.0.kind=hotpsot",
            "--set scenarios.0.kind=hotpsot (recipe <demo>): unknown kind 'hotpsot' "
            "at key 'scenarios.0.kind'; did you mean "
            "'hotspot'? Valid kinds: hotspot, joule, held_patch, runaway",
        ),
        (
            "scenarios.0.power_W={loguniform: [-5, 3]}",
            "--set scenarios.0.power_W={loguniform: [-5, 3]} (recipe <demo>): key "
            "'scenarios.0.power_W' = {'loguniform': [-5, 3]} is invalid: "
            "loguniform bounds must satisfy 0 < low <= high, got -5.0, 3.0; write a "
            "number or one of {uniform: [low, high]}, {loguniform: [low, high]}, "
            "{normal: [mean, std]}, {choice: [a, b, ...]}",
        ),
    ],
)
def test_recipe_errors_one_line(override, message, capsys, tmp_path):
    args = ("--set", override, "-o", str(tmp_path / "out"))
    code, _, err = run_cli(capsys, "generate", "--demo", *args)
    assert_one_line_error(code, err, message)


BASE_RECIPE = """\
frames: {kind: synthetic, n_frames: 4}
layout: {kind: pouch_cell, resolution_mm: 2.0}
camera: {emissivity_surface: 0.95}
physics: {ambient_C: 25}
scenarios:
  - {kind: hotspot, name: spot, power_W: 1.0, radius_mm: 3.0}
"""

SET_ERRORS = [
    (
        "scenario.0.power_W=3",
        "unknown key 'scenario'; did you mean 'scenarios'? Valid keys here: seed, "
        "frames, layout, materials, registration, physics, scenarios, camera, "
        "blend, split, output, bank, sequence",
    ),
    (
        "camera.emissivity_surface=95",
        "key 'camera.emissivity_surface' = 95 is invalid: it should be less than or "
        "equal to 1; fix it in the recipe or with --set camera.emissivity_surface=...",
    ),
    (
        "split.test_anomalous=abc",
        "key 'split.test_anomalous' = 'abc' is invalid: it should be a valid "
        "integer, unable to parse string as an integer; fix it in the recipe or "
        "with --set split.test_anomalous=...",
    ),
    (
        "physics.ambient_C='25 C'",
        "key 'physics.ambient_C' = '25 C' is invalid: it should be a valid number, "
        "unable to parse string as a number; fix it in the recipe or with --set "
        "physics.ambient_C=...",
    ),
    (
        "physics.ambient_C==25",
        "key 'physics.ambient_C' = '=25' is invalid: it should be a valid number, "
        "unable to parse string as a number; fix it in the recipe or with --set "
        "physics.ambient_C=...",
    ),
    (
        "scenarios.0.power_W=3 W",
        "key 'scenarios.0.power_W' = '3 W' is invalid: it is neither a number nor a "
        "one-key distribution mapping; write a number or one of {uniform: [low, "
        "high]}, {loguniform: [low, high]}, {normal: [mean, std]}, {choice: [a, b, "
        "...]}",
    ),
    (
        "scenarios.spot.power_W=-1",
        "key 'scenarios.spot.power_W' = -1 is invalid: power_W must be positive, but "
        "its lowest value is -1.0; fix it in the recipe or with --set "
        "scenarios.spot.power_W=...",
    ),
]


@pytest.mark.parametrize(("override", "problem"), SET_ERRORS)
def test_set_error_names_the_set(override, problem, capsys, tmp_path):
    recipe = tmp_path / "base.yaml"
    recipe.write_text(BASE_RECIPE)
    args = ("--set", override, "-o", str(tmp_path / "out"))

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    assert_one_line_error(code, err, f"--set {override} (recipe {recipe}): {problem}")
    assert not (tmp_path / "out").exists()


def test_file_error_names_only_the_file(capsys, tmp_path):
    recipe = tmp_path / "base.yaml"
    recipe.write_text(BASE_RECIPE.replace("0.95", "95"))
    args = ("--set", "camera.emissivity_setting=0.9", "--set", "physics.ambient_C=30")

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    message = (
        f"{recipe}: key 'camera.emissivity_surface' = 95 is invalid: it should be "
        "less than or equal to 1; fix it in the recipe or with --set "
        "camera.emissivity_surface=..."
    )
    assert_one_line_error(code, err, message)


CAM1_MASK = "{data}/battery-station-inferno/camera_masks/MASK_CAM1_thermal.png"
FRAME = r"\S+\.(png|jpg)"

# Errors raised after the recipe loads, each caused by one --set item: the
# recipe (None runs --demo), that item, other --set items applied before it,
# and a pattern that the problem after the blame starts with. "{data}" in an
# item stands for ../shared/data.
POST_LOAD_SET_ERRORS = [
    (
        None,
        "scenarios.0.where=nowhere",
        (),
        r"scenario region 'nowhere' does not exist in layout 'pouch_cell'; ",
    ),
    (
        None,
        "scenarios.1.region=nowhere",
        ("split.test_anomalous=0",),
        r"scenario region 'nowhere' does not exist in layout 'pouch_cell'; ",
    ),
    (
        None,
        "camera.reflected_C=-500",
        (),
        r"camera\.reflected_C = -500\.0 is invalid; give a temperature \[C\]",
    ),
    (
        None,
        "camera.emissivity_regions.nowhere=0.5",
        (),
        r"camera\.emissivity_regions names region 'nowhere', which layout ",
    ),
    (
        None,
        "physics.emissivity_top_regions={nowhere: 0.5}",
        (),
        r"physics\.emissivity_top_regions names region 'nowhere', which layout ",
    ),
    (
        None,
        "materials.cell.base=nosuch",
        (),
        r"material 'cell': base = 'nosuch' is not a known material; ",
    ),
    (
        None,
        "materials.cell.k_z_W_mK=-1",
        (),
        r"material 'cell': k_z_W_mK = -1 is invalid; ",
    ),
    (
        None,
        "blend.threshold=1000",
        ("blend.max_tries=1",),
        r"sample \d+ \(\S+\): in 1 draws no anomaly covered blend\.min_area_px",
    ),
    (
        None,
        "blend.min_area_px=100000",
        (),
        r"blend\.min_area_px = 100000 exceeds the \d+ pixels that blending may",
    ),
    (
        "flir-pouch-cell.yaml",
        "frames.colorbar.y_px=[30, 250]",
        (),
        r"key 'frames\.colorbar\.y_px' = \[30, 250\] \[px\] lies outside frame ",
    ),
    (
        "flir-pouch-cell.yaml",
        "frames.ignore_rects=[[0, 0, 320, 240]]",
        (),
        rf"{FRAME} has no valid pixel \(inside the region of interest, ",
    ),
    (
        "flir-pouch-cell.yaml",
        f"frames.valid_mask={CAM1_MASK}",
        (),
        r"key 'frames\.valid_mask': mask \S+ is 60 x 80 px \(height x width\) "
        r"but frame ",
    ),
    (
        "battery-station-inferno.yaml",
        "frames.palette=infernoo",
        (),
        r"unknown palette 'infernoo' \(frames\.palette\); did you mean 'inferno'\?",
    ),
    (
        "battery-station-inferno.yaml",
        "frames.unit=C",
        (),
        r"frames\.unit is 'C', so frames\.value_range must give the values \[C\] "
        r"of the palette's bottom and top colours, as value_range: \[low, high\]; "
        r"add it, or set frames\.unit: level",
    ),
    (
        "battery-station-inferno.yaml",
        f"frames.valid_mask={{CAMX: {CAM1_MASK}}}",
        (),
        rf"frame {FRAME}: exactly one mask key of \['CAMX'\] must occur in its ",
    ),
    (
        "pv-module-hotspots.yaml",
        "frames.select.where={anomaly_class: Nope}",
        (),
        r"\S+/module_metadata\.json: no record matches \{'anomaly_class': 'Nope'\}",
    ),
    (
        "pv-module-hotspots.yaml",
        "frames.mode=palette",
        ("frames.palette=inferno",),
        rf"mode 'palette' needs 8-bit RGB images, but {FRAME} is uint8 with shape ",
    ),
    (
        "module-growing-hotspot-sequence.yaml",
        "bank.mode=reuse",
        (),
        r"bank\.mode = 'reuse' does not work with sequences, because a bank ",
    ),
]


@pytest.mark.parametrize(("recipe", "item", "others", "problem"), POST_LOAD_SET_ERRORS)
def test_post_load_error_names_the_set(
    recipe, item, others, problem, capsys, tmp_path, data_dir
):
    source = "<demo>" if recipe is None else str(RECIPES / recipe)
    item = item.replace("{data}", str(data_dir))
    args = ["--demo"] if recipe is None else [source]
    for entry in (*others, item):
        args += ["--set", entry]

    out = ("-o", str(tmp_path / "out"), "--no-progress")
    code, _, err = run_cli(capsys, "generate", *args, *out)

    blame = f"thermosynth: error: --set {item} (recipe {source}): "
    assert code == 2
    assert err.startswith(blame), err
    assert re.match(problem, err.removeprefix(blame)), err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_post_load_error_in_file_names_file(capsys, tmp_path):
    scenarios = yaml.safe_load(load_demo_recipe().text)["scenarios"]
    scenarios[0]["where"] = "nowhere"
    recipe = demo_recipe_file(tmp_path, scenarios=scenarios)
    args = ("--set", "scenarios.0.power_W=2", "-o", str(tmp_path / "out"))

    code, _, err = run_cli(capsys, "generate", str(recipe), *args)

    message = (
        f"{recipe}: scenario region 'nowhere' does not exist in layout "
        "'pouch_cell'; choose one of: cells, any, background, tab_negative, "
        "tab_positive, tabs"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_glob_override_reaches_frames(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    frames = tmp_path / "frames"
    frames.mkdir()
    args = ("--set", f"frames.path={frames}", "--set", "frames.pattern=*.bmp")
    code, _, err = run_cli(
        capsys, "generate", str(recipe), *args, "-o", str(tmp_path / "out")
    )
    assert code == 2
    assert "'*.bmp'" in err
    assert "alias" not in err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["validate", "transfer", "--help"])

    assert excinfo.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "training normals at most (default: 2500)" in text
    assert "seed of every draw (default: 0)" in text
    assert "(default: [])" not in text
    assert "(default: None)" not in text


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        (["generate"], "write dataset.h5"),
        (["preview"], "Draw a few of the recipe's samples"),
        (["calibrate"], "calibration.json"),
        (["validate"], "Each writes a report folder"),
        (["validate", "closeness"], "Writes report.md"),
        (["validate", "transfer"], "Writes report.md"),
    ],
)
def test_help_has_description(capsys, command, phrase):
    with pytest.raises(SystemExit) as excinfo:
        main([*command, "--help"])

    assert excinfo.value.code == 0
    blocks = capsys.readouterr().out.split("\n\n")
    # argparse prints the description between the usage and the arguments.
    assert blocks[0].startswith("usage: thermosynth ")
    assert not blocks[1].startswith(("positional arguments:", "options:"))
    assert phrase in " ".join(blocks[1].split())


def test_calibrate_help_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "end of the fitted window [s] (default: the last frame)" in text
    assert "start of the fitted window [s] (default: 30.0)" in text
    assert "(default: None)" not in text


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["generate", "--demo", "--workers", "x"], "thermosynth generate"),
        (["validate", "transfer", "--members", "1.5"], "thermosynth validate transfer"),
        (["frobnicate"], "thermosynth"),
    ],
)
def test_argparse_error_is_one_line(capsys, argv, prog):
    with pytest.raises(SystemExit) as excinfo:
        main(argv)

    err = capsys.readouterr().err
    assert excinfo.value.code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"{prog}: error: ")
    assert err.endswith(f"see '{prog} --help'\n")


def test_metres_as_resolution_rejected_exit_2(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys,
        *("generate", "--demo", "-o", str(out)),
        *("--set", "layout.resolution_mm=0.003", "--set", "physics.n_layers=3"),
    )

    assert code == 2
    assert err.startswith(
        "thermosynth: error: --set layout.resolution_mm=0.003, --set "
        "physics.n_layers=3 (recipe <demo>): key 'layout.resolution_mm' = 0.003 "
        "gives a grid of 26667 x 33333 x 3 layers = 2.67e+09 cells, which needs about "
        "1.27e+04 GiB, more than this machine's memory holds ("
    )
    assert err.endswith(
        " cells); resolution_mm is in millimetres, not metres, so raise it or "
        "lower physics.n_layers\n"
    )
    assert not out.exists()


def grid_layouts(tmp_path: Path) -> dict[str, str]:
    """Return a recipe layout of each kind, without its resolution_mm."""
    mask = np.zeros((40, 50), np.uint8)
    mask[5:35, 5:25] = 255
    cv2.imwrite(str(tmp_path / "cells.png"), mask)
    return {
        "pouch_cell": "kind: pouch_cell, width_mm: 100, height_mm: 70, "
        "thickness_mm: 6, tab_width_mm: 16, tab_length_mm: 10",
        "prismatic_cell": "kind: prismatic_cell, width_mm: 150, height_mm: 100, "
        "thickness_mm: 27, terminal_width_mm: 20, terminal_height_mm: 12, "
        "terminal_inset_mm: 20, casing_mm: 3",
        "cylindrical_array": "kind: cylindrical_array, rows: 3, cols: 4, "
        "diameter_mm: 18, pitch_mm: 20, thickness_mm: 65",
        "module": "kind: module, n_cells: 8, cell_width_mm: 40, "
        "cell_height_mm: 180, thickness_mm: 40, gap_mm: 4",
        "cell_grid": "kind: cell_grid, rows: 10, cols: 6, cell_width_mm: 152, "
        "cell_height_mm: 152, gap_mm: 8, thickness_mm: 4.6",
        "mask": f"kind: mask, path: {tmp_path / 'cells.png'}, width_mm: 50, "
        "height_mm: 40, thickness_mm: 5",
    }


@pytest.mark.parametrize("kind", sorted(LAYOUT_BUILDERS))
def test_grid_size_checked_for_every_kind(kind, tmp_path):
    layout = grid_layouts(tmp_path)[kind]
    fine = load_demo_recipe(overrides=[f"layout={{{layout}, resolution_mm: 0.003}}"])
    coarse = load_demo_recipe(overrides=[f"layout={{{layout}, resolution_mm: 2}}"])

    with pytest.raises(RecipeError, match=r"= 0\.003 gives a grid of \d+ x \d+ x 1 "):
        build_layout(fine.recipe.layout, {})
    assert build_layout(coarse.recipe.layout, {}).shape[0] > 1


def test_grid_size_counts_layers(monkeypatch):
    spec = load_demo_recipe(overrides=["layout.resolution_mm=0.2"]).recipe.layout
    monkeypatch.setattr(layouts, "max_grid_cells", lambda: 500_000)

    assert build_layout(spec, {}, n_layers=1).shape == (400, 500)
    with pytest.raises(RecipeError, match=r"400 x 500 x 3 layers = 6e\+05 cells"):
        build_layout(spec, {}, n_layers=3)


def test_grid_limit_follows_memory():
    memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    assert layouts.max_grid_cells() == memory_bytes // layouts.BYTES_PER_GRID_CELL


def test_closeness_large_real_set_keeps_other_rows(capsys, tmp_path):
    rng = np.random.default_rng(11)
    for name, n in (("normal", 12), ("pseudo", 8), ("real", 30)):
        levels = rng.normal(100.0, 3.0, size=(n, 16, 12))
        if name != "normal":
            levels[:, 6:9, 4:7] += 20.0
        np.save(tmp_path / f"{name}.npy", np.rint(levels).astype(np.uint8))
    args = ["--normal", str(tmp_path / "normal.npy")]
    args += ["--pseudo", str(tmp_path / "pseudo.npy"), "--max-frames", "10"]
    args += ["--epochs", "1", "--permutations", "20", "--no-write-back"]

    assert (
        run_cli(capsys, "validate", "closeness", *args, "-o", str(tmp_path / "a"))[0]
        == 0
    )
    real = ["--real", str(tmp_path / "real.npy"), "-o", str(tmp_path / "b")]
    assert run_cli(capsys, "validate", "closeness", *args, *real)[0] == 0
    without = (tmp_path / "a" / "set_distances.csv").read_text().splitlines()
    with_real = (tmp_path / "b" / "set_distances.csv").read_text().splitlines()

    # The real set is subsampled from 30 to 10 frames from its own stream,
    # so every row without it stays the same.
    assert len(with_real) > len(without)
    assert [r for r in with_real if ",real," not in r] == without


def test_empty_split_names_split_keys(capsys, tmp_path):
    zero = ("split.train_normal=0", "split.test_normal=0", "split.test_anomalous=0")
    args = [arg for item in zero for arg in ("--set", item)]

    code, _, err = run_cli(
        capsys, "generate", "--demo", *args, "-o", str(tmp_path / "o")
    )

    message = (
        "--set split.train_normal=0, --set split.test_normal=0, --set "
        "split.test_anomalous=0 (recipe <demo>): split.train_normal, "
        "split.test_normal and split.test_anomalous are all 0, so there is "
        "nothing to generate; set at least one of them above 0"
    )
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "o").exists()


def test_set_with_space_names_the_form(capsys, tmp_path):
    out = tmp_path / "out"
    args = ["--set", "split.train_normal", "5", "-o", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--demo", *args])
    err = capsys.readouterr().err

    assert exit_info.value.code == 2
    assert err.strip().splitlines() == [
        "thermosynth: error: --set takes KEY=VALUE as one argument, got "
        "'--set split.train_normal'; write --set split.train_normal=VALUE; "
        "see 'thermosynth --help'"
    ]
    assert not out.exists()
