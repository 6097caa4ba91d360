from pathlib import Path

import numpy as np
import yaml

from thermosynth.recipe import load_demo_recipe, load_recipe
from thermosynth.recipe.runnable import runnable_text

RECIPE = """
# frames one folder up
frames: {kind: arrays, path: ../frames.npy, unit: C}
layout: {kind: pouch_cell, resolution_mm: 2.0}
bank: {mode: build, size: 2}
scenarios:
  - kind: hotspot
    power_W: 1.0
    radius_mm: 3.0
"""


def write_recipe(tmp_path: Path) -> Path:
    np.save(tmp_path / "frames.npy", np.full((2, 16, 16), 25.0))
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes" / "r.yaml"
    path.write_text(RECIPE)
    return path


def test_written_recipe_runs_from_elsewhere(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path))
    elsewhere = tmp_path / "out" / "recipe.yaml"
    elsewhere.parent.mkdir()

    elsewhere.write_text(runnable_text(loaded))

    again = load_recipe(elsewhere)
    assert again.recipe.frames.path == tmp_path / "frames.npy"
    bank = yaml.safe_load(elsewhere.read_text())["bank"]["path"]
    assert bank == str(tmp_path / "recipes" / "thermosynth-bank.h5")


def test_recipe_without_paths_keeps_text(tmp_path):
    out = tmp_path / "out"
    loaded = load_demo_recipe(overrides=[f"output.dir={out}"])

    assert runnable_text(loaded) == loaded.text


def test_relative_output_dir_made_absolute(tmp_path):
    path = write_recipe(tmp_path)
    path.write_text(RECIPE + "output: {dir: out}\n")
    loaded = load_recipe(path)

    data = yaml.safe_load(runnable_text(loaded))

    assert data["output"]["dir"] == str(tmp_path / "recipes" / "out")


def test_default_output_dir_made_absolute(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path))

    data = yaml.safe_load(runnable_text(loaded))

    assert data["output"]["dir"] == str(tmp_path / "recipes" / "thermosynth-output")


def test_named_bank_path_absolute_while_bank_off(tmp_path):
    path = write_recipe(tmp_path)
    path.write_text(RECIPE.replace("{mode: build, size: 2}", "{path: b.h5}"))
    loaded = load_recipe(path)

    data = yaml.safe_load(runnable_text(loaded))

    assert data["bank"] == {"path": str(tmp_path / "recipes" / "b.h5")}
