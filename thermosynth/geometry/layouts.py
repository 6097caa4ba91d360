"""Builders of battery layouts: single cells, modules, cell grids and masks.

Every builder returns a `Layout` on a grid of spacing close to
``resolution_mm``: the spacing along each axis is the extent divided by a
whole number of grid cells, so the layout keeps its extent in millimetres
exactly. A feature covers the grid cells whose centres lie inside it.

Materials are chosen per role (for example ``"cell"``, ``"gap"``, ``"tab"``).
A ``materials`` mapping replaces the default of any role it names. Each
builder's docstring lists its roles.
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from thermosynth.errors import GridSizeError, LayoutError
from thermosynth.frames.readers import decode_file
from thermosynth.geometry.layout import Layer, Layout, Material
from thermosynth.geometry.materials import DEFAULT_MATERIALS, layered_material

__all__ = [
    "PV_MODULE_60_CELL",
    "cell_grid",
    "cylindrical_array",
    "from_mask",
    "module",
    "pouch_cell",
    "prismatic_cell",
]

logger = logging.getLogger(__name__)

# Peak memory of a run per grid cell, all layers [bytes]. An estimate from
# peak RSS: one hotspot on the ADI solver took 5.0 KiB per cell on a 3-layer
# grid of 0.38 M cells (2.1 GiB) and 4.4 KiB at 0.2 M. NOTE: a batch of
# scenarios, or several workers on one machine, needs more.
BYTES_PER_GRID_CELL = 5 * 1024


def max_grid_cells() -> int:
    """Return the most grid cells, all layers, that fit in this machine's memory."""
    try:
        memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        memory_bytes = 16 * 1024**3  # A guess where the system does not tell.
    return int(memory_bytes // BYTES_PER_GRID_CELL)


# Each large wall of a prismatic cell's aluminium can [mm]. An estimate: can
# walls are commonly quoted at 0.5-1 mm, thinner than a grid cell.
DEFAULT_WALL_MM = 0.8

# A 60-cell crystalline-silicon PV module (6 columns x 10 rows of 156 mm
# cells, about 0.99 m x 1.63 m), for `cell_grid`. Its aspect ratio 0.60 is
# that of the 24 x 40 px module crops of the Raptor Maps InfraredSolarModules
# data set (2020). Hot bypass-diode strips in those crops are about 8 px wide,
# a third of the width, which fits 3 substrings of 2 cell columns each. Gaps
# are 8 mm, wider than real ones (2-5 mm), so that an 8 mm grid resolves them.
PV_MODULE_60_CELL: dict[str, float | int | str] = {
    "rows": 10,
    "cols": 6,
    "cell_width_mm": 152.0,
    "cell_height_mm": 152.0,
    "gap_mm": 8.0,
    "border_mm": 16.0,
    "thickness_mm": 4.6,
    "resolution_mm": 8.0,
    "cell_material": "pv_laminate",
    "gap_material": "pv_laminate_gap",
}


@dataclass
class _Canvas:
    """A layout under construction: material, cell and region arrays."""

    ny: int
    nx: int
    dy_mm: float
    dx_mm: float
    materials: list[Material] = field(default_factory=list)
    regions: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.material_id = np.zeros((self.ny, self.nx), dtype=np.int32)
        self.cell_id = np.full((self.ny, self.nx), -1, dtype=np.int32)

    def box(self, x0_mm: float, x1_mm: float, y0_mm: float, y1_mm: float):
        """Return the mask of grid cells whose centres lie in a box [mm]."""
        out = np.zeros((self.ny, self.nx), dtype=bool)
        rows = _span(y0_mm, y1_mm, self.dy_mm)
        cols = _span(x0_mm, x1_mm, self.dx_mm)
        out[rows, cols] = True
        return out

    def paint(
        self,
        where: np.ndarray,
        material: Material,
        *,
        cell: int = -1,
        regions: tuple[str, ...] = (),
    ) -> None:
        """Set material, cell id and regions of ``where``, over earlier paint."""
        if material not in self.materials:
            self.materials.append(material)
        self.material_id[where] = self.materials.index(material)
        self.cell_id[where] = cell

        for mask in self.regions.values():
            mask &= ~where
        for name in regions:
            self.regions.setdefault(name, np.zeros_like(where))
            self.regions[name] |= where

    def layout(self, thickness_mm: float, name: str, n_cells: int) -> Layout:
        """Freeze the canvas into a `Layout` after checking all cells are on it."""
        present = np.unique(self.cell_id[self.cell_id >= 0]).size
        if present != n_cells:
            raise LayoutError(
                f"{name}: only {present} of {n_cells} cells cover a grid cell at "
                f"spacing {self.dx_mm:.4g} x {self.dy_mm:.4g} mm; use a smaller "
                "resolution_mm"
            )
        return Layout(
            dx_mm=self.dx_mm,
            dy_mm=self.dy_mm,
            thickness_mm=thickness_mm,
            material_id=self.material_id,
            materials=tuple(self.materials),
            cell_id=self.cell_id,
            regions=dict(self.regions),
            name=name,
        )


def pouch_cell(
    *,
    width_mm: float,
    height_mm: float,
    thickness_mm: float,
    tab_width_mm: float,
    tab_length_mm: float,
    tab_centres_mm: tuple[float, float] | None = None,
    resolution_mm: float,
    materials: Mapping[str, Material] | None = None,
) -> Layout:
    """Build a pouch cell's face with two tabs protruding from its top edge.

    The grid is ``width_mm`` wide and ``tab_length_mm + height_mm`` high: the
    top ``tab_length_mm`` rows hold the tabs and air beside them (region
    ``"background"``), the rest is the cell body with cell id 0.

    Parameters
    ----------
    width_mm, height_mm : float
        Size of the cell body [mm].
    thickness_mm : float
        Cell thickness [mm].
    tab_width_mm, tab_length_mm : float
        Size of each tab [mm], ``tab_length_mm`` along y.
    tab_centres_mm : (float, float), optional
        x positions of the positive and negative tab centres [mm]. Default:
        1/4 and 3/4 of the width.
    resolution_mm : float
        Grid spacing [mm].
    materials : mapping of str to Material, optional
        Roles ``"cell"`` (default ``pouch_cell``), ``"tab_positive"``
        (``aluminium``), ``"tab_negative"`` (``copper``) and
        ``"background"`` (``air``).

    Returns
    -------
    Layout
        Regions ``"tabs"``, ``"tab_positive"``, ``"tab_negative"`` and
        ``"background"``.

    Raises
    ------
    LayoutError
        On a non-positive size, a tab narrower or shorter than one grid cell,
        a tab outside the width, or tabs that overlap.
    """
    _check_positive(
        width_mm=width_mm,
        height_mm=height_mm,
        thickness_mm=thickness_mm,
        tab_width_mm=tab_width_mm,
        tab_length_mm=tab_length_mm,
        resolution_mm=resolution_mm,
    )
    _check_resolved(
        resolution_mm,
        height_mm=height_mm,
        tab_width_mm=tab_width_mm,
        tab_length_mm=tab_length_mm,
    )
    centres = _tab_centres(tab_centres_mm, width_mm, tab_width_mm)
    roles = _roles(
        materials,
        cell="pouch_cell",
        tab_positive="aluminium",
        tab_negative="copper",
        background="air",
    )

    canvas = _canvas(width_mm, tab_length_mm + height_mm, resolution_mm)
    canvas.paint(
        canvas.box(0, width_mm, 0, tab_length_mm),
        roles["background"],
        regions=("background",),
    )
    canvas.paint(
        canvas.box(0, width_mm, tab_length_mm, tab_length_mm + height_mm),
        roles["cell"],
        cell=0,
    )
    for centre, role in zip(centres, ("tab_positive", "tab_negative"), strict=True):
        half = tab_width_mm / 2
        tab = canvas.box(centre - half, centre + half, 0, tab_length_mm)
        canvas.paint(tab, roles[role], regions=("tabs", role))

    return canvas.layout(thickness_mm, "pouch_cell", 1)


def _tab_centres(
    tab_centres_mm: tuple[float, float] | None, width_mm: float, tab_width_mm: float
) -> tuple[float, float]:
    if tab_centres_mm is None:
        tab_centres_mm = (width_mm / 4, 3 * width_mm / 4)
    if len(tab_centres_mm) != 2:
        raise LayoutError(
            f"tab_centres_mm = {tab_centres_mm!r} is invalid; give two x "
            "positions [mm], positive tab first"
        )

    for centre in tab_centres_mm:
        if not (tab_width_mm / 2 <= centre <= width_mm - tab_width_mm / 2):
            raise LayoutError(
                f"tab_centres_mm = {tab_centres_mm!r}: a tab of width "
                f"{tab_width_mm} mm centred at {centre} mm sticks out of the "
                f"cell width {width_mm} mm; move it inside"
            )
    if abs(tab_centres_mm[1] - tab_centres_mm[0]) < tab_width_mm:
        raise LayoutError(
            f"tab_centres_mm = {tab_centres_mm!r} are closer than "
            f"tab_width_mm = {tab_width_mm}, so the tabs overlap; move them apart"
        )
    return float(tab_centres_mm[0]), float(tab_centres_mm[1])


def prismatic_cell(
    *,
    width_mm: float,
    height_mm: float,
    thickness_mm: float,
    terminal_width_mm: float,
    terminal_height_mm: float,
    terminal_inset_mm: float,
    casing_mm: float = 1.0,
    wall_mm: float = DEFAULT_WALL_MM,
    resolution_mm: float,
    materials: Mapping[str, Material] | None = None,
    stack_layers: int | None = None,
) -> Layout:
    """Build a prismatic cell's large face with its two terminals above it.

    The grid is ``width_mm`` wide and ``terminal_height_mm + height_mm``
    high. The top rows hold the terminals, seen edge-on above the cell's top
    face, and air beside them. Below, a casing rim ``casing_mm`` wide
    surrounds the cell body, which has cell id 0.

    The camera images the can's large wall, not the electrode stack. The body's
    material is therefore the stack between the two large walls of the can,
    each ``wall_mm`` thick, mixed through ``thickness_mm`` by
    :func:`~thermosynth.geometry.materials.layered_material`: in parallel in
    the plane, in series through the thickness. With ``wall_mm = 0`` the
    body is the bare stack. With ``stack_layers``, the walls instead become
    layers of their own in the layout's through-thickness stack.

    Parameters
    ----------
    width_mm, height_mm : float
        Size of the large face, casing included [mm].
    thickness_mm : float
        Cell thickness [mm].
    terminal_width_mm, terminal_height_mm : float
        Size of each terminal [mm], ``terminal_height_mm`` along y.
    terminal_inset_mm : float
        Distance from each side edge to the outer edge of its terminal [mm].
    casing_mm : float
        Width of the can's rim around the face [mm]; 0 leaves it out.
    wall_mm : float, optional
        Thickness of each large wall of the can [mm], mixed into the body;
        0 leaves the bare stack. The default, 0.8 mm, is an estimate of a
        typical aluminium can, so give your cell's value where you know it.
        A can wall is thinner than a grid cell, which is why it is separate
        from ``casing_mm``, the rim width.
    resolution_mm : float
        Grid spacing [mm].
    materials : mapping of str to Material, optional
        Roles ``"cell"``, the electrode stack (default ``prismatic_cell``),
        ``"casing"``, the can's rim and walls (``casing_aluminium``),
        ``"terminal"`` (``aluminium``) and ``"background"`` (``air``).
    stack_layers : int, optional
        Number of simulation layers of the electrode stack between the walls.
        Where given, the body is the bare stack and the layout has the
        through-thickness stack wall, electrode stack, wall, with the casing
        material over the region ``"can"`` (body and rim) in the two wall
        layers. Simulate it with ``n_layers = layout.n_layers``, which is
        ``stack_layers + 2`` (``stack_layers`` without walls).

    Returns
    -------
    Layout
        Regions ``"terminals"``, ``"casing"`` and ``"background"``, and
        ``"can"`` with ``stack_layers``. With mixed walls the body's
        material is named ``"<cell>+2x<wall_mm>mm_<casing>"``, for example
        ``"prismatic_cell+2x0.8mm_casing_aluminium"``.

    Raises
    ------
    LayoutError
        On a non-positive size, a feature narrower than one grid cell,
        terminals that overlap or leave the width, or a casing that fills
        the face or, with its two walls, the thickness.
    """
    _check_positive(
        width_mm=width_mm,
        height_mm=height_mm,
        thickness_mm=thickness_mm,
        terminal_width_mm=terminal_width_mm,
        terminal_height_mm=terminal_height_mm,
        resolution_mm=resolution_mm,
    )
    _check_non_negative(
        terminal_inset_mm=terminal_inset_mm, casing_mm=casing_mm, wall_mm=wall_mm
    )
    _check_resolved(
        resolution_mm,
        terminal_width_mm=terminal_width_mm,
        terminal_height_mm=terminal_height_mm,
        **({"casing_mm": casing_mm} if casing_mm > 0 else {}),
    )
    _check_prismatic_fit(
        width_mm,
        height_mm,
        terminal_width_mm,
        terminal_inset_mm,
        casing_mm,
        resolution_mm,
    )
    _check_walls(wall_mm, thickness_mm)
    _check_stack_layers(stack_layers)
    roles = _roles(
        materials,
        cell="prismatic_cell",
        casing="casing_aluminium",
        terminal="aluminium",
        background="air",
    )

    top, bottom = terminal_height_mm, terminal_height_mm + height_mm
    canvas = _canvas(width_mm, bottom, resolution_mm)
    canvas.paint(
        canvas.box(0, width_mm, 0, top), roles["background"], regions=("background",)
    )
    canvas.paint(
        canvas.box(0, width_mm, top, bottom), roles["casing"], regions=("casing",)
    )

    c = casing_mm
    body = canvas.box(c, width_mm - c, top + c, bottom - c)
    if stack_layers is None:
        canvas.paint(body, _walled_body(roles, thickness_mm, wall_mm), cell=0)
    else:
        canvas.paint(body, roles["cell"], cell=0)
    right = width_mm - terminal_inset_mm
    for x0 in (terminal_inset_mm, right - terminal_width_mm):
        terminal = canvas.box(x0, x0 + terminal_width_mm, 0, top)
        canvas.paint(terminal, roles["terminal"], regions=("terminals",))

    layout = canvas.layout(thickness_mm, "prismatic_cell", 1)
    if stack_layers is None:
        return layout
    return _with_wall_layers(layout, roles["casing"], wall_mm, stack_layers)


def _with_wall_layers(
    layout: Layout, casing: Material, wall_mm: float, stack_layers: int
) -> Layout:
    """Return ``layout`` with its can walls as layers above and below the stack."""
    can = layout.regions["casing"] | (layout.cell_id >= 0)
    regions = {**layout.regions, "can": can}
    stack_mm = layout.thickness_mm - 2 * wall_mm
    layers: tuple[Layer, ...] = (Layer(stack_mm, None, n=stack_layers),)
    if wall_mm > 0:
        wall = Layer(wall_mm, casing.name, region="can")
        layers = (wall, *layers, wall)
    return replace(layout, regions=regions, layers=layers)


def _walled_body(
    roles: dict[str, Material], thickness_mm: float, wall_mm: float
) -> Material:
    """Mix the electrode stack with the can's two large walls through the cell."""
    # NOTE: mixed walls share their lateral spreading with the middle layers
    # rather than confining it to the two faces, as ``stack_layers`` does.
    # On the cabinet cell a short just below the face then peaks about 1.6
    # times higher and a quarter narrower than with separate walls
    # (benchmarks/prismatic_walls.py). An insulating wrap between stack and
    # can is not modelled either.
    stack, wall = roles["cell"], roles["casing"]
    if wall_mm == 0:
        return stack

    stack_mm = thickness_mm - 2 * wall_mm
    name = f"{stack.name}+2x{wall_mm:g}mm_{wall.name}"
    return layered_material(name, [(wall, wall_mm), (stack, stack_mm), (wall, wall_mm)])


def _check_prismatic_fit(
    width_mm: float,
    height_mm: float,
    terminal_width_mm: float,
    terminal_inset_mm: float,
    casing_mm: float,
    resolution_mm: float,
) -> None:
    if 2 * (terminal_inset_mm + terminal_width_mm) >= width_mm:
        raise LayoutError(
            f"terminal_inset_mm = {terminal_inset_mm} and terminal_width_mm = "
            f"{terminal_width_mm} make the two terminals overlap or leave the "
            f"width_mm = {width_mm}; make them smaller"
        )
    body_mm = min(width_mm, height_mm) - 2 * casing_mm
    if body_mm < resolution_mm:
        raise LayoutError(
            f"casing_mm = {casing_mm} leaves a cell body {body_mm} mm across, "
            f"less than one grid cell of {resolution_mm} mm; use a thinner casing"
        )


def _check_stack_layers(stack_layers: int | None) -> None:
    if stack_layers is None:
        return
    if isinstance(stack_layers, bool) or not isinstance(stack_layers, numbers.Integral):
        raise LayoutError(
            f"stack_layers = {stack_layers!r} is invalid; give an integer >= 1 or None"
        )
    if stack_layers < 1:
        raise LayoutError(
            f"stack_layers = {stack_layers} is invalid; give an integer >= 1 or None"
        )


def _check_walls(wall_mm: float, thickness_mm: float) -> None:
    """Reject can walls that leave no room for the stack through the thickness."""
    if 2 * wall_mm >= thickness_mm:
        raise LayoutError(
            f"wall_mm = {wall_mm}: the can's two large walls, "
            f"{2 * wall_mm:g} mm together, fill the cell thickness_mm = "
            f"{thickness_mm} and leave no room for the electrode stack; use "
            f"wall_mm < thickness_mm / 2 = {thickness_mm / 2:g}"
        )


def cylindrical_array(
    *,
    rows: int,
    cols: int,
    diameter_mm: float,
    pitch_mm: float,
    thickness_mm: float,
    resolution_mm: float,
    filler: str = "air",
    materials: Mapping[str, Material] | None = None,
) -> Layout:
    """Build the top view of a rectangular array of cylindrical cells.

    Cell ``(i, j)`` (row, column) is a disc centred at
    ``((j + 0.5) * pitch_mm, (i + 0.5) * pitch_mm)`` with cell id
    ``i * cols + j``. The grid is ``cols * pitch_mm`` by ``rows * pitch_mm``.

    Parameters
    ----------
    rows, cols : int
        Number of cells along y and x.
    diameter_mm : float
        Cell diameter [mm].
    pitch_mm : float
        Distance between neighbouring cell centres [mm], at least the diameter.
    thickness_mm : float
        Cell height along its axis [mm].
    resolution_mm : float
        Grid spacing [mm].
    filler : str
        Default material between the cells, a key of `DEFAULT_MATERIALS`.
    materials : mapping of str to Material, optional
        Roles ``"cell"`` (default ``cylindrical_cell``) and ``"filler"``.

    Returns
    -------
    Layout
        Region ``"gaps"`` is the filler.

    Raises
    ------
    LayoutError
        On a non-positive size or count, a diameter below one grid cell, a
        pitch below the diameter (overlapping cells) or an unknown filler.
    """
    _check_count(rows=rows, cols=cols)
    _check_positive(
        diameter_mm=diameter_mm,
        pitch_mm=pitch_mm,
        thickness_mm=thickness_mm,
        resolution_mm=resolution_mm,
    )
    _check_resolved(resolution_mm, diameter_mm=diameter_mm)
    if pitch_mm < diameter_mm:
        raise LayoutError(
            f"pitch_mm = {pitch_mm} is smaller than diameter_mm = {diameter_mm}, "
            "so neighbouring cells overlap; use pitch_mm >= diameter_mm"
        )
    roles = _roles(materials, cell="cylindrical_cell", filler=filler)

    canvas = _canvas(cols * pitch_mm, rows * pitch_mm, resolution_mm)
    canvas.paint(
        np.ones((canvas.ny, canvas.nx), bool), roles["filler"], regions=("gaps",)
    )
    y = (np.arange(canvas.ny)[:, None] + 0.5) * canvas.dy_mm
    x = (np.arange(canvas.nx)[None, :] + 0.5) * canvas.dx_mm
    for i in range(rows):
        for j in range(cols):
            r2 = (x - (j + 0.5) * pitch_mm) ** 2 + (y - (i + 0.5) * pitch_mm) ** 2
            disc = r2 <= (diameter_mm / 2) ** 2
            canvas.paint(disc, roles["cell"], cell=i * cols + j)

    return canvas.layout(thickness_mm, "cylindrical_array", rows * cols)


def module(
    *,
    n_cells: int,
    cell_width_mm: float,
    cell_height_mm: float,
    thickness_mm: float,
    gap_mm: float,
    gap_material: str = "thermal_pad",
    busbar_mm: float = 0.0,
    resolution_mm: float,
    cell_material: str = "pouch_cell",
    materials: Mapping[str, Material] | None = None,
) -> Layout:
    """Build a row of rectangular cells side by side along x.

    Cell ``i`` spans x from ``i * (cell_width_mm + gap_mm)``. An optional
    busbar strip ``busbar_mm`` high runs along the whole top edge.

    Parameters
    ----------
    n_cells : int
        Number of cells.
    cell_width_mm, cell_height_mm : float
        Size of each cell [mm].
    thickness_mm : float
        Cell thickness [mm].
    gap_mm : float
        Width of the gap between neighbouring cells [mm]; 0 for touching cells.
    gap_material : str
        Default gap material, a key of `DEFAULT_MATERIALS` such as
        ``"thermal_pad"`` or ``"air"``.
    busbar_mm : float
        Height of the busbar strip [mm]; 0 for none.
    resolution_mm : float
        Grid spacing [mm].
    cell_material : str
        Default cell material, a key of `DEFAULT_MATERIALS`.
    materials : mapping of str to Material, optional
        Roles ``"cell"``, ``"gap"`` and ``"busbar"`` (default ``copper``).

    Returns
    -------
    Layout
        Regions ``"gaps"`` and, with a busbar, ``"busbars"``.

    Raises
    ------
    LayoutError
        On a non-positive size or count, a negative gap (overlapping cells),
        or a cell, gap or busbar narrower than one grid cell.
    """
    _check_count(n_cells=n_cells)
    _check_positive(
        cell_width_mm=cell_width_mm,
        cell_height_mm=cell_height_mm,
        thickness_mm=thickness_mm,
        resolution_mm=resolution_mm,
    )
    _check_gap(gap_mm, "cells overlap")
    _check_non_negative(busbar_mm=busbar_mm)
    _check_resolved(
        resolution_mm,
        cell_width_mm=cell_width_mm,
        cell_height_mm=cell_height_mm,
        **_non_zero(gap_mm=gap_mm, busbar_mm=busbar_mm),
    )
    roles = _roles(materials, cell=cell_material, gap=gap_material, busbar="copper")

    width_mm = n_cells * cell_width_mm + (n_cells - 1) * gap_mm
    canvas = _canvas(width_mm, busbar_mm + cell_height_mm, resolution_mm)
    strip = canvas.box(0, width_mm, busbar_mm, busbar_mm + cell_height_mm)
    canvas.paint(strip, roles["gap"], regions=("gaps",) if gap_mm > 0 else ())
    if busbar_mm > 0:
        canvas.paint(
            canvas.box(0, width_mm, 0, busbar_mm), roles["busbar"], regions=("busbars",)
        )

    for i in range(n_cells):
        x0 = i * (cell_width_mm + gap_mm)
        cell = canvas.box(x0, x0 + cell_width_mm, busbar_mm, busbar_mm + cell_height_mm)
        canvas.paint(cell, roles["cell"], cell=i)

    return canvas.layout(thickness_mm, "module", n_cells)


def cell_grid(
    *,
    rows: int,
    cols: int,
    cell_width_mm: float,
    cell_height_mm: float,
    gap_mm: float,
    thickness_mm: float,
    border_mm: float = 0.0,
    resolution_mm: float,
    cell_material: str = "pv_laminate",
    gap_material: str = "pv_laminate_gap",
    materials: Mapping[str, Material] | None = None,
) -> Layout:
    """Build a rectangular grid of cells, such as a PV module.

    Cell ``(i, j)`` (row, column) has cell id ``i * cols + j`` and spans x
    from ``border_mm + j * (cell_width_mm + gap_mm)``. `PV_MODULE_60_CELL`
    holds arguments for a 60-cell PV module.

    Parameters
    ----------
    rows, cols : int
        Number of cells along y and x.
    cell_width_mm, cell_height_mm : float
        Size of each cell [mm].
    gap_mm : float
        Gap between neighbouring cells [mm]; 0 for touching cells.
    thickness_mm : float
        Plate thickness [mm].
    border_mm : float
        Margin around the grid [mm], of the gap material.
    resolution_mm : float
        Grid spacing [mm].
    cell_material, gap_material : str
        Default materials of the cells and of gaps and border, keys of
        `DEFAULT_MATERIALS`.
    materials : mapping of str to Material, optional
        Roles ``"cell"``, ``"gap"`` and ``"border"`` (default: the gap's).

    Returns
    -------
    Layout
        Regions ``"gaps"`` and, with a border, ``"border"``.

    Raises
    ------
    LayoutError
        On a non-positive size or count, a negative gap or border, or a
        cell, gap or border narrower than one grid cell.
    """
    _check_count(rows=rows, cols=cols)
    _check_positive(
        cell_width_mm=cell_width_mm,
        cell_height_mm=cell_height_mm,
        thickness_mm=thickness_mm,
        resolution_mm=resolution_mm,
    )
    _check_gap(gap_mm, "cells overlap")
    _check_non_negative(border_mm=border_mm)
    _check_resolved(
        resolution_mm,
        cell_width_mm=cell_width_mm,
        cell_height_mm=cell_height_mm,
        **_non_zero(gap_mm=gap_mm, border_mm=border_mm),
    )
    roles = _roles(materials, cell=cell_material, gap=gap_material, border=gap_material)

    b = border_mm
    width_mm = 2 * b + cols * cell_width_mm + (cols - 1) * gap_mm
    height_mm = 2 * b + rows * cell_height_mm + (rows - 1) * gap_mm
    canvas = _canvas(width_mm, height_mm, resolution_mm)
    inner = canvas.box(b, width_mm - b, b, height_mm - b)
    if border_mm > 0:
        canvas.paint(~inner, roles["border"], regions=("border",))
    canvas.paint(inner, roles["gap"], regions=("gaps",) if gap_mm > 0 else ())

    for i in range(rows):
        y0 = b + i * (cell_height_mm + gap_mm)
        for j in range(cols):
            x0 = b + j * (cell_width_mm + gap_mm)
            cell = canvas.box(x0, x0 + cell_width_mm, y0, y0 + cell_height_mm)
            canvas.paint(cell, roles["cell"], cell=i * cols + j)

    return canvas.layout(thickness_mm, "cell_grid", rows * cols)


def from_mask(
    mask: np.ndarray | str | Path,
    *,
    width_mm: float,
    height_mm: float,
    resolution_mm: float,
    thickness_mm: float,
    cell_material: str = "pouch_cell",
    gap_material: str = "air",
    materials: Mapping[str, Material] | None = None,
) -> Layout:
    """Build a layout from a mask image of the cells.

    Non-zero pixels are cell material, and their 4-connected components,
    numbered in raster order, are the cell ids. Zero pixels are gaps. The
    mask is resized with nearest-neighbour interpolation to the grid.

    Parameters
    ----------
    mask : ndarray or str or Path
        (H, W) or (H, W, C) array, or an image file that OpenCV reads. In a
        colour image a pixel is non-zero where any colour channel is; an
        alpha channel is ignored.
    width_mm, height_mm : float
        Physical size of the whole mask [mm].
    resolution_mm : float
        Grid spacing [mm].
    thickness_mm : float
        Plate thickness [mm].
    cell_material, gap_material : str
        Default materials, keys of `DEFAULT_MATERIALS`.
    materials : mapping of str to Material, optional
        Roles ``"cell"`` and ``"gap"``.

    Returns
    -------
    Layout
        Region ``"gaps"``.

    Raises
    ------
    LayoutError
        On an unreadable file, a mask with no non-zero pixel (before or after
        resizing) or a non-positive size.
    """
    _check_positive(
        width_mm=width_mm,
        height_mm=height_mm,
        resolution_mm=resolution_mm,
        thickness_mm=thickness_mm,
    )
    source = mask if isinstance(mask, str | Path) else "the mask array"
    binary = _binary_mask(mask)
    roles = _roles(materials, cell=cell_material, gap=gap_material)

    canvas = _canvas(width_mm, height_mm, resolution_mm)
    grid = (
        cv2.resize(
            binary.astype(np.uint8),
            (canvas.nx, canvas.ny),
            interpolation=cv2.INTER_NEAREST,
        )
        > 0
    )
    if not grid.any():
        raise LayoutError(
            f"mask {source}: no non-zero pixel is left on the {canvas.ny} x "
            f"{canvas.nx} grid; use a smaller resolution_mm than {resolution_mm}"
        )
    n_labels, labels = cv2.connectedComponents(grid.astype(np.uint8), connectivity=4)
    logger.debug("mask %s: %d cells on a %s grid", source, n_labels - 1, grid.shape)

    canvas.paint(~grid, roles["gap"], regions=("gaps",))
    for label in range(1, n_labels):
        canvas.paint(labels == label, roles["cell"], cell=label - 1)
    return canvas.layout(thickness_mm, "from_mask", n_labels - 1)


def _binary_mask(source: np.ndarray | str | Path) -> np.ndarray:
    if isinstance(source, str | Path):
        image = decode_file(source, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise LayoutError(
                f"mask file {source} cannot be read as an image; check that the "
                "path exists and is a PNG, TIFF or another format OpenCV reads"
            )
        source = image
    mask = np.asarray(source)

    if mask.ndim == 3 and mask.shape[2] in (3, 4):
        mask = mask[..., :3].max(axis=2)
    elif mask.ndim == 3 and mask.shape[2] in (1, 2):
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise LayoutError(
            f"mask shape {mask.shape} is invalid; give (H, W) or (H, W, C)"
        )
    if not np.any(mask != 0):
        raise LayoutError(
            "mask has no non-zero pixel, so it contains no cell; check the file"
        )
    return np.asarray(mask != 0)


def _canvas(width_mm: float, height_mm: float, resolution_mm: float) -> _Canvas:
    nx = max(1, round(width_mm / resolution_mm))
    ny = max(1, round(height_mm / resolution_mm))
    if nx * ny > max_grid_cells():
        raise GridSizeError(
            f"resolution_mm = {resolution_mm:g} mm gives a {ny} x {nx} grid, "
            f"more than the {max_grid_cells():,} cells that fit in this "
            "machine's memory; raise resolution_mm",
            ny=ny,
            nx=nx,
        )
    return _Canvas(ny=ny, nx=nx, dy_mm=height_mm / ny, dx_mm=width_mm / nx)


def _span(a_mm: float, b_mm: float, d_mm: float) -> slice:
    """Return the indices of grid cells whose centres lie in [a, b)."""
    # The tolerance keeps adjacent features that share an edge from
    # overlapping or leaving a hole when the edge falls on a cell centre.
    start = int(np.ceil(a_mm / d_mm - 0.5 - 1e-9))
    stop = int(np.ceil(b_mm / d_mm - 0.5 - 1e-9))
    return slice(max(start, 0), max(stop, 0))


def _roles(
    materials: Mapping[str, Material] | None, **defaults: str
) -> dict[str, Material]:
    """Resolve each role to the given Material or its default by name."""
    given = dict(materials or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise LayoutError(
            f"materials has unknown role(s) {unknown}; this layout's roles are "
            f"{sorted(defaults)}"
        )

    resolved = {}
    for role, name in defaults.items():
        if role in given:
            resolved[role] = _as_material(role, given[role])
        elif name in DEFAULT_MATERIALS:
            resolved[role] = DEFAULT_MATERIALS[name]
        else:
            raise LayoutError(
                f"material {name!r} for role {role!r} is not a default material; "
                f"use one of {sorted(DEFAULT_MATERIALS)} or give "
                f"materials[{role!r}] as a Material"
            )
    return resolved


def _as_material(role: str, value: object) -> Material:
    if not isinstance(value, Material):
        raise LayoutError(
            f"materials[{role!r}] = {value!r} is not a Material; build one with "
            "thermosynth.geometry.material_from_spec"
        )
    return value


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise LayoutError(
                f"{name} = {value} is invalid; it must be a positive finite number",
                keys=((name,),),
            )


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value < 0:
            raise LayoutError(
                f"{name} = {value} is invalid; it must be zero or positive",
                keys=((name,),),
            )


def _check_gap(gap_mm: float, consequence: str) -> None:
    if not np.isfinite(gap_mm) or gap_mm < 0:
        raise LayoutError(
            f"gap_mm = {gap_mm} is invalid because {consequence}; use gap_mm >= 0",
            keys=(("gap_mm",),),
        )


def _check_count(**values: int) -> None:
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < 1
        ):
            raise LayoutError(
                f"{name} = {value!r} is invalid; it must be a positive integer",
                keys=((name,),),
            )


def _check_resolved(resolution_mm: float, **sizes: float) -> None:
    for name, value in sizes.items():
        if value < resolution_mm:
            raise LayoutError(
                f"{name} = {value} mm is narrower than one grid cell "
                f"(resolution_mm = {resolution_mm}); use resolution_mm <= {value}",
                keys=((name,), ("resolution_mm",)),
            )


def _non_zero(**sizes: float) -> dict[str, float]:
    return {name: value for name, value in sizes.items() if value > 0}
