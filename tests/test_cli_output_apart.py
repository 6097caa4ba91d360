"""-o of every command: never an input, around one or inside one, and never empty.

Each input folder here is marked as a thermosynth output, so that --overwrite
would replace it if the check let the command run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import pytest
from transfer_recipes import write_pv_recipe
from trees import read_tree

from thermosynth.cli import main
from thermosynth.output.atomic import MARKER_TEXT, OUTPUT_MARKER

# No-Anomaly modules of the Raptor Maps set, 24 x 40 px.
NORMAL_STEMS = ("13357", "13356", "19719", "11543", "11540", "11541")
HEATER_FILES = ("Exp_E_T11x11_celsius.npy", "Exp.mat", "Th.txt", "Ta.txt")


def _marked_frames(data_dir: Path, folder: Path) -> Path:
    """Write real PV frames as PNGs to ``folder``/good and mark ``folder``."""
    images = data_dir / "pv-modules-raptormaps" / "images"
    (folder / "good").mkdir(parents=True)
    for stem in NORMAL_STEMS:
        image = cv2.imread(str(images / f"{stem}.jpg"), cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(str(folder / "good" / f"{stem}.png"), image)
    (folder / OUTPUT_MARKER).write_text(MARKER_TEXT)
    return folder


def _digest(folder: Path) -> str:
    """Return one SHA-256 over the names and bytes of every file under ``folder``."""
    digest = hashlib.sha256()
    for name, data in read_tree(folder).items():
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()


def _run(capsys, args: list[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def _placed(marked: Path, relation: str, role: str) -> tuple[Path, Path]:
    """Return (input path, -o) for ``relation``: same, contains or inside."""
    if role in ("--metadata", "--recipe"):
        name = "records.json" if role == "--metadata" else "recipe.yaml"
        return marked / name, marked
    if relation == "same":
        return marked, marked
    if relation == "contains":
        return marked / "good", marked
    return marked, marked / "report"


def _expected(relation: str, label: str, source: Path, output: Path) -> str:
    if relation == "same":
        return f"output folder {output} is the {label}; choose another folder"
    if relation == "contains":
        return (
            f"output folder {output} contains the {label} ({source}), which "
            "writing the output could replace; choose a folder that does not "
            "contain it"
        )
    return (
        f"output folder {output} lies inside the {label} ({source}), so the "
        "output would add files to that input; choose a folder outside it"
    )


VALIDATE_CASES = [
    ("closeness", "--normal", "inside"),
    ("closeness", "--pseudo", "same"),
    ("closeness", "--pseudo", "contains"),
    ("closeness", "--real", "same"),
    ("closeness", "--metadata", "contains"),
    ("transfer", "--normal", "same"),
    ("transfer", "--real", "inside"),
    ("transfer", "--metadata", "contains"),
    ("transfer", "--recipe", "contains"),
]


@pytest.mark.parametrize(("check", "role", "relation"), VALIDATE_CASES)
def test_validate_output_apart_from_input(
    capsys, tmp_path, data_dir, check, role, relation
):
    other = _marked_frames(data_dir, tmp_path / "other")
    marked = _marked_frames(data_dir, tmp_path / "marked")
    (marked / "records.json").write_text("[]")
    write_pv_recipe(marked / "good", marked / "recipe.yaml")
    before = _digest(marked)
    source, output = _placed(marked, relation, role)
    first = "--pseudo" if check == "closeness" else "--real"
    inputs = {"--normal": other, first: other, role: source}
    args = ["validate", check, "-o", str(output), "--overwrite"]
    for option, path in inputs.items():
        args += [option, str(path)]

    code, err = _run(capsys, args)

    label = "--recipe file" if role == "--recipe" else f"{role} input"
    message = _expected(relation, label, source, output)
    assert code == 2
    assert err == f"thermosynth: error: {message}\n"
    assert _digest(marked) == before


@pytest.mark.parametrize("relation", ["same", "contains", "inside"])
def test_generate_output_apart_from_frames(capsys, tmp_path, data_dir, relation):
    marked = _marked_frames(data_dir, tmp_path / "marked")
    recipe = write_pv_recipe(marked / "good", tmp_path / "recipe.yaml")
    before = _digest(marked)
    source = marked / "good"
    outputs = {"same": source, "contains": marked, "inside": source / "out"}
    output = outputs[relation]

    args = ["generate", str(recipe), "--no-progress", "-o", str(output)]
    code, err = _run(capsys, [*args, "--overwrite"])

    message = _expected(relation, "frames.path input", source, output)
    assert code == 2
    assert err.count("\n") == 1
    assert err.endswith(f"): {message}\n")
    assert _digest(marked) == before


def test_generate_output_apart_from_bank(capsys, tmp_path, data_dir):
    marked = _marked_frames(data_dir, tmp_path / "marked")
    frames = _marked_frames(data_dir, tmp_path / "frames") / "good"
    recipe = write_pv_recipe(frames, tmp_path / "recipe.yaml")
    bank = marked / "bank.h5"
    bank.write_bytes(b"entries of an earlier run")
    before = _digest(marked)
    options = ("--set", "bank.mode=reuse", "--set", f"bank.path={bank}")

    args = ["generate", str(recipe), *options, "-o", str(marked), "--overwrite"]
    code, err = _run(capsys, args)

    message = _expected("contains", "bank.path input", bank, marked)
    assert code == 2
    assert err.count("\n") == 1
    assert err.endswith(f"): {message}\n")
    assert _digest(marked) == before


def test_preview_output_apart_from_frames(capsys, tmp_path, data_dir):
    marked = _marked_frames(data_dir, tmp_path / "marked")
    recipe = write_pv_recipe(marked / "good", tmp_path / "recipe.yaml")
    frame = marked / "good" / f"{NORMAL_STEMS[0]}.png"
    before = _digest(marked)

    args = ["preview", str(recipe), "-o", str(frame), "--overwrite"]
    code, err = _run(capsys, args)

    message = (
        f"output file {frame} lies inside the frames.path input "
        f"({marked / 'good'}), so the output would add files to that input; "
        "choose a file outside it"
    )
    assert code == 2
    assert err == f"thermosynth: error: {message}\n"
    assert _digest(marked) == before


@pytest.mark.parametrize("relation", ["same", "contains"])
def test_calibrate_output_apart_from_measurement(capsys, tmp_path, data_dir, relation):
    measurement = tmp_path / "outer" / "heater"
    measurement.mkdir(parents=True)
    for name in HEATER_FILES:
        shutil.copy(data_dir / "pouch-cell-heater-ir" / name, measurement)
    for folder in (measurement, measurement.parent):
        (folder / OUTPUT_MARKER).write_text(MARKER_TEXT)
    before = _digest(measurement.parent)
    output = measurement if relation == "same" else measurement.parent

    args = ["calibrate", str(measurement), "-o", str(output), "--overwrite"]
    code, err = _run(capsys, args)

    message = _expected(relation, "measurement folder", measurement, output)
    assert code == 2
    assert err == f"thermosynth: error: {message}\n"
    assert _digest(measurement.parent) == before


def test_output_link_to_input_rejected(capsys, tmp_path, data_dir):
    marked = _marked_frames(data_dir, tmp_path / "marked")
    link = tmp_path / "link"
    link.symlink_to(marked)
    before = _digest(marked)
    args = ["validate", "closeness", "--normal", str(marked / "good")]
    args += ["--pseudo", str(marked / "good"), "-o", str(link), "--overwrite"]

    code, err = _run(capsys, args)

    message = _expected("contains", "--normal input", marked / "good", link)
    assert code == 2
    assert err == f"thermosynth: error: {message}\n"
    assert _digest(marked) == before


@pytest.mark.parametrize(
    ("command", "default"),
    [
        (["validate", "closeness", "--normal", "n", "--pseudo", "p"], "closeness"),
        (["validate", "transfer", "--normal", "n", "--real", "r"], "transfer"),
        (["calibrate", "measurement"], "calibration"),
    ],
)
def test_empty_output_is_usage_error(capsys, tmp_path, monkeypatch, command, default):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "-o", ""])

    prog = " ".join(["thermosynth", *command[: 2 if command[0] == "validate" else 1]])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == (
        f"{prog}: error: argument -o/--output: the output folder is empty; give "
        f"a folder path, or leave out -o to write to {default}; see '{prog} "
        "--help'\n"
    )
    assert list(tmp_path.iterdir()) == []
