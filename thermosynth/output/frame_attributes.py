"""Attributes of the HDF5 ``frames`` dataset that describe its stored pixels.

The file attribute ``frame_unit`` is the unit of the decoded values. The
``frames`` dataset's own ``unit`` is the unit of the stored pixels:

- frames stored as values (float frames, or levels without a calibration):
  ``unit`` is the frame unit, ``C``, ``K`` or ``level``;
- integer levels of a linear calibration, such as 16-bit frames at 0.01 K
  per level: ``unit`` is ``"level (0.01 K per level, offset 0 K)"``, with the
  attributes ``scale_per_level`` [value_unit per level], ``offset``
  [value_unit] and ``value_unit``, so that value = level *
  ``scale_per_level`` + ``offset``;
- palette-coded RGB frames: ``unit`` is ``"RGB palette colour"`` and
  ``value_unit`` the unit of the palette's values;
- samples whose calibrations differ: ``unit`` names the per-sample metadata,
  whose ``encoding`` gives each sample's scale, and ``value_unit`` is set.

The attributes repeat what every sample's metadata ``encoding`` records, for a
reader of ``f["frames"]`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py

PER_SAMPLE_UNIT = "level (scale per sample: see the metadata's encoding)"
"""``unit`` of frames whose samples have different calibrations."""

_KEYS = ("unit", "scale_per_level", "offset", "value_unit")


def frame_attributes(
    encoding: dict[str, Any] | None, frame_unit: str
) -> dict[str, Any]:
    """Return the ``frames`` attributes for one sample's metadata ``encoding``.

    Parameters
    ----------
    encoding : dict or None
        The sample's ``metadata["encoding"]``, from `describe_encoding`.
    frame_unit : str
        Unit of the decoded values, ``"C"``, ``"K"`` or ``"level"``.
    """
    encoding = encoding or {}
    if encoding.get("kind") == "palette":
        return {"unit": "RGB palette colour", "value_unit": frame_unit}
    if encoding.get("kind") != "linear":
        return {"unit": frame_unit}

    scale = float(encoding["scale_per_level"])
    offset = float(encoding["offset"])
    if scale == 1.0 and offset == 0.0:
        return {"unit": frame_unit}
    return {
        "unit": (
            f"level ({scale:.10g} {frame_unit} per level, offset {offset:.10g} "
            f"{frame_unit})"
        ),
        "scale_per_level": scale,
        "offset": offset,
        "value_unit": frame_unit,
    }


def mixed_attributes(frame_unit: str) -> dict[str, Any]:
    """Return the ``frames`` attributes of samples with different calibrations."""
    return {"unit": PER_SAMPLE_UNIT, "value_unit": frame_unit}


class FrameAttributes:
    """Keep a file's ``frames`` attributes in step with the samples written.

    The first sample sets them. A later sample whose calibration differs
    turns them into `mixed_attributes`.
    """

    def __init__(self, frame_unit: str) -> None:
        self._frame_unit = frame_unit
        self._attributes: dict[str, Any] | None = None

    def add(self, metadata: dict[str, Any], dataset: h5py.Dataset) -> None:
        """Account for one sample, rewriting ``dataset``'s attributes on a change."""
        attributes = frame_attributes(metadata.get("encoding"), self._frame_unit)
        if self._attributes is not None and attributes != self._attributes:
            attributes = mixed_attributes(self._frame_unit)
        if attributes != self._attributes:
            self._attributes = attributes
            write_frame_attributes(dataset, attributes)


def write_frame_attributes(dataset: h5py.Dataset, attributes: dict[str, Any]) -> None:
    """Replace ``dataset``'s unit and calibration attributes with ``attributes``."""
    for key in _KEYS:
        if key in dataset.attrs and key not in attributes:
            del dataset.attrs[key]
    for key, value in attributes.items():
        dataset.attrs[key] = value


def read_frame_attributes(dataset: h5py.Dataset) -> dict[str, Any]:
    """Return the unit and calibration attributes of a ``frames`` dataset."""
    return {key: _plain(dataset.attrs[key]) for key in _KEYS if key in dataset.attrs}


def join_frame_attributes(
    shards: Sequence[tuple[str, int]], folder: Path, frame_unit: str
) -> dict[str, Any]:
    """Return the master's ``frames`` attributes: the shards', where they agree.

    ``shards`` are the shard files relative to ``folder``, with their sample
    counts, as `write_master` receives them.
    """
    found = []
    for relative, _ in shards:
        with h5py.File(folder / relative, "r") as shard:
            found.append(read_frame_attributes(shard["frames"]))
    if all(attributes == found[0] for attributes in found):
        return found[0] or {"unit": frame_unit}
    return mixed_attributes(frame_unit)


def _plain(value: Any) -> Any:
    """Turn h5py's numpy scalars and bytes into float and str."""
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "item"):
        return value.item()
    return value
