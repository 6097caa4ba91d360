"""Stream samples into one compressed, chunked HDF5 file.

Layout (N samples of H x W pixels):

- ``frames``: (N, H, W) or (N, H, W, 3), the frames' own dtype. Its
  attributes ``unit`` and, for calibrated integer levels, ``scale_per_level``,
  ``offset`` and ``value_unit`` say how pixels become values (see
  `thermosynth.output.frame_attributes`).
- ``masks``: (N, H, W) uint8, 1 where anomalous.
- ``rise_K``: (N, H, W) float32, simulated surface rise at frame pixels [K].
- ``recorded_rise``: (N, H, W) float32, rise applied to the frame before
  quantisation: the camera's recorded rise, less the threshold with
  ``blend.edge: taper``; zero outside the mask. In the frames' unit, K for
  Celsius frames (attribute ``unit``).
- ``labels``: (N,) uint8; ``splits``: (N,) strings; ``kinds``: (N,) strings.
- ``metadata``: (N,) JSON strings, one per sample.
- ``encoding/palette_rgb``: (n_levels, 3) uint8 RGB colours of the named palette
  that decoded the frames, from the lowest value to the highest, with
  attributes ``name``, ``low`` and ``high`` (values of the first and the last
  colour) and ``unit`` (their unit, the frames' unit). Present only when the
  samples' metadata name a palette (see `thermosynth.output.palette`).
- File attributes: ``recipe_yaml``, ``recipe_dir`` (the absolute folder that
  relative paths in ``recipe_yaml`` start from), ``recipe_sha256``, ``seed``,
  ``thermosynth_version``, ``frame_unit``.

Image datasets are chunked one sample per chunk, shuffled and compressed
with gzip level 1. Datasets grow in blocks of samples and are trimmed to the
sample count on close; the short per-sample fields are buffered for at most
one block, so memory stays bounded.

A sharded dataset keeps each shard in its own file of this layout and joins
them in a master file whose datasets are HDF5 virtual datasets (see
`write_master`). Readers see the same names, shapes and attributes.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from thermosynth import __version__
from thermosynth.frames.frame import rise_unit
from thermosynth.output.frame_attributes import (
    FrameAttributes,
    join_frame_attributes,
    write_frame_attributes,
)
from thermosynth.output.palette import PaletteRecord, copy_palette
from thermosynth.output.sample import Sample

_STRING = h5py.string_dtype(encoding="utf-8")


class HDF5Writer:
    """Append samples to ``path``; use as a context manager.

    Parameters
    ----------
    path : Path
        File to create; it must not exist (the caller stages output).
    attributes : dict
        File attributes, such as the recipe text and hash.
    frame_unit : str
        Unit of the frames' values, ``"C"``, ``"K"`` or ``"level"``.
    """

    def __init__(self, path: Path, *, attributes: dict[str, Any], frame_unit: str):
        self._file = h5py.File(path, "w-", track_order=False)
        self._file.attrs["thermosynth_version"] = __version__
        self._file.attrs["frame_unit"] = frame_unit
        for key, value in attributes.items():
            self._file.attrs[key] = value
        self._frame_unit = frame_unit
        self._count = 0
        self._capacity = 0
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pending: dict[str, list[Any]] = {
            name: [] for name in ("labels", *_STRINGS)
        }
        # zlib.compress releases the GIL, so one thread compresses a
        # sample's chunks while the caller makes the next sample.
        self._compressor = ThreadPoolExecutor(1, thread_name_prefix="hdf5-deflate")
        self._compressing: deque[tuple[int, Future[list[bytes]]]] = deque()
        self._sample_shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._palette = PaletteRecord(self._file, frame_unit=frame_unit)
        self._frame_attributes = FrameAttributes(frame_unit)

    def __enter__(self) -> HDF5Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._finish()
        finally:
            self._compressor.shutdown(cancel_futures=True)
            close_in_order(self._file, self._datasets)
            self._datasets.clear()

    def write(self, sample: Sample) -> None:
        """Append one sample."""
        self._palette.add(sample.metadata, sample.index)
        if self._count == 0:
            self._create(sample)
        self._frame_attributes.add(sample.metadata, self._datasets["frames"])
        i = self._count
        self._reserve(i + 1)

        images = (sample.raw, sample.mask, sample.rise_K, sample.recorded_rise)
        copies = [
            self._image_copy(name, i, image)
            for name, image in zip(_IMAGES, images, strict=True)
        ]
        self._compressing.append((i, self._compressor.submit(compress_chunks, copies)))
        if len(self._compressing) > 1:
            self._write_compressed()

        self._pending["labels"].append(sample.label)
        self._pending["splits"].append(sample.split)
        self._pending["kinds"].append(sample.kind)
        self._pending["metadata"].append(json.dumps(sample.metadata, sort_keys=True))
        self._count = i + 1
        if len(self._pending["labels"]) >= _BLOCK:
            self._write_pending()

    def _image_copy(self, name: str, index: int, image: np.ndarray) -> np.ndarray:
        """Copy an image in the dataset's dtype, so the caller may reuse its own."""
        copy = np.array(image, dtype=self._dtypes[name], order="C", copy=True)
        expected = self._sample_shapes[name]
        if copy.shape != expected:
            raise ValueError(
                f"sample {index} has {name} of shape {copy.shape}, but the "
                f"file's first sample has {expected}; keep one frame size"
            )
        return copy

    def _write_compressed(self) -> None:
        """Write the oldest compressed sample, one chunk per image dataset.

        The chunks bypass HDF5's chunk cache and are placed in the file in
        sample order, so equal samples give equal bytes. The file need not be
        flushed after every sample, which cost most of the writer's time when
        every chunk went through the cache.
        """
        index, future = self._compressing.popleft()
        for name, chunk in zip(_IMAGES, future.result(), strict=True):
            origin = (index,) + (0,) * len(self._sample_shapes[name])
            self._datasets[name].id.write_direct_chunk(origin, chunk)

    def _reserve(self, n: int) -> None:
        """Grow every dataset to hold at least ``n`` samples, a block at a time."""
        if n <= self._capacity:
            return
        self._capacity = self._capacity + _BLOCK
        for dataset in self._datasets.values():
            dataset.resize(self._capacity, axis=0)

    def _write_pending(self) -> None:
        """Write the buffered labels, splits, kinds and metadata."""
        n = len(self._pending["labels"])
        start = self._count - n
        for name, values in self._pending.items():
            if values:
                dataset = self._datasets[name]
                dataset[start : self._count] = np.array(values, dtype=dataset.dtype)
            values.clear()

    def _finish(self) -> None:
        """Write what is buffered and trim the datasets to the sample count."""
        if not self._datasets:
            return
        while self._compressing:
            self._write_compressed()
        self._write_pending()
        for dataset in self._datasets.values():
            dataset.resize(self._count, axis=0)

    def _create(self, sample: Sample) -> None:
        height, width = sample.mask.shape
        image_options = {
            "compression": "gzip",
            "compression_opts": GZIP_LEVEL,
            "shuffle": True,
        }
        self._grow("frames", sample.raw.shape, sample.raw.dtype, image_options)
        self._grow("masks", (height, width), np.uint8, image_options)
        rise = self._grow("rise_K", (height, width), np.float32, image_options)
        rise.attrs["unit"] = "K"
        recorded = self._grow(
            "recorded_rise", (height, width), np.float32, image_options
        )
        recorded.attrs["unit"] = rise_unit(self._frame_unit)
        self._grow("labels", (), np.uint8, {})
        for name in ("splits", "kinds", "metadata"):
            self._grow(name, (), _STRING, {})
        # h5py reads these from the file on every access; keep them here.
        self._sample_shapes = {name: self._datasets[name].shape[1:] for name in _IMAGES}
        self._dtypes = {name: self._datasets[name].dtype for name in _IMAGES}

    def _grow(
        self, name: str, shape: tuple[int, ...], dtype: Any, options: dict[str, Any]
    ) -> h5py.Dataset:
        """Create an extendable dataset and keep its handle for every write."""
        self._datasets[name] = self._file.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            chunks=(1, *shape) if shape else (1024,),
            dtype=dtype,
            **options,
        )
        return self._datasets[name]


