"""Load a set of frames for validation.

Four sources are read:

- a thermosynth HDF5 file (``dataset.h5``, or a thermosynth output folder that
  contains one): datasets ``frames``, ``masks``, ``labels``;
- an anomalib / MVTec AD folder tree: ``train/good``, ``test/good``,
  ``test/<kind>`` and, optionally, masks ``ground_truth/<kind>/<stem>_mask.*``
  or ``ground_truth/<kind>/<stem>.*``;
- a plain folder of images (PNG, JPEG, TIFF) or ``.npy`` arrays, optionally
  filtered through a JSON metadata file such as the Raptor Maps
  ``module_metadata.json``;
- one ``.npy`` file that contains a stack of frames (N, H, W), the format
  that ``frames.kind: arrays`` of a recipe reads.

Values are float64. Integer frames with one linear encoding (every sample
of a thermosynth HDF5 file, or a thermosynth folder tree next to its
``dataset.h5``) are decoded to values in the frame unit; other integer frames
keep their stored levels (unit ``"level"``), and float frames keep their
values (unit ``"value"`` where the source names no unit). RGB frames whose
channels are equal give that grey level; other RGB frames are reduced to
their luminance in levels.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from thermosynth.errors import FrameError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.readers import (
    list_mask_values,
    mask_from_image,
    non_binary_values,
    read_image,
)
from thermosynth.physics.heat import ZERO_C_IN_K
from thermosynth.validation.cameras import recorded_cameras
from thermosynth.validation.source_errors import (
    filter_text,
    first_two,
    labelled_filter_message,
    missing_masks_message,
    no_frame_files_message,
    without_masks_hint,
)

logger = logging.getLogger(__name__)

Label = Literal["normal", "anomalous", "any"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
_LUMA = np.array([0.299, 0.587, 0.114])

LUMINANCE_UNIT = "luminance level"
"""Unit of colour frames compared by their luminance (see `_to_values`). A
palette index, the ``level`` of a thermosynth palette output's metadata, is
another scale: it follows the palette's order, not the colours' brightness."""


@dataclass(frozen=True)
class FrameSet:
    """Frames of one set (normal, pseudo-anomalous or real anomalous).

    Attributes
    ----------
    values : ndarray
        float64 (N, H, W) frame values in ``unit``.
    masks : ndarray or None
        Boolean (N, H, W) anomaly masks, None where the source has none.
    indices : ndarray
        int64 (N,) sample index in the source: the HDF5 row, the number in an
        MVTec file stem, or the position in the sorted file list.
    names : list of str
        Source of each frame (file path, or ``file.h5[row]``).
    unit : str
        ``"C"`` or ``"K"`` for decoded frames and float frames of a
        thermosynth HDF5 file, ``"level"`` for stored integer levels, or
        ``"value"`` for float arrays of unknown unit.
    origin : str
        Where the set came from: the HDF5 file or the folder.
    kind : {"hdf5", "mvtec", "folder", "stack"}
        Type of the source; "stack" is one ``.npy`` file of (N, H, W) frames.
    encoding : LinearEncoding or None
        Map from the stored integer levels to ``values``
        (value = level * ``scale_per_level`` + ``offset``); scale 1 and
        offset 0 for frames kept in levels, None for float sources.
    scale_given : bool
        True where :meth:`decoded` decoded the stored levels with a scale that
        the caller gave (``--normal-scale`` on the command line).
    cameras : tuple of (str or None), or None
        Camera key of each frame, such as ``"CAM1"``, or None for a frame of
        unknown camera. The whole field is None where the source records no
        cameras. A thermosynth output whose recipe maps cameras to masks
        records them (see `thermosynth.validation.cameras`).
    """

    values: np.ndarray
    masks: np.ndarray | None
    indices: np.ndarray
    names: list[str]
    unit: str
    origin: Path
    kind: Literal["hdf5", "mvtec", "folder", "stack"]
    encoding: LinearEncoding | None = None
    scale_given: bool = False
    cameras: tuple[str | None, ...] | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of every frame [px]."""
        return (int(self.values.shape[1]), int(self.values.shape[2]))

    def in_unit(self, unit: str) -> FrameSet:
        """Return the frames converted between Celsius and kelvin.

        Raises
        ------
        ValueError
            If ``unit`` or the set's own unit is not "C" or "K".
        """
        if unit == self.unit:
            return self
        if {unit, self.unit} != {"C", "K"}:
            raise ValueError(f"cannot convert frames in {self.unit} to {unit}")
        shift = ZERO_C_IN_K if unit == "K" else -ZERO_C_IN_K
        encoding = self.encoding
        if encoding is not None:
            encoding = LinearEncoding(
                encoding.dtype,
                scale_per_level=encoding.scale_per_level,
                offset=encoding.offset + shift,
            )
        return dataclasses.replace(
            self, values=self.values + shift, unit=unit, encoding=encoding
        )

    def labelled(self, unit: str) -> FrameSet:
        """Return frames of no recorded unit (unit "value") labelled ``unit``.

        Raises
        ------
        FrameError
            If the frames already have a unit other than ``unit``.
        """
        if unit == self.unit:
            return self
        if self.unit != "value":
            raise FrameError(
                f"frames from {self.origin} are in {self.unit} already, so a unit "
                "label does not apply to them; give it only for frames that "
                "record no unit (a float .npy stack or float images)"
            )
        return dataclasses.replace(self, unit=unit)

    def decoded(self, *, scale_per_level: float, offset: float, unit: str) -> FrameSet:
        """Return frames kept in stored levels decoded to values in ``unit``.

        value = level * ``scale_per_level`` + ``offset``, the calibration of
        integer frames that a plain folder gives without one. The step
        ``scale_per_level`` becomes the frames' quantum, which floors their
        noise estimate.

        Raises
        ------
        FrameError
            If the frames are not in unit "level", or the scale is not a
            positive finite number.
        """
        if self.unit != "level" or self.encoding is None:
            raise FrameError(
                f"frames from {self.origin} are in {self.unit}, not in stored "
                "integer levels, so a scale per level does not apply to them; "
                "give the scale and offset only for a folder of integer images "
                "or an integer .npy stack"
            )
        encoding = LinearEncoding(
            self.encoding.dtype, scale_per_level=scale_per_level, offset=offset
        )
        return dataclasses.replace(
            self,
            values=encoding.decode(self.values),
            unit=unit,
            encoding=encoding,
            scale_given=True,
        )

    def subset(self, keep: np.ndarray) -> FrameSet:
        """Return the frames at positions ``keep``, in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        cameras = self.cameras
        return dataclasses.replace(
            self,
            values=self.values[keep],
            masks=None if self.masks is None else self.masks[keep],
            indices=self.indices[keep],
            names=[self.names[i] for i in keep],
            cameras=None if cameras is None else tuple(cameras[i] for i in keep),
        )


def load_frame_set(
    path: str | Path,
    *,
    label: Label = "any",
    metadata: str | Path | None = None,
    where: Mapping[str, Sequence[str]] | None = None,
    path_key: str = "image_filepath",
    max_frames: int | None = None,
    rng: np.random.Generator | None = None,
    where_option: str | None = None,
    pattern: str | None = None,
    pattern_option: str | None = None,
) -> FrameSet:
    """Load frames from a thermosynth HDF5, an MVTec tree or a plain folder.

    Parameters
    ----------
    path : str or Path
        ``dataset.h5``, a thermosynth output folder holding ``dataset.h5``,
        an MVTec AD folder tree, a folder of images or ``.npy`` files, or one
        ``.npy`` file of (N, H, W) frames.
    label : {"normal", "anomalous", "any"}, optional
        Keep only normal or only anomalous samples (HDF5 and MVTec sources).
        A plain folder or .npy stack has no labels; filter a folder with
        ``metadata``.
    metadata : str or Path, optional
        JSON file describing a plain folder's files: a mapping or list of
        records, each with a file path under ``path_key`` relative to the
        JSON file's folder.
    where : mapping of str to sequence of str, optional
        Keep records whose field equals one of the listed values, e.g.
        ``{"anomaly_class": ["Cell", "Hot-Spot"]}``. Needs ``metadata``.
    path_key : str, optional
        Record field that contains the file path.
    max_frames : int, optional
        Keep at most this many frames, drawn without replacement with ``rng``.
    rng : numpy.random.Generator, optional
        Needed when ``max_frames`` is smaller than the set.
    where_option : str, optional
        Command-line option that gave ``where``, such as ``"--normal-where"``,
        so that errors show the filter as the user typed it.
    pattern : str, optional
        Glob matched against paths relative to a plain folder, with the
        semantics of ``pathlib.Path.glob`` as in the recipe's
        ``frames.pattern`` (``*CAM2*``; ``**/*.png`` also descends into
        subfolders). Only image and ``.npy`` files that match are read.
    pattern_option : str, optional
        Command-line option that gave ``pattern``, such as
        ``"--normal-pattern"``, for error messages.

    Returns
    -------
    FrameSet

    Raises
    ------
    FrameError
        If the path is missing, contains no frames after filtering, or the
        frames differ in size, or an MVTec tree's ``train/`` contains a folder
        other than ``good``.
    """
    path = Path(path)
    if path.is_dir() and (path / "dataset.h5").is_file():
        path = path / "dataset.h5"
    is_hdf5 = path.is_file() and path.suffix in (".h5", ".hdf5")
    is_stack = path.is_file() and path.suffix.lower() == ".npy"
    is_mvtec = _is_mvtec_tree(path)
    named = filter_text(where, where_option, metadata)
    if (is_hdf5 or is_mvtec) and (metadata is not None or where):
        raise FrameError(labelled_filter_message(path, is_hdf5, label, named))
    if is_stack and (metadata is not None or where):
        raise FrameError(
            f"{named} does not apply to {path}, because it is one .npy stack and "
            "metadata filters select files of a plain image folder; give the "
            "frames to keep as a folder of files"
        )
    if pattern is not None and (is_hdf5 or is_mvtec or is_stack):
        raise FrameError(_pattern_misfit_message(path, pattern, pattern_option))

    if is_hdf5:
        frames = _load_hdf5(path, label=label)
    elif is_mvtec:
        frames = _load_mvtec(path, label=label)
    elif is_stack:
        frames = _load_stack(path)
    elif path.is_dir():
        if pattern is not None and metadata is None and not where:
            files = _match_pattern(path, pattern, pattern_option)
        else:
            files = _select_files(path, metadata, where, path_key, named)
        if pattern is not None and metadata is not None:
            files = _match_pattern(path, pattern, pattern_option, among=files)
        frames = _load_files(files, origin=path)
    elif path.is_file():
        raise FrameError(
            f"{path} is a file, but a frame set is a thermosynth dataset.h5 (or "
            "the output folder that contains it), an MVTec folder tree, a "
            "folder of images or .npy files, or one .npy file of (N, H, W) "
            "frames; give one of those"
        )
    else:
        raise FrameError(
            f"frame set not found: {path}; give a dataset.h5, an MVTec folder "
            "tree or a folder of images"
        )

    if len(frames) == 0:
        labelled = "" if label == "any" else f"{label} "
        raise FrameError(f"no {labelled}frames in {path}; check the path and label")
    return _limit(frames, max_frames, rng)


def load_for_role(
    path: str | Path,
    role: Literal["normal", "pseudo", "real"],
    **options: Any,
) -> FrameSet:
    """Load a set for one role: normal samples, or anomalous ones of a dataset."""
    label: Label = "normal" if role == "normal" else "anomalous"
    options.setdefault("where_option", f"--{role}-where")
    try:
        return load_frame_set(path, label=label, **options)
    except FrameError as exc:
        # --real is optional: closeness then compares pseudo with normal only.
        without = "; or leave out --real to run without real anomalies"
        hint = without if role == "real" and "no anomalous" in str(exc) else ""
        raise FrameError(f"cannot load the {role} set: {exc}{hint}") from exc


def _pattern_misfit_message(path: Path, pattern: str, option: str | None) -> str:
    named = f"{option} {pattern!r}" if option else f"the pattern {pattern!r}"
    if path.is_file() and path.suffix.lower() == ".npy":
        source = "one .npy stack"
    elif path.is_file():
        source = "a thermosynth HDF5 file, read by its labels"
    else:
        source = "an MVTec tree, read by its labels"
    return (
        f"{named} does not apply to {path}, because it is {source}, and a file "
        "pattern selects files of a plain image folder only. Leave out "
        f"{option or 'the pattern'}, or copy the frames to keep into a plain "
        "folder and filter that folder instead"
    )


def _match_pattern(
    folder: Path,
    pattern: str,
    option: str | None,
    *,
    among: list[Path] | None = None,
) -> list[Path]:
    """List the image and .npy files that ``folder.glob(pattern)`` matches.

    With ``among`` (the files that a metadata filter kept), keep only those.
    """
    named = f"{option} {pattern!r}" if option else f"the pattern {pattern!r}"
    try:
        matched = sorted(
            p
            for p in folder.glob(pattern)
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    except (ValueError, NotImplementedError) as exc:
        raise FrameError(
            f"{named} is not a valid glob ({exc}); give a pattern relative to "
            f"{folder}, such as '*CAM2*' or '**/*.png'"
        ) from exc
    if among is not None:
        kept = {f.resolve() for f in among}
        matched = [p for p in matched if p.resolve() in kept]
    if not matched:
        within = (
            "" if among is None else f" among the {len(among)} files kept by --metadata"
        )
        raise FrameError(
            f"no frame files match {named} in {folder}{within}; the pattern is "
            "matched against paths relative to that folder, as frames.pattern "
            "in a recipe, so check its wildcards, such as '*CAM2*'"
        )
    logger.info("%s keeps %d frame files of %s", named, len(matched), folder)
    return matched


