"""The camera that recorded a normal frame, applied to a simulated rise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from thermosynth.camera.optics import (
    ZERO_C_IN_K,
    apparent_rise_K,
    blur,
    check_emissivity,
    check_sigma,
)
from thermosynth.errors import FrameError, RecipeError
from thermosynth.frames.frame import Frame

GAINS = ("fixed", "stretch")


@dataclass(frozen=True)
class Camera:
    """Camera settings that turn a true temperature rise into a recorded one.

    Attributes
    ----------
    blur_sigma_px : float
        Standard deviation of the Gaussian point spread function [px], >= 0.
    emissivity_surface : float
        Emissivity of the imaged battery surface, in (0, 1].
    emissivity_setting : float
        Emissivity set in the camera, in (0, 1].
    reflected_C : float or None
        Reflected apparent temperature [C]; None uses the ambient temperature.
    gain : {"fixed", "stretch"}
        "fixed" for a fixed temperature range, "stretch" for a range stretched
        to each frame's min..max. ``record_rise`` does not use it; the caller
        passes it on to ``thermosynth.blend.blend``.
    levels_per_kelvin : float or None
        Scale [level K-1] for frames whose unit is "level"; required for them.
    """

    blur_sigma_px: float = 0.0
    emissivity_surface: float = 0.95
    emissivity_setting: float = 0.95
    reflected_C: float | None = None
    gain: Literal["fixed", "stretch"] = "fixed"
    levels_per_kelvin: float | None = None

    def __post_init__(self) -> None:
        check_sigma(self.blur_sigma_px, key="camera.blur_sigma_px")
        check_emissivity(self.emissivity_surface, key="camera.emissivity_surface")
        check_emissivity(self.emissivity_setting, key="camera.emissivity_setting")
        if self.reflected_C is not None and not math.isfinite(self.reflected_C):
            raise RecipeError(
                f"camera.reflected_C = {self.reflected_C} is invalid; give a "
                "finite temperature [C] or leave it unset to use the ambient"
            )
        if self.gain not in GAINS:
            raise RecipeError(
                f"camera.gain = {self.gain!r} is invalid; use one of {GAINS}"
            )
        scale = self.levels_per_kelvin
        if scale is not None and not (math.isfinite(scale) and scale > 0.0):
            raise RecipeError(
                f"camera.levels_per_kelvin = {scale} is invalid; it must be a "
                "finite number > 0 [level K-1]"
            )


def record_rise(
    camera: Camera, rise_K: np.ndarray, frame: Frame, *, ambient_C: float
) -> np.ndarray:
    """Turn a true surface rise into the rise that the camera would record.

    The emissivity correction runs first, per pixel, on the frame's own
    apparent temperature, and the optics blur follows.

    Parameters
    ----------
    camera : Camera
        Camera settings.
    rise_K : ndarray
        True surface temperature rise [K], float (H, W), already warped to
        frame pixels.
    frame : Frame
        Normal frame to blend into. For unit "C" or "K", ``frame.values`` is
        the base apparent temperature; invalid or non-finite pixels use
        ``ambient_C``. For unit "level", ``ambient_C`` is the base everywhere.
    ambient_C : float
        Ambient temperature [C], also the reflected temperature when
        ``camera.reflected_C`` is None.

    Returns
    -------
    ndarray
        Recorded rise, float64 (H, W), in the frame's unit: [K] for frames in
        "C" or "K", levels for frames in "level".

    Raises
    ------
    RecipeError
        If the frame's unit is "level" and ``camera.levels_per_kelvin`` is None.
    ValueError
        If ``rise_K`` does not match the frame's shape or is not finite.
    """
    _check_rise(rise_K, frame)
    if frame.unit == "level" and camera.levels_per_kelvin is None:
        raise RecipeError(
            f"frame {frame.source} is in camera levels, so the rise needs a "
            "scale; set camera.levels_per_kelvin [level K-1] in the recipe"
        )

    reflected_C = ambient_C if camera.reflected_C is None else camera.reflected_C
    apparent = apparent_rise_K(
        rise_K,
        _base_apparent_C(frame, ambient_C=ambient_C),
        emissivity_surface=camera.emissivity_surface,
        emissivity_setting=camera.emissivity_setting,
        reflected_C=reflected_C,
    )

    if frame.unit == "level":
        assert camera.levels_per_kelvin is not None  # checked above
        apparent = apparent * camera.levels_per_kelvin
    return blur(apparent, sigma_px=camera.blur_sigma_px)


def _check_rise(rise_K: np.ndarray, frame: Frame) -> None:
    if rise_K.shape != frame.shape:
        raise ValueError(
            f"rise_K has shape {rise_K.shape} but frame {frame.source} has "
            f"shape {frame.shape}; warp the rise to frame pixels first"
        )
    if not np.all(np.isfinite(rise_K)):
        raise ValueError(
            f"rise_K contains {int(np.sum(~np.isfinite(rise_K)))} NaN or infinite "
            "values; check the simulation output"
        )


def _base_apparent_C(frame: Frame, *, ambient_C: float) -> np.ndarray | float:
    """Return the apparent temperature [C] without the rise, per pixel."""
    if frame.unit == "level":
        return ambient_C
    if frame.unit not in ("C", "K"):
        raise FrameError(
            f"frame {frame.source} has unit {frame.unit!r}; expected 'C', 'K' "
            "or 'level'"
        )
    values_C = frame.values - ZERO_C_IN_K if frame.unit == "K" else frame.values
    usable = frame.valid & np.isfinite(values_C)
    return np.where(usable, values_C, ambient_C)
