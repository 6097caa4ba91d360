"""Tests for the frame cache of thermosynth.frames.sources."""

from __future__ import annotations

import pickle

import cv2
import h5py
import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.sources import (
    ArraySource,
    FrameCache,
    HDF5Source,
    ImageFolderSource,
    frame_nbytes,
)

_SHAPE = (12, 16)


def _frame(index: int) -> Frame:
    raw = np.full(_SHAPE, index, dtype=np.uint16)
    encoding = LinearEncoding(np.dtype(np.uint16), scale_per_level=0.5, offset=1.0)
    valid = np.ones(_SHAPE, dtype=bool)
    return Frame(raw, encoding.decode(raw), "C", valid, encoding, 0.1, f"f{index}")


def _stack(n: int = 5) -> np.ndarray:
    rng = np.random.default_rng(4)
    return rng.normal(25.0, 2.0, (n, *_SHAPE))


def _image_source(tmp_path, **options) -> ImageFolderSource:
    for i, image in enumerate(_stack().astype(np.uint16)):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), image)
    return ImageFolderSource(tmp_path, **options)


def _array_folder_source(tmp_path, **options) -> ArraySource:
    for i, image in enumerate(_stack()):
        np.save(tmp_path / f"f{i}.npy", image)
    return ArraySource(tmp_path, **options)


def _array_stack_source(tmp_path, **options) -> ArraySource:
    np.save(tmp_path / "stack.npy", _stack())
    return ArraySource(tmp_path / "stack.npy", **options)


def _hdf5_source(tmp_path, **options) -> HDF5Source:
    with h5py.File(tmp_path / "frames.h5", "w") as handle:
        handle["frames"] = _stack()
    return HDF5Source(tmp_path / "frames.h5", dataset="frames", **options)


SOURCES = [_image_source, _array_folder_source, _array_stack_source, _hdf5_source]


def test_cache_bound_in_bytes():
    size = frame_nbytes(_frame(0))
    cache = FrameCache(int(2.5 * size))
    for i in range(5):
        cache.put(i, _frame(i))

    assert size == 12 * 16 * (2 + 8 + 1)
    assert len(cache) == 2
    assert cache.nbytes == 2 * size
    assert cache.nbytes <= cache.max_bytes


def test_cache_keeps_the_first_frames_and_evicts_none():
    cache = FrameCache(3 * frame_nbytes(_frame(0)))
    for i in range(3):
        cache.put(i, _frame(i))
    assert cache.get(0) is not None

    late = cache.put(3, _frame(3))

    assert cache.indices == [0, 1, 2]
    assert cache.get(3) is None
    assert not late.values.flags.writeable


def test_cache_cycle_longer_than_bound_still_hits():
    cache = FrameCache(3 * frame_nbytes(_frame(0)))
    hits = 0
    for i in [0, 1, 2, 3, 4] * 4:
        if cache.get(i) is not None:
            hits += 1
        else:
            cache.put(i, _frame(i))

    # Frames 0 to 2 are kept on the first pass and found on the three later ones.
    assert hits == 3 * 3


def test_cache_put_same_index_replaces():
    size = frame_nbytes(_frame(0))
    cache = FrameCache(2 * size)
    cache.put(0, _frame(0))
    cache.put(1, _frame(1))
    newer = _frame(7)

    cache.put(0, newer)

    assert cache.indices == [0, 1]
    assert cache.get(0) is newer
    assert cache.nbytes == 2 * size


def test_cache_skips_frame_over_bound():
    frame = _frame(0)
    cache = FrameCache(frame_nbytes(frame) - 1)

    assert cache.put(0, frame) is frame
    assert len(cache) == 0
    assert cache.nbytes == 0
    assert not frame.raw.flags.writeable


def test_cache_put_makes_arrays_read_only():
    frame = FrameCache(0).put(0, _frame(0))

    for array in (frame.raw, frame.values, frame.valid):
        assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        frame.values[0, 0] = 1.0


def test_cache_negative_size():
    with pytest.raises(FrameError, match="got -1; use 0 to keep no frames"):
        FrameCache(-1)


def test_cache_pickles_without_frames():
    cache = FrameCache(10**6)
    cache.put(0, _frame(0))

    copy = pickle.loads(pickle.dumps(cache))

    assert copy.max_bytes == 10**6
    assert len(copy) == 0
    assert copy.nbytes == 0
    assert len(cache) == 1


@pytest.mark.parametrize("make_source", SOURCES)
def test_source_returns_cached_read_only_frame(tmp_path, make_source):
    source = make_source(tmp_path)
    frame = source.read(3)

    assert source.read(3) is frame
    assert source.read(-2) is frame
    for array in (frame.raw, frame.values, frame.valid):
        assert not array.flags.writeable


@pytest.mark.parametrize("make_source", SOURCES)
def test_source_same_bytes_without_cache(tmp_path, make_source):
    cached = make_source(tmp_path)
    uncached = make_source(tmp_path, cache_bytes=0)

    for i in range(len(cached)):
        first, second = cached.read(i), uncached.read(i)
        assert uncached.read(i) is not second
        assert first.raw.tobytes() == second.raw.tobytes()
        assert first.values.tobytes() == second.values.tobytes()
        assert np.array_equal(first.valid, second.valid)
        assert first.noise_sigma == second.noise_sigma
        assert first.source == second.source


@pytest.mark.parametrize("make_source", SOURCES)
def test_source_cache_bound_and_order(tmp_path, make_source):
    size = frame_nbytes(make_source(tmp_path).read(0))
    source = make_source(tmp_path, cache_bytes=2 * size + size // 2)
    for i in range(len(source)):
        source.read(i)
    source.read(3)

    assert source._cache.indices == [0, 1]
    assert source._cache.nbytes == 2 * size


def test_source_pickle_drops_frames(tmp_path):
    source = _array_stack_source(tmp_path, cache_bytes=10**6)
    frame = source.read(1)

    copy = pickle.loads(pickle.dumps(source))

    assert len(copy._cache) == 0
    assert copy._cache.max_bytes == 10**6
    assert copy.read(1).values.tobytes() == frame.values.tobytes()
