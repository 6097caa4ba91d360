"""Tests for thermosynth.datasets: HDF5 reading, workers, on-the-fly anomalies."""

from __future__ import annotations

import copy
import functools
import json
import logging
import logging.handlers
import multiprocessing
import os
import pickle
import re
import shutil
from pathlib import Path
from queue import Empty

import cv2
import h5py
import numpy as np
import pytest
import torch
import yaml
from fixed_runaway import CELL_TIMES, FIXED_RUNAWAY, TRIGGERED_CELL, cell_at
from scipy import ndimage
from torch.utils.data import DataLoader, Sampler, Subset, SubsetRandomSampler
from weak_draws import (
    N_SAMPLES,
    WEAK_AND_STRONG,
    assert_weak_share,
    fake_blend,
    fake_rise,
)

from thermosynth import datasets as datasets_module
from thermosynth.bank import SYMMETRIES, apply_symmetry
from thermosynth.build import register
from thermosynth.camera import emissivity_map
from thermosynth.camera.optics import blur_radius_px
from thermosynth.datasets import (
    HDF5Dataset,
    OnTheFlyDataset,
    item_rng,
    slot_rng,
    slot_scenarios,
    to_image_tensor,
)
from thermosynth.errors import FrameError, RecipeError
from thermosynth.frames.encodings import (
    LinearEncoding,
    PaletteEncoding,
    describe_encoding,
)
from thermosynth.frames.palettes import palette_lut
from thermosynth.frames.synthetic import SyntheticPouchSource
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.output.hdf5 import HDF5Writer, write_master
from thermosynth.output.sample import Sample
from thermosynth.pipeline import Generator, generate
from thermosynth.recipe import load_demo_recipe, load_recipe
from thermosynth.scenario import choose_scenario, choose_scenario_index
from thermosynth.sequences import generate_sequences
from thermosynth.transforms import ThermalHotspot
from thermosynth.validation.closeness import CLOSENESS_COLUMNS

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PLAUSIBILITY = "thermosynth.plausibility"

# A coarse grid and long steps keep each FiPy simulation near 0.1-0.5 s.
FAST_DEMO = (
    "layout.resolution_mm=5.0",
    "physics.dt_s=30.0",
    "split.train_normal=3",
    "split.test_normal=0",
    "split.test_anomalous=0",
)


def make_sample(index: int, raw: np.ndarray) -> Sample:
    shape = raw.shape[:2]
    label = index % 2
    mask = np.zeros(shape, dtype=bool)
    mask[1 : 2 + index, 2:5] = bool(label)
    rise = np.full(shape, 0.25 * index, dtype=np.float32)
    return Sample(
        index=index,
        split="test" if label else "train",
        label=label,
        kind="hotspot" if label else "good",
        raw=raw,
        mask=mask,
        rise_K=rise,
        recorded_rise=np.where(mask, rise, 0).astype(np.float32),
        metadata={"params": {"power_W": 1.5 * index}},
    )


def write_hdf5(path, frames: list[np.ndarray]) -> list[Sample]:
    samples = [make_sample(i, raw) for i, raw in enumerate(frames)]
    with HDF5Writer(path, attributes={}, frame_unit="C") as writer:
        for sample in samples:
            writer.write(sample)
    return samples


@pytest.fixture
def uint16_file(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 65535, (6, 8), endpoint=True, dtype=np.uint16)]
    frames += [np.full((6, 8), 65535, dtype=np.uint16)]
    frames += [rng.integers(0, 65535, (6, 8), dtype=np.uint16) for _ in range(4)]
    frames[0][0, :3] = [0, 1, 65535]
    path = tmp_path / "dataset.h5"
    return path, write_hdf5(path, frames)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.float64])
def test_hdf5_uint16_exact(uint16_file, dtype):
    path, samples = uint16_file
    dataset = HDF5Dataset(path, dtype=dtype)

    assert len(dataset) == len(samples)
    for i, sample in enumerate(samples):
        item = dataset[i]
        assert item["image"].dtype == dtype
        assert item["image"].shape == (1, 6, 8)
        exact = item["image"][0].to(torch.int64).numpy()
        np.testing.assert_array_equal(exact, sample.raw.astype(np.int64))
        assert torch.equal(
            item["image"][0], torch.from_numpy(sample.raw.astype(np.int64)).to(dtype)
        )


def test_hdf5_item_fields(uint16_file):
    path, samples = uint16_file
    item = HDF5Dataset(path, with_rise=True)[3]

    assert item["mask"].dtype == torch.bool
    assert torch.equal(item["mask"], torch.from_numpy(samples[3].mask))
    assert item["label"].dtype == torch.int64
    assert int(item["label"]) == 1
    assert item["index"] == 3
    assert item["split"] == "test"
    assert item["kind"] == "hotspot"
    assert json.loads(item["metadata"]) == {"params": {"power_W": 4.5}}
    assert torch.equal(item["rise_K"], torch.full((6, 8), 0.75))


def test_hdf5_split_filter(uint16_file):
    path, _ = uint16_file
    train = HDF5Dataset(path, split="train")
    test = HDF5Dataset(path, split="test")

    assert train.rows == [0, 2, 4]
    assert test.rows == [1, 3, 5]
    assert [train[i]["index"] for i in range(len(train))] == [0, 2, 4]
    with pytest.raises(ValueError, match="split = 'val' is invalid"):
        HDF5Dataset(path, split="val")


def test_hdf5_rgb_frames_channels_first(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (5, 7, 3), dtype=np.uint8) for _ in range(2)]
    write_hdf5(tmp_path / "rgb.h5", frames)
    item = HDF5Dataset(tmp_path / "rgb.h5")[1]

    assert item["image"].shape == (3, 5, 7)
    assert torch.equal(
        item["image"], torch.from_numpy(frames[1]).permute(2, 0, 1).float()
    )


def test_hdf5_rejects_lossy_integer_dtype(uint16_file):
    path, _ = uint16_file
    with pytest.raises(FrameError, match="uint16 do not fit exactly in torch.int16"):
        HDF5Dataset(path, dtype=torch.int16)


@pytest.mark.parametrize(
    ("dtype", "shown"),
    [
        ("float32", "dtype = 'float32' (str) is invalid"),
        (np.float32, "dtype = <class 'numpy.float32'> (type) is invalid"),
        (np.dtype("float32"), "dtype = dtype('float32') (numpy.dtype) is invalid"),
    ],
)
def test_hdf5_rejects_non_torch_dtype(uint16_file, dtype, shown):
    path, _ = uint16_file
    with pytest.raises(TypeError) as info:
        HDF5Dataset(path, dtype=dtype)

    assert str(info.value) == f"{shown}; give a torch.dtype such as torch.float32"


