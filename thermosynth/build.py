"""Build the pipeline's parts (frame source, layout, camera) from a recipe."""

from __future__ import annotations

import collections
import copy
import difflib
import hashlib
import inspect
import logging
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError

from thermosynth.camera.model import Camera
from thermosynth.errors import GridSizeError, LayoutError, RecipeError
from thermosynth.frames.frame import Frame
from thermosynth.frames.readers import ARRAY_FILE_KEYS
from thermosynth.frames.selection import select_files
from thermosynth.frames.sources import (
    ArraySource,
    HDF5Source,
    ImageFolderSource,
    describe_datasets,
)
from thermosynth.frames.synthetic import SyntheticPouchSource
from thermosynth.frames.video import VideoSource
from thermosynth.geometry import layouts
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.materials import material_from_spec
from thermosynth.geometry.registration import (
    body_box,
    cells_box,
    check_fits,
    corners_homography,
    quad_from_mask,
    quad_from_warm_region,
)
from thermosynth.recipe.models import (
    ArrayFrames,
    CameraSpec,
    FrameSpec,
    HDF5Frames,
    ImageFrames,
    LayoutSpec,
    RegistrationSpec,
    SelectSpec,
    VideoFrames,
)

logger = logging.getLogger(__name__)

LAYOUT_BUILDERS: dict[str, Callable[..., Layout]] = {
    "pouch_cell": layouts.pouch_cell,
    "prismatic_cell": layouts.prismatic_cell,
    "cylindrical_array": layouts.cylindrical_array,
    "module": layouts.module,
    "cell_grid": layouts.cell_grid,
    "mask": layouts.from_mask,
}


def build_source(spec: FrameSpec, *, seed: int) -> Any:
    """Open the recipe's frame source; files are read on demand."""
    common: dict[str, Any] = {}
    if isinstance(spec, VideoFrames):
        return _video_source(spec)
    if not isinstance(spec, ImageFrames | ArrayFrames | HDF5Frames):
        return SyntheticPouchSource(spec.n_frames, shape=spec.shape, seed=seed)

    common = {
        "unit": spec.unit,
        "valid_mask": spec.valid_mask,
        "ignore_mask": spec.ignore_mask,
        "ignore_rects": [tuple(r) for r in spec.ignore_rects],
        "scale_per_level": spec.scale_per_level,
        "offset": spec.offset,
    }
    if isinstance(spec, HDF5Frames):
        _check_dataset(spec)
        return HDF5Source(spec.path, dataset=spec.dataset, **common)
    _check_pattern(spec)
    if isinstance(spec, ArrayFrames):
        return ArraySource(spec.path, pattern=spec.pattern, **common)
    colorbar = spec.colorbar.model_dump() if spec.colorbar is not None else None
    source = ImageFolderSource(
        spec.path,
        pattern=spec.pattern,
        mode=spec.mode,
        palette=spec.palette,
        value_range=spec.value_range,
        colorbar=colorbar,
        max_colour_distance=spec.max_colour_distance,
        only=_selected(spec),
        **common,
    )
    if spec.select is not None:
        _log_selection(spec.select, source)
    return source


def _check_pattern(spec: ImageFrames | ArrayFrames) -> None:
    """Raise RecipeError where frames.pattern matches no file that the kind reads.

    That is no file at all, or for kind images only files of one array suffix
    (.npy, .h5 or .hdf5).
    """
    folder = spec.path
    if not folder.is_dir():
        return
    suffixes = {p.suffix.lower() for p in folder.glob(spec.pattern) if p.is_file()}
    if not suffixes and (folder / "train" / "good").is_dir():
        raise RecipeError(
            f"key 'frames.path': no files match {spec.pattern!r} in {folder}, "
            f"which contains the folders {_subfolders(folder)} of an anomalib / "
            "MVTec tree rather than frames; set frames.path to the folder of "
            f"normal frames, {folder / 'train' / 'good'}",
            keys=(("frames", "path"),),
        )
    if not suffixes and not _has_files(folder) and _subfolders(folder):
        raise RecipeError(
            f"key 'frames.pattern': no files match {spec.pattern!r} in the "
            f"frames.path folder {folder}, which contains no files, only the "
            f"folders {_subfolders(folder)}{_subfolder_fix(folder)}",
            keys=(("frames", "path"), ("frames", "pattern")),
        )
    if not suffixes:
        raise RecipeError(
            f"key 'frames.pattern': no files match {spec.pattern!r} in the "
            f"frames.path folder {folder}, which contains "
            f"{_suffix_counts(folder)}; set frames.pattern to match the frame "
            "files, or frames.path to their folder",
            keys=(("frames", "path"), ("frames", "pattern")),
        )
    if isinstance(spec, ImageFrames) and len(suffixes) == 1:
        keys = ARRAY_FILE_KEYS.get(suffixes.pop())
        if keys is not None:
            raise RecipeError(
                f"key 'frames.kind': frames.pattern {spec.pattern!r} matches array "
                f"files in {folder}, which kind 'images' cannot decode; set "
                f"{keys}",
                keys=(("frames", "kind"),),
            )


