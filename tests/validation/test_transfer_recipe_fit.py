"""Tests of thermosynth.validation.transfer_recipe_fit on real frames."""

import logging
from pathlib import Path

import cv2
import pytest
from real_frames import BATTERY_FRAMES, PV_IMAGES, grey_frames
from transfer_recipes import write_recipe

from thermosynth.recipe import load_recipe
from thermosynth.validation.transfer_recipe_fit import recipe_fit_warnings

PV_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "pv-module-hotspots.yaml"
MODULE = "thermosynth.validation.transfer_recipe_fit"


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == MODULE and r.levelno == logging.WARNING
    ]


def test_pv_recipe_on_battery_frames_warns(data_dir, caplog):
    battery = grey_frames(data_dir, BATTERY_FRAMES, "*CAM2_thermal.png", 1)

    with caplog.at_level(logging.WARNING, logger=MODULE):
        found = recipe_fit_warnings(load_recipe(PV_RECIPE), battery.shape[1:])

    assert _warnings(caplog) == found
    assert len(found) == 2
    size, aspect = found
    assert "contains frames of 40 x 24 px (height x width)" in size
    assert "the --normal frames are 60 x 80 px" in size
    assert "984 x 1624 mm (width x height, ratio 0.61)" in aspect
    assert "80 x 60 px frame (ratio 1.33), a factor 2.20 apart" in aspect
    assert "registration.method corners, valid_mask or warm_region" in aspect


def test_pv_recipe_on_pv_frames_is_quiet(data_dir, caplog):
    pv = grey_frames(data_dir, PV_IMAGES, "*.jpg", 1)

    with caplog.at_level(logging.WARNING, logger=MODULE):
        found = recipe_fit_warnings(load_recipe(PV_RECIPE), pv.shape[1:])

    assert found == []
    assert _warnings(caplog) == []


def test_layout_on_own_battery_frames_warns_aspect(data_dir, tmp_path, caplog):
    # The recipe's frames are the --normal frames, but its PV layout is not.
    battery = grey_frames(data_dir, BATTERY_FRAMES, "*CAM2_thermal.png", 2)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, image in enumerate(battery):
        assert cv2.imwrite(str(frames_dir / f"{i:03d}.png"), image)
    recipe = write_recipe("pv-module-hotspots.yaml", frames_dir, tmp_path / "r.yaml")

    with caplog.at_level(logging.WARNING, logger=MODULE):
        found = recipe_fit_warnings(load_recipe(recipe), battery.shape[1:])

    assert len(found) == 1
    assert "factor 2.20 apart, more than 1.5" in found[0]


def test_larger_frames_of_same_ratio_warn_size(data_dir, caplog):
    pv = grey_frames(data_dir, PV_IMAGES, "*.jpg", 1)[0]
    doubled = cv2.resize(pv, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)

    with caplog.at_level(logging.WARNING, logger=MODULE):
        found = recipe_fit_warnings(load_recipe(PV_RECIPE), doubled.shape)

    assert len(found) == 1
    assert "the --normal frames are 80 x 48 px" in found[0]


def test_unreadable_frames_path_skips_size(data_dir, tmp_path, caplog):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    recipe = write_recipe("pv-module-hotspots.yaml", frames_dir, tmp_path / "r.yaml")
    loaded = load_recipe(recipe)
    pv = grey_frames(data_dir, PV_IMAGES, "*.jpg", 1)

    with caplog.at_level(logging.INFO, logger=MODULE):
        found = recipe_fit_warnings(loaded, pv.shape[1:])

    assert found == []
    assert "is not readable here" in caplog.text


@pytest.mark.parametrize("fit", ["cells", "body"])
def test_fit_box_sets_layout_size(data_dir, tmp_path, fit):
    # The cells' box leaves out the 16 mm border: 952 x 1592 mm. The frame
    # is a PV crop turned on its side, 24 x 40 px, in the recipe and --normal.
    turned = grey_frames(data_dir, PV_IMAGES, "*.jpg", 1)[0].T.copy()
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    assert cv2.imwrite(str(frames_dir / "000.png"), turned)
    recipe = write_recipe(
        "pv-module-hotspots.yaml",
        frames_dir,
        tmp_path / "r.yaml",
        changes={"registration.fit": fit},
    )

    found = recipe_fit_warnings(load_recipe(recipe), turned.shape)

    assert len(found) == 1
    assert f"(registration.fit: {fit}) of 952 x 1592 mm" in found[0]
