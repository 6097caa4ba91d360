"""PyTorch datasets: a written HDF5 file, or anomalies blended as items are drawn.

Both datasets return one dict per item, which ``torch.utils.data.default_collate``
batches:

- ``image``: (C, H, W) tensor, C = 1 for greyscale and 3 for RGB frames, in
  the dataset's ``dtype`` (float32 by default). Integer frames keep their exact
  levels: float32 represents every integer up to 2**24, so uint8 and uint16
  frames come out without rounding. Items of a sequence file (one with
  ``times_s``) have ``image`` (C, T, H, W).
- ``mask``: (H, W) bool tensor, True where anomalous.
- ``label``: int64 scalar tensor, 0 normal and 1 anomalous.
- ``index``: int, the row in the HDF5 file or the item's index.
- ``split`` and ``kind``: str.
- ``metadata``: the sample's metadata as a JSON string. Its keys differ between
  samples, which ``default_collate`` cannot batch as a dict.
- ``split_position`` (`HDF5Dataset` only): int, the sample's position from 0
  among the samples of its split and label, or -1 in files that do not
  record it (see `HDF5Dataset.split_positions`).

Neither dataset shares an open file between processes: the HDF5 file is opened
on first read in each process, and the on-the-fly dataset rebuilds its frame
reader in each process. Both work with any number of DataLoader workers,
under the fork and the spawn start methods.
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import operator
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from thermosynth.bank import CellTimes, RiseVariation, simulate_bank_entry
from thermosynth.blend import saturated_px, stretch_metadata
from thermosynth.build import register
from thermosynth.camera.emissivity import emissivity_map
from thermosynth.errors import FrameError, RecipeError, ThermosynthError
from thermosynth.frames.colorbar import read_colorbar
from thermosynth.frames.encodings import (
    LinearEncoding,
    PaletteEncoding,
    describe_encoding,
    encoding_from_description,
)
from thermosynth.frames.frame import Encoding, Frame, rise_unit
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.output.palette import read_palette
from thermosynth.output.sample import Sample
from thermosynth.pipeline import Generator, normal_sample, simulate_rise
from thermosynth.plausibility import CHECK_NAMES, UnitChecks
from thermosynth.recipe.loading import LoadedRecipe, load_recipe
from thermosynth.recipe.models import ScenarioSpec
from thermosynth.samples import blend_threshold, record_and_blend
from thermosynth.scenario import (
    DrawnScenario,
    choose_scenario_index,
    draw_attempt_sources,
    draw_count,
    draw_on_new_cell,
    draw_scenario,
    heated_cells,
    sources_metadata,
    strength_keys,
    superpose,
)
from thermosynth.shared_names import SharedNames

logger = logging.getLogger(__name__)

Item = dict[str, Any]
PairTransform = Callable[
    [torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]
"""Called as ``transform(image, mask)``; returns the new ``(image, mask)``."""

REQUIRED_DATASETS = ("frames", "masks", "labels", "splits", "kinds", "metadata")

# Spawn keys of the random streams. The pipeline uses 0 (split) and 1
# (written samples, `thermosynth.samples.sample_rng`), so items drawn here
# never repeat a written test sample.
_ITEM_STREAM = 2
_BANK_STREAM = 3

# The epoch is shared between processes as a torch.int64 tensor.
MAX_EPOCH = 2**63 - 1

Part = tuple[DrawnScenario, np.ndarray, dict[str, Any], int | None]
"""One source of an item: the drawn scenario, its rise [K] on the layout grid,
what its metadata records besides its bank slot, and that slot (None without
a bank)."""


def _check_torch_dtype(dtype: object) -> None:
    """Raise TypeError unless ``dtype`` is a torch.dtype.

    A str or numpy dtype would otherwise fail only inside DataLoader workers.
    """
    if isinstance(dtype, torch.dtype):
        return

    kind = "numpy.dtype" if isinstance(dtype, np.dtype) else type(dtype).__name__
    name = "float32"
    if isinstance(dtype, str | np.dtype | type):
        # Suggest the torch dtype of the same name, such as int32 for "int32".
        with contextlib.suppress(TypeError):
            name = np.dtype(dtype).name
    if not isinstance(getattr(torch, name, None), torch.dtype):
        name = "float32"
    raise TypeError(
        f"dtype = {dtype!r} ({kind}) is invalid; give a torch.dtype such as "
        f"torch.{name}"
    )


def _check_dtype_fits(frame_dtype: np.dtype, dtype: torch.dtype) -> np.dtype:
    """Return the numpy dtype of ``dtype`` if it can represent every frame value.

    Raises
    ------
    FrameError
        If ``dtype`` is an integer type that cannot hold every value of
        ``frame_dtype``, such as uint16 frames as int16.
    """
    target = torch.empty((), dtype=dtype).numpy().dtype
    lossy_float = frame_dtype.kind == "f" and target.kind == "f"
    if not (np.can_cast(frame_dtype, target, "safe") or lossy_float):
        raise FrameError(
            f"frames of dtype {frame_dtype} do not fit exactly in {dtype}; use "
            "dtype=torch.float32, or an integer type that holds every level, "
            "such as torch.int32 for uint16 frames"
        )
    return target


def to_image_tensor(raw: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Convert frame pixels (H, W) or (H, W, 3) to a (C, H, W) tensor.

    Raises
    ------
    FrameError
        If ``dtype`` is an integer type that cannot hold every value of
        ``raw``'s dtype, such as uint16 frames as int16.
    """
    target = _check_dtype_fits(raw.dtype, dtype)
    channels = raw[None] if raw.ndim == 2 else np.moveaxis(raw, -1, 0)
    array = np.ascontiguousarray(channels, dtype=target)
    if not array.flags.writeable:
        # Sources hand out read-only frames that later items reuse, so an
        # in-place change of the tensor must not reach them.
        array = array.copy()
    return torch.from_numpy(array)


