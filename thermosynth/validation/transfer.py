"""Transfer: do detectors trained on pseudo-anomalies find real anomalies?

:func:`transfer_report` trains every detector from scratch on normal frames
plus the pseudo-anomalies of every generator, scores a labelled real test set
and writes a report folder: ``report.md``, the tables as CSV and the plots as
PNG. No real anomaly is used for training, except in the supervised ceiling
and in the contamination run, where real anomalies are hidden among the
training "normal" frames as an unlabelled contamination.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from thermosynth.frames.noise import estimate_frame_noise
from thermosynth.validation.closeness import region_contrast
from thermosynth.validation.detectors import (
    MIN_ANOMALOUS,
    Detector,
    Scorer,
    ScoreResult,
    Trimmed,
)
from thermosynth.validation.generators import PseudoGenerator
from thermosynth.validation.metrics import aupro, bootstrap_ci, pixel_auroc
from thermosynth.validation.transfer_data import TransferData

logger = logging.getLogger(__name__)

GeneratorFactory = Callable[[np.ndarray], PseudoGenerator]
"""Builds a generator from the training normal frames (its pool), uint8 (N, H, W)."""

ALL = "all"
REAL_MASKS = "real (test set)"
"""Value of ``test_set`` in the pixel rows scored on the real masks."""
MIN_CI_ANOMALIES = 5
"""Minimum number of anomalous test frames for a group's bootstrap interval.

