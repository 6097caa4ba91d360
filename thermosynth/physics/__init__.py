"""Heat simulation on a layout grid: time profiles, sources and the solver."""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from thermosynth.physics.heat import Boundary, HeatResult, simulate
    from thermosynth.physics.profiles import (
        Constant,
        Exponential,
        Pulse,
        Ramp,
        Tabulated,
        profile_from_spec,
    )
    from thermosynth.physics.sources import (
        HeldPatch,
        VolumeSource,
        held_patch,
        hotspot,
        region_source,
    )
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "heat": (
                "Boundary",
                "HeatResult",
                "simulate",
            ),
            "profiles": (
                "Constant",
                "Exponential",
                "Pulse",
                "Ramp",
                "Tabulated",
                "profile_from_spec",
            ),
            "sources": (
                "HeldPatch",
                "VolumeSource",
                "held_patch",
                "hotspot",
                "region_source",
            ),
        },
    )

__all__ = [
    "Boundary",
    "Constant",
    "Exponential",
    "HeatResult",
    "HeldPatch",
    "Pulse",
    "Ramp",
    "Tabulated",
    "VolumeSource",
    "held_patch",
    "hotspot",
    "profile_from_spec",
    "region_source",
    "simulate",
]
