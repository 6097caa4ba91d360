"""Camera model: emissivity, optics blur and gain applied to a simulated rise."""

from typing import TYPE_CHECKING

from thermosynth.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from thermosynth.camera.emissivity import check_emissivity_regions, emissivity_map
    from thermosynth.camera.model import Camera, record_rise
    from thermosynth.camera.optics import apparent_rise_K, blur
    from thermosynth.camera.radiance import band_radiance, band_temperature
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "emissivity": (
                "check_emissivity_regions",
                "emissivity_map",
            ),
            "model": (
                "Camera",
                "record_rise",
            ),
            "optics": (
                "apparent_rise_K",
                "blur",
            ),
            "radiance": (
                "band_radiance",
                "band_temperature",
            ),
        },
    )

__all__ = [
    "Camera",
    "apparent_rise_K",
    "band_radiance",
    "band_temperature",
    "blur",
    "check_emissivity_regions",
    "emissivity_map",
    "record_rise",
]