def test_non_torch_dtype_names_matching_one(uint16_file):
    path, _ = uint16_file
    with pytest.raises(
        TypeError, match=r"\(str\) is invalid; .* such as torch\.int32$"
    ):
        HDF5Dataset(path, dtype="int32")
    with pytest.raises(TypeError, match=r"'bogus' \(str\) .* such as torch\.float32$"):
        HDF5Dataset(path, dtype="bogus")


def test_hdf5_rejects_bad_files(tmp_path):
    with pytest.raises(FrameError, match="HDF5 dataset not found"):
        HDF5Dataset(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file["frames"] = np.zeros((1, 2, 2))
    with pytest.raises(FrameError, match=r"lacks the datasets \['masks'"):
        HDF5Dataset(tmp_path / "other.h5")


def test_hdf5_rejects_folder_and_non_hdf5(tmp_path):
    with pytest.raises(FrameError, match="is a folder; give the dataset.h5"):
        HDF5Dataset(tmp_path)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(FrameError, match="text.h5 is not an HDF5 file"):
        HDF5Dataset(tmp_path / "text.h5")


def test_hdf5_index_out_of_range(uint16_file):
    path, samples = uint16_file
    dataset = HDF5Dataset(path, split="test")

    assert dataset[-1]["index"] == samples[-1].index
    with pytest.raises(IndexError, match="index 3 out of range for 3 items"):
        dataset[3]
    with pytest.raises(TypeError, match="index 1.0 is invalid; give an int"):
        dataset[1.0]


def test_hdf5_missing_shards_rejected(tmp_path):
    shards = tmp_path / "out" / "shards"
    shards.mkdir(parents=True)
    write_hdf5(shards / "shard-000000.h5", [np.zeros((2, 3), np.uint8)] * 2)
    shard_list = [("shards/shard-000000.h5", 2)]
    master = tmp_path / "out" / "dataset.h5"
    write_master(master, shard_list, attributes={}, frame_unit="C")
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(master, copy / "dataset.h5")

    assert len(HDF5Dataset(master)) == 2
    with pytest.raises(FrameError, match=r"missing: \['shards/shard-000000.h5'\]"):
        HDF5Dataset(copy / "dataset.h5")


def test_hdf5_transform_applied(uint16_file):
    path, samples = uint16_file
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0), levels_per_kelvin=100.0)
    params = hotspot.make_params(6, 8, torch.Generator().manual_seed(0))

    def transform(image, mask):
        return hotspot.apply_image(image, params), hotspot.apply_mask(mask, params)

    item = HDF5Dataset(path, transform=transform)[0]
    spot = params["rise"] > 0
    assert torch.equal(item["mask"], spot)
    unchanged = torch.from_numpy(samples[0].raw.astype(np.float32))[~spot]
    assert torch.equal(item["image"][0][~spot], unchanged)


def test_hdf5_pickle_drops_handle(uint16_file):
    path, _ = uint16_file
    dataset = HDF5Dataset(path)
    first = dataset[0]
    copy = pickle.loads(pickle.dumps(dataset))

    assert dataset._file is not None
    assert copy._file is None
    assert torch.equal(copy[0]["image"], first["image"])
    dataset.close()
    assert dataset._file is None


def test_hdf5_workers_read_own_handles(uint16_file):
    path, samples = uint16_file
    dataset = HDF5Dataset(path)
    dataset[0]  # the parent has an open handle when workers fork
    loader = DataLoader(dataset, batch_size=2, num_workers=2)
    batches = list(loader)

    images = torch.cat([batch["image"] for batch in batches])
    expected = np.stack([s.raw for s in samples])[:, None].astype(np.float32)
    assert torch.equal(images, torch.from_numpy(expected))
    assert [m for batch in batches for m in batch["metadata"]][1] == json.dumps(
        {"params": {"power_W": 1.5}}
    )
    assert dataset._pid == os.getpid()


@pytest.fixture(scope="module")
def loaded():
    return load_demo_recipe(overrides=FAST_DEMO)


@pytest.fixture(scope="module")
def banked(loaded):
    dataset = OnTheFlyDataset(loaded, length=6, anomaly_fraction=0.5, bank_size=2)
    dataset.fill_bank()
    return dataset


def stack(items):
    return torch.stack([item["image"] for item in items])


def test_on_the_fly_items_reproducible(loaded, banked):
    again = OnTheFlyDataset(loaded, length=6, anomaly_fraction=0.5, bank_size=2)
    first = [banked[i] for i in range(6)]
    second = [again[i] for i in range(6)]

    assert torch.equal(stack(first), stack(second))
    assert [json.loads(item["metadata"]) for item in first] == [
        json.loads(item["metadata"]) for item in second
    ]
    labels = [int(item["label"]) for item in first]
    assert 0 < sum(labels) < 6


def test_on_the_fly_anomalies_change_only_mask(loaded, banked):
    generator = banked._worker_generator()
    for i in range(len(banked)):
        item = banked[i]
        frame = generator.read_frame(banked.frame_indices[i % 3])
        raw = torch.from_numpy(frame.raw.astype(np.float32))[None]
        outside = ~item["mask"]
        assert torch.equal(item["image"][:, outside], raw[:, outside])
        assert bool(item["mask"].any()) == bool(item["label"])
        if item["label"]:
            meta = json.loads(item["metadata"])
            assert meta["area_px"] == int(item["mask"].sum())
            assert meta["bank_slot"] in (0, 1)
            assert meta["epoch"] == 0
            assert not set(CELL_TIMES) & set(meta)


def test_on_the_fly_set_epoch_redraws(loaded):
    dataset = OnTheFlyDataset(loaded, length=6, anomaly_fraction=0.5, bank_size=2)
    epoch0 = [json.loads(dataset[i]["metadata"]) for i in range(6)]
    dataset.set_epoch(1)
    epoch1 = [json.loads(dataset[i]["metadata"]) for i in range(6)]
    dataset.set_epoch(0)
    again = [json.loads(dataset[i]["metadata"]) for i in range(6)]

    assert epoch0 == again
    assert epoch0 != epoch1
    assert {m["epoch"] for m in epoch1} == {1}


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_persistent_workers(loaded, context):
    dataset = OnTheFlyDataset(loaded, length=4, anomaly_fraction=1.0, bank_size=2)
    dataset.fill_bank()
    expected = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        expected.append([json.loads(dataset[i]["metadata"]) for i in range(4)])
    dataset.set_epoch(0)

    loader = DataLoader(
        dataset,
        batch_size=2,
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context=context,
    )
    seen = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        seen.append([json.loads(m) for b in loader for m in b["metadata"]])

    assert seen == expected
    assert expected[0] != expected[1]


