"""Write samples as an anomalib / MVTec AD folder tree.

::

    train/good/<stem>.png
    test/good/<stem>.png
    test/<kind>/<stem>.png
    ground_truth/<kind>/<stem>_mask.png   (values 0 and 255)

Stems are zero-padded sample indices of one width, so no stem is a prefix of
another and images pair with masks by sort order. Images keep the frames' own
format where PNG can store it (8-bit or 16-bit greyscale, 8-bit RGB). Float
frames are written as 16-bit PNG through a fixed linear scale, recorded in
``scale.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from thermosynth.errors import OutputError
from thermosynth.output.sample import Sample

FLOAT_SCALE_PER_LEVEL = 0.01
"""Kelvin per level for float frames written as 16-bit PNG."""

FLOAT_OFFSET = -100.0
"""Value of level 0 for float frames, in the frames' unit."""


class FolderWriter:
    """Write each sample as a PNG (and mask) under ``root``."""

    def __init__(self, root: Path, *, frame_unit: str):
        self.root = root
        self._frame_unit = frame_unit
        self._float_scale_written = False

    def write(self, sample: Sample) -> None:
        """Write one sample's image and, for anomalies, its mask."""
        folder = self.root / sample.split / sample.kind
        folder.mkdir(parents=True, exist_ok=True)
        _write_png(folder / f"{sample.stem}.png", self._to_png(sample.raw))

        if sample.label:
            mask_dir = self.root / "ground_truth" / sample.kind
            mask_dir.mkdir(parents=True, exist_ok=True)
            mask = np.where(sample.mask, 255, 0).astype(np.uint8)
            _write_png(mask_dir / f"{sample.stem}_mask.png", mask)

    def _to_png(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype in (np.uint8, np.uint16):
            return raw
        if not np.issubdtype(raw.dtype, np.floating):
            raise OutputError(
                f"cannot write frames of dtype {raw.dtype} as PNG; convert them "
                "to uint8, uint16 or float first"
            )
        self._record_float_scale()
        levels = np.rint((raw - FLOAT_OFFSET) / FLOAT_SCALE_PER_LEVEL)
        return np.clip(levels, 0, np.iinfo(np.uint16).max).astype(np.uint16)

    def _record_float_scale(self) -> None:
        if self._float_scale_written:
            return
        scale = {
            "unit": self._frame_unit,
            "value_per_level": FLOAT_SCALE_PER_LEVEL,
            "offset": FLOAT_OFFSET,
            "note": "value = level * value_per_level + offset",
        }
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "scale.json").write_text(json.dumps(scale, indent=2) + "\n")
        self._float_scale_written = True


def _write_png(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OutputError(f"could not write {path}; check free disk space and rights")
