from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from held_frames import frames_held

from thermosynth.errors import OutputError
from thermosynth.frames.encodings import PaletteEncoding, describe_encoding
from thermosynth.frames.palettes import palette_lut
from thermosynth.output.folder import (
    FLOAT_OFFSET,
    FLOAT_SCALE_PER_LEVEL,
    EightBitScale,
)
from thermosynth.output.palette import read_palette
from thermosynth.output.sequence_writers import (
    SequenceFolderWriter,
    SequenceHDF5Writer,
    SequenceSample,
)

TIMES_S = np.array([0.5, 1.0, 1.5])


def sequence(index, *, label=1, raw=None, n_times=3, split="test"):
    rng = np.random.default_rng(index)
    if raw is None:
        raw = rng.integers(0, 65535, size=(n_times, 6, 8), dtype=np.uint16)
    mask = np.zeros((n_times, 6, 8), dtype=bool)
    if label:
        mask[:, 2:4, 3 : 3 + n_times] = True
    rise = rng.random((n_times, 6, 8)).astype(np.float32)
    return SequenceSample(
        index=index,
        split=split,
        label=label,
        kind="hotspot" if label else "good",
        raw=raw,
        mask=mask,
        rise_K=rise,
        recorded_rise=np.where(mask, rise, 0).astype(np.float32),
        frame_unit="C",
        metadata={"area_px": mask.sum(axis=(1, 2)).tolist()},
    )


def write_hdf5(path, samples):
    attributes = {"recipe_sha256": "abc"}
    with SequenceHDF5Writer(
        path, times_s=TIMES_S, attributes=attributes, frame_unit="C"
    ) as writer:
        for sample in samples:
            writer.write(sample)


def test_hdf5_round_trip(tmp_path):
    samples = [sequence(0, label=0, split="train"), sequence(1)]
    write_hdf5(tmp_path / "s.h5", samples)
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        assert h5["frames"].shape == (2, 3, 6, 8)
        assert h5["times_s"][:].tolist() == TIMES_S.tolist()
        for i, sample in enumerate(samples):
            np.testing.assert_array_equal(h5["frames"][i], sample.raw)
            np.testing.assert_array_equal(h5["masks"][i], sample.mask)
            np.testing.assert_array_equal(h5["rise_K"][i], sample.rise_K)
            np.testing.assert_array_equal(h5["recorded_rise"][i], sample.recorded_rise)
        assert h5["labels"][:].tolist() == [0, 1]
        assert [s.decode() for s in h5["splits"][:]] == ["train", "test"]
        assert [k.decode() for k in h5["kinds"][:]] == ["good", "hotspot"]
        assert json.loads(h5["metadata"][1]) == samples[1].metadata
        assert h5.attrs["recipe_sha256"] == "abc"
        assert h5.attrs["frame_unit"] == "C"
        assert h5["rise_K"].attrs["unit"] == "K"


def test_hdf5_frames_attrs_give_calibration(tmp_path):
    samples = [sequence(0, label=0, split="train"), sequence(1)]
    for sample in samples:
        sample.metadata["encoding"] = {
            "kind": "linear",
            "scale_per_level": 0.01,
            "offset": -40.0,
        }
    write_hdf5(tmp_path / "s.h5", samples)

    with h5py.File(tmp_path / "s.h5", "r") as h5:
        assert dict(h5["frames"].attrs) == {
            "unit": "level (0.01 C per level, offset -40 C)",
            "scale_per_level": 0.01,
            "offset": -40.0,
            "value_unit": "C",
        }


def test_hdf5_chunks_one_frame(tmp_path):
    rgb = np.zeros((3, 6, 8, 3), dtype=np.uint8)
    write_hdf5(tmp_path / "s.h5", [sequence(0, raw=rgb)])
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        assert h5["frames"].shape == (1, 3, 6, 8, 3)
        assert h5["frames"].chunks == (1, 1, 6, 8, 3)
        assert h5["masks"].chunks == (1, 1, 6, 8)
        assert h5["masks"].compression == "gzip"


def test_hdf5_rejects_wrong_length(tmp_path):
    with pytest.raises(OutputError, match="has 2 frames and 2 masks but the writer"):
        write_hdf5(tmp_path / "s.h5", [sequence(0, n_times=2)])


