"""Exceptions for input that a user can correct.

The CLI prints these as one line and exits with code 2. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import re

# Messages name an option together with the keyword argument that sets it in
# Python, such as "--resume (resume=True in Python)". The command line prints
# them without the parenthesis, through `command_line_message`.
_PYTHON_HINT = re.compile(r" \(\w+=[^()]* in Python\)")


class ThermosynthError(Exception):
    """Base class for errors caused by the user's input, not by a bug.

    Attributes
    ----------
    keys : tuple of tuple of str or int
        Paths of the recipe keys and list indices whose values caused the
        error, such as ``(("split", "train_normal"),)`` or
        ``(("scenarios", 0, "where"),)``. It is empty where the error is
        about no key or does not know its key. The CLI names the --set items
        or options such as -o that wrote these keys.
    """

    def __init__(self, *args: object, keys: tuple[tuple[str | int, ...], ...] = ()):
        super().__init__(*args)
        self.keys = keys


class RecipeError(ThermosynthError, ValueError):
    """A recipe key holds an invalid, missing or unknown value."""


class FrameError(ThermosynthError, ValueError):
    """A normal frame cannot be read or decoded."""


class MaskSizeError(FrameError):
    """A valid or ignore mask has the size of no frame read so far.

    Then the recipe's mask is wrong rather than one frame, so the fix is a
    mask of the frames' size, not skipping the frame.
    """


class ColorbarFitError(FrameError):
    """The recipe's colour bar lies outside every frame read so far.

    Then the recipe's frames.colorbar is wrong rather than one frame, so the
    fix is the bar's position, not skipping the frame.
    """


class CalibrationError(FrameError):
    """The recipe's calibration cannot turn the frames' pixels into values.

    Examples are integer levels in C or K without ``scale_per_level``, a
    calibration on frames of unit ``level``, or palette frames in C without
    ``value_range``. Then the recipe is wrong rather than one frame, so the
    fix is the calibration, not skipping the frame.
    """


class LayoutError(ThermosynthError, ValueError):
    """A battery layout or its registration to a frame is invalid."""


class GridSizeError(LayoutError):
    """A layout's grid has more cells than this machine's memory holds.

    Attributes
    ----------
    ny, nx : int
        Rows and columns of the grid that was rejected.
    """

    def __init__(self, message: str, *, ny: int, nx: int) -> None:
        super().__init__(message)
        self.ny = ny
        self.nx = nx


class SimulationError(ThermosynthError, RuntimeError):
    """The heat solver failed to converge or produced an unphysical state."""


class OutputError(ThermosynthError, OSError):
    """An output path exists, or cannot be written."""


def command_line_message(message: str) -> str:
    """Remove the Python keyword hints, such as " (overwrite=True in Python)".

    Python callers read the hints beside the option names, while a
    command-line user needs the options alone.
    """
    return _PYTHON_HINT.sub("", message)