def test_deepcopy_set_epoch_persistent_workers(loaded):
    dataset = OnTheFlyDataset(loaded, length=4, anomaly_fraction=1.0, bank_size=2)
    dataset.fill_bank()
    expected = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        expected.append([json.loads(dataset[i]["metadata"]) for i in range(4)])
    dataset.set_epoch(0)
    copied = copy.deepcopy(dataset)

    loader = DataLoader(
        copied,
        batch_size=2,
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context="fork",
    )
    seen = []
    for epoch in (0, 1):
        copied.set_epoch(epoch)
        seen.append([json.loads(m) for b in loader for m in b["metadata"]])

    assert seen == expected
    assert dataset.epoch == 0


def test_item_streams_never_repeat():
    draws = {
        (epoch, index): item_rng(7, epoch, index).random()
        for epoch in range(3)
        for index in range(200)
    }
    assert len(set(draws.values())) == len(draws)


def test_on_the_fly_workers_match_single_process(banked):
    single = list(DataLoader(banked, batch_size=2, num_workers=0))
    workers = list(DataLoader(banked, batch_size=2, num_workers=2))

    for one, many in zip(single, workers, strict=True):
        assert torch.equal(one["image"], many["image"])
        assert torch.equal(one["mask"], many["mask"])
        assert torch.equal(one["label"], many["label"])
        assert one["metadata"] == many["metadata"]


def shuffled_epochs(dataset, num_workers):
    """Return two epochs of shuffled batches from a loader seeded with 0."""
    generator = torch.Generator().manual_seed(0)
    loader = DataLoader(
        dataset,
        batch_size=2,
        num_workers=num_workers,
        shuffle=True,
        generator=generator,
    )
    epochs = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        epochs.append(list(loader))
    dataset.set_epoch(0)
    return epochs


def test_on_the_fly_seeded_shuffle_repeats(banked):
    first = shuffled_epochs(banked, num_workers=0)
    again = shuffled_epochs(banked, num_workers=0)
    workers = shuffled_epochs(banked, num_workers=2)

    assert first[0][0]["index"].tolist() != first[1][0]["index"].tolist()
    for batches in (again, workers):
        for epoch, other in zip(first, batches, strict=True):
            for one, many in zip(epoch, other, strict=True):
                assert torch.equal(one["index"], many["index"])
                assert torch.equal(one["image"], many["image"])
                assert torch.equal(one["mask"], many["mask"])


def test_on_the_fly_normal_is_frame_before_blend(loaded):
    dataset = OnTheFlyDataset(loaded, length=4, bank_size=1, with_normal=True)
    generator = dataset._worker_generator()
    items = [dataset[i] for i in range(4)]
    labels = [int(item["label"]) for item in items]
    assert 0 < sum(labels) < 4

    for i, item in enumerate(items):
        raw = generator.read_frame(dataset.frame_indices[i % 3]).raw
        normal = torch.from_numpy(raw.astype(np.float32))[None]
        assert torch.equal(item["normal"], normal)
        changed = (item["image"] != item["normal"])[0]
        assert not bool(changed[~item["mask"]].any())
        assert bool(changed.any()) == bool(item["label"])


# A short epoch of the real inferno module frames, where the module's
# layout has all four mirror images; a coarse time step for speed.
INFERNO_MODULE = (
    "split.train_normal=4",
    "split.test_normal=0",
    "split.test_anomalous=0",
    "physics.dt_s=60.0",
    "scenarios.0.duration_s=240",
)


@pytest.fixture(scope="module")
def module_items(data_dir):
    """Return a 2-slot dataset of the inferno module and its items of 3 epochs."""
    loaded = load_recipe(
        RECIPES / "battery-station-inferno.yaml", overrides=INFERNO_MODULE
    )
    dataset = OnTheFlyDataset(
        loaded, length=8, anomaly_fraction=1.0, bank_size=2, with_rise=True
    )
    items = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        items += [dataset[i] for i in range(len(dataset))]
    dataset.set_epoch(0)
    return dataset, items


@pytest.fixture(scope="module")
def stretched_items(data_dir):
    """Return a 2-slot dataset of the inferno module, with normals, and 8 items.

    The recipe's ``camera.gain: stretch`` maps items 0 and 4 back onto the
    palette, as their hot spots rise above its top level.
    """
    loaded = load_recipe(
        RECIPES / "battery-station-inferno.yaml", overrides=INFERNO_MODULE
    )
    dataset = OnTheFlyDataset(
        loaded, length=8, anomaly_fraction=1.0, bank_size=2, with_normal=True
    )
    return dataset, [dataset[i] for i in range(len(dataset))]


def test_on_the_fly_stretch_changes_outside_mask(stretched_items):
    dataset, items = stretched_items
    gains = []

    for i, item in enumerate(items):
        metadata = json.loads(item["metadata"])
        gain, offset = metadata["stretch_gain"], metadata["stretch_offset"]
        decode = dataset.encoding(i).decode
        outside = ~item["mask"].numpy()
        image = decode(item["image"].permute(1, 2, 0).numpy())[outside]
        normal = decode(item["normal"].permute(1, 2, 0).numpy())[outside]
        gains.append(gain)

        # Each stored pixel rounds to the nearest of the palette's levels.
        assert np.abs(image - (gain * normal + offset)).max() <= 0.5
        assert bool(np.any(image != normal)) == (gain < 1.0)
    assert min(gains) < 1.0
    assert max(gains) == 1.0


def test_on_the_fly_palette_image_decodes(stretched_items):
    dataset, items = stretched_items

    for i, item in enumerate(items):
        pixels = item["image"].permute(1, 2, 0).numpy()
        decoded = dataset.encoding(i).decode(pixels)
        stored = dataset.encoding(i).decode(pixels.astype(np.uint8))
        assert item["image"].dtype == torch.float32
        assert decoded.shape == item["mask"].shape
        np.testing.assert_array_equal(decoded, stored)


def test_on_the_fly_bank_varies_power_and_mirror(module_items):
    dataset, items = module_items
    metadata = [json.loads(item["metadata"]) for item in items]
    params = [meta["params"] for meta in metadata]
    pairs = {(p["power_W"], p["x_mm"], p["y_mm"]) for p in params}
    positions = {(p["x_mm"], p["y_mm"]) for p in params}

    assert len(dataset._slot_scenarios) == 2
    assert len(pairs) == len(items)
    assert len(positions) > len(dataset._slot_scenarios)
    assert {meta["bank_symmetry"] for meta in metadata} == set(SYMMETRIES)
    # The recipe's surface radiates, so a scaled rise is an approximation.
    assert not any(meta["bank_exact"] for meta in metadata)


