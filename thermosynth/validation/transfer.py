"""Transfer: do detectors trained on pseudo-anomalies find real anomalies?

:func:`transfer_report` trains every detector from scratch on normal frames
plus the pseudo-anomalies of every generator, scores a labelled real test set
and writes a report folder: ``report.md``, the tables as CSV and the plots as
PNG. No real anomaly is used for training, except in the supervised ceiling
and in the contamination run, where real anomalies are hidden among the
training "normal" frames as an unlabelled contamination.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thermosynth.validation.detectors import Detector, Scorer, ScoreResult, Trimmed
from thermosynth.validation.generators import PseudoGenerator
from thermosynth.validation.metrics import aupro, bootstrap_ci, pixel_auroc

logger = logging.getLogger(__name__)

GeneratorFactory = Callable[[np.ndarray], PseudoGenerator]
"""Builds a generator from the training normal frames (its pool), uint8 (N, H, W)."""

ALL = "all"
REAL_MASKS = "real (test set)"
"""Value of ``pseudo_test`` in the pixel rows scored on the real masks."""


@dataclass(frozen=True)
class TransferData:
    """Frames of a transfer experiment, all uint8 (N, H, W).

    Attributes
    ----------
    train_normal : ndarray
        Normal training frames; never contains a labelled real anomaly.
    test_images : ndarray
        Test frames: unseen normal frames and real anomalies.
    test_labels : ndarray
        Boolean (N,), True for real anomalies.
    test_groups : ndarray
        Class name of each test frame (str, (N,)); AUROC is reported over all
        anomalies and per anomalous class, each against all test normals.
    reserve_anomalies : ndarray or None
        Real anomalies disjoint from the test set, for the supervised ceiling
        and the contamination run.
    test_masks : ndarray or None
        Boolean (N, H, W) ground-truth masks of the test frames (all False
        for normal frames), or None where the real anomalies have no masks.
        With masks, pixel AUROC and AUPRO are scored on the real test set.
    """

    train_normal: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    test_groups: np.ndarray
    reserve_anomalies: np.ndarray | None = None
    test_masks: np.ndarray | None = None


@dataclass
class TransferResult:
    """Rows of every table that :func:`transfer_report` wrote.

    ``scores`` has one entry per training run or fixed scorer: its table, its
    keys and ``scores``, the image scores of ``data.test_images`` in order,
    so that runs of several seeds can be averaged into an ensemble.
    """

    image: list[dict[str, Any]] = field(default_factory=list)
    pixel: list[dict[str, Any]] = field(default_factory=list)
    contamination: list[dict[str, Any]] = field(default_factory=list)
    severity: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None


def make_pseudo(
    normal: np.ndarray, generator: PseudoGenerator, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``generator`` to every frame; output ``i`` is made from ``normal[i]``."""
    pairs = [generator(image, rng) for image in normal]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _scores(scorer: Callable[[np.ndarray], Any], images: np.ndarray) -> ScoreResult:
    """Call a scorer; accept a plain array of image scores as well as (scores, maps)."""
    out = scorer(images)
    if isinstance(out, tuple):
        return np.asarray(out[0], dtype=np.float64), out[1]
    return np.asarray(out, dtype=np.float64), None


def image_rows(
    scores: np.ndarray, data: TransferData, rng: np.random.Generator, *, n_boot: int
) -> list[dict[str, Any]]:
    """Return image AUROC with its bootstrap CI over all anomalies and per class."""
    labels = data.test_labels.astype(bool)
    groups = [ALL] + sorted(set(data.test_groups[labels].tolist()))
    rows = []
    for group in groups:
        keep = ~labels | (data.test_groups == group) if group != ALL else slice(None)
        point, low, high = bootstrap_ci(
            labels[keep], scores[keep], rng, n_resamples=n_boot
        )
        rows.append({"group": group, "auroc": point, "low": low, "high": high})
    return rows


def _train_and_score(
    detector: Detector,
    normal: np.ndarray,
    factory: GeneratorFactory | None,
    data: TransferData,
    rng: np.random.Generator,
) -> tuple[Scorer, ScoreResult, float]:
    start = time.perf_counter()
    anomalous = masks = None
    if detector.uses_pseudo:
        assert factory is not None
        anomalous, masks = make_pseudo(normal, factory(normal), rng)
    scorer = detector.fit(normal, anomalous, masks, rng)
    result = _scores(scorer, data.test_images)
    return scorer, result, time.perf_counter() - start


