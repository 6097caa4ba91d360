"""HDF5 and anomalib folder writers: round trips and the folder rules."""

from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import h5py
import numpy as np
import pytest
from held_frames import frames_held

from thermosynth.errors import OutputError
from thermosynth.frames.encodings import PaletteEncoding, describe_encoding
from thermosynth.frames.palettes import palette_lut
from thermosynth.output.folder import FLOAT_OFFSET, FLOAT_SCALE_PER_LEVEL, FolderWriter
from thermosynth.output.frame_attributes import PER_SAMPLE_UNIT
from thermosynth.output.hdf5 import HDF5Writer, compress_chunks, write_master
from thermosynth.output.palette import read_palette
from thermosynth.output.sample import Sample
from thermosynth.output.shards import remove_temporaries


def make_sample(index: int, label: int, raw: np.ndarray) -> Sample:
    rng = np.random.default_rng(index)
    shape = raw.shape[:2]
    mask = np.zeros(shape, dtype=bool)
    if label:
        mask[2:5, 3:7] = True
    rise = rng.random(shape).astype(np.float32)
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


@pytest.fixture
def samples() -> list[Sample]:
    rng = np.random.default_rng(0)
    return [
        make_sample(i, i % 2, rng.integers(0, 65535, (8, 10), dtype=np.uint16))
        for i in range(4)
    ]


def write_hdf5(path, samples):
    with HDF5Writer(
        path, attributes={"recipe_sha256": "abc"}, frame_unit="C"
    ) as writer:
        for sample in samples:
            writer.write(sample)


def test_hdf5_round_trip(tmp_path, samples):
    path = tmp_path / "d.h5"
    write_hdf5(path, samples)
    with h5py.File(path, "r") as f:
        assert f["frames"].dtype == np.uint16
        assert f["frames"].shape == (4, 8, 10)
        for i, sample in enumerate(samples):
            np.testing.assert_array_equal(f["frames"][i], sample.raw)
            np.testing.assert_array_equal(f["masks"][i], sample.mask.astype(np.uint8))
            np.testing.assert_array_equal(f["rise_K"][i], sample.rise_K)
        assert list(f["labels"][:]) == [0, 1, 0, 1]
        assert f["kinds"][1].decode() == "hotspot"
        assert json.loads(f["metadata"][3])["params"]["power_W"] == 4.5
        assert f.attrs["recipe_sha256"] == "abc"
        assert f["rise_K"].attrs["unit"] == "K"
        assert f["recorded_rise"].attrs["unit"] == "K"
        assert f["frames"].attrs["unit"] == "C"
        assert f["frames"].compression == "gzip"
        assert f["frames"].chunks == (1, 8, 10)


def test_hdf5_same_samples_same_bytes(tmp_path, samples):
    write_hdf5(tmp_path / "a.h5", samples)
    write_hdf5(tmp_path / "b.h5", samples)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_folder_follows_anomalib_layout(tmp_path, samples):
    with FolderWriter(tmp_path, frame_unit="C") as writer:
        for sample in samples:
            writer.write(sample)
    assert sorted(p.name for p in (tmp_path / "train" / "good").iterdir()) == [
        "000000.png",
        "000002.png",
    ]
    images = sorted(p.stem for p in (tmp_path / "test" / "hotspot").iterdir())
    masks = sorted(p.stem for p in (tmp_path / "ground_truth" / "hotspot").iterdir())
    assert masks == [f"{stem}_mask" for stem in images]

    mask = cv2.imread(
        str(tmp_path / "ground_truth" / "hotspot" / "000001_mask.png"),
        cv2.IMREAD_UNCHANGED,
    )
    assert set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask == 255, samples[1].mask)
    image = cv2.imread(
        str(tmp_path / "test" / "hotspot" / "000001.png"), cv2.IMREAD_UNCHANGED
    )
    np.testing.assert_array_equal(image, samples[1].raw)


def test_folder_keeps_rgb_order(tmp_path):
    raw = np.zeros((4, 5, 3), dtype=np.uint8)
    raw[..., 0] = 200  # red
    with FolderWriter(tmp_path, frame_unit="level") as writer:
        writer.write(make_sample(0, 0, raw))
    stored = cv2.imread(str(tmp_path / "train" / "good" / "000000.png"))
    assert stored[0, 0].tolist() == [0, 0, 200]  # OpenCV reads BGR


