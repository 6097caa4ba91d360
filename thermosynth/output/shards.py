"""Shards: fixed runs of samples, each written to its own files.

A dataset of N samples is cut into shards of ``shard_size`` consecutive
sample indices. The shard size comes from the recipe, never from the number
of workers, so one worker and many write the same files. Inside the staging
folder a shard is complete once its marker ``shards/shard-NNNNNN.json``
exists. The marker is written last, through a temporary name, so a run
killed at any moment leaves each shard complete or visibly incomplete::

    manifest.json               recipe hash, sampling version, sample count
                                and shard size
    shards/shard-000000.h5      the shard's samples (HDF5 layout of hdf5.py)
    shards/shard-000000.json    marker: sample count, severity figures, skips
    folder/...                  the anomalib tree, written shard by shard
    dataset.h5                  master file joining the shards (written last)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py

from thermosynth.errors import OutputError
from thermosynth.output.sample import METADATA_VERSION

logger = logging.getLogger(__name__)

SHARD_DIR = "shards"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Shard:
    """Samples ``start <= index < stop`` of the dataset."""

    number: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        """File stem of the shard, fixed width."""
        return f"shard-{self.number:06d}"

    @property
    def size(self) -> int:
        """Number of sample indices in the shard."""
        return self.stop - self.start


@dataclass(frozen=True)
class ShardResult:
    """What one complete shard holds, as stored in its marker.

    Attributes
    ----------
    number : int
        Shard number.
    n_written : int
        Samples written; the shard's size minus the skipped ones.
    frame_unit : str or None
        Unit of the frames, None when every sample was skipped.
    areas_px : list of int
        Anomaly area of each anomalous sample [px].
    peak_rises_K : list of float
        Peak simulated rise of each anomalous sample [K].
    skipped : list of str
        One message per skipped sample, naming its file and the reason.
    implausible_rises : list of [int, str, float]
        Sample index, scenario name and peak rise [K] of each sample whose
        rise exceeds `thermosynth.plausibility.MAX_PLAUSIBLE_RISE_K`. Markers
        of earlier versions lack it.
    folder_clipped_px : list of [int, int]
        Sample index and count of mask pixels that the 8-bit folder scale
        clips, for each sample with any. Markers of earlier versions lack it.
    folder_headroom_to_fit : list of [int, float] or None
        Sample index and the smallest ``output.folder_headroom`` that keeps
        its mask pixels at or below level 255, for each sample with pixels
        clipped there. None in markers of earlier versions, which lack it.
    folder_clipped_normal_px : list of [int, int]
        Sample index and count of valid pixels that the 8-bit folder scale
        clips, for each normal sample with any. Markers of earlier versions
        lack it.
    folder_files : dict of str to int
        Size [bytes] of each PNG that the shard wrote under ``folder/``, by
        path relative to the staging folder, which `load_result` checks.
        Markers of earlier versions lack it.
    metadata_version : int
        `thermosynth.output.sample.METADATA_VERSION` of the samples'
        metadata in the shard file. Markers of earlier versions lack it and
        read as 1.
    """

    number: int
    n_written: int
    frame_unit: str | None
    areas_px: list[int] = field(default_factory=list)
    peak_rises_K: list[float] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    implausible_rises: list[list[Any]] = field(default_factory=list)
    folder_clipped_px: list[list[int]] = field(default_factory=list)
    folder_headroom_to_fit: list[list[Any]] | None = None
    folder_clipped_normal_px: list[list[int]] = field(default_factory=list)
    folder_files: dict[str, int] = field(default_factory=dict)
    metadata_version: int = 1


@dataclass
class ShardTally:
    """Running counts of one shard's written items, as its `ShardResult` stores."""

    number: int
    n_written: int = 0
    frame_unit: str | None = None
    areas_px: list[int] = field(default_factory=list)
    peak_rises_K: list[float] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    implausible_rises: list[list[Any]] = field(default_factory=list)
    folder_clipped_px: list[list[int]] = field(default_factory=list)
    folder_headroom_to_fit: list[list[Any]] = field(default_factory=list)
    folder_clipped_normal_px: list[list[int]] = field(default_factory=list)
    folder_files: dict[str, int] = field(default_factory=dict)
    metadata_version: int = METADATA_VERSION

    def add(self, frame_unit: str, anomaly: tuple[int, float] | None) -> None:
        """Count one written item; ``anomaly`` is its (area [px], peak rise [K])."""
        self.frame_unit = frame_unit
        self.n_written += 1
        if anomaly is not None:
            self.areas_px.append(int(anomaly[0]))
            self.peak_rises_K.append(float(anomaly[1]))

    def note_rise(self, rise: list[Any] | None) -> None:
        """Keep an `implausible_rise` entry; None means the rise is plausible."""
        if rise is not None:
            self.implausible_rises.append(rise)

    def note_folder_clipping(
        self, index: int, clipped_px: int, headroom_to_fit: float | None = None
    ) -> None:
        """Keep the count of an item's mask pixels clipped in the 8-bit folder.

        ``headroom_to_fit`` is the smallest ``output.folder_headroom`` that
        keeps the item's mask pixels at or below level 255, or None when none
        clips there (`EightBitScale.headroom_to_fit`).
        """
        if clipped_px:
            self.folder_clipped_px.append([index, clipped_px])
        if headroom_to_fit is not None:
            self.folder_headroom_to_fit.append([index, headroom_to_fit])

    def note_normal_clipping(self, index: int, clipped_px: int) -> None:
        """Keep the count of a normal item's pixels clipped in the 8-bit folder."""
        if clipped_px:
            self.folder_clipped_normal_px.append([index, clipped_px])

    def commit(
        self,
        stage: Path,
        shard: Shard,
        written: Path | None,
        *,
        folder_files: Sequence[Path] = (),
    ) -> ShardResult:
        """Move the shard's HDF5 file into place and mark it complete.

        ``folder_files`` are the PNGs that the shard wrote under ``folder/``.
        Their sizes go into the marker.
        """
        for path in folder_files:
            name = path.relative_to(stage).as_posix()
            self.folder_files[name] = path.stat().st_size
        _fsync_files(folder_files)
        result = ShardResult(**asdict(self))
        commit_shard(stage, shard, result, written)
        return result