def close_in_order(file: h5py.File, datasets: dict[str, h5py.Dataset]) -> None:
    """Flush ``datasets`` one by one in their dict order, then close ``file``.

    HDF5 gives a chunk held in a dataset's cache its place in the file when
    the dataset is flushed or its last handle closes. Without an explicit
    flush, that moment depends on when Python drops the last handle. Dask's
    sampling profiler keeps the frames of running tasks for a while, and with
    them their handles. Shards written on workers then had chunks at other
    addresses than the same shards written in one process.
    """
    try:
        for dataset in datasets.values():
            dataset.flush()
    finally:
        file.close()


def compress_chunks(images: list[np.ndarray]) -> list[bytes]:
    """Apply HDF5's shuffle and deflate filters to each image, as one chunk.

    The bytes are a standard zlib stream after HDF5's byte shuffle, so any
    HDF5 reader decodes them. zlib's deflate is deterministic by
    construction. Every call starts from a cleared hash table, and zlib
    zeroes the window bytes past the input that its match search may read
    (``fill_window`` in zlib's deflate.c). So equal images give equal bytes
    in any process or thread that uses the same zlib version.

    ISA-L's deflate, used before, was about 6 times as fast at level 1
    (``benchmarks/deflate_chunks.py``). On Dask workers it gave, in 1 of 150
    runs, another valid stream of the same length for one chunk.
    """
    chunks = []
    for image in images:
        size = image.dtype.itemsize
        shuffled = image.reshape(-1).view(np.uint8).reshape(-1, size).T
        data = np.ascontiguousarray(shuffled).tobytes()
        chunks.append(deflate(data))
    return chunks