def _limit(
    frames: FrameSet, max_frames: int | None, rng: np.random.Generator | None
) -> FrameSet:
    if max_frames is None or len(frames) <= max_frames:
        return frames
    if rng is None:
        raise FrameError(
            f"{frames.origin} contains {len(frames)} frames, more than max_frames="
            f"{max_frames}; pass rng so that a subset can be drawn"
        )
    keep = np.sort(rng.choice(len(frames), size=max_frames, replace=False))
    return frames.subset(keep)


def _load_hdf5(path: Path, *, label: Label) -> FrameSet:
    with h5py.File(path, "r") as file:
        for name in ("frames", "labels"):
            if name not in file:
                raise FrameError(
                    f"{path} has no dataset {name!r}; is it a thermosynth HDF5 file?"
                )
        labels = file["labels"][()]
        rows = _rows_for_label(labels, label)
        raw = file["frames"][rows] if rows.size else file["frames"][:0]
        masks = file["masks"][rows].astype(bool) if "masks" in file else None
        unit = str(file.attrs.get("frame_unit", "level"))
        encodings = _sample_encodings(file, rows)

    values = _to_values(raw, path, rgb=raw.ndim == 4)
    encoding, unit = _decoding(raw, unit, encodings, path)
    if unit == "level" and _is_colour(raw):
        unit = LUMINANCE_UNIT
    return FrameSet(
        values=values if encoding is None else encoding.decode(values),
        masks=masks,
        indices=rows.astype(np.int64),
        names=[f"{path}[{row}]" for row in rows],
        unit=unit,
        origin=path,
        kind="hdf5",
        encoding=encoding,
        cameras=recorded_cameras(path, rows),
    )


