"""Battery geometry: layouts on a grid, materials, and registration to frames."""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from thermosynth.geometry.layout import Layer, Layout, Material
    from thermosynth.geometry.layouts import (
        PV_MODULE_60_CELL,
        cell_grid,
        cylindrical_array,
        from_mask,
        module,
        pouch_cell,
        prismatic_cell,
    )
    from thermosynth.geometry.materials import (
        DEFAULT_MATERIALS,
        laminate,
        layered_material,
        material_from_spec,
    )
    from thermosynth.geometry.registration import (
        check_fits,
        corners_homography,
        footprint,
        quad_from_mask,
        quad_from_warm_region,
        warp_to_frame,
    )
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "layout": (
                "Layer",
                "Layout",
                "Material",
            ),
            "layouts": (
                "PV_MODULE_60_CELL",
                "cell_grid",
                "cylindrical_array",
                "from_mask",
                "module",
                "pouch_cell",
                "prismatic_cell",
            ),
            "materials": (
                "DEFAULT_MATERIALS",
                "laminate",
                "layered_material",
                "material_from_spec",
            ),
            "registration": (
                "check_fits",
                "corners_homography",
                "footprint",
                "quad_from_mask",
                "quad_from_warm_region",
                "warp_to_frame",
            ),
        },
    )

__all__ = [
    "DEFAULT_MATERIALS",
    "PV_MODULE_60_CELL",
    "Layer",
    "Layout",
    "Material",
    "cell_grid",
    "check_fits",
    "corners_homography",
    "cylindrical_array",
    "footprint",
    "from_mask",
    "laminate",
    "layered_material",
    "material_from_spec",
    "module",
    "pouch_cell",
    "prismatic_cell",
    "quad_from_mask",
    "quad_from_warm_region",
    "warp_to_frame",
]
