"""Write sequences of frames: one HDF5 file and an image folder per sequence.

HDF5 layout (N sequences of T frames of H x W pixels):

- ``frames``: (N, T, H, W) or (N, T, H, W, 3), the frames' own dtype, with
  the attributes of thermosynth.output.frame_attributes.
- ``masks``: (N, T, H, W) uint8, 1 where anomalous in that frame.
- ``rise_K``: (N, T, H, W) float32, simulated surface rise at frame pixels [K].
- ``recorded_rise``: (N, T, H, W) float32, rise applied to the frames before
  quantisation (see thermosynth.output.hdf5), in the frames' unit, K for
  Celsius frames (attribute ``unit``).
- ``times_s``: (T,) float64, time of each frame after the anomaly's onset [s].
- ``labels``: (N,) uint8; ``splits``: (N,) strings; ``kinds``: (N,) strings.
- ``metadata``: (N,) JSON strings, one per sequence.
- ``encoding/palette_rgb``: (n_levels, 3) uint8 RGB colours of the named palette
  that decoded the frames, with attributes ``name``, ``low``, ``high`` and
  ``unit``, as in thermosynth.output.hdf5; present only for named palettes.
- File attributes: ``recipe_yaml``, ``recipe_dir`` (the absolute folder that
  relative paths in ``recipe_yaml`` start from), ``recipe_sha256``, ``seed``,
  ``thermosynth_version``, ``frame_unit``.

Images are chunked one frame at a time, shuffled and gzip-compressed (level
1, as single frames are), so a reader can take one frame of one sequence
without decompressing the rest.

A generated dataset keeps each shard of sequences in its own file of this
layout, and its ``dataset.h5`` joins them through virtual datasets, as
`thermosynth.output.hdf5.write_master` describes.

Folder layout, one subfolder per sequence::

    train/good/<stem>/<t>.png
    test/good/<stem>/<t>.png
    test/<kind>/<stem>/<t>.png
    ground_truth/<kind>/<stem>/<t>_mask.png   (values 0 and 255)
    times.json                                (times_s of the frames)
    scale.json                                (PNG levels to frame values)

``scale.json`` is written only for 16-bit and float frames.

``<stem>`` is the zero-padded sequence index and ``<t>`` the zero-padded
frame index, both of one width, so files sort in time order.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import h5py
import numpy as np

from thermosynth import __version__
from thermosynth.errors import OutputError
from thermosynth.frames.frame import rise_unit
from thermosynth.output.folder import EightBitScale, png_levels
from thermosynth.output.frame_attributes import FrameAttributes
from thermosynth.output.hdf5 import GZIP_LEVEL, close_in_order, compress_chunks
from thermosynth.output.palette import PaletteRecord

_STRING = h5py.string_dtype(encoding="utf-8")
_PER_FRAME = ("frames", "masks", "rise_K", "recorded_rise")


@dataclass(frozen=True)
class SequenceSample:
    """A normal or anomalous sequence of frames with its masks and rises.

    Attributes
    ----------
    index : int
        Position in the dataset, 0-based; fixes the sequence's random stream.
    split : {"train", "test"}
        Dataset split.
    label : int
        0 for normal, 1 for anomalous.
    kind : str
        ``"good"`` for normal sequences, else the scenario name.
    raw : ndarray
        (T, H, W) or (T, H, W, 3) frame pixels in the source's own dtype.
    mask : ndarray
        Boolean (T, H, W) anomaly mask per frame; all False when normal.
    rise_K : ndarray
        float32 (T, H, W) simulated surface rise warped to the frames [K].
    recorded_rise : ndarray
        float32 (T, H, W) rise applied to the frames before quantisation, in
        the frames' unit, zero outside the mask.
    frame_unit : str
        Unit of the frames' values: ``"C"``, ``"K"`` or ``"level"``.
    metadata : dict
        JSON-serialisable description: source frames, drawn parameters with
        units, per-frame severity figures.
    """

    index: int
    split: str
    label: int
    kind: str
    raw: np.ndarray
    mask: np.ndarray
    rise_K: np.ndarray
    recorded_rise: np.ndarray
    frame_unit: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """Name of the sequence's subfolder, fixed width."""
        return f"{self.index:06d}"


