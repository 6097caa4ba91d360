"""Blend a recorded rise into a normal frame's stored pixels.

The rise is applied only where it exceeds a threshold, usually a multiple of
the frame's noise, because the frame's own noise would hide anything smaller.
A pixel's stored bytes change only where its quantised level changes, so
overlays, pixels outside the region of interest and pixels that the rise does
not move keep their original bytes. The one exception is the per-frame stretch
gain (``gain="stretch"``): a hotspot that rises above the top of the
encoding's range re-stretches every valid pixel, as the camera or renderer
would have done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from thermosynth.errors import FrameError, RecipeError
from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding
from thermosynth.frames.frame import Frame

GAINS = ("fixed", "stretch")


@dataclass(frozen=True)
class Blended:
    """An anomalous frame and its ground truth.

    Attributes
    ----------
    raw : ndarray
        Anomalous frame's pixels, same dtype and shape as ``frame.raw``.
    values : ndarray
        ``frame.encoding.decode(raw)``, float64 (H, W), in the frame's unit.
    mask : ndarray
        Boolean (H, W), True where the rise was applied.
    recorded_rise : ndarray
        Applied rise before quantisation, float32 (H, W), in the frame's unit,
        zero outside ``mask``. Under the stretch gain it is the rise before the
        re-stretch.
    peak_rise : float
        Maximum of ``recorded_rise``, in the frame's unit; 0 for an empty mask.
    area_px : int
        Number of pixels in ``mask``.
    peak_input_rise : float
        Maximum of the rise passed in, over the frame's valid pixels and
        before the threshold, in the frame's unit; 0 when no pixel is valid.
        It shows how far a draw that left ``mask`` empty fell short.
    stretch : tuple of float or None
        ``(gain, offset)`` of the re-stretch under the stretch gain: each valid
        pixel's value became ``gain * (value + rise) + offset`` before it was
        encoded, with ``offset`` in the frame's unit; ``(1.0, 0.0)`` where
        nothing rose above the stretched range. None under the fixed gain.
    """

    raw: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    recorded_rise: np.ndarray
    peak_rise: float
    area_px: int
    peak_input_rise: float
    stretch: tuple[float, float] | None = None


def stretch_metadata(result: Blended) -> dict[str, float]:
    """Return a sample's ``stretch_gain`` [1] and ``stretch_offset`` [frame unit].

    Under the stretch gain each valid pixel's stored value is about
    ``stretch_gain * (normal value + recorded_rise) + stretch_offset``, up
    to the encoding's rounding. Empty under the fixed gain.
    """
    if result.stretch is None:
        return {}
    gain, offset = result.stretch
    return {"stretch_gain": float(gain), "stretch_offset": float(offset)}


def saturated_px(result: Blended, frame: Frame) -> int:
    """Count the mask's pixels stored at the largest value the encoding holds.

    There the blended value was clipped, so the recorded rise is cut short
    (or the normal frame was already saturated). 0 for float frames, for
    encodings without ``at_maximum`` and under the stretch gain, which maps
    the new maximum onto the largest value instead of clipping.
    """
    at_maximum = getattr(frame.encoding, "at_maximum", None)
    if at_maximum is None or result.stretch is not None:
        return 0
    # The mask's bounding box, from its rows and columns: cheaper than the
    # indices of every mask pixel.
    rows = np.flatnonzero(result.mask.any(axis=1))
    cols = np.flatnonzero(result.mask.any(axis=0))
    if rows.size == 0:
        return 0

    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return int(np.count_nonzero(result.mask[box] & at_maximum(result.raw[box])))


@dataclass(frozen=True)
class BlendBase:
    """The parts of `blend` that depend on the frame but not on the rise.

    Make it with `blend_base` and pass it to `blend` for every rise blended
    into the same, unchanged frame.

    Attributes
    ----------
    values : ndarray
        ``frame.values`` with invalid pixels set to a finite filler, float64.
    levels : ndarray
        ``frame.encoding.encode(values)``, shaped like ``frame.raw``.
    decoded : ndarray
        ``frame.encoding.decode(frame.raw)``, float64 (H, W).
    """

    values: np.ndarray
    levels: np.ndarray
    decoded: np.ndarray


def blend_base(frame: Frame) -> BlendBase:
    """Compute the per-frame part of `blend` once."""
    values = _finite_values(frame)
    levels = frame.encoding.encode(values)
    _check_encoded_shape(frame, levels)
    return BlendBase(values, levels, frame.encoding.decode(frame.raw))


def default_threshold(frame: Frame, *, noise_multiple: float = 3.0) -> float:
    """Return the rise below which the frame's noise hides an anomaly.

    Parameters
    ----------
    frame : Frame
        Normal frame, with ``noise_sigma`` in its unit.
    noise_multiple : float
        Multiple of ``frame.noise_sigma``, >= 0.

    Returns
    -------
    float
        ``noise_multiple * frame.noise_sigma``, in the frame's unit.
    """
    if not (math.isfinite(noise_multiple) and noise_multiple >= 0.0):
        raise RecipeError(
            f"noise_multiple = {noise_multiple} is invalid; it must be a finite "
            "number >= 0"
        )
    if not (math.isfinite(frame.noise_sigma) and frame.noise_sigma >= 0.0):
        raise FrameError(
            f"frame {frame.source} has noise_sigma = {frame.noise_sigma}; "
            "expected a finite number >= 0 from the frame reader"
        )
    return noise_multiple * frame.noise_sigma


def blend(
    frame: Frame,
    recorded_rise: np.ndarray,
    *,
    threshold: float,
    gain: Literal["fixed", "stretch"] = "fixed",
    edge: Literal["cut", "taper"] = "cut",
    base: BlendBase | None = None,
) -> Blended:
    """Blend a recorded rise into a normal frame.

    The mask is ``frame.valid & (recorded_rise > threshold)``, less pixels
    whose applied rise rounds to zero in float32, and the rise is added to
    ``frame.values`` only inside it. A pixel's stored bytes are
    replaced only where the encoded level changes (in any channel), so pixels
    whose level stays the same keep their original bytes, even off-palette
    bytes such as JPEG artefacts. Under ``gain="fixed"`` every pixel outside
    the mask is therefore bit-for-bit equal to ``frame.raw``.

    Under ``gain="stretch"`` the frame was stretched to its own min..max, so a
    hotspot that rises above the maximum compresses the whole scene. The
    stretch filled the encoding's range (``frame.encoding.value_range``),
    so ``lo, hi`` are the ends of that range, widened to the valid values'
    min and max. Encodings without a range, such as float frames, use the
    valid values' min and max. The frame's own min and max may lie outside
    the valid pixels, as in renders masked after the stretch. Where
    ``hi_new``, the max of the valid values after adding the rise, exceeds
    ``hi``, every valid pixel becomes
    ``lo + (v + rise - lo) * (hi - lo) / (hi_new - lo)``. Valid pixels outside
    the mask then change too; invalid pixels still keep their bytes.

    Parameters
    ----------
    frame : Frame
        Normal frame.
    recorded_rise : ndarray
        Rise in the frame's unit, float (H, W), >= 0, from
        ``thermosynth.camera.record_rise``.
    threshold : float
        Rise at or below which a pixel is left alone, in the frame's unit,
        >= 0; see ``default_threshold``.
    gain : {"fixed", "stretch"}
        The frame's gain.
    edge : {"cut", "taper"}
        ``"cut"`` applies the full rise inside the mask, so the anomaly ends
        in a step of about ``threshold`` at the mask's edge. ``"taper"``
        applies ``recorded_rise - threshold``, which is continuous at the edge
        and lowers the peak by ``threshold``; a detector cannot learn the
        step instead of the heat.
    base : BlendBase, optional
        ``blend_base(frame)``, computed once for many rises on this frame.
        The result is the same, bit for bit. With the fixed gain and a linear
        or palette encoding, whose levels depend on each pixel alone, only
        the box around the mask is encoded and decoded again.

    Returns
    -------
    Blended
        The anomalous frame, its mask and severity figures. The mask may be
        empty (``area_px == 0``); the caller decides what to do with it.

    Raises
    ------
    ValueError
        If ``recorded_rise`` has the wrong shape, is negative, NaN or infinite, or if
        ``threshold`` or ``gain`` is invalid.
    """
    _check_inputs(frame, recorded_rise, threshold=threshold, gain=gain)
    if edge not in ("cut", "taper"):
        raise RecipeError(
            f"blend.edge = {edge!r} is invalid; use 'cut' or 'taper'",
            keys=(("blend", "edge"),),
        )
    offset = threshold if edge == "taper" else 0.0
    # NOTE: a pixel stored at the encoding's lowest level, such as a palette
    # frame's bottom colour, may be colder than that level's value, to which
    # the rise is added, so such a pixel can come out too warm.
    above = frame.valid & (recorded_rise > threshold)
    exact = np.where(above, recorded_rise - offset, 0.0)
    recorded = exact.astype(np.float32)

    # The mask follows the float32 rise that is stored, so a rise too small
    # for float32 (below about 1e-45) is neither masked nor applied.
    mask = above & (recorded > 0)

    stretch = None
    if base is not None and gain == "fixed" and _per_pixel(frame):
        raw, decoded = _replace_in_box(frame, base, exact, mask)
    else:
        applied = np.where(mask, exact, 0.0)
        values = _finite_values(frame) if base is None else base.values
        if gain == "stretch":
            new_values, stretch = _restretch(
                values, applied, frame.valid, _value_range(frame)
            )
            scope = frame.valid
        else:
            new_values, scope = values + applied, mask
        old = None if base is None else base.levels
        raw = _replace_changed(frame, values, new_values, scope, old_levels=old)
        decoded = frame.encoding.decode(raw)

    return Blended(
        raw=raw,
        values=decoded,
        mask=mask,
        recorded_rise=recorded,
        peak_rise=float(recorded.max()) if recorded.size else 0.0,
        area_px=int(mask.sum()),
        peak_input_rise=_valid_max(recorded_rise, frame.valid),
        stretch=stretch,
    )


def _valid_max(values: np.ndarray, valid: np.ndarray) -> float:
    inside = values[valid]
    return float(inside.max()) if inside.size else 0.0


def _check_inputs(
    frame: Frame, recorded_rise: np.ndarray, *, threshold: float, gain: str
) -> None:
    if recorded_rise.shape != frame.shape:
        raise ValueError(
            f"recorded_rise has shape {recorded_rise.shape} but frame "
            f"{frame.source} has shape {frame.shape}; warp the rise to frame "
            "pixels first"
        )
    finite = np.isfinite(recorded_rise)
    if not finite.all():
        raise ValueError(
            f"recorded_rise contains {int((~finite).sum())} NaN or infinite "
            "values; check the simulation and camera output"
        )
    if np.any(recorded_rise < 0.0):
        raise ValueError(
            f"recorded_rise has negative values (min {float(recorded_rise.min())}); "
            "blend adds heat only, so check the simulation's sources"
        )
    if not (math.isfinite(threshold) and threshold >= 0.0):
        raise ValueError(
            f"threshold = {threshold} is invalid; it must be a finite number >= 0 "
            "in the frame's unit"
        )
    if gain not in GAINS:
        raise RecipeError(
            f"camera.gain = {gain!r} is invalid; use one of {GAINS}",
            keys=(("camera", "gain"),),
        )


def _finite_values(frame: Frame) -> np.ndarray:
    """Return ``frame.values`` with invalid pixels set to a finite filler.

    The encoder receives the whole frame, but only valid pixels are ever written
    back, so the filler (the minimum valid value, or 0) only keeps NaN out.
    """
    values = np.asarray(frame.values, dtype=np.float64)
    usable = frame.valid & np.isfinite(values)
    filler = float(values[usable].min()) if usable.any() else 0.0
    return np.where(usable, values, filler)


def _value_range(frame: Frame) -> tuple[float, float] | None:
    """Return the values of the encoding's lowest and highest level, if it has one."""
    value_range = getattr(frame.encoding, "value_range", None)
    if value_range is None:
        return None
    low, high = value_range
    return float(low), float(high)


