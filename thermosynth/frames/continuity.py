"""Check that consecutive frames could come from one camera's video.

``sequence.base: video`` blends a simulated rise into consecutive source
frames, so a folder that mixes cameras or recording sessions makes the
normal background jump between time steps while the anomaly evolves
smoothly. These checks find such jumps; they warn and never reject,
because a camera may move or re-range within one recording.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from thermosynth.frames.frame import Frame

# A region of interest that changes in more than this share of its pixels
# between two frames means another camera view.
MAX_VALID_CHANGE = 0.05

# Consecutive frames of a video differ by noise and slow change. A mean
# absolute difference above both frames' standard deviations, and above
# this multiple of their noise, means the scene itself changed.
JUMP_NOISE_MULTIPLE = 10.0


def find_jump(frames: Sequence[Frame]) -> str | None:
    """Describe the first pair of consecutive frames that jump, or return None.

    A jump is a change of the valid region, such as another camera's region
    of interest. It is also a mean absolute change, over the pixels valid in
    both frames, larger than both frames' standard deviations and than
    ``JUMP_NOISE_MULTIPLE`` times the larger noise.
    """
    for before, after in zip(frames[:-1], frames[1:], strict=True):
        reason = _jump_between(before, after)
        if reason is not None:
            return f"{before.source} -> {after.source}: {reason}"
    return None


def _jump_between(before: Frame, after: Frame) -> str | None:
    either = before.valid | after.valid
    changed = float((before.valid ^ after.valid).sum()) / max(int(either.sum()), 1)
    if changed > MAX_VALID_CHANGE:
        return f"the valid region changes in {changed:.0%} of its pixels"

    both = before.valid & after.valid
    if not both.any():
        return None
    change = float(np.mean(np.abs(after.values[both] - before.values[both])))
    spread = max(_std(before), _std(after))
    noise = max(before.noise_sigma, after.noise_sigma)
    if change > max(spread, JUMP_NOISE_MULTIPLE * noise):
        return (
            f"the mean absolute change {change:.3g} {before.unit} exceeds the "
            f"frames' standard deviation {spread:.3g} {before.unit} and "
            f"{JUMP_NOISE_MULTIPLE:g} times their noise {noise:.3g} {before.unit}"
        )
    return None


def _std(frame: Frame) -> float:
    return float(np.std(frame.values[frame.valid]))
