"""Frame sources: folders of images, numpy arrays and HDF5 datasets.

Every source has ``len(source)``, ``source.read(index) -> Frame`` and
``source.sources``, one string per frame that names its file (and the index
inside the file for stacks). A frame's ``valid`` mask is the region of
interest, minus the ignore mask and rectangles, minus pixels that cannot be
decoded (non-finite values, colours far from every palette colour).

Frames are returned with read-only arrays, and each source keeps the frames it
read last in a `FrameCache`, so that a later read of the same index returns the
same object and work done per frame object (``Generator.prepare``) is reused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import h5py
import numpy as np

from thermosynth.errors import (
    CalibrationError,
    ColorbarFitError,
    FrameError,
    MaskSizeError,
)
from thermosynth.frames.colorbar import read_colorbar
from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding
from thermosynth.frames.frame import Frame, Unit
from thermosynth.frames.noise import estimate_noise
from thermosynth.frames.palettes import palette_lut
from thermosynth.frames.readers import (
    list_mask_values,
    mask_from_image,
    non_binary_values,
    read_image,
)

logger = logging.getLogger(__name__)

_UNITS = ("level", "C", "K")
_MODES = ("greyscale", "palette", "colorbar")
_COLORBAR_KEYS = ("x_px", "y_px", "top", "bottom")

MaskSpec = str | Path | Mapping[str, str | Path] | None
Rect = tuple[int, int, int, int]

# Memory for decoded frames kept for later reads of the same index [bytes].
# While a frame is kept, Generator.prepare keeps its camera and blend bases
# too, about 4 to 5 times the frame's bytes (counted from the array sizes), so
# generation holds up to about 5 times this bound.
DEFAULT_CACHE_BYTES = 16 * 2**20


class FrameSource(Protocol):
    """A sequence of normal frames."""

    @property
    def sources(self) -> list[str]: ...

    def __len__(self) -> int: ...

    def read(self, index: int) -> Frame: ...


class FrameCache:
    """Decoded frames by index, the first ones read up to a total size.

    A frame's size is the sum of ``nbytes`` of its ``raw``, ``values`` and
    ``valid`` arrays; its encoding is not counted. `put` makes those arrays
    read-only, so a cached frame cannot change between reads. Once the bound is
    reached, later frames are returned but not cached, and nothing is evicted.
    Reads that cycle through more frames than fit, as the anomalous samples of
    a split do, still find the cached share of them. Memory stops growing as
    soon as the cache is full. A pickled cache (for a worker process) carries
    its bound but no frames.

    Parameters
    ----------
    max_bytes : int, optional
        Maximum memory of the kept frames [bytes]. 0 keeps none.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise FrameError(
                f"frame cache size must be >= 0 bytes, got {max_bytes}; use 0 to "
                "keep no frames"
            )
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._frames: dict[int, Frame] = {}

    def __len__(self) -> int:
        return len(self._frames)

    def __getstate__(self) -> dict[str, object]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_bytes = state["max_bytes"]
        self.nbytes = 0
        self._frames = {}

    @property
    def indices(self) -> list[int]:
        """Indices of the kept frames, in the order they were kept."""
        return list(self._frames)

    def get(self, index: int) -> Frame | None:
        """Return the kept frame ``index``, or None."""
        return self._frames.get(index)

    def put(self, index: int, frame: Frame) -> Frame:
        """Make ``frame``'s arrays read-only, keep it if it fits, and return it.

        A frame is kept while the total stays within ``max_bytes``; putting an
        index again replaces its frame if the new total fits.
        """
        for array in (frame.raw, frame.values, frame.valid):
            array.flags.writeable = False

        old = self._frames.get(index)
        kept = self.nbytes - (0 if old is None else frame_nbytes(old))
        size = frame_nbytes(frame)
        if kept + size > self.max_bytes:
            return frame
        self._frames[index] = frame
        self.nbytes = kept + size
        return frame


def _read_cached(
    cache: FrameCache, index: int, length: int, decode: Callable[[int], Frame]
) -> Frame:
    """Return frame ``index`` from ``cache``, or decode and offer it to the cache."""
    index = _check_index(index, length)
    cached = cache.get(index)
    if cached is not None:
        return cached
    return cache.put(index, decode(index))


def frame_nbytes(frame: Frame) -> int:
    """Return the memory of a frame's ``raw``, ``values`` and ``valid`` [bytes]."""
    return int(frame.raw.nbytes + frame.values.nbytes + frame.valid.nbytes)