def test_on_the_fly_rise_is_scaled_slot(module_items):
    dataset, items = module_items
    generator = dataset._worker_generator()
    layout = generator.layout
    for item in items:
        meta = json.loads(item["metadata"])
        stored, stored_rise, _ = dataset._bank[meta["bank_slot"]]
        ratio = meta["params"]["power_W"] / stored.params["power_W"]
        symmetry = meta["bank_symmetry"]
        x_mm, y_mm = stored.params["x_mm"], stored.params["y_mm"]
        if symmetry in ("flip_x", "rotate_180"):
            x_mm = layout.width_mm - x_mm
        if symmetry in ("flip_y", "rotate_180"):
            y_mm = layout.height_mm - y_mm
        frame_indices = dataset.frame_indices
        frame = generator.read_frame(frame_indices[item["index"] % len(frame_indices)])
        homography, _ = register(generator.recipe.registration, layout, frame)
        grid = np.maximum(ratio * apply_symmetry(stored_rise, symmetry), 0.0)
        expected = warp_to_frame(grid, homography, frame.shape)

        assert meta["bank_scale"] == pytest.approx(ratio, rel=1e-12)
        assert meta["params"]["x_mm"] == pytest.approx(x_mm, abs=1e-9)
        assert meta["params"]["y_mm"] == pytest.approx(y_mm, abs=1e-9)
        assert meta["peak_rise_K"] == pytest.approx(float(grid.max()), rel=1e-12)
        assert item["rise_K"].dtype == torch.float32
        np.testing.assert_allclose(
            item["rise_K"].numpy(), expected, rtol=1e-6, atol=1e-6 * grid.max()
        )


def test_on_the_fly_module_workers_match(module_items):
    dataset, items = module_items
    dataset.set_epoch(1)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    batches = list(loader)
    dataset.set_epoch(0)

    expected = items[8:16]
    rises = torch.cat([batch["rise_K"] for batch in batches])
    metadata = [m for batch in batches for m in batch["metadata"]]
    assert torch.equal(torch.cat([b["image"] for b in batches]), stack(expected))
    assert torch.equal(rises, torch.stack([item["rise_K"] for item in expected]))
    assert metadata == [item["metadata"] for item in expected]


def test_on_the_fly_rise_matches_blended_difference(data_dir):
    # Without blur and with the camera's emissivity set to the surface's, the
    # camera records the surface rise itself, and the float frames of the
    # radiometric recipe decode without rounding.
    overrides = (
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=0",
        "camera.blur_sigma_px=0",
        "camera.emissivity_regions={}",
        "physics.dt_s=30.0",
    )
    loaded = load_recipe(RECIPES / "radiometric-cabinet.yaml", overrides=overrides)
    options = {"length": 6, "anomaly_fraction": 0.5, "bank_size": 1}
    dataset = OnTheFlyDataset(loaded, with_rise=True, with_normal=True, **options)
    plain = OnTheFlyDataset(loaded, **options)
    items = [dataset[i] for i in range(len(dataset))]
    assert 0 < sum(int(item["label"]) for item in items) < len(items)

    for i, item in enumerate(items):
        encoding = dataset.encoding(i)
        rise = item["rise_K"].numpy()
        mask = item["mask"].numpy()
        image = encoding.decode(item["image"][0].numpy())
        difference = image - encoding.decode(item["normal"][0].numpy())
        threshold = json.loads(item["metadata"]).get("threshold", 0.0)
        without_rise = plain[i]

        assert rise.shape == mask.shape
        assert torch.equal(item["image"], without_rise["image"])
        assert "rise_K" not in without_rise
        assert not difference[~mask].any()
        assert np.all(rise[~mask] <= threshold)
        # blend.edge: taper applies the rise less the threshold [K].
        np.testing.assert_allclose(difference[mask], rise[mask] - threshold, atol=1e-5)
        if not item["label"]:
            assert not rise.any()


def test_on_the_fly_takes_recipe_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(load_demo_recipe(overrides=FAST_DEMO).text)

    dataset = OnTheFlyDataset(str(path), bank_size=1)

    assert len(dataset) == 3
    assert dataset.loaded.source == str(path)


def test_on_the_fly_rejects_sequence_recipe():
    loaded = load_demo_recipe(overrides=["sequence={fps: 0.2, window_s: 20}"])

    message = r"<demo> has a sequence section, but OnTheFlyDataset makes still"
    with pytest.raises(RecipeError, match=message):
        OnTheFlyDataset(loaded)


def test_on_the_fly_without_bank_simulates(loaded):
    dataset = OnTheFlyDataset(loaded, length=1, anomaly_fraction=1.0, bank_size=0)
    item = dataset[0]
    meta = json.loads(item["metadata"])

    assert int(item["label"]) == 1
    assert meta["bank_slot"] is None
    assert meta["area_px"] == int(item["mask"].sum())
    assert meta["peak_rise_K"] > 0
    assert not set(CELL_TIMES) & set(meta)  # a hotspot or joule heating


def level_frames_overrides(folder: Path) -> list[str]:
    """Write two uint8 PNGs with a warm rectangle; return overrides to read them."""
    folder.mkdir()
    for i in range(2):
        image = np.full((120, 160), 60 + i, np.uint8)
        image[30:90, 40:120] = 120
        cv2.imwrite(str(folder / f"{i}.png"), image)
    return [
        f"frames={{kind: images, path: {folder}, unit: level}}",
        "camera.levels_per_kelvin=10.0",
        *FAST_DEMO,
        "split.train_normal=2",
    ]


def test_on_the_fly_metadata_has_recorded_unit(loaded, tmp_path):
    level = load_demo_recipe(overrides=level_frames_overrides(tmp_path / "f"))
    options = {"length": 1, "anomaly_fraction": 1.0, "bank_size": 1}
    in_celsius = json.loads(OnTheFlyDataset(loaded, **options)[0]["metadata"])
    in_levels = json.loads(OnTheFlyDataset(level, **options)[0]["metadata"])

    assert in_celsius["recorded_unit"] == "K"
    assert in_levels["recorded_unit"] == "level"
    assert in_levels["peak_recorded_rise"] > in_levels["threshold"] > 0


