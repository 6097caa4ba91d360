"""Normal frames: reading, decoding to values, and noise estimation."""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
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
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "colorbar": ("read_colorbar",),
            "encodings": (
                "LinearEncoding",
                "PaletteEncoding",
            ),
            "frame": (
                "Encoding",
                "Frame",
                "Unit",
            ),
            "noise": ("estimate_noise",),
            "palettes": (
                "available_palettes",
                "palette_lut",
            ),
            "readers": (
                "read_image",
                "read_mask",
            ),
            "sources": (
                "ArraySource",
                "FrameSource",
                "HDF5Source",
                "ImageFolderSource",
            ),
            "synthetic": ("SyntheticPouchSource",),
        },
    )

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
