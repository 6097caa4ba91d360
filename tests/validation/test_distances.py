"""Tests of thermosynth.validation.distances against hand-computed values."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from scipy import linalg

from thermosynth.errors import ThermosynthError
from thermosynth.validation import distances
from thermosynth.validation.distances import (
    c2st,
    frechet_distance,
    frechet_distance_gaussian,
    mmd,
    nearest_neighbour_ratio,
    standardisation,
)


def test_mmd_identical_sets_is_zero():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))

    result = mmd(x, x.copy(), rng=rng, n_permutations=200)

    assert result.mmd2 == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == 1.0


def test_mmd_hand_computed_value():
    x = np.array([[0.0], [0.0]])
    y = np.array([[1.0], [1.0]])

    result = mmd(x, y, rng=np.random.default_rng(0), bandwidth=1.0, n_permutations=10)

    # k(x, x) = k(y, y) = 1 and k(x, y) = exp(-1 / 2).
    assert result.mmd2 == pytest.approx(2.0 - 2.0 * np.exp(-0.5), rel=1e-12)


def test_mmd_p_value_counts_repeated_split():
    # Of the 20 splits of 6 points into 3 and 3, the observed split and its
    # mirror give the largest MMD, so about 2 in 20 permutations reach it.
    # Summed in another order it came out 1 ulp below the observed value, was
    # not counted, and the p-value was 1 / 2001.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2))
    y = rng.normal(size=(3, 2)) + 5.0

    result = mmd(x, y, rng=np.random.default_rng(0), n_permutations=2000)

    assert result.p_value == pytest.approx(0.1, abs=0.02)


def test_mmd_shifted_gaussians_significant():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    y = rng.normal(loc=2.0, size=(60, 2))

    result = mmd(x, y, rng=rng, n_permutations=200)

    assert result.mmd2 > 0.2
    assert result.p_value < 0.05
    assert result.p_value == pytest.approx(1 / 201)


def test_mmd_same_distribution_not_significant():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 2))
    y = rng.normal(size=(60, 2))

    assert mmd(x, y, rng=rng, n_permutations=200).p_value > 0.05


def test_c2st_same_distribution_near_chance():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4))
    y = rng.normal(size=(300, 4))

    result = c2st(x, y, rng=rng)

    assert 0.42 < result.accuracy < 0.58
    assert result.p_value > 0.01
    assert result.n_per_set == 300


def test_c2st_separated_sets_near_one():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(100, 4))
    y = rng.normal(loc=6.0, size=(150, 4))

    result = c2st(x, y, rng=rng)

    assert result.accuracy > 0.97
    assert result.p_value < 1e-10
    assert result.n_per_set == 100


def test_c2st_even_k_rejected():
    x = np.zeros((10, 2))
    with pytest.raises(ThermosynthError, match="n_neighbours=4 is invalid"):
        c2st(x, x, rng=np.random.default_rng(0), n_neighbours=4)


def test_frechet_closed_form_diagonal():
    mu1, mu2 = np.zeros(2), np.array([1.0, 2.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])

    # |mu1 - mu2|^2 = 5; tr(S1 + S2) = 18; (S1 S2)^(1/2) = diag(2, 6).
    assert frechet_distance_gaussian(mu1, s1, mu2, s2) == pytest.approx(7.0)


def test_frechet_closed_form_full_covariance():
    from scipy import linalg

    s1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    mu1, mu2 = np.array([0.5, -1.0]), np.array([1.5, 1.0])

    root = np.real(linalg.sqrtm(s1 @ s2))
    expected = 1.0 + 4.0 + np.trace(s1 + s2 - 2.0 * root)
    assert frechet_distance_gaussian(mu1, s1, mu2, s2) == pytest.approx(expected)


def test_frechet_from_samples_matches_gaussians():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(20000, 2)) * [1.0, 2.0]
    y = rng.normal(size=(20000, 2)) * [2.0, 3.0] + [1.0, 2.0]

    assert frechet_distance(x, y) == pytest.approx(7.0, abs=0.15)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_nearest_neighbour_ratio_hand_computed():
    reference = np.array([[0.0], [1.0], [3.0]])
    query = np.array([[5.0], [1.0]])

    ratio, scale = nearest_neighbour_ratio(reference, query)

    # Leave-one-out distances are 1, 1 and 2, so the median is 1.
    assert scale == 1.0
    np.testing.assert_allclose(ratio, [2.0, 0.0])


def test_nearest_neighbour_ratio_normal_sample_near_one():
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(400, 3))
    query = rng.normal(size=(200, 3))

    ratio, _ = nearest_neighbour_ratio(reference, query)

    assert 0.8 < np.median(ratio) < 1.25
    inside, _ = nearest_neighbour_ratio(reference, reference, query_in_reference=True)
    assert np.median(inside) == pytest.approx(1.0)


def test_feature_sets_of_unequal_width_rejected():
    with pytest.raises(ThermosynthError, match="same F"):
        mmd(np.zeros((5, 2)), np.zeros((5, 3)), rng=np.random.default_rng(0))


def test_standardisation_treats_round_off_as_constant():
    # 0.16 K exactly, as a difference of levels decoded with 0.01 K per level
    # and an offset of -40 C (0.1600000000000037), and with 2.8e-15 added.
    rounded = [0.16, (56 * 0.01 - 40.0) - (40 * 0.01 - 40.0), 0.16 + 2.8e-15]
    features = np.column_stack(
        [rounded, [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 1.0 + 1e-6, 1.0]]
    )

    mean, std = standardisation(features)

    assert np.std(rounded) > 0
    np.testing.assert_allclose(mean, features.mean(axis=0))
    assert std[0] == 1.0
    assert std[1] == 1.0
    assert std[2] == pytest.approx(np.sqrt(2.0 / 3.0))
    # A spread of about 5e-7 of the magnitude is data, not round-off.
    assert std[3] == pytest.approx(np.std([0.0, 1e-6, 0.0]), rel=1e-6)


def test_frechet_singular_product_logs_once(caplog, monkeypatch):
    monkeypatch.setattr(distances, "_logged_singular", False)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 8))
    y = rng.normal(size=(40, 8)) + 1.0
    # A constant feature gives x's covariance a zero row, so the product of
    # the covariances is exactly singular and SciPy's sqrtm warns.
    x[:, 0] = 3.0
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = np.real(linalg.sqrtm(sx @ sy))
    unregularised = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx + sy - 2 * root)

    with warnings.catch_warnings(), caplog.at_level(logging.INFO):
        warnings.simplefilter("error")
        first = frechet_distance(x, y)
        second = frechet_distance(y, x)

    singular = [r for r in caplog.records if "singular" in r.getMessage()]
    assert first == pytest.approx(unregularised, rel=1e-3)
    assert second == pytest.approx(first, rel=1e-6)
    assert len(singular) == 1
    assert singular[0].name == "thermosynth.validation.distances"