@pytest.mark.parametrize("bank_size", [0, 1])
def test_on_the_fly_runaway_item_has_cell_times(bank_size):
    loaded = load_demo_recipe(overrides=FIXED_RUNAWAY)
    dataset = OnTheFlyDataset(
        loaded, length=1, anomaly_fraction=1.0, bank_size=bank_size
    )
    meta = json.loads(dataset[0]["metadata"])
    generator = Generator(loaded)
    index, _, _, frame_index = next(e for e in generator.plan.entries() if e[2])
    written = generator.anomalous(index, generator.read_frame(frame_index)).metadata
    # A bank slot's mirror image moves the short and its cell's times.
    cell = cell_at(generator.layout, meta["params"])

    assert meta["params"]["power_W"] == written["params"]["power_W"]
    assert meta["onset_s"][cell] == written["onset_s"][TRIGGERED_CELL]
    assert meta["onset_s"][cell] > 0.0
    assert meta["onset_s"][1 - cell] is None
    assert meta["short_s"] == written["short_s"]
    assert meta["vent_s"] == written["vent_s"]
    if bank_size == 0:
        assert meta["params"] == written["params"]
    else:
        assert meta["bank_scale"] == 1.0  # a runaway keeps the slot's power


def test_on_the_fly_rejects_bad_options(loaded):
    with pytest.raises(RecipeError, match="anomaly_fraction = 1.5 is invalid"):
        OnTheFlyDataset(loaded, anomaly_fraction=1.5)
    with pytest.raises(RecipeError, match="bank_size = -1 is invalid"):
        OnTheFlyDataset(loaded, bank_size=-1)
    with pytest.raises(RecipeError, match=r"anomaly_fraction = '0\.5' \(str\)"):
        OnTheFlyDataset(loaded, anomaly_fraction="0.5")
    with pytest.raises(RecipeError, match=r"anomaly_fraction = True \(bool\)"):
        OnTheFlyDataset(loaded, anomaly_fraction=True)
    with pytest.raises(RecipeError, match="anomaly_fraction = nan is invalid"):
        OnTheFlyDataset(loaded, anomaly_fraction=float("nan"))
    with pytest.raises(RecipeError, match="length = 0 is invalid"):
        OnTheFlyDataset(loaded, length=0)
    no_train = load_demo_recipe(overrides=(*FAST_DEMO, "split.train_normal=0"))
    with pytest.raises(RecipeError, match="split.train_normal = 0 leaves no"):
        OnTheFlyDataset(no_train)

    def keep(image, mask):
        return image, mask

    with pytest.raises(RecipeError, match="with_normal=True with a transform"):
        OnTheFlyDataset(loaded, transform=keep, with_normal=True)
    numpy_options = OnTheFlyDataset(
        loaded, anomaly_fraction=np.float32(0.25), bank_size=np.int64(2)
    )
    assert numpy_options.anomaly_fraction == 0.25
    assert numpy_options.bank_size == 2
    dataset = OnTheFlyDataset(loaded, bank_size=1)
    with pytest.raises(ValueError, match="epoch = -1 is invalid"):
        dataset.set_epoch(-1)
    too_large = r"epoch = 9223372036854775808 is invalid; give an int <= 2\*\*63 - 1"
    with pytest.raises(ValueError, match=too_large):
        dataset.set_epoch(2**63)
    with pytest.raises(ValueError, match=too_large):
        dataset.set_epoch(np.uint64(2**63))
    dataset.set_epoch(2**63 - 1)
    assert dataset.epoch == 2**63 - 1
    with pytest.raises(IndexError, match="index 3 out of range for 3 items"):
        dataset[3]


@pytest.mark.parametrize("dtype", ["float32", np.float32])
def test_on_the_fly_rejects_non_torch_dtype(loaded, dtype):
    with pytest.raises(TypeError, match=r"give a torch\.dtype such as torch\.float32"):
        OnTheFlyDataset(loaded, dtype=dtype)


def test_on_the_fly_rejects_lossy_dtype_early(data_dir):
    # The PV recipe's real frames are uint8 JPEG levels, beyond int8's range.
    overrides = ("split.train_normal=2", "split.test_normal=0")
    overrides += ("split.test_anomalous=0",)
    loaded = load_recipe(RECIPES / "pv-module-hotspots.yaml", overrides=overrides)

    with pytest.raises(FrameError, match="uint8 do not fit exactly in torch.int8"):
        OnTheFlyDataset(loaded, dtype=torch.int8, bank_size=0)
    dataset = OnTheFlyDataset(loaded, dtype=torch.int16, bank_size=0)
    assert dataset.dtype == torch.int16


def test_on_the_fly_rejects_yaml_text():
    text = (RECIPES / "pv-module-hotspots.yaml").read_text()
    message = r"^got YAML text, not a path .*, or a dict from yaml\.safe_load\(text\)$"
    with pytest.raises(RecipeError, match=message):
        OnTheFlyDataset(text)


def _tab_item(*extra: str):
    joule = (
        "scenarios=[{kind: joule, region: tabs, current_A: 40, "
        "resistance_mohm: 2.0, duration_s: 60}]"
    )
    loaded = load_demo_recipe(overrides=(*FAST_DEMO, joule, *extra))
    dataset = OnTheFlyDataset(loaded, length=1, anomaly_fraction=1.0, bank_size=1)
    return dataset, dataset[0]


def test_on_the_fly_emissivity_regions_lower_peak():
    _, plain = _tab_item("camera.emissivity_regions={}")
    dataset, bare = _tab_item("camera.emissivity_regions={tabs: 0.1}")
    generator = dataset._worker_generator()
    frame = generator.read_frame(dataset.frame_indices[0])
    homography, _ = register(generator.recipe.registration, generator.layout, frame)
    emissivity = emissivity_map(
        generator.camera, generator.layout, homography, frame.shape
    )
    radius = blur_radius_px(generator.camera.blur_sigma_px)
    near = ndimage.binary_dilation(
        emissivity == 0.1, np.ones((2 * radius + 1,) * 2, bool)
    )
    plain_meta, bare_meta = json.loads(plain["metadata"]), json.loads(bare["metadata"])

    assert bare_meta["peak_rise_K"] == plain_meta["peak_rise_K"]
    assert bare_meta["peak_recorded_rise"] < plain_meta["peak_recorded_rise"]
    assert not torch.equal(bare["image"], plain["image"])
    far = torch.from_numpy(~near)
    assert torch.equal(bare["image"][..., far], plain["image"][..., far])


def test_hdf5_closeness_follows_split_rows(uint16_file):
    path, samples = uint16_file
    dtype = np.dtype([(name, np.float32) for name in CLOSENESS_COLUMNS])
    table = np.zeros(len(samples), dtype=dtype)
    table["contrast_noise"] = np.arange(len(samples)) + 0.5
    with h5py.File(path, "a") as file:
        file.create_dataset("closeness", data=table)

    test = HDF5Dataset(path, split="test")
    closeness = test.closeness()

    assert sorted(closeness) == sorted(CLOSENESS_COLUMNS)
    np.testing.assert_array_equal(closeness["contrast_noise"], [1.5, 3.5, 5.5])
    assert [test[i]["index"] for i in range(len(test))] == [1, 3, 5]