def _restretch(
    values: np.ndarray,
    applied: np.ndarray,
    valid: np.ndarray,
    value_range: tuple[float, float] | None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Add the rise, then map valid values back onto the stretched range.

    Returns the new values and ``(gain, offset)`` of that map. ``lo, hi`` are
    the ends of ``value_range`` widened to the valid values' min and max, or
    those alone without a range. With ``hi_new`` the max after adding the
    rise, ``gain = (hi - lo) / (hi_new - lo)`` and ``offset = lo * (1 -
    gain)``, so ``lo`` stays and ``hi_new`` becomes ``hi``. Where ``hi_new <=
    hi`` nothing is mapped and the map is ``(1.0, 0.0)``.
    """
    new_values = values + applied
    if not valid.any():
        return new_values, (1.0, 0.0)
    lo = float(values[valid].min())
    hi = float(values[valid].max())
    if value_range is not None:
        lo, hi = min(lo, value_range[0]), max(hi, value_range[1])
    hi_new = float(new_values[valid].max())

    # NOTE: a flat frame (hi == lo) without a range maps every pixel to lo,
    # so the hotspot vanishes. A renderer that stretches a flat frame has no
    # defined output.
    if hi_new <= hi:
        return new_values, (1.0, 0.0)
    gain = (hi - lo) / (hi_new - lo)
    return lo + (new_values - lo) * gain, (gain, lo * (1.0 - gain))


def _replace_changed(
    frame: Frame,
    values: np.ndarray,
    new_values: np.ndarray,
    scope: np.ndarray,
    *,
    old_levels: np.ndarray | None = None,
) -> np.ndarray:
    """Copy ``frame.raw`` and write new bytes where the level changes in scope."""
    new = frame.encoding.encode(new_values)
    _check_encoded_shape(frame, new)
    old = frame.encoding.encode(values) if old_levels is None else old_levels

    differs = new != old
    if differs.ndim == 3:
        differs = differs.any(axis=-1)
    changed = scope & differs
    raw = frame.raw.copy()
    raw[changed] = new[changed]
    return raw


def _check_encoded_shape(frame: Frame, encoded: np.ndarray) -> None:
    if encoded.shape != frame.raw.shape:
        raise FrameError(
            f"the encoding of frame {frame.source} returned shape {encoded.shape}, "
            f"expected {frame.raw.shape} like frame.raw"
        )


def _per_pixel(frame: Frame) -> bool:
    """Return True if the frame's encoding maps each pixel on its own."""
    return isinstance(frame.encoding, LinearEncoding | PaletteEncoding)


def _replace_in_box(
    frame: Frame, base: BlendBase, exact: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Do `_replace_changed` under the fixed gain inside the mask's box only.

    Outside the mask the fixed gain adds nothing, so only pixels in the box
    around the mask can change; every step is per pixel, so the bytes equal
    those of the whole-frame computation. Return the new raw and its values.
    """
    raw = frame.raw.copy()
    decoded = base.decoded.copy()
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return raw, decoded
    cols = np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))

    inside = mask[box]
    new_values = base.values[box] + np.where(inside, exact[box], 0.0)
    new = frame.encoding.encode(new_values)
    differs = new != base.levels[box]
    if differs.ndim == 3:
        differs = differs.any(axis=-1)
    changed = inside & differs

    patch = raw[box]
    patch[changed] = new[changed]
    decoded[box] = frame.encoding.decode(patch)
    return raw, decoded
