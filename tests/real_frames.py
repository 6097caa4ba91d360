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


def write_renamed_frames(
    data_dir: Path, folder: Path, names: dict[str, str], frames: slice
) -> np.ndarray:
    """Write battery frames as PNGs named ``<prefix>-<i>.png`` under ``folder``.

    ``names`` maps each file name prefix to the camera key of the real files
    to take (``CAM1`` or ``CAM2``), and ``frames`` chooses among that
    camera's files in sorted order. Returns the uint8 grey levels written,
    in file name order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for prefix, camera in sorted(names.items()):
        files = sorted((data_dir / BATTERY_FRAMES).glob(f"*_{camera}_thermal.png"))
        for i, path in enumerate(files[frames]):
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            assert cv2.imwrite(str(folder / f"{prefix}-{i:02d}.png"), grey)
            written.append(grey)
    return np.stack(written)
