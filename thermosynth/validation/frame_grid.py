"""Grids of thermal frames, each drawn at a whole multiple of its pixel size.

The example figures of ``validate closeness`` and ``validate transfer`` are
built here. A frame of 24 x 40 px drawn at its own size is too small to see
a hot cell, and a frame shrunk to fit a figure loses pixels. So each frame is
drawn at a whole multiple of its size with nearest-neighbour interpolation,
and the figure is sized around the frames rather than the other way round.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

DPI = 100
"""Resolution of the saved figures [px per inch]."""

LABEL_PT = 10.0
"""Font size of row labels, titles and colour-bar labels [pt]."""

TARGET_LONG_SIDE_PX = 200
"""Drawn length [px] that a frame's long side reaches where the scale allows."""

MAX_SCALE = 8
"""Largest drawing scale [figure px per frame px]."""

GAP_PX = 6
"""Space between neighbouring frames [px]."""

_LINE_PX = math.ceil(1.4 * LABEL_PT * DPI / 72)
"""Height of one line of title text [px]."""

_CHAR_PX = 0.6 * LABEL_PT * DPI / 72
"""Width of an average character of DejaVu Sans [px], an estimate for wrapping."""

_COLORBAR_PX = 12
"""Width of the colour bar [px]. Its tick labels widen the saved image."""


def frame_scale(shape: tuple[int, ...]) -> int:
    """Return the drawing scale [figure px per frame px] for frames of ``shape``.

    The scale is the smallest whole factor that draws the long side at least
    ``TARGET_LONG_SIDE_PX`` long, clipped to 1..``MAX_SCALE``. The 24 x 40 px
    PV crops are drawn 5 times their size and the 80 x 60 px battery frames
    3 times.

    NOTE: frames whose long side is 200 px or more are drawn at their own
    size and never shrunk, so a row of eight 640 x 512 px frames is over
    5,000 px wide.
    """
    long_side = max(int(shape[0]), int(shape[1]))
    return min(MAX_SCALE, max(1, math.ceil(TARGET_LONG_SIDE_PX / long_side)))


@dataclass
class FrameGrid:
    """A figure with one axes per frame, row-major, each ``scale`` x the frame size.

    Attributes
    ----------
    figure : Figure
        The figure, ``DPI`` pixels per inch.
    axes : ndarray
        Object (n_rows, n_columns) array of Axes without ticks.
    scale : int
        Figure pixels per frame pixel along each side.
    """

    figure: Figure
    axes: np.ndarray
    scale: int

    def draw(
        self, row: int, column: int, image: np.ndarray, **imshow: Any
    ) -> AxesImage:
        """Draw ``image`` (H, W) in one cell, nearest neighbour, one block per pixel."""
        ax: Axes = self.axes[row, column]
        return ax.imshow(image, interpolation="nearest", **imshow)

    def outline(self, row: int, column: int, mask: np.ndarray, colour: str) -> None:
        """Draw the edge of a boolean (H, W) mask over one cell's frame, if any."""
        if not mask.any():
            return
        self.axes[row, column].contour(
            mask.astype(np.uint8), levels=[0.5], colors=colour, linewidths=1.0
        )

    def label_rows(self, labels: list[str]) -> None:
        """Write each row's label to the left of its first frame."""
        for ax, label in zip(self.axes[:, 0], labels, strict=True):
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=LABEL_PT)

    def hide_empty(self, row: int, first_empty: int) -> None:
        """Hide the frame borders of the cells of ``row`` from ``first_empty`` on.

        Hidden cells keep their axes, so that a row label on the first cell stays.
        """
        for ax in self.axes[row, first_empty:]:
            ax.set_frame_on(False)

    def add_colorbar(self, image: AxesImage, label: str) -> None:
        """Add a colour bar for ``image`` to the right of the grid."""
        grid = self.axes[-1, -1].get_position()
        top = self.axes[0, -1].get_position()
        gap = GAP_PX / (self.figure.get_figwidth() * DPI)
        width = _COLORBAR_PX / (self.figure.get_figwidth() * DPI)
        height = 0.6 * (top.y1 - grid.y0)
        bottom = grid.y0 + 0.2 * (top.y1 - grid.y0)
        cax = self.figure.add_axes((grid.x1 + 2 * gap, bottom, width, height))
        bar = self.figure.colorbar(image, cax=cax)
        bar.set_label(label, fontsize=LABEL_PT)
        bar.ax.tick_params(labelsize=LABEL_PT)

    def save(self, path: Path) -> None:
        """Write the figure as a PNG at ``DPI``, cropped to what it draws."""
        self.figure.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.05)


def frame_grid(
    n_rows: int,
    n_columns: int,
    shape: tuple[int, ...],
    *,
    title: str,
    colorbar: bool = False,
) -> FrameGrid:
    """Make a figure of ``n_rows`` x ``n_columns`` frames of ``shape`` (H, W) [px].

    Each frame gets ``frame_scale(shape)`` figure pixels per frame pixel,
    ``GAP_PX`` between neighbours, and ``title`` is wrapped above the grid.
    Row labels and colour-bar ticks drawn outside the figure widen the saved
    image, because :meth:`FrameGrid.save` crops to the drawn extent.
    """
    scale = frame_scale(shape)
    height, width = int(shape[0]) * scale, int(shape[1]) * scale
    grid_width = n_columns * width + (n_columns - 1) * GAP_PX
    grid_height = n_rows * height + (n_rows - 1) * GAP_PX
    lines = textwrap.wrap(title, width=max(30, int(grid_width / _CHAR_PX)))
    title_height = len(lines) * _LINE_PX + GAP_PX
    figure_width = grid_width + (3 * GAP_PX + _COLORBAR_PX if colorbar else 0)
    figure_height = grid_height + title_height

    figure = Figure(figsize=(figure_width / DPI, figure_height / DPI), dpi=DPI)
    axes = np.empty((n_rows, n_columns), dtype=object)
    for row in range(n_rows):
        for column in range(n_columns):
            left = column * (width + GAP_PX)
            top = title_height + row * (height + GAP_PX)
            rect = (
                left / figure_width,
                1.0 - (top + height) / figure_height,
                width / figure_width,
                height / figure_height,
            )
            ax = figure.add_axes(rect)
            ax.set_xticks([])
            ax.set_yticks([])
            axes[row, column] = ax
    figure.text(0.0, 1.0, "\n".join(lines), ha="left", va="top", fontsize=LABEL_PT)
    return FrameGrid(figure, axes, scale)
