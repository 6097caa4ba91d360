"""The 8-bit folder scale's range: clipped mask pixels, level step, file names."""

from __future__ import annotations

import json
import logging
import re

import cv2
import h5py
import numpy as np
import pytest
import yaml
from small_sequences import SMALL_SEQUENCES

from thermosynth import pipeline
from thermosynth.errors import RecipeError, ThermosynthError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.synthetic import SyntheticPouchSource
from thermosynth.output import folder_levels
from thermosynth.output.folder import EightBitScale
from thermosynth.output.folder_levels import clipping_message, round_up
from thermosynth.output.shards import ShardResult
from thermosynth.pipeline import generate
from thermosynth.recipe import load_demo_recipe, load_recipe

FAST = ("layout.resolution_mm=5.0", "physics.dt_s=30.0")
SPLIT = ("split.train_normal=1", "split.test_normal=1", "split.test_anomalous=3")
SEQUENCES = SMALL_SEQUENCES
FITS = re.compile(r"Set it to ([0-9.e+-]+) or more")


def frame_of(raw: np.ndarray) -> Frame:
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01)
    valid = np.ones(raw.shape, bool)
    return Frame(raw, encoding.decode(raw), "C", valid, encoding, 0.01, "x")


def test_scale_counts_clipped_mask_px():
    scale = EightBitScale.from_frame(frame_of(np.array([[1000, 2000]], np.uint16)))
    top = scale.raw_offset + 255 * scale.raw_per_level
    raw = np.array([[900, 1500, top, top + scale.raw_per_level]])
    mask = np.array([[True, True, True, True]])

    assert scale.clipped_px(raw, mask) == 2
    assert scale.clipped_px(raw, ~mask) == 0
    assert scale.clipped_px(raw, np.array([[False, True, True, True]])) == 1


def test_scale_headroom_widens_range():
    frame = frame_of(np.array([[1000, 2000]], np.uint16))
    default = EightBitScale.from_frame(frame)
    wide = EightBitScale.from_frame(frame, headroom=3.0)

    assert default.raw_per_level == pytest.approx(2 * 1000 / 255)
    assert wide.raw_per_level == pytest.approx(4 * 1000 / 255)
    assert wide.raw_offset == default.raw_offset


def test_scale_spans_every_frame():
    cold = frame_of(np.array([[1000, 1200]], np.uint16))
    warm = frame_of(np.array([[1500, 2000]], np.uint16))
    scale = EightBitScale.from_frames([warm, cold], headroom=0.5)

    assert scale.raw_offset == 1000
    assert scale.raw_per_level == pytest.approx(1.5 * 1000 / 255)
    assert scale.value_offset == pytest.approx(10.0)
    assert scale.apply(np.array([1000, 2000])).tolist() == [0, 170]


def test_scale_headroom_to_fit():
    frame = frame_of(np.array([[1000, 2000]], np.uint16))
    scale = EightBitScale.from_frame(frame)
    raw = np.array([[1500, 5000]])

    assert scale.headroom_to_fit(raw, np.array([[True, True]])) == pytest.approx(3.0)
    assert scale.headroom_to_fit(raw, np.array([[True, False]])) is None
    assert scale.headroom_to_fit(raw, np.zeros((1, 2), bool)) is None
    fitted = EightBitScale.from_frame(frame, headroom=3.0)
    assert fitted.apply(raw)[0, 1] == 255
    assert fitted.clipped_px(raw, np.array([[True, True]])) == 0


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(0.7668810289, 0.767), (0.0605, 0.0605), (1234.5, 1240.0), (3.0, 3.0)],
)
def test_round_up_three_digits(value, rounded):
    assert round_up(value) == pytest.approx(rounded)
    assert round_up(value) >= value


def run_demo(tmp_path, *extra: str, sequences: bool = False):
    out = tmp_path / "out"
    split = SEQUENCES if sequences else SPLIT
    overrides = (*FAST, *split, f"output.dir={out}", *extra)
    generate(load_demo_recipe(overrides=overrides), progress=False, overwrite=True)
    with h5py.File(out / "dataset.h5", "r") as h5:
        labels = h5["labels"][:]
        metadata = [json.loads(text) for text in h5["metadata"][:]]
    return [meta for meta, label in zip(metadata, labels, strict=True) if label]