class Region:
    """Region of interest and ignored areas shared by all sources.

    ``valid_mask`` and ``ignore_mask`` are mask image paths, or mappings from a
    substring of the frame's file name to a mask path, so that one folder can
    hold frames of several cameras (``{"CAM1": ..., "CAM2": ...}``).
    ``ignore_rects`` are half-open pixel boxes ``(x0, y0, x1, y1)``: columns
    x0 <= x < x1 and rows y0 <= y < y1.
    """

    def __init__(
        self, valid_mask: MaskSpec, ignore_mask: MaskSpec, ignore_rects: Sequence[Rect]
    ) -> None:
        self.valid_mask = valid_mask
        self.ignore_mask = ignore_mask
        self.ignore_rects = [_check_rect(rect) for rect in ignore_rects]
        self._cache: dict[tuple[str, tuple[int, int]], np.ndarray] = {}

    def mask(
        self, name: str, shape: tuple[int, int], *, frames: str | None = None
    ) -> np.ndarray:
        """Return True where blending may change pixels of frame ``name``.

        ``frames`` names the frames of ``shape`` in a size error, with its
        verb, such as "the training frames are"; by default "frame NAME is".
        """
        frames = frames or f"frame {name} is"
        region = np.ones(shape, dtype=bool)
        if self.valid_mask is not None:
            valid = self._load(
                self.valid_mask, "frames.valid_mask", name, shape, frames
            )
            region &= valid
        if self.ignore_mask is not None:
            ignored = self._load(
                self.ignore_mask, "frames.ignore_mask", name, shape, frames
            )
            region &= ~ignored

        for x0, y0, x1, y1 in self.ignore_rects:
            region[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
        return region

    def _load(
        self,
        spec: MaskSpec,
        key: str,
        name: str,
        shape: tuple[int, int],
        frames: str,
    ) -> np.ndarray:
        """Read the mask of frame ``name`` from ``spec``, the recipe's ``key``.

        Raises
        ------
        MaskSizeError
            If the mask has had the size of no frame read so far.
        FrameError
            If the mask had the size of earlier frames but not of this one.
        """
        path, key = _pick_mask_path(spec, key, name)
        cache_key = (str(path), shape)
        if cache_key in self._cache:
            return self._cache[cache_key]

        image = read_image(path)
        mask = mask_from_image(image, path)
        if str(path) not in {cached for cached, _ in self._cache}:
            _warn_non_binary(path, key, non_binary_values(image))
        if mask.shape != shape:
            raise _mask_size_error(mask.shape, shape, path, key, frames, self._cache)
        self._cache[cache_key] = mask
        return mask


def _warn_non_binary(path: str | Path, key: str, values: list[int]) -> None:
    if not values:
        return
    logger.warning(
        "mask %s (%s) contains values other than 0 and 255 (or 1): %s; every "
        "non-zero pixel counts as part of the mask (threshold: value > 0), so "
        "make the mask binary if those values are soft edges or stray pixels",
        path,
        key,
        list_mask_values(values),
    )


def _mask_size_error(
    mask_shape: tuple[int, ...],
    frame_shape: tuple[int, int],
    path: str | Path,
    key: str,
    frames: str,
    fitted: Mapping[tuple[str, tuple[int, int]], np.ndarray],
) -> FrameError:
    """Describe a mask whose size differs from that of the frames.

    ``frames`` names the frames with its verb, such as "frame a.png is".
    ``fitted`` contains the masks already applied, keyed by path and frame shape.
    """
    sizes = (
        f"mask {path} is {mask_shape[0]} x {mask_shape[1]} px (height x width) "
        f"but {frames} {frame_shape[0]} x {frame_shape[1]} px"
    )
    if any(fitted_path == str(path) for fitted_path, _ in fitted):
        return FrameError(
            f"{sizes}, while the frames read before it have the mask's size; "
            "remove this frame or give it their size"
        )
    return MaskSizeError(
        f"key '{key}': {sizes}; give a mask of the frames' size",
        keys=(tuple(key.split(".")),),
    )


def mask_keys_in_name(keys: Iterable[str], name: str) -> list[str]:
    """Return the per-camera mask keys that occur in ``name``'s file name.

    A frame takes the mask of the one key its file name contains; none or
    several is an error for the frame source.
    """
    file_name = Path(name).name
    return [key for key in keys if key in file_name]


def _pick_mask_path(spec: MaskSpec, key: str, name: str) -> tuple[str | Path, str]:
    """Choose the mask path for frame ``name`` from a path or a mapping.

    Returns the path and the recipe key that names it, such as
    ``frames.valid_mask.CAM1`` for a mapping.
    """
    if not isinstance(spec, Mapping):
        return spec, key  # type: ignore[return-value]

    matches = mask_keys_in_name(spec, name)
    if len(matches) != 1:
        found = "none" if not matches else ", ".join(matches)
        raise FrameError(
            f"frame {name}: exactly one mask key of {sorted(spec)} must occur in "
            f"its file name, found {found}; adjust the mapping {key} in the "
            "recipe so that one key matches each frame's file name",
            keys=(tuple(key.split(".")),),
        )
    return spec[matches[0]], f"{key}.{matches[0]}"


def _check_rect(rect: Sequence[int]) -> Rect:
    if len(rect) != 4:
        raise FrameError(f"ignore rectangle {rect} must be (x0, y0, x1, y1) [px]")
    x0, y0, x1, y1 = (int(v) for v in rect)
    if x1 <= x0 or y1 <= y0:
        raise FrameError(
            f"ignore rectangle {tuple(rect)} is empty; it needs x0 < x1 and y0 < y1"
        )
    return (x0, y0, x1, y1)


def _check_unit(unit: str) -> Unit:
    if unit not in _UNITS:
        raise FrameError(f"unit must be one of {_UNITS}, got {unit!r}")
    return unit  # type: ignore[return-value]


def _check_index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"frame index {index} out of range for {length} frames")
    return index % length


