"""The camera that recorded a normal frame, applied to a simulated rise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thermosynth.camera.optics import (
    ZERO_C_IN_K,
    RadianceBase,
    blur,
    blur_radius_px,
    check_emissivity,
    check_sigma,
    excess_radiance,
    radiance_base,
    radiance_temperature_K,
)
from thermosynth.camera.radiance import LWIR_BAND_UM, T_MAX_K, T_MIN_K, check_band
from thermosynth.errors import FrameError, RecipeError
from thermosynth.frames.frame import Frame

GAINS = ("fixed", "stretch")
_C_RANGE = f"{T_MIN_K - ZERO_C_IN_K:.2f}..{T_MAX_K - ZERO_C_IN_K:.2f} C"


@dataclass(frozen=True)
class Camera:
    """Camera settings that turn a true temperature rise into a recorded one.

    The camera measures band radiance (`thermosynth.camera.band_radiance`):
    the emissivity correction balances it, and the lens blurs it.

    Attributes
    ----------
    blur_sigma_px : float
        Standard deviation of the Gaussian point spread function [px], >= 0.
    emissivity_surface : float
        Emissivity of the imaged battery surface, in (0, 1], at every pixel
        that ``emissivity_regions`` does not set.
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
    emissivity_regions : mapping of str to float
        Emissivity, in (0, 1], of the pixels of named layout regions (such as
        ``"terminals"``), in place of ``emissivity_surface``. Where regions
        overlap, the later entry wins. `emissivity_map` turns it into one
        emissivity per frame pixel; empty (the default) means
        ``emissivity_surface`` everywhere. Stored as a dict.
    band_um : (float, float)
        Shortest and longest wavelength of the camera's spectral band [um];
        default (7.5, 14.0), an uncooled microbolometer. Stored as a tuple of
        floats.
    """

    blur_sigma_px: float = 0.0
    emissivity_surface: float = 0.95
    emissivity_setting: float = 0.95
    reflected_C: float | None = None
    gain: Literal["fixed", "stretch"] = "fixed"
    levels_per_kelvin: float | None = None
    emissivity_regions: Mapping[str, float] = field(default_factory=dict)
    band_um: tuple[float, float] = LWIR_BAND_UM

    def __post_init__(self) -> None:
        check_sigma(self.blur_sigma_px, key="camera.blur_sigma_px")
        check_emissivity(self.emissivity_surface, key="camera.emissivity_surface")
        check_emissivity(self.emissivity_setting, key="camera.emissivity_setting")
        reflected_C = self.reflected_C
        if reflected_C is not None and not (
            math.isfinite(reflected_C)
            and T_MIN_K <= reflected_C + ZERO_C_IN_K <= T_MAX_K
        ):
            raise RecipeError(
                f"camera.reflected_C = {reflected_C} is invalid; give a "
                f"temperature [C] within {_C_RANGE}, or leave it unset to use "
                "the ambient",
                keys=(("camera", "reflected_C"),),
            )
        if self.gain not in GAINS:
            raise RecipeError(
                f"camera.gain = {self.gain!r} is invalid; use one of {GAINS}",
                keys=(("camera", "gain"),),
            )
        scale = self.levels_per_kelvin
        if scale is not None and not (math.isfinite(scale) and scale > 0.0):
            raise RecipeError(
                f"camera.levels_per_kelvin = {scale} is invalid; it must be a "
                "finite number > 0 [level K-1]",
                keys=(("camera", "levels_per_kelvin"),),
            )
        regions = dict(self.emissivity_regions)
        for name, value in regions.items():
            check_emissivity(value, key=f"camera.emissivity_regions.{name}")
        object.__setattr__(self, "emissivity_regions", regions)
        band = check_band(self.band_um, key="camera.band_um")
        object.__setattr__(self, "band_um", band)


@dataclass(frozen=True)
class RecordingBase:
    """The parts of `record_rise` that depend on the frame but not on the rise.

    Make it with `recording_base` and pass it to `record_rise` for every rise
    recorded on the same frame with the same camera and ambient temperature.

    Attributes
    ----------
    radiance : RadianceBase
        Apparent and true base temperature [K] and their band radiance
        [W m-2 sr-1], each float64 (H, W).
    zero_recorded : ndarray
        Recorded rise for a true rise of exactly 0, in the frame's unit,
        float64 (H, W). A zero rise adds no radiance, so this is the round-off
        of converting the base's radiance back to temperature, about 1e-13 K,
        kept so that the result does not depend on whether a base is passed.
    levels_per_kelvin : float or None
        Scale [level K-1] for frames in camera levels; None for "C" or "K".
    shape : tuple of int
        (H, W) of the frame [px].
    emissivity_map : ndarray or None
        Surface emissivity per pixel, float64 (H, W), that the base was made
        with; None where ``camera.emissivity_surface`` applies everywhere.
    """

    radiance: RadianceBase
    zero_recorded: np.ndarray
    levels_per_kelvin: float | None
    shape: tuple[int, int]
    emissivity_map: np.ndarray | None = None


def recording_base(
    camera: Camera,
    frame: Frame,
    *,
    ambient_C: float,
    emissivity_map: np.ndarray | None = None,
) -> RecordingBase:
    """Compute the per-frame part of `record_rise` once.

    Parameters and errors are those of `record_rise`; the base keeps
    ``emissivity_map`` for every rise recorded on it.
    """
    _check_level_scale(camera, frame)
    emissivity = _surface_emissivity(camera, emissivity_map, frame.shape)
    radiance = radiance_base(
        _base_apparent_C(frame, ambient_C=ambient_C),
        **_base_options(camera, ambient_C, emissivity),
    )
    radiance = RadianceBase(*(np.broadcast_to(f, frame.shape) for f in radiance))

    scale = camera.levels_per_kelvin if frame.unit == "level" else None
    zero_recorded = _recorded_rise(np.zeros(frame.shape), radiance, camera, scale)
    stored_map = None if emissivity_map is None else np.asarray(emissivity, float)
    return RecordingBase(radiance, zero_recorded, scale, frame.shape, stored_map)


def record_rise(
    camera: Camera,
    rise_K: np.ndarray,
    frame: Frame,
    *,
    ambient_C: float,
    base: RecordingBase | None = None,
    emissivity_map: np.ndarray | None = None,
) -> np.ndarray:
    """Turn a true surface rise into the rise that the camera would record.

    The emissivity correction runs first, per pixel, on the frame's own
    apparent temperature ``T_base``. It gives the band radiance ``L(T_app)``
    of the apparent temperature after the rise. The lens blurs radiance, so
    the optics blur acts on the radiance that the rise adds, and the recorded
    rise is ``L^-1(L(T_base) + blur(L(T_app) - L(T_base))) - T_base``. On a
    smooth base this is the blurred apparent rise plus a term that grows with
    the square of the rise, below 1e-3 K for a rise of 0.5 K. A hot spot
    blurred with cool pixels records hotter than the mean of their
    temperatures: half 600 C and half 25 C records about 383 C, not 312 C.

    Parameters
    ----------
    camera : Camera
        Camera settings.
    rise_K : ndarray
        True surface temperature rise [K], already warped to frame pixels:
        float (H, W), or (H, W, s) with ``s`` samples over each pixel's
        footprint (`thermosynth.geometry.warp_to_frame` with
        ``keep_samples``). A pixel integrates radiance, so its excess
        radiance is the mean of its samples' excess radiance: a pixel a
        quarter covered by a 100 K rise on 25 C records about 32.3 K, not
        the 25 K of the mean temperature.
    frame : Frame
        Normal frame to blend into. For unit "C" or "K", ``frame.values`` is
        the base apparent temperature; invalid or non-finite pixels use
        ``ambient_C``. For unit "level", ``ambient_C`` is the base everywhere,
        for the emissivity correction and for the blur in radiance.
    ambient_C : float
        Ambient temperature [C], also the reflected temperature when
        ``camera.reflected_C`` is None.
    base : RecordingBase, optional
        ``recording_base(camera, frame, ambient_C=ambient_C)``, computed once
        for many rises on this frame. The result is the same, bit for bit;
        only the work is less, because pixels farther than the blur radius
        from every non-zero rise take the stored result for a zero rise.
    emissivity_map : ndarray, optional
        Surface emissivity per pixel, float (H, W) in (0, 1], in place of
        ``camera.emissivity_surface``; from `emissivity_map`. Required when
        ``camera.emissivity_regions`` is set. With ``base``, pass it to
        `recording_base` instead.

    Returns
    -------
    ndarray
        Recorded rise, float64 (H, W), in the frame's unit: [K] for frames in
        "C" or "K", levels for frames in "level".

    Raises
    ------
    RecipeError
        If the frame's unit is "level" and ``camera.levels_per_kelvin`` is
        None, or if ``camera.emissivity_regions`` is set and no emissivity
        map was given (here or to `recording_base`).
    FrameError
        If a usable pixel of a frame in "C" or "K" lies outside the
        150..100,000 K of the radiance table.
    SimulationError
        If the rise takes a pixel above 100,000 K.
    ValueError
        If ``rise_K`` does not match the frame's shape or is not finite, if
        ``emissivity_map`` does not match it, or if both ``base`` and
        ``emissivity_map`` are given.
    """
    _check_rise(rise_K, frame)
    _check_level_scale(camera, frame)
    if base is not None:
        if emissivity_map is not None:
            raise ValueError(
                "record_rise got both base and emissivity_map; pass the map to "
                "recording_base, which keeps it in the base"
            )
        return _record_on_base(camera, rise_K, base, ambient_C)

    emissivity = _surface_emissivity(camera, emissivity_map, frame.shape)
    radiance = radiance_base(
        _base_apparent_C(frame, ambient_C=ambient_C),
        **_base_options(camera, ambient_C, emissivity),
    )
    excess = _pixel_excess(
        rise_K, radiance.true_K, radiance.true_radiance, camera, emissivity
    )

    scale = camera.levels_per_kelvin if frame.unit == "level" else None
    blurred = blur(excess, sigma_px=camera.blur_sigma_px)
    return _recorded_rise(blurred, radiance, camera, scale)


def _record_on_base(
    camera: Camera, rise_K: np.ndarray, base: RecordingBase, ambient_C: float
) -> np.ndarray:
    """Record a rise on a precomputed base, working only near non-zero rise.

    Every step is per pixel except the blur, whose output at a pixel depends
    only on inputs within ``radius`` rows and columns (a border reflects
    pixels that are inside that box too). So pixels farther than ``radius``
    from the box of non-zero rise equal ``base.zero_recorded``, and pixels
    near it need inputs within ``2 * radius`` of the box.
    """
    if rise_K.shape[:2] != base.shape:
        raise ValueError(
            f"rise_K has shape {rise_K.shape} but the recording base was made "
            f"for a frame of shape {base.shape}; make the base from this frame"
        )
    emissivity = _surface_emissivity(camera, base.emissivity_map, base.shape)
    box = _nonzero_box(rise_K)
    if box is None:
        return base.zero_recorded.copy()

    radius = blur_radius_px(camera.blur_sigma_px)
    outer = _grow_box(box, 2 * radius, base.shape)
    if isinstance(emissivity, np.ndarray):
        emissivity = emissivity[box]
    # A zero rise adds exactly zero radiance, so only the box needs computing.
    excess = np.zeros((outer[0].stop - outer[0].start, outer[1].stop - outer[1].start))
    excess[_relative_box(box, outer)] = _pixel_excess(
        rise_K[box],
        base.radiance.true_K[box],
        base.radiance.true_radiance[box],
        camera,
        emissivity,
    )
    blurred = blur(excess, sigma_px=camera.blur_sigma_px)

    near = _grow_box(box, radius, base.shape)
    recorded = base.zero_recorded.copy()
    recorded[near] = _recorded_rise(
        blurred[_relative_box(near, outer)],
        RadianceBase(*(field[near] for field in base.radiance)),
        camera,
        base.levels_per_kelvin,
    )
    return recorded


def _pixel_excess(
    rise_K: np.ndarray,
    true_K: np.ndarray,
    true_radiance: np.ndarray,
    camera: Camera,
    emissivity: float | np.ndarray,
) -> np.ndarray:
    """Return the excess radiance per pixel, the mean over its samples if any.

    ``rise_K`` is (H, W), or (H, W, s) with ``s`` samples of each pixel's
    footprint. The per-pixel ``true_K``, ``true_radiance`` and
    ``emissivity`` apply to all of a pixel's samples.
    """
    if rise_K.ndim == 2:
        return excess_radiance(
            rise_K, true_K, true_radiance, **_excess_options(camera, emissivity)
        )

    if isinstance(emissivity, np.ndarray):
        emissivity = emissivity[..., None]
    excess = excess_radiance(
        rise_K,
        true_K[..., None],
        true_radiance[..., None],
        **_excess_options(camera, emissivity),
    )
    return excess.mean(axis=-1)


def _relative_box(
    box: tuple[slice, slice], outer: tuple[slice, slice]
) -> tuple[slice, slice]:
    """Return ``box`` in the coordinates of the array cut out by ``outer``."""
    rows, cols = (
        slice(b.start - o.start, b.stop - o.start)
        for b, o in zip(box, outer, strict=True)
    )
    return rows, cols


def _recorded_rise(
    blurred: np.ndarray,
    base: RadianceBase,
    camera: Camera,
    levels_per_kelvin: float | None,
) -> np.ndarray:
    """Recorded rise in the frame's unit, per pixel, from the blurred excess."""
    apparent = base.apparent_radiance + blurred
    recorded = radiance_temperature_K(apparent, band_um=camera.band_um)
    recorded -= base.apparent_K
    if levels_per_kelvin is not None:
        recorded *= levels_per_kelvin
    return recorded


