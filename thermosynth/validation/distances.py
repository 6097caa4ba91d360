"""Distances between two sets of feature vectors.

- ``mmd``: squared maximum mean discrepancy with a Gaussian kernel and a
  permutation p-value.
- ``c2st``: classifier two-sample test, the cross-validated accuracy of a
  k-nearest-neighbour classifier that separates the sets.
- ``frechet_distance``: Fréchet distance between Gaussians fitted to the sets.
- ``nearest_neighbour_ratio``: each query's distance to its nearest reference
  point, relative to the reference set's own nearest-neighbour distances.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg, spatial, stats

from thermosynth.errors import ThermosynthError

logger = logging.getLogger(__name__)

CONSTANT_RELATIVE_STD = 1e-9
"""Deviation, relative to a feature's largest magnitude, at or below which the
feature counts as constant. Constant features of real FLIR screen exports and
of frames decoded at 0.01 K per level showed float64 round-off of 1e-15 to
2e-14 of their magnitude, far below a 16-bit camera's step (1.5e-5 of its
range)."""

C2ST_FOLDS = 5
"""Default cross-validation folds of `c2st`, and so the fewest samples per set
that it accepts: one per fold."""

_FRECHET_RIDGE = 1e-6
"""Ridge added to both covariances when their product is singular [feature
units squared]."""

_MMD_RELATIVE_TOLERANCE = 1e-12
"""Relative difference below which a permuted MMD squared counts as equal to
the observed one in the p-value. The two sums of one split differ by rounding
of 1e-16 (5 frames per set) to 3e-14 (1,000 and 2,000 frames per set) of the
value, more than the 100 eps (2e-14) of scipy.stats.permutation_test
(SciPy 1.17)."""

_logged_singular = False


@dataclass(frozen=True)
class MMDResult:
    """Squared maximum mean discrepancy and its permutation test.

    Attributes
    ----------
    mmd2 : float
        Biased (V-statistic) estimate of MMD squared; 0 for identical sets.
    p_value : float
        Share of label permutations with an MMD squared at least as large,
        counting the observed labels, so never below 1 / (n_permutations + 1).
        A permuted value within a relative 1e-12 of the observed one counts
        as equal, so identical sets give 1.
    bandwidth : float
        Gaussian kernel width, in feature units.
    """

    mmd2: float
    p_value: float
    bandwidth: float


@dataclass(frozen=True)
class C2STResult:
    """Classifier two-sample test.

    Attributes
    ----------
    accuracy : float
        Cross-validated accuracy on balanced sets. 0.5 means the classifier
        cannot separate the sets, and 1 means it separates them fully.
    p_value : float
        One-sided binomial p-value of the accuracy against chance (0.5).
    n_per_set : int
        Samples drawn from each set.
    """

    accuracy: float
    p_value: float
    n_per_set: int


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ThermosynthError(
            f"feature sets of shapes {x.shape} and {y.shape} cannot be compared; "
            "give two (N, F) arrays with the same F"
        )
    if len(x) < 2 or len(y) < 2:
        raise ThermosynthError(
            f"sets of {len(x)} and {len(y)} samples are too small; give at least 2 each"
        )
    return x, y


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the column mean and deviation that standardise ``features``.

    Parameters
    ----------
    features : ndarray
        (N, F) feature vectors.

    Returns
    -------
    mean, std : ndarray
        float64 (F,). ``std`` is 1 for a column that is constant up to
        round-off (see `CONSTANT_RELATIVE_STD`), because dividing by a
        round-off deviation of 1e-14 would scale that noise up to 1.
    """
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    magnitude = np.abs(features).max(axis=0)
    std[std <= CONSTANT_RELATIVE_STD * magnitude] = 1.0
    return mean, std


