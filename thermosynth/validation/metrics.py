"""Detection metrics: image AUROC, pixel AUROC, AUPRO and bootstrap intervals.

Every score is "higher means more anomalous". Labels and masks are boolean or
0/1, True for anomalous.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage, stats


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the area under the ROC curve, ties counted as one half.

    Computed as the Mann-Whitney U statistic over midranks: the probability
    that a random anomalous sample scores above a random normal one.

    Parameters
    ----------
    labels : ndarray
        True (or 1) for anomalous samples, any shape.
    scores : ndarray
        Anomaly scores, same shape as ``labels``.

    Returns
    -------
    float
        AUROC in [0, 1].

    Raises
    ------
    ValueError
        If the shapes differ, a score is not finite, or one class is empty.
    """
    y, s = _check_pair(labels, scores)
    y, s = y.ravel(), s.ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUROC needs both classes but got {n_pos} anomalous and {n_neg} "
            "normal samples; add samples of the missing class"
        )

    ranks = stats.rankdata(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pixel_auroc(masks: np.ndarray, maps: np.ndarray) -> float:
    """Return the AUROC over all pixels of all images.

    Parameters
    ----------
    masks : ndarray
        Ground-truth masks, (N, H, W), True where anomalous.
    maps : ndarray
        Anomaly maps, (N, H, W).
    """
    return auroc(np.ravel(masks), np.ravel(maps))


def aupro(
    masks: np.ndarray,
    maps: np.ndarray,
    *,
    fpr_limit: float = 0.3,
) -> float:
    """Return the normalised area under the per-region-overlap curve.

    For a threshold ``t`` the per-region overlap (PRO) is the mean, over the
    connected components of every mask (8-connectivity), of the fraction of
    the component's pixels with ``map >= t``. The false positive rate is the
    fraction of normal pixels with ``map >= t``. Every distinct map value is a
    threshold, so the curve is exact, as in the MVTec AD evaluation code of
    Bergmann et al. (IJCV 2021). The curve starts at (0, 0) and is integrated
    over FPR in [0, ``fpr_limit``] by the trapezoid rule, with linear
    interpolation at ``fpr_limit``, and divided by ``fpr_limit``, so a
    perfect map scores 1.

    Parameters
    ----------
    masks : ndarray
        Ground-truth masks, (N, H, W) or (H, W).
    maps : ndarray
        Anomaly maps, same shape.
    fpr_limit : float
        Upper FPR of the integration, in (0, 1].

    Raises
    ------
    ValueError
        If the shapes differ, no pixel is anomalous or none is normal, or
        ``fpr_limit`` is outside (0, 1].
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit = {fpr_limit} is invalid; use a value in (0, 1]")
    y, s = _check_pair(masks, maps)
    if y.ndim == 2:
        y, s = y[None], s[None]
    if y.all() or not y.any():
        raise ValueError("AUPRO needs both anomalous and normal pixels in the masks")

    fpr, pro = _pro_curve(y, s)
    return _integrate(np.r_[0.0, fpr], np.r_[0.0, pro], fpr_limit) / fpr_limit


def _pro_curve(masks: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return FPR and PRO at every distinct map value, from the highest down.

    Each normal pixel adds 1 / (normal pixels) to the FPR once the threshold
    reaches its value, and each region pixel adds 1 / (region size x number
    of regions) to the PRO. Cumulative sums over the pixels sorted by value
    then give both curves. Only the last pixel of each run of equal values
    is kept, so tied pixels enter the curve together.
    """
    weights = _region_weights(masks).ravel()
    normal = ~masks.ravel()
    order = np.argsort(-maps.ravel(), kind="stable")
    values = maps.ravel()[order]

    fpr = np.cumsum(normal[order]) / np.count_nonzero(normal)
    pro = np.cumsum(weights[order])
    last = np.r_[values[1:] != values[:-1], True]
    return fpr[last], np.minimum(pro[last], 1.0)


def _region_weights(masks: np.ndarray) -> np.ndarray:
    """Return 1 / (region size x number of regions) at each region pixel, else 0."""
    structure = np.ones((3, 3), dtype=bool)
    weights = np.zeros(masks.shape)
    n_regions = 0
    for i, mask in enumerate(masks):
        labelled, n = ndimage.label(mask, structure=structure)
        sizes = np.bincount(labelled.ravel())
        inside = labelled > 0
        weights[i][inside] = 1.0 / sizes[labelled[inside]]
        n_regions += n
    return weights / n_regions


def _integrate(fpr: np.ndarray, pro: np.ndarray, limit: float) -> float:
    """Integrate ``pro`` over ``fpr`` (ascending) from 0 to ``limit``."""
    keep = fpr <= limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < limit and keep.size > x.size:
        x1, y1 = fpr[x.size], pro[x.size]
        y_end = y[-1] + (y1 - y[-1]) * (limit - x[-1]) / (x1 - x[-1])
        x, y = np.r_[x, limit], np.r_[y, y_end]
    return float(np.trapezoid(y, x))


def bootstrap_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    rng: np.random.Generator,
    *,
    metric: Callable[[np.ndarray, np.ndarray], float] = auroc,
    n_resamples: int = 500,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Return a metric and its percentile bootstrap confidence interval.

    Normal and anomalous samples are resampled separately (stratified), so
    each resample keeps the class sizes.

    Parameters
    ----------
    labels, scores : ndarray
        Per-sample labels and scores, shape (N,).
    rng : numpy.random.Generator
        Source of the resampling.
    metric : callable
        ``metric(labels, scores) -> float``; AUROC by default.
    n_resamples : int
        Number of bootstrap resamples, >= 1.
    confidence : float
        Two-sided confidence level, in (0, 1).

    Returns
    -------
    tuple of float
        (point estimate on all samples, lower bound, upper bound).

    Notes
    -----
    The percentile interval is too narrow for few anomalous samples. For
    binormal scores with AUROC 0.90 and 200 normal samples, the 95 % interval
    held the true AUROC in 77 % of 300 draws with 5 anomalous samples, 87 %
    with 20, and 94 % with 100 against 500 normal samples.
    """
    y, s = _check_pair(labels, scores)
    return _stratified_bootstrap(
        y, lambda index: metric(y[index], s[index]), rng, n_resamples, confidence
    )


def paired_difference_ci(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    rng: np.random.Generator,
    *,
    metric: Callable[[np.ndarray, np.ndarray], float] = auroc,
    n_resamples: int = 500,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Return metric(a) - metric(b) on the same samples, with a paired bootstrap CI.

    Both scorers are evaluated on each resample's same samples (stratified
    by label, as in `bootstrap_ci`), so the interval leaves out the spread
    that the two share: the test frames that are hard or easy for both.

    Returns
    -------
    tuple of float
        (difference on all samples, lower bound, upper bound).
    """
    y, a = _check_pair(labels, scores_a)
    _, b = _check_pair(labels, scores_b)

    def difference(index: np.ndarray | slice) -> float:
        return metric(y[index], a[index]) - metric(y[index], b[index])

    return _stratified_bootstrap(y, difference, rng, n_resamples, confidence)


def _stratified_bootstrap(
    y: np.ndarray,
    statistic: Callable[[np.ndarray | slice], float],
    rng: np.random.Generator,
    n_resamples: int,
    confidence: float,
) -> tuple[float, float, float]:
    """Return ``statistic`` on all samples and its percentile bootstrap interval.

    ``statistic(index)`` evaluates the samples at ``index``. Each resample
    draws the anomalous samples, then the normal ones, with replacement.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence} is invalid; use a value in (0, 1)")
    if n_resamples < 1:
        raise ValueError(f"n_resamples = {n_resamples} is invalid; use 1 or more")
    point = statistic(slice(None))

    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        index = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        values[i] = statistic(index)

    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return point, float(low), float(high)


def _check_pair(
    labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(
            f"labels have shape {y.shape} but scores have shape {s.shape}; "
            "give one score per label"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError(
            f"scores contain {int(np.sum(~np.isfinite(s)))} NaN or infinite "
            "values; check the detector's output"
        )
    return y, s