def _sample_encodings(file: h5py.File, rows: np.ndarray | None = None) -> set[str]:
    """Return the distinct ``encoding`` records of the samples' metadata as JSON.

    ``rows`` selects samples; None reads every sample.
    """
    if "metadata" not in file or (rows is not None and rows.size == 0):
        return set()
    records = file["metadata"][()] if rows is None else file["metadata"][rows]
    return {
        json.dumps(json.loads(record).get("encoding"), sort_keys=True)
        for record in records
    }


def _shared_linear(
    encodings: set[str], raw: np.dtype, ndim: int
) -> LinearEncoding | None:
    """Return the one linear encoding of greyscale (N, H, W) frames, or None."""
    if len(encodings) != 1 or ndim != 3:
        return None
    record = json.loads(next(iter(encodings)))
    if not isinstance(record, dict) or record.get("kind") != "linear":
        return None
    return LinearEncoding(
        raw,
        scale_per_level=float(record["scale_per_level"]),
        offset=float(record["offset"]),
    )


def _decoding(
    raw: np.ndarray, unit: str, encodings: set[str], source: Path
) -> tuple[LinearEncoding | None, str]:
    """Choose how a thermosynth file's frames become values, and their unit.

    Frames whose samples all share one linear encoding are decoded with it.
    Float frames without one keep their values in ``unit``. Integer frames
    without one (palettes, RGB, samples that disagree, no metadata) keep
    their stored levels, so their unit is ``"level"``.
    """
    encoding = _shared_linear(encodings, raw.dtype, raw.ndim)
    if encoding is not None:
        return encoding, unit
    if np.issubdtype(raw.dtype, np.floating):
        return None, unit

    if unit != "level" and raw.size:
        logger.info(
            "%s: frames keep their stored levels (unit 'level', not %s) because "
            "their samples share no linear encoding: %s",
            source,
            unit,
            ", ".join(sorted(encodings)) or "no per-sample metadata",
        )
    return LinearEncoding(raw.dtype), "level"


