"""Tests of thermosynth.validation.detectors: flips, trimming, small fits."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from thermosynth.validation.detectors import (
    Autoencoder,
    Classifier,
    DeepSVDD,
    Draem,
    Ensemble,
    KNearest,
    Trimmed,
    flip_mean,
    split_lowest,
)

SHAPE = (40, 24)


def _normals(n: int, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(60, 100, SHAPE[0])[:, None] + np.zeros(SHAPE)
    return np.clip(ramp + rng.normal(0, 2, (n, *SHAPE)), 0, 255).astype(np.uint8)


def _with_hot_spot(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    out = images.astype(float)
    for image in out:
        cy, cx = rng.uniform(5, 35), rng.uniform(4, 20)
        image += 60 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 6.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def _contaminated(
    n_normal: int, n_planted: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return normal frames with ``n_planted`` hot frames at random positions."""
    rng = np.random.default_rng(seed)
    frames = _normals(n_normal, rng)
    planted = rng.choice(n_normal, size=n_planted, replace=False)
    frames[planted] = _with_hot_spot(frames[planted], rng)
    return frames, np.sort(planted)


@dataclass
class _Recorder:
    """Detector that records what it was trained on and scores by max level."""

    uses_pseudo: bool = True
    calls: list[tuple[int, int | None]] = field(default_factory=list)
    last_normal: np.ndarray | None = None
    last_anomalous: np.ndarray | None = None

    def fit(self, normal, anomalous, masks, rng):  # noqa: ANN001
        self.calls.append((len(normal), None if anomalous is None else len(anomalous)))
        self.last_normal, self.last_anomalous = normal, anomalous
        return lambda images: (images.reshape(len(images), -1).max(axis=1), None)


def test_flip_mean_of_fixed_map_is_symmetric():
    # A map that ignores its input is flipped back three times, so the mean
    # is symmetric under both flips and keeps the map's mean.
    ramp = torch.arange(4 * 3, dtype=torch.float32).reshape(1, 4, 3) ** 2
    x = torch.zeros(2, 1, 4, 3)
    mean = flip_mean(lambda t: ramp.expand(len(t), 4, 3), x)
    assert mean.shape == (2, 4, 3)
    torch.testing.assert_close(mean, torch.flip(mean, (-1,)))
    torch.testing.assert_close(mean, torch.flip(mean, (-2,)))
    torch.testing.assert_close(mean.mean(), ramp.mean())


def test_flip_mean_keeps_a_flip_equivariant_map():
    # A pointwise map commutes with flips, so the mean equals the map itself.
    x = torch.randn(3, 1, 5, 4, generator=torch.Generator().manual_seed(0))
    mean = flip_mean(lambda t: t[:, 0] ** 2, x)
    torch.testing.assert_close(mean, x[:, 0] ** 2)


def test_split_lowest_drops_highest_scores():
    scores = np.array([0.1, 5.0, 0.3, 4.0, 0.2, 0.0])
    keep, dropped = split_lowest(scores, 1 / 3)
    np.testing.assert_array_equal(keep, [0, 2, 4, 5])
    np.testing.assert_array_equal(dropped, [1, 3])


def test_knearest_scores_feature_distance():
    rng = np.random.default_rng(3)
    frames = _normals(30, rng)
    hot = _with_hot_spot(frames[:5], rng)
    scorer = KNearest(k=1).fit(frames[5:], None, None, rng)

    own, _ = scorer(frames[5:])
    unseen, _ = scorer(frames[:5])
    planted, maps = scorer(hot)

    np.testing.assert_allclose(own, 0.0, atol=1e-6)
    assert planted.min() > 3 * unseen.max()
    assert maps is None


def test_split_lowest_zero_fraction_keeps_all():
    keep, dropped = split_lowest(np.ones(5), 0.0)
    np.testing.assert_array_equal(keep, np.arange(5))
    assert dropped.size == 0