def to_sequence_tensor(raw: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Convert a sequence's pixels (T, H, W) or (T, H, W, 3) to (C, T, H, W)."""
    return torch.stack([to_image_tensor(frame, dtype) for frame in raw], dim=1)


def sample_item(sample: Sample, dtype: torch.dtype) -> Item:
    """Turn a sample into the item dict described in the module docstring."""
    return {
        "image": to_image_tensor(sample.raw, dtype),
        "mask": torch.from_numpy(np.asarray(sample.mask, dtype=bool).copy()),
        "label": torch.tensor(sample.label, dtype=torch.int64),
        "index": sample.index,
        "split": sample.split,
        "kind": sample.kind,
        "metadata": json.dumps(sample.metadata, sort_keys=True),
    }


def _apply_transform(item: Item, transform: PairTransform | None) -> Item:
    """Apply ``transform``; a mask with an anomalous pixel makes the label 1.

    A transform that empties the mask, such as a crop, leaves the stored
    label as it is.
    """
    if transform is None:
        return item

    item["image"], item["mask"] = transform(item["image"], item["mask"])
    if bool(torch.as_tensor(item["mask"]).any()):
        item["label"] = torch.tensor(1, dtype=torch.int64)
    return item


class HDF5Dataset(Dataset[Item]):
    """Map-style dataset over a thermosynth HDF5 file.

    Parameters
    ----------
    path : str or Path
        ``dataset.h5`` written by ``thermosynth generate``.
    split : {"train", "test"}, optional
        Keep only this split's rows; all rows by default.
    transform : callable, optional
        Called as ``transform(image, mask)`` on each item; returns the new
        ``(image, mask)``. A returned mask with any pixel set makes the
        item's ``label`` 1; an empty one keeps the stored label.
    dtype : torch.dtype
        Dtype of ``image``. float32 keeps uint8 and uint16 levels exact;
        an integer type must hold every level (int32 for uint16 frames).
    with_rise : bool
        Also return ``rise_K``, the simulated surface rise [K], float32 (H, W).

    Raises
    ------
    FrameError
        If the path is a folder, is missing, is not HDF5, lacks a dataset
        that thermosynth writes, or joins shard files that are missing, or
        if ``dtype`` cannot hold every level of the file's frames.
    ValueError
        If ``split`` is not "train", "test" or None.
    TypeError
        If ``dtype`` is not a torch.dtype.

    Items raise IndexError for an index outside ``-len..len-1`` and
    TypeError for a bool or an index that ``operator.index`` rejects, such
    as a float.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        split: str | None = None,
        transform: PairTransform | None = None,
        dtype: torch.dtype = torch.float32,
        with_rise: bool = False,
    ) -> None:
        _check_torch_dtype(dtype)
        self.path = Path(path)
        self.transform = transform
        self.dtype = dtype
        self.with_rise = with_rise
        self.rows, self.frame_unit = _read_index(self.path, split)
        with h5py.File(self.path, "r") as file:
            self._sequences = "times_s" in file
            _check_dtype_fits(file["frames"].dtype, dtype)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Item:
        row = self.rows[_check_index(index, len(self.rows))]
        file = self._open()
        sample = Sample(
            index=row,
            split=_text(file["splits"][row]),  # type: ignore[arg-type]
            label=int(file["labels"][row]),
            kind=_text(file["kinds"][row]),
            raw=file["frames"][row],
            mask=file["masks"][row].astype(bool),
            rise_K=np.empty(0, dtype=np.float32),
            recorded_rise=np.empty(0, dtype=np.float32),
            metadata=json.loads(file["metadata"][row]),
        )
        item = sample_item(sample, self.dtype)
        item["split_position"] = int(sample.metadata.get("split_position", -1))
        if self._sequences:
            item["image"] = to_sequence_tensor(sample.raw, self.dtype)
        if self.with_rise:
            item["rise_K"] = torch.from_numpy(file["rise_K"][row])
        return _apply_transform(item, self.transform)

    def _open(self) -> h5py.File:
        """Return this process's handle, opening the file on first use.

        A handle inherited through fork shares HDF5's state with the parent,
        so a process that did not open the file opens its own.
        """
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def closeness(self) -> dict[str, np.ndarray]:
        """Return the per-sample closeness of this dataset's rows, by field.

        ``thermosynth validate closeness`` writes a ``closeness`` dataset
        into ``dataset_closeness.h5`` (or, with ``--write-back``, into the
        input file); open that file with this class to read it. Each array
        is float32 (len(self),), NaN for samples that were not measured
        (the normal ones). Use it to filter samples or to weight a sampler.
        The ``closeness`` dataset's ``units_json`` attribute maps each field
        to its unit as JSON, such as ``{"contrast": "K", "area_px": "px"}``.

        Raises
        ------
        FrameError
            If the file has no ``closeness`` dataset.
        """
        with h5py.File(self.path, "r") as file:
            if "closeness" not in file:
                raise FrameError(
                    f"{self.path} has no closeness dataset; run `thermosynth "
                    f"validate closeness --pseudo {self.path}` and open the "
                    f"{self.path.stem}_closeness.h5 it writes beside it"
                )
            table = file["closeness"][self.rows]
        return {name: table[name] for name in table.dtype.names or ()}

    def split_positions(self) -> np.ndarray:
        """Return each item's position among the samples of its split and label.

        The result is int64 (len(self),), from 0 in each group (training
        normals, test normals and test anomalies). A test sample keeps its
        position, frame and draws when ``split.train_normal`` changes, while
        its row and file name move. So the test samples of two outputs that
        differ only in ``split.train_normal`` pair up by label and position.

        Raises
        ------
        FrameError
            If a sample's metadata does not record ``split_position``, as in
            files written before thermosynth recorded it.
        """
        file = self._open()
        records = file["metadata"][self.rows] if self.rows else []
        positions = np.empty(len(self.rows), dtype=np.int64)
        for i, record in enumerate(records):
            position = json.loads(record).get("split_position")
            if position is None:
                raise FrameError(
                    f"row {self.rows[i]} of {self.path} does not record "
                    "split_position, because an earlier thermosynth wrote it; "
                    "generate the output again with --overwrite"
                )
            positions[i] = position
        return positions

    def encoding(self, index: int = 0) -> LinearEncoding | PaletteEncoding:
        """Build the encoding between item ``index``'s frame pixels and values.

        Its ``decode`` converts the item's stored frame pixels to values in
        ``self.frame_unit``, and ``encode`` converts values back to pixels:
        RGB colours of the stored palette for palette-coded frames.

        Frames that draw their own colour bar (``frames.mode: colorbar``)
        get the palette read again from the bar in the stored frame, which
        blending leaves unchanged.

        Raises
        ------
        FrameError
            If the item's metadata has no encoding or one other than a linear
            scale or a palette. Also if the frames were decoded with a palette
            that the file does not store and that no colour bar gives.
        """
        row = self.rows[_check_index(index, len(self.rows))]
        file = self._open()
        description = json.loads(file["metadata"][row]).get("encoding")
        palette = read_palette(file)

        if description is None:
            raise FrameError(
                f"row {row} of {self.path} has no encoding in its metadata; open "
                "a dataset.h5 written by thermosynth generate"
            )
        if palette is not None:
            lut = palette.lut
        elif "colorbar_px" in description:
            bar = description["colorbar_px"]
            lut = read_colorbar(
                file["frames"][row], x_px=tuple(bar["x_px"]), y_px=tuple(bar["y_px"])
            )
        elif description.get("kind") == "palette":
            raise FrameError(
                f"{self.path} stores no palette colours and row {row}'s metadata "
                "names no colour bar, so its palette is unknown; generate the "
                "dataset again with this version of thermosynth, or build a "
                "PaletteEncoding from the colours that decoded the frames"
            )
        else:
            lut = None
        return encoding_from_description(
            description, dtype=file["frames"].dtype, lut=lut
        )

    def close(self) -> None:
        """Close this process's handle; the next item opens the file again."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state


def _read_index(path: Path, split: str | None) -> tuple[list[int], str]:
    """Return the rows of ``split`` (all rows for None) and the frame unit."""
    if path.is_dir():
        raise FrameError(
            f"{path} is a folder; give the dataset.h5 inside it, e.g. "
            f"{path / 'dataset.h5'}"
        )
    if not path.is_file():
        raise FrameError(f"HDF5 dataset not found: {path}; check the path")
    if not h5py.is_hdf5(path):
        raise FrameError(
            f"{path} is not an HDF5 file; give a dataset.h5 written by "
            "thermosynth generate"
        )

    with h5py.File(path, "r") as file:
        missing = [name for name in REQUIRED_DATASETS if name not in file]
        if missing:
            raise FrameError(
                f"{path} lacks the datasets {missing}; open a dataset.h5 written "
                "by thermosynth generate"
            )
        _check_shards(file, path)
        splits = [_text(value) for value in file["splits"][:]]
        unit = _text(file.attrs.get("frame_unit", "level"))

    if split is not None and split not in ("train", "test"):
        raise ValueError(f"split = {split!r} is invalid; use 'train', 'test' or None")
    rows = [i for i, name in enumerate(splits) if split is None or name == split]
    return rows, unit


def _check_shards(file: h5py.File, path: Path) -> None:
    """Raise FrameError if a shard file that ``path`` joins is missing.

    HDF5 reads a missing source of a virtual dataset as fill values, so
    without this check a copied ``dataset.h5`` alone reads as zeros.
    """
    dataset = file["metadata"]
    if not dataset.is_virtual:
        return
    sources = dict.fromkeys(source.file_name for source in dataset.virtual_sources())
    missing = [name for name in sources if not (path.parent / name).is_file()]
    if missing:
        raise FrameError(
            f"{path} joins shard files that are missing: {missing[:3]} "
            f"({len(missing)} of {len(sources)}); copy the whole output folder, "
            "shards/ included, not dataset.h5 alone"
        )


def _check_index(index: Any, length: int) -> int:
    """Return ``index`` as a position in 0..length-1; negative counts from the end.

    Accepts what ``operator.index`` accepts, such as numpy integers and the
    0-d integer tensors that ``Subset`` and ``SubsetRandomSampler`` pass,
    except booleans.
    """
    is_bool = isinstance(index, bool | np.bool_) or (
        isinstance(index, torch.Tensor) and index.dtype == torch.bool
    )
    try:
        position = None if is_bool else operator.index(index)
    except TypeError:
        position = None
    if position is None:
        raise TypeError(
            f"index {index!r} is invalid; give an int, a numpy integer or a 0-d "
            "integer tensor"
        )
    if not -length <= position < length:
        raise IndexError(f"index {position} out of range for {length} items")
    return position % length


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Return the random generator of item ``index`` in ``epoch``.

    It depends on the recipe seed, the epoch and the index alone, so an item
    does not depend on which worker draws it or on how many workers there are.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(_ITEM_STREAM, epoch, index))
    return np.random.default_rng(sequence)


