"""Heat sources and held-temperature patches on a layered layout grid.

Arrays here have shape (n_layers, ny, nx): layer 0 is the imaged top face and
layer ``n_layers - 1`` the bottom face; rows run along y and columns along x,
as in :class:`~thermosynth.geometry.layout.Layout`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from thermosynth.errors import LayoutError, RecipeError
from thermosynth.geometry.layout import Layout
from thermosynth.physics.grid import layer_volume_ratio
from thermosynth.physics.profiles import Constant

ProfileLike = Callable[[float], float] | float


@dataclass(frozen=True, eq=False)
class VolumeSource:
    """Heat released in a set of grid cells.

    Attributes
    ----------
    weights_m3 : ndarray
        Float (n_layers, ny, nx), >= 0, normalised so that
        ``sum(weights_m3 * cell_volume_m3) == 1``. The heat density is
        ``power_W(t) * weights_m3`` [W m-3].
    power_W : callable
        Total power as a function of time [s] -> [W].
    name : str
        Label for logs and metadata.
    """

    weights_m3: np.ndarray
    power_W: Callable[[float], float]
    name: str


@dataclass(frozen=True, eq=False)
class HeldPatch:
    """Grid cells held at a prescribed temperature, such as a heater.

    Attributes
    ----------
    mask : ndarray
        Bool (n_layers, ny, nx), the held cells.
    temperature_C : callable
        Temperature as a function of time [s] -> [C].
    name : str
        Label for logs and metadata.
    """

    mask: np.ndarray
    temperature_C: Callable[[float], float]
    name: str


def cell_volume_m3(layout: Layout, n_layers: int) -> float:
    """Return the volume of one grid cell of the mean layer [m3].

    Without a through-thickness stack all layers have this cell volume. With
    one, layer i's cell volume is this times
    :func:`~thermosynth.physics.grid.layer_volume_ratio` ``[i]``.
    """
    return layout.dx_mm * layout.dy_mm * layout.thickness_mm / n_layers * 1e-9


def as_profile(value: ProfileLike, *, key: str) -> Callable[[float], float]:
    """Wrap a plain number in :class:`Constant`; pass a callable through."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Constant(float(value))

    if callable(value):
        return value

    raise RecipeError(
        f"{key} = {value!r} is invalid; give a number or a profile such as "
        "thermosynth.physics.profiles.Ramp"
    )


def hotspot(
    layout: Layout,
    *,
    x_mm: float,
    y_mm: float,
    radius_mm: float,
    power_W: ProfileLike,
    layer: int = 0,
    n_layers: int = 1,
) -> VolumeSource:
    """Build a source spread uniformly over a disc in one layer.

    Parameters
    ----------
    layout : Layout
        Grid the source lives on.
    x_mm, y_mm : float
        Centre of the disc [mm], measured from the layout's top-left corner.
    radius_mm : float
        Radius of the disc [mm]. Cells whose centres lie within it take part.
        If no centre does, the cell containing ``(x_mm, y_mm)`` is used.
    power_W : float or callable
        Total power [W], constant or as a function of time [s].
    layer : int
        Layer index, 0 for the imaged face.
    n_layers : int
        Number of through-thickness layers of the simulation.

    Returns
    -------
    VolumeSource

    Raises
    ------
    LayoutError
        If the centre lies outside the layout or ``layer`` is out of range.

    Examples
    --------
    >>> from thermosynth.geometry.layout import Layout, Material
    >>> steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    >>> grid = np.zeros((10, 10), dtype=int)
    >>> layout = Layout(1.0, 1.0, 2.0, grid, (steel,), grid - 1)
    >>> source = hotspot(layout, x_mm=5.0, y_mm=5.0, radius_mm=1.0, power_W=2.0)
    >>> int(np.count_nonzero(source.weights_m3))
    4
    """
    disc = _disc_mask(layout, x_mm=x_mm, y_mm=y_mm, radius_mm=radius_mm)
    mask = _in_layers(layout, disc, [layer], n_layers)
    weights = _normalised_weights(layout, mask, n_layers)
    name = f"hotspot({x_mm:g}, {y_mm:g}) mm"
    return VolumeSource(weights, as_profile(power_W, key="power_W"), name)


