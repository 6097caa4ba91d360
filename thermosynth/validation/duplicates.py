"""Frames that repeat other frames pixel for pixel, found by hashing their bytes.

A test frame that repeats a training frame, or a pseudo-anomaly that repeats
a normal frame, makes a validation figure look better than it is. The
reports keep such frames, because dropping them would change the user's
sets, and warn with the count and an example pair of file names.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from thermosynth.validation.io import FrameSet

logger = logging.getLogger(__name__)


def frame_digests(frames: np.ndarray) -> list[bytes]:
    """Return the BLAKE2b digest of each frame of (N, H, W) ``frames``.

    The digest covers the pixel bytes, the dtype and the shape, so two frames
    share it only where they hold the same values in the same array type.
    """
    digests = []
    for frame in frames:
        frame = np.ascontiguousarray(frame)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{frame.dtype.str}{frame.shape}".encode())
        digest.update(frame.tobytes())
        digests.append(digest.digest())
    return digests


def repeats(frames: np.ndarray, reference: np.ndarray) -> list[tuple[int, int]]:
    """Return (i, j) for each ``frames[i]`` whose pixels equal ``reference[j]``.

    ``j`` is the first matching reference frame. Frames that repeat none are
    left out.
    """
    first: dict[bytes, int] = {}
    for j, digest in enumerate(frame_digests(reference)):
        first.setdefault(digest, j)
    found = enumerate(frame_digests(frames))
    return [(i, first[digest]) for i, digest in found if digest in first]


def normal_repeat_notes(
    normal: FrameSet, others: Mapping[str, FrameSet | None]
) -> list[str]:
    """Warn, and return a note per set, where ``others`` repeat normal frames.

    ``others`` maps a set's name, such as "pseudo", to its frames, which
    are compared in the normal set's unit; None is skipped.
    """
    notes = []
    for name, frames in others.items():
        pairs = [] if frames is None else repeats(frames.values, normal.values)
        if frames is None or not pairs:
            continue
        i, j = pairs[0]
        example = f"{frames.names[i]}, which repeats {normal.names[j]}"
        if frames.names[i] == normal.names[j]:
            example = f"{frames.names[i]}, which both sets read"
        note = (
            f"{len(pairs)} of {len(frames)} {name} frames repeat a normal frame "
            f"pixel for pixel, such as {example}. They are kept, so the {name} "
            "set looks closer to normal data than distinct frames would"
        )
        logger.warning("%s", note)
        notes.append(note)
    return notes


def training_repeat_note(
    test: np.ndarray,
    training: np.ndarray,
    named: Iterable[tuple[np.ndarray, Sequence[str]]],
) -> str:
    """Warn, and return a note, where ``test`` frames repeat ``training`` frames.

    ``named`` gives frames with their file names, to name an example pair:
    every frame that the split drew ``test`` and ``training`` from. The
    note is "" where no test frame repeats a training frame.
    """
    pairs = repeats(test, training)
    if not pairs:
        return ""
    digest = frame_digests(test[pairs[0][0] : pairs[0][0] + 1])[0]
    names: list[str] = []
    for frames, frame_names in named:
        for frame_digest, name in zip(frame_digests(frames), frame_names, strict=True):
            if frame_digest == digest and name not in names:
                names.append(name)
    note = (
        f"{len(pairs)} of {len(test)} test frames repeat, pixel for pixel, a "
        "frame that the detectors train on (a training normal, or a reserve "
        "anomaly of the supervised ceiling and the contamination run)"
        f"{_example(names)}. They are kept, so their scores measure how "
        "detectors treat frames they have seen, not transfer to unseen ones"
    )
    logger.warning("%s", note)
    return note


def _example(names: Sequence[str]) -> str:
    """Return ", such as A and B" for the files that contain one repeated frame."""
    if len(names) >= 2:
        return f", such as {names[0]} and {names[1]}"
    if names:
        return f", such as {names[0]}, read as both a training and a test frame"
    return ""