def plan_shards(n_samples: int, shard_size: int) -> list[Shard]:
    """Cut sample indices ``0 .. n_samples - 1`` into shards of ``shard_size``."""
    starts = range(0, n_samples, shard_size)
    return [
        Shard(number, start, min(start + shard_size, n_samples))
        for number, start in enumerate(starts)
    ]


def shard_file(stage: Path, shard: Shard) -> Path:
    """Return the HDF5 file of a complete shard."""
    return stage / SHARD_DIR / f"{shard.name}.h5"


def temporary_shard_file(stage: Path, shard: Shard) -> Path:
    """Return a hidden, unused name to write a shard's HDF5 file under.

    The name is unique to this call, because Dask may run a task twice (after
    a worker is lost, say), and two writers must never share a file.
    """
    folder = stage / SHARD_DIR
    folder.mkdir(exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f".{shard.name}.h5.", suffix=".tmp", dir=folder
    )
    os.close(handle)
    path = Path(name)
    path.unlink()
    return path


def commit_shard(
    stage: Path, shard: Shard, result: ShardResult, written: Path | None
) -> None:
    """Rename a shard's HDF5 file into place, then write its marker.

    ``written`` is the temporary HDF5 file, or None when HDF5 is off or every
    sample was skipped. The file is flushed to disk before the rename.
    """
    if written is not None:
        _fsync(written)
        os.replace(written, shard_file(stage, shard))
    text = json.dumps(asdict(result), sort_keys=True, indent=1) + "\n"
    _write_text_atomic(_marker(stage, shard), text)