With one anomaly, every stratified resample contains that same frame, so the
interval would show only the spread of the normal frames. A group with fewer
anomalies gets NaN bounds and "n/a, n < 5" on the page.
"""


class ScorerError(ValueError):
    """A scorer failed, or returned scores or maps that cannot be evaluated.

    An exception raised inside the scorer is chained as ``__cause__``.
    """


@dataclass(frozen=True)
class ScaledGenerator:
    """Generator factory ``make(pool, scale)`` at one fixed ``scale``.

    A severity sweep recognises the generator of the main table that it
    scales by this type: ``ScaledGenerator(make, 1.0)`` among the generators,
    with ``make`` as the severity generator.
    """

    make: Callable[[np.ndarray, float], PseudoGenerator]
    scale: float

    def __call__(self, pool: np.ndarray) -> PseudoGenerator:
        return self.make(pool, self.scale)


@dataclass
class TransferResult:
    """Rows of every table that :func:`transfer_report` wrote.

    ``scores`` has one entry per training run or fixed scorer: its table, its
    keys and ``scores``, the image scores of ``data.test_images`` in order,
    so that runs of several seeds can be averaged into an ensemble.
    ``n_boot`` and ``n_pixel`` are the run's bootstrap resamples and pseudo
    test frames, for the page. ``severity_reuses_main`` is True where the
    sweep's factor-1 rows are the main table's run and every level shares
    its seed. ``skipped`` has one sentence per requested run that was
    skipped, saying why; the page prints them. ``paired`` has the rows of
    `thermosynth.validation.paired.paired_rows`.
    """

    image: list[dict[str, Any]] = field(default_factory=list)
    pixel: list[dict[str, Any]] = field(default_factory=list)
    contamination: list[dict[str, Any]] = field(default_factory=list)
    severity: list[dict[str, Any]] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    n_boot: int = 0
    n_pixel: int = 0
    severity_reuses_main: bool = False
    skipped: list[str] = field(default_factory=list)


def make_pseudo(
    normal: np.ndarray, generator: PseudoGenerator, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``generator`` to every frame; output ``i`` is made from ``normal[i]``."""
    pairs = [generator(image, rng) for image in normal]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _scores(
    scorer: Callable[[np.ndarray], Any], images: np.ndarray, name: str
) -> ScoreResult:
    """Call a scorer; accept a plain array of image scores as well as (scores, maps).

    ``name`` names the scorer in errors, such as "scorer 'mine'".

    Raises
    ------
    ScorerError
        If the scorer raises (chained), returns scores that are not one
        finite number per frame, or maps that are not finite (N, H, W).
    """
    try:
        out = scorer(images)
    except Exception as exc:
        raise ScorerError(
            f"{name} failed on {len(images)} frames of shape {images.shape[1:]}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

    maps = None
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ScorerError(
                f"{name} returned a tuple of {len(out)} items; return scores (N,) "
                "or a pair (scores, maps) with maps (N, H, W) or None"
            )
        out, maps = out
    scores = _as_finite(out, name, "scores", (len(images),))
    if maps is not None:
        maps = _as_finite(maps, name, "maps", images.shape)
    return scores, maps


def _as_finite(values: Any, name: str, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """Return a scorer's scores or maps as float64 of ``shape``, all finite."""
    fix = f"return {what} of shape {shape}, one per frame"
    if what == "maps":
        fix += " and of the frame's size, or None in place of maps"
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ScorerError(
            f"{name} returned {what} that are not numbers ({exc}); {fix}"
        ) from exc
    if array.shape != shape:
        raise ScorerError(
            f"{name} returned {what} of shape {array.shape} for {shape[0]} "
            f"frames; {fix}"
        )
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ScorerError(
            f"{name} returned {what} with {bad} NaN or infinite values of "
            f"{array.size}; return finite {what}"
        )
    return array


def image_rows(
    scores: np.ndarray, data: TransferData, rng: np.random.Generator, *, n_boot: int
) -> list[dict[str, Any]]:
    """Return image AUROC with its bootstrap CI over all anomalies and per class.

    A group with fewer than ``MIN_CI_ANOMALIES`` anomalous frames gets NaN
    bounds. Its bootstrap still runs, so that the random stream, and with it
    every later draw of the run, does not depend on the class sizes.
    """
    labels = data.test_labels.astype(bool)
    groups = [ALL] + sorted(set(data.test_groups[labels].tolist()))
    rows = []
    for group in groups:
        keep = ~labels | (data.test_groups == group) if group != ALL else slice(None)
        point, low, high = bootstrap_ci(
            labels[keep], scores[keep], rng, n_resamples=n_boot
        )
        n_anomalous = int(labels[keep].sum())
        if n_anomalous < MIN_CI_ANOMALIES:
            low = high = float("nan")
        row = {"group": group, "auroc": point, "low": low, "high": high}
        rows.append({**row, "n_anomalous": n_anomalous})
    return rows


def _train_and_score(
    detector: Detector,
    normal: np.ndarray,
    factory: GeneratorFactory | None,
    data: TransferData,
    rng: np.random.Generator,
    name: str,
) -> tuple[Scorer, ScoreResult, float]:
    start = time.perf_counter()
    anomalous = masks = None
    if detector.uses_pseudo:
        assert factory is not None
        anomalous, masks = _training_pseudo(normal, factory, rng)
    scorer = detector.fit(normal, anomalous, masks, rng)
    result = _scores(scorer, data.test_images, name)
    return scorer, result, time.perf_counter() - start


def _training_pseudo(
    normal: np.ndarray, factory: GeneratorFactory, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Make the pseudo-anomalies of a training run, one per training normal.

    A training run draws them before anything else from its random generator,
    so a fresh random generator with the run's seed makes the same frames
    again. The severity sweep's closeness relies on that.
    """
    return make_pseudo(normal, factory(normal), rng)


def contrast_noise(
    images: np.ndarray,
    masks: np.ndarray,
    *,
    ring_px: int = 2,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Measure each pseudo-anomaly's contrast in units of its frame's noise.

    The figure is ``contrast_noise`` of ``thermosynth validate closeness``:
    :func:`~thermosynth.validation.closeness.region_contrast` on the mask,
    divided by the frame's noise sigma inside its region of interest from
    :func:`~thermosynth.frames.noise.estimate_frame_noise` (8-bit levels, so
    never below the quantisation noise 1 / sqrt(12)).

    Parameters
    ----------
    images : ndarray
        uint8 (N, H, W) pseudo-anomalous frames [level].
    masks : ndarray
        Boolean (N, H, W) masks of the pseudo-anomalies.
    ring_px : int, optional
        Width of the ring around the mask that is the local background [px].
    region : ndarray, optional
        Boolean (H, W) region of interest that the generator measured noise
        in. None leaves out only a constant background at the frame's
        minimum (see :func:`~thermosynth.frames.noise.constant_background`).

    Returns
    -------
    ndarray
        float64 (N,) contrast-to-noise ratios; NaN for an empty mask.
    """
    ratios = np.empty(len(images))
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        values = image.astype(np.float64)
        contrast = region_contrast(values, mask, ring_px=ring_px)
        noise = estimate_frame_noise(values, region=region, quantum=1.0)
        ratios[i] = contrast / noise
    return ratios


def _pixel_row(
    scorer: Scorer,
    factory: GeneratorFactory,
    data: TransferData,
    n_pixel: int,
    rng: np.random.Generator,
    name: str,
) -> dict[str, float]:
    """Pixel AUROC and AUPRO on pseudo-anomalies made from unseen test normals."""
    normals = data.test_images[~data.test_labels.astype(bool)][:n_pixel]
    images, masks = make_pseudo(normals, factory(data.train_normal), rng)
    _, maps = _scores(scorer, images, name)
    if maps is None or not masks.any():
        return {}
    return {"pixel_auroc": pixel_auroc(masks, maps), "aupro": aupro(masks, maps)}


def _real_pixel_row(maps: np.ndarray | None, data: TransferData) -> dict[str, float]:
    """Pixel AUROC and AUPRO on the real test set, where it has masks."""
    if maps is None or data.test_masks is None or not data.test_masks.any():
        return {}
    masks = data.test_masks.astype(bool)
    return {"pixel_auroc": pixel_auroc(masks, maps), "aupro": aupro(masks, maps)}


def transfer_report(
    data: TransferData,
    generators: Mapping[str, GeneratorFactory],
    detectors: Mapping[str, Detector],
    *,
    out_dir: str | Path | None,
    seed: int = 0,
    scorers: Mapping[str, Callable[[np.ndarray], Any]] | None = None,
    supervised: Detector | None = None,
    contamination: float = 0.0,
    contamination_generators: Sequence[str] = (),
    severity_levels: Sequence[float] = (),
    severity_generator: Callable[[np.ndarray, float], PseudoGenerator] | None = None,
    severity_detector: str | None = None,
    region: np.ndarray | None = None,
    n_boot: int = 200,
    n_pixel: int = 200,
    notes: str = "",
    jobs: int = 1,
    paired_reference: str = "thermosynth",
    progress: bool = False,
) -> TransferResult:
    """Train every detector on every generator's pseudo-anomalies and score real data.

    Parameters
    ----------
    data : TransferData
        Training normals and the labelled real test set.
    generators : mapping of str to callable
        Name to ``factory(pool) -> generator``; the pool is the training normals.
    detectors : mapping of str to Detector
        Detectors with ``uses_pseudo`` train once per generator; one-class
        detectors train once and appear under the generator name "none".
    out_dir : str or Path or None
        Report folder, created if missing; None writes nothing.
    seed : int
        Seed of every random draw (splits, pseudo-anomalies, weights, bootstrap).
    scorers : mapping of str to callable, optional
        Fixed scorers that need no training, reported under generator "none".
        ``scorer(images)`` takes uint8 (N, H, W) frames and returns finite
        scores (N,), or ``(scores, maps)`` with maps (N, H, W) or None. Maps
        get pixel rows like a one-class detector's.
    supervised : Detector, optional
        Trained on ``data.reserve_anomalies`` as real labelled anomalies; the
        ceiling, reported under generator "real (supervised)". Skipped, with
        a warning and a sentence in ``TransferResult.skipped``, where the
        reserve has fewer than 2 frames.
    contamination : float
        Fraction of training normals replaced by real reserve anomalies in the
        contamination run, in [0, 1); 0 skips the run. A run without a
        one-class detector or a contamination generator is skipped like the
        ceiling.
    contamination_generators : sequence of str
        Generators rerun with contamination (one-class detectors always are).
    severity_levels : sequence of float
        Severity factors of the sweep; empty skips it.
    severity_generator : callable, optional
        ``severity_generator(pool, level) -> generator`` for the sweep. Where
        ``generators`` holds ``ScaledGenerator(severity_generator, 1.0)``, or
        ``severity_generator`` itself (which must then default to factor 1),
        every level trains with the seed of the detector's main run on it,
        and factor 1 reuses that run. Otherwise each level trains with its
        own seed.
    severity_detector : str, optional
        Name in ``detectors`` trained at each severity level. Each level's
        row also gives the quartiles of :func:`contrast_noise` over the
        pseudo-anomalies it trained on.
    region : ndarray, optional
        Boolean (H, W) region of interest of the training frames, the one
        the severity generator blends into; :func:`contrast_noise` measures
        noise inside it. None leaves out only a constant background at each
        frame's minimum.
    n_boot : int
        Bootstrap resamples per confidence interval.
    n_pixel : int
        Test normals turned into pseudo-anomalies for the pixel metrics; 0
        skips those metrics (pixel metrics on real masks are still scored).
    notes : str
        Markdown placed under the report's title (setup, goals).
    paired_reference : str
        Generator compared with every other one, per detector, by the
        difference of their image AUROCs on the same bootstrap resamples
        (`thermosynth.validation.paired`); no comparison where
        ``generators`` has no such name.
    jobs : int
        Processes that train detectors side by side (forked, so the
        generator factories need not be picklable); each gets an equal share
        of torch's threads, at least one. Each training run draws
        from its own generator, seeded with ``seed`` and the run's position
        in the table, so every ``jobs`` gives the same tables. A
        contamination run takes the seed of the same detector's clean run
        on the same generator, so the two differ only by the contaminated
        training frames.
    progress : bool
        Show a progress bar on stderr over the training runs and fixed
        scorers. It advances as each one finishes, in any process, and
        estimates the time left from the runs done so far.

    Returns
    -------
    TransferResult
        Rows of the image, pixel, contamination and severity tables.

    Raises
    ------
    ScorerError
        If a scorer or trained detector raises while scoring (chained), or
        returns scores or maps of the wrong shape or with NaN.
    """
    _check_data(data)
    if jobs < 1:
        raise ValueError(f"jobs = {jobs} is invalid; use 1 or more processes")
    if severity_levels and (
        severity_generator is None or severity_detector not in detectors
    ):
        raise ValueError(
            "a severity sweep needs severity_generator and a severity_detector "
            f"among {sorted(detectors)}; got {severity_detector!r}"
        )

    skipped: list[str] = []
    plan = _Plan(data, generators, n_boot=n_boot, n_pixel=n_pixel)
    supervised = _usable_ceiling(supervised, data, skipped)
    _plan_main(plan, detectors, scorers or {}, supervised)
    if contamination > 0.0:
        subset = {k: generators[k] for k in contamination_generators}
        if _contamination_applies(detectors, subset, contamination, skipped):
            dirty, slots, chosen = _contaminate(
                data, contamination, np.random.default_rng([seed, _CONTAMINATION_DRAW])
            )
            planted = _Planted(slots, _reserve_groups(data, chosen))
            _plan_contamination(plan, subset, detectors, dirty, planted, contamination)
    sweep = None
    if severity_levels:
        assert severity_generator is not None and severity_detector is not None
        sweep = _plan_severity(
            plan, severity_levels, severity_generator, severity_detector, detectors
        )
        sweep.region = region

    outputs = _run_plan(plan, seed, jobs, progress=progress)
    result = TransferResult(n_boot=n_boot, n_pixel=n_pixel, skipped=skipped)
    _collect(result, plan, outputs)
    if sweep is not None:
        _collect_severity(result, sweep, plan, outputs, seed)
    if paired_reference in generators:
        from thermosynth.validation.paired import paired_rows

        paired_rng = np.random.default_rng([seed, _PAIRED_DRAW])
        result.paired = paired_rows(
            result.scores,
            data.test_labels,
            data.test_groups,
            paired_reference,
            paired_rng,
            n_boot=n_boot,
        )
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        rng = np.random.default_rng(seed)
        from thermosynth.validation.transfer_page import write_report

        write_report(result, data, generators, rng, notes=notes)
    return result


def _usable_ceiling(
    supervised: Detector | None, data: TransferData, skipped: list[str]
) -> Detector | None:
    """Return ``supervised`` if the reserve can train it; else log and note why not.

    `transfer_report` calls it before any training, so that a reserve too
    small for the ceiling cannot fail the run after every other detector
    trained.
    """
    if supervised is None:
        return None
    reserve = data.reserve_anomalies
    count = 0 if reserve is None else len(reserve)
    if count >= MIN_ANOMALOUS:
        return supervised
    reason = (
        f"The supervised ceiling was skipped: it trains on the real reserve "
        f"anomalies and keeps at least one of them for validation, so it needs "
        f"{MIN_ANOMALOUS} or more, but the reserve has {count}. `thermosynth "
        "validate transfer` puts half of each anomaly class, rounded down, in "
        "the reserve; add real anomalies for a ceiling."
    )
    _note_skipped(reason, skipped)
    return None


def _contamination_applies(
    detectors: Mapping[str, Detector],
    generators: Mapping[str, GeneratorFactory],
    fraction: float,
    skipped: list[str],
) -> bool:
    """Return whether the contamination run reruns anything; else log why not.

    It reruns every one-class detector, and every detector that trains on
    pseudo-anomalies on each of ``generators``.
    """
    one_class = any(not d.uses_pseudo for d in detectors.values())
    pseudo = any(d.uses_pseudo for d in detectors.values())
    if one_class or (pseudo and generators):
        return True
    names = ", ".join(generators) or "none"
    reason = (
        f"The contamination run ({fraction:g} of the training normals replaced "
        "by real reserve anomalies) was skipped: it reruns the one-class "
        "detectors, and the detectors that train on pseudo-anomalies on the "
        f"contamination generators (here {names}), and this run has no such "
        "pair."
    )
    _note_skipped(reason, skipped)
    return False


def _note_skipped(reason: str, skipped: list[str]) -> None:
    """Log why a run was skipped and keep the sentence for the page."""
    logger.warning("%s", reason.replace("`", ""))
    skipped.append(reason)


def _check_data(data: TransferData) -> None:
    _check_frames(data)
    labels = np.asarray(data.test_labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError(
            "the test set needs both normal and anomalous frames; got "
            f"{int(labels.sum())} anomalous of {labels.size}"
        )
    if len(data.test_groups) != len(labels) or len(data.test_images) != len(labels):
        raise ValueError(
            f"test_images ({len(data.test_images)}), test_labels ({len(labels)}) and "
            f"test_groups ({len(data.test_groups)}) must have one entry per frame"
        )
    masks = data.test_masks
    if masks is not None and np.shape(masks) != np.shape(data.test_images):
        raise ValueError(
            f"test_masks has shape {np.shape(masks)} but test_images has "
            f"{np.shape(data.test_images)}; give one mask per test frame"
        )


def _check_frames(data: TransferData) -> None:
    """Raise ValueError naming the TransferData field whose frames are not uint8."""
    size = np.shape(data.train_normal)[1:]
    fields = ("train_normal", "test_images", "reserve_anomalies")
    for name in fields:
        frames = getattr(data, name)
        if frames is None:
            continue
        dtype, shape = getattr(frames, "dtype", None), np.shape(frames)
        empty = len(shape) == 3 and shape[0] == 0 and name != "reserve_anomalies"
        if dtype != np.uint8 or len(shape) != 3 or empty:
            raise ValueError(
                f"TransferData.{name} is {dtype} with shape {shape}; give 8-bit "
                "frames, uint8 (N, H, W) with N >= 1"
            )
        if shape[1:] != size:
            raise ValueError(
                f"TransferData.{name} has frames of {shape[1:]} px but "
                f"train_normal has {size} px; give frames of one size"
            )


@dataclass(frozen=True)
class _Planted:
    """The training slots that the contamination run filled with real anomalies."""

    slots: np.ndarray
    groups: np.ndarray | None  # class of each slot's anomaly, where known


@dataclass
class _Task:
    """One training run (or one fixed scorer) and the keys of its rows."""

    table: str
    keys: dict[str, Any]
    detector: Detector | None = None
    scorer: Callable[[np.ndarray], Any] | None = None
    normal: np.ndarray | None = None
    factory: GeneratorFactory | None = None
    real_anomalies: np.ndarray | None = None
    pixel: bool = False  # score pixel metrics: real masks, then pixel_generators
    pixel_generators: tuple[str, ...] = ()
    planted: _Planted | None = None
    stream: int | None = None  # seed key, the task's position when None


@dataclass
class _Plan:
    """Every run of a report, in table order, and what they share."""

    data: TransferData
    generators: Mapping[str, GeneratorFactory]
    n_boot: int
    n_pixel: int
    tasks: list[_Task] = field(default_factory=list)

    def add(self, table: str, keys: dict[str, Any], **options: Any) -> None:
        options.setdefault("normal", self.data.train_normal)
        self.tasks.append(_Task(table, keys, **options))

    def position(self, table: str, keys: dict[str, Any]) -> int:
        """Return the position of the task of ``table`` with ``keys``."""
        for index, task in enumerate(self.tasks):
            if task.table == table and task.keys == keys:
                return index
        raise KeyError(f"no {table} task with keys {keys}")

    def stream(self, index: int) -> int:
        """Return the seed key of task ``index``: its own ``stream`` or its position."""
        stream = self.tasks[index].stream
        return index if stream is None else stream


@dataclass
class _Sweep:
    """A planned severity sweep and the run behind each level's rows."""

    generator: str
    detector: str
    levels: list[tuple[float, int]]  # (factor, plan position of the run)
    reuses_main: bool
    # Region of interest that contrast_noise measures noise in; None for none.
    region: np.ndarray | None = None


TaskRows = tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray]
"""A run's image-AUROC rows, its pixel-metric rows and its image scores."""

# Seed offsets of the contamination draw and of the paired comparison's
# resamples, apart from the runs' positions.
_CONTAMINATION_DRAW = 1_000_003
_PAIRED_DRAW = 1_000_033


def _plan_main(
    plan: _Plan,
    detectors: Mapping[str, Detector],
    scorers: Mapping[str, Callable[[np.ndarray], Any]],
    supervised: Detector | None,
) -> None:
    every = tuple(plan.generators)
    for name, scorer in scorers.items():
        keys = {"generator": "none", "detector": name}
        plan.add("image", keys, scorer=scorer, pixel=True, pixel_generators=every)

    for det_name, detector in detectors.items():
        names = list(plan.generators) if detector.uses_pseudo else ["none"]
        for gen_name in names:
            factory = plan.generators.get(gen_name)
            pixel = (gen_name,) if factory else every
            keys = {"generator": gen_name, "detector": det_name}
            options = {"factory": factory, "pixel": True, "pixel_generators": pixel}
            plan.add("image", keys, detector=detector, **options)

    reserve = plan.data.reserve_anomalies
    if supervised is not None and reserve is not None:
        keys = {"generator": "real (supervised)", "detector": _class_name(supervised)}
        plan.add("image", keys, detector=supervised, real_anomalies=reserve)


def _plan_contamination(
    plan: _Plan,
    generators: Mapping[str, GeneratorFactory],
    detectors: Mapping[str, Detector],
    dirty: np.ndarray,
    planted: _Planted,
    fraction: float,
) -> None:
    for det_name, detector in detectors.items():
        names = list(generators) if detector.uses_pseudo else ["none"]
        for gen_name in names:
            keys: dict[str, Any] = {"generator": gen_name, "detector": det_name}
            # Common random numbers: the clean run's seed, so the two runs
            # differ only by the planted anomalies, not by training noise.
            stream = plan.position("image", keys)
            keys["contamination"] = fraction
            factory = generators.get(gen_name)
            options = {"normal": dirty, "factory": factory, "planted": planted}
            plan.add("contamination", keys, detector=detector, stream=stream, **options)


def _plan_severity(
    plan: _Plan,
    levels: Sequence[float],
    make: Callable[[np.ndarray, float], PseudoGenerator],
    det_name: str,
    detectors: Mapping[str, Detector],
) -> _Sweep:
    """Add a run per severity level; factor 1 reuses the main run where one matches."""
    detector = detectors[det_name]
    base = _scaled_base(plan.generators, make) if detector.uses_pseudo else None
    main = None
    if base is not None:
        main = plan.position("image", {"generator": base, "detector": det_name})

    runs = []
    for level in map(float, levels):
        if main is not None and level == 1.0:
            runs.append((level, main))
            continue
        # Common random numbers: with a main run, every level takes its seed,
        # so the levels differ only by the factor, not by training noise.
        factory = ScaledGenerator(make, level)
        keys = {"severity": level, "detector": det_name}
        plan.add("severity", keys, detector=detector, factory=factory, stream=main)
        runs.append((level, len(plan.tasks) - 1))
    return _Sweep(base or "severity_generator", det_name, runs, main is not None)


def _scaled_base(
    generators: Mapping[str, GeneratorFactory],
    make: Callable[[np.ndarray, float], PseudoGenerator],
) -> str | None:
    """Return the name of the generator that is ``make`` at factor 1, or None."""
    for name, factory in generators.items():
        if factory is make or factory == ScaledGenerator(make, 1.0):
            return name
    return None


def _collect(result: TransferResult, plan: _Plan, outputs: list[TaskRows]) -> None:
    """Add the rows of every run but the severity sweep's to ``result``."""
    for task, (auroc_rows, pixel_rows, scores) in zip(plan.tasks, outputs, strict=True):
        if task.table == "severity":
            continue
        getattr(result, task.table).extend(auroc_rows)
        result.pixel.extend(pixel_rows)
        result.scores.append({"table": task.table, **task.keys, "scores": scores})


def _collect_severity(
    result: TransferResult,
    sweep: _Sweep,
    plan: _Plan,
    outputs: list[TaskRows],
    seed: int,
) -> None:
    """Add a severity row per level and group, with its pseudo-anomalies' closeness."""
    result.severity_reuses_main = sweep.reuses_main
    fields = ("group", "auroc", "low", "high", "n_anomalous")
    for level, index in sweep.levels:
        auroc_rows, _, scores = outputs[index]
        keys = {
            "severity": level,
            "generator": sweep.generator,
            "detector": sweep.detector,
            **_level_closeness(plan, index, seed, sweep.region),
        }
        for row in auroc_rows:
            result.severity.append({**keys, **{k: row[k] for k in fields}})
        result.scores.append({"table": "severity", "severity": level, "scores": scores})


def _level_closeness(
    plan: _Plan, index: int, seed: int, region: np.ndarray | None
) -> dict[str, Any]:
    """Return the quartiles and count of a run's finite :func:`contrast_noise`."""
    task = plan.tasks[index]
    assert task.normal is not None and task.factory is not None
    rng = np.random.default_rng([seed, plan.stream(index)])
    images, masks = _training_pseudo(task.normal, task.factory, rng)
    ratios = contrast_noise(images, masks, region=region)
    ratios = ratios[np.isfinite(ratios)]
    quartiles = np.percentile(ratios, [25, 50, 75]) if ratios.size else [np.nan] * 3
    return {
        "contrast_noise_median": float(quartiles[1]),
        "contrast_noise_q25": float(quartiles[0]),
        "contrast_noise_q75": float(quartiles[2]),
        "closeness_frames": int(ratios.size),
    }


def _run_plan(plan: _Plan, seed: int, jobs: int, *, progress: bool) -> list[TaskRows]:
    """Run every task, on ``jobs`` forked processes; results in plan order."""
    global _FORKED_PLAN
    n_tasks = len(plan.tasks)
    jobs = min(jobs, n_tasks)
    _log_plan(plan, jobs)
    if jobs <= 1:
        with _progress_bar(n_tasks, progress) as bar:
            return [_run_and_count(plan, i, seed, bar) for i in range(n_tasks)]

    _FORKED_PLAN = (plan, seed)
    threads = max(1, torch.get_num_threads() // jobs)
    outputs: dict[int, TaskRows] = {}
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, torch.set_num_threads, (threads,)) as pool:
            # The bar is made after the pool forked its workers, so that a
            # worker's log record, written through tqdm.write, cannot redraw
            # a stale copy of it.
            with _progress_bar(n_tasks, progress) as bar:
                finished = pool.imap_unordered(_run_forked, range(n_tasks))
                for index, rows in finished:
                    outputs[index] = rows
                    bar.update()
    finally:
        _FORKED_PLAN = None
    return [outputs[index] for index in range(n_tasks)]


def _run_and_count(plan: _Plan, index: int, seed: int, bar: tqdm) -> TaskRows:
    rows = _run_task(plan, index, seed)
    bar.update()
    return rows


def _progress_bar(n_tasks: int, progress: bool) -> tqdm:
    """Return a bar over ``n_tasks`` runs on stderr, hidden unless ``progress``."""
    return tqdm(total=n_tasks, disable=not progress, unit="run", desc="transfer")


def _log_plan(plan: _Plan, jobs: int) -> None:
    """Log the number of training runs and fixed scorers, and the processes."""
    n_fixed = sum(task.scorer is not None for task in plan.tasks)
    n_training = len(plan.tasks) - n_fixed
    logger.info(
        "starting %s and %s on %s",
        _plural(n_training, "training run"),
        _plural(n_fixed, "fixed scorer"),
        _plural(max(jobs, 1), "process", "processes"),
    )


def _plural(count: int, noun: str, plural: str = "") -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


# The plan that forked workers read; set only while a pool runs.
_FORKED_PLAN: tuple[_Plan, int] | None = None


def _run_forked(index: int) -> tuple[int, TaskRows]:
    """Run task ``index`` in a forked worker and return its rows with the index."""
    assert _FORKED_PLAN is not None
    plan, seed = _FORKED_PLAN
    return index, _run_task(plan, index, seed)


def _run_task(plan: _Plan, index: int, seed: int) -> TaskRows:
    """Train and score task ``index`` with its own generator; return its rows."""
    task, data = plan.tasks[index], plan.data
    rng = np.random.default_rng([seed, plan.stream(index)])
    start = time.perf_counter()
    scorer, (scores, maps) = _fit_and_score(task, data, rng)
    seconds = time.perf_counter() - start
    if task.detector is not None:
        logger.info("%s: %.1f s", _describe(task), seconds)

    # The time goes to the log only, so that the tables of two runs with the
    # same seed are byte-identical.
    keys = dict(task.keys)
    planted = task.planted
    if planted is not None:
        keys["contaminants_dropped"] = _dropped_share(task.detector, planted.slots)
    rows = [
        {**keys, **row} for row in image_rows(scores, data, rng, n_boot=plan.n_boot)
    ]
    if planted is not None and planted.groups is not None:
        for row in rows:
            if row["group"] != ALL:
                of_class = planted.slots[planted.groups == row["group"]]
                row["contaminants_dropped"] = _dropped_share(task.detector, of_class)
    pixel_rows = _task_pixel_rows(plan, task, scorer, maps, rng)
    return rows, pixel_rows, scores


def _fit_and_score(
    task: _Task, data: TransferData, rng: np.random.Generator
) -> tuple[Callable[[np.ndarray], Any], ScoreResult]:
    name = _describe(task)
    if task.scorer is not None:
        return task.scorer, _scores(task.scorer, data.test_images, name)
    assert task.detector is not None and task.normal is not None
    if task.real_anomalies is not None:
        scorer = task.detector.fit(task.normal, task.real_anomalies, None, rng)
        return scorer, _scores(scorer, data.test_images, name)
    scorer, result, _ = _train_and_score(
        task.detector, task.normal, task.factory, data, rng, name
    )
    return scorer, result


def _describe(task: _Task) -> str:
    """Name a task's scorer for logs and errors, such as "scorer 'mine'"."""
    keys = task.keys
    if task.scorer is not None:
        return f"scorer {keys['detector']!r}"
    if task.table == "severity":
        return f"detector {keys['detector']!r} at severity level {keys['severity']:g}"
    text = f"detector {keys['detector']!r}"
    if keys["generator"] == "real (supervised)":
        text = f"supervised ceiling {keys['detector']!r}"
    elif keys["generator"] != "none":
        text += f" trained on {keys['generator']!r}"
    if task.table == "contamination":
        text += f" with contamination {keys['contamination']:g}"
    return text


def _task_pixel_rows(
    plan: _Plan,
    task: _Task,
    scorer: Callable[[np.ndarray], Any],
    maps: np.ndarray | None,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Pixel rows of a main-table run: real masks, then pseudo-anomaly test sets.

    ``n_pixel`` 0 skips only the pseudo-anomaly test sets.
    """
    if task.table != "image" or not task.pixel:
        return []
    keys = {"trained_on": task.keys["generator"], "detector": task.keys["detector"]}
    rows = []
    real = _real_pixel_row(maps, plan.data)
    if real:
        rows.append({**keys, "test_set": REAL_MASKS, **real})
    if plan.n_pixel == 0:
        return rows
    for name in task.pixel_generators:
        factory = plan.generators[name]
        row = _pixel_row(scorer, factory, plan.data, plan.n_pixel, rng, _describe(task))
        if row:
            rows.append({**keys, "test_set": name, **row})
    return rows


def _class_name(detector: Detector) -> str:
    """Return the detector's class name in lower case, the wrapped one for Trimmed."""
    inner = detector.detector if isinstance(detector, Trimmed) else detector
    return type(inner).__name__.lower()


def _contaminate(
    data: TransferData, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace ``fraction`` of the training normals by real reserve anomalies.

    Returns the contaminated frames, the indices of the replaced ones and
    the indices of the reserve anomalies put there.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"contamination = {fraction} is invalid; use a value in [0, 1)"
        )
    reserve = data.reserve_anomalies
    n = int(round(fraction * len(data.train_normal)))
    if reserve is None or len(reserve) < n:
        raise ValueError(
            f"contamination {fraction} needs {n} reserve anomalies but "
            f"{0 if reserve is None else len(reserve)} were given"
        )
    normal = data.train_normal.copy()
    slots = rng.choice(len(normal), size=n, replace=False)
    chosen = rng.choice(len(reserve), size=n, replace=False)
    normal[slots] = reserve[chosen]
    return normal, slots, chosen


def _reserve_groups(data: TransferData, chosen: np.ndarray) -> np.ndarray | None:
    """Return the class of each chosen reserve anomaly, or None if unknown."""
    if data.reserve_groups is None:
        return None
    return data.reserve_groups[chosen]


def _dropped_share(detector: Detector | None, slots: np.ndarray) -> float:
    """Return the share of planted anomalies that a Trimmed detector dropped.

    NaN for a detector that drops nothing by design, and where nothing was
    planted.
    """
    if not isinstance(detector, Trimmed) or detector.drop_fraction == 0.0:
        return float("nan")
    if len(slots) == 0:
        return float("nan")
    return float(np.isin(slots, detector.dropped).mean())
