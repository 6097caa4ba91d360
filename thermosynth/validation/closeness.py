"""Closeness of pseudo-anomalies to normal data, per sample and per set.

``closeness_report`` compares normal frames, pseudo-anomalous frames and,
where a user has them, real anomalous frames, and writes a report folder:

- ``per_sample.csv``: contrast, area, shape and nearest-neighbour ratios of
  every held-out normal, pseudo and real sample, with the ``unit`` of its
  contrasts and noise;
- ``set_distances.csv``: MMD, classifier two-sample test and Fréchet
  distance between the sets, in two feature spaces;
- ``property_comparison.csv``: pseudo against real contrast, size and shape,
  with each property's ``unit``;
- ``report.md`` with the tables and the PNG figures.

The normal set is split in two random halves: the reference half fits the
feature scaling, the autoencoder and the per-pixel normal model (one per
camera where the inputs record cameras, see
`thermosynth.validation.normal_model`), and the held-out half gives the
normal-against-normal baseline. The split, the
autoencoder and each pair of compared sets draw from their own random stream,
so adding a real set leaves every other figure unchanged. Where the
reference frames have no measurable noise, the figures that divide by it are
reported as NaN (see `closeness_report`).
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
from scipy import ndimage, stats

from thermosynth.errors import FrameError, OutputError
from thermosynth.frames.frame import rise_unit
from thermosynth.frames.noise import estimate_frame_noise
from thermosynth.output.atomic import check_file_writable, staged_dir
from thermosynth.validation.cameras import compile_camera_pattern
from thermosynth.validation.distances import (
    C2ST_FOLDS,
    CONSTANT_RELATIVE_STD,
    c2st,
    frechet_distance,
    mmd,
    nearest_neighbour_ratio,
    standardisation,
)
from thermosynth.validation.duplicates import normal_repeat_notes
from thermosynth.validation.features import AutoencoderFeatures, thermal_features
from thermosynth.validation.io import LUMINANCE_UNIT, FrameSet, Label, load_frame_set

# Defined in io, which loads without torch, and kept importable from here.
from thermosynth.validation.io import load_for_role as load_for_role

# NormalModel is defined in normal_model and kept importable from here.
from thermosynth.validation.normal_model import (
    NormalModel as NormalModel,
)
from thermosynth.validation.normal_model import (
    NormalModels,
    camera_note,
    with_cameras_from_names,
    with_cameras_from_pattern,
)

logger = logging.getLogger(__name__)

HDF5Mode = Literal["copy", "write-back", "none"]

CLOSENESS_COLUMNS = (
    "area_px",
    "contrast",
    "contrast_noise",
    "contrast_normal_sigma",
    "est_area_px",
    "est_contrast",
    "est_contrast_noise",
    "est_contrast_normal_sigma",
    "est_elongation",
    "peak_z",
    "nn_ratio_thermal",
    "nn_ratio_autoencoder",
    "reconstruction_error",
)
"""Per-sample figures written back to a dataset, in this order."""

FRAME_UNIT_FIGURES = ("noise_sigma", "contrast", "est_contrast")
"""Per-sample figures in the unit of a difference of frame values, which is K
for frames in C or K, level for stored levels, luminance level for colour
frames compared by luminance and value for floats of no recorded unit.
Areas are in px, and every other figure is a ratio ("1")."""

RECONSTRUCTION_UNIT = "(reference std)^2"
"""Unit of ``reconstruction_error``: the autoencoder divides frames by the
standard deviation of its training (reference normal) pixels, so the mean
squared error is in squares of that standard deviation."""

COMPARED_PROPERTIES = (
    "est_area_px",
    "est_contrast",
    "est_contrast_noise",
    "est_contrast_normal_sigma",
    "est_elongation",
    "peak_z",
)
"""Properties whose pseudo and real distributions are compared. They come from
the estimated region for both sets, since real frames often have no mask."""

MIN_NORMAL_FRAMES = 2 * C2ST_FOLDS
"""Minimum number of normal frames: each half of the split needs one frame per
fold of the classifier two-sample test."""

MIN_OTHER_FRAMES = C2ST_FOLDS
"""Minimum number of pseudo or real frames: one per fold of the classifier
two-sample test."""


@dataclass
class ClosenessReport:
    """Tables of a closeness report, as written to ``out_dir``.

    Attributes
    ----------
    per_sample : list of dict
        One row per held-out normal, pseudo and real sample.
    set_distances : list of dict
        One row per pair of sets and feature space.
    property_comparison : list of dict
        One row per compared property; empty without real anomalies.
    out_dir : Path
        Report folder.
    written_back : list of Path
        Sidecar CSV and HDF5 files that received the per-sample closeness.
    notes : list of str
        Warnings about the inputs that explain NaN figures, repeated frames
        or frames measured against a model pooled over several cameras, also
        in ``report.md``.
    command_line : list of str
        Command that wrote the report, named in ``report.md``. It is empty
        where the report was written from Python.
    """

    per_sample: list[dict[str, Any]]
    set_distances: list[dict[str, Any]]
    property_comparison: list[dict[str, Any]]
    out_dir: Path
    written_back: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    command_line: list[str] = field(default_factory=list)


def region_contrast(values: np.ndarray, mask: np.ndarray, *, ring_px: int = 2) -> float:
    """Return the mean inside ``mask`` minus the mean of a ring around it.

    Parameters
    ----------
    values : ndarray
        float (H, W) frame.
    mask : ndarray
        Boolean (H, W) anomaly region.
    ring_px : int, optional
        Width of the ring of surrounding pixels [px].

    Returns
    -------
    float
        Contrast in the frame's unit; NaN for an empty mask or a mask that
        leaves no ring (it covers the frame).
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return float("nan")
    ring = _ring(mask, ring_px)
    if not ring.any():
        return float("nan")
    return float(values[mask].mean() - values[ring].mean())