def test_folder_float_frames_use_recorded_scale(tmp_path):
    raw = np.full((4, 5), 27.34, dtype=np.float32)
    with FolderWriter(tmp_path, frame_unit="C") as writer:
        writer.write(make_sample(0, 0, raw))
    scale = json.loads((tmp_path / "scale.json").read_text())
    level = cv2.imread(
        str(tmp_path / "train" / "good" / "000000.png"), cv2.IMREAD_UNCHANGED
    )
    assert level.dtype == np.uint16
    value = level.astype(float) * scale["value_per_level"] + scale["offset"]
    assert scale["value_per_level"] == FLOAT_SCALE_PER_LEVEL
    assert scale["offset"] == FLOAT_OFFSET
    np.testing.assert_allclose(value, 27.34, atol=FLOAT_SCALE_PER_LEVEL / 2)


def test_folder_maps_16bit_to_8bit_scale(tmp_path):
    raw = np.array([[1000, 1500], [2000, 1200]], dtype=np.uint16)
    from thermosynth.frames.encodings import LinearEncoding
    from thermosynth.frames.frame import Frame
    from thermosynth.output.folder import EightBitScale

    frame = Frame(
        raw,
        raw * 0.01,
        "C",
        np.ones((2, 2), bool),
        LinearEncoding(np.uint16, scale_per_level=0.01),
        0.01,
        "x",
    )
    scale = EightBitScale.from_frame(frame)
    assert scale.raw_offset == 1000
    assert scale.raw_per_level == pytest.approx(2000 / 255)

    with FolderWriter(tmp_path, frame_unit="C", eight_bit=scale) as writer:
        writer.write(make_sample(0, 0, raw))
    level = cv2.imread(
        str(tmp_path / "train" / "good" / "000000.png"), cv2.IMREAD_UNCHANGED
    )
    assert level.dtype == np.uint8
    assert level.tolist() == [[0, 64], [128, 26]]
    stored = json.loads((tmp_path / "scale.json").read_text())
    back = level * stored["raw_per_level"] + stored["raw_offset"]
    np.testing.assert_allclose(back, raw, atol=stored["raw_per_level"] / 2)


def test_folder_scale_maps_levels_to_values(tmp_path):
    from thermosynth.frames.encodings import LinearEncoding
    from thermosynth.frames.frame import Frame
    from thermosynth.output.folder import EightBitScale

    raw = np.array([[1000, 1500], [2000, 1200]], dtype=np.uint16)
    encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
    values = encoding.decode(raw)
    frame = Frame(raw, values, "C", np.ones((2, 2), bool), encoding, 0.01, "x")
    scale = EightBitScale.from_frame(frame)

    with FolderWriter(tmp_path, frame_unit="C", eight_bit=scale) as writer:
        writer.write(make_sample(0, 0, raw))
    level = cv2.imread(
        str(tmp_path / "train" / "good" / "000000.png"), cv2.IMREAD_UNCHANGED
    )
    stored = json.loads((tmp_path / "scale.json").read_text())
    mapping = stored["level_to_value"]
    back = level * mapping["value_per_level"] + mapping["value_offset"]

    assert mapping["unit"] == "C"
    assert mapping["value_offset"] == pytest.approx(1000 * 0.01 - 40.0)
    np.testing.assert_allclose(back, values, atol=mapping["value_per_level"] / 2)
    assert "level_to_value.value_per_level" in stored["note"]
    assert stored["raw_offset"] == 1000


def test_folder_failed_png_raises_output_error(tmp_path, samples, monkeypatch):
    monkeypatch.setattr(cv2, "imwrite", lambda *args: False)
    writer = FolderWriter(tmp_path, frame_unit="C")
    writer.write(samples[1])
    with pytest.raises(OutputError, match="could not write"):
        writer.close()


def test_hdf5_filters_and_block_trim(tmp_path, samples):
    from thermosynth.output import hdf5

    rng = np.random.default_rng(1)
    many = [
        make_sample(i, i % 2, rng.integers(0, 65535, (8, 10), dtype=np.uint16))
        for i in range(hdf5._BLOCK + 3)
    ]
    path = tmp_path / "d.h5"
    write_hdf5(path, many)

    with h5py.File(path, "r") as f:
        for name in ("frames", "masks", "rise_K", "recorded_rise"):
            assert f[name].shape[0] == len(many)
            assert f[name].shuffle
            assert f[name].compression_opts == 1
        for name in ("labels", "splits", "kinds", "metadata"):
            assert f[name].shape == (len(many),)
        last = many[-1]
        np.testing.assert_array_equal(f["frames"][-1], last.raw)
        np.testing.assert_array_equal(f["recorded_rise"][-1], last.recorded_rise)
        assert f["splits"][-1].decode() == last.split
        assert json.loads(f["metadata"][-1]) == last.metadata


def test_hdf5_rejects_other_frame_size(tmp_path, samples):
    other = make_sample(9, 1, np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="keep one frame size"):
        write_hdf5(tmp_path / "d.h5", [samples[0], other])


