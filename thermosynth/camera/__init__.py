"""Camera model: emissivity, optics blur and gain applied to a simulated rise."""

from thermosynth.camera.model import Camera, record_rise
from thermosynth.camera.optics import apparent_rise_K, blur

__all__ = ["Camera", "apparent_rise_K", "blur", "record_rise"]