def _rows_for_label(labels: np.ndarray, label: Label) -> np.ndarray:
    if label == "normal":
        return np.flatnonzero(labels == 0)
    if label == "anomalous":
        return np.flatnonzero(labels != 0)
    return np.arange(labels.shape[0])


def _is_mvtec_tree(path: Path) -> bool:
    """Tell whether ``path`` is an MVTec tree rather than a plain image folder.

    A folder with ``train/good`` or ``test/`` is one. So is a folder with a
    ``train/`` folder and no images of its own, so that a tree with a
    misnamed ``train/Good`` gets the message of `_check_train_folders`
    rather than "no frames".
    """
    if (path / "train" / "good").is_dir() or (path / "test").is_dir():
        return True
    return (path / "train").is_dir() and not _image_files(path)


def _check_train_folders(root: Path) -> None:
    """Raise FrameError if ``train/`` contains a folder other than ``good``.

    The MVTec layout keeps only normal frames, in ``train/good``, for training.
    A folder such as ``train/Good`` or ``train/ok`` would otherwise be read
    as an anomaly class, and its normal frames scored as anomalies.
    """
    train = root / "train"
    others = sorted(p.name for p in train.glob("*") if p.is_dir() and p.name != "good")
    if not others:
        return
    listed = ", ".join(repr(name) for name in others)
    folders = "folder" if len(others) == 1 else "folders"
    raise FrameError(
        f"{train} contains the {folders} {listed}, but train/ of an MVTec tree "
        "may contain only 'good', the normal training frames; move normal "
        f"frames to {train / 'good'} and anomalous ones to "
        f"{root / 'test'}/<kind>"
    )


