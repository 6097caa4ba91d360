"""Gather evidence on whether image AUROC 0.90 on PV Hot-Spot is within reach.

Works on the development split of ``pv_dev_split.py``: the reserve hotspots
against 1,500 unused No-Anomaly modules. The test frames are not read. Three
parts:

1. Level: the AUROC of statistics that see only a frame's level (mean,
   median, 10th percentile, minimum) per class, and the quantiles of the
   median per group. A hot spot of a few pixels raises a frame's maximum,
   but hardly its 10th percentile or its minimum.
2. Source: ``module_metadata.json`` gives each frame an id and a class and
   nothing else. The script reports each group's id range and the rank
   correlation between the medians of frames that follow each other in id
   order. A high correlation means that neighbouring ids share a level,
   as crops of one survey image would.
3. DRAEM, trained as ``pv_dev_split.py`` trains it (the recipe's
   pseudo-anomalies, contrast spread 2, 800 steps, ``--seeds`` seeds,
   image scores averaged over the seeds), scores the frames. A montage shows
   the 24 lowest-scored Hot-Spot frames, 24 random unused normals and the
   24 highest-scored normals, each frame min-max scaled alone. A table
   gives the AUROC ceiling if the k lowest-scored Hot-Spot frames cannot be
   distinguished from normals.

Writes benchmarks/results/pv_hotspot_evidence.md, or the file given with
``-o``, and the montage benchmarks/results/pv_hotspot_evidence.png, or the
file given with ``--montage``. git ignores the default montage, because it
shows dataset frames, which must not enter the repository.

    OMP_NUM_THREADS=1 python benchmarks/pv_hotspot_evidence.py [--seeds 3]
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _cli import add_results_file, add_seeds, recorded_command, script_parser
from pv_dev_split import _STATE as STATE
from pv_dev_split import ROOT, class_aurocs, dev_split, rise_bank, run_one
from pv_transfer import DATA, HOTSPOT_CLASSES
from scipy import stats

from thermosynth.validation.metrics import auroc
from thermosynth.validation.transfer_data import load_classes

OUT = ROOT / "benchmarks" / "results" / "pv_hotspot_evidence.md"
MONTAGE = ROOT / "benchmarks" / "results" / "pv_hotspot_evidence.png"
TARGET = "Hot-Spot"
GROUPS = ("normal", *HOTSPOT_CLASSES)
CLASSES = ("all", *HOTSPOT_CLASSES)
N_SHOWN = 24  # frames per montage panel
LEVELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda frames: frames.mean(axis=(1, 2)),
    "median": lambda frames: np.median(frames, axis=(1, 2)),
    "10th percentile": lambda frames: np.percentile(frames, 10, axis=(1, 2)),
    "minimum": lambda frames: frames.min(axis=(1, 2)),
    "maximum (not level-only, for reference)": lambda frames: frames.max(axis=(1, 2)),
}
"""Per-frame statistics [8-bit levels] of frames (N, H, W)."""


def frame_ids(images: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Return each development frame's key in ``module_metadata.json``.

    A frame is found by its bytes among the files of its own class. A frame
    whose bytes occur in several files of its class gets the smallest key.
    """
    meta = json.loads((DATA / "module_metadata.json").read_text())
    classes = load_classes(DATA)
    ids = np.full(len(images), -1)
    for group in GROUPS:
        name = "No-Anomaly" if group == "normal" else group
        # load_classes returns each class's frames in the order of their keys.
        keys = sorted(int(k) for k, v in meta.items() if v["anomaly_class"] == name)
        pairs = zip(keys[::-1], classes[name][::-1], strict=True)
        by_bytes = {frame.tobytes(): key for key, frame in pairs}
        rows = np.flatnonzero(groups == group)
        ids[rows] = [by_bytes[images[row].tobytes()] for row in rows]
    return ids