def mmd(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    n_permutations: int = 500,
    bandwidth: float | None = None,
) -> MMDResult:
    """Estimate MMD squared between two sets with a Gaussian kernel.

    Parameters
    ----------
    x, y : ndarray
        (N, F) and (M, F) feature vectors.
    rng : numpy.random.Generator
        Draws the label permutations.
    n_permutations : int, optional
        Permutations for the p-value.
    bandwidth : float, optional
        Kernel width sigma in ``k(a, b) = exp(-|a - b|^2 / (2 sigma^2))``.
        Default: the median distance between all pooled points.

    Returns
    -------
    MMDResult
    """
    x, y = _check_pair(x, y)
    pooled = np.vstack([x, y])
    sq = spatial.distance.squareform(spatial.distance.pdist(pooled, "sqeuclidean"))
    if bandwidth is None:
        bandwidth = _median_distance(sq)
    kernel = np.exp(-sq / (2.0 * bandwidth**2))

    observed = _mmd2_from_kernel(kernel, len(x))
    permuted = _permuted_mmd2(kernel, len(x), n_permutations, rng)
    # A permutation that gives the observed split again sums the same kernel
    # values in another order, so it can come out a few ulps smaller.
    at_least = permuted >= observed * (1.0 - _MMD_RELATIVE_TOLERANCE)
    p_value = (1 + np.count_nonzero(at_least)) / (1 + n_permutations)
    return MMDResult(float(observed), float(p_value), float(bandwidth))


def _median_distance(sq: np.ndarray) -> float:
    upper = sq[np.triu_indices_from(sq, k=1)]
    median = float(np.sqrt(np.median(upper)))
    return median if median > 0 else 1.0


def _mmd2_from_kernel(kernel: np.ndarray, n: int) -> float:
    kxx = kernel[:n, :n].mean()
    kyy = kernel[n:, n:].mean()
    kxy = kernel[:n, n:].mean()
    # The biased estimate is a squared norm, so it is >= 0 up to rounding.
    return max(float(kxx + kyy - 2.0 * kxy), 0.0)


def _permuted_mmd2(
    kernel: np.ndarray, n: int, n_permutations: int, rng: np.random.Generator
) -> np.ndarray:
    total = kernel.shape[0]
    weights = np.empty((total, n_permutations))
    for j in range(n_permutations):
        is_x = np.zeros(total, bool)
        is_x[rng.permutation(total)[:n]] = True
        weights[:, j] = np.where(is_x, 1.0 / n, -1.0 / (total - n))
    values = np.einsum("ip,ip->p", weights, kernel @ weights)
    return np.maximum(values, 0.0)


def c2st(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    n_neighbours: int = 5,
    n_folds: int = C2ST_FOLDS,
) -> C2STResult:
    """Classifier two-sample test with a k-nearest-neighbour classifier.

    The larger set is subsampled to the size of the smaller one, features are
    standardised with the training fold's mean and deviation, and each fold is
    classified by majority vote of its ``n_neighbours`` nearest training
    points (Euclidean).

    Parameters
    ----------
    x, y : ndarray
        (N, F) and (M, F) feature vectors.
    rng : numpy.random.Generator
        Draws the subsample and the folds.
    n_neighbours : int, optional
        Neighbours that vote; odd, so that votes never tie.
    n_folds : int, optional
        Cross-validation folds.

    Returns
    -------
    C2STResult

    Notes
    -----
    The p-value treats the 2n cross-validated predictions as independent
    trials, but the folds share training frames, so it is approximate. With
    both sets drawn from one distribution, it fell below 0.05 in 1.5 to
    5.75 % of 400 draws (docs/validation.md gives the cases).
    """
    x, y = _check_pair(x, y)
    if n_neighbours < 1 or n_neighbours % 2 == 0:
        raise ThermosynthError(f"n_neighbours={n_neighbours} is invalid; use an odd k")
    n = min(len(x), len(y))
    if n < n_folds:
        raise ThermosynthError(
            f"c2st needs at least {n_folds} samples per set, one per "
            f"cross-validation fold, got {n}; give more frames"
        )
    features = np.vstack([_draw(x, n, rng), _draw(y, n, rng)])
    labels = np.repeat([0, 1], n)

    folds = np.array_split(rng.permutation(2 * n), n_folds)
    correct = sum(_fold_correct(features, labels, fold, n_neighbours) for fold in folds)
    accuracy = correct / (2 * n)
    test = stats.binomtest(int(correct), 2 * n, 0.5, alternative="greater")
    return C2STResult(float(accuracy), float(test.pvalue), n)