def _subfolders(folder: Path) -> str:
    """List a folder's sub-folders, such as "test/, train/"."""
    return ", ".join(sorted(f"{p.name}/" for p in folder.iterdir() if p.is_dir()))


def _has_files(folder: Path) -> bool:
    return any(p.is_file() for p in folder.iterdir())


def _subfolder_fix(folder: Path) -> str:
    """Suggest frames.pattern and frames.path for the first file below ``folder``.

    The first file whose name has a suffix gives a pattern such as
    'train/good/*.png' and its folder the alternative frames.path. Folders
    are searched in sorted order, but train/ and good/ first, because an
    anomalib / MVTec tree keeps its normal frames in train/good/.
    """
    for root, dirs, files in os.walk(folder):
        dirs.sort(key=lambda name: (name not in ("train", "good"), name))
        named = sorted(name for name in files if Path(name).suffix)
        if root != str(folder) and named:
            sub = Path(root)
            pattern = (sub.relative_to(folder) / f"*{Path(named[0]).suffix}").as_posix()
            return (
                f"; set frames.pattern to the files in one, such as {pattern!r}, "
                f"or frames.path to the folder of frames, such as {sub}"
            )
    return (
        ", and no file lies below them; set frames.path to the folder that "
        "contains the frames"
    )


def _suffix_counts(folder: Path) -> str:
    """Count a folder's files by suffix, such as "20 '*.png' files"."""
    counts = collections.Counter(p.suffix for p in folder.iterdir() if p.is_file())
    if not counts:
        return "no files"
    listed = [
        f"{n} '*{suffix}'" if suffix else f"{n} without a suffix"
        for suffix, n in counts.most_common(3)
    ]
    others = sum(counts.values()) - sum(n for _, n in counts.most_common(3))
    if others:
        listed.append(f"{others} other")
    return f"{', '.join(listed)} files"


def _check_dataset(spec: HDF5Frames) -> None:
    """Raise RecipeError where frames.dataset is not a dataset of the file."""
    try:
        with h5py.File(spec.path, "r") as file:
            if isinstance(file.get(spec.dataset), h5py.Dataset):
                return
            contents = describe_datasets(file)
    except OSError:
        return  # HDF5Source names a file that it cannot open.
    raise RecipeError(
        f"key 'frames.dataset': dataset {spec.dataset!r} not found in "
        f"{spec.path}, which contains {contents}; set frames.dataset to one of "
        "them",
        keys=(("frames", "dataset"),),
    )


def _video_source(spec: VideoFrames) -> VideoSource:
    return VideoSource(
        spec.path,
        mode=spec.mode,
        unit=spec.unit,
        scale_per_level=spec.scale_per_level,
        offset=spec.offset,
        palette=spec.palette,
        value_range=spec.value_range,
        valid_mask=spec.valid_mask,
        ignore_mask=spec.ignore_mask,
        ignore_rects=[(r[0], r[1], r[2], r[3]) for r in spec.ignore_rects],
        max_colour_distance=spec.max_colour_distance,
    )


def _selected(spec: ImageFrames) -> list[str] | None:
    if spec.select is None:
        return None
    select = spec.select
    return select_files(select.metadata, path_key=select.path_key, where=select.where)


def _log_selection(select: SelectSpec, source: ImageFolderSource) -> None:
    logger.info(
        "frames.select kept %d of the %d files in %s: those that %s lists "
        "with %s (--set frames.select=null reads every file)",
        len(source),
        source.n_listed,
        source.path,
        select.metadata,
        dict(select.where),
    )