def deflate(data: bytes) -> bytes:
    """Compress ``data`` into a zlib stream with run-length matches only.

    After the byte shuffle, the long repeats in a float image are runs of
    equal exponent bytes, and its low mantissa bytes are close to random.
    zlib's ``Z_RLE`` strategy looks for runs and skips the hash search that
    finds little in those bytes. On 256 x 256 demo samples it took 0.62
    times the time of the default strategy for 4 % more bytes
    (``benchmarks/deflate_chunks.py``).
    """
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush()


_IMAGES = ("frames", "masks", "rise_K", "recorded_rise")
# Samples per growth step of the datasets and per write of the short fields.
_BLOCK = 256
# gzip level 1 with the shuffle filter gave 18 % smaller files than level 4
# without it, at about half the compression time, on 256 x 256 demo samples.
GZIP_LEVEL = 1


_PER_SAMPLE = ("frames", "masks", "rise_K", "recorded_rise", "labels")
_STRINGS = ("splits", "kinds", "metadata")


def write_master(
    path: Path,
    shards: Sequence[tuple[str, int]],
    *,
    attributes: dict[str, Any],
    frame_unit: str,
    copied: Sequence[str] = (),
) -> None:
    """Write a master file that joins shard files with virtual datasets.

    Parameters
    ----------
    path : Path
        Master file to write. It is written under a temporary name and renamed,
        so it is either complete or absent.
    shards : sequence of (str, int)
        Each shard file's path relative to ``path``'s folder, in sample order,
        and its number of samples; shards with no samples are left out. The
        relative paths keep the folder movable, because HDF5 looks for a
        virtual dataset's source files relative to the master file's folder.
    attributes : dict
        File attributes, as for `HDF5Writer`.
    frame_unit : str
        Unit of the frames' values.
    copied : sequence of str, optional
        Datasets that are alike in every shard file, such as a sequence file's
        ``times_s``; they are copied from the first shard with their attributes.
    """
    shards = [(name, count) for name, count in shards if count > 0]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    with h5py.File(temporary, "w-", track_order=False) as master:
        master.attrs["thermosynth_version"] = __version__
        master.attrs["frame_unit"] = frame_unit
        for key, value in attributes.items():
            master.attrs[key] = value
        for name in (*_PER_SAMPLE, *_STRINGS):
            _join_dataset(master, name, shards, path.parent)
        for name in copied:
            _copy_dataset(master, name, path.parent / shards[0][0])
        write_frame_attributes(
            master["frames"], join_frame_attributes(shards, path.parent, frame_unit)
        )
        master["recorded_rise"].attrs["unit"] = rise_unit(frame_unit)
        master["rise_K"].attrs["unit"] = "K"
        copy_palette(master, shards, path.parent, frame_unit=frame_unit)
    os.replace(temporary, path)


def _join_dataset(
    master: h5py.File, name: str, shards: Sequence[tuple[str, int]], folder: Path
) -> None:
    with h5py.File(folder / shards[0][0], "r") as first:
        sample_shape = first[name].shape[1:]
        dtype = first[name].dtype

    total = sum(count for _, count in shards)
    layout = h5py.VirtualLayout(shape=(total, *sample_shape), dtype=dtype)
    start = 0
    for relative, count in shards:
        source = h5py.VirtualSource(relative, name, shape=(count, *sample_shape))
        layout[start : start + count] = source
        start += count
    # h5py records creation times in a virtual dataset's header, unlike in the
    # datasets it creates with create_dataset; two runs' masters would differ.
    layout.dcpl.set_obj_track_times(False)
    master.create_virtual_dataset(name, layout, fillvalue=None)


def _copy_dataset(master: h5py.File, name: str, shard: Path) -> None:
    with h5py.File(shard, "r") as source:
        dataset = master.create_dataset(name, data=source[name][()])
        for key, value in source[name].attrs.items():
            dataset.attrs[key] = value
