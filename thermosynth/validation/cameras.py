"""Camera of each frame, where a thermosynth output records it.

A recipe whose frames come from several cameras gives ``frames.valid_mask``
(or ``frames.ignore_mask``) as a mapping from a camera key to a mask file,
such as ``{CAM1: ..., CAM2: ...}``. The generator picks each frame's mask by
the one key that occurs in the frame's file name. A thermosynth dataset
stores the recipe text (file attribute ``recipe_yaml``) and each sample's
``source_frame`` (per-sample ``metadata``), so the same rule finds the
camera of every sample again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import yaml

from thermosynth.frames.sources import mask_keys_in_name
from thermosynth.recipe.yaml12 import load_yaml

logger = logging.getLogger(__name__)

_MASK_KEYS = ("valid_mask", "ignore_mask")


def camera_in_name(name: str, keys: Iterable[str]) -> str | None:
    """Return the one camera key that occurs in ``name``'s file name, else None.

    None also where several keys occur, as the generator rejects such a frame.
    """
    matches = mask_keys_in_name(keys, name.split("[")[0])
    return matches[0] if len(matches) == 1 else None


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
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return None
    with h5py.File(dataset, "r") as file:
        recipe = file.attrs.get("recipe_yaml")
        if recipe is None or "metadata" not in file:
            return None
        if isinstance(recipe, bytes):
            recipe = recipe.decode()
        keys = recipe_camera_keys(str(recipe))
        if not keys or rows.max() >= file["metadata"].shape[0]:
            return None
        records = file["metadata"][()]
    sources = [json.loads(records[row]).get("source_frame") for row in rows.tolist()]
    return tuple(
        None if source is None else camera_in_name(str(source), keys)
        for source in sources
    )