def _pixel_row(
    scorer: Scorer,
    factory: GeneratorFactory,
    data: TransferData,
    n_pixel: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Pixel AUROC and AUPRO on pseudo-anomalies made from unseen test normals."""
    normals = data.test_images[~data.test_labels.astype(bool)][:n_pixel]
    images, masks = make_pseudo(normals, factory(data.train_normal), rng)
    _, maps = _scores(scorer, images)
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
    n_boot: int = 200,
    n_pixel: int = 200,
    notes: str = "",
    jobs: int = 1,
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
        Fixed scorers that need no training, ``scorer(images) -> scores`` or
        ``(scores, maps)``; reported under generator "none".
    supervised : Detector, optional
        Trained on ``data.reserve_anomalies`` as real labelled anomalies; the
        ceiling, reported under generator "real (supervised)".
    contamination : float
        Fraction of training normals replaced by real reserve anomalies in the
        contamination run, in [0, 1); 0 skips the run.
    contamination_generators : sequence of str
        Generators rerun with contamination (one-class detectors always are).
    severity_levels : sequence of float
        Severity factors of the sweep; empty skips it.
    severity_generator : callable, optional
        ``severity_generator(pool, level) -> generator`` for the sweep.
    severity_detector : str, optional
        Name in ``detectors`` trained at each severity level.
    n_boot : int
        Bootstrap resamples per confidence interval.
    n_pixel : int
        Test normals turned into pseudo-anomalies for the pixel metrics; 0
        skips those metrics (pixel metrics on real masks are still scored).
    notes : str
        Markdown placed under the report's title (setup, goals).
    jobs : int
        Processes that train detectors side by side (forked, so the
        generator factories need not be picklable); each gets an equal share
        of torch's threads, at least one. Each training run draws
        from its own generator, seeded with ``seed`` and the run's position
        in the table, so every ``jobs`` gives the same tables. A
        contamination run takes the seed of the same detector's clean run
        on the same generator, so the two differ only by the contaminated
        training frames.

    Returns
    -------
    TransferResult
        Rows of the image, pixel, contamination and severity tables.
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

    plan = _Plan(data, generators, n_boot=n_boot, n_pixel=n_pixel)
    _plan_main(plan, detectors, scorers or {}, supervised)
    if contamination > 0.0:
        subset = {k: generators[k] for k in contamination_generators}
        dirty, slots = _contaminate(
            data, contamination, np.random.default_rng([seed, _CONTAMINATION_DRAW])
        )
        _plan_contamination(plan, subset, detectors, dirty, slots, contamination)
    if severity_levels:
        assert severity_generator is not None and severity_detector is not None
        for level in severity_levels:
            plan.add(
                "severity",
                {"severity": level},
                detector=detectors[severity_detector],
                factory=_level_factory(severity_generator, level),
            )

    result = TransferResult()
    for task, (auroc_rows, pixel_rows, scores) in zip(
        plan.tasks, _run_plan(plan, seed, jobs), strict=True
    ):
        getattr(result, task.table).extend(auroc_rows)
        result.pixel.extend(pixel_rows)
        result.scores.append({"table": task.table, **task.keys, "scores": scores})
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        rng = np.random.default_rng(seed)
        write_report(result, data, generators, rng, notes=notes)
    return result


def _check_data(data: TransferData) -> None:
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
    pixel_generators: tuple[str, ...] = ()
    planted: np.ndarray | None = None
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


TaskRows = tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray]
"""A run's image-AUROC rows, its pixel-metric rows and its image scores."""

# Seed offset of the contamination draw, apart from the runs' positions.
_CONTAMINATION_DRAW = 1_000_003


def _plan_main(
    plan: _Plan,
    detectors: Mapping[str, Detector],
    scorers: Mapping[str, Callable[[np.ndarray], Any]],
    supervised: Detector | None,
) -> None:
    for name, scorer in scorers.items():
        keys = {"generator": "none", "detector": name}
        plan.add("image", keys, scorer=scorer)

    for det_name, detector in detectors.items():
        names = list(plan.generators) if detector.uses_pseudo else ["none"]
        for gen_name in names:
            factory = plan.generators.get(gen_name)
            pixel = (gen_name,) if factory else tuple(plan.generators)
            keys = {"generator": gen_name, "detector": det_name}
            options = {"factory": factory, "pixel_generators": pixel}
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
    slots: np.ndarray,
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
            options = {"normal": dirty, "factory": factory, "planted": slots}
            plan.add("contamination", keys, detector=detector, stream=stream, **options)


def _run_plan(plan: _Plan, seed: int, jobs: int) -> list[TaskRows]:
    """Run every task, on ``jobs`` forked processes; results in plan order."""
    global _FORKED_PLAN
    indices = range(len(plan.tasks))
    if jobs == 1 or len(plan.tasks) < 2:
        return [_run_task(plan, i, seed) for i in indices]

    _FORKED_PLAN = (plan, seed)
    jobs = min(jobs, len(plan.tasks))
    threads = max(1, torch.get_num_threads() // jobs)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, torch.set_num_threads, (threads,)) as pool:
            return pool.map(_run_forked, indices, chunksize=1)
    finally:
        _FORKED_PLAN = None


# The plan that forked workers read; set only while a pool runs.
_FORKED_PLAN: tuple[_Plan, int] | None = None


def _run_forked(index: int) -> TaskRows:
    assert _FORKED_PLAN is not None
    plan, seed = _FORKED_PLAN
    return _run_task(plan, index, seed)


def _run_task(plan: _Plan, index: int, seed: int) -> TaskRows:
    """Train and score task ``index`` with its own generator; return its rows."""
    task, data = plan.tasks[index], plan.data
    rng = np.random.default_rng([seed, index if task.stream is None else task.stream])
    start = time.perf_counter()
    scorer, (scores, maps) = _fit_and_score(task, data, rng)
    seconds = time.perf_counter() - start
    if task.detector is not None:
        logger.info("%s: %.1f s", ", ".join(map(str, task.keys.values())), seconds)

    keys = dict(task.keys)
    if task.table == "image":
        keys["seconds"] = round(seconds, 2) if task.detector is not None else 0.0
    if task.planted is not None:
        keys["contaminants_dropped"] = _dropped_share(task.detector, task.planted)
    rows = [
        {**keys, **row} for row in image_rows(scores, data, rng, n_boot=plan.n_boot)
    ]
    pixel_rows = _task_pixel_rows(plan, task, scorer, maps, rng)
    return rows, pixel_rows, scores


def _fit_and_score(
    task: _Task, data: TransferData, rng: np.random.Generator
) -> tuple[Callable[[np.ndarray], Any], ScoreResult]:
    if task.scorer is not None:
        return task.scorer, _scores(task.scorer, data.test_images)
    assert task.detector is not None and task.normal is not None
    if task.real_anomalies is not None:
        scorer = task.detector.fit(task.normal, task.real_anomalies, None, rng)
        return scorer, _scores(scorer, data.test_images)
    scorer, result, _ = _train_and_score(
        task.detector, task.normal, task.factory, data, rng
    )
    return scorer, result


def _task_pixel_rows(
    plan: _Plan,
    task: _Task,
    scorer: Callable[[np.ndarray], Any],
    maps: np.ndarray | None,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Pixel rows of a main-table training run: real masks, then pseudo tests."""
    if task.table != "image" or not task.pixel_generators or plan.n_pixel == 0:
        return []
    keys = {"trained_on": task.keys["generator"], "detector": task.keys["detector"]}
    rows = []
    real = _real_pixel_row(maps, plan.data)
    if real:
        rows.append({**keys, "pseudo_test": REAL_MASKS, **real})
    for name in task.pixel_generators:
        factory = plan.generators[name]
        row = _pixel_row(scorer, factory, plan.data, plan.n_pixel, rng)
        if row:
            rows.append({**keys, "pseudo_test": name, **row})
    return rows


def _class_name(detector: Detector) -> str:
    """Return the detector's class name in lower case, the wrapped one for Trimmed."""
    inner = detector.detector if isinstance(detector, Trimmed) else detector
    return type(inner).__name__.lower()


def _contaminate(
    data: TransferData, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace ``fraction`` of the training normals by real reserve anomalies.

    Returns the contaminated frames and the indices of the replaced ones.
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
    normal[slots] = reserve[rng.choice(len(reserve), size=n, replace=False)]
    return normal, slots


def _dropped_share(detector: Detector | None, slots: np.ndarray) -> float:
    """Return the share of planted anomalies that a Trimmed detector dropped.

    NaN for a detector that drops nothing by design.
    """
    if not isinstance(detector, Trimmed) or detector.drop_fraction == 0.0:
        return float("nan")
    return float(np.isin(slots, detector.dropped).mean()) if len(slots) else 0.0


def _level_factory(
    make: Callable[[np.ndarray, float], PseudoGenerator], level: float
) -> GeneratorFactory:
    return lambda pool: make(pool, level)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})


def _fmt(value: Any) -> Any:
    return f"{value:.4f}" if isinstance(value, float) else value


def auroc_table(rows: list[dict[str, Any]], group: str) -> str:
    """Return a Markdown table of AUROC [95 % CI], generators by detectors."""
    rows = [r for r in rows if r["group"] == group]
    gens = list(dict.fromkeys(r["generator"] for r in rows))
    dets = list(dict.fromkeys(r["detector"] for r in rows))
    cell = {(r["generator"], r["detector"]): r for r in rows}
    lines = ["| generator | " + " | ".join(dets) + " |", "|---" * (len(dets) + 1) + "|"]
    for g in gens:
        values = [_ci_cell(cell[g, d]) if (g, d) in cell else "" for d in dets]
        lines.append(f"| {g} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _ci_cell(row: dict[str, Any]) -> str:
    return f"{row['auroc']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def _pixel_note(data: TransferData) -> str:
    pseudo = (
        "Rows with a generator as the test set score pseudo-anomalies made from "
        "unseen test normals."
    )
    if data.test_masks is None:
        return f"The real test anomalies have no pixel masks. {pseudo}"
    return f"Rows marked {REAL_MASKS!r} score the real test set's masks. {pseudo}"


def _pixel_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| trained on | detector | pseudo test set | pixel AUROC | AUPRO (FPR 0.3) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trained_on']} | {r['detector']} | {r['pseudo_test']} | "
            f"{r['pixel_auroc']:.3f} | {r['aupro']:.3f} |"
        )
    return "\n".join(lines)


def _contamination_table(result: TransferResult) -> str:
    clean = {
        (r["generator"], r["detector"], r["group"]): r["auroc"] for r in result.image
    }
    lines = [
        "| generator | detector | group | clean AUROC | contaminated AUROC | change "
        "| planted anomalies dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.contamination:
        base = clean.get((r["generator"], r["detector"], r["group"]))
        change = f"{r['auroc'] - base:+.3f}" if base is not None else ""
        share = r.get("contaminants_dropped", float("nan"))
        dropped = "" if np.isnan(share) else f"{share:.0%}"
        lines.append(
            f"| {r['generator']} | {r['detector']} | {r['group']} | "
            f"{base:.3f} | {r['auroc']:.3f} | {change} | {dropped} |"
        )
    return "\n".join(lines)


def _plot_severity(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for group in dict.fromkeys(r["group"] for r in rows):
        sel = [r for r in rows if r["group"] == group]
        x = [r["severity"] for r in sel]
        ax.plot(x, [r["auroc"] for r in sel], marker="o", label=group)
        ax.fill_between(
            x, [r["low"] for r in sel], [r["high"] for r in sel], alpha=0.15
        )
    ax.set_xscale("log")
    levels = sorted({r["severity"] for r in rows})
    ax.set_xticks(levels, labels=[f"{level:g}" for level in levels])
    ax.minorticks_off()
    ax.set_xlabel("severity (factor on the simulated rise)")
    ax.set_ylabel("image AUROC on real anomalies")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_examples(
    data: TransferData,
    generators: Mapping[str, GeneratorFactory],
    rng: np.random.Generator,
    path: Path,
    n: int = 6,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    normals = data.train_normal[:n]
    reals = data.test_images[data.test_labels.astype(bool)][:n]
    rows = [("normal", normals), ("real anomaly", reals)]
    rows += [
        (name, make_pseudo(normals, f(data.train_normal), rng)[0])
        for name, f in generators.items()
    ]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.8, len(rows) * 1.25))
    for (name, images), line in zip(rows, np.atleast_2d(axes), strict=True):
        for image, ax in zip(images, line, strict=False):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        for ax in line:
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].set_ylabel(name, fontsize=6, rotation=0, ha="right")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_report(
    result: TransferResult,
    data: TransferData,
    generators: Mapping[str, GeneratorFactory],
    rng: np.random.Generator,
    *,
    notes: str = "",
) -> Path:
    """Write ``report.md``, the CSV tables and the PNG plots to ``result.out_dir``."""
    assert result.out_dir is not None
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "image_auroc.csv", result.image)
    _write_csv(out / "pixel_metrics.csv", result.pixel)
    _write_csv(out / "contamination.csv", result.contamination)
    _write_csv(out / "severity.csv", result.severity)
    _plot_examples(data, generators, rng, out / "examples.png")

    labels = data.test_labels.astype(bool)
    parts = [
        "# Transfer from pseudo-anomalies to real anomalies",
        notes,
        f"Training normals: {len(data.train_normal)}. Test set: {int((~labels).sum())} "
        f"unseen normal frames, {int(labels.sum())} real anomalies. Image AUROC with "
        "a 95 % stratified bootstrap interval.",
        "![examples](examples.png)",
        "## Image AUROC, all anomalous classes",
        auroc_table(result.image, ALL),
    ]
    for group in sorted(set(data.test_groups[labels].tolist())):
        parts += [f"## Image AUROC, {group}", auroc_table(result.image, group)]
    if result.pixel:
        parts += ["## Pixel metrics", _pixel_note(data), _pixel_table(result.pixel)]
    if result.contamination:
        parts += ["## Contamination", _contamination_table(result)]
    if result.severity:
        _plot_severity(result.severity, out / "severity.png")
        parts += ["## Severity sweep", "![severity](severity.png)"]
    (out / "report.md").write_text("\n\n".join(p for p in parts if p) + "\n")
    return out / "report.md"