def _load_mvtec(root: Path, *, label: Label) -> FrameSet:
    _check_train_folders(root)
    entries: list[tuple[Path, str | None]] = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        split, kind = folder.parent.name, folder.name
        if split not in ("train", "test"):
            continue
        is_normal = kind == "good"
        if (label == "normal" and not is_normal) or (
            label == "anomalous" and is_normal
        ):
            continue
        files = _image_files(folder)
        if not files and not is_normal:
            logger.warning(
                "%s contains no images, so anomaly class %r is left out; put its "
                "frames there or remove the folder",
                folder,
                kind,
            )
        entries.extend((file, None if is_normal else kind) for file in files)

    if not entries:
        raise FrameError(_no_images_message(root, label))
    frames = _load_files([file for file, _ in entries], origin=root, kind="mvtec")
    indices = np.array([_stem_index(file, i) for i, (file, _) in enumerate(entries)])
    encoding, unit = _folder_decoding(root, frames)
    return FrameSet(
        values=frames.values if encoding is None else encoding.decode(frames.values),
        masks=_mvtec_masks(root, entries, frames.shape),
        indices=indices.astype(np.int64),
        names=frames.names,
        unit=unit,
        origin=root,
        kind="mvtec",
        encoding=encoding or frames.encoding,
        cameras=_tree_cameras(root, indices),
    )


def _tree_cameras(root: Path, indices: np.ndarray) -> tuple[str | None, ...] | None:
    """Return the cameras of a thermosynth folder tree's images, else None.

    The file stems of a tree written beside a ``dataset.h5`` are its rows.
    """
    dataset = root.parent / "dataset.h5"
    if not dataset.is_file() or not indices.size or indices.min() < 0:
        return None
    return recorded_cameras(dataset, indices)


def _no_images_message(root: Path, label: Label) -> str:
    """Describe where an MVTec tree expects images of ``label``, and its folders."""
    folders = sorted(
        p.relative_to(root).as_posix() for p in root.glob("*/*") if p.is_dir()
    )
    found = ", ".join(f"{f}/" for f in folders) if folders else "no split folders"
    if label == "anomalous":
        expected = (
            "anomalous images go in one test/<defect>/ folder per defect kind, "
            "such as test/hot_spot/, beside the normal ones in test/good/"
        )
    else:
        expected = "normal images go in train/good/ and test/good/"
    return (
        f"no {label} images in the MVTec tree {root}, which contains {found}; "
        + expected
    )


def _mvtec_masks(
    root: Path, entries: list[tuple[Path, str | None]], shape: tuple[int, int]
) -> np.ndarray | None:
    """Read the mask of every anomalous entry; normal entries get empty masks.

    An entry is (image, anomaly kind), with kind None for normal images.
    Returns None when anomalous images come without a ``ground_truth`` folder.
    """
    anomalous = [file for file, kind in entries if kind is not None]
    if anomalous and not (root / "ground_truth").is_dir():
        logger.info(
            "%s has no ground_truth folder, so its %d anomalous images are loaded "
            "without masks; pixel metrics need masks",
            root,
            len(anomalous),
        )
        return None

    found: dict[int, Path] = {}
    missing: dict[str, list[Path]] = {}
    by_kind: dict[str, dict[str, list[Path]]] = {}
    for i, (file, kind) in enumerate(entries):
        if kind is None:
            continue
        folder = root / "ground_truth" / kind
        if kind not in by_kind:
            _check_mask_folder(folder, file.parent)
            by_kind[kind] = _files_by_stem(folder)
        path = _find_mask(file, by_kind[kind])
        if path is None:
            missing.setdefault(kind, []).append(file)
        else:
            found[i] = path
    if missing:
        raise FrameError(
            missing_masks_message(root, entries, missing, by_kind, IMAGE_SUFFIXES)
        )

    masks = np.zeros((len(entries), *shape), bool)
    non_binary: list[tuple[Path, list[int]]] = []
    for i, path in found.items():
        masks[i], values = _read_mvtec_mask(path, shape)
        if values:
            non_binary.append((path, values))
    _warn_non_binary(root, non_binary, len(anomalous))
    return masks


