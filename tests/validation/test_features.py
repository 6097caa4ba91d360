"""Tests of thermosynth.validation.features."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.errors import ThermosynthError
from thermosynth.validation.features import (
    THERMAL_FEATURE_NAMES,
    AutoencoderFeatures,
    thermal_features,
)


def _column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, THERMAL_FEATURE_NAMES.index(name)]


def test_thermal_features_shape_and_names():
    frames = np.random.default_rng(0).normal(size=(5, 16, 12))

    features = thermal_features(frames)

    assert features.shape == (5, len(THERMAL_FEATURE_NAMES))
    assert np.all(np.isfinite(features))


def test_constant_frame_has_no_spread():
    features = thermal_features(np.full((1, 10, 10), 25.0))

    assert _column(features, "mean")[0] == 25.0
    assert _column(features, "std")[0] == 0.0
    assert _column(features, "gradient_max")[0] == 0.0
    assert _column(features, "skewness")[0] == 0.0
    assert _column(features, "local_contrast_max")[0] == 0.0


def test_hot_pixel_contrast_and_peak():
    frame = np.full((1, 15, 15), 20.0)
    frame[0, 7, 7] = 30.0

    features = thermal_features(frame)

    assert _column(features, "max_minus_median")[0] == 10.0
    assert _column(features, "local_contrast_max")[0] == 10.0
    assert _column(features, "local_contrast_outlier_fraction")[0] == 1 / 225


def test_ramp_gradient_is_its_slope():
    ramp = np.tile(2.0 * np.arange(12.0), (8, 1))[None]

    features = thermal_features(ramp)

    assert _column(features, "gradient_mean")[0] == pytest.approx(2.0)
    assert _column(features, "gradient_std")[0] == pytest.approx(0.0, abs=1e-12)


def test_sinusoid_power_in_its_band():
    # 12 cycles over 40 px is 0.3 cycles per px, inside the band 0.25..0.375.
    x = np.arange(40.0)
    frame = np.tile(np.sin(2 * np.pi * 0.3 * x), (16, 1))[None]

    features = thermal_features(frame)

    assert _column(features, "log_power_fraction_0.25_0.375")[0] == pytest.approx(
        0.0, abs=1e-5
    )
    assert _column(features, "log_power_fraction_0_0.125")[0] < -5.0


def test_non_finite_frames_rejected():
    frames = np.zeros((2, 8, 8))
    frames[1, 3, 3] = np.nan
    with pytest.raises(ThermosynthError, match="NaN or infinite"):
        thermal_features(frames)


def test_autoencoder_same_seed_same_features():
    frames = np.random.default_rng(1).normal(size=(24, 20, 12))

    first = AutoencoderFeatures(epochs=3, bottleneck=4).fit(
        frames, rng=np.random.default_rng(5)
    )
    second = AutoencoderFeatures(epochs=3, bottleneck=4).fit(
        frames, rng=np.random.default_rng(5)
    )

    features = first.transform(frames)
    assert features.shape == (24, 4)
    np.testing.assert_array_equal(features, second.transform(frames))
    assert first.reconstruction_error(frames).shape == (24,)


def test_autoencoder_loss_decreases():
    rng = np.random.default_rng(2)
    blobs = np.exp(-((np.arange(8.0) - 4) ** 2) / 4)
    frames = rng.uniform(1, 3, size=(32, 1, 1)) * np.outer(blobs, blobs)[None]

    model = AutoencoderFeatures(size_px=8, epochs=8, batch_size=8)
    model.fit(frames, rng=rng)

    assert model.losses[-1] < 0.5 * model.losses[0]


def test_autoencoder_rejects_bad_size_and_unfitted_use():
    with pytest.raises(ThermosynthError, match="size_px=20 is invalid"):
        AutoencoderFeatures(size_px=20)
    with pytest.raises(ThermosynthError, match="not fitted"):
        AutoencoderFeatures().transform(np.zeros((1, 8, 8)))
