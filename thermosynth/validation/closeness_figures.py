"""Figures and the Markdown page of a closeness report (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermosynth.frames.frame import rise_unit
from thermosynth.validation.closeness import RECONSTRUCTION_UNIT
from thermosynth.validation.io import FrameSet
from thermosynth.validation.normal_model import camera_counts
from thermosynth.validation.report_header import command_line_text, written_line

if TYPE_CHECKING:
    from thermosynth.validation.closeness import ClosenessReport
    from thermosynth.validation.frame_grid import FrameGrid

_COLOURS = {"normal": "tab:blue", "pseudo": "tab:orange", "real": "tab:red"}

# Region figures come from the estimated region of every set, because the
# given masks of pseudo frames and the estimated regions of normal frames are
# two ways of measuring.
_HISTOGRAMS = (
    ("est_contrast", "contrast of the estimated region [{unit}]"),
    ("est_contrast_noise", "estimated-region contrast / frame noise [-]"),
    (
        "est_contrast_normal_sigma",
        "estimated-region contrast / normal spread of that region [-]",
    ),
    ("est_area_px", "area of the estimated region [px]"),
    ("est_elongation", "elongation of the estimated region [-]"),
    ("peak_z", "peak per-pixel z-score [-]"),
    ("nn_ratio_thermal", "nearest-neighbour ratio, thermal features [-]"),
    ("nn_ratio_autoencoder", "nearest-neighbour ratio, autoencoder features [-]"),
)

_UNITS = {
    "noise_sigma": "{unit}",
    "area_px": "px",
    "contrast": "{unit}",
    "est_area_px": "px",
    "est_contrast": "{unit}",
    "reconstruction_error": RECONSTRUCTION_UNIT,
}
"""Units of the per-sample figures; the others are ratios without a unit."""

_READING = (
    "How to read the tables: `mmd2` is the squared maximum mean discrepancy "
    "between the two sets' features (0 for identical distributions) and "
    "`mmd_p_value` its permutation p-value. `c2st_accuracy` is the "
    "cross-validated accuracy of a classifier told to separate the sets "
    "(0.5: it cannot; 1: it always can), with its binomial p-value. "
    "`frechet` is the Frechet distance between Gaussians fitted to the two "
    "sets. Per sample, `contrast` is the region's mean minus a ring around "
    "it, `contrast_noise` that contrast over the frame's noise, "
    "`contrast_normal_sigma` its deviation from what normal frames show in "
    "the same region, and `nn_ratio_*` the distance to the nearest normal "
    "frame over the normal frames' own nearest-neighbour distance (about 1 "
    "for a normal frame). `est_*` are the same figures on the region "
    "estimated from per-pixel normal statistics; the histograms and the "
    "pseudo-against-real table use them. docs/validation.md in the "
    "thermosynth repository defines each column in full."
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
    unit = _unit_of(sets)
    return [
        _draw_histograms(folder / "distributions.png", rows, unit),
        _draw_projection(folder / "feature_pca.png", features),
        _draw_examples(folder / "examples.png", sets, regions),
    ]


def _draw_histograms(path: Path, rows: list[dict[str, Any]], unit: str) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
    for ax, (column, label) in zip(axes.ravel(), _HISTOGRAMS, strict=True):
        by_set = {name: _finite_column(rows, column, name) for name in _COLOURS}
        pooled = np.concatenate(list(by_set.values()))
        # One set of bins per panel, so that the sets' bars can be compared.
        bins = np.histogram_bin_edges(pooled, bins=30) if pooled.size else 30
        for name, data in by_set.items():
            if data.size:
                ax.hist(
                    data,
                    bins=bins,
                    density=True,
                    alpha=0.5,
                    color=_COLOURS[name],
                    label=name,
                )
        ax.set_xlabel(label.format(unit=unit), fontsize=9)
        ax.set_ylabel("density [1 / x unit]", fontsize=9)
    # The first panel with data gets the legend, since a panel of a figure
    # that is NaN in every set, such as est_contrast without noise, has none.
    drawn = [ax for ax in axes.ravel() if ax.get_legend_handles_labels()[0]]
    if drawn:
        drawn[0].legend()
    fig.suptitle("per-sample closeness, by set")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _finite_column(rows: list[dict[str, Any]], column: str, name: str) -> np.ndarray:
    """Return the finite values of one column for the rows of one set."""
    data = np.array([r[column] for r in rows if r["set"] == name], float)
    return data[np.isfinite(data)]


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
        ax.set_xlabel("first principal axis [standardised feature units]")
        ax.set_ylabel("second principal axis [standardised feature units]")
        ax.legend(markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _draw_examples(
    path: Path, sets: dict[str, FrameSet], regions: dict[str, np.ndarray]
) -> str:
    examples_figure(sets, regions).save(path)
    return path.name


def examples_figure(
    sets: dict[str, FrameSet], regions: dict[str, np.ndarray], n_columns: int = 8
) -> FrameGrid:
    """Draw the first ``n_columns`` frames of each set with their regions outlined.

    Each row is one set, each frame stretched to its own range, with the
    estimated region in cyan and a given mask in green.
    """
    from thermosynth.validation.frame_grid import frame_grid

    names: list[str] = [n for n in ("normal", "pseudo", "real") if n in sets]
    grid = frame_grid(
        len(names),
        n_columns,
        sets[names[0]].values.shape[1:],
        title="first frames of each set, each frame's colours stretched to its "
        "own range (inferno: dark cold, bright warm); cyan: estimated region, "
        "green: given mask",
    )
    for row, name in enumerate(names):
        frames = sets[name]
        n_drawn = min(n_columns, len(frames))
        for column in range(n_drawn):
            grid.draw(row, column, frames.values[column], cmap="inferno")
            grid.outline(row, column, regions[name][column], "cyan")
            if frames.masks is not None:
                grid.outline(row, column, frames.masks[column], "lime")
        grid.hide_empty(row, n_drawn)
    grid.label_rows(names)
    return grid


def markdown(
    report: ClosenessReport, sets: dict[str, FrameSet], figures: list[str]
) -> str:
    """Return the report page: inputs, tables, per-set medians and figures."""
    command = command_line_text(report.command_line)
    lines = [
        "# Closeness of pseudo-anomalies to normal data",
        "",
        written_line(),
        "",
        *([command, ""] if command else []),
        "## Inputs",
        "",
        _table(_inputs(sets)),
        "",
        *_camera_sentence(sets),
        *[f"Note: {note}.\n" for note in report.notes],
        "## Distances between sets",
        "",
        "`normal_reference` against `normal` is the baseline: two halves of the "
        "same normal set. A C2ST accuracy of 0.5 means a classifier cannot tell "
        "the sets apart; 1 means it always can. Every feature is standardised "
        "by the mean and standard deviation of `normal_reference`, so `mmd2` "
        "and `frechet` have no unit. With a hundred or so frames per set the "
        "p-values are coarse, and the baseline row shows how far apart two "
        "halves of one normal set already come out. `n_a` and `n_b` count the "
        "frames of each set, which MMD and Frechet use in full. C2ST draws "
        "`c2st_n_per_set` frames from each set, the size of the smaller one, "
        "so its accuracy is over twice that many frames.",
        "",
        _READING,
        "",
        _table(report.set_distances),
        "",
        "## Per-sample figures (medians per set)",
        "",
        _region_sentence(report.per_sample),
        "",
        "Each median is over the finite values of a set. Where some frames of "
        "a set have NaN (no region found, a mask that leaves no ring, or no "
        "noise to divide by), the cell says over how many, as "
        '"(n = 112 of 150)"; other cells cover every frame of the set.',
        "",
        _table(_medians(report.per_sample, _unit_of(sets))),
        "",
    ]
    if report.property_comparison:
        lines += [
            "## Pseudo against real anomalies",
            "",
            "Both sets measured on the region estimated from per-pixel normal "
            "statistics, since real frames often come without masks. "
            "`wasserstein` is the earth mover's distance between the two "
            "distributions, in the property's own unit (px for areas, the "
            "frames' unit for contrasts, none for ratios).",
            "",
            _table(report.property_comparison),
            "",
        ]
    lines += ["## Figures", ""] + [f"![{f}]({f})\n" for f in figures]
    return "\n".join(lines) + "\n"


def _inputs(sets: dict[str, FrameSet]) -> list[dict[str, Any]]:
    """Return one row per set: frames, unit, origin and frames per camera."""
    return [
        {
            "set": name,
            "frames": len(frames),
            "unit": frames.unit,
            "origin": str(frames.origin),
            "cameras": camera_counts(frames),
        }
        for name, frames in sets.items()
    ]


def _camera_sentence(sets: dict[str, FrameSet]) -> list[str]:
    """Say which normal model per-pixel figures use, where cameras are known."""
    if all(frames.cameras is None for frames in sets.values()):
        return []
    return [
        "Per-pixel figures (`peak_z`, the estimated regions and every "
        "`contrast_normal_sigma`) compare a frame with the reference normal "
        "frames of its camera, and a frame of unknown camera, or of one with "
        "fewer than 2 reference frames, with all reference frames.",
        "",
    ]


def _region_sentence(rows: list[dict[str, Any]]) -> str:
    """Say, per set, whether the region figures without `est_` used given masks.

    A frame uses its given mask where it has a non-empty one, and otherwise
    the region estimated from per-pixel normal statistics (``mask_source``).
    """
    given_sets, estimated_sets, parts = [], [], []
    for name in dict.fromkeys(r["set"] for r in rows):
        sources = [r["mask_source"] for r in rows if r["set"] == name]
        given = sources.count("given")
        if given == len(sources):
            given_sets.append(f"`{name}`")
        elif given == 0:
            estimated_sets.append(f"`{name}`")
        else:
            parts.append(
                f"the given masks for {given} of {len(sources)} `{name}` frames "
                f"(the estimated region for the other {len(sources) - given})"
            )
    if given_sets:
        parts.insert(0, f"the given masks for {_and(given_sets)} frames")
    if estimated_sets:
        parts.append(f"the estimated region for {_and(estimated_sets)} frames")
    used = f" Here they use {_and(parts)}." if parts else ""
    return (
        "`area_px`, `contrast`, `contrast_noise` and `contrast_normal_sigma` "
        "use a frame's given mask where it has a non-empty one, and otherwise "
        f"the region estimated from per-pixel normal statistics.{used} The "
        "`est_*` rows use the estimated region for every set, so compare sets "
        "by those."
    )


def _and(items: list[str]) -> str:
    """Join ``items`` as "a", "a and b" or "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _unit_of(sets: dict[str, FrameSet]) -> str:
    """Return the unit of a difference of the frames' values (K for C frames).

    Sets in different units give each set's unit, such as "normal: level,
    pseudo: K".
    """
    units = {name: rise_unit(frames.unit) for name, frames in sets.items()}
    if len(set(units.values())) <= 1:
        return next(iter(units.values()), "")
    return ", ".join(f"{name}: {unit}" for name, unit in units.items())


def _medians(rows: list[dict[str, Any]], unit: str) -> list[dict[str, Any]]:
    """Return one row per numeric column with its unit and the median of each set.

    A median over fewer than all of a set's frames, because the others are
    NaN, is a string such as "15.7 (n = 112 of 150)".
    """
    numeric = (float, int, np.floating, np.integer)
    columns = [k for k, v in rows[0].items() if isinstance(v, numeric)] if rows else []
    names = list(dict.fromkeys(r["set"] for r in rows))
    table = []
    for column in (c for c in columns if c != "sample_index"):
        entry: dict[str, Any] = {
            "figure": column,
            "unit": _UNITS.get(column, "-").format(unit=unit),
        }
        for name in names:
            data = np.array([r[column] for r in rows if r["set"] == name], float)
            finite = data[np.isfinite(data)]
            median = float(np.median(finite)) if finite.size else float("nan")
            entry[name] = median
            if finite.size < data.size:
                entry[name] = f"{_cell(median)} (n = {finite.size} of {data.size})"
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
