"""The lines that open a validation report.md: when, by what and by which command."""

from __future__ import annotations

import datetime
import platform
import shlex
from collections.abc import Sequence

from thermosynth import __version__


def written_line() -> str:
    """Return when, with which thermosynth and on which machine the page was written."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Written {stamp} by thermosynth {__version__} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()})."
    )


def command_line_text(command_line: Sequence[str]) -> str:
    """Return the page's "Command:" line, or "" where no command is known.

    ``command_line`` is empty where the report was written from Python.
    """
    if not command_line:
        return ""
    return f"Command: `{shlex.join(command_line)}`"