def _nonzero_box(field: np.ndarray) -> tuple[slice, slice] | None:
    if field.ndim == 3:
        field = np.any(field, axis=-1, keepdims=False).astype(bool)
    rows = np.flatnonzero(field.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(field.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _grow_box(
    box: tuple[slice, slice], margin: int, shape: tuple[int, int]
) -> tuple[slice, slice]:
    rows, cols = box
    return (
        slice(max(rows.start - margin, 0), min(rows.stop + margin, shape[0])),
        slice(max(cols.start - margin, 0), min(cols.stop + margin, shape[1])),
    )


def _base_options(
    camera: Camera, ambient_C: float, emissivity_surface: float | np.ndarray
) -> dict[str, Any]:
    reflected_C = ambient_C if camera.reflected_C is None else camera.reflected_C
    return {
        "reflected_C": reflected_C,
        **_excess_options(camera, emissivity_surface),
    }


def _excess_options(
    camera: Camera, emissivity_surface: float | np.ndarray
) -> dict[str, Any]:
    return {
        "emissivity_surface": emissivity_surface,
        "emissivity_setting": camera.emissivity_setting,
        "band_um": camera.band_um,
    }


def _surface_emissivity(
    camera: Camera, emissivity_map: np.ndarray | None, shape: tuple[int, int]
) -> float | np.ndarray:
    """Return the surface emissivity to record with: the map, or the camera's."""
    if emissivity_map is None:
        if camera.emissivity_regions:
            raise RecipeError(
                f"camera.emissivity_regions = {dict(camera.emissivity_regions)} "
                "is set, but the rise was recorded without an emissivity map; "
                "make one with thermosynth.camera.emissivity_map(camera, layout, "
                "homography, frame_shape) and pass it as emissivity_map"
            )
        return camera.emissivity_surface

    emissivity = np.asarray(emissivity_map, dtype=np.float64)
    if emissivity.shape != shape:
        raise ValueError(
            f"emissivity_map has shape {emissivity.shape} but the frame has "
            f"shape {shape}; make the map for this frame's size"
        )
    return emissivity


def _check_level_scale(camera: Camera, frame: Frame) -> None:
    if frame.unit == "level" and camera.levels_per_kelvin is None:
        raise RecipeError(
            f"frame {frame.source} is in camera levels, so the rise needs a "
            "scale; set camera.levels_per_kelvin [level K-1] in the recipe",
            keys=(("camera", "levels_per_kelvin"),),
        )


def _check_rise(rise_K: np.ndarray, frame: Frame) -> None:
    if rise_K.ndim not in (2, 3) or rise_K.shape[:2] != frame.shape:
        raise ValueError(
            f"rise_K has shape {rise_K.shape} but frame {frame.source} has "
            f"shape {frame.shape}; warp the rise to frame pixels first, as "
            "(H, W) or (H, W, samples)"
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
    base_C = np.where(usable, values_C, ambient_C)
    # The range of the frame's own pixels: the ambient fill of unusable
    # pixels would show up in a message as the frame's.
    seen_C = values_C[usable] if usable.any() else base_C
    coldest, hottest = float(np.min(seen_C)), float(np.max(seen_C))
    if not (T_MIN_K <= coldest + ZERO_C_IN_K and hottest + ZERO_C_IN_K <= T_MAX_K):
        raise FrameError(
            f"frame {frame.source} has apparent temperatures of {coldest:.2f} to "
            f"{hottest:.2f} C, outside the {_C_RANGE} that the camera model "
            "covers; check frames.unit and the calibration, or mark those pixels "
            "invalid with frames.valid_mask"
        )
    return base_C
