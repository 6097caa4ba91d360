"""Keep Python frames alive the way a sampling profiler does."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def frames_held() -> Iterator[list[FrameType]]:
    """Hold every frame entered in this thread until the block ends.

    Dask's worker profiler keeps the frames of running tasks for a while, and
    with them their locals, such as temporary h5py handles. This does the
    same, deterministically, so that a test can check that a writer's output
    does not depend on when such handles close.
    """
    frames: list[FrameType] = []
    previous = sys.getprofile()
    sys.setprofile(lambda frame, event, arg: frames.append(frame))
    try:
        yield frames
    finally:
        sys.setprofile(previous)
        frames.clear()