def _ring(mask: np.ndarray, ring_px: int) -> np.ndarray:
    grown = ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=ring_px)
    return grown & ~mask


def estimate_region(z: np.ndarray, *, threshold_sigma: float = 3.0) -> np.ndarray:
    """Estimate an anomaly region from a per-pixel z-score map.

    The region is the 8-connected component of pixels with ``z >
    threshold_sigma`` that contains the maximum z. It is empty where no pixel
    passes the threshold.
    """
    above = z > threshold_sigma
    if not above.any():
        return np.zeros_like(above)
    labels, _ = ndimage.label(above, structure=np.ones((3, 3), bool))
    peak = np.unravel_index(np.argmax(np.where(above, z, -np.inf)), z.shape)
    return labels == labels[peak]


def elongation(mask: np.ndarray) -> float:
    """Return sqrt(largest / smallest eigenvalue) of the region's pixel spread.

    Each pixel counts as a unit square (variance 1/12 along each axis), so a
    single pixel and a square are 1 and a line of n pixels is about n.
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return float("nan")
    covariance = np.cov(np.vstack([rows, cols])) if rows.size > 1 else np.zeros((2, 2))
    eigen = np.linalg.eigvalsh(covariance + np.eye(2) / 12.0)
    return float(np.sqrt(eigen[-1] / eigen[0]))


def closeness_report(
    normal: FrameSet | str | Path,
    pseudo: FrameSet | str | Path,
    real: FrameSet | str | Path | None = None,
    *,
    out_dir: str | Path,
    rng: np.random.Generator,
    n_permutations: int = 500,
    autoencoder: AutoencoderFeatures | None = None,
    threshold_sigma: float = 3.0,
    ring_px: int = 2,
    hdf5: HDF5Mode = "copy",
    overwrite: bool = False,
    command_line: Sequence[str] = (),
    camera_pattern: str | None = None,
) -> ClosenessReport:
    """Measure how close pseudo-anomalies sit to normal (and real) frames.

    Parameters
    ----------
    normal : FrameSet, str or Path
        Normal frames; a path is loaded with ``label="normal"``. At least
        `MIN_NORMAL_FRAMES` (10), because the set is split in two halves
        and the classifier two-sample test needs 5 frames in each.
    pseudo : FrameSet, str or Path
        Pseudo-anomalous frames, e.g. a thermosynth output (its anomalous
        samples are used).
    real : FrameSet, str or Path, optional
        Real anomalous frames.
    out_dir : str or Path
        Report folder to create.
    rng : numpy.random.Generator
        Gives one root seed, drawn once. The normal split, the autoencoder's
        weights and batches, and each pair of sets' permutations and
        classifier folds draw from streams derived from that seed and their
        names, so they do not depend on which sets are given.
    n_permutations : int, optional
        Permutations of the MMD test.
    autoencoder : AutoencoderFeatures, optional
        Unfitted autoencoder with the wanted settings; default settings if None.
    threshold_sigma : float, optional
        Per-pixel z-score above which a pixel joins the estimated region.
    ring_px : int, optional
        Width of the ring that region contrast is measured against [px].
    hdf5 : {"copy", "write-back", "none"}, optional
        Where the per-sample closeness goes when ``pseudo`` is a thermosynth
        HDF5 file: a copy ``dataset_closeness.h5`` beside it, the file itself
        (opened in append mode), or nowhere. A sidecar ``closeness.csv`` is
        written into a thermosynth output folder in every mode but "none".
    overwrite : bool, optional
        Replace an existing report folder, sidecar, copy or ``closeness``
        dataset.
    command_line : sequence of str, optional
        Command that requested the report, such as ``["thermosynth",
        "validate", "closeness", ...]``, for the header of ``report.md``.
    camera_pattern : str, optional
        Regular expression whose first capture group, searched in each
        frame's file name, names the frame's camera, such as
        ``'_(CAM[0-9])_'``. It applies to the sets whose source records no
        cameras (see `with_cameras_from_pattern`). A thermosynth sample's
        file name is that of the source frame it records.

    Returns
    -------
    ClosenessReport

    Notes
    -----
    Where the reference normal frames have no measurable noise (median noise
    sigma 0, as in noiseless renders or frames decoded from a screen export's
    palette), z-scores against them and the thermal features' scaling have no
    scale. ``peak_z``, the estimated regions (``est_*``, and ``area_px`` and
    ``contrast`` where no mask is given), ``nn_ratio_thermal`` and the
    thermal space's ``frechet`` are then NaN, and one warning is logged.
    ``contrast_noise`` is NaN for any frame whose own noise sigma is 0.

    Frames are measured against the per-pixel model of their camera
    (``FrameSet.cameras``). A set that records none takes its cameras from
    ``camera_pattern`` where it is given, else the keys that the other sets
    record from its file names (see `with_cameras_from_names`).
    Where the inputs contain two or more cameras and some frames have no
    camera model, those frames use the model of all reference frames, and
    one warning is logged.
    """
    normal = _as_frame_set(normal, "normal")
    pseudo = _as_frame_set(pseudo, "anomalous")
    real = None if real is None else _as_frame_set(real, "anomalous")
    pseudo = _in_normal_unit("pseudo", pseudo, normal)
    real = None if real is None else _in_normal_unit("real", real, normal)
    named = {
        "normal": normal,
        "pseudo": pseudo,
        **({} if real is None else {"real": real}),
    }
    if camera_pattern is not None:
        pattern = compile_camera_pattern(camera_pattern)
        named = with_cameras_from_pattern(named, pattern)
    named = with_cameras_from_names(named)
    normal, pseudo, real = named["normal"], named["pseudo"], named.get("real")
    out_dir = Path(out_dir)
    targets = _write_back_targets(pseudo, hdf5)
    _check_inputs(normal, pseudo, real, out_dir, targets, overwrite)
    repeat_notes = normal_repeat_notes(normal, {"pseudo": pseudo, "real": real})

    root = np.random.SeedSequence(int(rng.integers(2**63)))
    sets = _split_normal(normal, _named_rng(root, "split"))
    sets["pseudo"] = pseudo
    if real is not None:
        sets["real"] = real
    measured = _measure(
        sets, _named_rng(root, "autoencoder"), autoencoder, threshold_sigma, ring_px
    )
    distances = _set_distances(measured.features, root, n_permutations)
    if not measured.has_noise:
        _drop_thermal_frechet(distances)
    notes = [*repeat_notes, *measured.notes, *_small_c2st_note(distances)]
    report = ClosenessReport(
        per_sample=measured.rows,
        set_distances=distances,
        property_comparison=_compare_properties(measured.rows) if real else [],
        out_dir=out_dir,
        notes=notes,
        command_line=list(command_line),
    )

    with staged_dir(out_dir, overwrite=overwrite) as stage:
        _write_report(stage, report, sets, measured)
    report.written_back = _write_back(report.per_sample, targets, overwrite)
    return report


def _named_rng(root: np.random.SeedSequence, *names: str) -> np.random.Generator:
    """Return the random stream of one named use of ``root``'s seed.

    The stream depends only on ``root`` and ``names``. So the draws of one use,
    such as the sets ``("thermal", "normal_reference", "pseudo")``, stay the
    same whatever other streams are drawn from, or in what order.

    Parameters
    ----------
    root : numpy.random.SeedSequence
        Seed of the whole report.
    *names : str
        Names of the use; each becomes one word of the spawn key (its CRC-32).
    """
    key = tuple(zlib.crc32(name.encode()) for name in names)
    return np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=key))


def _as_frame_set(frames: FrameSet | str | Path, label: Label) -> FrameSet:
    if isinstance(frames, FrameSet):
        return frames
    return load_frame_set(frames, label=label)


def _check_inputs(
    normal: FrameSet,
    pseudo: FrameSet,
    real: FrameSet | None,
    out_dir: Path,
    targets: dict[str, Path],
    overwrite: bool,
) -> None:
    if len(normal) < MIN_NORMAL_FRAMES:
        raise FrameError(
            f"only {len(normal)} normal frames in {normal.origin} (--normal); "
            "closeness splits the normal set in half, one half to fit the normal "
            "model and one as the baseline, and the classifier two-sample test "
            f"needs {C2ST_FOLDS} frames in each half, so give at least "
            f"{MIN_NORMAL_FRAMES} normal frames"
        )
    for name, frames in (("pseudo", pseudo), ("real", real)):
        if frames is not None and frames.shape != normal.shape:
            raise _size_error(name, frames, normal)
        if frames is not None and len(frames) < MIN_OTHER_FRAMES:
            raise FrameError(
                f"only {len(frames)} {name} frames in {frames.origin} (--{name}); "
                f"give at least {MIN_OTHER_FRAMES}, one per fold of the classifier "
                "two-sample test"
            )
        if frames is not None:
            _check_units(name, frames, normal)
            _check_level_depths(name, frames, normal)

    if out_dir.exists() and not overwrite:
        raise OutputError(
            f"report folder exists: {out_dir}; pass --overwrite (overwrite=True "
            "in Python) to replace it, or choose another output folder"
        )
    _check_write_back(targets, overwrite)


_WRITE_BACK_FIX = (
    "pass --overwrite (overwrite=True in Python) to replace it, or "
    "--no-write-back (hdf5='none' in Python) to write only the report folder"
)


def _check_write_back(targets: dict[str, Path], overwrite: bool) -> None:
    """Raise OutputError where a write-back target beside --pseudo exists already.

    These files sit in the --pseudo output, not in the report folder, so a
    second report with a new report folder still finds them.
    """
    files = [targets["csv"]] if "csv" in targets else []
    if "hdf5" in targets and targets["hdf5"] != targets["hdf5_source"]:
        files.append(targets["hdf5"])
    for path in files:
        if path.is_file() and not overwrite:
            raise OutputError(
                f"output file already exists: {path}, the per-sample closeness "
                "that an earlier report wrote back into the --pseudo output; "
                f"{_WRITE_BACK_FIX}"
            )
        check_file_writable(path, overwrite=overwrite)

    if "hdf5" in targets and targets["hdf5"] == targets["hdf5_source"]:
        with h5py.File(targets["hdf5"], "r") as file:
            if "closeness" in file and not overwrite:
                raise OutputError(
                    f"{targets['hdf5']}, the --pseudo dataset, already has a "
                    f"closeness dataset from an earlier --write-back; "
                    f"{_WRITE_BACK_FIX}"
                )


def _size_error(name: str, frames: FrameSet, normal: FrameSet) -> FrameError:
    """Describe sets of different frame sizes, and which set to change."""
    (height, width), (normal_height, normal_width) = frames.shape, normal.shape
    if name == "pseudo":
        fix = (
            "Give normal frames of the pseudo frames' size, such as the normal "
            "samples of the same thermosynth output (--normal OUTPUT_FOLDER) "
            "or the folder that its recipe's frames.path names"
        )
    else:
        fix = "Give real frames from the camera and crop of the normal frames"
    return FrameError(
        f"{name} frames from {frames.origin} are {height} x {width} px (height x "
        f"width) but normal frames from {normal.origin} are {normal_height} x "
        f"{normal_width} px; region statistics need one size, and closeness "
        f"has no resize option because it compares frames pixel by pixel. {fix}"
    )


def _in_normal_unit(name: str, frames: FrameSet, normal: FrameSet) -> FrameSet:
    """Convert frames in C to K, or K to C, where the normal frames are in the other."""
    if {frames.unit, normal.unit} != {"C", "K"}:
        return frames
    logger.info(
        "%s frames from %s converted from %s to %s, the unit of the normal frames",
        name,
        frames.origin,
        frames.unit,
        normal.unit,
    )
    return frames.in_unit(normal.unit)


def _check_units(name: str, frames: FrameSet, normal: FrameSet) -> None:
    """Reject sets in different known units; warn where one unit is unknown.

    Sets in Celsius and kelvin reach this check already converted to one unit.
    """
    if frames.unit == normal.unit:
        return
    if "value" in (frames.unit, normal.unit):
        # Float arrays of unknown unit may well be in the other set's unit.
        logger.warning(
            "%s frames from %s are in %s but normal frames in %s; contrasts "
            "and distances compare numbers on different scales unless both "
            "are in one unit (label normal frames that record no unit with "
            "--normal-unit, or FrameSet.labelled in Python)",
            name,
            frames.origin,
            frames.unit,
            normal.unit,
        )
        return
    problem = (
        f"{name} frames from {frames.origin} are in {frames.unit} but normal "
        f"frames from {normal.origin} are in {normal.unit}, so contrasts and "
        "distances between them would mix units. Give both sets in one unit"
    )
    if LUMINANCE_UNIT in (frames.unit, normal.unit):
        raise FrameError(
            f"{problem}: colour frames, such as palette renders, are compared "
            "by their luminance, which no scale per level turns into a "
            "temperature, so give both sets as colour frames or both in one "
            "unit of temperature"
        )
    if normal.unit == "level":
        raise FrameError(
            f"{problem}: decode the normal levels with their calibration, "
            "--normal-scale K_PER_LEVEL and --normal-offset K on the command "
            "line (FrameSet.decoded in Python), or give a thermosynth dataset.h5 "
            "or output folder, whose normal samples are decoded to its frame unit"
        )
    # Without --normal-scale, normal levels of this set's bit depth compare as they are.
    in_levels = ""
    if normal.scale_given and normal.encoding is not None:
        if _level_dtype(frames) == normal.encoding.dtype:
            in_levels = "leave out --normal-scale to compare both sets in levels, or "
    raise FrameError(
        f"{problem}: {in_levels}pass a thermosynth dataset.h5 or output folder "
        f"as the {name} set, which is decoded to its frame unit, since a plain "
        "folder of integer images keeps its stored levels"
    )


def _check_level_depths(name: str, frames: FrameSet, normal: FrameSet) -> None:
    """Reject sets of stored levels whose bit depths give different level scales.

    A level of a 16-bit radiometric image and one of an 8-bit export are
    different temperature steps, and no map between them is known, so
    contrasts and distances between such sets are meaningless. Where the
    deeper set's levels all fit in the shallower one's range, as in 8-bit
    data saved as 16-bit PNG, the sets may share a scale, so only a warning
    is logged.
    """
    frames_dtype, normal_dtype = _level_dtype(frames), _level_dtype(normal)
    if frames_dtype is None or normal_dtype is None or frames_dtype == normal_dtype:
        return

    pairs = sorted(
        [(frames_dtype, frames), (normal_dtype, normal)],
        key=lambda pair: pair[0].itemsize,
    )
    (shallow, _), (deep, deep_set) = pairs
    problem = (
        f"{name} frames from {frames.origin} are {_depth(frames)} but normal "
        f"frames from {normal.origin} are {_depth(normal)}"
    )
    if deep_set.values.max() <= np.iinfo(shallow).max:
        logger.warning(
            "%s. The %s levels all fit in the %s range, so they are compared "
            "as they are; if the two sets use different level scales, every "
            "contrast and distance in the report is wrong",
            problem,
            deep,
            shallow,
        )
        return
    same_output = (
        "such as the normal samples of the same thermosynth output (--normal "
        "OUTPUT_FOLDER), "
        if name == "pseudo"
        else ""
    )
    raise FrameError(
        f"{problem}, so one level is a different temperature step in each set "
        "and contrasts and distances between them would compare different "
        f"scales. Give normal frames at the {name} frames' bit depth, "
        f"{same_output}or give both sets in kelvin (--normal-scale K_PER_LEVEL "
        "decodes normal levels)"
    )


def _level_dtype(frames: FrameSet) -> np.dtype | None:
    """Return the integer dtype of frames kept in their stored levels, else None.

    None also where the values are levels of another dtype, as in an 8-bit
    thermosynth folder tree mapped back to its dataset's 16-bit levels.
    """
    encoding = frames.encoding
    if frames.unit != "level" or encoding is None or not frames.values.size:
        return None
    if encoding.scale_per_level != 1.0 or encoding.offset != 0.0:
        return None
    return encoding.dtype if encoding.dtype.kind in "ui" else None


def _depth(frames: FrameSet) -> str:
    """Describe a set's stored levels, such as "uint16 levels 30500..30980"."""
    dtype = np.dtype(frames.encoding.dtype)  # type: ignore[union-attr]
    low, high = frames.values.min(), frames.values.max()
    return f"{dtype} levels {low:.0f}..{high:.0f}"