def region_source(
    layout: Layout,
    region: np.ndarray,
    *,
    power_W: ProfileLike,
    layers: Sequence[int] | None = None,
    n_layers: int = 1,
    name: str = "region",
) -> VolumeSource:
    """Build a source spread uniformly over a region, such as a tab.

    Parameters
    ----------
    layout : Layout
        Grid the source lives on.
    region : ndarray
        Bool (ny, nx), the cells that release heat.
    power_W : float or callable
        Total power [W], for example I**2 R computed by the caller, constant
        or as a function of time [s].
    layers : sequence of int, optional
        Layers that release heat; all layers by default.
    n_layers : int
        Number of through-thickness layers of the simulation.
    name : str
        Label for logs and metadata.

    Returns
    -------
    VolumeSource

    Raises
    ------
    LayoutError
        If the region's shape differs from the layout's, the region is empty,
        or a layer is out of range.
    """
    region = np.asarray(region, dtype=bool)
    if region.shape != layout.shape:
        raise LayoutError(
            f"source {name!r}: region shape {region.shape} differs from the "
            f"layout shape {layout.shape}"
        )

    if not region.any():
        raise LayoutError(f"source {name!r}: region is empty; select one cell or more")

    chosen = range(n_layers) if layers is None else layers
    mask = _in_layers(layout, region, chosen, n_layers)
    weights = _normalised_weights(layout, mask, n_layers)
    return VolumeSource(weights, as_profile(power_W, key="power_W"), name)


def held_patch(
    layout: Layout,
    *,
    x_mm: float,
    y_mm: float,
    radius_mm: float,
    temperature_C: ProfileLike,
    layer: int = 0,
    n_layers: int = 1,
) -> HeldPatch:
    """Build a disc of cells held at a prescribed temperature.

    Parameters
    ----------
    layout : Layout
        Grid the patch lives on.
    x_mm, y_mm : float
        Centre of the disc [mm], measured from the layout's top-left corner.
    radius_mm : float
        Radius of the disc [mm]; as for :func:`hotspot`, at least one cell.
    temperature_C : float or callable
        Held temperature [C], constant or as a function of time [s].
    layer : int
        Layer index, 0 for the imaged face.
    n_layers : int
        Number of through-thickness layers of the simulation.

    Returns
    -------
    HeldPatch

    Raises
    ------
    LayoutError
        If the centre lies outside the layout or ``layer`` is out of range.
    """
    disc = _disc_mask(layout, x_mm=x_mm, y_mm=y_mm, radius_mm=radius_mm)
    mask = _in_layers(layout, disc, [layer], n_layers)
    profile = as_profile(temperature_C, key="temperature_C")
    return HeldPatch(mask, profile, f"held({x_mm:g}, {y_mm:g}) mm")


def _disc_mask(
    layout: Layout, *, x_mm: float, y_mm: float, radius_mm: float
) -> np.ndarray:
    inside_x = 0.0 <= x_mm <= layout.width_mm
    inside_y = 0.0 <= y_mm <= layout.height_mm
    if not (inside_x and inside_y):
        raise LayoutError(
            f"point ({x_mm}, {y_mm}) mm lies outside the layout "
            f"{layout.name!r} of {layout.width_mm:g} x {layout.height_mm:g} mm; "
            "give x_mm and y_mm inside it"
        )

    if not (math.isfinite(radius_mm) and radius_mm >= 0):
        raise LayoutError(
            f"radius_mm = {radius_mm} is invalid; it must be a length >= 0 in mm"
        )

    x, y = layout.cell_centres_mm()
    r2 = (x[None, :] - x_mm) ** 2 + (y[:, None] - y_mm) ** 2
    disc = r2 <= radius_mm**2
    if not disc.any():
        disc[np.unravel_index(np.argmin(r2), r2.shape)] = True
    return disc


def _in_layers(
    layout: Layout, plane: np.ndarray, layers: Sequence[int] | range, n_layers: int
) -> np.ndarray:
    check_n_layers(n_layers, layout)
    mask = np.zeros((n_layers, *layout.shape), dtype=bool)
    for layer in layers:
        if not (isinstance(layer, numbers.Integral) and 0 <= layer < n_layers):
            raise LayoutError(
                f"layer = {layer!r} is invalid; give an integer in "
                f"0..{n_layers - 1} for n_layers = {n_layers}"
            )
        mask[layer] = plane
    return mask


def _normalised_weights(layout: Layout, mask: np.ndarray, n_layers: int) -> np.ndarray:
    ratio = layer_volume_ratio(layout, n_layers)[:, None, None]
    volume = float((mask * ratio).sum()) * cell_volume_m3(layout, n_layers)
    return mask / volume


def check_n_layers(n_layers: int, layout: Layout | None = None) -> None:
    """Raise unless ``n_layers`` is an integer >= 1 that fits ``layout``'s stack.

    Raises
    ------
    RecipeError
        If ``n_layers`` is not an integer >= 1.
    LayoutError
        If ``layout`` has a through-thickness stack of another number of
        layers.
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, numbers.Integral):
        raise RecipeError(f"n_layers = {n_layers!r} is invalid; give an integer >= 1")

    if n_layers < 1:
        raise RecipeError(f"n_layers = {n_layers} is invalid; give an integer >= 1")

    if layout is not None and layout.layers is not None:
        layout.layer_thickness_mm(n_layers)