class SequenceHDF5Writer:
    """Append sequences to a new HDF5 file; use as a context manager.

    Parameters
    ----------
    path : Path
        File to create; it must not exist (the caller stages output).
    times_s : ndarray
        (T,) time of each frame after the anomaly's onset [s].
    attributes : dict
        File attributes, such as the recipe text and hash.
    frame_unit : str
        Unit of the frames' values, ``"C"``, ``"K"`` or ``"level"``.
    """

    def __init__(
        self,
        path: Path,
        *,
        times_s: np.ndarray,
        attributes: dict[str, Any],
        frame_unit: str,
    ):
        self._file = h5py.File(path, "w-", track_order=False)
        self._file.attrs["thermosynth_version"] = __version__
        self._file.attrs["frame_unit"] = frame_unit
        for key, value in attributes.items():
            self._file.attrs[key] = value

        times = self._file.create_dataset(
            "times_s", data=np.asarray(times_s, dtype=np.float64)
        )
        times.attrs["unit"] = "s"
        self._datasets: dict[str, h5py.Dataset] = {"times_s": times}
        self._n_times = int(times.shape[0])
        self._frame_unit = frame_unit
        self._count = 0
        self._palette = PaletteRecord(self._file, frame_unit=frame_unit)
        self._frame_attributes = FrameAttributes(frame_unit)

    def __enter__(self) -> SequenceHDF5Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        close_in_order(self._file, self._datasets)
        self._datasets.clear()

    def write(self, sample: SequenceSample) -> None:
        """Append one sequence."""
        _check_length(sample, self._n_times)
        self._palette.add(sample.metadata, sample.index)
        if self._count == 0:
            self._create(sample)
        self._frame_attributes.add(sample.metadata, self._datasets["frames"])
        n = self._count + 1
        for name in (*_PER_FRAME, "labels", "splits", "kinds", "metadata"):
            self._datasets[name].resize(n, axis=0)

        i = self._count
        images = (sample.raw, sample.mask, sample.rise_K, sample.recorded_rise)
        for name, frames in zip(_PER_FRAME, images, strict=True):
            self._write_frames(name, i, frames)
        self._datasets["labels"][i] = sample.label
        self._datasets["splits"][i] = sample.split
        self._datasets["kinds"][i] = sample.kind
        self._datasets["metadata"][i] = json.dumps(sample.metadata, sort_keys=True)
        self._count = n

    def _write_frames(self, name: str, index: int, frames: np.ndarray) -> None:
        """Write one sequence's frames, one pre-compressed chunk per frame.

        The chunks bypass h5py's filter pipeline, as the single-frame writer's
        do, so that a file's bytes depend only on its content.
        """
        dataset = self._datasets[name]
        copies = [np.ascontiguousarray(f, dtype=dataset.dtype) for f in frames]
        tail = (0,) * (dataset.ndim - 2)
        for time, chunk in enumerate(compress_chunks(copies)):
            dataset.id.write_direct_chunk((index, time, *tail), chunk)

    def _create(self, sample: SequenceSample) -> None:
        frame_shape = sample.mask.shape  # (T, H, W)
        self._grow("frames", sample.raw.shape, sample.raw.dtype)
        self._grow("masks", frame_shape, np.uint8)
        self._grow("rise_K", frame_shape, np.float32).attrs["unit"] = "K"
        recorded = self._grow("recorded_rise", frame_shape, np.float32)
        recorded.attrs["unit"] = rise_unit(self._frame_unit)

        self._datasets["labels"] = self._file.create_dataset(
            "labels", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.uint8
        )
        for name in ("splits", "kinds", "metadata"):
            self._datasets[name] = self._file.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=_STRING
            )

    def _grow(self, name: str, shape: tuple[int, ...], dtype: Any) -> h5py.Dataset:
        """Create an extendable (0, T, H, W[, 3]) dataset chunked per frame."""
        self._datasets[name] = self._file.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            chunks=(1, 1, *shape[1:]),
            dtype=dtype,
            compression="gzip",
            compression_opts=GZIP_LEVEL,
            shuffle=True,
        )
        return self._datasets[name]