def test_folder_tree(tmp_path):
    writer = SequenceFolderWriter(tmp_path, times_s=TIMES_S, frame_unit="C")
    samples = [sequence(0, label=0, split="train"), sequence(7)]
    for sample in samples:
        writer.write(sample)

    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")}
    assert written == {
        "times.json",
        "train/good/000000/0000.png",
        "train/good/000000/0001.png",
        "train/good/000000/0002.png",
        "test/hotspot/000007/0000.png",
        "test/hotspot/000007/0001.png",
        "test/hotspot/000007/0002.png",
        "ground_truth/hotspot/000007/0000_mask.png",
        "ground_truth/hotspot/000007/0001_mask.png",
        "ground_truth/hotspot/000007/0002_mask.png",
    }
    image = cv2.imread(str(tmp_path / "test/hotspot/000007/0002.png"), -1)
    np.testing.assert_array_equal(image, samples[1].raw[2])
    mask = cv2.imread(str(tmp_path / "ground_truth/hotspot/000007/0001_mask.png"), -1)
    np.testing.assert_array_equal(mask, np.where(samples[1].mask[1], 255, 0))
    times = json.loads((tmp_path / "times.json").read_text())
    assert times["times_s"] == TIMES_S.tolist()


def test_folder_float_frames_use_scale(tmp_path):
    raw = np.full((3, 6, 8), 25.0)
    writer = SequenceFolderWriter(tmp_path, times_s=TIMES_S, frame_unit="C")
    writer.write(sequence(0, raw=raw))
    image = cv2.imread(str(tmp_path / "test/hotspot/000000/0001.png"), -1)
    assert image.dtype == np.uint16
    assert image[0, 0] == round((25.0 - FLOAT_OFFSET) / FLOAT_SCALE_PER_LEVEL)
    scale = json.loads((tmp_path / "scale.json").read_text())
    assert scale["value_per_level"] == FLOAT_SCALE_PER_LEVEL


def test_folder_eight_bit_scale_maps_frames(tmp_path):
    scale = EightBitScale(raw_offset=1000.0, raw_per_level=10.0, source_dtype="uint16")
    raw = np.full((3, 6, 8), 1500, np.uint16)
    raw[2, 0, 0] = 9000
    writer = SequenceFolderWriter(
        tmp_path, times_s=TIMES_S, frame_unit="C", eight_bit=scale
    )
    writer.write(sequence(0, raw=raw))

    first = cv2.imread(str(tmp_path / "test/hotspot/000000/0000.png"), -1)
    last = cv2.imread(str(tmp_path / "test/hotspot/000000/0002.png"), -1)
    described = json.loads((tmp_path / "scale.json").read_text())
    assert first.dtype == np.uint8
    assert first[1, 1] == 50
    assert last[0, 0] == 255
    assert described["raw_per_level"] == 10.0
    assert described["raw_offset"] == 1000.0


def test_hdf5_bytes_independent_of_held_frames(tmp_path):
    samples = [sequence(0, label=0, split="train"), sequence(1), sequence(2)]
    write_hdf5(tmp_path / "plain.h5", samples)
    with frames_held() as frames:
        write_hdf5(tmp_path / "held.h5", samples)
        assert frames

    assert (tmp_path / "held.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()


def test_hdf5_stores_sequence_palette(tmp_path):
    encoding = PaletteEncoding(palette_lut("inferno"), low=0, high=255, name="inferno")
    samples = [sequence(0, label=0, split="train"), sequence(1)]
    for sample in samples:
        sample.metadata["encoding"] = describe_encoding(encoding)
    write_hdf5(tmp_path / "s.h5", samples)

    with h5py.File(tmp_path / "s.h5", "r") as h5:
        palette = read_palette(h5)
        assert h5["encoding/palette_rgb"].attrs["unit"] == "C"
    assert palette is not None
    np.testing.assert_array_equal(palette.lut, palette_lut("inferno"))
    assert (palette.low, palette.high, palette.name) == (0.0, 255.0, "inferno")


def test_hdf5_rejects_second_sequence_palette(tmp_path):
    samples = [sequence(0, label=0, split="train"), sequence(1)]
    for sample, name in zip(samples, ["inferno", "magma"], strict=True):
        encoding = PaletteEncoding(palette_lut(name), low=0, high=1, name=name)
        sample.metadata["encoding"] = describe_encoding(encoding)

    with pytest.raises(
        OutputError, match=r"sample 1 has the palette .* \('magma', 0.0, 1.0\)"
    ):
        write_hdf5(tmp_path / "s.h5", samples)