def test_clipped_mask_px_warned_and_recorded(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        anomalous = run_demo(tmp_path, "output.folder_headroom=0.01")

    counts = [meta["folder_clipped_px"] for meta in anomalous]
    warnings = [r.message for r in caplog.records if "folder_clipped_px" in r.message]
    assert sum(counts) > 0
    assert len(warnings) == 1
    assert f"have {sum(counts)} mask pixels clipped" in warnings[0]
    assert "output.folder_headroom" in warnings[0]


def test_wide_headroom_clips_nothing(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="thermosynth"):
        anomalous = run_demo(tmp_path, "output.folder_headroom=50")

    messages = [record.message for record in caplog.records]
    assert [meta["folder_clipped_px"] for meta in anomalous] == [0, 0, 0]
    assert not [m for m in messages if "folder_clipped_px" in m]
    assert [m for m in messages if "K per 8-bit level" in m]


def clipping_warnings(caplog) -> list[str]:
    return [r.message for r in caplog.records if "folder_clipped_px" in r.message]


def test_warned_headroom_clips_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        run_demo(tmp_path, "output.folder_headroom=0.01")
    warnings = clipping_warnings(caplog)
    assert len(warnings) == 1
    assert "output.folder_headroom is 0.01 " in warnings[0]
    fits = FITS.search(warnings[0])
    assert fits is not None
    headroom = float(fits.group(1))
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        fitted = run_demo(tmp_path, f"output.folder_headroom={headroom}")
    assert [meta["folder_clipped_px"] for meta in fitted] == [0, 0, 0]
    assert not clipping_warnings(caplog)

    # One percent less range than the named headroom clips again, so the
    # named value is close to the smallest that fits.
    narrower = 0.99 * (1.0 + headroom) - 1.0
    clipped = run_demo(tmp_path, f"output.folder_headroom={narrower}")
    assert sum(meta["folder_clipped_px"] for meta in clipped) > 0


def test_resumed_run_names_same_headroom(tmp_path, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        run_demo(tmp_path, "output.folder_headroom=0.01")
    unbroken = clipping_warnings(caplog)
    caplog.clear()

    def fail(*args, **kwargs):
        raise ThermosynthError("stopped")

    overrides = (*FAST, *SPLIT, "output.shard_size=1", "output.folder_headroom=0.01")
    loaded = load_demo_recipe(overrides=[*overrides, f"output.dir={tmp_path / 'r'}"])
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_join_shards", fail)
        with pytest.raises(ThermosynthError, match="5 complete shards are kept"):
            generate(loaded, progress=False)
    # Every shard comes from its marker, so the figures of the warning do too.
    monkeypatch.setattr(pipeline, "write_shard", fail)
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(loaded, progress=False, resume=True)

    assert len(unbroken) == 1
    assert clipping_warnings(caplog) == unbroken


@pytest.mark.parametrize("sequences", [False, True])
def test_complete_output_resumed_warns_again(tmp_path, caplog, sequences):
    split = SEQUENCES if sequences else SPLIT
    out = tmp_path / "out"
    overrides = [*FAST, *split, "output.folder_headroom=0.01", f"output.dir={out}"]
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(load_demo_recipe(overrides=overrides), progress=False)
    first = clipping_warnings(caplog)
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        summary = generate(
            load_demo_recipe(overrides=overrides), progress=False, resume=True
        )

    assert summary.already_complete
    assert len(first) == 1
    assert clipping_warnings(caplog) == first


def test_sequence_clipping_recorded_and_warned(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        anomalous = run_demo(tmp_path, "output.folder_headroom=0.01", sequences=True)
    counts = [meta["folder_clipped_px"] for meta in anomalous]
    total = sum(sum(per_frame) for per_frame in counts)
    warnings = clipping_warnings(caplog)
    assert [len(per_frame) for per_frame in counts] == [4, 4]
    assert total > 0
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"2 anomalous sequences (such as 2, 3) have {total} mask pixels clipped"
    )
    fits = FITS.search(warnings[0])
    assert fits is not None
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        fitted = run_demo(
            tmp_path, f"output.folder_headroom={fits.group(1)}", sequences=True
        )
    assert [meta["folder_clipped_px"] for meta in fitted] == [[0] * 4, [0] * 4]
    assert not clipping_warnings(caplog)


def test_sequence_folder_is_eight_bit(tmp_path):
    run_demo(tmp_path, sequences=True)
    folder = tmp_path / "out" / "folder"
    image = cv2.imread(str(folder / "test/hotspot/000002/0003.png"), -1)
    scale = json.loads((folder / "scale.json").read_text())
    assert image.dtype == np.uint8
    assert scale["source_dtype"] == "uint16"


def result_of(clipped, fits) -> ShardResult:
    return ShardResult(
        0, 2, "C", folder_clipped_px=clipped, folder_headroom_to_fit=fits
    )


def test_clipping_message_without_fit():
    scale = EightBitScale(raw_offset=0.0, raw_per_level=1.0, source_dtype="uint16")
    below_minimum = clipping_message([result_of([[1, 4]], [])], scale, noun="sample")
    old_marker = clipping_message(
        [result_of([[1, 4]], None), result_of([[3, 2]], [[3, 2.5]])],
        scale,
        noun="sample",
    )
    assert below_minimum.startswith("anomalous sample 1 has 4 mask pixels")
    assert "No headroom helps" in below_minimum
    assert old_marker.startswith("2 anomalous samples (such as 1, 3) have 6 mask")
    assert "run without --resume to have it named" in old_marker
    assert FITS.search(old_marker) is None


def eight_bit_frames(folder, n_frames: int = 4) -> str:
    """Write demo-like frames as 8-bit greyscale PNG, 0.1 K per level from 20 C.

    Return the recipe override that reads them.
    """
    folder.mkdir()
    source = SyntheticPouchSource(n_frames, shape=(48, 64), seed=3)
    for i in range(n_frames):
        levels = np.rint((source.read(i).values - 20.0) / 0.1)
        image = np.clip(levels, 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(folder / f"frame_{i:02d}.png"), image)
    return (
        f"frames={{kind: images, path: {folder}, unit: C, scale_per_level: 0.1, "
        "offset: 20.0}"
    )


def headroom_warnings(caplog) -> list[str]:
    return [r.message for r in caplog.records if "has no effect" in r.message]


UNUSED = "<demo>: output.folder_headroom = {:g} has no effect, because "
EIGHT_BIT = (
    "the frames are 8-bit greyscale images, which folder/ writes as they are, "
    "without an 8-bit scale; remove the key"
)


@pytest.mark.parametrize("sequences", [False, True], ids=["still", "sequence"])
def test_unused_headroom_warned_for_8bit_frames(sequences, tmp_path, caplog):
    frames = eight_bit_frames(tmp_path / "frames")

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        run_demo(tmp_path, frames, sequences=sequences)

    scale = tmp_path / "out" / "folder" / "scale.json"
    assert not scale.exists()
    assert headroom_warnings(caplog) == [UNUSED.format(6.0) + EIGHT_BIT]


@pytest.mark.parametrize("sequences", [False, True], ids=["still", "sequence"])
def test_headroom_from_set_warned_without_8bit_folder(sequences, tmp_path, caplog):
    extra = ("output.folder_8bit=false", "output.folder_headroom=2.5")

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        run_demo(tmp_path, *extra, sequences=sequences)

    assert headroom_warnings(caplog) == [
        UNUSED.format(2.5) + "output.folder_8bit is false, so folder/ keeps the "
        "frames' own format; remove the key, or set output.folder_8bit: true to "
        "map 16-bit and float frames to 8 bits"
    ]


def test_default_headroom_not_warned(tmp_path, caplog):
    data = yaml.safe_load(load_demo_recipe().text)
    del data["output"]["folder_headroom"]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    frames = eight_bit_frames(tmp_path / "frames")
    overrides = [*FAST, *SPLIT, frames, f"output.dir={tmp_path / 'out'}"]

    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(load_recipe(recipe, overrides=overrides), progress=False)
        run_demo(tmp_path, "output.folder=false")

    assert headroom_warnings(caplog) == []


def test_headroom_must_be_positive():
    with pytest.raises(RecipeError, match="folder_headroom"):
        load_demo_recipe(overrides=["output.folder_headroom=0"])


def test_sample_count_fits_folder_stems():
    # Indices 0 to 999,999 have six digits; index 1,000,000 would have seven.
    split = ["split.test_normal=1", "split.test_anomalous=1"]
    fits = [*split, "split.train_normal=999998"]
    assert load_demo_recipe(overrides=fits).recipe.split.train_normal == 999_998
    too_many = [*split, "split.train_normal=999999"]
    with pytest.raises(RecipeError, match="split.train_normal .* 1,000,001"):
        load_demo_recipe(overrides=too_many)

    hdf5_only = [*too_many, "output.folder=false"]
    assert load_demo_recipe(overrides=hdf5_only).recipe.output.folder is False


def heater_recipe(data_dir, out, *extra: str):
    """Load the demo recipe on the real heater frames, float [C], 11 x 11 px."""
    frames = data_dir / "pouch-cell-heater-ir" / "Exp_E_T11x11_celsius.npy"
    overrides = (
        "frames={kind: arrays, unit: C, path: " + str(frames) + "}",
        "registration={method: full_frame}",
        "scenarios.internal_short.power_W=4.0",
        "blend.min_area_px=1",
        *FAST,
        "split.train_normal=3",
        "split.test_normal=3",
        "split.test_anomalous=1",
        f"output.dir={out}",
        *extra,
    )
    return load_demo_recipe(overrides=overrides)


def normal_clipped_px(out) -> dict[int, int]:
    """Count each normal sample's pixels outside the folder's 8-bit scale."""
    scale = json.loads((out / "folder" / "scale.json").read_text())
    with h5py.File(out / "dataset.h5", "r") as h5:
        frames = h5["frames"][:]
        labels = h5["labels"][:]
    levels = np.rint((frames - scale["raw_offset"]) / scale["raw_per_level"])
    outside = ((levels < 0) | (levels > 255)).sum(axis=(1, 2))
    return {i: int(n) for i, n in enumerate(outside) if not labels[i] and n}


def test_clipped_normal_px_warned(data_dir, tmp_path, caplog, monkeypatch):
    # Fitted to the first frame alone, the scale misses the later, warmer frames.
    monkeypatch.setattr(folder_levels, "FOLDER_SCALE_FRAMES", 0)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(heater_recipe(data_dir, out), progress=False)

    clipped = normal_clipped_px(out)
    warnings = [r.message for r in caplog.records if "normal sample" in r.message]
    assert len(clipped) >= 1
    assert len(warnings) == 1
    assert f" {sum(clipped.values())} valid pixels clipped" in warnings[0]
    assert "output.folder_8bit: false" in warnings[0]


def test_spread_scale_spans_warming_frames(data_dir, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(heater_recipe(data_dir, out), progress=False)

    assert normal_clipped_px(out) == {}
    assert not [r for r in caplog.records if "normal sample" in r.message]


@pytest.mark.parametrize("train_normal", [0, 1, 3])
def test_folder_scale_independent_of_split(data_dir, tmp_path, train_normal):
    reference = tmp_path / "reference"
    generate(heater_recipe(data_dir, reference), progress=False)
    out = tmp_path / "out"
    count = f"split.train_normal={train_normal}"
    generate(heater_recipe(data_dir, out, count), progress=False)

    scale = (out / "folder" / "scale.json").read_text()
    assert scale == (reference / "folder" / "scale.json").read_text()


def test_unclipped_normals_not_warned(data_dir, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="thermosynth"):
        generate(
            heater_recipe(data_dir, out, "output.folder_8bit=false"), progress=False
        )

    assert not [r for r in caplog.records if "normal sample" in r.message]
