"""Reject an output path that is, contains or lies inside an input path.

The output of one command is often the input of the next, and --overwrite
replaces a folder that thermosynth wrote. Without this check
``validate closeness --pseudo X -o X --overwrite`` deletes X, and an output
inside an input folder adds files to that input.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from thermosynth.errors import OutputError


def check_apart_from_inputs(
    output: Path,
    inputs: Iterable[tuple[str, Path | None]],
    *,
    kind: Literal["folder", "file"] = "folder",
) -> None:
    """Raise OutputError if ``output`` is, contains or lies inside an input.

    Paths are compared after resolving symbolic links and ``..``, so a link
    to an input counts as that input.

    Parameters
    ----------
    output : Path
        Output folder or file, as the user gave it.
    inputs : iterable of (str, Path or None)
        Label of each input for the message, such as ``"--pseudo input"``
        or ``"frames.path input"``, and its path. None, an option that was
        not given, is skipped.
    kind : {"folder", "file"}, optional
        What ``output`` is, for the message.
    """
    target = _resolved(output)
    for label, path in inputs:
        if path is None:
            continue
        source = _resolved(Path(path))
        if target == source:
            path_text = "" if str(path) == str(output) else f" ({path})"
            raise OutputError(
                f"output {kind} {output} is the {label}{path_text}; choose "
                f"another {kind}"
            )
        if source.is_relative_to(target):
            raise OutputError(
                f"output {kind} {output} contains the {label} ({path}), which "
                f"writing the output could replace; choose a {kind} that does "
                "not contain it"
            )
        if target.is_relative_to(source):
            raise OutputError(
                f"output {kind} {output} lies inside the {label} ({path}), so the "
                f"output would add files to that input; choose a {kind} outside it"
            )


def _resolved(path: Path) -> Path:
    """Return ``path`` absolute with links resolved, or only absolute on a loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        # Python 3.11 raises RuntimeError for a symbolic link loop.
        return path.absolute()
