"""Battery geometry on a structured grid in physical units."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from thermosynth.errors import LayoutError, RecipeError


@dataclass(frozen=True)
class Material:
    """Thermal properties of one material.

    Attributes
    ----------
    name : str
        Name used in recipes and metadata.
    k_x_W_mK, k_y_W_mK, k_z_W_mK : float
        Conductivity along the layout's x (width), y (height) and through the
        thickness [W m-1 K-1].
    rho_cp_J_m3K : float
        Volumetric heat capacity [J m-3 K-1].
    """

    name: str
    k_x_W_mK: float
    k_y_W_mK: float
    k_z_W_mK: float
    rho_cp_J_m3K: float

    def __post_init__(self) -> None:
        for key in ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK", "rho_cp_J_m3K"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise LayoutError(
                    f"material {self.name!r}: {key} = {value} is invalid; "
                    "it must be a positive finite number"
                )


@dataclass(frozen=True)
class Layout:
    """A battery's face as a grid of cells, row 0 at the top edge.

    The grid has ``ny`` rows along y (height) and ``nx`` columns along x
    (width), each ``dx_mm`` x ``dy_mm``. Image coordinates are used: x grows
    to the right, y grows downwards, so the layout maps onto a frame without
    flips.

    Attributes
    ----------
    dx_mm, dy_mm : float
        Grid spacing [mm].
    thickness_mm : float
        Thickness of the plate, the same everywhere [mm].
    material_id : ndarray
        Integer (ny, nx), index into ``materials`` for each grid cell.
    materials : tuple of Material
        Material table.
    cell_id : ndarray
        Integer (ny, nx), the battery cell each grid cell belongs to, -1 for
        gaps, pads, tabs and casing.
    regions : dict of str to ndarray
        Named boolean (ny, nx) masks such as ``"tabs"``, ``"terminals"`` or
        ``"busbars"``, where their sources may be placed.
    name : str
        Kind of layout, for metadata.
    """

    dx_mm: float
    dy_mm: float
    thickness_mm: float
    material_id: np.ndarray
    materials: tuple[Material, ...]
    cell_id: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "layout"

    def __post_init__(self) -> None:
        if self.material_id.ndim != 2:
            raise LayoutError(
                f"layout {self.name!r}: material_id must be 2D (ny, nx), "
                f"got shape {self.material_id.shape}"
            )
        for key in ("dx_mm", "dy_mm", "thickness_mm"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise LayoutError(
                    f"layout {self.name!r}: {key} = {value} is invalid; "
                    "it must be a positive length in mm"
                )
        if self.cell_id.shape != self.material_id.shape:
            raise LayoutError(
                f"layout {self.name!r}: cell_id shape {self.cell_id.shape} "
                f"differs from material_id shape {self.material_id.shape}"
            )
        used = np.unique(self.material_id)
        if used.min() < 0 or used.max() >= len(self.materials):
            raise LayoutError(
                f"layout {self.name!r}: material_id holds indices "
                f"{used.min()}..{used.max()} but only {len(self.materials)} "
                "materials are defined"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Grid size (ny, nx)."""
        return (int(self.material_id.shape[0]), int(self.material_id.shape[1]))

    @property
    def width_mm(self) -> float:
        """Extent along x [mm]."""
        return self.shape[1] * self.dx_mm

    @property
    def height_mm(self) -> float:
        """Extent along y [mm]."""
        return self.shape[0] * self.dy_mm

    def property_map(self, name: str) -> np.ndarray:
        """Return a material property, such as ``"k_x_W_mK"``, per grid cell."""
        table = np.array([getattr(m, name) for m in self.materials], dtype=float)
        return table[self.material_id]

    def cell_centres_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the x and y coordinates of the grid cell centres [mm]."""
        x = (np.arange(self.shape[1]) + 0.5) * self.dx_mm
        y = (np.arange(self.shape[0]) + 0.5) * self.dy_mm
        return x, y


def require_regions(layout: Layout, names: Iterable[str], *, key: str) -> None:
    """Raise RecipeError if a name in ``names`` is not a region of ``layout``.

    ``key`` is the recipe key that lists the names, for the message.
    """
    for name in names:
        if name not in layout.regions:
            raise RecipeError(
                f"{key} names region {name!r}, which layout {layout.name!r} does "
                f"not have; use one of its regions: "
                f"{', '.join(sorted(layout.regions)) or '(none)'}"
            )