def _palette_range(
    unit: str, value_range: tuple[float, float] | None, lut: np.ndarray
) -> tuple[float, float]:
    """Return the values of a palette's first and last colour [unit].

    Without ``value_range`` the palette indices are the values, which only
    unit ``level`` allows.
    """
    if value_range is not None:
        return value_range
    if unit != "level":
        raise CalibrationError(
            f"frames.unit is {unit!r}, so frames.value_range must give the "
            f"values [{unit}] of the palette's bottom and top colours, as "
            "value_range: [low, high]; add it, or set frames.unit: level for "
            "frames without a fixed temperature scale",
            keys=(("frames", "value_range"), ("frames", "unit")),
        )
    return (0.0, float(lut.shape[0] - 1))


def _linear_encoding(
    dtype: np.dtype,
    unit: str,
    scale_per_level: float | None,
    offset: float | None,
    name: str,
) -> LinearEncoding:
    """Build the linear encoding of a greyscale frame, checking its unit.

    Without a calibration the values are the stored numbers themselves, which
    is a temperature only for float pixels.
    """
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise FrameError(
            f"{name} contains {dtype} pixels; expected integer or float values"
        )

    calibrated = scale_per_level is not None or offset is not None
    if calibrated and unit == "level":
        raise CalibrationError(
            f"a calibration (frames.scale_per_level, frames.offset) gives values "
            f"in C or K, but {name} is read with frames.unit: level; set "
            "frames.unit: C or frames.unit: K",
            keys=(("frames", "unit"),),
        )
    if scale_per_level is None and unit != "level" and np.issubdtype(dtype, np.integer):
        # An offset alone would read each level as 1 C or 1 K, so a 16-bit
        # frame of 0.01 K levels would decode to thousands of degrees.
        alone = ""
        if offset is not None:
            alone = f" (offset = {offset:g} alone reads one level as 1 {unit})"
        raise CalibrationError(
            f"{name} contains {dtype} levels, which need scale_per_level and offset to "
            f"be read in {unit}{alone}; give the calibration or set "
            "frames.unit: level",
            keys=(
                ("frames", "unit"),
                ("frames", "scale_per_level"),
                ("frames", "offset"),
            ),
        )

    return LinearEncoding(
        dtype,
        scale_per_level=1.0 if scale_per_level is None else scale_per_level,
        offset=0.0 if offset is None else offset,
    )


# Recipe keys that decide which pixels decode to a temperature. The colour
# bar's position is listed key by key, because the command line names a --set
# item for a key only where the item wrote that key or a key above it.
_DECODING_KEYS = (
    ("frames", "palette"),
    ("frames", "colorbar", "x_px"),
    ("frames", "colorbar", "y_px"),
    ("frames", "max_colour_distance"),
)
# Recipe keys that decide which pixels lie in the region of interest.
_REGION_KEYS = (
    ("frames", "valid_mask"),
    ("frames", "ignore_mask"),
    ("frames", "ignore_rects"),
)


