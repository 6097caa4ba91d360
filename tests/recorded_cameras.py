"""A thermosynth-like HDF5 file whose samples record their source frames."""

import json
from pathlib import Path

import h5py
import numpy as np

TWO_CAMERAS = """\
frames:
  kind: images
  path: frames
  valid_mask:
    CAM1: masks/MASK_CAM1_thermal.png
    CAM2: masks/MASK_CAM2_thermal.png
"""


def write_recorded_dataset(
    path: Path, frames: np.ndarray, sources: list[str], labels: np.ndarray, recipe: str
) -> None:
    """Write a thermosynth-like HDF5 file whose samples name their source frames."""
    metadata = [json.dumps({"source_frame": source}) for source in sources]
    with h5py.File(path, "w") as file:
        file.create_dataset("frames", data=frames)
        file.create_dataset("labels", data=labels)
        file.create_dataset("metadata", data=metadata, dtype=h5py.string_dtype())
        file.attrs["frame_unit"] = "K"
        file.attrs["recipe_yaml"] = recipe
