"""Validation of pseudo-anomalies: how close they sit to normal data.

``closeness_report`` compares normal, pseudo-anomalous and (optionally) real
anomalous frames per sample and per set, and writes a report folder. The
feature spaces (``thermal_features``, ``AutoencoderFeatures``) and the
distances (``mmd``, ``c2st``, ``frechet_distance``) are usable on their own.
"""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from thermosynth.validation.closeness import (
        ClosenessReport,
        closeness_report,
        contrast_against_normal,
        elongation,
        estimate_region,
        region_contrast,
    )
    from thermosynth.validation.distances import (
        C2STResult,
        MMDResult,
        c2st,
        frechet_distance,
        frechet_distance_gaussian,
        mmd,
        nearest_neighbour_ratio,
    )
    from thermosynth.validation.features import (
        THERMAL_FEATURE_NAMES,
        AutoencoderFeatures,
        thermal_features,
    )
    from thermosynth.validation.io import FrameSet, load_for_role, load_frame_set
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "closeness": (
                "ClosenessReport",
                "closeness_report",
                "contrast_against_normal",
                "elongation",
                "estimate_region",
                "region_contrast",
            ),
            "distances": (
                "C2STResult",
                "MMDResult",
                "c2st",
                "frechet_distance",
                "frechet_distance_gaussian",
                "mmd",
                "nearest_neighbour_ratio",
            ),
            "features": (
                "THERMAL_FEATURE_NAMES",
                "AutoencoderFeatures",
                "thermal_features",
            ),
            "io": ("FrameSet", "load_for_role", "load_frame_set"),
        },
    )

__all__ = [
    "THERMAL_FEATURE_NAMES",
    "AutoencoderFeatures",
    "C2STResult",
    "ClosenessReport",
    "FrameSet",
    "MMDResult",
    "c2st",
    "closeness_report",
    "contrast_against_normal",
    "elongation",
    "estimate_region",
    "frechet_distance",
    "frechet_distance_gaussian",
    "load_for_role",
    "load_frame_set",
    "mmd",
    "nearest_neighbour_ratio",
    "region_contrast",
    "thermal_features",
]
