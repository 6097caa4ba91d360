"""Normal frames: reading, decoding to values, and noise estimation."""

from thermosynth.frames.colorbar import read_colorbar
from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding
from thermosynth.frames.frame import Encoding, Frame, Unit
from thermosynth.frames.noise import estimate_noise
from thermosynth.frames.palettes import available_palettes, palette_lut
from thermosynth.frames.readers import read_image, read_mask
from thermosynth.frames.sources import (
    ArraySource,
    FrameSource,
    HDF5Source,
    ImageFolderSource,
)
from thermosynth.frames.synthetic import SyntheticPouchSource

__all__ = [
    "ArraySource",
    "Encoding",
    "Frame",
    "FrameSource",
    "HDF5Source",
    "ImageFolderSource",
    "LinearEncoding",
    "PaletteEncoding",
    "SyntheticPouchSource",
    "Unit",
    "available_palettes",
    "estimate_noise",
    "palette_lut",
    "read_colorbar",
    "read_image",
    "read_mask",
]
