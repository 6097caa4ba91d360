"""Read the frames of a video file as normal frames, in order.

A video file stores no calibration, so its frames decode like an image folder's:
greyscale levels through a linear calibration, or pseudo-colour through a named
palette. A folder of frames in file-name order is read by
`thermosynth.frames.sources.ImageFolderSource` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.palettes import palette_lut

# NOTE: these helpers are private to sources.py; VideoSource shares them so
# that a video frame decodes exactly like the same image read from a folder.
from thermosynth.frames.sources import (
    MaskSpec,
    Rect,
    Region,
    _build_frame,
    _check_index,
    _check_unit,
    _linear_encoding,
    _palette_range,
    _require_rgb8,
)

_MODES = ("greyscale", "palette")


class VideoSource:
    """Frames of one video file, decoded on demand with ``cv2.VideoCapture``.

    Parameters
    ----------
    path : str or Path
        Video file in any format that OpenCV's FFmpeg backend reads.
    mode : {"greyscale", "palette"}, optional
        ``greyscale`` keeps one channel (the frame must be grey, R = G = B)
        with a linear calibration; ``palette`` reads RGB through ``palette``.
    unit : {"level", "C", "K"}, optional
        Unit of the decoded values.
    scale_per_level, offset : float, optional
        Greyscale calibration [unit per level] and value of level 0 [unit].
    palette : str, optional
        Palette name for mode ``palette``.
    value_range : tuple of float, optional
        Values of the palette's first and last colour [unit]; None means
        (0, N - 1) levels.
    valid_mask, ignore_mask, ignore_rects, max_colour_distance
        As for `thermosynth.frames.sources.ImageFolderSource`.

    Notes
    -----
    Lossy video codecs change colours, so more pseudo-colour pixels fall
    outside the palette than in the PNG they came from. Raise
    ``max_colour_distance`` if too many pixels become invalid.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        mode: str = "greyscale",
        unit: str = "level",
        scale_per_level: float | None = None,
        offset: float | None = None,
        palette: str | None = None,
        value_range: tuple[float, float] | None = None,
        valid_mask: MaskSpec = None,
        ignore_mask: MaskSpec = None,
        ignore_rects: Sequence[Rect] = (),
        max_colour_distance: float = 40.0,
    ) -> None:
        if mode not in _MODES:
            raise FrameError(f"video mode must be one of {_MODES}, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.unit = _check_unit(unit)
        self.scale_per_level = scale_per_level
        self.offset = offset
        self.max_colour_distance = float(max_colour_distance)
        self._region = Region(valid_mask, ignore_mask, ignore_rects)
        self._palette = self._palette_encoding(palette, value_range)
        self._frames = _Video(self.path)

    def _palette_encoding(
        self, palette: str | None, value_range: tuple[float, float] | None
    ) -> PaletteEncoding | None:
        if self.mode != "palette":
            return None
        if palette is None:
            raise FrameError("video mode 'palette' needs a palette name, e.g. inferno")

        lut = palette_lut(palette)
        low, high = _palette_range(self.unit, value_range, lut)
        return PaletteEncoding(lut, low=low, high=high, name=palette)

    @property
    def sources(self) -> list[str]:
        """Name of each frame: ``<file>#<frame number>``."""
        return [f"{self.path}#{i}" for i in range(len(self))]

    def __len__(self) -> int:
        return len(self._frames)

    def read(self, index: int) -> Frame:
        """Decode frame ``index``."""
        index = _check_index(index, len(self))
        name = f"{self.path}#{index}"
        raw = self._frames[index]

        if self.mode == "greyscale":
            raw = _grey_channel(raw, name)
            encoding: LinearEncoding | PaletteEncoding = _linear_encoding(
                raw.dtype, self.unit, self.scale_per_level, self.offset, name
            )
            values = encoding.decode(raw)
            decodable = np.ones(raw.shape, dtype=bool)
        else:
            raw = _require_rgb8(raw, name, self.mode)
            assert self._palette is not None  # set for mode "palette"
            encoding = self._palette
            values, distance = encoding.decode(raw, return_distance=True)
            decodable = distance <= self.max_colour_distance

        region = self._region.mask(str(self.path), raw.shape[:2])
        return _build_frame(
            raw,
            values,
            decodable,
            encoding=encoding,
            unit=self.unit,
            region=region,
            source=name,
        )


class _Video:
    """An open video file with frame-accurate random access.

    Frames are counted once by grabbing them all, because
    ``CAP_PROP_FRAME_COUNT`` is an estimate from the container's header for
    some formats. Reading the next frame decodes it directly; an earlier one
    reopens the file, and a later one seeks with ``CAP_PROP_POS_FRAMES``.
    """

    def __init__(self, path: Path):
        if not path.is_file():
            raise FrameError(f"video file not found: {path}")
        self.path = path
        self._capture = cv2.VideoCapture(str(path))
        self.length = 0
        while self._capture.grab():
            self.length += 1
        if self.length == 0:
            raise FrameError(
                f"could not read any frame from {path}; check that the file is a "
                "video that OpenCV's FFmpeg backend decodes"
            )
        self._rewind()

    def _rewind(self) -> None:
        # Reopening is the one way back to frame 0 that works after the end
        # of a one-frame video, where seeking fails.
        self._capture.release()
        self._capture = cv2.VideoCapture(str(self.path))
        self._position = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> np.ndarray:
        """Decode frame ``index`` to RGB uint8 (H, W, 3)."""
        if index < self._position:
            self._rewind()
        if index > self._position:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = self._capture.read()
        if not ok:
            raise FrameError(
                f"could not decode frame {index} of {self.path}; the file may be "
                "truncated"
            )
        self._position = index + 1
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _grey_channel(raw: np.ndarray, name: str) -> np.ndarray:
    """Return one channel of a grey RGB frame; reject colour frames."""
    channel = raw[..., 0]
    if np.array_equal(channel, raw[..., 1]) and np.array_equal(channel, raw[..., 2]):
        return np.ascontiguousarray(channel)
    raise FrameError(
        f"{name} has colour pixels but frames.mode is greyscale; use mode "
        "'palette' with the video's palette"
    )