def _split_normal(normal: FrameSet, rng: np.random.Generator) -> dict[str, FrameSet]:
    order = rng.permutation(len(normal))
    half = len(normal) // 2
    return {
        "normal_reference": normal.subset(np.sort(order[:half])),
        "normal": normal.subset(np.sort(order[half:])),
    }


@dataclass
class _Measured:
    rows: list[dict[str, Any]]
    features: dict[str, dict[str, np.ndarray]]
    regions: dict[str, np.ndarray]
    has_noise: bool
    # Warnings that explain NaN figures.
    notes: list[str]


def _measure(
    sets: dict[str, FrameSet],
    rng: np.random.Generator,
    autoencoder: AutoencoderFeatures | None,
    threshold_sigma: float,
    ring_px: int,
) -> _Measured:
    reference = sets["normal_reference"]
    quantum = _quantum(reference)
    noise = _noise(reference)
    models = NormalModels.fit(reference, noise_floor=float(np.median(noise)))
    notes = [] if models.has_noise else [_no_noise_note(reference)]
    floor = quantum / np.sqrt(12.0)
    if models.has_noise and quantum > 0 and np.median(noise) <= floor * (1 + 1e-9):
        notes.append(_quantum_floor_note(reference, floor))
    pooled_note = camera_note(sets, models)
    notes += [] if pooled_note is None else [pooled_note]
    for note in notes:
        logger.warning("%s", note)
    _log_camera_models(models)

    autoencoder = autoencoder or AutoencoderFeatures()
    autoencoder.fit(reference.values, rng=rng)
    features = _features(sets, autoencoder)

    rows: list[dict[str, Any]] = []
    regions: dict[str, np.ndarray] = {}
    for name, frames in sets.items():
        if name == "normal_reference":
            continue
        # Each set's noise floor is its own level step, in its own unit.
        set_rows, regions[name] = _sample_rows(
            name, frames, models, threshold_sigma, ring_px
        )
        _add_feature_columns(set_rows, features, name, autoencoder, frames)
        for row in set_rows:
            if not models.has_noise:
                row["nn_ratio_thermal"] = float("nan")
            row["unit"] = rise_unit(frames.unit)
        rows.extend(set_rows)
    return _Measured(rows, features, regions, models.has_noise, notes)