def build_layout(
    spec: LayoutSpec, materials: dict[str, dict[str, Any]], *, n_layers: int = 1
) -> Layout:
    """Call the layout builder named by ``layout.kind`` with the recipe's keys.

    Raises RecipeError before any large array is allocated when the grid of
    ``n_layers`` layers would need more memory than this machine has
    (`layouts.max_grid_cells`).
    """
    builder = LAYOUT_BUILDERS[spec.kind]
    options = spec.options()
    if spec.kind == "mask":
        options["mask"] = options.pop("path", None)
    _check_options(builder, options, spec.kind)
    options = _typed_options(builder, options, spec.kind)

    table = {name: material_from_spec(name, entry) for name, entry in materials.items()}
    try:
        layout = builder(
            resolution_mm=spec.resolution_mm, materials=table or None, **options
        )
    except TypeError as exc:
        raise RecipeError(
            f"layout ({spec.kind}): {exc}; check the layout keys",
            keys=(("layout",),),
        ) from None
    except GridSizeError as exc:
        message = grid_size_message(spec, exc.ny, exc.nx, n_layers)
        raise RecipeError(message, keys=_GRID_SIZE_KEYS) from None
    except LayoutError as exc:
        keys = _layout_keys(exc, spec.kind)
        raise RecipeError(f"key 'layout': {exc}", keys=keys) from None

    ny, nx = layout.material_id.shape
    if ny * nx * n_layers > layouts.max_grid_cells():
        message = grid_size_message(spec, ny, nx, n_layers)
        raise RecipeError(message, keys=_GRID_SIZE_KEYS)
    return layout


# Recipe keys that the message on a grid too large names as the fix.
_GRID_SIZE_KEYS = (("layout", "resolution_mm"), ("physics", "n_layers"))


def _layout_keys(exc: LayoutError, kind: str) -> tuple[tuple[str | int, ...], ...]:
    """Return the recipe keys of a builder's error, or the layout as a whole.

    A builder's `LayoutError` lists the builder arguments that it is about,
    which are the layout keys, except where `_RECIPE_KEYS` renames them.
    """
    if not exc.keys:
        return (("layout",),)
    return tuple(
        ("layout", _RECIPE_KEYS.get((kind, str(key[0])), key[0])) for key in exc.keys
    )


def grid_size_message(spec: LayoutSpec, ny: int, nx: int, n_layers: int) -> str:
    """Describe a grid too large for this machine's memory, for a RecipeError."""
    cells = ny * nx * n_layers
    need_GiB = cells * layouts.BYTES_PER_GRID_CELL / 1024**3
    return (
        f"key 'layout.resolution_mm' = {spec.resolution_mm:g} gives a grid of "
        f"{ny} x {nx} x {n_layers} layers = {cells:.3g} cells, which needs "
        f"about {need_GiB:.3g} GiB, more than this machine's memory holds "
        f"({layouts.max_grid_cells():,} cells); resolution_mm is in "
        "millimetres, not metres, so raise it or lower physics.n_layers"
    )


