"""Camera model: emissivity, optics blur and gain applied to a simulated rise."""

from thermosynth.camera.emissivity import check_emissivity_regions, emissivity_map
from thermosynth.camera.model import Camera, record_rise
from thermosynth.camera.optics import apparent_rise_K, blur
from thermosynth.camera.radiance import band_radiance, band_temperature

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