def load_result(stage: Path, shard: Shard, *, hdf5: bool) -> ShardResult | None:
    """Return a complete shard's result, or None if the shard must be redone.

    A marker that is not a shard result, or a shard file that HDF5 cannot
    open (such as an empty or truncated file), makes the shard incomplete,
    with a warning. Redoing such a shard is safe, because a run rewrites its
    HDF5 file, folder images and marker with the same content.
    """
    marker = _marker(stage, shard)
    if not marker.is_file():
        return None
    try:
        result = ShardResult(**json.loads(marker.read_text()))
    except (OSError, ValueError, TypeError) as error:
        _warn_damaged(marker, error)
        return None

    changed = _changed_file(stage, result.folder_files)
    if changed is not None:
        logger.info("%s: %s, so the shard is written again", shard.name, changed)
        return None

    path = shard_file(stage, shard)
    if not (hdf5 and result.n_written):
        return result
    if not path.is_file():
        return None
    problem = _hdf5_problem(path, result.n_written)
    if problem is not None:
        _warn_damaged(path, problem)
        return None
    return result


def _changed_file(stage: Path, sizes: dict[str, int]) -> str | None:
    """Return how the first file that differs from its recorded size differs."""
    for name, size in sizes.items():
        try:
            actual = (stage / name).stat().st_size
        except FileNotFoundError:
            return f"{stage / name} is missing"
        if actual != size:
            return f"{stage / name} has {actual} bytes, but its marker records {size}"
    return None


def _hdf5_problem(path: Path, n_written: int) -> str | None:
    """Return why a shard file is unusable, or None if it has its samples."""
    try:
        with h5py.File(path, "r") as file:
            n_labels = file["labels"].shape[0]
    except (OSError, KeyError) as error:
        return str(error)
    if n_labels != n_written:
        return f"it has {n_labels} samples, but its marker counts {n_written}"
    return None


def _warn_damaged(path: Path, problem: object) -> None:
    logger.warning(
        "%s is damaged (%s), so its shard counts as incomplete", path, problem
    )


def write_manifest(stage: Path, manifest: dict[str, Any]) -> None:
    """Write the run's manifest, or check that a resumed stage has the same one.

    Raises
    ------
    OutputError
        If the staging folder contains a manifest of another run.
    """
    path = stage / MANIFEST
    text = json.dumps(manifest, sort_keys=True, indent=1) + "\n"
    if path.is_file() and path.read_text() != text:
        raise OutputError(
            f"staging folder {stage} belongs to another run ({path} differs); "
            "remove that folder, or run without --resume to start over"
        )
    _write_text_atomic(path, text)


def read_manifest(folder: Path) -> dict[str, Any]:
    """Return the manifest that `write_manifest` wrote in ``folder``.

    Raises
    ------
    OutputError
        If the manifest is not a JSON object with the recipe hash, the sample
        count and the shard size.
    """
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OutputError(
            f"could not read {path} ({error}); pass --overwrite to replace "
            f"{folder}, or choose another output folder"
        ) from error

    keys = ("recipe_sha256", "n_samples", "shard_size")
    if not isinstance(manifest, dict) or any(key not in manifest for key in keys):
        raise OutputError(
            f"{path} is not a thermosynth manifest (expected the keys "
            f"{', '.join(keys)}); pass --overwrite to replace {folder}, or choose "
            "another output folder"
        )
    return manifest


def remove_temporaries(stage: Path) -> None:
    """Delete the hidden ``.*.tmp`` files that killed runs left in ``stage``.

    The folder tree's root is searched too, for the JSON files that every
    shard of a sequence dataset writes there.
    """
    for folder in (stage, stage / SHARD_DIR, stage / "folder"):
        for path in folder.glob(".*.tmp"):
            path.unlink()


def _marker(stage: Path, shard: Shard) -> Path:
    return stage / SHARD_DIR / f"{shard.name}.json"


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    _fsync(temporary)
    os.replace(temporary, path)


def _fsync_files(paths: Sequence[Path]) -> None:
    """Flush files and the folders that contain them to disk."""
    for path in paths:
        _fsync(path)
    for folder in sorted({path.parent for path in paths}):
        _fsync(folder)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
