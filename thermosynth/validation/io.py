"""Load a set of frames for validation.

Three sources are read:

- a thermosynth HDF5 file (``dataset.h5``, or a thermosynth output folder that
  contains one): datasets ``frames``, ``masks``, ``labels``;
- an anomalib / MVTec AD folder tree: ``train/good``, ``test/good``,
  ``test/<kind>`` and ``ground_truth/<kind>/<stem>_mask.png``;
- a plain folder of images (PNG, JPEG, TIFF) or ``.npy`` arrays, optionally
  filtered through a JSON metadata file such as the Raptor Maps
  ``module_metadata.json``.

Values are the stored pixels as float64. Greyscale and float frames keep
their unit; RGB frames are reduced to their luminance in levels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from thermosynth.errors import FrameError
from thermosynth.frames.readers import read_image, read_mask

logger = logging.getLogger(__name__)

Label = Literal["normal", "anomalous", "any"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
_LUMA = np.array([0.299, 0.587, 0.114])


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
        ``"C"``, ``"K"`` or ``"level"`` (from HDF5 attributes and integer
        images), or ``"value"`` for float arrays of unknown unit.
    origin : str
        Where the set came from: the HDF5 file or the folder.
    kind : {"hdf5", "mvtec", "folder"}
        Type of the source.
    """

    values: np.ndarray
    masks: np.ndarray | None
    indices: np.ndarray
    names: list[str]
    unit: str
    origin: Path
    kind: Literal["hdf5", "mvtec", "folder"]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of every frame [px]."""
        return (int(self.values.shape[1]), int(self.values.shape[2]))

    def subset(self, keep: np.ndarray) -> FrameSet:
        """Return the frames at positions ``keep``, in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        return FrameSet(
            values=self.values[keep],
            masks=None if self.masks is None else self.masks[keep],
            indices=self.indices[keep],
            names=[self.names[i] for i in keep],
            unit=self.unit,
            origin=self.origin,
            kind=self.kind,
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
) -> FrameSet:
    """Load frames from a thermosynth HDF5, an MVTec tree or a plain folder.

    Parameters
    ----------
    path : str or Path
        ``dataset.h5``, a thermosynth output folder holding ``dataset.h5``,
        an MVTec AD folder tree, or a folder of images or ``.npy`` files.
    label : {"normal", "anomalous", "any"}, optional
        Keep only normal or only anomalous samples (HDF5 and MVTec sources).
        A plain folder has no labels; filter it with ``metadata``.
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

    Returns
    -------
    FrameSet

    Raises
    ------
    FrameError
        If the path is missing, contains no frames after filtering, or the
        frames differ in size.
    """
    path = Path(path)
    if path.is_dir() and (path / "dataset.h5").is_file():
        path = path / "dataset.h5"
    is_hdf5 = path.is_file() and path.suffix in (".h5", ".hdf5")
    is_mvtec = (path / "train" / "good").is_dir() or (path / "test").is_dir()
    if (is_hdf5 or is_mvtec) and (metadata is not None or where):
        raise FrameError(
            f"{path} is a labelled dataset; metadata filters apply to plain image "
            "folders only, so select by label instead"
        )

    if is_hdf5:
        frames = _load_hdf5(path, label=label)
    elif is_mvtec:
        frames = _load_mvtec(path, label=label)
    elif path.is_dir():
        files = _select_files(path, metadata, where, path_key)
        frames = _load_files(files, origin=path)
    else:
        raise FrameError(
            f"frame set not found: {path}; give a dataset.h5, an MVTec folder "
            "tree or a folder of images"
        )

    if len(frames) == 0:
        raise FrameError(f"no {label} frames in {path}; check the path and label")
    return _limit(frames, max_frames, rng)


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

    return FrameSet(
        values=_to_values(raw, path, rgb=raw.ndim == 4),
        masks=masks,
        indices=rows.astype(np.int64),
        names=[f"{path}[{row}]" for row in rows],
        unit=unit,
        origin=path,
        kind="hdf5",
    )


def _rows_for_label(labels: np.ndarray, label: Label) -> np.ndarray:
    if label == "normal":
        return np.flatnonzero(labels == 0)
    if label == "anomalous":
        return np.flatnonzero(labels != 0)
    return np.arange(labels.shape[0])


def _load_mvtec(root: Path, *, label: Label) -> FrameSet:
    entries = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        split, kind = folder.parent.name, folder.name
        if split not in ("train", "test"):
            continue
        is_normal = kind == "good"
        if (label == "normal" and not is_normal) or (
            label == "anomalous" and is_normal
        ):
            continue
        for file in _image_files(folder):
            mask = root / "ground_truth" / kind / f"{file.stem}_mask.png"
            entries.append((file, None if is_normal else mask))

    if not entries:
        raise FrameError(f"no {label} images in the MVTec tree {root}")
    frames = _load_files([file for file, _ in entries], origin=root, kind="mvtec")
    # Normal frames get an empty mask.
    masks = np.stack([_read_mvtec_mask(m, frames.shape) for _, m in entries])
    indices = np.array([_stem_index(file, i) for i, (file, _) in enumerate(entries)])
    return FrameSet(
        frames.values,
        masks,
        indices.astype(np.int64),
        frames.names,
        frames.unit,
        root,
        "mvtec",
    )


def _read_mvtec_mask(path: Path | None, shape: tuple[int, int]) -> np.ndarray:
    if path is None:
        return np.zeros(shape, bool)
    if not path.is_file():
        raise FrameError(
            f"mask not found: {path}; an MVTec tree needs a mask for every "
            "anomalous image"
        )
    return read_mask(path, shape)


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
) -> list[Path]:
    if metadata is None:
        if where:
            raise FrameError(
                f"a filter {dict(where)} was given for {folder} without a "
                "metadata JSON file; pass --metadata as well"
            )
        return _image_files(folder)

    metadata = Path(metadata)
    if not metadata.is_file():
        raise FrameError(f"metadata file not found: {metadata}")
    records = _records(json.loads(metadata.read_text()), metadata)
    kept = [r for r in records if _matches(r, where or {})]
    missing = [r for r in kept if path_key not in r]
    if missing:
        raise FrameError(
            f"{len(missing)} records in {metadata} lack the path key {path_key!r}; "
            f"give every record a {path_key!r} field with the file path"
        )
    files = sorted(metadata.parent / str(r[path_key]) for r in kept)
    return [f for f in files if f.is_file() and _is_under(f, folder)]


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
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise FrameError(
            f"frames in {origin} differ in size {sorted(shapes)}; validation "
            "compares frames pixel by pixel, so give frames of one size"
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
    unit = "level" if not arrays or arrays[0].dtype.kind in "ui" else "value"
    return FrameSet(
        values=values,
        masks=None,
        indices=np.arange(len(files), dtype=np.int64),
        names=[str(f) for f in files],
        unit=unit,
        origin=origin,
        kind=kind,
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


def _to_values(raw: np.ndarray, source: Path, *, rgb: bool) -> np.ndarray:
    """Return float64 values; RGB is reduced to luminance in levels."""
    if rgb:
        logger.info("%s contains RGB frames; using their luminance as levels", source)
        return raw.astype(np.float64) @ _LUMA
    return raw.astype(np.float64)