def test_hdf5_closeness_missing_names_command(uint16_file):
    path, _ = uint16_file
    with pytest.raises(FrameError, match="validate closeness --pseudo"):
        HDF5Dataset(path).closeness()


# Values of the first and the last inferno colour in the palette frames [C].
PALETTE_RANGE_C = (20.0, 30.0)


def write_palette_frames(folder, n_frames: int) -> None:
    """Render synthetic pouch-cell frames through inferno as RGB PNG files."""
    folder.mkdir()
    source = SyntheticPouchSource(n_frames, shape=(48, 64))
    low, high = PALETTE_RANGE_C
    lut = palette_lut("inferno")
    for i in range(n_frames):
        position = (source.read(i).values - low) / (high - low)
        levels = np.clip(np.rint(position * 255), 0, 255).astype(np.intp)
        cv2.imwrite(str(folder / f"frame_{i:02d}.png"), lut[levels][..., ::-1])


def palette_overrides(folder) -> list[str]:
    frames = (
        f"frames={{kind: images, path: {folder}, mode: palette, "
        f"palette: inferno, unit: C, value_range: {list(PALETTE_RANGE_C)}}}"
    )
    return [frames, "layout.resolution_mm=5.0", "physics.dt_s=30.0", "bank.mode=off"]


@pytest.fixture(scope="module")
def palette_output(tmp_path_factory):
    root = tmp_path_factory.mktemp("palette")
    write_palette_frames(root / "frames", 4)
    split = ["split.train_normal=2", "split.test_normal=1", "split.test_anomalous=2"]
    overrides = [*palette_overrides(root / "frames"), *split]
    generate(
        load_demo_recipe(overrides=[*overrides, f"output.dir={root / 'out'}"]),
        progress=False,
    )
    return root / "out" / "dataset.h5"


def test_hdf5_encoding_is_stored_palette(palette_output):
    dataset = HDF5Dataset(palette_output)

    for index in range(len(dataset)):
        encoding = dataset.encoding(index)
        assert isinstance(encoding, PaletteEncoding)
        np.testing.assert_array_equal(encoding.lut, palette_lut("inferno"))
        assert (encoding.low, encoding.high) == PALETTE_RANGE_C
        assert encoding.name == "inferno"
    with h5py.File(palette_output, "r") as f:
        assert f["encoding/palette_rgb"].attrs["unit"] == "C"
        metadata = json.loads(f["metadata"][0])
    assert metadata["encoding"]["name"] == "inferno"


def test_hdf5_palette_round_trip_outside_masks(palette_output):
    dataset = HDF5Dataset(palette_output)
    encoding = dataset.encoding()
    with h5py.File(palette_output, "r") as f:
        labels = f["labels"][:]
        for row in range(len(dataset)):
            stored, mask = f["frames"][row], f["masks"][row].astype(bool)
            source_path = json.loads(f["metadata"][row])["source_frame"]
            source = cv2.imread(source_path, cv2.IMREAD_COLOR)[..., ::-1]

            levels, _ = encoding.decode_levels(stored)
            recoloured = encoding.encode(encoding.decode(stored))
            np.testing.assert_array_equal(encoding.lut[levels][~mask], source[~mask])
            np.testing.assert_array_equal(recoloured[~mask], source[~mask])
            assert mask.any() == bool(labels[row])
    assert labels.sum() == 2


def test_hdf5_sequence_encoding_is_stored_palette(tmp_path):
    write_palette_frames(tmp_path / "frames", 2)
    overrides = [
        *palette_overrides(tmp_path / "frames"),
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=1",
        "sequence={fps: 0.2, window_s: 10}",
        f"output.dir={tmp_path / 'out'}",
    ]
    generate_sequences(load_demo_recipe(overrides=overrides), progress=False)

    encoding = HDF5Dataset(tmp_path / "out" / "dataset.h5").encoding(1)

    assert isinstance(encoding, PaletteEncoding)
    np.testing.assert_array_equal(encoding.lut, palette_lut("inferno"))
    assert (encoding.low, encoding.high, encoding.name) == (20.0, 30.0, "inferno")


def test_hdf5_encoding_linear(tmp_path):
    linear = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    samples = [make_sample(i, np.zeros((6, 8), np.uint16)) for i in range(2)]
    for sample in samples:
        sample.metadata["encoding"] = describe_encoding(linear)
    with HDF5Writer(tmp_path / "d.h5", attributes={}, frame_unit="C") as writer:
        for sample in samples:
            writer.write(sample)

    encoding = HDF5Dataset(tmp_path / "d.h5").encoding(-1)

    assert isinstance(encoding, LinearEncoding)
    assert encoding.dtype == np.uint16
    assert (encoding.scale_per_level, encoding.offset) == (0.01, -40.0)


def test_hdf5_encoding_unnamed_palette_rejected(tmp_path):
    unnamed = PaletteEncoding(palette_lut("inferno"), low=20.0, high=30.0)
    sample = make_sample(0, np.zeros((6, 8, 3), np.uint8))
    sample.metadata["encoding"] = describe_encoding(unnamed)
    with HDF5Writer(tmp_path / "d.h5", attributes={}, frame_unit="C") as writer:
        writer.write(sample)

    with pytest.raises(FrameError, match="stores no palette colours.*no colour bar"):
        HDF5Dataset(tmp_path / "d.h5").encoding()


def test_hdf5_encoding_missing_metadata_rejected(uint16_file):
    path, _ = uint16_file

    with pytest.raises(FrameError, match="row 0 of .* has no encoding"):
        HDF5Dataset(path).encoding(0)


def two_scenario_items(monkeypatch, bank_size):
    """Return a two-scenario dataset with fake physics, and its items' metadata."""
    monkeypatch.setattr(datasets_module, "simulate_rise", fake_rise)
    monkeypatch.setattr(datasets_module, "record_and_blend", fake_blend)
    overrides = (
        *FAST_DEMO,
        WEAK_AND_STRONG,
        "frames.shape=[48, 64]",
        "blend.max_tries=60",
        "blend.min_area_px=10",
    )
    dataset = OnTheFlyDataset(
        load_demo_recipe(overrides=overrides),
        length=N_SAMPLES,
        anomaly_fraction=1.0,
        bank_size=bank_size,
    )
    return dataset, [json.loads(dataset[i]["metadata"]) for i in range(len(dataset))]


