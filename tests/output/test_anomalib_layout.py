"""The folder tree of ``thermosynth generate`` against anomalib's Folder rules.

anomalib 2.7 builds its Folder dataset from file names. Images need an image
extension, and masks named ``<stem>_mask.png`` pair with images by sort
order. Any mask value above 0 counts as anomalous, and no stem may be a
prefix of another. It reads every image with PIL and converts it to
8-bit RGB, so 16-bit PNGs saturate at 255.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
N_TRAIN, N_TEST_NORMAL, N_ANOMALOUS = 3, 2, 3


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("anomalib") / "out"
    overrides = (
        "layout.resolution_mm=5.0",
        "physics.dt_s=30.0",
        f"split.train_normal={N_TRAIN}",
        f"split.test_normal={N_TEST_NORMAL}",
        f"split.test_anomalous={N_ANOMALOUS}",
        "output.hdf5=false",
        f"output.dir={out}",
    )
    generate(load_demo_recipe(overrides=overrides), progress=False)
    return out / "folder"


def anomaly_kinds(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "test").iterdir() if p.name != "good")


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def test_folder_tree_and_extensions(folder):
    assert len(images(folder / "train" / "good")) == N_TRAIN
    assert len(images(folder / "test" / "good")) == N_TEST_NORMAL
    kinds = anomaly_kinds(folder)
    assert kinds
    assert sum(len(images(folder / "test" / kind)) for kind in kinds) == N_ANOMALOUS
    assert sorted(p.name for p in (folder / "ground_truth").iterdir()) == kinds
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "scale.json":
            assert path.suffix in IMAGE_EXTENSIONS, path


def test_masks_pair_with_images_by_sort_order(folder):
    for kind in anomaly_kinds(folder):
        image_stems = [p.stem for p in images(folder / "test" / kind)]
        masks = images(folder / "ground_truth" / kind)
        assert all(p.name.endswith("_mask.png") for p in masks)
        assert [p.name.removesuffix("_mask.png") for p in masks] == image_stems


def test_no_stem_is_prefix_of_another(folder):
    stems = sorted(
        p.stem for p in folder.rglob("*.png") if "ground_truth" not in p.parts
    )
    for a, b in zip(stems, stems[1:], strict=False):
        assert not b.startswith(a), (a, b)


def test_masks_are_8bit_zero_or_255(folder):
    for mask_path in (folder / "ground_truth").rglob("*_mask.png"):
        kind = mask_path.parent.name
        stem = mask_path.name.removesuffix("_mask.png")
        image_path = folder / "test" / kind / f"{stem}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)

        assert mask.dtype == np.uint8
        assert mask.ndim == 2
        assert set(np.unique(mask).tolist()) == {0, 255}
        assert mask.shape == image.shape[:2]


def test_images_survive_anomalib_rgb_conversion(folder):
    for path in folder.rglob("*.png"):
        if "ground_truth" in path.parts:
            continue
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        if stored.ndim == 2:
            expected = np.repeat(stored[..., None], 3, axis=2)
        else:
            expected = stored[..., ::-1]  # OpenCV reads BGR
        np.testing.assert_array_equal(rgb, expected)


def test_anomalib_folder_datamodule_loads(folder):
    pytest.importorskip(
        "anomalib",
        reason="anomalib is not installed; it is not a dependency, and its "
        "torchvision does not import beside the CPU torch used here",
    )
    from anomalib.data import Folder

    kinds = anomaly_kinds(folder)
    datamodule = Folder(
        name="thermosynth",
        root=folder,
        normal_dir="train/good",
        abnormal_dir=[f"test/{kind}" for kind in kinds],
        normal_test_dir="test/good",
        mask_dir=[f"ground_truth/{kind}" for kind in kinds],
        train_batch_size=2,
        eval_batch_size=2,
        num_workers=0,
    )
    datamodule.setup()

    samples = datamodule.test_data.samples
    anomalous = samples[samples.label_index == 1]
    assert len(anomalous) >= 1
    for image_path, mask_path in zip(
        anomalous.image_path, anomalous.mask_path, strict=True
    ):
        assert Path(mask_path).name == f"{Path(image_path).stem}_mask.png"
