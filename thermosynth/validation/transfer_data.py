"""Load and split labelled frames into a :class:`TransferData`.

Normal frames are split into training and test normals. Real anomalies are
grouped by class, and each class is halved into a reserve (for the supervised
ceiling and the contamination run) and a test half. Sources are the ones that
:func:`thermosynth.validation.io.load_frame_set` reads: an anomalib / MVTec
folder tree (normal = ``train/good``, with ``test/good`` as the test normals
where present; real = ``test/<kind>``, grouped by kind), a thermosynth HDF5
file, or a plain image folder filtered through a metadata JSON file (grouped
by the filter's values).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from thermosynth.errors import FrameError
from thermosynth.frames.readers import decode_file
from thermosynth.validation.duplicates import training_repeat_note
from thermosynth.validation.io import FrameSet, load_frame_set

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TransferData:
    """Frames of a transfer experiment, all uint8 (N, H, W).

    Attributes
    ----------
    train_normal : ndarray
        Normal training frames; never contains a labelled real anomaly.
    test_images : ndarray
        Test frames: unseen normal frames and real anomalies.
    test_labels : ndarray
        Boolean (N,), True for real anomalies.
    test_groups : ndarray
        Class name of each test frame (str, (N,)); AUROC is reported over all
        anomalies and per anomalous class, each against all test normals.
    reserve_anomalies : ndarray or None
        Real anomalies disjoint from the test set, for the supervised ceiling
        and the contamination run.
    test_masks : ndarray or None
        Boolean (N, H, W) ground-truth masks of the test frames (all False
        for normal frames), or None where the real anomalies have no masks.
        With masks, pixel AUROC and AUPRO are scored on the real test set.
    kelvin_per_level : float or None
        Temperature step of one 8-bit level [K level-1], where the training
        normals record it (a thermosynth folder tree with ``scale.json``);
        None otherwise.
    notes : tuple of str
        Warnings about the frames for ``report.md``, such as test frames
        that repeat training frames.
    reserve_groups : ndarray or None
        Class name of each reserve anomaly (str, (M,)), so that the
        contamination run reports per class which planted anomalies trimming
        dropped; None where unknown.
    """

    train_normal: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    test_groups: np.ndarray
    reserve_anomalies: np.ndarray | None = None
    test_masks: np.ndarray | None = None
    kelvin_per_level: float | None = None
    notes: tuple[str, ...] = ()
    reserve_groups: np.ndarray | None = None


# Largest factor by which resize_transfer_data lets a side grow.
MAX_ENLARGE = 4


def load_classes(
    data_dir: str | Path,
    *,
    metadata_name: str = "module_metadata.json",
    class_key: str = "anomaly_class",
    path_key: str = "image_filepath",
) -> dict[str, np.ndarray]:
    """Read every image listed in a metadata JSON file, grouped by class.

    Parameters
    ----------
    data_dir : str or Path
        Folder that contains the metadata file; image paths are relative to it.
    metadata_name : str
        Name of the metadata file, a mapping of numeric keys to records (the
        Raptor Maps ``module_metadata.json`` layout).
    class_key, path_key : str
        Record fields that hold the class name and the image path.

    Returns
    -------
    dict of str to ndarray
        Class name to greyscale frames, uint8 (N, H, W), in key order.
    """
    data_dir = Path(data_dir)
    meta = json.loads((data_dir / metadata_name).read_text())
    groups: dict[str, list[np.ndarray]] = {}
    for key in sorted(meta, key=int):
        entry = meta[key]
        image = decode_file(data_dir / entry[path_key], cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FrameError(
                f"failed to read {data_dir / entry[path_key]}, listed in "
                f"{data_dir / metadata_name}; check that the file exists"
            )
        groups.setdefault(entry[class_key], []).append(image)
    return {name: np.stack(images) for name, images in groups.items()}


def split_transfer_data(
    normal: np.ndarray,
    anomalies: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    n_train: int,
    n_test: int,
    normal_group: str = "normal",
    test_normal: np.ndarray | None = None,
    anomaly_masks: Mapping[str, np.ndarray] | None = None,
) -> TransferData:
    """Split normals into train and test and each anomaly class into two halves.

    Parameters
    ----------
    normal : ndarray
        Normal frames, uint8 (N, H, W).
    anomalies : mapping of str to ndarray
        Class name to real anomalous frames, uint8 (M, H, W). The first half
        of each shuffled class is the reserve, the rest is tested.
    rng : numpy.random.Generator
        Source of the shuffles.
    n_train, n_test : int
        Training and test normals to keep.
    normal_group : str
        Group name of the test normals.
    test_normal : ndarray, optional
        Separate test normals (an MVTec ``test/good``); without them the test
        normals are taken from ``normal`` after the training ones.
    anomaly_masks : mapping of str to ndarray, optional
        Class name to boolean (M, H, W) ground-truth masks of ``anomalies``,
        for every class; shuffled with their frames. They become
        ``TransferData.test_masks`` (test normals get empty masks).

    Returns
    -------
    TransferData

    Raises
    ------
    FrameError
        If there are fewer normals than ``n_train + n_test`` (or ``n_train``
        and ``n_test`` with separate test normals), or no anomalies.
    """
    normal = normal[rng.permutation(len(normal))]
    if test_normal is None:
        _check_count(len(normal), n_train + n_test, "normal frames")
        train, test = normal[:n_train], normal[n_train : n_train + n_test]
    else:
        _check_count(len(normal), n_train, "training normal frames")
        _check_count(len(test_normal), n_test, "test normal frames")
        train = normal[:n_train]
        test = test_normal[rng.permutation(len(test_normal))][:n_test]
    if not anomalies:
        raise FrameError("no real anomaly classes were given; give at least one")

    test_parts, groups, reserve = [test], [np.full(len(test), normal_group)], []
    reserve_groups = []
    mask_parts = [np.zeros(test.shape, dtype=bool)]
    for name, images in anomalies.items():
        order = rng.permutation(len(images))
        images = images[order]
        half = len(images) // 2
        reserve.append(images[:half])
        reserve_groups.append(np.full(half, name))
        test_parts.append(images[half:])
        groups.append(np.full(len(images) - half, name))
        if anomaly_masks is not None:
            mask_parts.append(_class_masks(anomaly_masks, name, images)[order][half:])
    test_groups = np.concatenate(groups)
    return TransferData(
        train_normal=train,
        test_images=np.concatenate(test_parts),
        test_labels=test_groups != normal_group,
        test_groups=test_groups,
        reserve_anomalies=np.concatenate(reserve),
        test_masks=None if anomaly_masks is None else np.concatenate(mask_parts),
        reserve_groups=np.concatenate(reserve_groups),
    )


def _class_masks(
    masks: Mapping[str, np.ndarray], name: str, images: np.ndarray
) -> np.ndarray:
    if name not in masks or np.shape(masks[name]) != images.shape:
        shape = np.shape(masks[name]) if name in masks else "missing"
        raise FrameError(
            f"masks of anomaly class {name!r} are {shape} but its frames are "
            f"{images.shape}; give one mask per frame for every class"
        )
    return np.asarray(masks[name], dtype=bool)


def _check_count(available: int, needed: int, what: str) -> None:
    if needed < 1 or available < needed:
        raise FrameError(
            f"{needed} {what} are needed but {available} are available; lower "
            "the number requested (--max-train, --max-test) or add frames"
        )


def load_transfer_data(
    normal_path: str | Path,
    real_path: str | Path,
    rng: np.random.Generator,
    *,
    metadata: str | Path | None = None,
    normal_where: Mapping[str, Sequence[str]] | None = None,
    real_where: Mapping[str, Sequence[str]] | None = None,
    normal_pattern: str | None = None,
    real_pattern: str | None = None,
    max_train: int = 2500,
    max_test: int = 1500,
    size_px: tuple[int, int] | None = None,
) -> TransferData:
    """Load normal and real anomalous frames and split them for a transfer run.

    Without separate test normals (an MVTec ``test/good``), 40 % of the
    normal frames, at most ``max_test``, are held out for testing and up to
    ``max_train`` of the rest train the detectors.

    Parameters
    ----------
    normal_path, real_path : str or Path
        Normal and real anomalous frames, in any source that
        :func:`~thermosynth.validation.io.load_frame_set` reads.
    rng : numpy.random.Generator
        Source of every shuffle.
    metadata : str or Path, optional
        Metadata JSON for plain folders, used with the ``where`` filters.
    normal_where, real_where : mapping of str to sequence of str, optional
        Metadata filters. Each value of a one-key ``real_where`` becomes one
        anomaly class, e.g. ``{"anomaly_class": ["Cell", "Hot-Spot"]}``.
    normal_pattern, real_pattern : str, optional
        Globs relative to a plain folder, such as ``"*CAM2*"``, that select
        the files to read (``--normal-pattern``, ``--real-pattern``).
    max_train, max_test : int
        Most training and test normals kept.
    size_px : (int, int), optional
        (height, width) [px] to resize every frame and mask to, with
        :func:`resize_transfer_data`. None keeps the frames' own size.

    Returns
    -------
    TransferData
        uint8 frames; test normals are in group "normal".

    Raises
    ------
    FrameError
        If a source is missing or empty, its frames are not 8-bit levels, or
        the normal and real frames differ in size.
    """
    normals = load_frame_set(
        normal_path,
        label="normal",
        metadata=metadata if normal_where else None,
        where=normal_where,
        where_option="--normal-where",
        pattern=normal_pattern,
        pattern_option="--normal-pattern",
    )
    train_set, test_set = _mvtec_split(normals)
    anomalies = _load_real_classes(real_path, metadata, real_where, real_pattern)
    _check_shapes(normals, anomalies)

    train = to_uint8(train_set)
    test = None if test_set is None else to_uint8(test_set)
    if test is None:
        n_test = min(max_test, int(0.4 * len(train)))
        n_train = min(max_train, len(train) - n_test)
    else:
        n_train, n_test = min(max_train, len(train)), min(max_test, len(test))
    classes = {name: to_uint8(frames) for name, frames in anomalies.items()}
    logger.info("transfer data: %d training normals, %d test normals", n_train, n_test)
    data = split_transfer_data(
        train,
        classes,
        rng,
        n_train=n_train,
        n_test=n_test,
        test_normal=test,
        anomaly_masks=_real_masks(anomalies),
    )
    named = [(train, train_set.names)]
    if test is not None and test_set is not None:
        named.append((test, test_set.names))
    named += [(classes[name], frames.names) for name, frames in anomalies.items()]
    note = _repeat_note(data, named)
    data = dataclasses.replace(
        data,
        kelvin_per_level=kelvin_per_level(train_set),
        notes=(note,) if note else (),
    )
    return resize_to(data, size_px)


def _repeat_note(
    data: TransferData, named: Sequence[tuple[np.ndarray, Sequence[str]]]
) -> str:
    """Return the warning about test frames that repeat frames trained on, or ""."""
    training = [data.train_normal]
    if data.reserve_anomalies is not None:
        training.append(data.reserve_anomalies)
    return training_repeat_note(data.test_images, np.concatenate(training), named)


def resize_to(data: TransferData, size_px: tuple[int, int] | None) -> TransferData:
    """Resize ``data`` to ``size_px`` (height, width) [px]; None keeps the size.

    Logs the resize, and warns when it turns landscape frames portrait or
    the reverse, which usually means that height and width were swapped.

    Raises
    ------
    FrameError
        If ``size_px`` is not two sizes, or :func:`resize_transfer_data`
        rejects it.
    """
    shape = data.train_normal.shape[1:]
    if size_px is None or tuple(size_px) == shape:
        return data
    if len(size_px) != 2:
        raise FrameError(
            f"size_px {size_px!r} is invalid; give (height, width) in pixels"
        )
    warn_if_transposed(shape, size_px)
    logger.info(
        "resizing frames from %d x %d px to %d x %d px (height x width)",
        *shape,
        *size_px,
    )
    return resize_transfer_data(data, *size_px)


def warn_if_transposed(shape: tuple[int, ...], size_px: Sequence[int]) -> None:
    """Warn when resizing frames of ``shape`` to ``size_px`` swaps their orientation.

    Both are (height, width) [px]. Square frames or targets never warn.
    """
    height, width = shape
    new_height, new_width = size_px
    if (height - width) * (new_height - new_width) >= 0:
        return
    logger.warning(
        "resizing %d x %d px frames to %d x %d px turns them from %s to %s, "
        "which stretches one axis and squeezes the other; sizes are height x "
        "width, so to keep the orientation give %dx%d",
        height,
        width,
        new_height,
        new_width,
        "landscape" if width > height else "portrait",
        "landscape" if new_width > new_height else "portrait",
        new_width,
        new_height,
    )


def resize_transfer_data(
    data: TransferData, height_px: int, width_px: int
) -> TransferData:
    """Return ``data`` with every frame and mask resized to height x width [px].

    The detectors' cost per training step grows with the pixel count, so
    large frames train far faster shrunk. Frames are averaged over each new
    pixel's area when shrinking (``cv2.INTER_AREA``) and interpolated
    linearly when enlarging, then rounded to the nearest 8-bit level (halves
    to even), so ``kelvin_per_level`` still holds. When shrinking, a resized
    mask pixel is anomalous where anomalous pixels covered at least half of
    it. When enlarging, it is anomalous where the interpolated mask is at
    least 0.5.
    The image labels stay as they are, even where a small anomaly's mask
    vanishes. Each side may grow at most ``MAX_ENLARGE`` times.

    Raises
    ------
    FrameError
        If a side is not positive or grows more than ``MAX_ENLARGE`` times.
    """
    _check_size(data.train_normal.shape[1:], height_px, width_px)

    def frames(images: np.ndarray) -> np.ndarray:
        return _resized(images, height_px, width_px, np.uint8)

    reserve, masks = data.reserve_anomalies, data.test_masks
    if masks is not None:
        masks = resize_masks(masks, height_px, width_px)
    return dataclasses.replace(
        data,
        train_normal=frames(data.train_normal),
        test_images=frames(data.test_images),
        reserve_anomalies=None if reserve is None else frames(reserve),
        test_masks=masks,
    )


def resize_masks(masks: np.ndarray, height_px: int, width_px: int) -> np.ndarray:
    """Resize boolean (N, H, W) ``masks`` as :func:`resize_transfer_data` does."""
    return _resized(masks, height_px, width_px, np.float32) >= 0.5


def _check_size(shape: tuple[int, ...], height_px: int, width_px: int) -> None:
    height, width = shape
    if height_px < 1 or width_px < 1:
        raise FrameError(
            f"cannot resize frames to {height_px} x {width_px} px; give a "
            "positive height and width"
        )
    if height_px > MAX_ENLARGE * height or width_px > MAX_ENLARGE * width:
        raise FrameError(
            f"cannot resize {height} x {width} px frames to {height_px} x "
            f"{width_px} px: a side would grow more than {MAX_ENLARGE} times; give "
            "a smaller size (resizing is meant to shrink large frames)"
        )


def _resized(
    images: np.ndarray, height_px: int, width_px: int, dtype: type
) -> np.ndarray:
    """Resize each of (N, H, W) ``images``, computed in float32, cast to ``dtype``."""
    shrinking = height_px * width_px < images.shape[1] * images.shape[2]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((len(images), height_px, width_px), dtype=np.float32)
    for i, image in enumerate(images):
        out[i] = cv2.resize(
            image.astype(np.float32), (width_px, height_px), interpolation=method
        )
    if dtype is np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def kelvin_per_level(frames: FrameSet) -> float | None:
    """Return the temperature step of one 8-bit level of ``frames`` [K level-1].

    Only 8-bit frames decoded to temperature have one: a thermosynth
    ``folder/`` tree whose ``scale.json`` and ``dataset.h5`` give the map.
    Other frames return None.
    """
    encoding = frames.encoding
    if encoding is None or frames.unit not in ("C", "K"):
        return None
    if encoding.dtype != np.uint8:
        return None
    return encoding.scale_per_level


def _real_masks(anomalies: Mapping[str, FrameSet]) -> dict[str, np.ndarray] | None:
    """Return every class's ground-truth masks, or None unless all have some.

    An MVTec tree gives a mask per anomalous image; a plain folder gives none.
    """
    if any(frames.masks is None for frames in anomalies.values()):
        return None
    return {name: np.asarray(f.masks, dtype=bool) for name, f in anomalies.items()}


def _mvtec_split(normals: FrameSet) -> tuple[FrameSet, FrameSet | None]:
    """Separate ``test/good`` from ``train/good`` in an MVTec tree.

    A tree without ``train/good`` splits its ``test/good`` instead.

    Raises
    ------
    FrameError
        If ``train/good`` exists but contains no images, so that its test
        normals are never trained on silently.
    """
    if normals.kind != "mvtec":
        return normals, None
    in_test = np.array([Path(n).parent.parent.name == "test" for n in normals.names])
    train_good = Path(normals.origin) / "train" / "good"
    if in_test.all() and train_good.is_dir():
        raise FrameError(
            f"{train_good} contains no images; put the normal training frames "
            "there (test/good contains the test normals)"
        )
    if in_test.all() or not in_test.any():
        return normals, None
    return (
        normals.subset(np.flatnonzero(~in_test)),
        normals.subset(np.flatnonzero(in_test)),
    )


def _load_real_classes(
    path: str | Path,
    metadata: str | Path | None,
    where: Mapping[str, Sequence[str]] | None,
    pattern: str | None = None,
) -> dict[str, FrameSet]:
    """Load real anomalies as one set per class."""
    if where and len(where) == 1:
        ((key, values),) = where.items()
        return {
            value: load_frame_set(
                path,
                metadata=metadata,
                where={key: [value]},
                where_option="--real-where",
                pattern=pattern,
                pattern_option="--real-pattern",
            )
            for value in dict.fromkeys(values)
        }

    frames = load_frame_set(
        path,
        label="anomalous",
        metadata=metadata if where else None,
        where=where,
        where_option="--real-where",
        pattern=pattern,
        pattern_option="--real-pattern",
    )
    if frames.kind != "mvtec":
        return {"anomalous": frames}
    kinds = np.array([Path(name).parent.name for name in frames.names])
    return {
        str(kind): frames.subset(np.flatnonzero(kinds == kind))
        for kind in dict.fromkeys(kinds.tolist())
    }


def _check_shapes(normals: FrameSet, anomalies: Mapping[str, FrameSet]) -> None:
    for name, frames in anomalies.items():
        if frames.shape != normals.shape:
            raise FrameError(
                f"real anomalies of class {name!r} in {frames.origin} are "
                f"{frames.shape[0]} x {frames.shape[1]} px (height x width) but "
                f"the normal frames in {normals.origin} are {normals.shape[0]} x "
                f"{normals.shape[1]} px; give frames of one size"
            )


def to_uint8(frames: FrameSet) -> np.ndarray:
    """Return a set's frames as 8-bit levels, uint8 (N, H, W), the detectors' input.

    Frames read from stored integer levels (``frames.encoding``) give those
    levels back, even where they were decoded to C or K. Greyscale images
    saved as RGB (R = G = B) give their grey level exactly; colour RGB
    images give their luminance 0.299 R + 0.587 G + 0.114 B rounded to the
    nearest level. Float frames must hold whole values.

    Raises
    ------
    FrameError
        If a level is outside 0..255 (e.g. 16-bit frames), or float frames
        hold values that are not whole.
    """
    if frames.encoding is None:
        levels = frames.values
        if not np.all(levels == np.rint(levels)):
            raise FrameError(
                f"frames in {frames.origin} hold float values "
                f"{levels.min():.6g}..{levels.max():.6g} (unit {frames.unit}) that "
                "are not whole 8-bit levels; the transfer detectors take 8-bit "
                "greyscale frames, so convert them to uint8 images first"
            )
    else:
        encoding = frames.encoding
        levels = np.rint((frames.values - encoding.offset) / encoding.scale_per_level)

    if levels.size and (levels.min() < 0 or levels.max() > 255):
        raise FrameError(
            f"frames in {frames.origin} hold levels {levels.min():.6g}.."
            f"{levels.max():.6g}, outside the 8-bit range 0..255; the transfer "
            "detectors take 8-bit greyscale frames, so convert them to uint8 "
            "images first"
        )
    return levels.astype(np.uint8)
