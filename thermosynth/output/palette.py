"""The named palette of a thermosynth output: one copy per HDF5 file.

``encoding/palette_rgb`` contains the (n_levels, 3) uint8 RGB colours of the
palette that decoded the frames, from the lowest value to the highest. Its
attributes are ``name``, ``low`` and ``high`` (the values of the first and
the last colour) and ``unit`` (the frames' unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from thermosynth.errors import OutputError
from thermosynth.frames.encodings import PaletteEncoding
from thermosynth.frames.palettes import palette_lut

PALETTE_DATASET = "encoding/palette_rgb"


def copy_palette(
    master: h5py.File,
    shards: Sequence[tuple[str, int]],
    folder: Path,
    *,
    frame_unit: str,
) -> None:
    """Store the shards' palette in ``master``; raise if the shards differ."""
    palettes = []
    for relative, _ in shards:
        with h5py.File(folder / relative, "r") as shard:
            palettes.append(read_palette(shard))

    first = palettes[0]
    for (relative, _), palette in zip(shards, palettes, strict=True):
        if not _same_palette(first, palette):
            raise OutputError(
                f"shard {relative} stores the palette {palette!r}, but shard "
                f"{shards[0][0]} stores {first!r}; the shards of one dataset must "
                "come from one recipe, so generate them again with one recipe"
            )
    if first is not None:
        write_palette(master, first, unit=frame_unit)


class PaletteRecord:
    """Store the named palette of a file's samples once, at the first sample.

    Parameters
    ----------
    file : h5py.File
        File open for writing.
    frame_unit : str
        Unit of the frames' values, and so of the palette's ``low`` and
        ``high``.
    """

    def __init__(self, file: h5py.File, *, frame_unit: str) -> None:
        self._file = file
        self._frame_unit = frame_unit
        self._key: tuple[Any, ...] | None = None
        self._seen = False

    def add(self, metadata: dict[str, Any], index: int) -> None:
        """Check sample ``index``'s palette, storing it if it is the first sample.

        Raises
        ------
        OutputError
            If the sample names another palette or value range than the
            file's first sample, since a file stores one palette.
        """
        description = named_palette(metadata)
        key = None
        if description is not None:
            key = (description["name"], description["low"], description["high"])

        if not self._seen:
            if description is not None:
                # Writers receive a sample's metadata, not its encoding, so the
                # colours are built again from the name, as the frame sources
                # built them.
                encoding = PaletteEncoding(
                    palette_lut(description["name"]),
                    low=description["low"],
                    high=description["high"],
                    name=description["name"],
                )
                write_palette(self._file, encoding, unit=self._frame_unit)
            self._key, self._seen = key, True
        elif key != self._key:
            raise OutputError(
                f"sample {index} has the palette (name, low, high) {key}, but this "
                f"file stores {self._key}; a file stores one palette, so write "
                "frames of another palette or value range to another output"
            )


def named_palette(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``metadata["encoding"]`` if it describes a named palette, else None."""
    description = metadata.get("encoding") or {}
    if description.get("kind") == "palette" and "name" in description:
        return description
    return None


def write_palette(file: h5py.File, encoding: PaletteEncoding, *, unit: str) -> None:
    """Store a palette's colours and value range as ``encoding/palette_rgb``.

    Parameters
    ----------
    file : h5py.File
        File open for writing, without a palette yet.
    encoding : PaletteEncoding
        Palette to store; its ``name`` may be None.
    unit : str
        Unit of ``encoding.low`` and ``encoding.high``, the frames' unit.
    """
    dataset = file.create_dataset(PALETTE_DATASET, data=encoding.lut)
    if encoding.name is not None:
        dataset.attrs["name"] = encoding.name
    dataset.attrs["low"] = encoding.low
    dataset.attrs["high"] = encoding.high
    dataset.attrs["unit"] = unit


def read_palette(file: h5py.File) -> PaletteEncoding | None:
    """Read the palette that `write_palette` stored; None if the file has none."""
    if PALETTE_DATASET not in file:
        return None
    dataset = file[PALETTE_DATASET]
    name = dataset.attrs.get("name")
    return PaletteEncoding(
        dataset[()],
        low=float(dataset.attrs["low"]),
        high=float(dataset.attrs["high"]),
        name=None if name is None else str(name),
    )


def _same_palette(a: PaletteEncoding | None, b: PaletteEncoding | None) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(a.lut, b.lut) and (a.low, a.high, a.name) == (
        b.low,
        b.high,
        b.name,
    )
