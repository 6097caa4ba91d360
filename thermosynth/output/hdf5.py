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
"""

from __future__ import annotations

import json
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

    def __enter__(self) -> HDF5Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    def write(self, sample: Sample) -> None:
        """Append one sample."""
        if self._count == 0:
            self._create(sample)
        n = self._count + 1
        for name in ("frames", "masks", "rise_K", "recorded_rise", "labels"):
            self._file[name].resize(n, axis=0)
        for name in ("splits", "kinds", "metadata"):
            self._file[name].resize((n,))

        i = self._count
        self._file["frames"][i] = sample.raw
        self._file["masks"][i] = sample.mask.astype(np.uint8)
        self._file["rise_K"][i] = sample.rise_K.astype(np.float32)
        self._file["recorded_rise"][i] = sample.recorded_rise.astype(np.float32)
        self._file["labels"][i] = sample.label
        self._file["splits"][i] = sample.split
        self._file["kinds"][i] = sample.kind
        self._file["metadata"][i] = json.dumps(sample.metadata, sort_keys=True)
        self._count = n

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
