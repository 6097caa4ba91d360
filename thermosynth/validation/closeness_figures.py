"""Figures and the Markdown page of a closeness report (matplotlib, no display)."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermosynth.validation.io import FrameSet

if TYPE_CHECKING:
    from thermosynth.validation.closeness import ClosenessReport

_COLOURS = {"normal": "tab:blue", "pseudo": "tab:orange", "real": "tab:red"}

_HISTOGRAMS = (
    ("contrast_normal_sigma", "contrast / normal spread of that region"),
    ("contrast_noise", "contrast / frame noise"),
    ("area_px", "area [px]"),
    ("est_elongation", "elongation of estimated region"),
    ("nn_ratio_thermal", "NN ratio, thermal features"),
    ("nn_ratio_autoencoder", "NN ratio, autoencoder features"),
)


def draw_all(
    folder: Path,
    rows: list[dict[str, Any]],
    sets: dict[str, FrameSet],
    features: dict[str, dict[str, np.ndarray]],
    regions: dict[str, np.ndarray],
) -> list[str]:
    """Write the report's PNG figures into ``folder``; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    return [
        _draw_histograms(folder / "distributions.png", rows),
        _draw_projection(folder / "feature_pca.png", features),
        _draw_examples(folder / "examples.png", sets, regions),
    ]


def _draw_histograms(path: Path, rows: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (column, title) in zip(axes.ravel(), _HISTOGRAMS, strict=True):
        for name, colour in _COLOURS.items():
            data = np.array([r[column] for r in rows if r["set"] == name], float)
            data = data[np.isfinite(data)]
            if data.size:
                ax.hist(
                    data, bins=30, density=True, alpha=0.5, color=colour, label=name
                )
        ax.set_title(title, fontsize=10)
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _draw_projection(path: Path, features: dict[str, dict[str, np.ndarray]]) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(features), figsize=(6 * len(features), 5))
    for ax, (space, by_set) in zip(np.atleast_1d(axes), features.items(), strict=True):
        reference = by_set["normal_reference"]
        centre = reference.mean(axis=0)
        _, _, vt = np.linalg.svd(reference - centre, full_matrices=False)
        for name in ("normal_reference", "normal", "pseudo", "real"):
            if name not in by_set:
                continue
            xy = (by_set[name] - centre) @ vt[:2].T
            colour = _COLOURS.get(name, "lightgrey")
            ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.6, color=colour, label=name)
        ax.set_title(f"{space} features, first two principal axes of normal")
        ax.legend(markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _draw_examples(
    path: Path, sets: dict[str, FrameSet], regions: dict[str, np.ndarray]
) -> str:
    import matplotlib.pyplot as plt

    names = [n for n in ("normal", "pseudo", "real") if n in sets]
    n_columns = 8
    fig, axes = plt.subplots(
        len(names),
        n_columns,
        figsize=(1.3 * n_columns, 2.2 * len(names)),
        squeeze=False,
    )
    for row, name in enumerate(names):
        frames = sets[name]
        for column in range(n_columns):
            ax = axes[row, column]
            ax.axis("off")
            if column >= len(frames):
                continue
            ax.imshow(frames.values[column], cmap="inferno")
            ax.contour(
                regions[name][column], levels=[0.5], colors="cyan", linewidths=0.7
            )
            if frames.masks is not None and frames.masks[column].any():
                ax.contour(
                    frames.masks[column], levels=[0.5], colors="lime", linewidths=0.7
                )
        axes[row, 0].set_title(name, fontsize=9, loc="left")
    fig.suptitle("first frames of each set; cyan: estimated region, green: given mask")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def markdown(
    report: ClosenessReport, sets: dict[str, FrameSet], figures: list[str]
) -> str:
    """Return the report page: inputs, tables, per-set medians and figures."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Closeness of pseudo-anomalies to normal data",
        "",
        f"Written {stamp} on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}).",
        "",
        "## Inputs",
        "",
        _table(
            [
                {"set": n, "frames": len(f), "unit": f.unit, "origin": str(f.origin)}
                for n, f in sets.items()
            ]
        ),
        "",
        "## Distances between sets",
        "",
        "`normal_reference` against `normal` is the baseline: two halves of the "
        "same normal set. A C2ST accuracy of 0.5 means a classifier cannot tell "
        "the sets apart; 1 means it always can.",
        "",
        _table(report.set_distances),
        "",
        "## Per-sample figures (medians per set)",
        "",
        _table(_medians(report.per_sample)),
        "",
    ]
    if report.property_comparison:
        lines += [
            "## Pseudo against real anomalies",
            "",
            "Both sets measured on the region estimated from per-pixel normal "
            "statistics, since real frames often come without masks.",
            "",
            _table(report.property_comparison),
            "",
        ]
    lines += ["## Figures", ""] + [f"![{f}]({f})\n" for f in figures]
    return "\n".join(lines) + "\n"


def _medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per numeric column with the median of each set."""
    numeric = (float, int, np.floating, np.integer)
    columns = [k for k, v in rows[0].items() if isinstance(v, numeric)] if rows else []
    names = list(dict.fromkeys(r["set"] for r in rows))
    table = []
    for column in (c for c in columns if c != "sample_index"):
        entry: dict[str, Any] = {"figure": column}
        for name in names:
            data = np.array([r[column] for r in rows if r["set"] == name], float)
            finite = data[np.isfinite(data)]
            entry[name] = float(np.median(finite)) if finite.size else float("nan")
        table.append(entry)
    return table


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_cell(row.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)