def _build_frame(
    raw: np.ndarray,
    values: np.ndarray,
    decodable: np.ndarray,
    *,
    encoding: LinearEncoding | PaletteEncoding,
    unit: Unit,
    region: np.ndarray,
    source: str,
) -> Frame:
    """Assemble a Frame, marking non-finite pixels invalid.

    Non-finite values are replaced by the median of the finite ones, so that
    filters downstream stay finite; those pixels are invalid and never
    blended.
    """
    finite = np.isfinite(values)
    valid = region & decodable & finite
    if region.any() and not (region & decodable).any():
        palette = getattr(encoding, "name", None)
        where = f"palette {palette!r}" if palette else "the colour bar's palette"
        raise FrameError(
            f"{source}: no pixel's colour is within frames.max_colour_distance of "
            f"{where}, so none decodes to a temperature; check that frames.palette "
            "(or frames.colorbar) names the camera's colour map, or raise "
            "frames.max_colour_distance",
            keys=_DECODING_KEYS,
        )
    if not valid.any():
        raise FrameError(
            f"{source} has no valid pixel (inside the region of interest, outside "
            "ignored areas, decodable and finite); check the masks and the file",
            keys=_REGION_KEYS,
        )

    if not finite.all():
        values = np.where(finite, values, np.median(values[finite]))

    sigma = estimate_noise(values, valid, quantum=encoding.quantum)
    return Frame(raw, values, unit, valid, encoding, sigma, source)


def _list_files(folder: Path, pattern: str) -> list[Path]:
    if folder.is_file():
        raise FrameError(
            f"frame path {folder} is a file, not a folder; give the folder that "
            f"contains the frames, such as {folder.parent}, and a pattern that "
            "matches them"
        )
    if not folder.is_dir():
        raise FrameError(f"frame folder not found: {folder}")

    files = sorted(path for path in folder.glob(pattern) if path.is_file())
    if not files:
        raise FrameError(
            f"no files match {pattern!r} in {folder}; check the folder and the pattern"
        )
    return files


def _keep_only(
    files: list[Path], only: Collection[str] | None, folder: Path
) -> list[Path]:
    if only is None:
        return files
    wanted = {Path(name).as_posix() for name in only}
    kept = [path for path in files if path.relative_to(folder).as_posix() in wanted]
    if not kept:
        raise FrameError(
            f"none of the {len(files)} files in {folder} is among the {len(wanted)} "
            "names that frames.select keeps; check that frames.select.metadata "
            "describes these files, or drop the selection with --set "
            "frames.select=null to read every file",
            keys=(("frames", "select"),),
        )
    return kept


