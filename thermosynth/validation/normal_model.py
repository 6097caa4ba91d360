"""Per-pixel models of normal frames, one per camera where cameras are known.

A per-pixel mean and deviation describe one view. The two cameras of a
battery station view the module from different angles, so a model pooled
over both gives each pixel the spread between the views. A z-score or a
contrast against it then measures that spread instead of an anomaly.

`NormalModels` fits one model per camera of the reference frames and keeps a
pooled one for frames of unknown camera. `camera_note` describes which frames
fell back to the pooled model.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thermosynth.validation.cameras import (
    camera_in_name,
    cameras_from_pattern,
    recorded_sources,
)
from thermosynth.validation.io import FrameSet

MIN_CAMERA_FRAMES = 2
"""Minimum reference frames of one camera for its own model: one frame gives
no per-pixel deviation."""


@dataclass(frozen=True)
class NormalModel:
    """Per-pixel statistics of normal frames, after removing each frame's median.

    Attributes
    ----------
    mean, std : ndarray
        float64 (H, W) mean and standard deviation of ``frame - median(frame)``
        over the reference normal frames, in the frames' unit. ``std`` is
        floored at the median frame noise so that flat pixels do not divide
        by zero.
    frames : ndarray
        The reference normal frames (N, H, W), for region statistics.
    has_noise : bool
        False where the median frame noise is 0, as in noiseless frames. The
        floor is then 0, a flat pixel's deviation is 0, and ``z_score``
        returns NaN, since any difference would count as infinitely many
        deviations.
    """

    mean: np.ndarray
    std: np.ndarray
    frames: np.ndarray
    has_noise: bool = True

    @classmethod
    def fit(cls, frames: np.ndarray, *, noise_floor: float) -> NormalModel:
        """Fit the per-pixel model to normal frames (N, H, W)."""
        residual = frames - np.median(frames, axis=(1, 2), keepdims=True)
        std = np.maximum(residual.std(axis=0), max(noise_floor, 1e-12))
        return cls(residual.mean(axis=0), std, frames, has_noise=noise_floor > 0)

    def z_score(self, values: np.ndarray) -> np.ndarray:
        """Return each pixel's deviation from normal in normal deviations.

        All NaN where the model has no noise (``has_noise`` is False).
        """
        if not self.has_noise:
            return np.full(values.shape, np.nan)
        return (values - np.median(values) - self.mean) / self.std


@dataclass(frozen=True)
class NormalModels:
    """Per-pixel normal models of the reference frames, per camera and pooled.

    Attributes
    ----------
    pooled : NormalModel
        Model of every reference frame, for frames of unknown camera.
    by_camera : dict of str to NormalModel
        Model of each camera with at least `MIN_CAMERA_FRAMES` reference
        frames. Every model shares the pooled noise floor.
    """

    pooled: NormalModel
    by_camera: dict[str, NormalModel]

    @classmethod
    def fit(cls, reference: FrameSet, *, noise_floor: float) -> NormalModels:
        """Fit the pooled model and one model per camera of ``reference``.

        ``noise_floor`` is the floor of each pixel's deviation, in the
        frames' unit, as in `NormalModel.fit`.
        """
        pooled = NormalModel.fit(reference.values, noise_floor=noise_floor)
        cameras = np.array(_cameras_of(reference), dtype=object)
        by_camera = {}
        for camera, count in sorted(Counter(_known(cameras)).items()):
            if count >= MIN_CAMERA_FRAMES:
                frames = reference.values[cameras == camera]
                by_camera[camera] = NormalModel.fit(frames, noise_floor=noise_floor)
        return cls(pooled, by_camera)

    @property
    def has_noise(self) -> bool:
        """False where the reference frames have no measurable noise."""
        return self.pooled.has_noise

    def for_camera(self, camera: str | None) -> NormalModel:
        """Return the model of ``camera``, or the pooled one where it has none."""
        if camera is None:
            return self.pooled
        return self.by_camera.get(camera, self.pooled)


def with_cameras_from_names(sets: dict[str, FrameSet]) -> dict[str, FrameSet]:
    """Fill in the cameras of sets that record none from their file names.

    The camera keys are those that the other sets record, such as CAM1 and
    CAM2 of a thermosynth output. A frame gets the one key that occurs in its
    file name, the rule by which the generator picks a camera's mask. So a
    plain folder of the recipe's frames (``normal_masked/*_CAM1_thermal.png``)
    gets them too.
    """
    keys = sorted({c for s in sets.values() for c in _known(s.cameras or ())})
    if not keys:
        return sets
    named = {}
    for name, frames in sets.items():
        if frames.cameras is None:
            cameras = tuple(camera_in_name(n, keys) for n in frames.names)
            frames = dataclasses.replace(frames, cameras=cameras)
        named[name] = frames
    return named


def with_cameras_from_pattern(
    sets: dict[str, FrameSet], pattern: re.Pattern[str]
) -> dict[str, FrameSet]:
    """Set the cameras of sets that record none from ``pattern``'s first group.

    The pattern is searched in each frame's file name: an image's own, a
    .npy stack's for each of its frames, and for a thermosynth sample the
    source frame that its metadata records. Sets whose source records
    cameras keep them.

    Raises
    ------
    FrameError
        If a frame's file name gives no camera (`cameras_from_pattern`).
    """
    named = {}
    for name, frames in sets.items():
        if frames.cameras is None:
            names = _source_names(frames)
            cameras = cameras_from_pattern(names, pattern, set_name=name)
            frames = dataclasses.replace(frames, cameras=cameras)
        named[name] = frames
    return named


def _source_names(frames: FrameSet) -> list[str]:
    """Return each frame's name, or the source frame its thermosynth sample records.

    The rows of a dataset.h5 and the images of the folder tree beside one
    (whose file stems are the rows) record their source frames.
    """
    dataset: Path | None = None
    if frames.kind == "hdf5":
        dataset = frames.origin
    elif frames.kind == "mvtec" and (frames.origin.parent / "dataset.h5").is_file():
        dataset = frames.origin.parent / "dataset.h5"
    sources = None if dataset is None else recorded_sources(dataset, frames.indices)
    if sources is None:
        return list(frames.names)
    return [
        name if source is None else source
        for name, source in zip(frames.names, sources, strict=True)
    ]


def camera_counts(frames: FrameSet) -> str:
    """Describe a set's frames per camera, such as "CAM1: 20, CAM2: 18"."""
    counts = Counter(_cameras_of(frames))
    if set(counts) == {None}:
        return "unknown"
    known = sorted((c, n) for c, n in counts.items() if c is not None)
    parts = [f"{camera}: {n}" for camera, n in known]
    if counts[None]:
        parts.append(f"unknown: {counts[None]}")
    return ", ".join(parts)


