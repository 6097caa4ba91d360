"""Battery geometry on a structured grid in physical units."""

from __future__ import annotations

import numbers
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
class Layer:
    """One layer of a layout's through-thickness stack.

    Attributes
    ----------
    thickness_mm : float
        Thickness of the layer [mm].
    material : str or None
        Name of a material in the layout's ``materials``, used across the
        whole layer, or None for the layout's in-plane map ``material_id``.
    n : int
        Number of equal simulation layers the layer is split into.
    region : str or None
        Name of a layout region. Where given, ``material`` fills only that
        region and the in-plane map the rest of the layer.
    """

    thickness_mm: float
    material: str | None = None
    n: int = 1
    region: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.thickness_mm, bool) or not isinstance(
            self.thickness_mm, numbers.Real
        ):
            kind = type(self.thickness_mm).__name__
            raise LayoutError(
                f"layer: thickness_mm = {self.thickness_mm!r} is a {kind}; give "
                "a positive number in mm"
            )
        if not (np.isfinite(self.thickness_mm) and self.thickness_mm > 0):
            raise LayoutError(
                f"layer: thickness_mm = {self.thickness_mm} is invalid; it must "
                "be a positive length in mm"
            )
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral):
            raise LayoutError(f"layer: n = {self.n!r} is invalid; give an integer >= 1")
        if self.n < 1:
            raise LayoutError(f"layer: n = {self.n} is invalid; give an integer >= 1")
        if self.region is not None and self.material is None:
            raise LayoutError(
                f"layer: region = {self.region!r} needs a material to fill it; "
                "give material or leave region None"
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
    layers : tuple of Layer, optional
        Through-thickness stack from the top (imaged) face down, whose
        thicknesses sum to ``thickness_mm``. A solver then needs ``n_layers``
        equal to the stack's total ``n`` (:attr:`n_layers`). Without a stack,
        solvers split ``thickness_mm`` into ``n_layers`` equal layers of the
        in-plane map.
    """

    dx_mm: float
    dy_mm: float
    thickness_mm: float
    material_id: np.ndarray
    materials: tuple[Material, ...]
    cell_id: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "layout"
    layers: tuple[Layer, ...] | None = None

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
        if self.layers is not None:
            self._check_layers(self.layers)

    def _check_layers(self, layers: tuple[Layer, ...]) -> None:
        if len(layers) == 0:
            raise LayoutError(
                f"layout {self.name!r}: layers is empty; give one Layer or more, "
                "or None for equal layers of the in-plane map"
            )
        total_mm = sum(layer.thickness_mm for layer in layers)
        if not np.isclose(total_mm, self.thickness_mm, rtol=1e-9, atol=0.0):
            raise LayoutError(
                f"layout {self.name!r}: the layers' thicknesses sum to "
                f"{total_mm:.12g} mm but thickness_mm = {self.thickness_mm:.12g}; "
                "make them equal"
            )
        names = {m.name for m in self.materials}
        for layer in layers:
            if layer.material is not None and layer.material not in names:
                raise LayoutError(
                    f"layout {self.name!r}: layer material {layer.material!r} is "
                    f"not in its materials ({', '.join(sorted(names))}); add it "
                    "to materials"
                )
            if layer.region is not None and layer.region not in self.regions:
                raise LayoutError(
                    f"layout {self.name!r}: layer region {layer.region!r} is not "
                    f"one of its regions ({self._region_names()}); name an "
                    "existing region or None"
                )

    def _region_names(self) -> str:
        """Return the region names for a message, or "it has none"."""
        if not self.regions:
            return "it has none"
        return ", ".join(sorted(self.regions))

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

    @property
    def n_layers(self) -> int | None:
        """Number of simulation layers the stack needs, None without a stack."""
        if self.layers is None:
            return None
        return sum(layer.n for layer in self.layers)

    def layer_thickness_mm(self, n_layers: int) -> np.ndarray:
        """Return the thickness of each of ``n_layers`` simulation layers [mm].

        Raises
        ------
        LayoutError
            If the layout has a stack of another number of layers.
        """
        if self.layers is None:
            return np.full(n_layers, self.thickness_mm / n_layers)

        self._check_n_layers(n_layers)
        return np.concatenate(
            [np.full(layer.n, layer.thickness_mm / layer.n) for layer in self.layers]
        )

    def layer_property_map(self, name: str, n_layers: int) -> np.ndarray:
        """Return a material property per cell of (n_layers, ny, nx) layers.

        Without a stack, every layer has the in-plane map
        :meth:`property_map`, as a read-only broadcast view.

        Raises
        ------
        LayoutError
            If the layout has a stack of another number of layers.
        """
        plane = self.property_map(name)
        if self.layers is None:
            return np.broadcast_to(plane, (n_layers, *self.shape))

        self._check_n_layers(n_layers)
        by_name = {m.name: float(getattr(m, name)) for m in self.materials}
        maps = []
        for layer in self.layers:
            single = plane
            if layer.material is not None:
                value = by_name[layer.material]
                inside = True if layer.region is None else self.regions[layer.region]
                single = np.where(inside, value, plane)
            maps += [single] * layer.n
        return np.stack(maps)

    def in_plane_mask(self, n_layers: int) -> np.ndarray:
        """Return where each simulation layer has the in-plane map, (n_layers, ny, nx).

        True everywhere without a stack. With one, True in the layers whose
        material is None, and outside the region of a layer that fills only
        its region. Only there is a grid cell's ``cell_id`` battery material.

        Raises
        ------
        LayoutError
            If the layout has a stack of another number of layers.
        """
        if self.layers is None:
            return np.ones((n_layers, *self.shape), dtype=bool)

        self._check_n_layers(n_layers)
        masks = []
        for layer in self.layers:
            if layer.material is None:
                single = np.ones(self.shape, dtype=bool)
            elif layer.region is None:
                single = np.zeros(self.shape, dtype=bool)
            else:
                single = ~np.asarray(self.regions[layer.region], dtype=bool)
            masks += [single] * layer.n
        return np.stack(masks)

    def in_plane_layers(self, n_layers: int) -> np.ndarray:
        """Return the indices of the simulation layers of the in-plane map.

        All ``n_layers`` without a stack. With one, the layers of the stack's
        entries whose material is None, top first, such as the electrode
        stack between a can's walls. A stack without such an entry returns
        all its layers.

        Raises
        ------
        LayoutError
            If the layout has a stack of another number of layers.
        """
        if self.layers is None:
            return np.arange(n_layers)

        self._check_n_layers(n_layers)
        in_plane = np.concatenate(
            [np.full(layer.n, layer.material is None) for layer in self.layers]
        )
        if not in_plane.any():
            return np.arange(n_layers)
        return np.flatnonzero(in_plane)

    def _check_n_layers(self, n_layers: int) -> None:
        if n_layers != self.n_layers:
            raise LayoutError(
                f"layout {self.name!r} has a stack of {self.n_layers} simulation "
                f"layers, but n_layers = {n_layers}; pass "
                f"n_layers={self.n_layers} (layout.n_layers)"
            )

    def cell_centres_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the x and y coordinates of the grid cell centres [mm]."""
        x = (np.arange(self.shape[1]) + 0.5) * self.dx_mm
        y = (np.arange(self.shape[0]) + 0.5) * self.dy_mm
        return x, y


def require_regions(layout: Layout, names: Iterable[str], *, key: str) -> None:
    """Raise RecipeError if a name in ``names`` is not a region of ``layout``.

    ``key`` is the dotted recipe key that lists the names, for the message.
    The error's ``keys`` name the entry below it, such as
    ``("camera", "emissivity_regions", "tabs")``.
    """
    for name in names:
        if name not in layout.regions:
            raise RecipeError(
                f"{key} names region {name!r}, which layout {layout.name!r} does "
                f"not have; use one of its regions: "
                f"{', '.join(sorted(layout.regions)) or '(none)'}",
                keys=((*key.split("."), name),),
            )
