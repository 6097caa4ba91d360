"""The report folder of a transfer run: report.md, CSV tables and PNG plots.

:func:`write_report` is called by
:func:`thermosynth.validation.transfer.transfer_report` once every detector
has been trained and scored; it reads only the finished result.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermosynth.validation.report_header import written_line
from thermosynth.validation.transfer import (
    ALL,
    MIN_CI_ANOMALIES,
    REAL_MASKS,
    GeneratorFactory,
    TransferData,
    TransferResult,
    make_pseudo,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from thermosynth.validation.frame_grid import FrameGrid


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
    if np.isnan(row["low"]):
        return f"{row['auroc']:.3f} [n/a, n < {MIN_CI_ANOMALIES}]"
    return f"{row['auroc']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def _test_set_part(data: TransferData) -> str:
    """Return the sentence and table of training and test frames per class."""
    labels = data.test_labels.astype(bool)
    lines = [
        f"Training normals: {len(data.train_normal)}. Test frames per class:",
        "",
        "| class | test frames |",
        "|---|---|",
        f"| normal | {int((~labels).sum())} |",
    ]
    for group in sorted(set(data.test_groups[labels].tolist())):
        count = int((labels & (data.test_groups == group)).sum())
        lines.append(f"| {group} | {count} |")
    return "\n".join(lines)


def _image_note(result: TransferResult) -> str:
    """Define image AUROC, its interval and the rows that are not generators."""
    resamples = f"{result.n_boot} " if result.n_boot else ""
    lines = [
        "Image AUROC is the probability that a real anomalous test frame scores "
        "higher than a normal test frame, ties counting one half: 0.5 is chance "
        "and 1 a perfect ranking. The brackets give its 95 % interval, the 2.5th "
        f"and 97.5th percentiles over {resamples}bootstrap resamples of the test "
        "frames, with normal and anomalous frames resampled separately. The "
        "interval covers the resampling of the test set only, not training "
        "noise: a detector trained again with another seed can score outside "
        "it. A class "
        f"with fewer than {MIN_CI_ANOMALIES} anomalous test frames gets no "
        f"interval (n/a, n < {MIN_CI_ANOMALIES}), because with one anomaly "
        "every resample contains that same frame and the interval would show only "
        "the spread of the normal frames.",
        "",
        "Each row names the generator whose pseudo-anomalies the detector trained "
        "on. In the row `none` are the detectors that trained on normal frames "
        "alone (one-class) and the fixed scorers, which need no training.",
    ]
    detectors = {r["detector"] for r in result.image}
    if "max_minus_median" in detectors:
        lines.append(
            "`max_minus_median` is such a fixed scorer: a frame's highest level "
            "minus its median level."
        )
    if any(r["generator"] == "real (supervised)" for r in result.image):
        lines.append(
            "`real (supervised)` is a detector trained on the real reserve "
            "anomalies, which are disjoint from the test set. It is a reference "
            "that sees labelled real anomalies, which no other row does."
        )
    return "\n".join(lines)


def _class_note(data: TransferData, group: str) -> str:
    labels = data.test_labels.astype(bool)
    count = int((labels & (data.test_groups == group)).sum())
    return (
        f"{count} {group} test frames against all {int((~labels).sum())} normal ones."
    )


def _pixel_note(result: TransferResult, data: TransferData) -> str:
    """Define pixel AUROC, AUPRO and the test sets of the pixel rows."""
    n_normal = int((~data.test_labels.astype(bool)).sum())
    lines = [
        "Pixel AUROC is the probability that a pixel inside a mask has a higher "
        "anomaly-map value than a pixel outside, over every pixel of the scored "
        "frames. AUPRO weighs every connected masked region equally, so a small "
        "hot spot counts as much as a large one. At each threshold it takes the "
        "mean share of each region's pixels above the threshold, integrates "
        "that over the false positive rate of the pixels outside the masks from "
        "0 to 0.3 and divides by 0.3, so 1 is perfect. Detectors and scorers "
        "without an anomaly map have no row.",
        "",
        f"A generator's name as the test set means {min(result.n_pixel, n_normal)} "
        "unseen test normals, each made into a pseudo-anomaly by that generator "
        "and scored against its mask. A detector trained on a generator is "
        "scored on that generator's pseudo-anomalies; a detector trained on "
        "normal frames alone and a fixed scorer, on every generator's.",
    ]
    if data.test_masks is None:
        lines.append("The real test anomalies have no pixel masks.")
    else:
        lines.append(
            f"`{REAL_MASKS}` is the real test set with its ground-truth masks; "
            "its normal frames count as all-normal pixels."
        )
    return "\n".join(lines)


def _pixel_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| trained on | detector | test set | pixel AUROC | AUPRO (FPR 0.3) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trained_on']} | {r['detector']} | {r['test_set']} | "
            f"{r['pixel_auroc']:.3f} | {r['aupro']:.3f} |"
        )
    return "\n".join(lines)


def _contamination_note(result: TransferResult) -> str:
    fraction = result.contamination[0]["contamination"]
    return (
        f"{fraction:.0%} of the training normals were replaced by real reserve "
        "anomalies, without labels, and each detector below trained again with "
        "the seed of its clean run. Clean AUROC is the image AUROC of the main "
        "tables, contaminated AUROC that of the rerun, and the change is "
        "contaminated minus clean. Planted anomalies dropped is the share of "
        "the replaced frames that trimming removed before the final training, "
        "on a class's row the share of that class's planted anomalies; it is "
        "empty for detectors that do not trim."
    )


def _contamination_table(result: TransferResult) -> str:
    clean = {(r["generator"], r["detector"], r["group"]): r for r in result.image}
    lines = [
        "| generator | detector | group | clean AUROC [95 % CI] | contaminated "
        "AUROC [95 % CI] | change | planted anomalies dropped |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.contamination:
        base = clean.get((r["generator"], r["detector"], r["group"]))
        before = "" if base is None else _ci_cell(base)
        change = "" if base is None else _signed(r["auroc"] - base["auroc"])
        share = r.get("contaminants_dropped", float("nan"))
        dropped = "" if np.isnan(share) else f"{share:.0%}"
        lines.append(
            f"| {r['generator']} | {r['detector']} | {r['group']} | "
            f"{before} | {_ci_cell(r)} | {change} | {dropped} |"
        )
    return "\n".join(lines)


def _paired_note(result: TransferResult) -> str:
    reference = result.paired[0]["reference"]
    return (
        f"Image AUROC of the detector trained on {reference} minus that of the "
        "same detector trained on each other generator. The brackets give the "
        f"95 % interval over {result.n_boot} bootstrap resamples of the test "
        "frames, both detectors scored on the same resample, so the frames that "
        "are hard for both do not widen it. It covers test-set resampling only, "
        "not training noise. paired_differences.csv holds the same rows."
    )


def _paired_table(rows: list[dict[str, Any]]) -> str:
    groups = list(dict.fromkeys(r["group"] for r in rows))
    lines = [
        "| detector | generator | " + " | ".join(groups) + " |",
        "|---|---|" + "---|" * len(groups),
    ]
    cells = {(r["detector"], r["generator"], r["group"]): r for r in rows}
    pairs = dict.fromkeys((r["detector"], r["generator"]) for r in rows)
    for detector, generator in pairs:
        values = [_difference_cell(cells[detector, generator, g]) for g in groups]
        lines.append(f"| {detector} | {generator} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _difference_cell(row: dict[str, Any]) -> str:
    if np.isnan(row["low"]):
        return _signed(row["difference"])
    return (
        f"{_signed(row['difference'])} [{_signed(row['low'])}, {_signed(row['high'])}]"
    )


def _signed(value: float) -> str:
    """Format a change with its sign to 3 decimals; one that rounds to 0 as 0.000."""
    text = f"{value:+.3f}"
    return "0.000" if float(text) == 0.0 else text


def _severity_note(result: TransferResult) -> str:
    """Say what the sweep varied, how closeness is measured and which seeds it used."""
    first = result.severity[0]
    detector, generator = first["detector"], first["generator"]
    text = (
        f"The severity sweep trains `{detector}` on the pseudo-anomalies of "
        f"`{generator}` with the simulated rise multiplied by each factor. "
        "Closeness is the median, over the pseudo-anomalies that a level trained "
        "on, of their contrast in units of their frame's noise sigma: the mean "
        "level inside the mask minus the mean of a 2-pixel ring around it, "
        "divided by the noise sigma inside the recipe's region of interest "
        "(`contrast_noise` of `thermosynth validate closeness`). Lower is "
        "closer to normal data; the quartiles are in parentheses. A "
        "pseudo-anomaly is left out when its mask is empty or leaves no ring "
        "(the mask and its 2-pixel surroundings cover the whole frame), and "
        "`closeness_frames` in severity.csv counts the measured ones. "
    )
    if result.severity_reuses_main:
        text += (
            f"Every level trains with the seed of the main table's `{detector}` "
            f"run on `{generator}`, so the levels differ only by the factor."
        )
        swept_one = any(r["severity"] == 1.0 for r in result.severity)
        return text + (" Factor 1 is that run itself." if swept_one else "")
    return text + (
        "Each level trains its own network with its own seed, so factor 1 can "
        "differ from the main table's run of the same detector and generator "
        "by training noise alone."
    )


def _severity_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| factor | closeness median (quartiles) [noise sigma] "
        "| image AUROC, all classes [95 % CI] |",
        "|---|---|---|",
    ]
    for r in rows:
        if r["group"] != ALL:
            continue
        closeness = (
            f"{r['contrast_noise_median']:.2f} "
            f"({r['contrast_noise_q25']:.2f} to {r['contrast_noise_q75']:.2f})"
        )
        lines.append(f"| {r['severity']:g} | {closeness} | {_ci_cell(r)} |")
    return "\n".join(lines)


def _plot_severity(rows: list[dict[str, Any]], path: Path) -> None:
    """Plot image AUROC against the median closeness of each level."""
    _severity_figure(rows).savefig(path, dpi=120)


_BAND_OPACITY = 0.4
"""Opacity [-] where every interval band of the severity plot overlaps.

