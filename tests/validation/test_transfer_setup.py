"""Tests of the thermosynth generator that validate transfer builds from a recipe."""

import hashlib
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import yaml
from transfer_recipes import write_pv_recipe, write_recipe

from thermosynth.errors import MaskSizeError, RecipeError, ThermosynthError
from thermosynth.recipe import load_recipe
from thermosynth.validation.generators import InRegion, Mixture
from thermosynth.validation.transfer_setup import (
    BASELINE_GENERATORS,
    build_generators,
    check_contamination,
    check_names,
    mixed_thermal_factory,
    recipe_region,
    thermal_factory,
    union_region,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
PV_SHAPE = (40, 24)

# SHA-256 of the first five PV pseudo-anomalies and masks (see
# test_pv_pseudo_anomalies_unchanged), from the generator before it read the
# recipe's region of interest and before scenarios took a count, once each
# pixel took the mean of the rise over its footprint. The PV recipe has no
# region, and the test draws one source per sample as the recipe did then,
# so they must not move.
PV_DIGEST = "d2fb04ed319a0e331771860e868a8d4ebc469625a6d05cfbebb5509cb683ff3a"


def _pv_recipe(tmp_path: Path, frames: np.ndarray, *, one_source: bool = False) -> Path:
    for i, image in enumerate(frames):
        assert cv2.imwrite(str(tmp_path / f"{i:03d}.png"), image)
    path = write_pv_recipe(tmp_path, tmp_path / "pv.yaml")
    if one_source:
        data = yaml.safe_load(path.read_text())
        for spec in data["scenarios"]:
            spec.pop("count", None)
        path.write_text(yaml.safe_dump(data))
    return path


def _pv_frames(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    ramp = np.linspace(60, 100, PV_SHAPE[0])[:, None] + np.zeros(PV_SHAPE)
    noisy = ramp + rng.normal(0, 2, (n, *PV_SHAPE))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_pv_pseudo_anomalies_unchanged(tmp_path):
    frames = _pv_frames(5)
    loaded = load_recipe(_pv_recipe(tmp_path, frames, one_source=True))
    make = thermal_factory(loaded, frames[0], n_scenarios=3, seed=0, spread=2.0)
    digest = hashlib.sha256()
    for scale in (1.0, 2.0):
        generator = make(frames, scale)
        for i, image in enumerate(frames):
            anomalous, mask = generator(image, np.random.default_rng(i))
            digest.update(anomalous.tobytes())
            digest.update(np.asarray(mask, dtype=bool).tobytes())
    assert digest.hexdigest() == PV_DIGEST


BATTERY_SHAPE = (60, 80)


def _battery_region() -> np.ndarray:
    """A module seen in perspective: a trapezoid narrower at the top."""
    y, x = np.mgrid[0 : BATTERY_SHAPE[0], 0 : BATTERY_SHAPE[1]]
    inset = 20 - y * 12 / BATTERY_SHAPE[0]
    return (y >= 8) & (y < 52) & (x >= inset) & (x < BATTERY_SHAPE[1] - inset)


def _battery_frames(n: int, region: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    module = 120 + rng.normal(0, 2, (n, *BATTERY_SHAPE))
    return np.where(region, np.clip(module, 0, 255), 0).astype(np.uint8)


def _battery_recipe(tmp_path: Path, **changes) -> Path:
    region = _battery_region()
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir(parents=True)
    for i, image in enumerate(_battery_frames(4, region)):
        assert cv2.imwrite(str(frames_dir / f"{i:03d}_CAM1.png"), image)
    mask_path = tmp_path / "mask.png"
    assert cv2.imwrite(str(mask_path), region.astype(np.uint8) * 255)

    return write_recipe(
        "battery-station-inferno.yaml",
        frames_dir,
        tmp_path / "battery.yaml",
        changes=changes,
        valid_mask=str(mask_path),
    )


def test_region_keeps_masks_inside(tmp_path):
    region = _battery_region()
    frames = _battery_frames(6, region)
    loaded = load_recipe(_battery_recipe(tmp_path))
    make = thermal_factory(loaded, frames[0], n_scenarios=2, seed=0)
    generator = make(frames, 2.0)

    for i, image in enumerate(frames):
        anomalous, mask = generator(image, np.random.default_rng(i))
        assert mask.any(), i
        assert not (mask & ~region).any(), i
        assert np.array_equal(anomalous[~region], image[~region]), i


@pytest.mark.parametrize("name", list(BASELINE_GENERATORS))
def test_baselines_keep_masks_inside_region(name):
    region = _battery_region()
    frames = _battery_frames(8, region)
    factory = build_generators([name], None, region=region)[name]
    generator = factory(frames)
    assert isinstance(generator, InRegion)

    for i, image in enumerate(frames):
        anomalous, mask = generator(image, np.random.default_rng(i))
        assert mask.any(), i
        assert not (mask & ~region).any(), i
        assert np.array_equal(anomalous[~mask], image[~mask]), i
        # The background is level 0 and the module about 120, so a patch or
        # texture copied from the background would bring levels near 0.
        assert anomalous[mask].min() >= 40, i


def test_baselines_unwrapped_without_region():
    full = np.ones(BATTERY_SHAPE, dtype=bool)
    frames = _battery_frames(2, full)
    for region in (None, full):
        factory = build_generators(["cutpaste"], None, region=region)["cutpaste"]
        assert not isinstance(factory(frames), InRegion)


def test_union_region_of_recipes():
    left = np.zeros((4, 6), dtype=bool)
    left[:, :2] = True
    right = np.zeros((4, 6), dtype=bool)
    right[:, 4:] = True

    union = union_region([left, right])

    assert union.sum() == 16
    assert not union[:, 2:4].any()
    assert union_region([left, None]) is None
    assert union_region([]) is None


def test_mixed_thermal_factory_of_two_recipes():
    def factory(level):
        return lambda pool, scale: (level, scale)

    single = factory(1)
    assert mixed_thermal_factory([single]) is single
    mixed = mixed_thermal_factory([factory(1), factory(2)])(np.zeros((1, 4, 4)), 0.5)
    assert isinstance(mixed, Mixture)
    assert mixed.members == ((1, 0.5), (2, 0.5))


def test_region_registers_through_valid_mask(tmp_path):
    region = _battery_region()
    frames = _battery_frames(1, region)
    loaded = load_recipe(_battery_recipe(tmp_path))
    bank = thermal_factory(loaded, frames[0], n_scenarios=2, seed=0)(
        frames, 1.0
    ).rises_K

    heated = bank.max(axis=(0, 3)) > 0
    assert heated.any()
    assert not (heated & ~region).any()


def test_flip_only_for_full_frame(tmp_path):
    region = _battery_region()
    image = _battery_frames(1, region)[0]
    perspective = load_recipe(_battery_recipe(tmp_path / "a"))
    full_frame = load_recipe(
        _battery_recipe(tmp_path / "b", **{"registration.method": "full_frame"})
    )

    assert not thermal_factory(perspective, image, n_scenarios=1, seed=0)(
        image[None], 1.0
    ).flip
    assert thermal_factory(full_frame, image, n_scenarios=1, seed=0)(
        image[None], 1.0
    ).flip


def test_region_per_camera_rejected(tmp_path):
    path = _battery_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    mask = data["frames"]["valid_mask"]
    data["frames"]["valid_mask"] = {"CAM1": mask, "CAM2": mask}
    path.write_text(yaml.safe_dump(data))
    image = _battery_frames(1, _battery_region())[0]

    with pytest.raises(RecipeError, match="frames.valid_mask maps file names"):
        thermal_factory(load_recipe(path), image, n_scenarios=1, seed=0)


def test_region_resized_with_frames(tmp_path):
    loaded = load_recipe(_battery_recipe(tmp_path))

    region = recipe_region(loaded, BATTERY_SHAPE, size_px=(30, 40))

    assert region is not None
    assert region.shape == (30, 40)
    assert region.sum() == pytest.approx(_battery_region().sum() / 4, rel=0.1)


def test_region_wrong_size_rejected(data_dir, tmp_path):
    mask = (
        data_dir / "battery-station-inferno" / "camera_masks" / "MASK_CAM1_thermal.png"
    )
    path = _battery_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["frames"]["valid_mask"] = str(mask)
    path.write_text(yaml.safe_dump(data))

    with pytest.raises(MaskSizeError) as raised:
        recipe_region(load_recipe(path), (40, 24))

    assert str(raised.value) == (
        f"key 'frames.valid_mask': mask {mask} is 60 x 80 px (height x "
        "width) but the training frames are 40 x 24 px; give a mask of the "
        "frames' size"
    )


def test_stretch_and_palette_warned(tmp_path, caplog):
    image = _battery_frames(1, _battery_region())[0]
    loaded = load_recipe(
        _battery_recipe(
            tmp_path, **{"frames.mode": "palette", "frames.palette": "inferno"}
        )
    )

    thermal_factory(loaded, image, n_scenarios=1, seed=0)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    assert len(warnings) == 2
    assert "camera.gain is 'stretch'" in warnings[0]
    assert "fixed gain" in warnings[0]
    assert "frames.mode is 'palette'" in warnings[1]
    assert "luminance" in warnings[1]


def test_misspelled_detector_gets_a_suggestion():
    with pytest.raises(ThermosynthError) as info:
        check_names(["classifer"], ["classifier", "draem", "knn"], "--detectors")

    assert str(info.value) == (
        "--detectors 'classifer' is unknown; did you mean 'classifier'? Choose "
        "from classifier, draem, knn"
    )


def test_contamination_message_gives_largest_fraction():
    with pytest.raises(ThermosynthError) as info:
        check_contamination(0.2, n_train=200, n_reserve=30)

    assert "lower --contamination to 0.15 or less" in str(info.value)
    check_contamination(0.15, n_train=200, n_reserve=30)


def _unscaled_output(data_dir: Path, root: Path) -> Path:
    """Write an output whose folder/ tree has real palette frames and no scale.json."""
    source = data_dir / "battery-station-inferno" / "normal_masked"
    good = root / "folder" / "train" / "good"
    good.mkdir(parents=True)
    for i, frame in enumerate(sorted(source.glob("*CAM1_thermal.png"))[:2]):
        shutil.copy(frame, good / f"{i:03d}.png")
    with h5py.File(root / "dataset.h5", "w") as file:
        file["labels"] = np.zeros(2, np.uint8)
    return root / "folder"


def test_unscaled_tree_names_missing_scale(data_dir, tmp_path):
    tree = _unscaled_output(data_dir, tmp_path / "out")
    changes = {"camera.levels_per_kelvin": None}
    loaded = load_recipe(_battery_recipe(tmp_path, **changes))
    image = cv2.imread(str(tree / "train" / "good" / "000.png"), cv2.IMREAD_GRAYSCALE)

    for normal in (tree, tree.parent, tree.parent / "dataset.h5"):
        with pytest.raises(RecipeError) as raised:
            thermal_factory(loaded, image, n_scenarios=1, seed=0, normal=normal)
        message = str(raised.value)
        assert f"{tree} has no scale.json, because its frames were written as " in (
            message
        )
        assert "set camera.levels_per_kelvin [level K-1] in the recipe" in message
        assert "when that tree is --normal" not in message

    (tree / "scale.json").write_text("{}")
    with pytest.raises(RecipeError, match="scale.json when that tree is --normal"):
        thermal_factory(loaded, image, n_scenarios=1, seed=0, normal=tree)