class ImageFolderSource:
    """Frames stored as image files in one folder, sorted by file name.

    Parameters
    ----------
    path : str or Path
        Folder of images.
    pattern : str, optional
        Glob pattern of the frame files.
    mode : {"greyscale", "palette", "colorbar"}, optional
        How pixels become values. ``greyscale``: one channel, linear
        calibration. ``palette``: RGB through the named ``palette``.
        ``colorbar``: RGB through the colour bar drawn in each frame.
    unit : {"level", "C", "K"}, optional
        Unit of the decoded values.
    scale_per_level : float, optional
        Greyscale calibration, value step of one stored level [unit per level].
        Needs unit C or K.
    offset : float, optional
        Greyscale calibration, value of stored level 0 [unit].
    palette : str, optional
        Palette name for mode ``palette`` (see ``palette_lut``).
    value_range : tuple of float, optional
        (low, high) values of the palette's first and last colour [unit].
        None means (0, N - 1) levels and needs unit ``"level"``.
    colorbar : dict, optional
        For mode ``colorbar``: ``x_px`` and ``y_px`` (first, last) columns and
        rows of the bar, inclusive [px], and ``top`` and ``bottom``, the values
        of the bar's ends [unit]. The bar itself is excluded from ``valid``.
    valid_mask, ignore_mask : str, Path or mapping, optional
        Region-of-interest mask and mask of pixels to protect (non-zero =
        True). A mapping from a file-name substring to a mask path selects a
        mask per frame, e.g. ``{"CAM1": "mask1.png", "CAM2": "mask2.png"}``.
    ignore_rects : sequence of (x0, y0, x1, y1), optional
        Half-open pixel boxes to protect, such as overlay text and logos.
    max_colour_distance : float, optional
        Pixels whose RGB distance to every palette colour exceeds this are
        invalid (palette and colorbar modes) [0..255 levels].
    only : collection of str, optional
        File names (relative to ``path``) to keep among those matching
        ``pattern``, e.g. the normal frames of a labelled data set. The
        attribute ``n_listed`` counts the matching files before this selection.
    cache_bytes : int, optional
        Memory for decoded frames kept for later reads of the same index
        [bytes]; see `FrameCache`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        pattern: str = "*.png",
        mode: str = "greyscale",
        unit: str = "level",
        scale_per_level: float | None = None,
        offset: float | None = None,
        palette: str | None = None,
        value_range: tuple[float, float] | None = None,
        colorbar: Mapping[str, Any] | None = None,
        valid_mask: MaskSpec = None,
        ignore_mask: MaskSpec = None,
        ignore_rects: Sequence[Rect] = (),
        max_colour_distance: float = 40.0,
        only: Collection[str] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if mode not in _MODES:
            raise FrameError(f"mode must be one of {_MODES}, got {mode!r}")

        self.path = Path(path)
        self.mode = mode
        self.unit = _check_unit(unit)
        self.scale_per_level = scale_per_level
        self.offset = offset
        self.max_colour_distance = float(max_colour_distance)
        listed = _list_files(self.path, pattern)
        self.n_listed = len(listed)
        self._files = _keep_only(listed, only, self.path)
        self._region = Region(valid_mask, ignore_mask, ignore_rects)
        self._palette = self._palette_encoding(palette, value_range)
        self._colorbar = self._check_colorbar(colorbar)
        self._colorbar_fitted = False
        self._warned_colour = False
        self._cache = FrameCache(cache_bytes)

    def _palette_encoding(
        self, palette: str | None, value_range: tuple[float, float] | None
    ) -> PaletteEncoding | None:
        if self.mode != "palette":
            return None
        if palette is None:
            raise FrameError(
                "frames.mode: palette needs a palette name, e.g. frames.palette: "
                "inferno",
                keys=(("frames", "palette"),),
            )

        lut = palette_lut(palette)
        low, high = _palette_range(self.unit, value_range, lut)
        return PaletteEncoding(lut, low=low, high=high, name=palette)

    def _check_colorbar(
        self, colorbar: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        if self.mode != "colorbar":
            return None
        missing = [
            key for key in _COLORBAR_KEYS if colorbar is None or key not in colorbar
        ]
        if missing:
            raise FrameError(
                f"mode 'colorbar' needs colorbar={{x_px, y_px, top, bottom}}; "
                f"missing {missing}"
            )

        bar = dict(colorbar)  # type: ignore[arg-type]
        x0, x1 = bar["x_px"]
        y0, y1 = bar["y_px"]
        self._region.ignore_rects.append((int(x0), int(y0), int(x1) + 1, int(y1) + 1))
        return bar

    @property
    def sources(self) -> list[str]:
        """File path of each frame."""
        return [str(path) for path in self._files]

    def __len__(self) -> int:
        return len(self._files)

    def read(self, index: int) -> Frame:
        """Read and decode frame ``index``; its arrays are read-only.

        A frame still in the cache is returned again, as the same object.
        """
        return _read_cached(self._cache, index, len(self), self._decode)

    def _decode(self, index: int) -> Frame:
        path = self._files[index]
        name = str(path)
        raw = read_image(path)

        if self.mode == "greyscale":
            raw = self._to_greyscale(raw, name)
            encoding: LinearEncoding | PaletteEncoding = _linear_encoding(
                raw.dtype, self.unit, self.scale_per_level, self.offset, name
            )
            values = encoding.decode(raw)
            decodable = np.ones(raw.shape, dtype=bool)
        else:
            raw = _require_rgb8(raw, name, self.mode)
            encoding = self._palette or self._colorbar_encoding(raw, name)
            values, distance = encoding.decode(raw, return_distance=True)
            # NOTE: overlays drawn in a palette's end colours pass this test,
            # such as white text where the bar ends in white. List them in
            # ignore_rects or ignore_mask.
            decodable = distance <= self.max_colour_distance

        region = self._region.mask(name, raw.shape[:2])
        return _build_frame(
            raw,
            values,
            decodable,
            encoding=encoding,
            unit=self.unit,
            region=region,
            source=name,
        )

    def _colorbar_encoding(self, raw: np.ndarray, name: str) -> PaletteEncoding:
        bar = self._colorbar
        assert bar is not None
        x_px, y_px = tuple(bar["x_px"]), tuple(bar["y_px"])
        self._check_colorbar_fits(raw.shape, x_px, y_px, name)
        lut = read_colorbar(raw, x_px=x_px, y_px=y_px)
        return PaletteEncoding(
            lut,
            low=float(bar["bottom"]),
            high=float(bar["top"]),
            colorbar_px=(x_px, y_px),
        )

    def _check_colorbar_fits(
        self,
        shape: tuple[int, ...],
        x_px: tuple[int, ...],
        y_px: tuple[int, ...],
        name: str,
    ) -> None:
        """Raise if the bar's last column or row lies outside frame ``name``.

        Raises
        ------
        ColorbarFitError
            If no frame read so far contained the bar.
        FrameError
            If earlier frames contained the bar but this one does not.
        """
        height, width = shape[:2]
        if x_px[1] < width and y_px[1] < height:
            self._colorbar_fitted = True
            return

        keys, fixes, paths = [], [], []
        if x_px[1] >= width:
            keys.append(f"'frames.colorbar.x_px' = {list(x_px)}")
            fixes.append(f"frames.colorbar.x_px to columns within 0..{width - 1}")
            paths.append(("frames", "colorbar", "x_px"))
        if y_px[1] >= height:
            keys.append(f"'frames.colorbar.y_px' = {list(y_px)}")
            fixes.append(f"frames.colorbar.y_px to rows within 0..{height - 1}")
            paths.append(("frames", "colorbar", "y_px"))
        subject = f"key {keys[0]} [px] lies"
        if len(keys) == 2:
            subject = f"keys {keys[0]} and {keys[1]} [px] lie"
        sizes = (
            f"{subject} outside frame {name}, which is {height} x {width} px "
            "(height x width)"
        )
        if self._colorbar_fitted:
            raise FrameError(
                f"{sizes}, while the frames read before it contain the bar; "
                "remove this frame or give it their size"
            )
        raise ColorbarFitError(f"{sizes}; set {' and '.join(fixes)}", keys=tuple(paths))

    def _to_greyscale(self, raw: np.ndarray, name: str) -> np.ndarray:
        """Reduce an RGB image to one channel for greyscale decoding."""
        if raw.ndim == 2:
            return raw
        if np.array_equal(raw[..., 0], raw[..., 1]) and np.array_equal(
            raw[..., 0], raw[..., 2]
        ):
            return np.ascontiguousarray(raw[..., 0])

        if not self._warned_colour:
            logger.warning(
                "%s has colour pixels; converting to luma for greyscale mode. For "
                "pseudo-colour frames set frames.mode: palette (with "
                "frames.palette) or frames.mode: colorbar in the recipe",
                name,
            )
            self._warned_colour = True
        return cv2.cvtColor(raw, cv2.COLOR_RGB2GRAY)


def _require_rgb8(raw: np.ndarray, name: str, mode: str) -> np.ndarray:
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise FrameError(
            f"mode {mode!r} needs 8-bit RGB images, but {name} is {raw.dtype} with "
            f"shape {raw.shape}; set frames.mode: greyscale",
            keys=(("frames", "mode"),),
        )
    return raw


class _ArrayFrames:
    """Shared decoding of float or integer arrays into frames."""

    def __init__(
        self,
        *,
        unit: str,
        scale_per_level: float | None,
        offset: float | None,
        valid_mask: MaskSpec,
        ignore_mask: MaskSpec,
        ignore_rects: Sequence[Rect],
        cache_bytes: int,
    ) -> None:
        self.unit = _check_unit(unit)
        self.scale_per_level = scale_per_level
        self.offset = offset
        self._region = Region(valid_mask, ignore_mask, ignore_rects)
        self._cache = FrameCache(cache_bytes)

    def _frame_from_array(self, raw: np.ndarray, name: str) -> Frame:
        if raw.ndim != 2:
            raise FrameError(
                f"{name} has shape {raw.shape}; expected a 2D frame (H, W)"
            )

        encoding = _linear_encoding(
            raw.dtype, self.unit, self.scale_per_level, self.offset, name
        )
        values = encoding.decode(raw)
        region = self._region.mask(name, raw.shape)
        return _build_frame(
            raw,
            values,
            np.ones(raw.shape, dtype=bool),
            encoding=encoding,
            unit=self.unit,
            region=region,
            source=name,
        )


class ArraySource(_ArrayFrames):
    """Frames from ``.npy`` files: one 2D frame, an (N, H, W) stack or a folder.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file holding (H, W) or (N, H, W), or a folder of ``.npy``
        files of (H, W) each, sorted by name.
    unit : {"C", "K", "level"}, optional
        Unit of the values. Float arrays are read as values in ``unit``;
        integer arrays need ``scale_per_level`` and ``offset`` unless the unit
        is ``"level"``.
    pattern : str, optional
        Glob pattern of the files when ``path`` is a folder.
    scale_per_level, offset : float, optional
        Linear calibration ``value = raw * scale_per_level + offset`` [unit].
    valid_mask, ignore_mask, ignore_rects, cache_bytes
        As for ``ImageFolderSource``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        unit: str = "C",
        pattern: str = "*.npy",
        scale_per_level: float | None = None,
        offset: float | None = None,
        valid_mask: MaskSpec = None,
        ignore_mask: MaskSpec = None,
        ignore_rects: Sequence[Rect] = (),
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(
            unit=unit,
            scale_per_level=scale_per_level,
            offset=offset,
            valid_mask=valid_mask,
            ignore_mask=ignore_mask,
            ignore_rects=ignore_rects,
            cache_bytes=cache_bytes,
        )
        self.path = Path(path)
        if self.path.is_dir():
            self._files = _list_files(self.path, pattern)
            self._stack_length: int | None = None
        else:
            self._files = [self.path]
            shape = _load_npy(self.path).shape
            _reject_rgb(shape, self.path)
            self._stack_length = _stack_length(shape, self.path)

    @property
    def sources(self) -> list[str]:
        """File path of each frame, with ``[index]`` for frames of a stack."""
        if self._stack_length is None:
            return [str(path) for path in self._files]
        return [f"{self.path}[{i}]" for i in range(self._stack_length)]

    def __len__(self) -> int:
        return len(self._files) if self._stack_length is None else self._stack_length

    def frame_shape(self, index: int) -> tuple[int, int] | None:
        """Return frame ``index``'s (height, width) [px] from its ``.npy`` header.

        No pixels are read. Returns None where the file cannot be read or its
        array is not 2D, so that `read` reports the problem.
        """
        index = _check_index(index, len(self))
        path = self.path if self._stack_length is not None else self._files[index]
        try:
            shape = _load_npy(path).shape
        except FrameError:
            return None
        if self._stack_length is None and len(shape) != 2:
            return None
        return (int(shape[-2]), int(shape[-1]))

    def read(self, index: int) -> Frame:
        """Read and decode frame ``index``; its arrays are read-only.

        A frame still in the cache is returned again, as the same object.
        """
        return _read_cached(self._cache, index, len(self), self._decode)

    def _decode(self, index: int) -> Frame:
        if self._stack_length is None:
            path = self._files[index]
            # A copy in memory, so that a cached frame does not hold the file open.
            raw = np.array(_load_npy(path))
            _reject_rgb(raw.shape, path)
            return self._frame_from_array(raw, str(path))

        array = _load_npy(self.path)
        raw = np.array(array if array.ndim == 2 else array[index])
        return self._frame_from_array(raw, self.sources[index])


