"""Draw a grid of normal frame, anomalous frame, temperature rise and mask."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # NOTE: the CLI draws to files only; no display is needed.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from thermosynth.build import check_camera  # noqa: E402
from thermosynth.errors import OutputError, RecipeError  # noqa: E402
from thermosynth.frames.frame import Frame  # noqa: E402
from thermosynth.output.atomic import check_file_writable, write_bytes_atomic  # noqa: E402
from thermosynth.output.sample import Sample  # noqa: E402
from thermosynth.pipeline import Generator  # noqa: E402
from thermosynth.recipe.loading import LoadedRecipe  # noqa: E402

logger = logging.getLogger(__name__)

COLUMNS = ("normal,\nlayout corners dashed", "anomalous", "surface rise [K]", "mask")
T = TypeVar("T")


def write_preview(
    loaded: LoadedRecipe, *, n: int, path: Path, overwrite: bool = False
) -> tuple[Path, int]:
    """Generate up to ``n`` anomalous samples and draw them to ``path`` (PNG).

    Every fault kind of the recipe gets a row before any kind gets a second,
    so a short preview shows each kind the recipe plans, not only the kind
    that its first samples drew. The kinds are read from the plan, so only
    the ``n`` samples drawn are simulated.

    Returns
    -------
    path : Path
        ``path``.
    n_drawn : int
        Samples drawn, fewer than ``n`` when the recipe plans fewer
        anomalous samples.
    """
    if path.suffix.lower() != ".png":
        raise OutputError(
            f"preview path {path} does not end in .png; the preview is a PNG "
            "image, so name it like preview.png"
        )
    check_file_writable(path, overwrite=overwrite)
    generator = Generator(loaded)
    anomalous = [(i, f) for i, _, label, f in generator.plan.entries() if label]
    if not anomalous:
        raise RecipeError(
            "the recipe plans no anomalous sample to preview; raise "
            "split.test_anomalous to 1 or more",
            keys=(("split", "test_anomalous"),),
        )
    n_kinds = len(loaded.recipe.scenarios)

    picked = pick_varied(
        anomalous,
        n=n,
        n_kinds=n_kinds,
        kind=lambda entry: generator.planned_scenario(entry[0]),
    )
    rows: list[tuple[Sample, Frame]] = []
    for index, frame_index in picked:
        frame = generator.read_frame(frame_index)
        check_camera(loaded.recipe.camera, frame)
        start = time.perf_counter()
        sample = generator.anomalous(index, frame)
        log_drawn(index, sample.metadata, len(rows) + 1, len(picked), start)
        rows.append((sample, frame))

    figure = draw_rows(rows)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)
    return path, len(rows)


def log_drawn(
    index: int, metadata: Mapping[str, Any], position: int, total: int, start: float
) -> None:
    """Log at INFO that preview sample ``index`` is drawn, as a progress line.

    ``start`` is the `time.perf_counter` value [s] before the sample was made.
    """
    logger.info(
        "preview: drew sample %d (%s), %d of %d, in %.1f s",
        index,
        metadata["scenario"],
        position,
        total,
        time.perf_counter() - start,
    )


def pick_varied(
    items: Iterable[T],
    *,
    n: int,
    n_kinds: int,
    kind: Callable[[T], str],
) -> list[T]:
    """Pick ``n`` of ``items``, taking the kinds in turn, and keep their order.

    Each kind gets its first item before any kind gets a second, and so
    on. Stops reading ``items`` once ``min(n, n_kinds)`` kinds are found
    and each has its share of the ``n`` picks. ``kind`` names an item's
    kind.
    """
    by_kind: dict[str, list[tuple[int, T]]] = {}
    for position, item in enumerate(items):
        kind_items = by_kind.setdefault(kind(item), [])
        if len(kind_items) < n:  # more of one kind could never be picked
            kind_items.append((position, item))
        share = math.ceil(n / len(by_kind))
        found_all = len(by_kind) >= min(n, n_kinds)
        if found_all and all(len(picks) >= share for picks in by_kind.values()):
            break

    picks: list[tuple[int, T]] = []
    for turn in range(n):
        picks += [
            kind_items[turn]
            for kind_items in by_kind.values()
            if turn < len(kind_items)
        ]
    return [item for _, item in sorted(picks[:n], key=lambda pick: pick[0])]


def draw_rows(rows: list[tuple[Sample, Frame]]) -> plt.Figure:
    """Draw one row per sample with shared value scales per row."""
    figure, axes = plt.subplots(
        len(rows), 4, figsize=(11, 2.6 * len(rows)), squeeze=False, layout="constrained"
    )
    for ax, title in zip(axes[0], COLUMNS, strict=True):
        ax.set_title(title)
    for (sample, frame), row in zip(rows, axes, strict=True):
        _draw_row(sample, frame, row)
    return figure


def _draw_row(sample: Sample, frame: Frame, row: np.ndarray) -> None:
    unit = {"C": "[C]", "K": "[K]", "level": "[level]"}[frame.unit]
    if frame.raw.ndim == 3:
        row[0].imshow(frame.raw)
        row[1].imshow(sample.raw)
    else:
        low, high = np.percentile(frame.values[frame.valid], [0.5, 99.5])
        anomalous_values = frame.encoding.decode(sample.raw)
        high = max(high, float(anomalous_values[frame.valid].max()))
        row[0].imshow(frame.values, cmap="inferno", vmin=low, vmax=high)
        image = row[1].imshow(anomalous_values, cmap="inferno", vmin=low, vmax=high)
        plt.colorbar(image, ax=row[1], label=unit, shrink=0.8)

    _outline_layout(row[0], sample.metadata.get("corners_px"))
    rise = row[2].imshow(sample.rise_K, cmap="magma")
    plt.colorbar(rise, ax=row[2], label="[K]", shrink=0.8)
    row[3].imshow(sample.mask, cmap="gray", vmin=0, vmax=1)

    meta = sample.metadata
    sources = f", {meta['count']} sources" if meta.get("count", 1) > 1 else ""
    row[0].set_ylabel(f"#{sample.index} {sample.kind}{sources}", fontsize=8)
    row[3].set_xlabel(
        f"{meta['area_px']} px, simulated peak {meta['peak_rise_K']:.2f} K",
        fontsize=8,
    )
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])


def _outline_layout(ax: plt.Axes, corners_px: list[list[float]] | None) -> None:
    """Draw the registered layout's edges, (x, y) corners [px], dashed."""
    if corners_px is None:
        return
    x, y = np.asarray(corners_px, float).T
    limits = ax.get_xlim(), ax.get_ylim()
    ax.plot(np.append(x, x[0]), np.append(y, y[0]), "c--", linewidth=0.8)
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])
