"""Camera of each frame, where a thermosynth output records it.

A recipe whose frames come from several cameras gives ``frames.valid_mask``
(or ``frames.ignore_mask``) as a mapping from a camera key to a mask file,
such as ``{CAM1: ..., CAM2: ...}``. The generator picks each frame's mask by
the one key that occurs in the frame's file name. A thermosynth dataset
stores the recipe text (file attribute ``recipe_yaml``) and each sample's
``source_frame`` (per-sample ``metadata``), so the same rule finds the
camera of every sample again.

Frames that record no camera get one from a user's regular expression
(`compile_camera_pattern`, `cameras_from_pattern`): its first capture group,
searched in each frame's file name, names the camera.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import yaml

from thermosynth.errors import FrameError
from thermosynth.frames.sources import mask_keys_in_name
from thermosynth.recipe.yaml12 import load_yaml

logger = logging.getLogger(__name__)

_MASK_KEYS = ("valid_mask", "ignore_mask")

# Option that sets a camera pattern. The command line drops its Python part.
_PATTERN_OPTION = "--camera-pattern (camera_pattern=... in Python)"
_PATTERN_EXAMPLE = "'_(CAM[0-9])_'"


def frame_file_name(name: str) -> str:
    """Return the file name in a frame's name, without a ``[row]`` suffix.

    Frames of a .npy stack or an HDF5 file are named ``file[row]``.
    """
    return Path(re.sub(r"\[\d+\]$", "", name)).name


def camera_in_name(name: str, keys: Iterable[str]) -> str | None:
    """Return the one camera key that occurs in ``name``'s file name, else None.

    None also where several keys occur, as the generator rejects such a frame.
    """
    matches = mask_keys_in_name(keys, frame_file_name(name))
    return matches[0] if len(matches) == 1 else None


def compile_camera_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a regular expression whose first capture group names a camera.

    Raises
    ------
    FrameError
        If ``pattern`` is not a valid regular expression or has no group.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise FrameError(
            f"camera pattern {pattern!r} is not a valid regular expression "
            f"({error}); give {_PATTERN_OPTION} a Python regular expression "
            f"whose first group captures the camera, such as {_PATTERN_EXAMPLE}"
        ) from None
    if compiled.groups == 0:
        raise FrameError(
            f"camera pattern {pattern!r} has no capture group, so it names no "
            "camera; put the part of the file name that names the camera in "
            f"parentheses, such as {_PATTERN_EXAMPLE}, and pass that as "
            f"{_PATTERN_OPTION}"
        )
    return compiled


def cameras_from_pattern(
    names: Sequence[str], pattern: re.Pattern[str], *, set_name: str
) -> tuple[str, ...]:
    """Return the camera of each frame: ``pattern``'s first group in its file name.

    ``names`` are the frames' names or paths, searched by `frame_file_name`,
    and ``set_name``, such as "pseudo", starts the error message.

    Raises
    ------
    FrameError
        If the first group matches no characters of a frame's file name.
    """
    cameras = []
    for name in names:
        match = pattern.search(frame_file_name(name))
        camera = None if match is None else match.group(1)
        if not camera:
            raise FrameError(
                f"{set_name} frame {name}: camera pattern {pattern.pattern!r} "
                f"finds no camera in its file name {frame_file_name(name)!r}; give "
                f"{_PATTERN_OPTION} a pattern whose first group matches in every "
                "frame's file name, or leave out the frames of other cameras"
            )
        cameras.append(camera)
    return tuple(cameras)


def recipe_camera_keys(recipe_yaml: str) -> tuple[str, ...]:
    """Return the camera keys of a recipe's per-camera mask mapping, if any.

    These are the keys of ``frames.valid_mask`` where it is a mapping, else
    those of ``frames.ignore_mask``. The tuple is empty where neither is a
    mapping or the text is not a recipe.
    """
    try:
        recipe = load_yaml(recipe_yaml)
    except yaml.YAMLError:
        return ()
    frames = recipe.get("frames") if isinstance(recipe, Mapping) else None
    if not isinstance(frames, Mapping):
        return ()
    for key in _MASK_KEYS:
        masks = frames.get(key)
        if isinstance(masks, Mapping) and masks:
            return tuple(str(name) for name in masks)
    return ()


def recorded_cameras(
    dataset: Path, rows: Sequence[int] | np.ndarray
) -> tuple[str | None, ...] | None:
    """Return the camera key of the samples at ``rows`` of a thermosynth HDF5 file.

    Parameters
    ----------
    dataset : Path
        A thermosynth ``dataset.h5``.
    rows : sequence of int
        Sample rows, as in ``FrameSet.indices``.

    Returns
    -------
    tuple of (str or None), or None
        One key per row, None for a sample whose source frame names no single
        key. None where the file records no recipe with a per-camera mask
        mapping or no per-sample metadata.
    """
    with h5py.File(dataset, "r") as file:
        recipe = file.attrs.get("recipe_yaml")
        if recipe is None:
            return None
        if isinstance(recipe, bytes):
            recipe = recipe.decode()
    keys = recipe_camera_keys(str(recipe))
    sources = recorded_sources(dataset, rows) if keys else None
    if sources is None:
        return None
    return tuple(
        None if source is None else camera_in_name(source, keys) for source in sources
    )


def recorded_sources(
    dataset: Path, rows: Sequence[int] | np.ndarray
) -> tuple[str | None, ...] | None:
    """Return the ``source_frame`` of the samples at ``rows`` of an HDF5 file.

    One path per row, None for a sample whose metadata names no source
    frame. None where ``rows`` is empty or has a negative row, or the file
    has no per-sample ``metadata`` of that many rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0 or rows.min() < 0:
        return None
    with h5py.File(dataset, "r") as file:
        if "metadata" not in file or rows.max() >= file["metadata"].shape[0]:
            return None
        records = file["metadata"][()]
    sources = [json.loads(records[row]).get("source_frame") for row in rows.tolist()]
    return tuple(None if source is None else str(source) for source in sources)