def _warn_non_binary(
    root: Path, non_binary: list[tuple[Path, list[int]]], n_masks: int
) -> None:
    """Log one warning for a tree's masks with values other than 0 and 255."""
    if not non_binary:
        return
    path, values = non_binary[0]
    logger.warning(
        "%d of the %d masks in %s %s values other than 0 and 255 (or 1), "
        "such as %s with %s; every non-zero pixel is read as anomalous "
        "(threshold: value > 0), so make the masks binary if those values are "
        "soft edges or stray pixels",
        len(non_binary),
        n_masks,
        root / "ground_truth",
        "contains" if len(non_binary) == 1 else "contain",
        path,
        list_mask_values(values),
    )


def _files_by_stem(folder: Path) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for file in _image_files(folder) if folder.is_dir() else []:
        files.setdefault(file.stem, []).append(file)
    return files


def _find_mask(image: Path, by_stem: dict[str, list[Path]]) -> Path | None:
    """Return the one mask named ``<stem>_mask.*`` or ``<stem>.*``, or None.

    ``by_stem`` lists the files of the image's mask folder by stem.
    """
    candidates = by_stem.get(f"{image.stem}_mask", []) + by_stem.get(image.stem, [])
    if len(candidates) > 1:
        raise FrameError(
            f"{len(candidates)} masks match {image}: "
            f"{', '.join(str(c) for c in candidates)}; keep one of them"
        )
    return candidates[0] if candidates else None


def _check_mask_folder(folder: Path, images: Path) -> None:
    """Raise FrameError if the mask folder of the images in ``images`` is missing."""
    if not folder.is_dir():
        raise FrameError(
            f"mask folder {folder} not found for the anomalous images in "
            f"{images}; an MVTec tree with a ground_truth folder needs a "
            f"mask for every anomalous image, so add the folder with their masks, "
            f"{without_masks_hint(folder.parent.parent)}"
        )


def _read_mvtec_mask(
    path: Path, shape: tuple[int, int]
) -> tuple[np.ndarray, list[int]]:
    """Read a mask as booleans (value > 0), with its values other than 0, 1 and 255."""
    if path.suffix.lower() != ".npy":
        image = read_image(path)
        return mask_from_image(image, path, shape), non_binary_values(image)

    mask = np.load(path) != 0
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if mask.shape != tuple(shape):
        raise FrameError(
            f"mask {path} is {mask.shape[0]} x {mask.shape[1]} px (height x "
            f"width) but the frame is {shape[0]} x {shape[1]} px; use a mask of "
            "the frame's size"
        )
    return mask, []


def _folder_decoding(root: Path, frames: FrameSet) -> tuple[LinearEncoding | None, str]:
    """Find how a thermosynth folder tree's images map to values, and the unit.

    The images of a tree written next to a ``dataset.h5`` are the frames'
    stored pixels, or 8- or 16-bit levels of a linear map of them that
    ``scale.json`` describes. Where the HDF5 file's samples share one linear
    encoding, the two maps combine into one. Other trees keep their stored
    levels or values.
    """
    if frames.encoding is None or frames.values.size == 0:
        return None, frames.unit
    dtype = frames.encoding.dtype
    scale_file, dataset = root / "scale.json", root.parent / "dataset.h5"
    scale = json.loads(scale_file.read_text()) if scale_file.is_file() else {}
    if "value_per_level" in scale:
        # Float frames written as 16-bit levels: value = level * step + offset.
        step, offset = float(scale["value_per_level"]), float(scale["offset"])
        encoding = LinearEncoding(dtype, scale_per_level=step, offset=offset)
        return encoding, str(scale["unit"])

    source = _load_hdf5_encoding(dataset) if dataset.is_file() else None
    if source is None:
        if dataset.is_file():
            logger.info(
                "%s: images keep their stored levels because the samples in %s "
                "share no linear encoding",
                root,
                dataset,
            )
        return None, frames.unit

    # raw = level * raw_per_level + raw_offset, then value = raw * scale + offset.
    encoding, unit = source
    step = float(scale.get("raw_per_level", 1.0)) * encoding.scale_per_level
    offset = float(scale.get("raw_offset", 0.0)) * encoding.scale_per_level
    combined = LinearEncoding(
        dtype, scale_per_level=step, offset=offset + encoding.offset
    )
    return combined, unit


