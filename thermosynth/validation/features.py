"""Feature spaces for comparing sets of thermal frames, without downloaded weights.

Two spaces:

- ``thermal_features``: hand-made statistics of each frame (intensity
  quantiles, gradient magnitude, radial power spectrum, local contrast).
- ``AutoencoderFeatures``: the bottleneck of a small convolutional
  autoencoder trained on the normal frames themselves (torch, CPU).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
from scipy import ndimage, stats
from torch import nn

from thermosynth.errors import ThermosynthError

logger = logging.getLogger(__name__)

_SPECTRUM_BANDS = ((0.0, 0.125), (0.125, 0.25), (0.25, 0.375), (0.375, 0.71))
"""Radial frequency bands [cycles per px]; 0.71 covers the corners (sqrt 0.5)."""

_LOCAL_SIZE_PX = 7
"""Side of the median window that local contrast is measured against [px]."""

THERMAL_FEATURE_NAMES: tuple[str, ...] = (
    "mean",
    "std",
    "p99_minus_median",
    "median_minus_p1",
    "max_minus_median",
    "skewness",
    "excess_kurtosis",
    "gradient_mean",
    "gradient_std",
    "gradient_p95",
    "gradient_max",
    *(f"log_power_fraction_{lo:g}_{hi:g}" for lo, hi in _SPECTRUM_BANDS),
    "local_contrast_max",
    "local_contrast_p99",
    "local_contrast_min",
    "local_contrast_outlier_fraction",
)
"""Column names of ``thermal_features``, in order."""


def thermal_features(values: np.ndarray) -> np.ndarray:
    """Compute hand-made thermal features of each frame.

    Parameters
    ----------
    values : ndarray
        float (N, H, W) frames in one unit ([K], [C] or levels).

    Returns
    -------
    ndarray
        float64 (N, F), columns named by ``THERMAL_FEATURE_NAMES``. Intensity,
        gradient and local-contrast columns are in the frames' unit (gradient
        per px), spectrum columns are log10 fractions of the non-DC power,
        skewness, kurtosis and the outlier fraction have no unit.
    """
    values = _check_frames(values)
    flat = values.reshape(values.shape[0], -1)
    return np.column_stack(
        [
            _intensity_features(flat),
            _gradient_features(values),
            _spectrum_features(values),
            _local_contrast_features(values),
        ]
    )


def _check_frames(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or min(values.shape[1:]) < 3:
        raise ThermosynthError(
            f"frames of shape {values.shape} are invalid; expected (N, H, W) "
            "with H and W of at least 3 px"
        )
    if not np.all(np.isfinite(values)):
        raise ThermosynthError(
            "frames contain NaN or infinite values; fill or crop them first"
        )
    return values


def _intensity_features(flat: np.ndarray) -> np.ndarray:
    p1, p50, p99 = np.percentile(flat, [1, 50, 99], axis=1)
    # Skewness and kurtosis of a constant frame are 0 by convention here.
    varied = np.ptp(flat, axis=1) > 0
    skew = np.zeros(len(flat))
    kurt = np.zeros(len(flat))
    skew[varied] = stats.skew(flat[varied], axis=1)
    kurt[varied] = stats.kurtosis(flat[varied], axis=1)
    return np.column_stack(
        [
            flat.mean(axis=1),
            flat.std(axis=1),
            p99 - p50,
            p50 - p1,
            flat.max(axis=1) - p50,
            skew,
            kurt,
        ]
    )


def _gradient_features(values: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(values, axis=(1, 2))
    magnitude = np.hypot(gx, gy).reshape(values.shape[0], -1)
    return np.column_stack(
        [
            magnitude.mean(axis=1),
            magnitude.std(axis=1),
            np.percentile(magnitude, 95, axis=1),
            magnitude.max(axis=1),
        ]
    )


def _spectrum_features(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred)) ** 2
    fy = np.fft.fftfreq(values.shape[1])[:, None]
    fx = np.fft.fftfreq(values.shape[2])[None, :]
    radius = np.hypot(fy, fx)

    total = power.sum(axis=(1, 2)) + 1e-12
    bands = [
        power[:, (radius > lo) & (radius <= hi)].sum(axis=1) / total
        for lo, hi in _SPECTRUM_BANDS
    ]
    return np.log10(np.column_stack(bands) + 1e-6)


def _local_contrast_features(values: np.ndarray) -> np.ndarray:
    size = (1, _LOCAL_SIZE_PX, _LOCAL_SIZE_PX)
    residual = values - ndimage.median_filter(values, size=size, mode="nearest")
    flat = residual.reshape(values.shape[0], -1)

    centre = np.median(flat, axis=1, keepdims=True)
    sigma = 1.4826 * np.median(np.abs(flat - centre), axis=1, keepdims=True)
    outliers = np.abs(flat - centre) > 3.0 * np.maximum(sigma, 1e-12)
    return np.column_stack(
        [
            flat.max(axis=1),
            np.percentile(flat, 99, axis=1),
            flat.min(axis=1),
            outliers.mean(axis=1),
        ]
    )


class _ConvAutoencoder(nn.Module):
    """Three stride-2 convolutions down to a linear bottleneck, and back."""

    def __init__(self, size_px: int, bottleneck: int):
        super().__init__()
        coarse = size_px // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * coarse * coarse, bottleneck),
        )
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, 32 * coarse * coarse),
            nn.ReLU(),
            nn.Unflatten(1, (32, coarse, coarse)),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AutoencoderFeatures:
    """Bottleneck features of a small convolutional autoencoder (torch, CPU).

    The network is trained on normal frames only, so its bottleneck describes
    what normal frames look like, and no pretrained weights are needed.
    Each frame is resized to ``size_px`` x ``size_px``, its median is
    subtracted and it is divided by one scale fitted on the normal frames.

    Parameters
    ----------
    size_px : int, optional
        Side of the resized frames [px]; a multiple of 8.
    bottleneck : int, optional
        Number of features.
    epochs : int, optional
        Passes over the normal frames.
    batch_size : int, optional
        Frames per optimiser step.
    learning_rate : float, optional
        Adam step size.
    """

    def __init__(
        self,
        *,
        size_px: int = 32,
        bottleneck: int = 16,
        epochs: int = 30,
        batch_size: int = 64,
        learning_rate: float = 2e-3,
    ):
        if size_px < 8 or size_px % 8:
            raise ThermosynthError(
                f"size_px={size_px} is invalid; use a multiple of 8, e.g. 32"
            )
        self.size_px = size_px
        self.bottleneck = bottleneck
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self._model: _ConvAutoencoder | None = None
        self._scale = 1.0
        self.losses: list[float] = []

    def fit(
        self, values: np.ndarray, *, rng: np.random.Generator
    ) -> AutoencoderFeatures:
        """Train on normal frames (N, H, W); ``rng`` seeds weights and batches."""
        values = _check_frames(values)
        resized = self._resize(values)
        self._scale = float(np.std(resized)) or 1.0
        x = torch.from_numpy(resized / self._scale).float().unsqueeze(1)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            self._model = _ConvAutoencoder(self.size_px, self.bottleneck)
        optimiser = torch.optim.Adam(self._model.parameters(), lr=self.learning_rate)

        self.losses = []
        for _ in range(self.epochs):
            self.losses.append(self._train_epoch(x, optimiser, rng))
        logger.info(
            "autoencoder trained on %d frames: loss %.4g -> %.4g",
            len(x),
            self.losses[0],
            self.losses[-1],
        )
        return self

    def _train_epoch(
        self,
        x: torch.Tensor,
        optimiser: torch.optim.Optimizer,
        rng: np.random.Generator,
    ) -> float:
        assert self._model is not None
        order = torch.from_numpy(rng.permutation(len(x)))
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            batch = x[order[start : start + self.batch_size]]
            loss = torch.mean((self._model(batch) - batch) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        return total / len(x)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Return the bottleneck features, float64 (N, bottleneck)."""
        x = self._prepared(values)
        assert self._model is not None
        with torch.no_grad():
            return self._model.encoder(x).double().numpy()

    def reconstruction_error(self, values: np.ndarray) -> np.ndarray:
        """Return each frame's mean squared reconstruction error, in scaled units."""
        x = self._prepared(values)
        assert self._model is not None
        with torch.no_grad():
            error = torch.mean((self._model(x) - x) ** 2, dim=(1, 2, 3))
        return error.double().numpy()

    def _prepared(self, values: np.ndarray) -> torch.Tensor:
        if self._model is None:
            raise ThermosynthError("AutoencoderFeatures is not fitted; call fit first")
        x = self._resize(_check_frames(values)) / self._scale
        return torch.from_numpy(x).float().unsqueeze(1)

    def _resize(self, values: np.ndarray) -> np.ndarray:
        size = (self.size_px, self.size_px)
        resized = np.stack(
            [cv2.resize(v, size, interpolation=cv2.INTER_AREA) for v in values]
        )
        return resized - np.median(resized, axis=(1, 2), keepdims=True)