Each band's alpha is set so that all bands stacked together cover at most
this share of the background, and overlapping bands do not merge into one
opaque colour.
"""


def _severity_figure(rows: list[dict[str, Any]]) -> Figure:
    """Draw AUROC over all classes, and per class where there are two or more.

    With one class its rows equal the "all" rows, so it gets no line of its own.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    classes = [g for g in dict.fromkeys(r["group"] for r in rows) if g != ALL]
    lines = [(ALL, "all classes", "black")]
    if len(classes) == 1:
        lines = [(ALL, f"all classes ({classes[0]} only)", "black")]
    if len(classes) >= 2:
        lines += [(g, g, f"C{i % 10}") for i, g in enumerate(classes)]
    alpha = min(0.2, 1.0 - (1.0 - _BAND_OPACITY) ** (1.0 / len(lines)))
    for group, label, colour in lines:
        selected = [r for r in rows if r["group"] == group]
        _severity_line(ax, selected, label, colour, alpha=alpha, main=group == ALL)
    _label_factors(ax, [r for r in rows if r["group"] == ALL])
    ax.margins(x=0.12)
    ax.set_ylim(top=min(ax.get_ylim()[1], 1.005))
    ax.set_xlabel("median contrast of the pseudo-anomalies [noise σ]", fontsize=10)
    ax.set_ylabel("image AUROC on real anomalies [-]", fontsize=10)
    levels = len({r["severity"] for r in rows})
    ax.set_title(
        f"{rows[0]['detector']} trained on {rows[0]['generator']} "
        "pseudo-anomalies,\nrise multiplied by each factor; "
        f"{'bands' if levels > 1 else 'bars'}: 95 % CI",
        fontsize=10,
    )
    fig.legend(loc="outside lower center", ncols=min(len(lines), 3), fontsize=10)
    return fig


