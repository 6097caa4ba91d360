"""Named pseudo-colour palettes as 256-colour lookup tables."""

from __future__ import annotations

import difflib

import cv2
import matplotlib
import numpy as np

from thermosynth.errors import FrameError

_CV2_PREFIX = "cv2:"
# The recipe key that names a palette, which the message on an unknown name shows.
_PALETTE_KEYS = (("frames", "palette"),)


def available_palettes() -> list[str]:
    """List the palette names that ``palette_lut`` accepts.

    Returns
    -------
    list of str
        matplotlib colormap names (reversed ``_r`` variants are accepted too
        but not listed), then OpenCV colormaps as ``"cv2:<name>"``.
    """
    mpl_names = sorted(name for name in matplotlib.colormaps if not name.endswith("_r"))
    return mpl_names + [_CV2_PREFIX + name for name in _cv2_colormaps()]


def palette_lut(name: str) -> np.ndarray:
    """Build the 256-colour lookup table of a named palette.

    Parameters
    ----------
    name : str
        A matplotlib colormap name (``"inferno"``, ``"magma"``, ``"gray"``...)
        or an OpenCV colormap as ``"cv2:jet"``, ``"cv2:inferno"``...

    Returns
    -------
    ndarray
        uint8 (256, 3) RGB, from the lowest to the highest value.

    Notes
    -----
    matplotlib colours are converted to bytes as ``matplotlib.pyplot.imsave``
    does (``Colormap(..., bytes=True)``, which truncates), so the table matches
    images saved with matplotlib exactly.
    """
    if name.startswith(_CV2_PREFIX):
        return _cv2_lut(name)

    if name not in matplotlib.colormaps:
        raise FrameError(_unknown_palette_message(name), keys=_PALETTE_KEYS)
    cmap = matplotlib.colormaps[name].resampled(256)
    return cmap(np.arange(256), bytes=True)[:, :3].astype(np.uint8)


def _cv2_colormaps() -> dict[str, int]:
    """Map lower-case OpenCV colormap names to their cv2 constants."""
    prefix = "COLORMAP_"
    return {
        attr[len(prefix) :].lower(): getattr(cv2, attr)
        for attr in dir(cv2)
        if attr.startswith(prefix)
    }


def _cv2_lut(name: str) -> np.ndarray:
    """Build the lookup table of an OpenCV colormap named ``cv2:<name>``."""
    colormaps = _cv2_colormaps()
    key = name[len(_CV2_PREFIX) :].lower()
    if key not in colormaps:
        raise FrameError(_unknown_palette_message(name), keys=_PALETTE_KEYS)

    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, colormaps[key]).reshape(256, 3)
    return np.ascontiguousarray(bgr[:, ::-1])


def _unknown_palette_message(name: str) -> str:
    """Name up to ten close palette names and how to list all of them."""
    names = available_palettes()
    close = difflib.get_close_matches(name, names, n=10)
    if not close:
        hint = "no palette name is close to it"
    else:
        hint = f"did you mean {close[0]!r}?"
        if len(close) > 1:
            hint += f" Other close names: {', '.join(repr(c) for c in close[1:])}"
    return (
        f"unknown palette {name!r} (frames.palette); {hint}. Palettes are "
        "matplotlib colormaps such as 'inferno' and OpenCV colormaps such as "
        f"'cv2:jet'; list all {len(names)} with python -c \"from thermosynth.frames "
        'import available_palettes; print(available_palettes())"'
    )
