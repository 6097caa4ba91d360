"""Tests of thermosynth.validation.metrics against hand-computed values."""

import numpy as np
import pytest

from thermosynth.validation.metrics import (
    aupro,
    auroc,
    bootstrap_ci,
    paired_difference_ci,
    pixel_auroc,
)


def test_auroc_perfect_scorer():
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_auroc_reversed_scorer():
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0


def test_auroc_ties_give_half():
    assert auroc(np.array([0, 1, 0, 1]), np.full(4, 3.0)) == 0.5


def test_auroc_hand_value():
    # Pairs (anomalous > normal): 2 > 1, 2 < 3, 4 > 1, 4 > 3, so 3 of 4.
    assert auroc(np.array([0, 1, 0, 1]), np.array([1.0, 2.0, 3.0, 4.0])) == 0.75


def test_auroc_one_class_rejected():
    with pytest.raises(ValueError, match="needs both classes"):
        auroc(np.zeros(3), np.arange(3.0))


def test_auroc_non_finite_rejected():
    with pytest.raises(ValueError, match="NaN or infinite"):
        auroc(np.array([0, 1]), np.array([0.0, np.nan]))


def test_pixel_auroc_flattens_images():
    masks = np.array([[[False, True]], [[False, True]]])
    maps = np.array([[[0.0, 1.0]], [[2.0, 3.0]]])
    # Anomalous {1, 3} against normal {0, 2}: 1 > 0, 1 < 2, 3 > 0, 3 > 2.
    assert pixel_auroc(masks, maps) == 0.75


def test_aupro_hand_value():
    # One region {2, 3} with scores {1, 3}; normal scores {0, 2}. The curve
    # (FPR, PRO) runs (0, 0.5) -> (0.5, 0.5) -> (0.5, 1) -> (1, 1), so the area
    # up to FPR 0.3 is 0.3 * 0.5 and the normalised value 0.5.
    masks = np.array([[False, False, True, True]])
    maps = np.array([[0.0, 2.0, 1.0, 3.0]])
    assert aupro(masks, maps) == pytest.approx(0.5)


def test_aupro_full_range_hand_value():
    masks = np.array([[False, False, True, True]])
    maps = np.array([[0.0, 2.0, 1.0, 3.0]])
    # 0.5 * 0.5 over FPR [0, 0.5] plus 1 * 0.5 over [0.5, 1].
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.75)


def test_aupro_regions_weigh_equally():
    # A 1-pixel region found and a 3-pixel region missed: PRO is 0.5 at FPR 0
    # (pixel recall would be 0.25), then the curve runs straight to (1, 1), so
    # its mean height over FPR [0, 0.3] is (0.5 + 0.65) / 2.
    masks = np.zeros((1, 5, 5), dtype=bool)
    masks[0, 0, 0] = True
    masks[0, 4, 2:5] = True
    maps = np.zeros((1, 5, 5))
    maps[0, 0, 0] = 1.0
    assert aupro(masks, maps) == pytest.approx(0.575)


def test_aupro_exact_past_200_values():
    # 400 normal pixels score 0..399 and a 1-pixel region scores 398.5. The
    # curve runs (0, 0) -> (1/400, 0) -> (1/400, 1) -> (1, 1), so the area up to
    # FPR 0.3 is 0.3 - 1/400. A curve on 200 quantile thresholds has no point
    # at FPR 1/400 and came out 0.9875.
    maps = np.r_[np.arange(400.0), 398.5][None, None, :]
    masks = np.zeros(maps.shape, dtype=bool)
    masks[0, 0, -1] = True

    assert aupro(masks, maps) == pytest.approx((0.3 - 1 / 400) / 0.3, rel=1e-12)


def test_aupro_region_tied_with_normal():
    # Region {1, 1} ties with one of the normal pixels {0, 1}: at threshold 1
    # the curve jumps from (0, 0) to (0.5, 1), a straight segment, so the
    # height at FPR 0.3 is 0.6 and the area 0.5 * 0.3 * 0.6.
    masks = np.array([[False, False, True, True]])
    maps = np.array([[0.0, 1.0, 1.0, 1.0]])

    assert aupro(masks, maps) == pytest.approx(0.3, rel=1e-12)


def test_aupro_perfect_map():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, 1:3, 1:3] = True
    assert aupro(masks, masks.astype(float)) == pytest.approx(1.0)


def test_aupro_bad_limit_rejected():
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(np.array([[True, False]]), np.array([[1.0, 0.0]]), fpr_limit=0.0)


def test_bootstrap_ci_contains_point():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(200), np.ones(100)]
    scores = rng.normal(size=300) + labels
    point, low, high = bootstrap_ci(labels, scores, np.random.default_rng(1))
    assert point == auroc(labels, scores)
    assert low <= point <= high
    assert high - low < 0.2


def test_bootstrap_ci_same_seed_same_interval():
    labels = np.r_[np.zeros(50), np.ones(50)]
    scores = np.random.default_rng(0).normal(size=100) + labels
    first = bootstrap_ci(labels, scores, np.random.default_rng(5), n_resamples=50)
    second = bootstrap_ci(labels, scores, np.random.default_rng(5), n_resamples=50)
    assert first == second


def test_bootstrap_ci_bad_confidence_rejected():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(
            np.array([0, 1]),
            np.array([0.0, 1.0]),
            np.random.default_rng(0),
            confidence=1.0,
        )


def test_paired_difference_of_identical_scores_is_zero():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(20), np.ones(10)]
    scores = rng.normal(size=30)

    assert paired_difference_ci(labels, scores, scores, rng, n_resamples=50) == (
        0.0,
        0.0,
        0.0,
    )


def test_paired_difference_perfect_against_inverted():
    # AUROC 1 against 0 on every resample: stratified resamples keep both
    # classes, and a resampled frame ties only with its own copies.
    labels = np.array([0, 0, 0, 1, 1, 1])
    perfect = np.arange(6.0)

    result = paired_difference_ci(
        labels, perfect, -perfect, np.random.default_rng(1), n_resamples=50
    )

    assert result == (1.0, 1.0, 1.0)