def test_hdf5_copies_before_compressing(tmp_path, samples):
    path = tmp_path / "d.h5"
    expected = samples[0].raw.copy()
    with HDF5Writer(path, attributes={}, frame_unit="C") as writer:
        writer.write(samples[0])
        samples[0].raw[:] = 0
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["frames"][0], expected)


def test_hdf5_bytes_independent_of_held_frames(tmp_path, samples):
    write_hdf5(tmp_path / "plain.h5", samples)
    with frames_held() as frames:
        write_hdf5(tmp_path / "held.h5", samples)
        assert frames

    assert (tmp_path / "held.h5").read_bytes() == (tmp_path / "plain.h5").read_bytes()


def shuffled_bytes(image: np.ndarray) -> bytes:
    """Return an image's bytes after HDF5's byte shuffle filter."""
    size = image.dtype.itemsize
    shuffled = image.reshape(-1).view(np.uint8).reshape(-1, size).T
    return np.ascontiguousarray(shuffled).tobytes()


def hot_spot_rise(seed: int) -> np.ndarray:
    """Return a 256 x 256 float32 Gaussian hot spot with noise, a rise [K]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256]
    centre = rng.uniform(60, 200, 2)
    r2 = (y - centre[0]) ** 2 + (x - centre[1]) ** 2
    rise = 10.0 * np.exp(-r2 / (2 * rng.uniform(5, 30) ** 2))
    return (rise + rng.normal(0, 0.01, rise.shape)).astype(np.float32)


def test_compress_chunks_is_zlib_rle_level_1():
    image = hot_spot_rise(0)
    (chunk,) = compress_chunks([image])
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    assert chunk == compressor.compress(shuffled_bytes(image)) + compressor.flush()
    assert zlib.decompress(chunk) == shuffled_bytes(image)


def test_rle_chunk_read_back_by_hdf5_filter(tmp_path):
    image = hot_spot_rise(1)
    with h5py.File(tmp_path / "a.h5", "w") as file:
        dataset = file.create_dataset(
            "rise_K",
            shape=(1, 256, 256),
            chunks=(1, 256, 256),
            dtype=np.float32,
            compression="gzip",
            shuffle=True,
        )
        dataset.id.write_direct_chunk((0, 0, 0), compress_chunks([image])[0])
    with h5py.File(tmp_path / "a.h5", "r") as file:
        np.testing.assert_array_equal(file["rise_K"][0], image)


def test_compress_chunks_same_after_heap_reuse():
    images = [hot_spot_rise(seed) for seed in range(3)]
    expected = compress_chunks(images)
    rng = np.random.default_rng(0)
    for _ in range(20):
        # Freed random bytes of about the sizes a deflate call allocates, so
        # the next call's buffers may start with them.
        garbage = [
            rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            for size in (4096, 65536, 282624, 1 << 20)
        ]
        del garbage
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(compress_chunks, images).result() == expected


def palette_description(name: str, low: float = 20.0, high: float = 40.0) -> dict:
    return describe_encoding(
        PaletteEncoding(palette_lut(name), low=low, high=high, name=name)
    )


def test_hdf5_stores_named_palette_once(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = palette_description("cv2:jet")
    write_hdf5(tmp_path / "d.h5", samples)

    with h5py.File(tmp_path / "d.h5", "r") as f:
        dataset = f["encoding/palette_rgb"]
        assert dataset.dtype == np.uint8
        np.testing.assert_array_equal(dataset[()], palette_lut("cv2:jet"))
        assert dict(dataset.attrs) == {
            "name": "cv2:jet",
            "low": 20.0,
            "high": 40.0,
            "unit": "C",
        }
        assert list(f["encoding"]) == ["palette_rgb"]
        palette = read_palette(f)
    assert palette is not None
    assert palette.name == "cv2:jet"


def test_hdf5_palette_same_bytes(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = palette_description("inferno")
    write_hdf5(tmp_path / "a.h5", samples)
    write_hdf5(tmp_path / "b.h5", samples)

    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_hdf5_without_palette_has_no_group(tmp_path, samples):
    write_hdf5(tmp_path / "d.h5", samples)

    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert "encoding" not in f
        assert read_palette(f) is None


def test_hdf5_rejects_second_palette(tmp_path, samples):
    samples[0].metadata["encoding"] = palette_description("inferno")
    samples[1].metadata["encoding"] = palette_description("inferno", high=41.0)

    with pytest.raises(
        OutputError, match=r"sample 1 has the palette .*'inferno', 20.0, 41.0"
    ):
        write_hdf5(tmp_path / "d.h5", samples)


def test_master_copies_shard_palette(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = palette_description("magma")
    (tmp_path / "shards").mkdir()
    write_hdf5(tmp_path / "shards" / "a.h5", samples[:2])
    write_hdf5(tmp_path / "shards" / "b.h5", samples[2:])
    shards = [("shards/a.h5", 2), ("shards/b.h5", 2)]

    write_master(tmp_path / "m.h5", shards, attributes={}, frame_unit="C")

    with h5py.File(tmp_path / "m.h5", "r") as f:
        np.testing.assert_array_equal(
            f["encoding/palette_rgb"][()], palette_lut("magma")
        )
        assert f["encoding/palette_rgb"].attrs["name"] == "magma"
        assert f["encoding/palette_rgb"].attrs["unit"] == "C"


def test_master_rejects_shards_of_two_palettes(tmp_path, samples):
    samples[0].metadata["encoding"] = palette_description("magma")
    samples[1].metadata["encoding"] = palette_description("inferno")
    write_hdf5(tmp_path / "a.h5", samples[:1])
    write_hdf5(tmp_path / "b.h5", samples[1:2])
    shards = [("a.h5", 1), ("b.h5", 1)]

    with pytest.raises(OutputError, match=r"shard b.h5 stores the palette .*inferno"):
        write_master(tmp_path / "m.h5", shards, attributes={}, frame_unit="C")
    assert not (tmp_path / "m.h5").exists()


def linear_description(scale: float, offset: float) -> dict:
    return {"kind": "linear", "scale_per_level": scale, "offset": offset}


def test_hdf5_frames_attrs_give_calibration(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = linear_description(0.01, 0.0)
    path = tmp_path / "d.h5"
    with HDF5Writer(path, attributes={}, frame_unit="K") as writer:
        for sample in samples:
            writer.write(sample)

    with h5py.File(path, "r") as f:
        attrs = f["frames"].attrs
        assert attrs["unit"] == "level (0.01 K per level, offset 0 K)"
        assert attrs["scale_per_level"] == 0.01
        assert attrs["offset"] == 0.0
        assert attrs["value_unit"] == "K"
        assert f.attrs["frame_unit"] == "K"


def test_hdf5_frames_attrs_of_identity_scale(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = linear_description(1.0, 0.0)
    write_hdf5(tmp_path / "d.h5", samples)

    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert dict(f["frames"].attrs) == {"unit": "C"}


def test_hdf5_frames_attrs_when_scales_differ(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = linear_description(0.01, 0.0)
    samples[2].metadata["encoding"] = linear_description(0.04, -40.0)
    write_hdf5(tmp_path / "d.h5", samples)

    with h5py.File(tmp_path / "d.h5", "r") as f:
        attrs = dict(f["frames"].attrs)
    assert attrs == {"unit": PER_SAMPLE_UNIT, "value_unit": "C"}


def test_master_joins_frames_attrs(tmp_path, samples):
    for sample in samples:
        sample.metadata["encoding"] = linear_description(0.01, -273.15)
    write_hdf5(tmp_path / "a.h5", samples[:2])
    write_hdf5(tmp_path / "b.h5", samples[2:])
    samples[3].metadata["encoding"] = linear_description(0.02, -273.15)
    write_hdf5(tmp_path / "c.h5", samples[3:])

    write_master(
        tmp_path / "m.h5", [("a.h5", 2), ("b.h5", 2)], attributes={}, frame_unit="C"
    )
    write_master(
        tmp_path / "x.h5", [("a.h5", 2), ("c.h5", 1)], attributes={}, frame_unit="C"
    )

    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert f["frames"].attrs["unit"] == "level (0.01 C per level, offset -273.15 C)"
        assert f["frames"].attrs["scale_per_level"] == 0.01
        assert f["frames"].attrs["offset"] == -273.15
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert dict(f["frames"].attrs) == {"unit": PER_SAMPLE_UNIT, "value_unit": "C"}


def test_hdf5_frames_attrs_of_palette(tmp_path, samples):
    rgb = [make_sample(i, 0, np.zeros((8, 10, 3), np.uint8)) for i in range(2)]
    for sample in rgb:
        sample.metadata["encoding"] = palette_description("magma")
    write_hdf5(tmp_path / "d.h5", rgb)

    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert dict(f["frames"].attrs) == {
            "unit": "RGB palette colour",
            "value_unit": "C",
        }


def test_killed_scale_write_removed_on_resume(tmp_path, monkeypatch):
    # A run killed between writing scale.json's temporary file and renaming it
    # leaves the file; the next run's clean-up must find it.
    stage = tmp_path / "stage"
    writer = FolderWriter(stage / "folder", frame_unit="C")

    def killed(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr("thermosynth.output.folder.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        writer._record_scale({"raw_offset": 0.0})
    monkeypatch.undo()
    left = [path.name for path in (stage / "folder").iterdir()]

    remove_temporaries(stage)

    assert len(left) == 1
    assert left[0].startswith(".scale.")
    assert list((stage / "folder").iterdir()) == []