def test_trimmed_removes_planted_outliers_knn():
    # The planted frames look alike in feature space, and each fold's scout
    # trains on about 10 of them, so k must exceed that for them to stand out.
    frames, planted = _contaminated(200, 20, seed=1)
    trimmed = Trimmed(KNearest(k=15), drop_fraction=0.1)
    scorer = trimmed.fit(frames, None, None, np.random.default_rng(0))
    np.testing.assert_array_equal(trimmed.dropped, planted)
    scores, _ = scorer(frames)
    assert scores[planted].min() > np.median(scores)


def test_trimmed_removes_planted_outliers_classifier():
    # The scouts train on pseudo-anomalies (hot spots) and rank the planted
    # hot frames highest although they are labelled normal in training.
    rng = np.random.default_rng(2)
    frames, planted = _contaminated(160, 16, seed=2)
    pseudo = _with_hot_spot(frames, rng)
    masks = np.zeros(frames.shape, dtype=bool)
    trimmed = Trimmed(
        Classifier(steps=40), drop_fraction=0.1, scout=Classifier(steps=40)
    )
    trimmed.fit(frames, pseudo, masks, rng)
    caught = np.isin(planted, trimmed.dropped).mean()
    assert caught >= 0.8


def test_trimmed_drops_paired_pseudo_anomalies():
    frames, planted = _contaminated(40, 4, seed=3)
    pseudo = frames + np.uint8(1)
    masks = np.ones(frames.shape, dtype=bool)
    inner = _Recorder()
    Trimmed(inner, drop_fraction=0.1).fit(
        frames, pseudo, masks, np.random.default_rng(0)
    )
    assert inner.calls == [(20, 20), (20, 20), (36, 36)]
    kept = np.setdiff1d(np.arange(40), planted)
    np.testing.assert_array_equal(inner.last_normal, frames[kept])
    np.testing.assert_array_equal(inner.last_anomalous, pseudo[kept])


def test_trimmed_keeps_unpaired_anomalies():
    frames, _ = _contaminated(40, 4, seed=4)
    real = _with_hot_spot(
        _normals(7, np.random.default_rng(5)), np.random.default_rng(6)
    )
    inner = _Recorder()
    Trimmed(inner, drop_fraction=0.25).fit(frames, real, None, np.random.default_rng(0))
    assert inner.calls == [(20, 7), (20, 7), (30, 7)]


def test_trimmed_zero_fraction_trains_once():
    inner = _Recorder()
    frames, _ = _contaminated(10, 1, seed=7)
    trimmed = Trimmed(inner, drop_fraction=0.0)
    trimmed.fit(frames, None, None, np.random.default_rng(0))
    assert inner.calls == [(10, None)]
    assert trimmed.dropped.size == 0


def test_trimmed_uses_scout_for_ranking():
    inner, scout = _Recorder(), _Recorder()
    frames, _ = _contaminated(30, 3, seed=8)
    Trimmed(inner, drop_fraction=0.1, folds=3, scout=scout).fit(
        frames, None, None, np.random.default_rng(0)
    )
    assert scout.calls == [(20, None)] * 3
    assert inner.calls == [(27, None)]


def test_trimmed_copies_uses_pseudo():
    assert Trimmed(KNearest()).uses_pseudo is False
    assert Trimmed(Classifier()).uses_pseudo is True


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_trimmed_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"drop_fraction = .* is invalid"):
        Trimmed(KNearest(), drop_fraction=fraction)


def test_trimmed_rejects_one_fold():
    with pytest.raises(ValueError, match="folds = 1 is invalid"):
        Trimmed(KNearest(), folds=1)


def test_trimmed_needs_frames_per_fold():
    frames, _ = _contaminated(3, 1, seed=9)
    with pytest.raises(ValueError, match="at least 4 training normals"):
        Trimmed(KNearest()).fit(frames, None, None, np.random.default_rng(0))


