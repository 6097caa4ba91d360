"""Write samples as an anomalib / MVTec AD folder tree.

::

    train/good/<stem>.png
    test/good/<stem>.png
    test/<kind>/<stem>.png
    ground_truth/<kind>/<stem>_mask.png   (values 0 and 255)

Stems are zero-padded sample indices of one width, so no stem is a prefix of
another and images pair with masks by sort order.

anomalib 2.x reads every image with PIL and converts it to 8-bit RGB, which
saturates 16-bit PNGs. So by default (``output.folder_8bit: true``) 16-bit
and float frames are mapped to 8 bits through one linear scale for the whole
dataset, recorded in ``scale.json``; 8-bit and RGB frames are written as they
are. With ``folder_8bit: false`` images keep the frames' own format: 8- or
16-bit greyscale, 8-bit RGB, and float frames as 16-bit PNG through a fixed
scale. The HDF5 file always keeps full precision.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from thermosynth.errors import OutputError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.output.sample import Sample

FLOAT_SCALE_PER_LEVEL = 0.01
"""Value step of one level for float frames written as 16-bit PNG."""

FLOAT_OFFSET = -100.0
"""Value of level 0 for float frames written as 16-bit PNG."""

HEADROOM = 1.0
"""Room above the fitted frames' range for hotspots, in units of that range.