def _check_options(
    builder: Callable[..., Layout], options: dict[str, Any], kind: str
) -> None:
    parameters = inspect.signature(builder).parameters
    accepted = [p for p in parameters if p not in ("resolution_mm", "materials")]
    for key in options:
        if key not in parameters:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f"did you mean '{close[0]}'? Valid" if close else "valid"
            raise RecipeError(
                f"unknown key 'layout.{key}' for layout kind {kind!r}; {hint} keys: "
                f"kind, resolution_mm, {', '.join(accepted)}",
                keys=(("layout", key),),
            )
    missing = [
        p.name
        for p in parameters.values()
        if p.default is inspect.Parameter.empty
        and p.name not in options
        and p.name not in ("resolution_mm", "materials")
        and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    if missing:
        raise RecipeError(
            f"missing key 'layout.{missing[0]}' for layout kind {kind!r}; add it "
            "to the recipe's layout section",
            keys=(("layout", missing[0]),),
        )


# Expected value of a layout key, by type, for the message on a wrong value.
_EXPECTED = {
    float: "a number, such as 0.8",
    int: "a whole number, such as 6",
    str: "a name",
}


# Builders take arrays (a mask layout's image) that pydantic has no schema for.
_ANY_TYPE = ConfigDict(arbitrary_types_allowed=True)
# (layout kind, builder argument) -> recipe key, where the two differ.
_RECIPE_KEYS = {("mask", "mask"): "path"}


def _typed_options(
    builder: Callable[..., Layout], options: dict[str, Any], kind: str
) -> dict[str, Any]:
    """Convert layout keys to the builder's types, or name the key that fails.

    A number written as text, such as ``"1e-9"``, becomes a number here. A
    distribution, a boolean or a word where a number belongs is rejected.
    """
    hints = typing.get_type_hints(builder)
    typed = {}
    for key, value in options.items():
        hint = hints.get(key, Any)
        try:
            if isinstance(value, bool) and hint is not bool:
                raise ValueError(key)
            typed[key] = TypeAdapter(hint, config=_ANY_TYPE).validate_python(value)
        except (ValidationError, ValueError):
            expected = _EXPECTED.get(_without_none(hint), f"a value of type {hint}")
            name = _RECIPE_KEYS.get((kind, key), key)
            raise RecipeError(
                f"key 'layout.{name}' = {value!r} is invalid for layout kind "
                f"{kind!r}; give {expected} (layout keys take one value, not "
                "a distribution)",
                keys=(("layout", name),),
            ) from None
    return typed


def _without_none(hint: Any) -> Any:
    """Return X for ``X | None``, else the hint itself."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def check_camera(spec: CameraSpec, frame: Frame) -> None:
    """Raise RecipeError before any work if the camera cannot record on ``frame``."""
    if frame.unit == "level" and spec.levels_per_kelvin is None:
        raise RecipeError(
            f"frames of {frame.source} are in camera levels, so the rise [K] needs "
            "a scale: set camera.levels_per_kelvin [level K-1] in the recipe",
            keys=(("camera", "levels_per_kelvin"),),
        )


def build_camera(spec: CameraSpec) -> Camera:
    """Turn the recipe's camera section into a Camera."""
    return Camera(**spec.model_dump())


def warn_unused_level_scale(camera: CameraSpec, frames: FrameSpec, source: str) -> None:
    """Warn when camera.levels_per_kelvin is set but the frames are in C or K.

    The camera converts a rise to levels only for frames in unit ``level``.
    Calibrated frames (``scale_per_level``, float temperatures, synthetic
    frames) take the rise in kelvin, so the key has no effect on them.
    ``validate transfer`` does use the key, on its own 8-bit frames, so it
    does not call this check.
    """
    unit = getattr(frames, "unit", "C")
    if camera.levels_per_kelvin is None or unit == "level":
        return
    if hasattr(frames, "unit"):
        reason = f"frames.unit is {unit}"
    else:
        reason = f"{frames.kind} frames are in {unit}"
    logger.warning(
        "%s: camera.levels_per_kelvin = %g is ignored, because %s: frames in "
        "C or K take the rise in kelvin as it is, and only frames in unit "
        "'level' need a scale; remove the key, or set frames.unit: level "
        "(without frames.scale_per_level) to blend in stored levels",
        source,
        camera.levels_per_kelvin,
        reason,
    )


def register(
    spec: RegistrationSpec, layout: Layout, frame: Frame
) -> tuple[np.ndarray, list[list[float]]]:
    """Place the layout on ``frame``; return the homography and its corners [px]."""
    height, width = frame.shape
    if spec.method == "corners":
        corners = np.asarray(spec.corners_px, dtype=float)
    elif spec.method == "full_frame":
        corners = np.array(
            [
                [-0.5, -0.5],
                [width - 0.5, -0.5],
                [width - 0.5, height - 0.5],
                [-0.5, height - 0.5],
            ]
        )
    elif spec.method == "valid_mask":
        corners = quad_from_mask(frame.valid)
    else:
        corners = quad_from_warm_region(frame.values, frame.valid)

    if spec.method == "corners":
        _check_recipe_corners(corners, frame.shape)
    else:
        check_fits(corners, frame.shape)
    boxes = {"cells": cells_box, "body": body_box}
    box = boxes[spec.fit](layout) if spec.fit in boxes else None
    homography = corners_homography(layout, corners, box=box)
    return homography, corners.round(3).tolist()


def _check_recipe_corners(corners: np.ndarray, frame_shape: tuple[int, int]) -> None:
    """Raise RecipeError if registration.corners_px is invalid or off the frame.

    Every frame of a recipe has one size, so skipping frames cannot help and
    the error is the recipe's, not a frame's.
    """
    key = ("registration", "corners_px")
    try:
        check_fits(corners, frame_shape, name=f"key '{'.'.join(key)}'")
    except LayoutError as exc:
        raise RecipeError(str(exc), keys=(key,)) from None


class CachedRegistration:
    """Register frames with :func:`register`, once per distinct frame.

    A generator places the layout on the same source frame for every sample
    drawn from it; the result depends only on the frame's stored values and
    valid mask, so it is kept under a digest of those and reused. At most
    ``max_entries`` results are kept; when full, new frames are registered
    without being kept.
    """

    def __init__(
        self, spec: RegistrationSpec, layout: Layout, *, max_entries: int = 4096
    ) -> None:
        self.spec = spec
        self.layout = layout
        self.max_entries = max_entries
        self._results: dict[tuple[str, bytes], tuple[np.ndarray, list[list[float]]]]
        self._results = {}

    def __call__(self, frame: Frame) -> tuple[np.ndarray, list[list[float]]]:
        """Return the homography and its corners [px], as :func:`register`."""
        key = (frame.source, _frame_digest(frame))
        result = self._results.get(key)
        if result is None:
            result = register(self.spec, self.layout, frame)
            if len(self._results) < self.max_entries:
                self._results[key] = result

        homography, corners = result
        return homography.copy(), copy.deepcopy(corners)


def _frame_digest(frame: Frame) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for array in (frame.raw, frame.valid):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.data)
    return digest.digest()