def _load_hdf5_encoding(path: Path) -> tuple[LinearEncoding, str] | None:
    """Return the one linear encoding of a thermosynth file's frames, and their unit."""
    with h5py.File(path, "r") as file:
        if "frames" not in file:
            return None
        frames = file["frames"]
        encoding = _shared_linear(_sample_encodings(file), frames.dtype, frames.ndim)
        unit = str(file.attrs.get("frame_unit", "level"))
    return None if encoding is None else (encoding, unit)


def _stem_index(file: Path, position: int) -> int:
    return int(file.stem) if file.stem.isdigit() else position


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _select_files(
    folder: Path,
    metadata: str | Path | None,
    where: Mapping[str, Sequence[str]] | None,
    path_key: str,
    named: str,
) -> list[Path]:
    """List a plain folder's frame files, or those its metadata records keep.

    ``named`` is the filter as errors show it (see `filter_text`).
    """
    if metadata is None:
        if where:
            raise FrameError(
                f"{named} was given for {folder} without a metadata JSON file; "
                f"pass --metadata as well, a JSON file whose records give each "
                f"file's path under {path_key!r}"
            )
        files = _image_files(folder)
        if not files:
            raise FrameError(no_frame_files_message(folder, IMAGE_SUFFIXES))
        return files

    metadata = Path(metadata)
    if not metadata.is_file():
        raise FrameError(f"metadata file not found: {metadata}")
    records = _records(json.loads(metadata.read_text()), metadata)
    kept = [r for r in records if _matches(r, where or {})]
    if where and not kept:
        raise FrameError(
            f"no record of {metadata} matches {named}; "
            f"{_present_values(records, where)}"
        )
    missing = [r for r in kept if path_key not in r]
    if missing:
        raise FrameError(
            f"{len(missing)} records in {metadata} lack the path key {path_key!r}; "
            f"give every record a {path_key!r} field with the file path"
        )
    files = sorted(metadata.parent / str(r[path_key]) for r in kept)
    return _listed_files(files, folder, metadata, path_key)


def _listed_files(
    files: list[Path], folder: Path, metadata: Path, path_key: str
) -> list[Path]:
    """Return the files of ``files`` that exist under ``folder``.

    Logs a warning for listed files that are missing or lie outside
    ``folder``, and raises FrameError when none is left.
    """
    found = [f for f in files if f.is_file() and _is_under(f, folder)]
    absent = [f for f in files if not f.is_file()]
    outside = [f for f in files if f.is_file() and not _is_under(f, folder)]
    problems = []
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        problems.append(f"{len(absent)} {verb} not found ({first_two(absent)})")
    if outside:
        verb = "lies" if len(outside) == 1 else "lie"
        problems.append(
            f"{len(outside)} {verb} outside {folder} ({first_two(outside)})"
        )
    if not problems:
        return found

    noun = "file" if len(files) == 1 else "files"
    listed = (
        f"{metadata} selects {len(files)} {noun}, of which {' and '.join(problems)}"
    )
    fix = f"check that {path_key!r} gives paths relative to {metadata.parent}"
    if not found:
        raise FrameError(f"no frames to load from {folder}: {listed}; {fix}")
    logger.warning("%s: %s, so they are left out; %s", folder, listed, fix)
    return found


def _present_values(
    records: Sequence[Mapping[str, Any]], where: Mapping[str, Sequence[str]]
) -> str:
    """Name the values that the filtered fields take in ``records``."""
    parts = []
    for key in where:
        values = sorted({str(r[key]) for r in records if key in r})
        listed = ", ".join(values[:20]) + (", ..." if len(values) > 20 else "")
        parts.append(f"{key} takes {listed}" if values else f"no record has {key}")
    return "; ".join(parts)


def _records(data: Any, metadata: Path) -> list[dict[str, Any]]:
    if isinstance(data, Mapping):
        data = list(data.values())
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise FrameError(
            f"{metadata} is neither a list nor a mapping of records (JSON objects)"
        )
    return data


def _matches(record: Mapping[str, Any], where: Mapping[str, Sequence[str]]) -> bool:
    return all(str(record.get(key)) in set(values) for key, values in where.items())


def _is_under(file: Path, folder: Path) -> bool:
    return file.resolve().is_relative_to(folder.resolve())