def level_rows(frames: np.ndarray, groups: np.ndarray) -> list[str]:
    """Format each level statistic's AUROC per class as table rows."""
    rows = []
    for name, statistic in LEVELS.items():
        aurocs = class_aurocs(statistic(frames), groups)
        rows.append(f"| {name} | " + " | ".join(f"{aurocs[c]:.3f}" for c in CLASSES))
    return [row + " |" for row in rows]


def source_rows(medians: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> list[str]:
    """Format each group's median quantiles, ids and neighbour correlation."""
    rows = []
    for group in GROUPS:
        own = groups == group
        quantiles = np.percentile(medians[own], [10, 25, 50, 75, 90])
        order = np.argsort(ids[own])
        levels = medians[own][order]
        rho = stats.spearmanr(levels[:-1], levels[1:]).statistic
        gap = np.median(np.diff(ids[own][order]))
        rows.append(
            f"| {group} | {own.sum()} | {' / '.join(f'{q:.0f}' for q in quantiles)} "
            f"| {ids[own].min()}-{ids[own].max()} | {gap:.0f} | {rho:+.2f} |"
        )
    return rows


def draem_scores(seeds: int, jobs: int) -> tuple[np.ndarray, list[float]]:
    """Train DRAEM as pv_dev_split.py does, for ``seeds`` training seeds.

    ``STATE`` must hold the split. Returns the seeds' image scores averaged
    frame by frame, and each seed's Hot-Spot AUROC.
    """
    STATE["banks"] = {"recipe": rise_bank("recipe", n_scenarios=64, seed=0)}
    STATE["steps"] = 800
    spec = ("thermosynth", "recipe", 2.0)
    tasks = [("recipe, spread 2", spec, "draem", seed) for seed in range(seeds)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        runs = pool.map(run_one, tasks, chunksize=1)
    return np.mean([r["scores"] for r in runs], axis=0), [r[TARGET] for r in runs]


def ceiling_rows(scores: np.ndarray, groups: np.ndarray) -> list[str]:
    """Format the Hot-Spot AUROC ceiling when k frames look like normals.

    Frames that cannot be distinguished from normals score like normals
    under any detector, so each adds 0.5 to the AUROC's mean over Hot-Spot
    frames. Each other frame adds at most 1, so the ceiling is
    1 - k / (2 n). The last column is DRAEM's AUROC with the k lowest-scored
    frames left out, which is optimistic, because it drops frames by score.
    """
    normal, hot = groups == "normal", np.flatnonzero(groups == TARGET)
    n = len(hot)
    lowest = hot[np.argsort(scores[hot])]
    rows = []
    for k in range(0, N_SHOWN + 1, 3):
        keep = normal.copy()
        keep[lowest[k:]] = True
        rest = auroc(groups[keep] == TARGET, scores[keep])
        rows.append(f"| {k} | {1 - k / (2 * n):.3f} | {rest:.3f} |")
    return rows


def montage_panels(
    scores: np.ndarray, groups: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Pick the rows of the three montage panels, in the order they are drawn."""
    hot = np.flatnonzero(groups == TARGET)
    normal = np.flatnonzero(groups == "normal")
    by_score = normal[np.argsort(scores[normal])]
    return {
        f"{N_SHOWN} lowest-scored reserve Hot-Spot frames": hot[
            np.argsort(scores[hot])[:N_SHOWN]
        ],
        f"{N_SHOWN} random unused normals": np.sort(
            rng.choice(normal, N_SHOWN, replace=False)
        ),
        f"{N_SHOWN} highest-scored unused normals": by_score[::-1][:N_SHOWN],
    }


def draw_montage(
    path: Path, frames: np.ndarray, labels: list[str], panels: dict
) -> None:
    """Draw each panel's frames, min-max scaled alone, titled by ``labels``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 12
    rows_per_panel = -(-N_SHOWN // columns)
    figure, axes = plt.subplots(
        rows_per_panel * len(panels), columns, figsize=(columns * 1.3, 9.6)
    )
    for p, (title, rows) in enumerate(panels.items()):
        for i, row in enumerate(rows):
            ax = axes[p * rows_per_panel + i // columns, i % columns]
            ax.imshow(frames[row], cmap="inferno", interpolation="nearest")
            ax.set_title(labels[row], fontsize=6)
        axes[p * rows_per_panel, 0].set_ylabel(title, fontsize=7, loc="top")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = script_parser(__doc__)
    add_results_file(parser, OUT)
    add_seeds(parser, "DRAEM training seeds")
    parser.add_argument(
        "--montage",
        type=Path,
        default=MONTAGE,
        metavar="FILE",
        help="PNG file to draw the montage to (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="training processes (default 2)"
    )
    args = parser.parse_args()
    command = recorded_command(__file__, args.output, OUT)
    start = time.perf_counter()

    split = STATE["split"] = dev_split(0, n_train=2500, n_test=1500)
    groups, frames = split["groups"], split["images"].astype(np.float32)
    ids = frame_ids(split["images"], groups)
    medians = LEVELS["median"](frames)

    scores, per_seed = draem_scores(args.seeds, args.jobs)
    labels = [
        f"#{key} s={score:.3f}\nmedian {level:.0f}"
        for key, score, level in zip(ids, scores, medians, strict=True)
    ]
    panels = montage_panels(scores, groups, np.random.default_rng(82))
    draw_montage(args.montage, frames, labels, panels)

    lowest = next(iter(panels.values()))
    text = page(
        command,
        time.perf_counter() - start,
        {
            "levels": level_rows(frames, groups),
            "sources": source_rows(medians, ids, groups),
            "ceiling": ceiling_rows(scores, groups),
        },
        per_seed,
        class_aurocs(scores, groups)[TARGET],
        ids[lowest],
    )
    args.output.write_text(text)
    print(text)


def page(
    command: str,
    elapsed: float,
    rows: dict[str, list[str]],
    per_seed: list[float],
    averaged: float,
    lowest_ids: np.ndarray,
) -> str:
    """Return the results page."""
    seeds = ", ".join(f"{value:.3f}" for value in per_seed)
    lines = [
        "# Is AUROC 0.90 on Hot-Spot within reach? (development split)",
        "",
        f"`{command}`, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.processor() or platform.machine()}, {elapsed:.0f} s. "
        "Reserve hotspots against 1,500 unused No-Anomaly modules; the test "
        "frames are not read.",
        "",
        "## Level-only statistics as the anomaly score (image AUROC)",
        "",
        "| statistic [8-bit levels] | " + " | ".join(CLASSES) + " |",
        "|---" * (len(CLASSES) + 1) + "|",
        *rows["levels"],
        "",
        "## Frame median and metadata id per group",
        "",
        "Neighbour correlation: Spearman's rho between the medians of frames "
        "that follow each other in id order. Its standard error under no "
        "order is about 1 / sqrt(n): 0.026 for 1,500 frames, 0.11 for 88.",
        "",
        "| group | frames | median: 10th / 25th / 50th / 75th / 90th percentile "
        "| ids | median id gap | neighbour correlation |",
        "|---|---|---|---|---|---|",
        *rows["sources"],
        "",
        "## DRAEM and the ceiling if k Hot-Spot frames look normal",
        "",
        f"DRAEM Hot-Spot AUROC per seed: {seeds}; seeds' scores averaged: "
        f"{averaged:.3f}. The ceiling is 1 - k / (2 n), n = 88: the k frames "
        "score as normals (AUROC 0.5), every other frame above every normal.",
        "",
        "| k | ceiling | DRAEM without the k lowest-scored (optimistic) |",
        "|---|---|---|",
        *rows["ceiling"],
        "",
        f"Ids of the {N_SHOWN} lowest-scored Hot-Spot frames, lowest first: "
        + ", ".join(str(key) for key in lowest_ids)
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