def _log_camera_models(models: NormalModels) -> None:
    if len(models.by_camera) < 2:
        return
    logger.info(
        "per-pixel normal model fitted per camera: %s reference frames",
        ", ".join(f"{c}: {len(m.frames)}" for c, m in models.by_camera.items()),
    )


def _no_noise_note(reference: FrameSet) -> str:
    return (
        f"normal frames from {reference.origin} have no measurable noise (noise "
        "sigma 0), so z-scores against them and distances in the thermal "
        "feature space have no scale. peak_z, the estimated regions (est_*, and "
        "area_px and contrast where no mask is given), nn_ratio_thermal and the "
        "thermal frechet are reported as NaN, as is contrast_noise of every "
        "frame whose own noise sigma is 0. To measure them, give normal "
        "frames with their sensor noise, or integer levels with their "
        "calibration (--normal-scale on the command line), whose step sets a "
        "noise floor"
    )


def _quantum_floor_note(reference: FrameSet, floor: float) -> str:
    return (
        f"normal frames from {reference.origin} have no noise above their level "
        f"step: the median noise sigma is the quantisation floor, {floor:.3g} "
        f"{reference.unit} (step / sqrt(12)), as in screen exports decoded from a "
        "palette. contrast_noise and peak_z are therefore in units of that "
        "floor, not of a camera's noise, and come out far larger than on "
        "radiometric frames; compare contrast [unit] across such sets instead"
    )


