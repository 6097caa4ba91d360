"""Conversions between stored pixels and values: linear scales and palettes.

Both classes follow the ``Encoding`` protocol of ``thermosynth.frames.frame``:
``decode`` maps stored pixels to float64 values and ``encode`` quantises values
back to stored pixels, so that ``encode(decode(raw)) == raw`` for every pixel
that the encoding can represent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from thermosynth.errors import FrameError


class LinearEncoding:
    """Linear scale from stored levels to values: ``value = raw * scale + offset``.

    Parameters
    ----------
    dtype : numpy dtype
        Dtype of the stored pixels, for example ``uint8``, ``uint16`` or
        ``float32``.
    scale_per_level : float, optional
        Value step of one stored level, in the frame's unit per level (for
        example 0.01 K per level). Must be positive.
    offset : float, optional
        Value of stored level 0, in the frame's unit.

    Notes
    -----
    For integer dtypes ``encode`` rounds to the nearest level and clips to the
    dtype's range. For float dtypes it only rescales and casts.
    """

    def __init__(
        self,
        dtype: np.dtype | type,
        *,
        scale_per_level: float = 1.0,
        offset: float = 0.0,
    ) -> None:
        if not np.isfinite(scale_per_level) or scale_per_level <= 0:
            raise FrameError(
                "scale_per_level must be a positive finite number, "
                f"got {scale_per_level}"
            )
        if not np.isfinite(offset):
            raise FrameError(f"offset must be finite, got {offset}")

        self.dtype = np.dtype(dtype)
        self.scale_per_level = float(scale_per_level)
        self.offset = float(offset)

    @property
    def quantum(self) -> float:
        """Value step of one stored level; 0 for float dtypes."""
        if np.issubdtype(self.dtype, np.integer):
            return self.scale_per_level
        return 0.0

    @property
    def value_range(self) -> tuple[float, float] | None:
        """Values of the lowest and the highest stored level; None for floats."""
        if not np.issubdtype(self.dtype, np.integer):
            return None
        info = np.iinfo(self.dtype)
        top = float(info.max) * self.scale_per_level + self.offset
        return float(info.min) * self.scale_per_level + self.offset, top

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Convert stored levels (H, W) to float64 values (H, W)."""
        return np.asarray(raw, dtype=np.float64) * self.scale_per_level + self.offset

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Convert values to stored levels of ``dtype``.

        NaN encodes to the lowest level for integer dtypes and stays NaN for
        float dtypes.
        """
        levels = (np.asarray(values, dtype=np.float64) - self.offset) / (
            self.scale_per_level
        )
        if not np.issubdtype(self.dtype, np.integer):
            return levels.astype(self.dtype)

        info = np.iinfo(self.dtype)
        levels = np.nan_to_num(levels, nan=info.min)
        levels = np.clip(np.rint(levels), info.min, info.max)
        return levels.astype(self.dtype)

    def at_maximum(self, raw: np.ndarray) -> np.ndarray:
        """Mark stored pixels at the largest value this encoding can store.

        ``encode`` clips a larger value to that level, so a rise there is
        cut short. Float dtypes have no such level: all False.
        """
        raw = np.asarray(raw)
        if not np.issubdtype(self.dtype, np.integer):
            return np.zeros(raw.shape, dtype=bool)
        return raw == np.iinfo(self.dtype).max

    def __repr__(self) -> str:
        return (
            f"LinearEncoding({self.dtype.name}, scale_per_level={self.scale_per_level},"
            f" offset={self.offset})"
        )


class PaletteEncoding:
    """Pseudo-colour palette: level ``i`` of ``N`` is ``lut[i]``.

    Level ``i`` stands for the value ``low + i / (N - 1) * (high - low)``.

    Parameters
    ----------
    lut : ndarray
        uint8 (N, 3) RGB colours, ordered from ``low`` to ``high``; N >= 2.
    low, high : float
        Values of the first and the last colour, in the frame's unit.
    name : str, optional
        Name of the palette as `thermosynth.frames.palettes.palette_lut`
        takes it; give it only when ``lut`` equals ``palette_lut(name)``,
        because the HDF5 writers store ``palette_lut(name)`` as the colours.
        None for a palette read from elsewhere, such as a colour bar in the
        image.
    colorbar_px : tuple, optional
        ``(x_px, y_px)``, the first and last column and row of the colour bar
        that ``lut`` was read from [px], both inclusive, where each frame
        draws its own bar (see `thermosynth.frames.colorbar.read_colorbar`).

    Notes
    -----
    ``decode`` assigns each pixel the level of the nearest palette colour
    (Euclidean distance in RGB). Where the palette contains the same colour at
    several levels, the lowest of them is returned. Only the distinct colours
    of an image are looked up in a k-d tree, so the cost grows with the number
    of colours, not of pixels.
    """

    def __init__(
        self,
        lut: np.ndarray,
        *,
        low: float,
        high: float,
        name: str | None = None,
        colorbar_px: tuple[tuple[int, int], tuple[int, int]] | None = None,
    ) -> None:
        lut = np.asarray(lut)
        if lut.ndim != 2 or lut.shape[1] != 3 or lut.shape[0] < 2:
            raise FrameError(
                f"palette must be an (N, 3) array, N >= 2; got {lut.shape}"
            )
        if not (np.isfinite(low) and np.isfinite(high)) or high == low:
            raise FrameError(
                f"palette range must be finite with high != low; got {low}..{high}"
            )

        self.lut = lut.astype(np.uint8)
        self.low = float(low)
        self.high = float(high)
        self.name = name
        self.colorbar_px = colorbar_px

        colours, first_level = np.unique(self.lut, axis=0, return_index=True)
        self._tree = cKDTree(colours.astype(np.float64))
        self._tree_levels = first_level
        # The level that decode returns for the colour of the largest value:
        # the lowest level of that colour, where the palette repeats it.
        top = self.n_levels - 1 if self.high > self.low else 0
        same = np.all(self.lut == self.lut[top], axis=1)
        self._top_level = int(np.flatnonzero(same)[0])

    @property
    def n_levels(self) -> int:
        """Number of palette colours N."""
        return int(self.lut.shape[0])

    @property
    def quantum(self) -> float:
        """Value step between consecutive palette levels."""
        return abs(self.high - self.low) / (self.n_levels - 1)

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest value that a palette colour stands for."""
        return min(self.low, self.high), max(self.low, self.high)

    def decode_levels(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Find the nearest palette level of each pixel.

        Parameters
        ----------
        raw : ndarray
            RGB pixels, (H, W, 3) or any shape (..., 3), such as the
            (T, H, W, 3) frames of a sequence.

        Returns
        -------
        levels : ndarray
            int64 (...), palette index of the nearest colour.
        distance : ndarray
            float64 (...), RGB distance to that colour [levels of 0..255].
        """
        raw = np.asarray(raw)
        if raw.ndim < 2 or raw.shape[-1] != 3:
            raise FrameError(
                f"palette decoding needs RGB pixels of shape (H, W, 3) or "
                f"(..., 3), got {raw.shape}"
            )

        keys, inverse = np.unique(_pack_rgb(raw), return_inverse=True)
        colours = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1)
        distance, index = self._tree.query(colours.astype(np.float64))

        inverse = inverse.reshape(raw.shape[:-1])
        return self._tree_levels[index][inverse], distance[inverse]

    def decode(self, raw: np.ndarray, *, return_distance: bool = False):
        """Convert RGB pixels (..., 3), such as (H, W, 3), to float64 values (...).

        Every pixel takes the value of its nearest palette colour, even a
        pixel of an overlay (text, a logo, a box) that lies far from every
        colour. With ``return_distance=True`` it returns ``(values,
        distance)``, where ``distance`` is the RGB distance of each pixel to
        its palette colour, so that such pixels can be found and masked.
        """
        levels, distance = self.decode_levels(raw)
        values = self.low + levels / (self.n_levels - 1) * (self.high - self.low)
        if return_distance:
            return values, distance
        return values

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Convert values (...), such as (H, W), to uint8 RGB pixels (..., 3).

        Values round to the nearest level and clip to the palette's range. NaN
        encodes to the first colour.
        """
        position = (np.asarray(values, dtype=np.float64) - self.low) / (
            self.high - self.low
        )
        levels = np.nan_to_num(position * (self.n_levels - 1), nan=0.0)
        levels = np.clip(np.rint(levels), 0, self.n_levels - 1).astype(np.intp)
        return self.lut[levels]

    def at_maximum(self, raw: np.ndarray) -> np.ndarray:
        """Mark RGB pixels (..., 3) whose nearest colour stands for the largest value.

        ``encode`` clips a larger value to that colour, so a rise there is cut
        short. The largest value is ``high``, or ``low`` where ``high < low``.
        Where the palette repeats that colour at lower levels, as palettes
        that end in a run of white do, every pixel of the colour counts.
        """
        levels, _ = self.decode_levels(raw)
        return levels == self._top_level

    def __repr__(self) -> str:
        named = "" if self.name is None else f"{self.name!r}, "
        return (
            f"PaletteEncoding({named}{self.n_levels} colours, low={self.low}, "
            f"high={self.high})"
        )


def _pack_rgb(raw: np.ndarray) -> np.ndarray:
    """Pack 8-bit RGB pixels (..., 3) into one int64 key per pixel."""
    rgb = _whole_levels(raw).reshape(-1, 3).astype(np.int64)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def _whole_levels(raw: np.ndarray) -> np.ndarray:
    """Convert RGB pixels to uint8, accepting floats that hold whole levels 0..255.

    Dataset items hold a palette frame's levels as float32 by default, so
    their ``image`` decodes without a cast.
    """
    if raw.dtype == np.uint8:
        return raw
    expected = "palette decoding needs uint8 pixels or floats of whole levels 0..255"
    if not np.issubdtype(raw.dtype, np.floating):
        raise FrameError(f"{expected}, got {raw.dtype}; pass the stored uint8 pixels")

    whole = (raw >= 0) & (raw <= 255) & (raw == np.round(raw))
    if np.all(whole):
        return raw.astype(np.uint8)

    raise FrameError(
        f"{expected}, got {raw.dtype} pixels such as {raw[~whole][0]}; pass an "
        "item's image before normalising it, or the stored uint8 pixels"
    )


def describe_encoding(encoding: Any) -> dict[str, Any]:
    """Return the parameters that turn stored pixels into values, for metadata.

    ``linear``: value = level * ``scale_per_level`` + ``offset``. ``palette``:
    the nearest palette colour's index i stands for
    ``low + i / (n_levels - 1) * (high - low)``, and ``name`` is the palette's
    name where it has one; ``colorbar_px`` gives the columns and rows
    ``{"x_px": [x0, x1], "y_px": [y0, y1]}`` of the colour bar in each frame
    that the palette was read from. Other encodings give only their class name.
    `encoding_from_description` builds the encoding back.
    """
    if isinstance(encoding, LinearEncoding):
        return {
            "kind": "linear",
            "scale_per_level": encoding.scale_per_level,
            "offset": encoding.offset,
        }
    if isinstance(encoding, PaletteEncoding):
        description: dict[str, Any] = {
            "kind": "palette",
            "low": encoding.low,
            "high": encoding.high,
            "n_levels": encoding.n_levels,
        }
        if encoding.name is not None:
            description["name"] = encoding.name
        if encoding.colorbar_px is not None:
            x_px, y_px = encoding.colorbar_px
            description["colorbar_px"] = {"x_px": list(x_px), "y_px": list(y_px)}
        return description
    return {"kind": type(encoding).__name__}


def encoding_from_description(
    description: dict[str, Any],
    *,
    dtype: np.dtype | type,
    lut: np.ndarray | None = None,
) -> LinearEncoding | PaletteEncoding:
    """Build the encoding that `describe_encoding` described.

    Parameters
    ----------
    description : dict
        Output of `describe_encoding`, for example a sample's
        ``metadata["encoding"]``.
    dtype : numpy dtype
        Dtype of the stored pixels; a linear encoding needs it.
    lut : ndarray, optional
        uint8 (N, 3) RGB palette colours; a palette encoding needs them,
        because ``description`` gives only their number.

    Raises
    ------
    FrameError
        If ``description`` is of another kind, or describes a palette and
        ``lut`` is None or has not ``n_levels`` colours.
    """
    kind = description.get("kind")
    if kind == "linear":
        return LinearEncoding(
            dtype,
            scale_per_level=description["scale_per_level"],
            offset=description["offset"],
        )
    if kind != "palette":
        raise FrameError(
            f"encoding kind {kind!r} cannot be built back; only 'linear' and "
            "'palette' encodings can"
        )

    if lut is None or len(lut) != description["n_levels"]:
        found = "none" if lut is None else f"{len(lut)}"
        raise FrameError(
            f"a palette encoding of {description['n_levels']} levels needs a lut "
            f"of as many colours, got {found}; pass the palette's (N, 3) colours"
        )
    bar = description.get("colorbar_px")
    return PaletteEncoding(
        lut,
        low=description["low"],
        high=description["high"],
        name=description.get("name"),
        colorbar_px=None if bar is None else (tuple(bar["x_px"]), tuple(bar["y_px"])),
    )
