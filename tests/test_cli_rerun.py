"""Rerunning the recipe.yaml that generate saved beside its output."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest
import yaml
from transfer_recipes import write_pv_recipe
from trees import assert_same_trees, read_tree

from thermosynth.cli import main
from thermosynth.errors import OutputError, command_line_message
from thermosynth.pipeline import generate
from thermosynth.recipe import load_recipe

# No-Anomaly modules of the Raptor Maps set, 24 x 40 px.
NORMAL_STEMS = ("13357", "13356", "19719", "11543")


def _pv_recipe(data_dir: Path, folder: Path) -> Path:
    """Write real PV frames as PNGs and a recipe with ``output.dir: out``."""
    images = data_dir / "pv-modules-raptormaps" / "images"
    (folder / "good").mkdir(parents=True)
    for stem in NORMAL_STEMS:
        image = cv2.imread(str(images / f"{stem}.jpg"), cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(str(folder / "good" / f"{stem}.png"), image)
    recipe = write_pv_recipe(folder / "good", folder / "recipe.yaml")
    data = yaml.safe_load(recipe.read_text())
    data["output"] = {"dir": "out"}
    recipe.write_text(yaml.safe_dump(data))
    return recipe


def _generate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_saved_output_dir_absolute(capsys, tmp_path, data_dir):
    recipe = _pv_recipe(data_dir, tmp_path / "cam")
    out = tmp_path / "cam" / "out"

    code, _, err = _generate(capsys, str(recipe))

    assert code == 0, err
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert saved["output"]["dir"] == str(out)


def test_copied_output_rerun_needs_overwrite(capsys, tmp_path, data_dir):
    recipe = _pv_recipe(data_dir, tmp_path / "cam")
    out = tmp_path / "cam" / "out"
    assert _generate(capsys, str(recipe))[0] == 0
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)

    code, stdout, err = _generate(capsys, str(copy / "recipe.yaml"))

    assert code == 2
    assert stdout == ""
    assert err.count("\n") == 1
    assert err.startswith(f"thermosynth: error: {copy / 'recipe.yaml'}: ")
    assert f"output already exists: {out}; pass --overwrite to replace it" in err
    assert not (copy / "out").exists()


def test_saved_recipe_overwrite_regenerates(capsys, tmp_path, data_dir):
    recipe = _pv_recipe(data_dir, tmp_path / "cam")
    out = tmp_path / "cam" / "out"
    assert _generate(capsys, str(recipe))[0] == 0
    first = read_tree(out)
    saved = str(out / "recipe.yaml")

    code, stdout, err = _generate(capsys, saved, "--overwrite")
    again = read_tree(out)
    code_twice, _, _ = _generate(capsys, saved, "--overwrite")

    assert code == 0, err
    assert stdout.startswith("wrote 4 samples")
    assert stdout.rstrip().endswith(f"to {out}")
    assert code_twice == 0
    assert_same_trees(read_tree(out), again)
    # Only the recipe text (now the saved one) and its hash differ from the
    # first run, which read the recipe with relative paths.
    for name, data in first.items():
        if name.startswith("folder/") or name == "recipe.yaml":
            assert again[name] == data, name


def test_python_existing_output_names_keyword(capsys, tmp_path, data_dir):
    recipe = _pv_recipe(data_dir, tmp_path / "cam")
    assert _generate(capsys, str(recipe))[0] == 0
    loaded = load_recipe(tmp_path / "cam" / "out" / "recipe.yaml")

    with pytest.raises(OutputError) as raised:
        generate(loaded, progress=False)

    message = str(raised.value)
    assert "pass --overwrite (overwrite=True in Python) to replace it" in message
    assert command_line_message(message) == message.replace(
        " (overwrite=True in Python)", ""
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("pass --overwrite (overwrite=True in Python) to", "pass --overwrite to"),
        (
            "with --resume --overwrite (resume=True, overwrite=True in Python) to",
            "with --resume --overwrite to",
        ),
        ("or --no-write-back (hdf5='none' in Python) to", "or --no-write-back to"),
        ("(FrameSet.decoded in Python)", "(FrameSet.decoded in Python)"),
    ],
)
def test_command_line_message_drops_keywords(message, expected):
    assert command_line_message(message) == expected
