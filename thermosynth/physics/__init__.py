"""Heat simulation on a layout grid: time profiles, sources and the solver."""

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