def _load_files(
    files: list[Path], *, origin: Path, kind: Literal["mvtec", "folder"] = "folder"
) -> FrameSet:
    arrays = [_read_any(file) for file in files]
    odd = next(
        (i for i, a in enumerate(arrays) if a.shape[:2] != arrays[0].shape[:2]), None
    )
    if odd is not None:
        first, other = arrays[0].shape, arrays[odd].shape
        raise FrameError(
            f"frames in {origin} differ in size: {files[odd]} is {other[0]} x "
            f"{other[1]} px (height x width) but {files[0]} is {first[0]} x "
            f"{first[1]} px; validation compares frames pixel by pixel, so give "
            "frames of one size"
        )
    values = (
        np.stack(
            [
                _to_values(a, f, rgb=a.ndim == 3)
                for a, f in zip(arrays, files, strict=True)
            ]
        )
        if arrays
        else np.zeros((0, 0, 0))
    )
    n_rgb = sum(a.ndim == 3 for a in arrays)
    if n_rgb:
        logger.info(
            "%d of %d images in %s are RGB; grey ones (R = G = B) give their grey "
            "level, colour ones their luminance in levels",
            n_rgb,
            len(arrays),
            origin,
        )
    integer = not arrays or arrays[0].dtype.kind in "ui"
    unit = "level" if integer else "value"
    if integer and any(_is_colour(a) for a in arrays if a.ndim == 3):
        unit = LUMINANCE_UNIT
    return FrameSet(
        values=values,
        masks=None,
        indices=np.arange(len(files), dtype=np.int64),
        names=[str(f) for f in files],
        unit=unit,
        origin=origin,
        kind=kind,
        encoding=LinearEncoding(arrays[0].dtype if arrays else np.uint8)
        if integer
        else None,
    )


def _load_stack(path: Path) -> FrameSet:
    """Load one ``.npy`` file of (N, H, W) greyscale or (N, H, W, 3) RGB frames.

    A stack has no unit: integer frames keep their levels (unit "level") and
    float frames their values (unit "value").
    """
    try:
        raw = np.load(path)
    except (OSError, ValueError) as exc:
        raise FrameError(
            f"could not read {path} as a .npy array: {exc}; check the file"
        ) from exc
    rgb = raw.ndim == 4 and raw.shape[-1] == 3
    if raw.ndim != 3 and not rgb:
        raise FrameError(
            f"{path} contains an array of shape {raw.shape}, but a .npy frame "
            "set is a stack of shape (N, H, W), or (N, H, W, 3) for RGB; stack "
            "the frames along the first axis"
        )
    if raw.dtype.kind not in "uif":
        raise FrameError(
            f"{path} contains {raw.dtype} values; give integer levels or float values"
        )

    integer = raw.dtype.kind in "ui"
    unit = "level" if integer else "value"
    if integer and raw.ndim == 4 and _is_colour(raw):
        unit = LUMINANCE_UNIT
    logger.info(
        "%s: %d frames from a .npy stack, which records no unit, so they are "
        "compared in %s",
        path,
        raw.shape[0],
        "their stored levels (unit 'level')" if integer else "unit 'value'",
    )
    return FrameSet(
        values=_to_values(raw, path, rgb=rgb),
        masks=None,
        indices=np.arange(raw.shape[0], dtype=np.int64),
        names=[f"{path}[{i}]" for i in range(raw.shape[0])],
        unit=unit,
        origin=path,
        kind="stack",
        encoding=LinearEncoding(raw.dtype) if integer else None,
    )


def _read_any(file: Path) -> np.ndarray:
    if file.suffix.lower() == ".npy":
        array = np.load(file)
        if array.ndim not in (2, 3):
            raise FrameError(
                f"{file} contains an array of shape {array.shape}, not a frame"
            )
        return array
    return read_image(file)


def _is_colour(raw: np.ndarray) -> bool:
    """Tell whether RGB frames (..., 3) have a pixel whose channels differ."""
    if raw.ndim < 3 or raw.shape[-1] != 3:
        return False
    red, green, blue = raw[..., 0], raw[..., 1], raw[..., 2]
    return not (np.array_equal(red, green) and np.array_equal(red, blue))


def _to_values(raw: np.ndarray, source: Path, *, rgb: bool) -> np.ndarray:
    """Return float64 values of greyscale frames (..., H, W) or RGB (..., H, W, 3).

    RGB frames whose three channels are equal give that channel exactly.
    Others give the luminance 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601),
    which is not a whole level for most colours.
    """
    if not rgb:
        return raw.astype(np.float64)
    red, green, blue = raw[..., 0], raw[..., 1], raw[..., 2]
    if np.array_equal(red, green) and np.array_equal(red, blue):
        return red.astype(np.float64)
    logger.debug("%s contains colour frames; using their luminance as levels", source)
    return raw.astype(np.float64) @ _LUMA
