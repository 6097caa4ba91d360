"""A synthetic pouch-cell frame source that needs no external data."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.noise import estimate_noise

Rect = tuple[int, int, int, int]

# Temperature rise per frame index [K], a slow warm-up as during a charge.
_DRIFT_K_PER_FRAME = 0.01
# Optics blur of the pouch edge [px].
_EDGE_BLUR_PX = 1.5
# Temperature drawn in the overlay box, like a spot-reading label [C].
_OVERLAY_C = 60.0
# Memory for rendered frames kept for later reads of the same index [bytes].
_CACHE_BYTES = 64 * 2**20


class SyntheticPouchSource:
    """Frames of a warm pouch cell on a cooler background, as a 16-bit camera.

    The cell is a rectangle over the middle of the frame, ``cell_temperature_C``
    at its centre with a gradient of ``cell_gradient_K`` from its lower to its
    upper edge. The background is ``ambient_temperature_C`` with a horizontal
    gradient of 1 K. Edges are blurred, Gaussian noise is added, and the
    values are stored as uint16 levels with a linear calibration. A bright box
    in the top-left corner stands for an overlay and is excluded from
    ``valid``.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    shape : tuple of int, optional
        (H, W) of each frame [px]; at least 32 x 32.
    seed : int, optional
        Seed of the noise. Frame ``i`` draws from
        ``numpy.random.default_rng([seed, i])``, so it does not depend on the
        order in which frames are read.
    cell_temperature_C : float, optional
        Temperature at the cell's centre in frame 0 [C]. Each later frame is
        0.01 K warmer than the one before.
    cell_gradient_K : float, optional
        Temperature difference from the cell's lower to its upper edge [K].
    ambient_temperature_C : float, optional
        Mean background temperature [C].
    noise_sigma_K : float, optional
        Standard deviation of the sensor noise [K].
    scale_per_level_K : float, optional
        Temperature step of one stored level [K].
    offset_C : float, optional
        Temperature of stored level 0 [C].

    Attributes
    ----------
    cell_rect_px : tuple of int
        Half-open box (x0, y0, x1, y1) of the cell [px].
    ignore_rects : list of tuple of int
        Half-open boxes (x0, y0, x1, y1) of the overlays [px].
    encoding : LinearEncoding
        uint16 calibration shared by all frames.
    """

    unit = "C"

    def __init__(
        self,
        n_frames: int,
        *,
        shape: tuple[int, int] = (120, 160),
        seed: int = 0,
        cell_temperature_C: float = 27.0,
        cell_gradient_K: float = 0.6,
        ambient_temperature_C: float = 22.0,
        noise_sigma_K: float = 0.05,
        scale_per_level_K: float = 0.01,
        offset_C: float = -40.0,
    ) -> None:
        if n_frames < 1:
            raise FrameError(f"n_frames must be at least 1, got {n_frames}")
        height, width = shape
        if height < 32 or width < 32:
            raise FrameError(f"shape must be at least (32, 32) px, got {shape}")

        self.n_frames = int(n_frames)
        self.shape = (int(height), int(width))
        self.seed = int(seed)
        self.cell_temperature_C = float(cell_temperature_C)
        self.cell_gradient_K = float(cell_gradient_K)
        self.ambient_temperature_C = float(ambient_temperature_C)
        self.noise_sigma_K = float(noise_sigma_K)
        self.encoding = LinearEncoding(
            np.uint16, scale_per_level=scale_per_level_K, offset=offset_C
        )
        self.cell_rect_px: Rect = (
            width // 5,
            height // 4,
            width - width // 5,
            height - height // 5,
        )
        self.ignore_rects: list[Rect] = [
            (2, 2, max(width // 5, 8), max(height // 12, 6))
        ]
        self._frames: dict[int, Frame] = {}
        self._static: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def sources(self) -> list[str]:
        """Name of each frame, ``synthetic-pouch(seed=S)[i]``."""
        return [f"synthetic-pouch(seed={self.seed})[{i}]" for i in range(self.n_frames)]

    def __len__(self) -> int:
        return self.n_frames

    def read(self, index: int) -> Frame:
        """Render frame ``index`` with its own noise.

        Rendered frames are kept (up to about 64 MiB) and returned again on a
        later read of the same index; their arrays are read-only.
        """
        if not -self.n_frames <= index < self.n_frames:
            raise IndexError(
                f"frame index {index} out of range for {self.n_frames} frames"
            )
        index %= self.n_frames

        cached = self._frames.get(index)
        if cached is not None:
            return cached
        frame = self._render(index)
        if len(self._frames) < self._cache_capacity():
            self._frames[index] = frame
        return frame

    def clean_temperature(self, index: int) -> np.ndarray:
        """Render frame ``index`` without noise or overlay [C], float64 (H, W)."""
        background, inside, cell = self._static_fields()
        cell = cell + _DRIFT_K_PER_FRAME * index
        return background + inside * (cell - background)

    def __getstate__(self) -> dict[str, object]:
        # Worker processes render their own frames; the cache stays here.
        state = self.__dict__.copy()
        state["_frames"] = {}
        state["_static"] = None
        return state

    def _render(self, index: int) -> Frame:
        rng = np.random.default_rng([self.seed, index])
        temperature = self.clean_temperature(index)
        temperature = temperature + rng.normal(0.0, self.noise_sigma_K, self.shape)
        for x0, y0, x1, y1 in self.ignore_rects:
            temperature[y0:y1, x0:x1] = _OVERLAY_C

        raw = self.encoding.encode(temperature)
        values = self.encoding.decode(raw)
        valid = self._valid_mask()
        sigma = estimate_noise(values, valid, quantum=self.encoding.quantum)
        for array in (raw, values, valid):
            array.flags.writeable = False
        return Frame(raw, values, "C", valid, self.encoding, sigma, self.sources[index])

    def _cache_capacity(self) -> int:
        # raw uint16 + decoded float64 + valid bool, per pixel [bytes].
        frame_bytes = self.shape[0] * self.shape[1] * (2 + 8 + 1)
        return max(_CACHE_BYTES // frame_bytes, 1)

    def _static_fields(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the background, blurred cell mask and frame-0 cell [C]."""
        if self._static is not None:
            return self._static
        height, width = self.shape
        rows = np.arange(height, dtype=np.float64)[:, None]
        cols = np.arange(width, dtype=np.float64)[None, :]
        background = self.ambient_temperature_C + (cols / (width - 1) - 0.5)
        background = np.broadcast_to(background, self.shape)

        x0, y0, x1, y1 = self.cell_rect_px
        inside = np.zeros(self.shape)
        inside[y0:y1, x0:x1] = 1.0
        inside = ndimage.gaussian_filter(inside, _EDGE_BLUR_PX)

        centre_row = 0.5 * (y0 + y1 - 1)
        slope = self.cell_gradient_K / max(y1 - y0 - 1, 1)
        cell = self.cell_temperature_C + (centre_row - rows) * slope
        self._static = (background, inside, np.broadcast_to(cell, self.shape))
        return self._static

    def _valid_mask(self) -> np.ndarray:
        valid = np.ones(self.shape, dtype=bool)
        for x0, y0, x1, y1 in self.ignore_rects:
            valid[y0:y1, x0:x1] = False
        return valid