def _severity_line(
    ax: Axes,
    rows: list[dict[str, Any]],
    label: str,
    colour: str,
    *,
    alpha: float,
    main: bool,
) -> None:
    """Draw one group's AUROC line and its interval, as a band or at one level a bar.

    The main line, over all classes, is thick with hollow rings on top, so a
    class whose point coincides with it still shows inside the ring.
    """
    x = [r["contrast_noise_median"] for r in rows]
    auroc = [r["auroc"] for r in rows]
    low, high = [r["low"] for r in rows], [r["high"] for r in rows]
    if len(rows) == 1:
        # A band over one level has no width, so the interval is a bar. A
        # bootstrap interval can leave out its own AUROC, so no error bars.
        ax.vlines(x, low, high, colors=colour, linewidth=1.5)
    else:
        ax.fill_between(x, low, high, color=colour, alpha=alpha, linewidth=0)
    style: dict[str, Any] = {"marker": "o", "color": colour, "label": label}
    if main:
        style.update(linewidth=2.5, markersize=10, markerfacecolor="none", zorder=3)
    else:
        style.update(linewidth=1.5, markersize=6, zorder=2)
    ax.plot(x, auroc, **style)


def _label_factors(ax: Axes, rows: list[dict[str, Any]]) -> None:
    """Write each level's factor, such as "×0.5", beside its point."""
    for r in rows:
        ax.annotate(
            f"×{r['severity']:g}",
            (r["contrast_noise_median"], r["auroc"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=10,
            bbox={
                "boxstyle": "round,pad=0.1",
                "fc": "white",
                "ec": "none",
                "alpha": 0.8,
            },
        )


_PSEUDO_MASK_COLOUR = "cyan"
_REAL_MASK_COLOUR = "yellow"

_ExampleRow = tuple[str, np.ndarray, np.ndarray | None, str]
"""Row name, uint8 (n, H, W) frames, boolean (n, H, W) masks or None, mask colour."""


def _example_rows(
    data: TransferData,
    generators: Mapping[str, GeneratorFactory],
    rng: np.random.Generator,
    n: int = 6,
) -> list[_ExampleRow]:
    """Return the rows of ``examples.png``: normal, real and each generator's frames.

    The real anomalies carry their ground-truth masks where ``data`` has
    them, and each generator's row the masks of its pseudo-anomalies.
    """
    normals = data.train_normal[:n]
    anomalous = data.test_labels.astype(bool)
    reals = data.test_images[anomalous][:n]
    real_masks = None if data.test_masks is None else data.test_masks[anomalous][:n]
    rows: list[_ExampleRow] = [
        ("normal", normals, None, _PSEUDO_MASK_COLOUR),
        ("real anomaly", reals, real_masks, _REAL_MASK_COLOUR),
    ]
    for name, factory in generators.items():
        pseudo, pseudo_masks = make_pseudo(normals, factory(data.train_normal), rng)
        rows.append((name, pseudo, pseudo_masks, _PSEUDO_MASK_COLOUR))
    return rows


def _plot_examples(
    data: TransferData,
    generators: Mapping[str, GeneratorFactory],
    rng: np.random.Generator,
    path: Path,
    n: int = 6,
) -> None:
    """Draw normal, real and each generator's frames with their masks outlined."""
    rows = _example_rows(data, generators, rng, n)
    _examples_figure(rows, n, real_masks=data.test_masks is not None).save(path)


def _examples_figure(
    rows: list[_ExampleRow], n_columns: int, *, real_masks: bool
) -> FrameGrid:
    """Draw the example rows, stored levels 0..255 in grey, masks outlined."""
    from thermosynth.validation.frame_grid import frame_grid

    title = f"{_PSEUDO_MASK_COLOUR}: pseudo-anomaly mask"
    if real_masks:
        title += f"; {_REAL_MASK_COLOUR}: ground-truth mask of the real anomaly"
    shape = rows[0][1].shape[1:]
    grid = frame_grid(len(rows), n_columns, shape, title=title, colorbar=True)
    drawn = None
    for row, (_, images, masks, colour) in enumerate(rows):
        n_drawn = min(n_columns, len(images))
        for column in range(n_drawn):
            image = images[column]
            drawn = grid.draw(row, column, image, cmap="gray", vmin=0, vmax=255)
            if masks is not None:
                grid.outline(row, column, masks[column], colour)
        grid.hide_empty(row, n_drawn)
    grid.label_rows([row[0] for row in rows])
    if drawn is not None:
        grid.add_colorbar(drawn, "stored level")
    return grid


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
    _write_csv(out / "paired_differences.csv", result.paired)
    _plot_examples(data, generators, rng, out / "examples.png")

    parts = [
        "# Transfer from pseudo-anomalies to real anomalies",
        written_line(),
        notes,
        " ".join(result.skipped),
        _test_set_part(data),
        *(f"Note: {note}." for note in data.notes),
        "![examples](examples.png)",
        "## Image AUROC, all anomalous classes",
        _image_note(result),
        auroc_table(result.image, ALL),
    ]
    labels = data.test_labels.astype(bool)
    for group in sorted(set(data.test_groups[labels].tolist())):
        parts += [f"## Image AUROC, {group}", _class_note(data, group)]
        parts.append(auroc_table(result.image, group))
    if result.paired:
        reference = result.paired[0]["reference"]
        parts += [f"## {reference} against each generator", _paired_note(result)]
        parts.append(_paired_table(result.paired))
    if result.pixel:
        parts += ["## Pixel metrics", _pixel_note(result, data)]
        parts.append(_pixel_table(result.pixel))
    if result.contamination:
        parts += ["## Contamination", _contamination_note(result)]
        parts.append(_contamination_table(result))
    if result.severity:
        _plot_severity(result.severity, out / "severity.png")
        parts += ["## Severity sweep", _severity_note(result)]
        parts += [_severity_table(result.severity), "![severity](severity.png)"]
    (out / "report.md").write_text("\n\n".join(p for p in parts if p) + "\n")
    return out / "report.md"
