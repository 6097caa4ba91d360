"""Default materials with literature values, and materials built from recipes.

Each entry of `DEFAULT_MATERIALS` names its source in a comment. Values of
composite parts (cells, PV laminates) are effective properties of the whole
stack: in-plane conductivity is the thickness-weighted mean of the layers'
conductivities (layers in parallel), through-thickness conductivity the
thickness-weighted harmonic mean (layers in series). `layered_material`
applies the same rule to anisotropic layers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from thermosynth.errors import LayoutError, RecipeError
from thermosynth.geometry.layout import Material

__all__ = ["DEFAULT_MATERIALS", "laminate", "layered_material", "material_from_spec"]

logger = logging.getLogger(__name__)

# Volumetric heat capacity of most solids and liquids [J m-3 K-1]: 2.4e6 for
# aluminium, 3.4e6 for copper, 4.2e6 for water. Only gases (air: 1.2e3),
# foams and aerogels lie below, so a value such as 1100 is more likely a
# specific heat c_p [J kg-1 K-1] given without the density.
SOLID_RHO_CP_J_M3K = (0.5e6, 5.0e6)

# Conductivity above that of any bulk solid near 300 K [W m-1 K-1]. Diamond,
# the best conductor, reaches about 2000-2300. A larger value is more likely
# in mW m-1 K-1.
MAX_SOLID_K_W_MK = 2500.0

# Recipe material names that are gases, whose heat capacity is far below the
# solids' range.
GAS_MATERIALS = frozenset({"air", "background"})


def laminate(name: str, layers: list[tuple[float, float, float]]) -> Material:
    """Build the effective material of a stack of isotropic layers.

    Parameters
    ----------
    name : str
        Name of the resulting material.
    layers : list of (thickness_mm, k_W_mK, rho_cp_J_m3K)
        Thickness [mm], conductivity [W m-1 K-1] and volumetric heat capacity
        [J m-3 K-1] of each layer.

    Returns
    -------
    Material
        In-plane conductivity from layers in parallel, through-thickness
        conductivity from layers in series, heat capacity averaged by
        thickness.
    """
    materials = [
        (Material(f"{name} layer {i}", k, k, k, rho_cp), t)
        for i, (t, k, rho_cp) in enumerate(layers)
    ]
    return layered_material(name, materials)


def layered_material(name: str, layers: list[tuple[Material, float]]) -> Material:
    """Build the effective material of a stack of layers along z.

    Heat flowing along x or y crosses the layers side by side (in parallel),
    so each in-plane conductivity is the thickness-weighted mean of the
    layers' conductivities. Heat flowing along z crosses them one after
    another (in series), so the through-thickness conductivity is the
    thickness-weighted harmonic mean. The volumetric heat capacity is the
    thickness-weighted mean.

    Parameters
    ----------
    name : str
        Name of the resulting material, shown in the layout's material table.
    layers : list of (Material, float)
        Each layer's material and thickness [mm], in any order.

    Returns
    -------
    Material
        ``k_x = sum(t k_x) / T``, ``k_y = sum(t k_y) / T``,
        ``k_z = T / sum(t / k_z)`` [W m-1 K-1] and
        ``rho_cp = sum(t rho_cp) / T`` [J m-3 K-1], where ``T = sum(t)``.

    Raises
    ------
    LayoutError
        If ``layers`` is empty or a thickness is not a positive finite number.

    Examples
    --------
    >>> steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    >>> stack = Material("stack", 25.0, 25.0, 0.5, 2.4e6)
    >>> walled = layered_material("walled", [(steel, 1.0), (stack, 8.0), (steel, 1.0)])
    >>> round(walled.k_x_W_mK, 6), round(walled.k_z_W_mK, 6)
    (23.0, 0.619835)
    """
    _check_layers(name, layers)
    total_mm = sum(t for _, t in layers)

    k_x = sum(t * m.k_x_W_mK for m, t in layers) / total_mm
    k_y = sum(t * m.k_y_W_mK for m, t in layers) / total_mm
    k_z = total_mm / sum(t / m.k_z_W_mK for m, t in layers)
    rho_cp = sum(t * m.rho_cp_J_m3K for m, t in layers) / total_mm

    return Material(name, k_x, k_y, k_z, rho_cp)


def _check_layers(name: str, layers: list[tuple[Material, float]]) -> None:
    if not layers:
        raise LayoutError(
            f"layered material {name!r}: no layers given; give at least one "
            "(Material, thickness_mm) pair"
        )
    for material, thickness_mm in layers:
        if not math.isfinite(thickness_mm) or thickness_mm <= 0:
            raise LayoutError(
                f"layered material {name!r}: layer {material.name!r} has "
                f"thickness_mm = {thickness_mm}; give a positive finite "
                "thickness or leave the layer out"
            )


# Layers of a crystalline-silicon PV module (thickness [mm], k [W m-1 K-1],
# rho*cp [J m-3 K-1]). Properties per layer from Armstrong and Hurley, "A
# thermal model for photovoltaic panels under varying atmospheric
# conditions", Applied Thermal Engineering 30 (2010) 1488-1495, Table 1.
# NOTE: the layer values were not rechecked against that table, and the
# thicknesses are typical of a glass-backsheet module rather than taken from
# it. The aluminium frame is not part of the stack.
_PV_GLASS = (3.2, 1.8, 3000.0 * 500.0)
_PV_EVA = (0.45, 0.35, 960.0 * 2090.0)
_PV_SILICON = (0.2, 148.0, 2330.0 * 677.0)
_PV_BACKSHEET = (0.3, 0.2, 1200.0 * 1250.0)

DEFAULT_MATERIALS: dict[str, Material] = {
    # Large-format 20 Ah LFP pouch cell fitted by inverse modelling of IR
    # thermography: in-plane 26.6, through-plane 0.52 W m-1 K-1, heat capacity
    # 541 J/K for a 224 mL cell (2.42e6 J m-3 K-1). Source: "Anisotropic
    # thermal characterisation of large-format lithium-ion pouch cells",
    # Batteries & Supercaps (2022), doi:10.1002/batt.202100401.
    "pouch_cell": Material("pouch_cell", 26.6, 26.6, 0.52, 541.0 / 224e-6),
    # NOTE: assumed equal to the pouch cell, because a prismatic cell's
    # electrode stack has the same layered structure. No measurement on a
    # prismatic cell is used here.
    "prismatic_cell": Material("prismatic_cell", 26.6, 26.6, 0.52, 541.0 / 224e-6),
    # Cylindrical LFP cells (26650, 18650): radial 0.20, axial 30.4 W m-1 K-1.
    # Source: Drake et al., "Measurement of anisotropic thermophysical
    # properties of cylindrical Li-ion cells", J. Power Sources 252 (2014)
    # 298-304. In a top view the face is radial in both x and y, and z is the
    # cell axis. NOTE: rho*cp is an estimate (45 g in 16.5 mL, about
    # 1000 J kg-1 K-1), not from that paper.
    "cylindrical_cell": Material("cylindrical_cell", 0.20, 0.20, 30.4, 2.7e6),
    # Pure aluminium and copper at 300 K: Incropera, DeWitt, Bergman and
    # Lavine, Fundamentals of Heat and Mass Transfer, 6th ed., Table A.1.
    "aluminium": Material("aluminium", 237.0, 237.0, 237.0, 2702.0 * 903.0),
    "copper": Material("copper", 401.0, 401.0, 401.0, 8933.0 * 385.0),
    # Air at 300 K and 1 atm: Incropera et al., 6th ed., Table A.4.
    "air": Material("air", 0.0263, 0.0263, 0.0263, 1.1614 * 1007.0),
    # NOTE: typical datasheet values of a ceramic-filled silicone gap pad
    # (3 W m-1 K-1, about 3000 kg m-3 and 1000 J kg-1 K-1), not one product.
    "thermal_pad": Material("thermal_pad", 3.0, 3.0, 3.0, 3.0e6),
    # AISI 304 stainless steel at 300 K: Incropera et al., 6th ed., Table A.1.
    "casing_steel": Material("casing_steel", 14.9, 14.9, 14.9, 7900.0 * 477.0),
    # Aluminium-manganese alloy 3003, the usual can of prismatic lithium-ion
    # cells. Some older or small prismatic cells have nickel-plated steel
    # cans, for which `casing_steel` is closer. Datasheet values:
    # 154 W m-1 K-1, 2730 kg m-3, 893 J kg-1 K-1 (Alloys International,
    # "Aluminum 3003" material data sheet). NOTE: published conductivities of
    # 3003 range from 154 to 193 W m-1 K-1 with temper, and the temper of a
    # given cell's can is not known.
    "casing_aluminium": Material(
        "casing_aluminium", 154.0, 154.0, 154.0, 2730.0 * 893.0
    ),
    # Glass / EVA / silicon / EVA / backsheet stack, layer values above.
    "pv_laminate": laminate(
        "pv_laminate", [_PV_GLASS, _PV_EVA, _PV_SILICON, _PV_EVA, _PV_BACKSHEET]
    ),
    # The same stack between PV cells, where the silicon layer is EVA.
    "pv_laminate_gap": laminate(
        "pv_laminate_gap", [_PV_GLASS, _PV_EVA, _PV_EVA, _PV_EVA, _PV_BACKSHEET]
    ),
    # Glass / EVA / glass stack of a thin-film (CdTe or CIGS) module, layer
    # values above. The absorber and contact films are a few micrometres
    # thick: a 0.5 um molybdenum film (138 W m-1 K-1) adds an estimated 0.6 %
    # to the in-plane conductance, so they are left out. NOTE: some such
    # modules laminate with PVB or a polyolefin instead of EVA.
    "pv_glass_glass_laminate": laminate(
        "pv_glass_glass_laminate", [_PV_GLASS, _PV_EVA, _PV_GLASS]
    ),
    # NOTE: typical values of a polyurethane potting compound (0.5 W m-1 K-1,
    # about 1500 kg m-3 and 1200 J kg-1 K-1), not one product.
    "potting": Material("potting", 0.5, 0.5, 0.5, 1.8e6),
}

_K_KEYS = ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK")
_SPEC_KEYS = {"base", "k_in_plane_W_mK", "k_through_W_mK", "rho_cp_J_m3K", *_K_KEYS}


def material_from_spec(
    name: str,
    spec: Mapping[str, Any] | None,
    *,
    defaults: Mapping[str, Material] = DEFAULT_MATERIALS,
) -> Material:
    """Build a material from a recipe entry.

    Parameters
    ----------
    name : str
        Name of the material. Without ``"base"`` in ``spec``, a default of
        this name supplies the properties that ``spec`` leaves out.
    spec : mapping or None
        Recipe entry with any of ``"base"`` (name of a default material to
        start from), ``"k_in_plane_W_mK"`` (sets x and y), ``"k_through_W_mK"``
        (sets z), ``"k_x_W_mK"``, ``"k_y_W_mK"``, ``"k_z_W_mK"``
        [W m-1 K-1] and ``"rho_cp_J_m3K"`` [J m-3 K-1]. None or an empty
        mapping returns the default named ``name``.
    defaults : mapping of str to Material
        Materials that ``name`` and ``"base"`` refer to.

    Returns
    -------
    Material
        Named ``name``.

    Raises
    ------
    RecipeError
        On an unknown key, a value that is not a positive number, a base that
        is not in ``defaults``, a conflict between ``k_in_plane_W_mK`` and
        ``k_x_W_mK``/``k_y_W_mK``, or a missing property with no default.
        Its ``keys`` name the entry, such as ``("materials", name, "base")``.
    """
    spec = dict(spec or {})
    _check_keys(name, spec)
    values = _base_values(name, spec, defaults)

    for key, value in spec.items():
        if key != "base":
            _check_number(name, key, value)
    _apply_shorthands(name, spec, values)

    missing = [k for k in (*_K_KEYS, "rho_cp_J_m3K") if k not in values]
    if missing:
        raise RecipeError(
            f"material {name!r}: missing {', '.join(missing)}; give them, or "
            f"'base' with one of {sorted(defaults)}",
            keys=(("materials", name),),
        )
    warn_implausible(name, spec)
    return Material(name, **{k: float(v) for k, v in values.items()})


def warn_implausible(name: str, spec: Mapping[str, Any]) -> None:
    """Log a warning for each value in ``spec`` that no real solid has.

    Only the keys that ``spec`` sets are checked, so defaults never warn. The
    heat capacity of a gas (``name`` or ``base`` in `GAS_MATERIALS`) is not
    checked.
    """
    for key in ("k_in_plane_W_mK", "k_through_W_mK", *_K_KEYS):
        if key in spec and spec[key] > MAX_SOLID_K_W_MK:
            logger.warning(
                "materials.%s.%s = %g W m-1 K-1 is above %g W m-1 K-1, more "
                "than any solid conducts (diamond: about 2000); check that it "
                "is in W m-1 K-1, not mW m-1 K-1",
                name,
                key,
                spec[key],
                MAX_SOLID_K_W_MK,
            )

    is_gas = name in GAS_MATERIALS or spec.get("base") in GAS_MATERIALS
    low, high = SOLID_RHO_CP_J_M3K
    rho_cp = spec.get("rho_cp_J_m3K")
    if rho_cp is None or is_gas or low <= rho_cp <= high:
        return
    logger.warning(
        "materials.%s.rho_cp_J_m3K = %g J m-3 K-1 is outside %g-%g J m-3 K-1, "
        "the range of solids and liquids (gases, foams and aerogels are "
        "lower); give density times specific heat, not c_p in J kg-1 K-1",
        name,
        rho_cp,
        low,
        high,
    )


def _check_keys(name: str, spec: dict[str, Any]) -> None:
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise RecipeError(
            f"material {name!r}: unknown key(s) {unknown}; valid keys are "
            f"{sorted(_SPEC_KEYS)}",
            keys=tuple(("materials", name, key) for key in unknown),
        )


def _base_values(
    name: str, spec: dict[str, Any], defaults: Mapping[str, Material]
) -> dict[str, float]:
    base = spec.get("base", name)
    if "base" in spec and base not in defaults:
        raise RecipeError(
            f"material {name!r}: base = {base!r} is not a known material; "
            f"use one of {sorted(defaults)}",
            keys=(("materials", name, "base"),),
        )
    if base not in defaults:
        return {}

    material = defaults[base]
    return {k: getattr(material, k) for k in (*_K_KEYS, "rho_cp_J_m3K")}


def _check_number(name: str, key: str, value: Any) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not value > 0 or value == float("inf"):
        raise RecipeError(
            f"material {name!r}: {key} = {value!r} is invalid; give a positive "
            "finite number in the unit that the key names",
            keys=(("materials", name, key),),
        )


def _apply_shorthands(
    name: str, spec: dict[str, Any], values: dict[str, float]
) -> None:
    if "k_in_plane_W_mK" in spec:
        clash = [k for k in ("k_x_W_mK", "k_y_W_mK") if k in spec]
        if clash:
            raise RecipeError(
                f"material {name!r}: k_in_plane_W_mK = {spec['k_in_plane_W_mK']} "
                f"conflicts with {clash}; give either k_in_plane_W_mK or "
                "k_x_W_mK and k_y_W_mK",
                keys=tuple(
                    ("materials", name, key) for key in ("k_in_plane_W_mK", *clash)
                ),
            )
        values["k_x_W_mK"] = values["k_y_W_mK"] = spec["k_in_plane_W_mK"]
    if "k_through_W_mK" in spec:
        if "k_z_W_mK" in spec:
            raise RecipeError(
                f"material {name!r}: k_through_W_mK = {spec['k_through_W_mK']} "
                "conflicts with k_z_W_mK; give only one of them",
                keys=(
                    ("materials", name, "k_through_W_mK"),
                    ("materials", name, "k_z_W_mK"),
                ),
            )
        values["k_z_W_mK"] = spec["k_through_W_mK"]

    for key in (*_K_KEYS, "rho_cp_J_m3K"):
        if key in spec:
            values[key] = spec[key]
