"""Stream samples into one compressed, chunked HDF5 file.

Layout (N samples of H x W pixels):

- ``frames``: (N, H, W) or (N, H, W, 3), the frames' own dtype.
- ``masks``: (N, H, W) uint8, 1 where anomalous.
- ``rise_K``: (N, H, W) float32, simulated surface rise at frame pixels [K].
- ``recorded_rise``: (N, H, W) float32, rise the camera recorded, in the
  frames' unit (attribute ``unit``).
- ``labels``: (N,) uint8; ``splits``: (N,) strings; ``kinds``: (N,) strings.
- ``metadata``: (N,) JSON strings, one per sample.
- File attributes: ``recipe_yaml``, ``recipe_sha256``, ``thermosynth_version``,
  ``frame_unit``.

Datasets grow one sample at a time, so memory stays bounded.

A sharded dataset keeps each shard in its own file of this layout and joins
them in a master file whose datasets are HDF5 virtual datasets (see
`write_master`). Readers see the same names, shapes and attributes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from thermosynth import __version__
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
        self._datasets: dict[str, h5py.Dataset] = {}

    def __enter__(self) -> HDF5Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._datasets.clear()
        self._file.close()

    def write(self, sample: Sample) -> None:
        """Append one sample."""
        if self._count == 0:
            self._create(sample)
        n = self._count + 1
        for dataset in self._datasets.values():
            dataset.resize(n, axis=0)

        i = self._count
        data = self._datasets
        data["frames"][i] = sample.raw
        data["masks"][i] = sample.mask.astype(np.uint8)
        data["rise_K"][i] = sample.rise_K.astype(np.float32)
        data["recorded_rise"][i] = sample.recorded_rise.astype(np.float32)
        data["labels"][i] = sample.label
        data["splits"][i] = sample.split
        data["kinds"][i] = sample.kind
        data["metadata"][i] = json.dumps(sample.metadata, sort_keys=True)
        self._count = n

        # HDF5 places a compressed chunk when it leaves a dataset's chunk
        # cache. Keeping one handle per dataset and flushing after each sample
        # places every chunk in write order, whatever the garbage collector
        # does, so equal samples give equal bytes.
        self._file.flush()

    def _create(self, sample: Sample) -> None:
        height, width = sample.mask.shape
        image_options = {"compression": "gzip", "compression_opts": 4}
        self._grow("frames", sample.raw.shape, sample.raw.dtype, image_options)
        self._grow("masks", (height, width), np.uint8, image_options)
        rise = self._grow("rise_K", (height, width), np.float32, image_options)
        rise.attrs["unit"] = "K"
        recorded = self._grow(
            "recorded_rise", (height, width), np.float32, image_options
        )
        recorded.attrs["unit"] = self._frame_unit
        self._grow("labels", (), np.uint8, {})
        for name in ("splits", "kinds", "metadata"):
            self._file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=_STRING)
        self._file["frames"].attrs["unit"] = self._frame_unit
        names = ("frames", "masks", "rise_K", "recorded_rise", "labels", *_STRINGS)
        self._datasets = {name: self._file[name] for name in names}

    def _grow(
        self, name: str, shape: tuple[int, ...], dtype: Any, options: dict[str, Any]
    ) -> h5py.Dataset:
        return self._file.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            chunks=(1, *shape) if shape else (1024,),
            dtype=dtype,
            **options,
        )


_PER_SAMPLE = ("frames", "masks", "rise_K", "recorded_rise", "labels")
_STRINGS = ("splits", "kinds", "metadata")


def write_master(
    path: Path,
    shards: Sequence[tuple[str, int]],
    *,
    attributes: dict[str, Any],
    frame_unit: str,
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
        for name in ("frames", "recorded_rise"):
            master[name].attrs["unit"] = frame_unit
        master["rise_K"].attrs["unit"] = "K"
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
