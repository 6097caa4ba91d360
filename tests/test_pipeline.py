"""End to end: real frames in, anomalous frames, masks and metadata out."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from thermosynth.build import build_source
from thermosynth.cli import Terminated
from thermosynth.datasets import HDF5Dataset, OnTheFlyDataset
from thermosynth.errors import FrameError
from thermosynth.pipeline import (
    _explain_failure,
    _explain_interrupt,
    generate,
    plan_split,
)
from thermosynth.recipe import load_demo_recipe, load_recipe, parse_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SMALL = ("split.train_normal=2", "split.test_normal=1", "split.test_anomalous=2")
ONE_FRAME = ("split.train_normal=0", "split.test_normal=1", "split.test_anomalous=2")


def run(recipe: str, out: Path, *extra: str):
    split = SMALL if recipe != "radiometric-cabinet.yaml" else ONE_FRAME
    overrides = (*split, f"output.dir={out}", f"bank.path={out}.bank.h5", *extra)
    loaded = load_recipe(RECIPES / recipe, overrides=overrides)
    generate(loaded, progress=False)
    return loaded


def source_frames(loaded, h5):
    source = build_source(loaded.recipe.frames, seed=loaded.recipe.seed)
    index = {name: i for i, name in enumerate(source.sources)}
    for i, raw in enumerate(h5["metadata"]):
        name = json.loads(raw)["source_frame"]
        yield i, source.read(index[name])


@pytest.mark.parametrize(
    "recipe",
    [
        "flir-pouch-cell.yaml",
        "pv-module-hotspots.yaml",
        "pv-thin-film-hotspots.yaml",
        "radiometric-cabinet.yaml",
    ],
)
def test_fixed_gain_changes_only_masked_pixels(recipe, data_dir, tmp_path):
    loaded = run(recipe, tmp_path / "out")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        labels = h5["labels"][:]
        assert labels.sum() == 2
        for i, frame in source_frames(loaded, h5):
            raw, mask = h5["frames"][i], h5["masks"][i].astype(bool)
            outside = ~mask if raw.ndim == 2 else np.repeat(~mask[..., None], 3, axis=2)
            np.testing.assert_array_equal(raw[outside], frame.raw[outside])
            assert not (mask & ~frame.valid).any()
            if labels[i]:
                assert mask.any()
                assert (raw != frame.raw).any()
            recorded = h5["recorded_rise"][i]
            np.testing.assert_array_equal(mask, recorded > 0)


@pytest.mark.parametrize(
    ("recipe", "kind"),
    [("flir-pouch-cell.yaml", "palette"), ("radiometric-cabinet.yaml", "linear")],
)
def test_metadata_encoding_decodes_frames(recipe, kind, data_dir, tmp_path):
    loaded = run(recipe, tmp_path / "out")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        for i, frame in source_frames(loaded, h5):
            encoding = json.loads(h5["metadata"][i])["encoding"]
            assert encoding["kind"] == kind
            if kind == "linear":
                raw = h5["frames"][i].astype(np.float64)
                values = raw * encoding["scale_per_level"] + encoding["offset"]
            else:
                levels = frame.encoding.decode_levels(frame.raw)[0]
                span = encoding["high"] - encoding["low"]
                values = encoding["low"] + levels / (encoding["n_levels"] - 1) * span
            valid = frame.valid & ~h5["masks"][i].astype(bool)
            np.testing.assert_allclose(values[valid], frame.values[valid], atol=1e-9)


def test_colorbar_encoding_read_back_from_frame(data_dir, tmp_path):
    loaded = run("flir-pouch-cell.yaml", tmp_path / "out")
    dataset = HDF5Dataset(tmp_path / "out" / "dataset.h5")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        assert "encoding" not in h5  # a colour bar's palette is not stored
        for i, frame in source_frames(loaded, h5):
            encoding = dataset.encoding(i)
            assert encoding.colorbar_px == ((306, 312), (30, 207))
            np.testing.assert_array_equal(encoding.lut, frame.encoding.lut)
            assert (encoding.low, encoding.high) == (25.0, 50.0)

            values = encoding.decode(h5["frames"][i])
            outside = frame.valid & ~h5["masks"][i].astype(bool)
            np.testing.assert_allclose(values[outside], frame.values[outside])


def test_stretch_gain_keeps_pixels_outside_roi(data_dir, tmp_path):
    loaded = run("battery-station-inferno.yaml", tmp_path / "out")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        for i, frame in source_frames(loaded, h5):
            raw = h5["frames"][i]
            np.testing.assert_array_equal(raw[~frame.valid], frame.raw[~frame.valid])
            np.testing.assert_array_equal(
                h5["masks"][i].astype(bool), h5["recorded_rise"][i] > 0
            )


def test_stored_recipe_resolves_against_recipe_dir(data_dir, tmp_path):
    loaded = run("radiometric-cabinet.yaml", tmp_path / "out")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        text = h5.attrs["recipe_yaml"]
        recipe_dir = Path(h5.attrs["recipe_dir"])

    stored_path = yaml.safe_load(text)["frames"]["path"]
    resolved = (recipe_dir / stored_path).resolve()
    again = parse_recipe(text, source="dataset.h5", base_dir=recipe_dir)
    frames = data_dir / "radiometric-samples" / "decoded_celsius"

    assert recipe_dir == RECIPES
    assert stored_path.startswith("../")
    assert resolved.is_file()
    assert resolved == (frames / "FLIR_T640_celsius.npy").resolve()
    assert again.recipe.frames.path == loaded.recipe.frames.path
    assert again.sha256 == loaded.sha256


def test_metadata_records_severity_and_parameters(data_dir, tmp_path):
    run("radiometric-cabinet.yaml", tmp_path / "out")
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        meta = json.loads(h5["metadata"][1])
        assert h5.attrs["recipe_sha256"]
        assert "recipe_yaml" in h5.attrs
        assert h5["frames"].attrs["unit"] == "C"
        assert h5["recorded_rise"].attrs["unit"] == "K"
        assert meta["recorded_unit"] == "K"
        mask_area = int(h5["masks"][1].sum())
    assert meta["area_px"] == mask_area
    assert meta["peak_rise_K"] > 0
    assert meta["kind"] in ("hotspot", "joule")
    assert meta["params"]["power_W"] > 0
    assert len(meta["corners_px"]) == 4


def test_folder_tree_matches_hdf5(data_dir, tmp_path):
    run("pv-module-hotspots.yaml", tmp_path / "out")
    folder = tmp_path / "out" / "folder"
    assert len(list((folder / "train" / "good").glob("*.png"))) == 2
    assert len(list((folder / "test" / "good").glob("*.png"))) == 1
    kinds = [d for d in (folder / "test").iterdir() if d.name != "good"]
    assert {d.name for d in kinds} <= {"hot_cell", "hot_spot", "hot_region"}
    assert sum(len(list(d.glob("*.png"))) for d in kinds) == 2
    for kind in kinds:
        masks = list((folder / "ground_truth" / kind.name).glob("*_mask.png"))
        assert len(masks) == len(list(kind.glob("*.png")))


def test_same_seed_same_bytes(tmp_path):
    out = tmp_path / "out"
    overrides = (*SMALL, "frames.n_frames=6", f"output.dir={out}")
    generate(load_demo_recipe(overrides=overrides), progress=False)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    generate(load_demo_recipe(overrides=overrides), overwrite=True, progress=False)
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(first) == sorted(second)
    for name, data in first.items():
        assert data == second[name], name


def test_other_seed_other_anomalies(tmp_path):
    masks = []
    for seed in (1, 2):
        out = tmp_path / str(seed)
        generate(
            load_demo_recipe(overrides=(*SMALL, f"seed={seed}", f"output.dir={out}")),
            progress=False,
        )
        with h5py.File(out / "dataset.h5", "r") as h5:
            masks.append(h5["masks"][-1])
    assert (masks[0] != masks[1]).any()


def test_split_keeps_training_frames_out_of_test():
    loaded = load_demo_recipe(
        overrides=(
            "split.train_normal=5",
            "split.test_normal=3",
            "split.test_anomalous=9",
            "frames.n_frames=10",
        )
    )
    plan = plan_split(loaded.recipe, 10)
    assert len(set(plan.train_normal)) == 5
    assert not set(plan.train_normal) & set(plan.test_normal)
    assert not set(plan.train_normal) & set(plan.test_anomalous)
    assert len(plan.test_anomalous) == 9


@pytest.mark.parametrize(("n_anomalous", "shared"), [(2, 0), (5, 3), (9, 3)])
def test_anomalies_prefer_frames_of_no_test_normal(n_anomalous, shared):
    overrides = (
        "split.train_normal=5",
        "split.test_normal=3",
        f"split.test_anomalous={n_anomalous}",
    )
    plan = plan_split(load_demo_recipe(overrides=overrides).recipe, 10)

    assert len(set(plan.test_anomalous)) == min(n_anomalous, 5)
    assert len(set(plan.test_anomalous) & set(plan.test_normal)) == shared


def split_plan(train: int, test_normal: int, test_anomalous: int, n_frames: int):
    counts = (train, test_normal, test_anomalous)
    names = ("train_normal", "test_normal", "test_anomalous")
    overrides = [f"split.{name}={n}" for name, n in zip(names, counts, strict=True)]
    return plan_split(load_demo_recipe(overrides=overrides).recipe, n_frames)


def test_split_test_frames_ignore_train_count():
    first = split_plan(0, 3, 4, 12)
    for train in (1, 2, 5):
        plan = split_plan(train, 3, 4, 12)
        assert plan.test_normal == first.test_normal, train
        assert plan.test_anomalous == first.test_anomalous, train


def test_split_train_frames_ignore_test_counts():
    first = split_plan(5, 0, 0, 12)
    for test_normal, test_anomalous in [(3, 2), (7, 20), (0, 9)]:
        plan = split_plan(5, test_normal, test_anomalous, 12)
        assert plan.train_normal == first.train_normal, (test_normal, test_anomalous)


@pytest.mark.parametrize("train", [0, 1, 4, 7])
@pytest.mark.parametrize(("test_normal", "test_anomalous"), [(0, 5), (2, 3), (3, 9)])
def test_split_guarantees_hold(train, test_normal, test_anomalous):
    plan = split_plan(train, test_normal, test_anomalous, 10)
    n_unused = 10 - train - test_normal
    train_set, normal_set = set(plan.train_normal), set(plan.test_normal)

    assert len(train_set) == train
    assert len(normal_set) == test_normal
    assert not train_set & normal_set
    assert not train_set & set(plan.test_anomalous)
    # Anomalies take every unused frame before any test normal frame.
    before_wrap = plan.test_anomalous[:n_unused]
    assert len(set(before_wrap)) == min(test_anomalous, n_unused)
    assert not set(before_wrap) & normal_set
    if test_anomalous > n_unused and test_normal:
        assert plan.test_anomalous[n_unused] in normal_set


def test_seed_recorded_in_outputs(tmp_path):
    out = tmp_path / "out"
    overrides = (*SMALL, "frames.n_frames=6", "seed=11", f"output.dir={out}")
    generate(load_demo_recipe(overrides=overrides), progress=False)

    with h5py.File(out / "dataset.h5", "r") as h5:
        assert h5.attrs["seed"] == 11
    with h5py.File(next((out / "shards").glob("shard-*.h5")), "r") as h5:
        assert h5.attrs["seed"] == 11
    assert json.loads((out / "manifest.json").read_text())["seed"] == 11


def test_split_message_names_recipe():
    loaded = load_demo_recipe(overrides=("frames.n_frames=4", "split.train_normal=5"))

    with pytest.raises(FrameError, match=r"^r\.yaml: split asks for 5 training"):
        plan_split(loaded.recipe, 4, source="r.yaml")
    with pytest.raises(FrameError, match=r"^<demo>: split asks for 5 training"):
        OnTheFlyDataset(loaded)


def test_physics_attribute_records_materials(tmp_path):
    out = tmp_path / "out"
    cell = "materials.cell={base: pouch_cell, k_through_W_mK: 0.8, rho_cp_J_m3K: 2e6}"
    overrides = (*SMALL, "frames.n_frames=6", f"output.dir={out}", cell)
    loaded = load_demo_recipe(overrides=overrides)
    generate(loaded, progress=False)

    with h5py.File(out / "dataset.h5") as f:
        physics = json.loads(f.attrs["physics_json"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["physics"] == physics

    assert physics["materials"]["cell"] == {
        "k_x_W_mK": 26.6,
        "k_y_W_mK": 26.6,
        "k_z_W_mK": 0.8,
        "rho_cp_J_m3K": 2e6,
    }
    assert physics["materials"]["copper"]["k_x_W_mK"] == 401.0
    assert set(physics["materials"]) == {"cell", "aluminium", "copper", "air"}
    assert physics["solver"] == "adi"
    assert physics["precision"] == "float32"
    assert physics["dt_s"] == 5.0
    assert physics["n_layers"] == 3
    assert physics["ambient_C"] == 23.0
    assert physics["h_top_W_m2K"] == 10.0
    assert physics["h_bottom_W_m2K"] == 5.0
    assert physics["emissivity_top"] == 0.9
    assert physics["emissivity_bottom"] == 0.0
    assert physics["thickness_mm"] == 6.0


def test_split_message_names_frames_select(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text("[]")
    frames = (
        f"frames={{kind: images, path: {tmp_path}, unit: level, select: "
        f"{{metadata: {meta}, path_key: file, where: {{label: normal}}}}}}"
    )
    recipe = load_demo_recipe(overrides=(frames, "split.train_normal=5")).recipe

    with pytest.raises(
        FrameError, match=r"only 4 after frames\.select removed"
    ) as info:
        plan_split(recipe, 4, source="r.yaml")
    assert "meta.json does not list with {'label': 'normal'}" in str(info.value)
    assert str(info.value).endswith("--set frames.select=null")


@pytest.mark.parametrize(
    ("n_shards", "start"),
    [(1, "the only shard was not complete"), (3, "none of the 3 shards was complete")],
)
def test_interrupt_without_shards_explained(n_shards, start, tmp_path):
    explained = _explain_interrupt(Terminated(), tmp_path, 0, n_shards)

    assert type(explained) is Terminated
    assert str(explained) == (
        f"{start}, so no output was written; a smaller output.shard_size keeps "
        "more of an interrupted run for --resume"
    )


@pytest.mark.parametrize(
    ("overwrite", "target_exists", "options"),
    [
        (True, True, "--resume --overwrite (resume=True, overwrite=True in Python)"),
        (True, False, "--resume (resume=True in Python)"),
        (False, True, "--resume (resume=True in Python)"),
    ],
)
def test_failure_names_rerun_options(overwrite, target_exists, options, tmp_path):
    stage, target = tmp_path / "stage", tmp_path / "out"
    (stage / "shards").mkdir(parents=True)
    (stage / "shards" / "shard-000000.json").write_text("{}")
    if target_exists:
        target.mkdir()

    explained = _explain_failure(
        FrameError("bad frame"), stage, target, n_shards=3, overwrite=overwrite
    )

    assert type(explained) is FrameError
    assert str(explained) == (
        f"bad frame; 1 complete shard is kept in {stage}; after fixing this, "
        f"run again with {options} to reuse them"
    )
    assert stage.is_dir()


def test_stretch_metadata_maps_rise_to_stored(data_dir, tmp_path):
    loaded = run("battery-station-inferno.yaml", tmp_path / "out")
    checked = 0
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        for i, frame in source_frames(loaded, h5):
            if h5["labels"][i] == 0:
                continue
            metadata = json.loads(h5["metadata"][i])
            stored = frame.encoding.decode(h5["frames"][i])
            before = frame.values + h5["recorded_rise"][i]
            mapped = metadata["stretch_gain"] * before + metadata["stretch_offset"]
            error = np.abs(stored - mapped)[frame.valid]

            # A peak above the frame's range maps inside it, so the gain is < 1.
            assert 0.0 < metadata["stretch_gain"] <= 1.0
            assert error.max() <= frame.encoding.quantum
            checked += 1
    assert checked == 2


@pytest.mark.parametrize(
    ("counts", "warned"),
    [((2, 1, 2), False), ((3, 1, 2), True), ((0, 1, 6), False)],
)
def test_split_past_frames_logged(counts, warned, caplog):
    # Five frames: 2 + 1 + 2 fit, 3 + 1 + 2 leave one anomaly on a frame
    # that the training count picks, and no training frames are never logged.
    recipe = load_demo_recipe(
        overrides=[
            f"split.{key}={value}"
            for key, value in zip(
                ("train_normal", "test_normal", "test_anomalous"), counts, strict=True
            )
        ]
    ).recipe
    with caplog.at_level("INFO", logger="thermosynth.samples"):
        plan_split(recipe, 5, source="demo.yaml")

    assert ("the last 1 test anomalies" in caplog.text) == (counts == (3, 1, 2))
    assert ("split asks for" in caplog.text) == warned