def check_kinds_kept(dataset, metadata):
    """Check each item keeps its first-chosen scenario, in shares of the weights."""
    scenarios = dataset.loaded.recipe.scenarios
    for index, meta in enumerate(metadata):
        rng = item_rng(dataset.seed, 0, index)
        rng.random()  # the draw that made the item anomalous
        assert meta["scenario"] == choose_scenario(scenarios, rng).name, index
    kinds = [meta["scenario"] for meta in metadata]
    assert_weak_share(kinds, [meta["attempts"] for meta in metadata])


def test_on_the_fly_retry_keeps_scenario(monkeypatch):
    dataset, metadata = two_scenario_items(monkeypatch, bank_size=0)
    check_kinds_kept(dataset, metadata)


def test_on_the_fly_bank_retry_keeps_scenario(monkeypatch):
    # Each draw from a slot redraws its power, so a retry may pass on the
    # slot that failed.
    dataset, metadata = two_scenario_items(monkeypatch, bank_size=16)
    check_kinds_kept(dataset, metadata)

    names = [scenario.name for scenario in dataset.loaded.recipe.scenarios]
    slot_names = [names[i] for i in dataset._slot_scenarios]
    assert set(slot_names) == {"strong", "weak"}
    for meta in metadata:
        assert slot_names[meta["bank_slot"]] == meta["scenario"]


def test_slot_scenarios_cover_every_scenario(loaded):
    scenarios = loaded.recipe.scenarios
    for bank_size in (1, 2, 5):
        slots = slot_scenarios(3, scenarios, bank_size)
        first = [
            choose_scenario_index(scenarios, slot_rng(3, slot))
            for slot in range(bank_size)
        ]
        assert slots[:bank_size] == first
        assert sorted(set(slots)) == [0, 1]
        assert len(slots) <= bank_size + 1
    assert slot_scenarios(3, scenarios, 0) == []


def unit_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PLAUSIBILITY]


def test_on_the_fly_warns_kelvin_label_once(data_dir, caplog):
    # Celsius temperatures of a real radiometric frame, labelled kelvin.
    overrides = (
        "frames.unit=K",
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=0",
        "bank.mode=off",
    )
    loaded = load_recipe(RECIPES / "radiometric-cabinet.yaml", overrides=overrides)
    dataset = OnTheFlyDataset(loaded, length=3, anomaly_fraction=0.0, bank_size=0)
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        items = [dataset[i] for i in range(3)]

    messages = unit_warnings(caplog)
    assert [int(item["label"]) for item in items] == [0, 0, 0]
    assert len(messages) == 1
    assert "T640_celsius.npy[0] decodes to a median of -238.6 C" in messages[0]
    assert "from physics.ambient_C = 25 C" in messages[0]


def test_on_the_fly_warns_milliwatts_once(caplog):
    # 5000 W also saturates the synthetic 16-bit frames.
    milliwatts = "scenarios=[{kind: hotspot, power_W: 5000, radius_mm: 5.0}]"
    loaded = load_demo_recipe(overrides=(*FAST_DEMO, milliwatts))
    dataset = OnTheFlyDataset(loaded, length=2, anomaly_fraction=1.0, bank_size=0)
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        metadata = [json.loads(dataset[i]["metadata"]) for i in range(2)]

    messages = unit_warnings(caplog)
    assert min(meta["peak_rise_K"] for meta in metadata) > 1200.0
    assert min(meta["saturated_px"] for meta in metadata) > 0
    assert len(messages) == 2
    assert messages[0].startswith("item 0 (hotspot) rises ")
    assert "check that the scenario's power_W is in watts" in messages[0]
    saturated = metadata[0]["saturated_px"]
    assert messages[1].startswith(f"item 0 (hotspot) has {saturated} mask pixels")


def test_on_the_fly_demo_items_do_not_warn(loaded, caplog):
    dataset = OnTheFlyDataset(loaded, length=3, anomaly_fraction=0.5, bank_size=1)
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        labels = [int(dataset[i]["label"]) for i in range(3)]

    assert 0 < sum(labels) < 3
    assert not unit_warnings(caplog)


def _log_to_queue(queue, worker_id: int) -> None:
    """DataLoader worker_init_fn: send thermosynth's log records to ``queue``."""
    logging.getLogger("thermosynth").addHandler(logging.handlers.QueueHandler(queue))


class _EpochOrder(Sampler[int]):
    """Sampler that takes its item order from the dataset's epoch."""

    def __init__(self, dataset: OnTheFlyDataset, orders: list[list[int]]) -> None:
        self.dataset = dataset
        self.orders = orders

    def __iter__(self):
        return iter(self.orders[self.dataset.epoch])

    def __len__(self) -> int:
        return len(self.orders[0])


def _anomalous_first(dataset: OnTheFlyDataset, epoch: int) -> list[int]:
    """Return two anomalous then two normal item indices of ``epoch``."""
    anomalous, normal = [], []
    for index in range(len(dataset)):
        draw = item_rng(dataset.seed, epoch, index).random()
        (anomalous if draw < dataset.anomaly_fraction else normal).append(index)
    return anomalous[:2] + normal[:2]


def test_on_the_fly_workers_warn_once_per_run(caplog):
    # 5000 W rises implausibly and clips mask pixels, and the specific heat
    # is an implausible material, logged when the generator is built. Fork
    # only: spawn shares the flags as it shares the epoch, and its four
    # fresh interpreters took 34 s on a shared 2-core machine.
    overrides = (
        *FAST_DEMO,
        "scenarios=[{kind: hotspot, power_W: 5000, radius_mm: 5.0}]",
        "materials={cell: {base: pouch_cell, rho_cp_J_m3K: 6.0e6}}",
    )
    queue = multiprocessing.get_context("fork").Queue()
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        dataset = OnTheFlyDataset(
            load_demo_recipe(overrides=overrides),
            length=12,
            anomaly_fraction=0.5,
            bank_size=1,
        )
        # Batch 0 goes to worker 0 and batch 1 to worker 1. So only worker 0
        # draws anomalies in epoch 0, and only worker 1, a new process, in
        # epoch 1.
        first = _anomalous_first(dataset, 0)
        second = _anomalous_first(dataset, 1)
        orders = [first, second[2:] + second[:2]]
        loader = DataLoader(
            dataset,
            batch_size=2,
            sampler=_EpochOrder(dataset, orders),
            num_workers=2,
            worker_init_fn=functools.partial(_log_to_queue, queue),
            multiprocessing_context="fork",
        )
        labels = []
        for epoch in (0, 1):
            dataset.set_epoch(epoch)
            labels.append([int(x) for batch in loader for x in batch["label"]])
    messages = [r.getMessage() for r in caplog.records]
    while True:
        try:
            messages.append(queue.get(timeout=1.0).getMessage())
        except Empty:
            break

    assert labels == [[1, 1, 0, 0], [0, 0, 1, 1]]
    rises = [m for m in messages if "above ambient" in m]
    clipped = [m for m in messages if "mask pixels clipped" in m]
    materials = [m for m in messages if "materials.cell.rho_cp_J_m3K" in m]
    assert len(rises) == 1
    assert rises[0].startswith(f"item {first[0]} (hotspot) rises ")
    assert len(clipped) == 1
    assert len(materials) == 1


