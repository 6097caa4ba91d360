"""The normal frame that pseudo-anomalies are blended into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

Unit = Literal["C", "K", "level"]


class Encoding(Protocol):
    """Conversion between a frame's stored pixels and its values.

    ``decode`` turns stored pixels, shape (H, W) or (H, W, 3), into float64
    values of shape (H, W) in the frame's unit. ``encode`` turns values back
    into stored pixels of the original dtype and shape, quantised and clipped
    as the camera would have done.
    """

    def decode(self, raw: np.ndarray) -> np.ndarray: ...

    def encode(self, values: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Frame:
    """One normal frame, as stored and as decoded.

    Attributes
    ----------
    raw : ndarray
        Pixels as read, (H, W) greyscale or (H, W, 3) RGB, original dtype.
    values : ndarray
        Decoded values, float64 (H, W), in ``unit``: temperature [C] or [K],
        or camera levels when no calibration is known.
    unit : {"C", "K", "level"}
        Unit of ``values``.
    valid : ndarray
        Boolean (H, W). True where blending may change the pixel: inside the
        region of interest, outside the ignore mask and decodable.
    encoding : Encoding
        Converts values back to stored pixels.
    noise_sigma : float
        Estimated standard deviation of the frame's noise, in ``unit``.
    source : str
        File path, with the index inside the file where it holds several.
    """

    raw: np.ndarray
    values: np.ndarray
    unit: Unit
    valid: np.ndarray
    encoding: Encoding
    noise_sigma: float
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of the frame [px]."""
        return (int(self.values.shape[0]), int(self.values.shape[1]))


def rise_unit(unit: str) -> str:
    """Return the unit of a difference of values in ``unit``: K for C and K."""
    return "K" if unit == "C" else unit
