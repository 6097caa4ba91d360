"""Warnings where a transfer recipe was written for frames other than --normal's.

``validate transfer`` simulates its rises from a recipe's layout and places
them on the --normal frames through the recipe's registration. A recipe
written for another camera still runs, but ``full_frame`` registration then
stretches its layout over frames of another shape. Users reuse recipes on
similar cameras, so these are warnings, not errors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from thermosynth.build import build_layout, build_source
from thermosynth.errors import ThermosynthError
from thermosynth.geometry.registration import body_box, cells_box

if TYPE_CHECKING:
    from thermosynth.recipe.loading import LoadedRecipe

logger = logging.getLogger(__name__)

MAX_ASPECT_FACTOR = 1.5
"""Largest factor [-] between the layout's and the frame's width/height ratios.

At this factor ``full_frame`` registration draws a round hot spot as an
ellipse whose axes differ by half, which is plain to see in the examples.
The 60-cell PV recipe (984 x 1624 mm, ratio 0.61) passes on crops of a
72-cell module of the same cells (984 x 1944 mm, ratio 0.51), 1.2 apart.
On the 80 x 60 px battery frames (ratio 1.33) it is 2.2 apart.
"""

_FIT_NAMES = {
    "layout": "whole layout",
    "cells": "cells' bounding box",
    "body": "cells and casing",
}


def recipe_fit_warnings(loaded: LoadedRecipe, shape: tuple[int, ...]) -> list[str]:
    """Log and return a warning per way the recipe does not fit frames of ``shape``.

    Parameters
    ----------
    loaded : LoadedRecipe
        A recipe of ``validate transfer --recipe``.
    shape : tuple of int
        (H, W) [px] of the --normal frames as read, before any --resize.

    Returns
    -------
    list of str
        One sentence per warning, without a final full stop: frames.path
        contains frames of another size, or ``full_frame`` registration changes
        the layout's width/height ratio by more than ``MAX_ASPECT_FACTOR``.
    """
    height, width = int(shape[0]), int(shape[1])
    found: list[str] = []
    path = getattr(loaded.recipe.frames, "path", None)
    own = None if path is None else _recipe_frame_shape(loaded, path)
    if own is not None and own != (height, width):
        found.append(
            f"{loaded.source}: frames.path {path} contains "
            f"frames of {own[0]} x {own[1]} px (height x width), but the --normal "
            f"frames are {height} x {width} px, so the recipe was likely written "
            "for another camera or crop; check that its layout, registration and "
            "region of interest fit these frames"
        )
    if loaded.recipe.registration.method == "full_frame":
        found += _aspect_warning(loaded, height, width)
    for message in found:
        logger.warning("%s", message)
    return found


def _recipe_frame_shape(loaded: LoadedRecipe, path: Path) -> tuple[int, int] | None:
    """Return (H, W) [px] of the first frame at ``path``, or None if unreadable."""
    try:
        frame = build_source(loaded.recipe.frames, seed=loaded.recipe.seed).read(0)
    except (ThermosynthError, OSError, IndexError, ValueError) as exc:
        logger.info(
            "%s: frames.path %s is not readable here (%s), so the size of the "
            "recipe's frames is not compared with the --normal frames",
            loaded.source,
            path,
            exc,
        )
        return None
    return int(frame.shape[0]), int(frame.shape[1])


def _aspect_warning(loaded: LoadedRecipe, height: int, width: int) -> list[str]:
    """Return a warning if ``full_frame`` changes the layout's ratio too much."""
    recipe = loaded.recipe
    layout = build_layout(
        recipe.layout, recipe.materials, n_layers=recipe.physics.n_layers
    )
    fit = recipe.registration.fit
    boxes = {"cells": cells_box, "body": body_box}
    r0, r1, c0, c1 = (
        boxes[fit](layout) if fit in boxes else (0, layout.shape[0], 0, layout.shape[1])
    )
    layout_width_mm = (c1 - c0) * layout.dx_mm
    layout_height_mm = (r1 - r0) * layout.dy_mm
    layout_ratio = layout_width_mm / layout_height_mm
    frame_ratio = width / height
    factor = max(layout_ratio / frame_ratio, frame_ratio / layout_ratio)
    if factor <= MAX_ASPECT_FACTOR:
        return []
    return [
        f"{loaded.source}: registration.method full_frame stretches the "
        f"{_FIT_NAMES[fit]} (registration.fit: {fit}) of {layout_width_mm:.0f} x "
        f"{layout_height_mm:.0f} mm (width x height, ratio {layout_ratio:.2f}) "
        f"over the whole {width} x {height} px frame (ratio {frame_ratio:.2f}), "
        f"a factor {factor:.2f} apart, more than {MAX_ASPECT_FACTOR:g}, so "
        "simulated hot spots come out stretched; use a recipe whose layout "
        "fits these frames, or place it with registration.method corners, "
        "valid_mask or warm_region"
    ]
