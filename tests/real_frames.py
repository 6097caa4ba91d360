"""Real 8-bit frames from ../shared/data, read as grey levels, for figure tests."""

from pathlib import Path

import cv2
import numpy as np

PV_IMAGES = Path("pv-modules-raptormaps") / "images"
"""Raptor Maps PV module crops, 40 x 24 px (height x width) greyscale JPEGs."""

BATTERY_FRAMES = Path("battery-station-inferno") / "normal_masked"
"""Battery station frames, 60 x 80 px (height x width) inferno renders."""

BATTERY_ANOMALIES = Path("battery-station-inferno") / "test" / "masked"
"""Where the ``a_`` files, battery frames re-rendered with more contrast, are."""


def grey_frames(data_dir: Path, folder: Path, pattern: str, n: int) -> np.ndarray:
    """Read the first ``n`` files of ``folder`` that match ``pattern``.

    Returns uint8 (n, H, W) grey levels; colour files give their luminance.
    """
    paths = sorted((data_dir / folder).glob(pattern))[:n]
    assert len(paths) == n, f"{n} files matching {pattern} expected in {folder}"
    frames = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in paths]
    assert all(frame is not None for frame in frames)
    return np.stack(frames)