class SequenceFolderWriter:
    """Write each sequence's frames (and masks) as PNGs in its own subfolder.

    8-bit and RGB frames are written as they are. With ``eight_bit``, 16-bit
    and float frames go through that scale to 8 bits, as single frames do
    (`thermosynth.output.folder.FolderWriter`). Without it, 16-bit frames
    keep their levels and float frames are written as 16-bit PNG through the
    fixed linear scale of `thermosynth.output.folder`. Either scale is
    recorded in ``scale.json``.
    """

    def __init__(
        self,
        root: Path,
        *,
        times_s: np.ndarray,
        frame_unit: str,
        eight_bit: EightBitScale | None = None,
    ):
        self.root = root
        self._frame_unit = frame_unit
        self._eight_bit = eight_bit
        self._n_times = len(times_s)
        self._width = max(4, len(str(self._n_times - 1)))
        self._scale_written = False
        # Every PNG written, whose size a shard marker records.
        self.written: list[Path] = []

        root.mkdir(parents=True, exist_ok=True)
        times = {"times_s": [float(t) for t in times_s], "unit": "s"}
        _write_json(root / "times.json", times)

    def write(self, sample: SequenceSample) -> None:
        """Write one sequence's frames and, for anomalies, its masks."""
        _check_length(sample, self._n_times)
        folder = self.root / sample.split / sample.kind / sample.stem
        folder.mkdir(parents=True, exist_ok=True)
        for t, raw in enumerate(sample.raw):
            path = folder / f"{self.frame_name(t)}.png"
            _write_png(path, self._to_png(raw))
            self.written.append(path)
        if not sample.label:
            return

        mask_dir = self.root / "ground_truth" / sample.kind / sample.stem
        mask_dir.mkdir(parents=True, exist_ok=True)
        for t, mask in enumerate(sample.mask):
            image = np.where(mask, 255, 0).astype(np.uint8)
            path = mask_dir / f"{self.frame_name(t)}_mask.png"
            _write_png(path, image)
            self.written.append(path)

    def frame_name(self, t: int) -> str:
        """Return the file stem of frame ``t``: its index, zero-padded."""
        return f"{t:0{self._width}d}"

    def _to_png(self, raw: np.ndarray) -> np.ndarray:
        image, scale = png_levels(raw, self._eight_bit, self._frame_unit)
        if scale is not None:
            self._record_scale(scale)
        return image

    def _record_scale(self, scale: dict[str, Any]) -> None:
        if self._scale_written:
            return
        _write_json(self.root / "scale.json", scale)
        self._scale_written = True


def _check_length(sample: SequenceSample, n_times: int) -> None:
    if sample.raw.shape[0] != n_times or sample.mask.shape[0] != n_times:
        raise OutputError(
            f"sequence {sample.index} has {sample.raw.shape[0]} frames and "
            f"{sample.mask.shape[0]} masks but the writer expects {n_times}, one "
            "per entry of times_s"
        )


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write a JSON file through a unique temporary name and rename it.

    Every shard's writer writes the same ``times.json`` and ``scale.json``,
    possibly from several processes at once. The rename keeps the file whole.
    """
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    with os.fdopen(handle, "w") as stream:
        stream.write(json.dumps(content, indent=2) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _write_png(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OutputError(f"could not write {path}; check free disk space and rights")