class OnTheFlyDataset(Dataset[Item]):
    """Training frames with pseudo-anomalies blended in as items are drawn.

    Item ``i`` reads training frame ``i % n_frames`` of the recipe's split
    (``split.train_normal`` frames, chosen as ``thermosynth generate`` chooses
    them) and, with probability ``anomaly_fraction``, blends a simulated rise
    into it as the pipeline does: registration, camera, blend and the
    ``blend.min_area_px`` retries. An anomalous item chooses its scenario
    by weight once, and a retry draws only within that scenario. A runaway
    item's metadata lists each battery cell's ``onset_s``, ``short_s`` and
    ``vent_s`` [s] as ``thermosynth generate`` writes them. Its
    randomness comes from ``(recipe seed, epoch, i)``; call
    :meth:`set_epoch` at the start of each epoch, before iterating the
    DataLoader, to draw new anomalies. The epoch is kept in shared memory,
    so it reaches the workers, persistent ones included.

    Items warn as ``thermosynth generate`` does when a frame or an anomaly
    looks like a unit mistake (`thermosynth.plausibility.UnitChecks`), such
    as mask pixels clipped at the top of the frames' encoding. The warnings
    are log records at WARNING of the ``thermosynth.plausibility`` logger,
    not `warnings.warn` calls. Each check warns once per dataset object and
    its deep copies, in the process that meets it first. The checks that
    have warned are kept in shared memory, so DataLoader workers see them,
    whether they start afresh each epoch or persist. A plain pickle round
    trip keeps the checks that have warned so far, but later warnings are
    no longer shared with the original.
    Workers that meet the same check at the same moment may each warn once.
    A process checks each training frame the first time it reads it. The
    recipe's warnings at setup (such as an implausible material) are logged
    when the dataset is made; workers set up again without logging them.

    Parameters
    ----------
    loaded : LoadedRecipe, str, Path or dict
        Recipe from ``thermosynth.recipe.load_recipe``, the path of a recipe
        file, or a dict of the recipe's keys, loaded as ``load_recipe`` loads
        them. Its ``split`` and ``output`` sections other than
        ``split.train_normal`` are unused, and so is its ``bank`` section:
        the dataset keeps its own bank in memory (``bank_size``).
    base_dir : str or Path, optional
        Folder that relative paths in a dict recipe start from; the working
        folder by default. Files use their own folder.
    length : int, optional
        Number of items per epoch; ``split.train_normal`` by default.
    anomaly_fraction : float
        Probability, 0..1, that an item is anomalous.
    bank_size : int
        Number of simulated rises to keep, 0 to simulate every anomaly.
        Simulation is the slow step: with the default ADI solver an
        anomalous item of the demo recipe took 0.29 s on one thread of a
        shared 2-core machine (0.065 s at ``layout.resolution_mm=5``),
        because its three stiffly coupled layers go to the LU solver; with
        two layers and ADI it took 0.053 to 0.075 s. These come from
        benchmarks/on_the_fly_item_time.py (docs/benchmarks.md lists the
        runs). Finer grids, longer
        durations and the ``fipy`` solver cost more.
        With a bank, an anomaly draws one of the ``bank_size`` scenario
        draws (slots) that are of its scenario, each simulated once per
        process and then reused. A slot's scenario is chosen by weight from
        the slot's own stream. Each scenario that no slot took gets one more
        slot, so the bank may hold up to ``len(scenarios) - 1`` more rises.
        Each item then varies the slot's rise as ``thermosynth generate``
        varies a bank entry (`thermosynth.bank.RiseVariation`): it redraws
        the amplitude (``power_W``, or ``rise_K`` of a held patch) from the
        scenario's distribution, scales the rise by the ratio, and picks one
        of the mirror images that the layout allows. A runaway keeps the
        slot's power and gets only the mirror image. Items that share a slot
        share the anomaly's shape and, up to a mirror image, its position:
        on a layout without mirror symmetry, such as the pouch cells, the
        bank gives ``bank_size`` positions. Call :meth:`fill_bank` before
        building the DataLoader so that workers inherit the bank instead of
        each simulating it again.
    transform : callable, optional
        Called as ``transform(image, mask)`` on each item; a returned mask
        with any pixel set makes the item's ``label`` 1.
    dtype : torch.dtype
        Dtype of ``image``; see :class:`HDF5Dataset`.
    with_normal : bool
        Also return ``normal``, the frame before blending, (C, H, W) in
        ``dtype``, as DRAEM-style models need to learn the restoration. It
        equals ``image`` in normal items and, with ``camera.gain: fixed``,
        outside ``mask``. With ``camera.gain: stretch`` an anomaly that
        rises above the encoding's top level re-scales every valid pixel,
        so such items (metadata ``stretch_gain`` below 1) differ outside
        ``mask`` too.
    with_rise : bool
        Also return ``rise_K``, the simulated surface rise warped to the
        frame, before the camera [K], float32 (H, W), as
        :class:`HDF5Dataset` does. Zero in normal items. A ``transform``
        leaves it unchanged.

    Raises
    ------
    RecipeError
        If the recipe has no training frames or has a ``sequence`` section,
        an option is out of range or not an int where one is expected, or
        ``with_normal`` is combined with ``transform`` (which would change
        ``image`` but not ``normal``).
    FrameError
        If ``dtype`` cannot hold every level of the first training frame.
    TypeError
        If ``loaded`` is not a LoadedRecipe, a path or a dict, or ``dtype``
        is not a torch.dtype.
    """

    def __init__(
        self,
        loaded: LoadedRecipe | str | Path | Mapping[str, Any],
        *,
        base_dir: str | Path | None = None,
        length: int | None = None,
        anomaly_fraction: float = 0.5,
        bank_size: int = 16,
        transform: PairTransform | None = None,
        dtype: torch.dtype = torch.float32,
        with_normal: bool = False,
        with_rise: bool = False,
    ) -> None:
        _check_torch_dtype(dtype)
        _check_options(anomaly_fraction, bank_size, length)
        if with_normal and transform is not None:
            raise RecipeError(
                "with_normal=True with a transform is not supported, as the "
                "transform would change image but not normal; apply it to both "
                "in the training loop"
            )
        loaded = _as_loaded_recipe(loaded, base_dir)
        if loaded.recipe.sequence is not None:
            raise RecipeError(
                f"{loaded.source} has a sequence section, but OnTheFlyDataset "
                "makes still frames only; write the sequences with thermosynth "
                "generate and read them with HDF5Dataset, or remove the sequence "
                "section for stills"
            )
        self.loaded = loaded
        self.with_normal = with_normal
        self.with_rise = with_rise
        self.seed = loaded.recipe.seed
        self.anomaly_fraction = float(anomaly_fraction)
        self.bank_size = int(bank_size)
        self.transform = transform
        self.dtype = dtype
        # Shared memory, so that set_epoch reaches persistent DataLoader
        # workers too, which hold copies of the dataset.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._bank: dict[int, tuple[DrawnScenario, np.ndarray, CellTimes]] = {}
        self._slot_scenarios = slot_scenarios(
            self.seed, loaded.recipe.scenarios, self.bank_size
        )
        self._generator: Generator | None = None
        self._variation: RiseVariation | None = None
        self._pid: int | None = None
        # Training frames that this process has run the frame check on.
        self._checked_frames: set[int] = set()
        self._warned = SharedNames(CHECK_NAMES)
        self._creator_pid = os.getpid()

        generator = self._worker_generator()
        self.frame_indices = list(generator.plan.train_normal)
        if not self.frame_indices:
            raise RecipeError(_no_training_frames(loaded, len(generator.source)))
        # One frame read, which item 0 reads too, so that a dtype too
        # small for the frames' levels fails here rather than in a worker.
        first = generator.read_frame(self.frame_indices[0])
        _check_dtype_fits(first.raw.dtype, dtype)
        self.length = len(self.frame_indices) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    @property
    def epoch(self) -> int:
        """Epoch whose anomalies the next items draw; set it with `set_epoch`."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose anomalies the next items draw, 0..2**63 - 1.

        The epoch sits in shared memory, so DataLoader workers see it as
        well, persistent ones included, from the next iterator on.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer):
            raise TypeError(f"epoch = {epoch!r} is invalid; give an int >= 0")
        if epoch < 0:
            raise ValueError(f"epoch = {epoch} is invalid; give an int >= 0")
        if int(epoch) > MAX_EPOCH:
            raise ValueError(
                f"epoch = {epoch} is invalid; give an int <= 2**63 - 1, the "
                "largest that the epoch's shared int64 holds"
            )
        self._epoch.fill_(int(epoch))

    def fill_bank(self) -> None:
        """Simulate every bank slot now, in this process."""
        for slot in range(len(self._slot_scenarios)):
            self._rise_from_bank(slot)

    def encoding(self, index: int = 0) -> Encoding:
        """Return the encoding between item ``index``'s frame pixels and values.

        It is the encoding that decoded the item's training frame, and
        blending keeps it. Its ``decode`` turns the item's ``image``, moved
        to channels-last for RGB, into values in the frames' unit (C, K or
        level), as that of :meth:`HDF5Dataset.encoding` does for a file.
        """
        index = _check_index(index, self.length)
        frame_index = self.frame_indices[index % len(self.frame_indices)]
        return self._worker_generator().read_frame(frame_index).encoding

    def __getitem__(self, index: int) -> Item:
        index = _check_index(index, self.length)
        generator = self._worker_generator()
        epoch = self.epoch
        rng = item_rng(self.seed, epoch, index)
        frame_index = self.frame_indices[index % len(self.frame_indices)]
        frame = generator.read_frame(frame_index)
        if frame_index not in self._checked_frames:
            generator.unit_checks.check_frame(frame)
            self._checked_frames.add(frame_index)

        if rng.random() < self.anomaly_fraction:
            sample = self._anomalous(index, frame, rng)
        else:
            sample = normal_sample(index, "train", frame)
        sample.metadata["epoch"] = epoch
        item = sample_item(sample, self.dtype)
        if self.with_normal:
            item["normal"] = to_image_tensor(frame.raw, self.dtype)
        if self.with_rise:
            item["rise_K"] = torch.from_numpy(
                np.array(sample.rise_K, dtype=np.float32, copy=True)
            )
        return _apply_transform(item, self.transform)

    def _worker_generator(self) -> Generator:
        """Return this process's pipeline generator, built on first use.

        A process other than the one that made the dataset builds it with
        thermosynth's warnings muted, because building it there logged them.
        """
        if self._generator is None or self._pid != os.getpid():
            muted = os.getpid() != self._creator_pid
            with _warnings_muted() if muted else contextlib.nullcontext():
                generator = Generator(self.loaded)
            ambient_C = self.loaded.recipe.physics.ambient_C
            generator.unit_checks = UnitChecks(ambient_C, warned=self._warned)
            self._generator = generator
            self._pid = os.getpid()
            self._checked_frames = set()
        return self._generator

    def _anomalous(self, index: int, frame: Frame, rng: np.random.Generator) -> Sample:
        generator = self._worker_generator()
        recipe = generator.recipe
        homography, corners = register(recipe.registration, generator.layout, frame)
        emissivity = emissivity_map(
            generator.camera, generator.layout, homography, frame.shape
        )
        threshold = blend_threshold(frame, recipe)
        scenario_index = choose_scenario_index(recipe.scenarios, rng)
        spec = recipe.scenarios[scenario_index]
        unit = rise_unit(frame.unit)

        max_input_rise = 0.0
        for attempt in range(1, recipe.blend.max_tries + 1):
            drawn, rise_grid, sources = self._draw_rise(
                rng, scenario_index, attempt=attempt
            )
            rise_samples = warp_to_frame(
                rise_grid, homography, frame.shape, keep_samples=True
            )
            rise_px = rise_samples.mean(axis=-1)
            result = record_and_blend(
                rise_samples,
                frame,
                recipe,
                generator.camera,
                threshold=threshold,
                emissivity=emissivity,
            )
            max_input_rise = max(max_input_rise, result.peak_input_rise)
            if result.area_px >= recipe.blend.min_area_px:
                metadata = {
                    "source_frame": frame.source,
                    "encoding": describe_encoding(frame.encoding),
                    "scenario": drawn.name,
                    "kind": drawn.kind,
                    "peak_rise_K": float(rise_grid.max()),
                    "peak_recorded_rise": result.peak_rise,
                    "recorded_unit": unit,
                    "area_px": result.area_px,
                    "saturated_px": saturated_px(result, frame),
                    "threshold": float(threshold),
                    **stretch_metadata(result),
                    "attempts": attempt,
                    "corners_px": corners,
                    **sources,
                }
                generator.unit_checks.check_sample(index, metadata, noun="item")
                return Sample(
                    index=index,
                    split="train",
                    label=1,
                    kind=drawn.name,
                    raw=result.raw,
                    mask=result.mask,
                    rise_K=rise_px.astype(np.float32),
                    recorded_rise=result.recorded_rise,
                    metadata=metadata,
                )

        raise ThermosynthError(
            f"item {index} ({frame.source}): in {recipe.blend.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {recipe.blend.min_area_px} "
            f"pixels above the threshold {threshold:.4g} {unit} (the largest "
            f"rise the camera recorded was {max_input_rise:.4g} {unit}); raise the "
            f"power or size of scenario {spec.name or spec.kind!r}, lower "
            "blend.noise_multiple, or enlarge bank_size",
            keys=(
                *strength_keys(recipe.scenarios, scenario_index),
                ("blend", "noise_multiple"),
            ),
        )

    def _draw_rise(
        self, rng: np.random.Generator, scenario_index: int, *, attempt: int
    ) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
        """Draw a rise of scenario ``scenario_index`` [K] on the layout grid.

        Returns the first drawn source, the sum of the ``count`` sources'
        rises and their metadata (`sources_metadata`): each source's bank
        slot (None without a bank), a banked source's ``bank_scale``,
        ``bank_symmetry`` and ``bank_exact``, and a runaway's per-cell times.
        """
        generator = self._worker_generator()
        scenarios = generator.recipe.scenarios
        spec = scenarios[scenario_index]
        parts: list[Part]
        if self.bank_size == 0:
            drawns = draw_attempt_sources(
                spec, scenarios, generator.layout, rng, attempt=attempt
            )
            parts = [(drawn, *self._simulate(drawn), None) for drawn in drawns]
        else:
            parts = [self._bank_part(rng, scenario_index)]
            for _ in range(draw_count(spec, rng) - 1):
                parts.append(self._other_bank_part(rng, scenario_index, parts))

        rise = superpose([rise for _, rise, _, _ in parts])
        described = [
            (drawn, {"bank_slot": slot, **info}) for drawn, _, info, slot in parts
        ]
        return parts[0][0], rise, sources_metadata(described)

    def _other_bank_part(
        self,
        rng: np.random.Generator,
        scenario_index: int,
        parts: list[Part],
    ) -> Part:
        """Draw one more source of an item from a slot that ``parts`` did not use.

        A ``one_cell`` source is drawn again while its mirror image heats a
        cell that ``parts`` heat already, as `draw_more_sources` does for
        direct draws.
        """
        slots = [slot for *_, slot in parts]
        heated = heated_cells([drawn for drawn, *_ in parts])
        return draw_on_new_cell(
            lambda: self._bank_part(rng, scenario_index, avoid=slots), heated
        )

    def _bank_part(
        self,
        rng: np.random.Generator,
        scenario_index: int,
        *,
        avoid: Collection[int | None] = (),
    ) -> Part:
        """Draw one of the scenario's bank slots uniformly, and vary its rise.

        Slots in ``avoid``, which the item drew for its other sources, are
        left out unless the scenario has no other slot. The slot's stored rise
        then gets a mirror image and a new amplitude from ``rng``, as
        `thermosynth.bank.ScenarioBank.draw` varies a bank entry.
        """
        slots = [
            slot
            for slot, scenario in enumerate(self._slot_scenarios)
            if scenario == scenario_index
        ]
        slots = [slot for slot in slots if slot not in avoid] or slots
        slot = slots[int(rng.integers(len(slots)))]
        drawn, rise_K, events = self._rise_from_bank(slot)
        varied = self._rise_variation().draw(
            drawn, rise_K, events, rng, scenario_index=self._slot_scenarios[slot]
        )
        return *varied, slot

    def _rise_variation(self) -> RiseVariation:
        """Return the mirror images and amplitude redraw of this recipe's slots."""
        if self._variation is None:
            generator = self._worker_generator()
            self._variation = RiseVariation(generator.recipe, generator.layout)
        return self._variation

    def _rise_from_bank(self, slot: int) -> tuple[DrawnScenario, np.ndarray, CellTimes]:
        """Return slot ``slot``'s drawn scenario, rise [K] and a runaway's times.

        The slot is simulated on first use in each process. Its rise is kept
        in float64, as a bank entry of `thermosynth.bank` is.
        """
        if slot not in self._bank:
            generator = self._worker_generator()
            scenarios = generator.recipe.scenarios
            rng = slot_rng(self.seed, slot)
            # This first draw chose the scenario of the slots below bank_size.
            choose_scenario_index(scenarios, rng)
            spec = scenarios[self._slot_scenarios[slot]]
            drawn = draw_scenario(spec, generator.layout, rng)
            self._bank[slot] = drawn, *simulate_bank_entry(self._simulate_entry, drawn)
            logger.debug("bank slot %d simulated in process %d", slot, os.getpid())
        return self._bank[slot]

    def _simulate(self, drawn: DrawnScenario) -> tuple[np.ndarray, CellTimes]:
        """Return the final rise [K] and, for a runaway, the per-cell times."""
        events: CellTimes = {}
        rise_K = self._simulate_entry(drawn, events=events)
        return rise_K, events

    def _simulate_entry(self, drawn: DrawnScenario, *, events: CellTimes) -> np.ndarray:
        """Simulate ``drawn``; a `thermosynth.bank.SimulateFn`."""
        generator = self._worker_generator()
        return simulate_rise(drawn, generator.layout, generator.recipe, events=events)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = None
        state["_variation"] = None
        state["_pid"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # A deep copy or a plain pickle round trip rebuilds the epoch in
        # private memory, where set_epoch would not reach persistent workers.
        self._epoch.share_memory_()


@contextlib.contextmanager
def _warnings_muted() -> Iterator[None]:
    """Drop thermosynth's log records below ERROR while the block runs.

    It raises the level of the ``thermosynth`` logger, which its child
    loggers inherit unless they set their own level.
    """
    package = logging.getLogger("thermosynth")
    level = package.level
    package.setLevel(logging.ERROR)
    try:
        yield
    finally:
        package.setLevel(level)


def slot_rng(seed: int, slot: int) -> np.random.Generator:
    """Return the random generator of on-the-fly bank slot ``slot``."""
    sequence = np.random.SeedSequence(seed, spawn_key=(_BANK_STREAM, slot))
    return np.random.default_rng(sequence)


def slot_scenarios(
    seed: int, scenarios: list[ScenarioSpec], bank_size: int
) -> list[int]:
    """Return the scenario index of each on-the-fly bank slot, without simulating.

    Slot ``i < bank_size`` takes the scenario that the first number of its
    stream chooses by weight. Then each scenario that no slot took gets one
    more slot, in scenario order, because an item draws only slots of the
    scenario it chose. ``bank_size = 0`` has no slots.
    """
    if bank_size == 0:
        return []

    chosen = [
        choose_scenario_index(scenarios, slot_rng(seed, slot))
        for slot in range(bank_size)
    ]
    with_slot = set(chosen)
    return chosen + [i for i in range(len(scenarios)) if i not in with_slot]


def _check_options(anomaly_fraction: float, bank_size: int, length: int | None) -> None:
    _check_anomaly_fraction(anomaly_fraction)

    is_int = isinstance(bank_size, int | np.integer)
    if isinstance(bank_size, bool) or not is_int or bank_size < 0:
        raise RecipeError(
            f"bank_size = {bank_size!r} is invalid; give an int >= 0 (0 simulates "
            "every anomaly)"
        )
    if length is None:
        return
    if isinstance(length, bool) or not isinstance(length, int | np.integer):
        raise RecipeError(
            f"length = {length!r} ({type(length).__name__}) is invalid; give an "
            "int >= 1, or None for split.train_normal items"
        )
    if length < 1:
        raise RecipeError(f"length = {length} is invalid; give an int >= 1")


def _check_anomaly_fraction(anomaly_fraction: float) -> None:
    if isinstance(anomaly_fraction, bool) or not isinstance(
        anomaly_fraction, numbers.Real
    ):
        raise RecipeError(
            f"anomaly_fraction = {anomaly_fraction!r} "
            f"({type(anomaly_fraction).__name__}) is invalid; give a float "
            "probability in 0..1"
        )
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise RecipeError(
            f"anomaly_fraction = {anomaly_fraction} is invalid; give a "
            "probability in 0..1"
        )


def _as_loaded_recipe(
    recipe: LoadedRecipe | str | Path | Mapping[str, Any],
    base_dir: str | Path | None,
) -> LoadedRecipe:
    """Load a recipe given as a path or a dict; pass a LoadedRecipe through."""
    if isinstance(recipe, LoadedRecipe):
        if base_dir is not None:
            raise ValueError(
                "base_dir applies only to a recipe given as a dict; a "
                "LoadedRecipe has its paths resolved already"
            )
        return recipe
    if isinstance(recipe, str | os.PathLike | Mapping):
        return load_recipe(recipe, base_dir=base_dir)
    raise TypeError(
        f"OnTheFlyDataset got a {type(recipe).__name__} as its recipe; give a "
        "recipe file's path (str or Path), a dict of recipe keys, or the "
        "LoadedRecipe that thermosynth.recipe.load_recipe returns"
    )


def _no_training_frames(loaded: LoadedRecipe, n_frames: int) -> str:
    """Return the message for a recipe whose split leaves no training frames.

    It names every split key that must change with ``split.train_normal``,
    because the split is checked again with the new value.
    """
    split = loaded.recipe.split
    frames = "1 frame" if n_frames == 1 else f"{n_frames} frames"
    fixes = ["split.train_normal=1"]
    if split.test_normal > n_frames - 1:
        fixes.append(f"split.test_normal={max(n_frames - 1, 0)}")
    if split.test_anomalous and n_frames <= 1:
        fixes.append("split.test_anomalous=0")
    return (
        f"{loaded.source}: split.train_normal = 0 leaves no training frames to "
        f"blend into, and the frame source has {frames}; change the "
        f"recipe to {', '.join(fixes)}, e.g. with load_recipe(path, "
        f"overrides={fixes!r})"
    )