def _load_npy(path: Path) -> np.ndarray:
    """Memory-map a ``.npy`` file, raising FrameError for unreadable files."""
    if not path.is_file():
        raise FrameError(f"array file not found: {path}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise FrameError(
            f"could not decode {path} as a .npy array ({error}); check the file or "
            "remove it"
        ) from error


# Smallest height and width [px] of an RGB image that `_reject_rgb` detects.
_MIN_RGB_SIDE_PX = 8


def _reject_rgb(shape: tuple[int, ...], path: Path) -> None:
    """Raise FrameError where a ``.npy`` array looks like (H, W, 3) or (H, W, 4).

    The rule: three axes, the last of length 3 or 4 and the other two of at
    least ``_MIN_RGB_SIDE_PX``. A real stack such as (3, 480, 640) has an
    image-sized last axis, so it passes, and so do tiny test stacks such as
    (2, 4, 3). It also rejects a stack of 8 or more frames, each at least 8
    pixels high and 3 or 4 pixels wide, which it takes for an RGB image.
    """
    if len(shape) != 3 or shape[-1] not in (3, 4):
        return
    if min(shape[:2]) < _MIN_RGB_SIDE_PX:
        return
    raise FrameError(
        f"key 'frames.path': {path} contains an array of shape {shape}, which "
        "looks like an RGB image (H, W, channels); arrays must be (H, W) or "
        "(N, H, W) of temperatures or levels. For RGB images, save each frame "
        "as a PNG and set frames.kind: images with frames.mode: palette or "
        "frames.mode: colorbar",
        keys=(("frames", "path"),),
    )


