"""Paired comparison of one generator against the others, per detector.

Two generators' detectors score the same test frames, so the difference
of their AUROCs is measured on each bootstrap resample of those frames.
Its interval then leaves out the spread that both share, and shows whether
a lead such as +0.04 is larger than the test set's noise. Like every
bootstrap interval of the report, it does not cover training noise: a
detector trained again with another seed can land outside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermosynth.validation.metrics import paired_difference_ci
from thermosynth.validation.transfer import ALL, MIN_CI_ANOMALIES

# Generator names of the rows that trained on no pseudo-anomaly.
_NOT_GENERATORS = ("none", "real (supervised)")


def paired_rows(
    scores: list[dict[str, Any]],
    test_labels: np.ndarray,
    test_groups: np.ndarray,
    reference: str,
    rng: np.random.Generator,
    *,
    n_boot: int,
) -> list[dict[str, Any]]:
    """Return ``reference``'s AUROC minus each other generator's, per detector.

    ``scores`` are `TransferResult.scores`: the entries of table "image"
    give each (generator, detector)'s image scores of the test frames. Each
    row contains the difference and its paired bootstrap interval for one
    detector, other generator and group (all anomalous classes, then each
    class). Groups with fewer than ``MIN_CI_ANOMALIES`` anomalous frames
    get NaN bounds. Empty where no detector trained on ``reference``.
    """
    by_run = {
        (e["generator"], e["detector"]): e["scores"]
        for e in scores
        if e["table"] == "image"
    }
    labels = np.asarray(test_labels).astype(bool)
    groups = [ALL] + sorted(set(np.asarray(test_groups)[labels].tolist()))
    rows = []
    for (generator, detector), own in by_run.items():
        if generator != reference:
            continue
        for other, other_detector in by_run:
            if other_detector != detector or other in (reference, *_NOT_GENERATORS):
                continue
            keys = {"reference": reference, "generator": other, "detector": detector}
            for group in groups:
                keep = ~labels | (test_groups == group) if group != ALL else slice(None)
                row = _difference_row(
                    own[keep], by_run[other, detector][keep], labels[keep], rng, n_boot
                )
                rows.append({**keys, "group": group, **row})
    return rows


def _difference_row(
    own: np.ndarray,
    other: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
) -> dict[str, Any]:
    """Return the AUROC difference, its interval and the anomalous count."""
    difference, low, high = paired_difference_ci(
        labels, own, other, rng, n_resamples=n_boot
    )
    n_anomalous = int(labels.sum())
    if n_anomalous < MIN_CI_ANOMALIES:
        low = high = float("nan")
    return {
        "difference": difference,
        "low": low,
        "high": high,
        "n_anomalous": n_anomalous,
    }