@pytest.mark.parametrize(("flip_tta", "width"), [(False, 8), (True, 8), (True, 4)])
def test_draem_flip_maps_shape(flip_tta, width):
    rng = np.random.default_rng(10)
    frames = _normals(60, rng)
    pseudo = _with_hot_spot(frames, rng)
    masks = np.abs(pseudo.astype(int) - frames) > 4
    draem = Draem(steps=10, flip_tta=flip_tta, width=width)
    scorer = draem.fit(frames, pseudo, masks, rng)
    scores, maps = scorer(frames[:5])
    assert scores.shape == (5,)
    assert maps is not None
    assert maps.shape == (5, *SHAPE)
    assert np.all((maps >= 0) & (maps <= 1))


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_classifier_pooling_mean_or_max(pooling):
    rng = np.random.default_rng(0)
    normal = _normals(60, rng)
    hot = _with_hot_spot(_normals(60, rng), rng)
    scorer = Classifier(steps=30, pooling=pooling, flip_tta=False).fit(
        normal, hot, None, rng
    )
    scores, maps = scorer(np.concatenate([normal[:5], hot[:5]]))
    pooled = maps.reshape(len(maps), -1)
    expected = pooled.mean(axis=1) if pooling == "mean" else pooled.max(axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_classifier_rejects_unknown_pooling():
    with pytest.raises(ValueError, match="'median' is invalid"):
        Classifier(pooling="median")


@dataclass
class _RandomMember:
    """Detector whose scores and maps are one random draw from its stream."""

    uses_pseudo: bool = True
    draws: list[float] = field(default_factory=list)

    def fit(self, normal, anomalous, masks, rng):  # noqa: ANN001
        value = float(rng.random())
        self.draws.append(value)

        def score(images):  # noqa: ANN001, ANN202
            scores = np.full(len(images), value)
            return scores, np.full(images.shape, value)

        return score


def test_ensemble_averages_members():
    member = _RandomMember()
    scorer = Ensemble(member, members=3).fit(
        np.zeros((4, *SHAPE)), None, None, np.random.default_rng(5)
    )
    scores, maps = scorer(np.zeros((2, *SHAPE), np.uint8))

    assert len(set(member.draws)) == 3
    assert scores.tolist() == [np.mean(member.draws)] * 2
    assert maps.shape == (2, *SHAPE)
    assert np.all(maps == np.mean(member.draws))


def test_ensemble_map_none_when_a_member_has_none():
    scorer = Ensemble(_Recorder(), members=2).fit(
        np.zeros((4, *SHAPE)), None, None, np.random.default_rng(0)
    )
    scores, maps = scorer(np.full((2, *SHAPE), 7, np.uint8))

    assert scores.tolist() == [7.0, 7.0]
    assert maps is None


def test_ensemble_same_seed_same_scores():
    draws = []
    for _ in range(2):
        member = _RandomMember()
        Ensemble(member, members=2).fit(None, None, None, np.random.default_rng(9))
        draws.append(member.draws)
    assert draws[0] == draws[1]


def test_ensemble_rejects_one_member():
    with pytest.raises(ValueError, match="members = 1 is invalid"):
        Ensemble(KNearest(), members=1)
    assert Ensemble(KNearest()).uses_pseudo is False


@pytest.mark.parametrize("shape", [(9, 13), (30, 45)])
@pytest.mark.parametrize("detector", [Classifier, Draem, Autoencoder, DeepSVDD])
def test_detectors_take_sides_not_multiple_of_four(detector, shape):
    rng = np.random.default_rng(3)
    frames = rng.integers(90, 110, (40, *shape), dtype=np.uint8)
    pseudo = frames.copy()
    masks = np.zeros(frames.shape, dtype=bool)
    masks[:, 3:6, 4:7] = True
    pseudo[masks] = 220

    scorer = detector(steps=60).fit(frames, pseudo, masks, rng)
    scores, maps = scorer(np.concatenate([frames[:8], pseudo[:8]]))

    assert scores.shape == (16,)
    assert np.all(np.isfinite(scores))
    if maps is not None:
        assert maps.shape == (16, *shape)
    if detector is not DeepSVDD:
        assert scores[8:].mean() > scores[:8].mean()