def _drop_thermal_frechet(distances: list[dict[str, Any]]) -> None:
    """Set the thermal space's Fréchet distances to NaN.

    Features of noiseless frames, such as a gradient percentile, can be equal
    in every reference frame up to float32 round-off. Standardised by that
    spread, another set's value lies 1e4 deviations away. Between two halves
    of 16 FLIR screen exports decoded to float32 kelvin, the Fréchet distance
    came out at 1e8.
    """
    for row in distances:
        if row["space"] == "thermal":
            row["frechet"] = float("nan")


def _quantum(frames: FrameSet) -> float:
    """Return the value step of one stored level [unit]; 0 for float frames."""
    if frames.encoding is not None:
        return frames.encoding.quantum
    return 1.0 if frames.unit in ("level", LUMINANCE_UNIT) else 0.0


def _noise(frames: FrameSet) -> np.ndarray:
    """Estimate each frame's noise sigma [unit] outside its constant background.

    Pixels a camera's region of interest blanks give residuals of 0 and would
    pull the median down, so `estimate_frame_noise` leaves them out.
    """
    # NOTE: a thermosynth dataset.h5 records its recipe but not the region
    # the generator measured noise in. So pixels that the recipe left out but
    # the frame did not blank, such as frames.ignore_rects over real content,
    # still count here.
    values, quantum = frames.values, _quantum(frames)
    sigma = np.array([estimate_frame_noise(v, quantum=quantum) for v in values])
    # A smooth float frame leaves residuals of float64 round-off, about 1e-14
    # of its values, which is no noise. A contrast of 3 K over it is 1e12 or more.
    magnitude = np.abs(values).max(axis=(1, 2)) if values.size else 0.0
    sigma[sigma <= CONSTANT_RELATIVE_STD * magnitude] = 0.0
    return sigma


