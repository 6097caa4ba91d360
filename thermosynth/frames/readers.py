"""Read image files and region masks as numpy arrays."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from thermosynth.errors import FrameError

ARRAY_FILE_KEYS = {
    ".npy": "frames.kind: arrays",
    ".h5": "frames.kind: hdf5 and frames.dataset",
    ".hdf5": "frames.kind: hdf5 and frames.dataset",
}
"""Recipe keys that read array files, which OpenCV cannot decode, by suffix."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
"""The PNG end chunk's type and checksum; a file cut short lacks them."""

_log_lock = threading.Lock()
_silenced_depth = 0
_saved_log_level = 0


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file with its original dtype and channels.

    Parameters
    ----------
    path : str or Path
        PNG, TIFF, JPEG or any other format that OpenCV decodes. 8- and 16-bit
        greyscale and float TIFF are kept as stored.

    Returns
    -------
    ndarray
        (H, W) for greyscale files, (H, W, 3) RGB for colour files. An alpha
        channel is dropped.

    Raises
    ------
    FrameError
        If the file is missing, empty, truncated or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"image file not found: {path}")

    image = decode_file(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        keys = ARRAY_FILE_KEYS.get(path.suffix.lower())
        if keys is not None:
            raise FrameError(
                f"could not decode {path}: {path.suffix} files contain arrays, not "
                f"images, so read them with {keys} in the recipe"
            )
        raise FrameError(
            f"could not decode {path}: truncated, corrupt or not an image format "
            "that OpenCV reads; check the file or remove it"
        )

    return _to_rgb(image, path)


def decode_file(path: str | Path, flags: int) -> np.ndarray | None:
    """Decode an image file with OpenCV; None if missing, empty, cut short or corrupt.

    A PNG without its end chunk is rejected before decoding, because libpng would
    write its own error line to stderr for it.
    """
    if not Path(path).is_file():
        return None

    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or _png_cut_short(data.tobytes()):
        return None

    with opencv_log_silenced():
        return cv2.imdecode(data, flags)


def _png_cut_short(data: bytes) -> bool:
    return data.startswith(_PNG_SIGNATURE) and data.rfind(_PNG_END) < 0


@contextlib.contextmanager
def opencv_log_silenced() -> Iterator[None]:
    """Silence OpenCV's log, restoring its level when the last thread leaves.

    A corrupt file makes OpenCV's decoders write ``[ERROR:...]`` lines to
    stderr before `read_image` raises its own message. The log level is
    global to the process, so a count of the threads inside keeps one thread
    from restoring it while another still decodes. libpng writes straight to
    the stderr file descriptor, out of this level's reach, so `decode_file`
    rejects a PNG cut short before libpng reads it.
    """
    global _silenced_depth, _saved_log_level
    with _log_lock:
        if _silenced_depth == 0:
            _saved_log_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _silenced_depth += 1
    try:
        yield
    finally:
        with _log_lock:
            _silenced_depth -= 1
            if _silenced_depth == 0:
                cv2.utils.logging.setLogLevel(_saved_log_level)


def _to_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    """Convert OpenCV's BGR or BGRA channel order to RGB."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise FrameError(
        f"{path} has shape {image.shape}; expected a greyscale, RGB or RGBA image"
    )


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask image as a boolean array.

    Parameters
    ----------
    path : str or Path
        Image file. A pixel is True where any colour channel is non-zero; the
        alpha channel is ignored.
    shape : tuple of int, optional
        Expected (H, W) [px] of the frames that the mask applies to.

    Returns
    -------
    ndarray
        Boolean (H, W).

    Raises
    ------
    FrameError
        If the file cannot be read or its size differs from ``shape``.
    """
    return mask_from_image(read_image(path), path, shape)


def mask_from_image(
    image: np.ndarray, path: str | Path, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Turn an image read by `read_image` into a mask, as `read_mask` does.

    ``path`` names the image in the error that ``shape`` may raise.
    """
    mask = image != 0
    if mask.ndim == 3:
        mask = mask.any(axis=2)

    if shape is not None and mask.shape != tuple(shape):
        raise FrameError(
            f"mask {path} is {mask.shape[0]} x {mask.shape[1]} px (height x width) "
            f"but the frame is {shape[0]} x {shape[1]} px; use a mask of the "
            "frame's size"
        )
    return mask


def non_binary_values(image: np.ndarray) -> list[int]:
    """Return the values of a mask image other than 0, 1 and its dtype's maximum.

    0 with 1 and 0 with 255 (or 65535) are the usual binary masks. Other
    values, such as anti-aliased edges or a stray grey pixel, show a mask
    that is not binary, whose every non-zero pixel `read_mask` still counts
    as True. Float and boolean images return an empty list.
    """
    if image.dtype.kind not in "ui":
        return []
    binary = {0, 1, int(np.iinfo(image.dtype).max)}
    return [int(v) for v in np.unique(image) if int(v) not in binary]


def list_mask_values(values: list[int], *, limit: int = 8) -> str:
    """Join the first ``limit`` values for a message, such as "37, 128"."""
    listed = ", ".join(str(v) for v in values[:limit])
    return listed + (", ..." if len(values) > limit else "")
