"""Blend thresholds of the shipped recipes on stretched 8-bit battery frames."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from thermosynth.pipeline import generate
from thermosynth.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
BATTERY_STATION = (
    "battery-station-inferno.yaml",
    "module-growing-hotspot-sequence.yaml",
    "module-runaway-sequence.yaml",
    "module-runaway.yaml",
)


@pytest.mark.parametrize("name", BATTERY_STATION)
def test_battery_recipe_threshold_above_step(name):
    recipe = load_recipe(RECIPES / name).recipe

    # 3 noise sigmas of these frames is about 1 level, the 8-bit step floor.
    assert recipe.frames.unit == "level"
    assert recipe.blend.threshold is not None
    assert recipe.blend.threshold >= 5.0


def test_battery_masks_keep_to_visible_rise(data_dir, tmp_path):
    overrides = (
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=12",
        f"output.dir={tmp_path / 'out'}",
        f"bank.path={tmp_path / 'bank.h5'}",
    )
    loaded = load_recipe(RECIPES / BATTERY_STATION[0], overrides=overrides)
    generate(loaded, progress=False)
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        anomalous = np.flatnonzero(h5["labels"][:])
        area = h5["masks"][anomalous].reshape(len(anomalous), -1).sum(axis=1)
        thresholds = [json.loads(h5["metadata"][i])["threshold"] for i in anomalous]

    assert thresholds == [5.0] * len(anomalous)
    # These 12 samples have a median mask of 1480 px at 3 noise sigmas (about
    # 1 level) and 926 px at 5 levels, in camera masks of 2618-2708 px.
    assert np.median(area) < 1200