The default of ``output.folder_headroom``.
"""


@dataclass(frozen=True)
class EightBitScale:
    """One linear map from stored pixels to 8-bit levels for a whole dataset.

    ``level = clip(rint((raw - raw_offset) / raw_per_level), 0, 255)``,
    where ``raw`` is a stored pixel of the source frames. ``value_per_level``
    and ``value_offset`` map a level straight to the frames' values, through
    the linear calibration of the first frame that the scale was fitted to;
    they are None for other encodings. ``headroom`` is the room above the
    fitted frames' range, in units of its span, as ``output.folder_headroom``
    gives it.
    """

    raw_offset: float
    raw_per_level: float
    source_dtype: str
    value_per_level: float | None = None
    value_offset: float | None = None
    headroom: float = HEADROOM

    @classmethod
    def from_frame(
        cls, frame: Frame, *, headroom: float = HEADROOM
    ) -> EightBitScale | None:
        """Fit the map to one frame's valid pixels; None for 8-bit frames."""
        return cls.from_frames([frame], headroom=headroom)

    @classmethod
    def from_frames(
        cls, frames: Sequence[Frame], *, headroom: float = HEADROOM
    ) -> EightBitScale | None:
        """Fit the map to the valid pixels of ``frames``; None for 8-bit frames.

        The range runs from the lowest pixel of all frames to their highest
        plus ``headroom`` times that span, so that hotspots up to that height
        stay below 255; hotter pixels clip, and `clipped_px` counts them.
        The first frame's dtype and calibration describe the scale.
        """
        first = frames[0]
        if first.raw.dtype == np.uint8:
            return None

        lows, highs = zip(*(_valid_range(frame) for frame in frames), strict=True)
        low, high = min(lows), max(highs)
        is_integer = np.issubdtype(first.raw.dtype, np.integer)
        span = max(high - low, 1.0 if is_integer else 1e-3)
        per_level = span * (1.0 + headroom) / 255.0

        values: dict[str, float] = {}
        if isinstance(first.encoding, LinearEncoding):
            step, offset = first.encoding.scale_per_level, first.encoding.offset
            values = {"value_per_level": per_level * step}
            values["value_offset"] = low * step + offset
        return cls(
            raw_offset=low,
            raw_per_level=per_level,
            source_dtype=str(first.raw.dtype),
            headroom=headroom,
            **values,
        )

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Map stored pixels to uint8 levels."""
        levels = np.rint(
            (raw.astype(np.float64) - self.raw_offset) / self.raw_per_level
        )
        return np.clip(levels, 0, 255).astype(np.uint8)

    def clipped_px(self, raw: np.ndarray, mask: np.ndarray) -> int:
        """Count the pixels of ``mask`` whose level `apply` clips to 0 or 255.

        ``raw`` is (H, W) stored pixels and ``mask`` a boolean (H, W) array.
        """
        inside = raw[mask].astype(np.float64)
        levels = np.rint((inside - self.raw_offset) / self.raw_per_level)
        return int(np.count_nonzero((levels < 0) | (levels > 255)))

    def headroom_to_fit(self, raw: np.ndarray, mask: np.ndarray) -> float | None:
        """Return the smallest headroom that keeps ``mask`` at or below level 255.

        The headroom is in units of the fitted frame's span, as ``headroom``
        and ``output.folder_headroom`` are. The result is None when no pixel
        of ``mask`` clips at 255 under this scale. ``raw`` contains stored
        pixels and ``mask`` is a boolean array of the same shape, such as
        (H, W) or (T, H, W).
        """
        if not mask.any():
            return None
        top = float(raw[mask].max()) - self.raw_offset
        if np.rint(top / self.raw_per_level) <= 255:
            return None
        span = self.raw_per_level * 255.0 / (1.0 + self.headroom)
        return top / span - 1.0

    def describe(self, frame_unit: str) -> dict[str, Any]:
        """Return the scale as written to ``scale.json``.

        The keys ``unit``, ``raw_per_level`` and ``raw_offset`` keep the
        names that earlier versions wrote; ``level_to_value`` is new.
        """
        described: dict[str, Any] = {
            "unit": frame_unit,
            "source_dtype": self.source_dtype,
            "raw_per_level": self.raw_per_level,
            "raw_offset": self.raw_offset,
        }
        note = (
            "raw = level * raw_per_level + raw_offset, where raw is the stored "
            "pixel value of the source frames (source_dtype), not a value in "
            "unit. "
        )
        if self.value_per_level is not None:
            described["level_to_value"] = {
                "value_per_level": self.value_per_level,
                "value_offset": self.value_offset,
                "unit": frame_unit,
            }
            note += (
                "value = level * level_to_value.value_per_level + "
                "level_to_value.value_offset, in unit, for frames with the "
                "calibration of the first frame (each sample's metadata "
                "encoding in dataset.h5 gives its own). "
            )
        described["note"] = note + (
            "Levels outside 0 to 255 are clipped; dataset.h5 keeps the stored "
            "pixels at full precision"
        )
        return described


class FolderWriter:
    """Write each sample as a PNG (and mask) under ``root``; close when done.

    Use it as a context manager, or call `close`: the files of the last
    samples are complete only after it.

    Parameters
    ----------
    root : Path
        Folder of the tree.
    frame_unit : str
        Unit of the frames' values, recorded in ``scale.json``.
    eight_bit : EightBitScale, optional
        Map for 16-bit and float frames; None keeps the frames' own format.
    """

    def __init__(
        self, root: Path, *, frame_unit: str, eight_bit: EightBitScale | None = None
    ):
        self.root = root
        self._frame_unit = frame_unit
        self._eight_bit = eight_bit
        self._scale_written = False
        # OpenCV encodes without the GIL, so one thread writes a sample's
        # PNGs while the caller makes the next sample.
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="png-write")
        self._writing: deque[Future[None]] = deque()
        # Every PNG written, whose size a shard marker records.
        self.written: list[Path] = []

    def __enter__(self) -> FolderWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, sample: Sample) -> None:
        """Write one sample's image and, for anomalies, its mask.

        The files are written in the background; errors surface at a later
        `write` or at `close`, which also waits for the last files.
        """
        folder = self.root / sample.split / sample.kind
        folder.mkdir(parents=True, exist_ok=True)
        image = self._to_png(sample.raw)
        if image is sample.raw:
            # The caller may reuse its frame while the PNG is still pending.
            image = image.copy()
        jobs = [(folder / f"{sample.stem}.png", image)]

        if sample.label:
            mask_dir = self.root / "ground_truth" / sample.kind
            mask_dir.mkdir(parents=True, exist_ok=True)
            mask = np.where(sample.mask, 255, 0).astype(np.uint8)
            jobs.append((mask_dir / f"{sample.stem}_mask.png", mask))

        self.written += [path for path, _ in jobs]
        self._writing.append(self._encoder.submit(_write_pngs, jobs))
        while len(self._writing) > _IN_FLIGHT:
            self._writing.popleft().result()

    def close(self) -> None:
        """Wait for the files still being written; raise the first error."""
        try:
            while self._writing:
                self._writing.popleft().result()
        finally:
            self._writing.clear()
            self._encoder.shutdown(cancel_futures=True)

    def _to_png(self, raw: np.ndarray) -> np.ndarray:
        image, scale = png_levels(raw, self._eight_bit, self._frame_unit)
        if scale is not None:
            self._record_scale(scale)
        return image

    def _record_scale(self, scale: dict[str, Any]) -> None:
        if self._scale_written:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(scale, indent=2) + "\n"

        # Shards written by several workers write the same text, and the rename
        # keeps the file whole whichever finishes last. The ".tmp" suffix lets
        # a resumed run remove the file that a killed run left.
        handle, temporary = tempfile.mkstemp(
            prefix=".scale.", suffix=".tmp", dir=self.root
        )
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, self.root / "scale.json")
        self._scale_written = True


# Samples whose PNGs may be pending at once; bounds the memory they hold.
_IN_FLIGHT = 2


def _write_pngs(jobs: list[tuple[Path, np.ndarray]]) -> None:
    for path, image in jobs:
        _write_png(path, image)


def _write_png(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OutputError(f"could not write {path}; check free disk space and rights")


def _valid_range(frame: Frame) -> tuple[float, float]:
    """Return the lowest and highest valid stored pixel of ``frame``."""
    raw = frame.raw
    pixels = raw[frame.valid] if frame.valid.any() else raw.ravel()
    return float(pixels.min()), float(pixels.max())


def png_levels(
    raw: np.ndarray, eight_bit: EightBitScale | None, frame_unit: str
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Map a frame to PNG levels; return them and the scale that decodes them.

    8-bit frames are kept as they are. Other frames go through ``eight_bit``
    where given, uint16 frames are kept otherwise, and float frames are
    stored as 16-bit levels of ``FLOAT_SCALE_PER_LEVEL`` from
    ``FLOAT_OFFSET``. The scale is None where the levels are the frame's own.
    """
    if raw.dtype == np.uint8:
        return raw, None
    if eight_bit is not None:
        return eight_bit.apply(raw), eight_bit.describe(frame_unit)
    if raw.dtype == np.uint16:
        return raw, None
    if not np.issubdtype(raw.dtype, np.floating):
        raise OutputError(
            f"cannot write frames of dtype {raw.dtype} as PNG; convert them "
            "to uint8, uint16 or float first"
        )
    scale = {
        "unit": frame_unit,
        "value_per_level": FLOAT_SCALE_PER_LEVEL,
        "offset": FLOAT_OFFSET,
        "note": "value = level * value_per_level + offset",
    }
    levels = np.rint((raw - FLOAT_OFFSET) / FLOAT_SCALE_PER_LEVEL)
    return np.clip(levels, 0, np.iinfo(np.uint16).max).astype(np.uint16), scale