def _draw(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) == n else x[rng.choice(len(x), size=n, replace=False)]


def _fold_correct(
    features: np.ndarray, labels: np.ndarray, fold: np.ndarray, k: int
) -> int:
    train = np.ones(len(features), bool)
    train[fold] = False
    mean, std = standardisation(features[train])

    tree = spatial.cKDTree((features[train] - mean) / std)
    k = min(k, int(train.sum()))
    _, nearest = tree.query((features[fold] - mean) / std, k=k)
    votes = labels[train][np.reshape(nearest, (len(fold), k))].mean(axis=1)
    return int(np.count_nonzero((votes > 0.5) == labels[fold].astype(bool)))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Return the Fréchet distance between Gaussians fitted to two sets.

    Parameters
    ----------
    x, y : ndarray
        (N, F) and (M, F) feature vectors.

    Returns
    -------
    float
        ``|mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2))``, in squared
        feature units. This is the measure behind FID, here on other features.
        The covariances divide by n - 1. The value is biased upward for small
        sets: two sets of 10 from one 19-dimensional standard normal gave
        about 20, and sets of 500 gave 0.47.
    """
    x, y = _check_pair(x, y)
    return frechet_distance_gaussian(
        x.mean(axis=0),
        np.atleast_2d(np.cov(x, rowvar=False)),
        y.mean(axis=0),
        np.atleast_2d(np.cov(y, rowvar=False)),
    )


def frechet_distance_gaussian(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Return the Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Where SciPy reports the covariance product as singular (a constant
    feature makes it so) or its square root is not finite, a ridge of 1e-6 is
    added to both covariances, because such a root is inaccurate.
    """
    root = _sqrtm_or_none(sigma1 @ sigma2)
    if root is None:
        _log_singular_once(len(sigma1))
        ridge = _FRECHET_RIDGE * np.eye(len(sigma1))
        root = linalg.sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    root = np.real(root)
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root)
    return max(float(value), 0.0)


def _sqrtm_or_none(matrix: np.ndarray) -> np.ndarray | None:
    """Return the matrix square root, or None where it is singular or not finite."""
    with warnings.catch_warnings():
        # SciPy 1.17 warns "Matrix is singular" and may return an inaccurate root.
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            root = linalg.sqrtm(matrix)
        except linalg.LinAlgWarning:
            return None
    return root if np.all(np.isfinite(root)) else None


def _log_singular_once(n_features: int) -> None:
    global _logged_singular
    if _logged_singular:
        return
    _logged_singular = True
    logger.info(
        "Fréchet distance: the covariance product of %d features is singular, "
        "as a constant feature makes it, so a ridge of %g was added to both "
        "covariances; later cases are not logged",
        n_features,
        _FRECHET_RIDGE,
    )


def nearest_neighbour_ratio(
    reference: np.ndarray, query: np.ndarray, *, query_in_reference: bool = False
) -> tuple[np.ndarray, float]:
    """Relate each query's nearest-neighbour distance to the reference's own.

    Parameters
    ----------
    reference : ndarray
        (N, F) normal feature vectors, already scaled.
    query : ndarray
        (M, F) feature vectors to rate.
    query_in_reference : bool, optional
        True when each query row is also a reference row, so that its zero
        distance to itself is skipped.

    Returns
    -------
    ratio : ndarray
        float64 (M,), distance to the nearest reference point divided by the
        median leave-one-out nearest-neighbour distance within the reference.
        About 1 for a new normal sample, larger for samples off the normal set.
    scale : float
        That median distance, in feature units.
    """
    reference, query = _check_pair(reference, query)
    tree = spatial.cKDTree(reference)
    own, _ = tree.query(reference, k=2)
    scale = float(np.median(own[:, 1]))
    if scale == 0:
        raise ThermosynthError(
            "the reference set contains only duplicate points; nearest-neighbour "
            "ratios need distinct normal samples"
        )

    column = 1 if query_in_reference else 0
    distance, _ = tree.query(query, k=column + 1)
    return np.reshape(distance, (len(query), -1))[:, column] / scale, scale