def test_image_tensor_copies_read_only_frame():
    frame = np.arange(12, dtype=np.float32).reshape(3, 4)
    frame.flags.writeable = False

    tensor = to_image_tensor(frame, torch.float32)
    tensor += 100.0

    assert frame[0, 0] == 0.0
    assert tensor[0, 0, 0] == 100.0


def test_hdf5_transform_mask_sets_label(uint16_file):
    path, _ = uint16_file
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0), levels_per_kelvin=100.0)
    no_spot = ThermalHotspot(p=0.0)

    def clear_mask(image, mask):
        return image, torch.zeros_like(mask)

    assert int(HDF5Dataset(path)[0]["label"]) == 0
    heated = HDF5Dataset(path, transform=hotspot)[0]
    assert bool(heated["mask"].any())
    assert heated["label"].dtype == torch.int64
    assert int(heated["label"]) == 1
    assert int(HDF5Dataset(path, transform=no_spot)[0]["label"]) == 0
    assert int(HDF5Dataset(path, transform=clear_mask)[1]["label"]) == 1


def test_on_the_fly_transform_mask_sets_label(loaded):
    hotspot = ThermalHotspot(peak_K=(3.0, 3.0), levels_per_kelvin=100.0)
    dataset = OnTheFlyDataset(
        loaded, length=2, anomaly_fraction=0.0, bank_size=0, transform=hotspot
    )

    for item in (dataset[0], dataset[1]):
        assert bool(item["mask"].any())
        assert int(item["label"]) == 1


INDEX_TYPES = [torch.tensor(1), torch.tensor(1, dtype=torch.uint8), np.int64(1)]
BAD_INDICES = [1.0, torch.tensor(1.0), True, np.bool_(True), torch.tensor(True), "1"]


def test_hdf5_index_integer_types(uint16_file):
    path, _ = uint16_file
    dataset = HDF5Dataset(path)

    for index in INDEX_TYPES:
        assert dataset[index]["index"] == 1
    assert dataset[torch.tensor(-1)]["index"] == 5
    for index in BAD_INDICES:
        with pytest.raises(TypeError, match=r"give an int, a numpy integer or a 0-d"):
            dataset[index]

    indices = torch.arange(4)
    subset = [b["index"].tolist() for b in DataLoader(Subset(dataset, indices))]
    assert subset == [[0], [1], [2], [3]]
    sampler = SubsetRandomSampler(indices)
    drawn = next(iter(DataLoader(dataset, sampler=sampler, batch_size=4)))
    assert sorted(drawn["index"].tolist()) == [0, 1, 2, 3]


def test_on_the_fly_index_integer_types(loaded):
    dataset = OnTheFlyDataset(loaded, length=4, anomaly_fraction=0.0, bank_size=0)

    for index in INDEX_TYPES:
        assert dataset[index]["index"] == 1
    for index in BAD_INDICES:
        with pytest.raises(TypeError, match=r"give an int, a numpy integer or a 0-d"):
            dataset[index]
    subset = Subset(dataset, torch.arange(2))
    assert next(iter(DataLoader(subset, batch_size=2)))["index"].tolist() == [0, 1]


def test_on_the_fly_takes_dict(loaded):
    data = yaml.safe_load(loaded.text)

    dataset = OnTheFlyDataset(data, bank_size=1)

    assert len(dataset) == 3
    assert dataset.loaded.source == "<dict>"
    assert dataset.loaded.recipe == loaded.recipe
    data["blend"] = {"noise_multipel": 3.0}
    message = r"<dict>: unknown key 'blend.noise_multipel'; did you mean"
    with pytest.raises(RecipeError, match=message):
        OnTheFlyDataset(data)


@pytest.mark.parametrize("recipe", [3, ["seed: 1"], b"seed: 1"])
def test_on_the_fly_rejects_other_recipe_types(recipe):
    message = rf"got a {type(recipe).__name__} as its recipe; give a recipe file"
    with pytest.raises(TypeError, match=message):
        OnTheFlyDataset(recipe)


def test_on_the_fly_base_dir_only_for_dict(loaded, tmp_path):
    with pytest.raises(ValueError, match="base_dir applies only to a recipe given"):
        OnTheFlyDataset(loaded, base_dir=tmp_path)


@pytest.mark.parametrize("length", [2.5, "8", True, np.float64(2.0)])
def test_on_the_fly_rejects_non_integer_length(loaded, length):
    message = rf"length = {re.escape(repr(length))} \({type(length).__name__}\)"
    with pytest.raises(RecipeError, match=message):
        OnTheFlyDataset(loaded, length=length)


def test_on_the_fly_length_accepts_numpy_int(loaded):
    assert len(OnTheFlyDataset(loaded, length=np.int64(2), bank_size=1)) == 2
    with pytest.raises(RecipeError, match="length = -1 is invalid"):
        OnTheFlyDataset(loaded, length=-1)


def test_on_the_fly_no_training_frames_names_fix():
    one_frame = (
        "frames.n_frames=1",
        "split.train_normal=0",
        "split.test_normal=1",
        "split.test_anomalous=2",
    )
    fixes = ["split.train_normal=1", "split.test_normal=0", "split.test_anomalous=0"]
    message = re.escape(f"change the recipe to {', '.join(fixes)}")

    with pytest.raises(RecipeError, match=message):
        OnTheFlyDataset(load_demo_recipe(overrides=one_frame))
    fixed = load_demo_recipe(overrides=(*one_frame, *fixes))
    assert len(OnTheFlyDataset(fixed, bank_size=1)) == 1


def test_on_the_fly_encoding_decodes_items(loaded):
    dataset = OnTheFlyDataset(loaded, length=4, anomaly_fraction=0.0, bank_size=0)
    generator = dataset._worker_generator()

    encoding = dataset.encoding(3)
    assert isinstance(encoding, LinearEncoding)
    raw = dataset[3]["image"][0].numpy().astype(np.uint16)
    frame = generator.read_frame(dataset.frame_indices[0])
    np.testing.assert_allclose(encoding.decode(raw), frame.values)
    with pytest.raises(IndexError, match="index 4 out of range for 4 items"):
        dataset.encoding(4)
