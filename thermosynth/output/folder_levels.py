"""The 8-bit folder scale of a run: fit it, then report its step and clipping.

Still and sequence runs share these steps. Each shard's marker records the
mask pixels that the scale clips and the headroom that would have fitted
them (`thermosynth.output.shards.ShardResult`), and one warning at the end of
the run sums them up.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from thermosynth.errors import FrameError
from thermosynth.frames.frame import Frame
from thermosynth.frames.sources import FrameSource
from thermosynth.output.folder import EightBitScale
from thermosynth.output.shards import ShardResult
from thermosynth.recipe.models import OutputSpec

logger = logging.getLogger(__name__)


FOLDER_SCALE_FRAMES = 16
"""Frames, spread evenly over the frame source, that the 8-bit scale fits."""


def fit_folder_scale(
    output: OutputSpec, frame: Frame, *, source: str, frames: FrameSource | None = None
) -> EightBitScale | None:
    """Fit the 8-bit folder scale, or return None if none is used.

    The scale spans ``frame`` and up to `FOLDER_SCALE_FRAMES` frames of
    ``frames`` spread evenly over it, whatever the split, so the folder's
    levels do not depend on the split counts. Frames of ``frames`` that
    cannot be read are left out. No scale is used without ``output.folder``
    or ``output.folder_8bit``, or for 8-bit frames, which are written as they
    are. Where the recipe ``source`` sets ``output.folder_headroom`` and
    folder/ is written without a scale, this logs a warning that the key has
    no effect.
    """
    if not (output.folder and output.folder_8bit):
        _warn_unused_headroom(output, frame, source)
        return None

    fitted = [frame, *_spread_frames(frames)] if frames is not None else [frame]
    scale = EightBitScale.from_frames(fitted, headroom=output.folder_headroom)
    if scale is None:
        _warn_unused_headroom(output, frame, source)
    return scale


def _spread_frames(frames: FrameSource) -> list[Frame]:
    """Read up to `FOLDER_SCALE_FRAMES` frames spread evenly over ``frames``."""
    count = min(FOLDER_SCALE_FRAMES, len(frames))
    indices = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    spread = []
    for index in indices:
        try:
            spread.append(frames.read(int(index)))
        except FrameError as error:
            logger.debug("8-bit folder scale leaves out frame %d: %s", index, error)
    return spread


def _warn_unused_headroom(output: OutputSpec, frame: Frame, source: str) -> None:
    if not output.folder or "folder_headroom" not in output.model_fields_set:
        return

    if not output.folder_8bit:
        reason = (
            "output.folder_8bit is false, so folder/ keeps the frames' own "
            "format; remove the key, or set output.folder_8bit: true to map "
            "16-bit and float frames to 8 bits"
        )
    else:
        kind = "RGB" if frame.raw.ndim == 3 else "greyscale"
        reason = (
            f"the frames are 8-bit {kind} images, which folder/ writes as they "
            "are, without an 8-bit scale; remove the key"
        )
    logger.warning(
        "%s: output.folder_headroom = %g has no effect, because %s",
        source,
        output.folder_headroom,
        reason,
    )


def log_folder_levels(
    results: list[ShardResult], scale: EightBitScale | None, *, noun: str = "sample"
) -> None:
    """Log the 8-bit folder's step against the rises; warn about clipped masks.

    ``noun`` names one item of the run, ``"sample"`` or ``"sequence"``.
    """
    if scale is None:
        return
    unit = next((r.frame_unit for r in results if r.frame_unit), None)
    peaks = [peak for result in results for peak in result.peak_rises_K]
    if scale.value_per_level is not None and unit in ("C", "K") and peaks:
        logger.info(
            "folder/ PNGs step %.3g K per 8-bit level against a median peak "
            "rise of %.3g K; mask pixels that rise less than half a level keep "
            "the normal frame's bytes there (dataset.h5 keeps full precision)",
            scale.value_per_level,
            float(np.median(peaks)),
        )

    if any(result.folder_clipped_px for result in results):
        logger.warning("%s", clipping_message(results, scale, noun=noun))
    if any(result.folder_clipped_normal_px for result in results):
        logger.warning("%s", normal_clipping_message(results, scale, unit))


def folder_clipped(result: ShardResult) -> bool:
    """Return whether the 8-bit folder scale clipped any pixel of a shard."""
    return bool(result.folder_clipped_px or result.folder_clipped_normal_px)


def clipping_message(
    results: list[ShardResult], scale: EightBitScale, *, noun: str
) -> str:
    """Return the warning about the mask pixels that the 8-bit folder clips.

    It names the current headroom and, where the markers record it, the
    smallest headroom that keeps every mask pixel of the run at or below
    level 255, rounded up to three significant digits.
    """
    clipped = sorted(entry for result in results for entry in result.folder_clipped_px)
    first = ", ".join(str(index) for index, _ in clipped[:5])
    subject = f"{len(clipped)} anomalous {noun}s (such as {first}) have"
    if len(clipped) == 1:
        subject = f"anomalous {noun} {first} has"
    counts = "counts, one per frame, are" if noun == "sequence" else "count is"
    return (
        f"{subject} {sum(px for _, px in clipped)} mask pixels clipped at level "
        "0 or 255 in folder/, where the 8-bit scale ends, so anomalib sees less "
        f"than the rise there. output.folder_headroom is {scale.headroom:g} (room "
        "above the fitted frames' maximum, in units of their span, max - min). "
        f"{_headroom_advice(results)} dataset.h5 keeps the full range. Each "
        f"{noun}'s {counts} its metadata's folder_clipped_px"
    )


def normal_clipping_message(
    results: list[ShardResult], scale: EightBitScale, unit: str | None
) -> str:
    """Return the warning about normal samples that the 8-bit folder clips.

    The scale is fitted to a few frames (`fit_folder_scale`), so frames
    colder or hotter than all of them, such as those of a scene that warms
    over the recording, clip.
    """
    clipped = sorted(
        entry for result in results for entry in result.folder_clipped_normal_px
    )
    first = ", ".join(str(index) for index, _ in clipped[:5])
    subject = f"{len(clipped)} normal samples (such as {first}) have"
    if len(clipped) == 1:
        subject = f"normal sample {first} has"
    covered = "the fitted frames' range"
    if scale.value_per_level is not None and scale.value_offset is not None:
        top = scale.value_offset + 255 * scale.value_per_level
        covered = f"{scale.value_offset:.4g} to {top:.4g} {unit}"
    return (
        f"{subject} {sum(px for _, px in clipped)} valid pixels clipped at "
        f"level 0 or 255 in folder/, because the 8-bit scale, fitted to up to "
        f"{FOLDER_SCALE_FRAMES} frames spread over the source, covers only "
        f"{covered}, so anomalib reads those frames flattened. Set "
        "output.folder_8bit: false to keep the frames' own levels in folder/; "
        "a larger output.folder_headroom helps only frames warmer than the "
        "fitted ones. dataset.h5 keeps the full range"
    )


def _headroom_advice(results: list[ShardResult]) -> str:
    """Say which headroom fits every mask pixel, or why none is named."""
    unrecorded = [r for r in results if r.folder_headroom_to_fit is None]
    if any(result.folder_clipped_px for result in unrecorded):
        return (
            "Shards written by an earlier thermosynth version do not record the "
            "headroom that fits, so run without --resume to have it named."
        )
    fits = [fit for result in results for _, fit in result.folder_headroom_to_fit or []]
    if not fits:
        return (
            "No headroom helps, because every clipped pixel lies below the "
            "fitted frames' minimum, at level 0."
        )
    return (
        f"Set it to {round_up(max(fits)):g} or more to keep every mask pixel of "
        "this run at or below level 255."
    )


def round_up(value: float, *, digits: int = 3) -> float:
    """Round a positive ``value`` up to ``digits`` significant digits."""
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return math.ceil(value / step) * step