def _features(
    sets: dict[str, FrameSet], autoencoder: AutoencoderFeatures
) -> dict[str, dict[str, np.ndarray]]:
    thermal = {name: thermal_features(frames.values) for name, frames in sets.items()}
    mean, std = standardisation(thermal["normal_reference"])

    scaled_ae = {name: autoencoder.transform(f.values) for name, f in sets.items()}
    ae_mean, ae_std = standardisation(scaled_ae["normal_reference"])
    return {
        "thermal": {name: (x - mean) / std for name, x in thermal.items()},
        "autoencoder": {name: (x - ae_mean) / ae_std for name, x in scaled_ae.items()},
    }


def _sample_rows(
    name: str,
    frames: FrameSet,
    models: NormalModels,
    threshold_sigma: float,
    ring_px: int,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Measure each frame against the normal model of its camera."""
    noise = _noise(frames)
    cameras = frames.cameras or (None,) * len(frames)
    rows = []
    estimated = np.zeros(frames.values.shape, bool)
    for i, values in enumerate(frames.values):
        model = models.for_camera(cameras[i])
        z = model.z_score(values)
        estimated[i] = estimate_region(z, threshold_sigma=threshold_sigma)
        given = None if frames.masks is None else frames.masks[i]
        region = given if given is not None and given.any() else estimated[i]
        row = {
            "set": name,
            "sample_index": int(frames.indices[i]),
            "source": frames.names[i],
            "camera": cameras[i] or "",
            "mask_source": "given" if region is given else "estimated",
            "noise_sigma": noise[i],
        }
        normal = model.frames
        row.update(region_figures(values, region, noise[i], normal, ring_px=ring_px))
        row.update(
            region_figures(
                values, estimated[i], noise[i], normal, ring_px=ring_px, prefix="est_"
            )
        )
        row["est_elongation"] = elongation(estimated[i])
        row["peak_z"] = float(z.max())
        if not model.has_noise:
            # Without z-scores no region is estimated, so its area is unknown.
            row["est_area_px"] = float("nan")
            if row["mask_source"] == "estimated":
                row["area_px"] = float("nan")
        rows.append(row)
    return rows, estimated


def region_figures(
    values: np.ndarray,
    region: np.ndarray,
    noise_sigma: float,
    normal: np.ndarray,
    *,
    ring_px: int = 2,
    prefix: str = "",
) -> dict[str, float]:
    """Measure one frame's region: area, contrast and contrast over noise and normal.

    Parameters
    ----------
    values : ndarray
        float (H, W) frame.
    region : ndarray
        Boolean (H, W) region: a given mask, or the estimated region for the
        ``est_`` figures.
    noise_sigma : float
        The frame's noise sigma [unit].
    normal : ndarray
        float (N, H, W) reference normal frames of the frame's camera.
    ring_px : int, optional
        Width of the ring that contrast is measured against [px].
    prefix : str, optional
        Prefix of the keys, ``"est_"`` for the estimated region.

    Returns
    -------
    dict
        ``area_px`` [px], ``contrast`` [unit], ``contrast_noise`` (contrast
        over ``noise_sigma``, NaN where it is 0) and ``contrast_normal_sigma``
        (`contrast_against_normal`), each under ``prefix``.
    """
    contrast = region_contrast(values, region, ring_px=ring_px)
    ratio = contrast / noise_sigma if noise_sigma > 0 else float("nan")
    return {
        f"{prefix}area_px": float(np.count_nonzero(region)),
        f"{prefix}contrast": contrast,
        f"{prefix}contrast_noise": ratio,
        f"{prefix}contrast_normal_sigma": contrast_against_normal(
            contrast, region, normal, ring_px=ring_px
        ),
    }


def contrast_against_normal(
    contrast: float, region: np.ndarray, normal: np.ndarray, *, ring_px: int = 2
) -> float:
    """Express a region's contrast in deviations of normal frames' contrast there.

    Parameters
    ----------
    contrast : float
        Contrast of the anomaly, from ``region_contrast`` [unit].
    region : ndarray
        Boolean (H, W) region the contrast was measured on.
    normal : ndarray
        float (N, H, W) normal frames.
    ring_px : int, optional
        Ring width used for ``contrast`` [px].

    Returns
    -------
    float
        ``(contrast - mean_n c_n) / std_n c_n`` where ``c_n`` is the same
        region's contrast in normal frame n; NaN where it cannot be measured
        or normal frames show no variation there.
    """
    if not np.isfinite(contrast):
        return float("nan")
    ring = _ring(region, ring_px)
    if not ring.any():
        return float("nan")
    normal_contrast = normal[:, region].mean(axis=1) - normal[:, ring].mean(axis=1)
    spread = normal_contrast.std()
    # In a constant region the normal contrasts differ by round-off only
    # (about 1e-16 of the values), and dividing by that spread would scale
    # the contrast up to 1e13 deviations or more.
    magnitude = np.abs(normal[:, region | ring]).max()
    if spread <= CONSTANT_RELATIVE_STD * magnitude:
        return float("nan")
    return float((contrast - normal_contrast.mean()) / spread)


def _add_feature_columns(
    rows: list[dict[str, Any]],
    features: dict[str, dict[str, np.ndarray]],
    name: str,
    autoencoder: AutoencoderFeatures,
    frames: FrameSet,
) -> None:
    for space in ("thermal", "autoencoder"):
        ratio, _ = nearest_neighbour_ratio(
            features[space]["normal_reference"], features[space][name]
        )
        for row, value in zip(rows, ratio, strict=True):
            row[f"nn_ratio_{space}"] = float(value)
    errors = autoencoder.reconstruction_error(frames.values)
    for row, value in zip(rows, errors, strict=True):
        row["reconstruction_error"] = float(value)


_PAIRS = (
    ("normal_reference", "normal"),
    ("normal_reference", "pseudo"),
    ("normal_reference", "real"),
    ("pseudo", "real"),
)


def _set_distances(
    features: dict[str, dict[str, np.ndarray]],
    root: np.random.SeedSequence,
    n_permutations: int,
) -> list[dict[str, Any]]:
    rows = []
    for space, by_set in features.items():
        for a, b in _PAIRS:
            if a not in by_set or b not in by_set:
                continue
            x, y = by_set[a], by_set[b]
            rng = _named_rng(root, space, a, b)
            test = mmd(x, y, rng=rng, n_permutations=n_permutations)
            classifier = c2st(x, y, rng=rng)
            rows.append(
                {
                    "space": space,
                    "set_a": a,
                    "set_b": b,
                    "n_a": len(x),
                    "n_b": len(y),
                    "mmd2": test.mmd2,
                    "mmd_p_value": test.p_value,
                    "c2st_accuracy": classifier.accuracy,
                    "c2st_p_value": classifier.p_value,
                    # C2ST draws this many frames from each set, the smaller
                    # set's size, so its accuracy is over twice as many.
                    "c2st_n_per_set": classifier.n_per_set,
                    "frechet": frechet_distance(x, y),
                }
            )
    return rows


# Frames per set below which a C2ST accuracy is too noisy to read.
C2ST_FEW_PER_SET = 50


def _small_c2st_note(distances: list[dict[str, Any]]) -> list[str]:
    """Warn, and return a note, when a C2ST row drew fewer than 50 frames per set."""
    small = sorted({r["c2st_n_per_set"] for r in distances} - {None})
    small = [n for n in small if n < C2ST_FEW_PER_SET]
    if not small:
        return []
    note = (
        f"C2ST drew only {small[0]} frames per set in some rows, fewer than "
        f"{C2ST_FEW_PER_SET}, so its accuracy there is noisy: an accuracy below "
        "0.5 is chance, not a finding. Give each set 50 or more frames"
    )
    logger.warning("%s", note)
    return [note]


def figure_unit(name: str, unit: str) -> str:
    """Return the unit of per-sample figure ``name``.

    "px" for areas, ``unit`` (that of a difference of the frames' values) for
    `FRAME_UNIT_FIGURES`, `RECONSTRUCTION_UNIT` for the reconstruction error
    and "1" for ratios.
    """
    if name.endswith("area_px"):
        return "px"
    if name == "reconstruction_error":
        return RECONSTRUCTION_UNIT
    return unit if name in FRAME_UNIT_FIGURES else "1"


def _compare_properties(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    units = {r["unit"] for r in rows if r["set"] in ("pseudo", "real")}
    comparison = []
    for prop in COMPARED_PROPERTIES:
        pseudo = _finite([r[prop] for r in rows if r["set"] == "pseudo"])
        real = _finite([r[prop] for r in rows if r["set"] == "real"])
        entry: dict[str, Any] = {
            "property": prop,
            "unit": ", ".join(sorted({figure_unit(prop, u) for u in units})),
            "n_pseudo": pseudo.size,
            "n_real": real.size,
        }
        for name, data in (("pseudo", pseudo), ("real", real)):
            quartiles = np.percentile(data, [25, 50, 75]) if data.size else [np.nan] * 3
            entry.update(
                {
                    f"{name}_q{q}": v
                    for q, v in zip((25, 50, 75), quartiles, strict=True)
                }
            )
        if pseudo.size >= 2 and real.size >= 2:
            ks = stats.ks_2samp(pseudo, real)
            entry["ks_statistic"] = float(ks.statistic)
            entry["ks_p_value"] = float(ks.pvalue)
            entry["wasserstein"] = float(stats.wasserstein_distance(pseudo, real))
        comparison.append(entry)
    return comparison


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


# Writing ---------------------------------------------------------------------


def _write_report(
    stage: Path,
    report: ClosenessReport,
    sets: dict[str, FrameSet],
    measured: _Measured,
) -> None:
    from thermosynth.validation import closeness_figures

    _write_csv(stage / "per_sample.csv", report.per_sample)
    _write_csv(stage / "set_distances.csv", report.set_distances)
    if report.property_comparison:
        _write_csv(stage / "property_comparison.csv", report.property_comparison)

    figures = closeness_figures.draw_all(
        stage, report.per_sample, sets, measured.features, measured.regions
    )
    markdown = closeness_figures.markdown(report, sets, figures)
    (stage / "report.md").write_text(markdown)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format(v) for k, v in row.items()})


def _format(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return value


def _write_back_targets(pseudo: FrameSet, mode: HDF5Mode) -> dict[str, Path]:
    """Return the sidecar CSV and HDF5 file that will receive closeness."""
    if mode == "none":
        return {}
    output = _thermosynth_output_dir(pseudo)
    targets = {} if output is None else {"csv": output / "closeness.csv"}
    if pseudo.kind == "hdf5":
        copy = pseudo.origin.with_name(f"{pseudo.origin.stem}_closeness.h5")
        targets["hdf5"] = pseudo.origin if mode == "write-back" else copy
        targets["hdf5_source"] = pseudo.origin
    return targets


def _thermosynth_output_dir(frames: FrameSet) -> Path | None:
    if frames.kind == "hdf5":
        return frames.origin.parent
    if frames.kind == "mvtec" and (frames.origin.parent / "dataset.h5").is_file():
        return frames.origin.parent
    return None


def _write_back(
    rows: list[dict[str, Any]], targets: dict[str, Path], overwrite: bool
) -> list[Path]:
    pseudo_rows = [r for r in rows if r["set"] == "pseudo"]
    written = []
    if "csv" in targets:
        sidecar = [
            {
                "sample_index": r["sample_index"],
                **{c: r[c] for c in CLOSENESS_COLUMNS},
                "unit": r["unit"],
            }
            for r in pseudo_rows
        ]
        _write_csv(targets["csv"], sidecar)
        written.append(targets["csv"])
    if "hdf5" in targets:
        written.append(targets["hdf5"])
        _write_hdf5(targets, pseudo_rows, overwrite)
    for path in written:
        logger.debug("wrote per-sample closeness to %s", path)
    return written


def _write_hdf5(
    targets: dict[str, Path], rows: list[dict[str, Any]], overwrite: bool
) -> None:
    target, source = targets["hdf5"], targets["hdf5_source"]
    if target != source:
        # A copy beside the source keeps the relative paths of a sharded file's
        # virtual datasets valid.
        shutil.copy2(source, target)

    dtype = np.dtype([(name, np.float32) for name in CLOSENESS_COLUMNS])
    with h5py.File(target, "a") as file:
        table = np.full(file["labels"].shape[0], np.nan, dtype=np.float64)
        data = np.zeros(table.shape, dtype=dtype)
        for name in CLOSENESS_COLUMNS:
            data[name] = table
        for row in rows:
            data[row["sample_index"]] = tuple(row[c] for c in CLOSENESS_COLUMNS)
        if "closeness" in file:
            if not overwrite:
                raise OutputError(
                    f"{target} already has a closeness dataset; pass --overwrite "
                    "to replace it"
                )
            del file["closeness"]
        written = file.create_dataset("closeness", data=data)
        written.attrs["description"] = (
            "per-sample closeness of anomalous samples to normal data, NaN for "
            "samples not measured; see thermosynth.validation.closeness"
        )
        unit = rows[0]["unit"] if rows else ""
        units = {name: figure_unit(name, unit) for name in CLOSENESS_COLUMNS}
        written.attrs["units_json"] = json.dumps(units)
