"""The camera that recorded a normal frame, applied to a simulated rise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thermosynth.camera.optics import (
    ZERO_C_IN_K,
    apparent_rise_K,
    base_temperatures_K,
    blur,
    blur_radius_px,
    check_emissivity,
    check_sigma,
    rise_from_base_K,
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
    """

    blur_sigma_px: float = 0.0
    emissivity_surface: float = 0.95
    emissivity_setting: float = 0.95
    reflected_C: float | None = None
    gain: Literal["fixed", "stretch"] = "fixed"
    levels_per_kelvin: float | None = None
    emissivity_regions: Mapping[str, float] = field(default_factory=dict)

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
        regions = dict(self.emissivity_regions)
        for name, value in regions.items():
            check_emissivity(value, key=f"camera.emissivity_regions.{name}")
        object.__setattr__(self, "emissivity_regions", regions)


@dataclass(frozen=True)
class RecordingBase:
    """The parts of `record_rise` that depend on the frame but not on the rise.

    Make it with `recording_base` and pass it to `record_rise` for every rise
    recorded on the same frame with the same camera and ambient temperature.

    Attributes
    ----------
    apparent_K, true_K : ndarray
        Apparent and true base temperature [K], float64 (H, W).
    zero_apparent : ndarray
        Apparent rise for a true rise of exactly 0, in the frame's unit,
        float64 (H, W). It is round-off of about 1e-13 K, kept so that the
        result does not depend on whether a base is passed.
    zero_recorded : ndarray
        ``zero_apparent`` after the optics blur.
    levels_per_kelvin : float or None
        Scale [level K-1] for frames in camera levels; None for "C" or "K".
    shape : tuple of int
        (H, W) of the frame [px].
    emissivity_map : ndarray or None
        Surface emissivity per pixel, float64 (H, W), that the base was made
        with; None where ``camera.emissivity_surface`` applies everywhere.
    """

    apparent_K: np.ndarray
    true_K: np.ndarray
    zero_apparent: np.ndarray
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
    options = _radiance_options(camera, ambient_C, emissivity)
    apparent_K, true_K = base_temperatures_K(
        _base_apparent_C(frame, ambient_C=ambient_C), **options
    )
    apparent_K = np.broadcast_to(apparent_K, frame.shape)
    true_K = np.broadcast_to(true_K, frame.shape)

    scale = camera.levels_per_kelvin if frame.unit == "level" else None
    zero = _apparent_rise(np.zeros(frame.shape), apparent_K, true_K, options, scale)
    zero_recorded = blur(zero, sigma_px=camera.blur_sigma_px)
    stored_map = None if emissivity_map is None else np.asarray(emissivity, float)
    return RecordingBase(
        apparent_K, true_K, zero, zero_recorded, scale, frame.shape, stored_map
    )


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
    apparent = apparent_rise_K(
        rise_K,
        _base_apparent_C(frame, ambient_C=ambient_C),
        **_radiance_options(camera, ambient_C, emissivity),
    )
    if frame.unit == "level":
        assert camera.levels_per_kelvin is not None  # checked above
        apparent = apparent * camera.levels_per_kelvin
    return blur(apparent, sigma_px=camera.blur_sigma_px)


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
    if rise_K.shape != base.shape:
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
    apparent = base.zero_apparent[outer].copy()
    inner = tuple(
        slice(b.start - o.start, b.stop - o.start)
        for b, o in zip(box, outer, strict=True)
    )
    if isinstance(emissivity, np.ndarray):
        emissivity = emissivity[box]
    apparent[inner] = _apparent_rise(
        rise_K[box],
        base.apparent_K[box],
        base.true_K[box],
        _radiance_options(camera, ambient_C, emissivity),
        base.levels_per_kelvin,
    )
    blurred = blur(apparent, sigma_px=camera.blur_sigma_px)

    near = _grow_box(box, radius, base.shape)
    recorded = base.zero_recorded.copy()
    recorded[near] = blurred[
        tuple(
            slice(n.start - o.start, n.stop - o.start)
            for n, o in zip(near, outer, strict=True)
        )
    ]
    return recorded


def _apparent_rise(
    rise_K: np.ndarray,
    apparent_K: np.ndarray,
    true_K: np.ndarray,
    options: dict[str, Any],
    levels_per_kelvin: float | None,
) -> np.ndarray:
    """Apparent rise in the frame's unit, per pixel, before the blur."""
    apparent = rise_from_base_K(rise_K, apparent_K, true_K, **options)
    if levels_per_kelvin is not None:
        apparent = apparent * levels_per_kelvin
    return apparent


def _nonzero_box(field: np.ndarray) -> tuple[slice, slice] | None:
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


def _radiance_options(
    camera: Camera, ambient_C: float, emissivity_surface: float | np.ndarray
) -> dict[str, Any]:
    reflected_C = ambient_C if camera.reflected_C is None else camera.reflected_C
    return {
        "emissivity_surface": emissivity_surface,
        "emissivity_setting": camera.emissivity_setting,
        "reflected_C": reflected_C,
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
            "scale; set camera.levels_per_kelvin [level K-1] in the recipe"
        )


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