def _stack_length(shape: tuple[int, ...], name: str | Path) -> int:
    if len(shape) == 2:
        return 1
    if len(shape) == 3 and shape[0] > 0:
        return int(shape[0])
    raise FrameError(f"{name} has shape {shape}; expected (H, W) or (N, H, W), N > 0")


class HDF5Source(_ArrayFrames):
    """Frames from a 2D (H, W) or 3D (N, H, W) dataset of an HDF5 file.

    The file is opened read-only for each ``read``, so the source can be
    pickled and shared with worker processes.

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    dataset : str
        Path of the dataset inside the file, e.g. ``"/frames"``.
    unit, scale_per_level, offset, valid_mask, ignore_mask, ignore_rects, cache_bytes
        As for ``ArraySource``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        dataset: str,
        unit: str = "C",
        scale_per_level: float | None = None,
        offset: float | None = None,
        valid_mask: MaskSpec = None,
        ignore_mask: MaskSpec = None,
        ignore_rects: Sequence[Rect] = (),
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(
            unit=unit,
            scale_per_level=scale_per_level,
            offset=offset,
            valid_mask=valid_mask,
            ignore_mask=ignore_mask,
            ignore_rects=ignore_rects,
            cache_bytes=cache_bytes,
        )
        self.path = Path(path)
        self.dataset = dataset
        with self._open() as data:
            self._ndim = len(data.shape)
            self._length = _stack_length(data.shape, f"{self.path}:{dataset}")

    def _open(self) -> Any:
        """Open the dataset; the caller closes its file with ``with``."""
        if not self.path.is_file():
            raise FrameError(f"HDF5 file not found: {self.path}")
        try:
            handle = h5py.File(self.path, "r")
        except OSError as error:
            raise FrameError(
                f"could not open {self.path} as HDF5 ({error}); check the file"
            ) from error

        if not isinstance(handle.get(self.dataset), h5py.Dataset):
            contents = describe_datasets(handle)
            handle.close()
            raise FrameError(
                f"dataset {self.dataset!r} not found in {self.path}, which "
                f"contains {contents}; pass one of them as dataset (the recipe "
                "key frames.dataset)",
                keys=(("frames", "dataset"),),
            )
        return _DatasetContext(handle, self.dataset)

    @property
    def sources(self) -> list[str]:
        """``file:dataset[index]`` of each frame."""
        if self._ndim == 2:
            return [f"{self.path}:{self.dataset}"]
        return [f"{self.path}:{self.dataset}[{i}]" for i in range(self._length)]

    def __len__(self) -> int:
        return self._length

    def read(self, index: int) -> Frame:
        """Read and decode frame ``index``; its arrays are read-only.

        A frame still in the cache is returned again, as the same object.
        """
        return _read_cached(self._cache, index, len(self), self._decode)

    def _decode(self, index: int) -> Frame:
        with self._open() as data:
            raw = data[()] if self._ndim == 2 else data[index]
        return self._frame_from_array(np.asarray(raw), self.sources[index])


def describe_datasets(file: h5py.File, *, limit: int = 10) -> str:
    """List the datasets of an open HDF5 file with their shapes, for messages.

    Returns text such as ``datasets 'frames' (20, 128, 192), 'labels' (20,)``,
    naming at most ``limit`` datasets and counting the rest.
    """
    found: list[str] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            found.append(f"'{name}' {item.shape}")

    file.visititems(visit)
    if not found:
        return "no datasets"
    listed = ", ".join(found[:limit])
    if len(found) > limit:
        listed += f" and {len(found) - limit} more"
    return f"datasets {listed}"


class _DatasetContext:
    """Context manager that yields an h5py dataset and closes its file."""

    def __init__(self, handle: h5py.File, dataset: str) -> None:
        self._handle = handle
        self._dataset = dataset

    def __enter__(self) -> h5py.Dataset:
        return self._handle[self._dataset]

    def __exit__(self, *exc: object) -> None:
        self._handle.close()
