"""Frame sets built in memory for the closeness tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thermosynth.validation.io import FrameSet


def frame_set(
    values: np.ndarray,
    origin: Path = Path("frames"),
    *,
    masks: np.ndarray | None = None,
    cameras: tuple[str | None, ...] | None = None,
    names: list[str] | None = None,
) -> FrameSet:
    """Return a folder-like set of frames in K, named "frame 0", "frame 1", ..."""
    n = len(values)
    return FrameSet(
        values=values,
        masks=masks,
        indices=np.arange(n),
        names=names or [f"frame {i}" for i in range(n)],
        unit="K",
        origin=origin,
        kind="folder",
        cameras=cameras,
    )