def camera_note(sets: dict[str, FrameSet], models: NormalModels) -> str | None:
    """Describe frames of a multi-camera input measured against the pooled model.

    Returns None where the inputs contain one known camera or none, or where
    every measured frame has its camera's model.
    """
    cameras = {c for s in sets.values() for c in _known(_cameras_of(s))}
    if len(cameras) < 2:
        # NOTE: frames of several cameras that no set records, such as a
        # .npy stack, are pooled without this warning, because nothing but
        # a camera pattern names them.
        return None
    pooled_counts = {
        name: sum(c not in models.by_camera for c in _cameras_of(frames))
        for name, frames in sets.items()
        if name != "normal_reference"
    }
    if not any(pooled_counts.values()):
        return None
    per_set = "; ".join(f"{name} {camera_counts(s)}" for name, s in sets.items())
    pooled = ", ".join(f"{n} {name}" for name, n in pooled_counts.items() if n)
    keys = ", ".join(sorted(cameras))
    return (
        f"the inputs contain frames from {len(cameras)} cameras ({keys}; per "
        f"set: {per_set}), but {pooled} frames have no recorded camera or one "
        f"with fewer than {MIN_CAMERA_FRAMES} reference normal frames. Those "
        "frames are measured against one per-pixel normal model of all "
        "reference frames, which pools the cameras' views, so their peak_z, "
        "estimated regions (est_*) and contrast_normal_sigma measure the "
        "difference between the views, not an anomaly. Give frames whose file "
        f"names contain their camera key ({keys}), or thermosynth outputs, "
        "whose samples record their camera, or one camera's frames per report"
    )


def _cameras_of(frames: FrameSet) -> tuple[str | None, ...]:
    return frames.cameras if frames.cameras is not None else (None,) * len(frames)


def _known(cameras: Iterable[str | None]) -> list[str]:
    return [c for c in cameras if c is not None]
