"""Command-line pieces that the benchmark scripts share.

Each script parses its options before it does any work, so ``--help``
prints the module docstring and exits without running the benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def script_parser(doc: str | None) -> argparse.ArgumentParser:
    """Return a parser whose description is a script's module docstring."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_results_file(parser: argparse.ArgumentParser, default: Path) -> None:
    """Add ``-o/--output``, the Markdown file that a script writes."""
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=default,
        metavar="FILE",
        help="Markdown file to write the results to (default: %(default)s)",
    )


def add_seeds(parser: argparse.ArgumentParser, what: str, default: int = 3) -> None:
    """Add ``--seeds``, the number of training seeds from 0, at least 1."""
    parser.add_argument(
        "--seeds",
        type=_positive_int,
        default=default,
        help=f"{what} (default {default})",
    )


def _positive_int(text: str) -> int:
    """Parse a count of at least 1; argparse reports the error on one line."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid; give 1 or more")
    return value


def recorded_command(script: str, output: Path, default: Path) -> str:
    """Return the command line that a results file records.

    ``script`` is the script's ``__file__``. The command names ``-o`` only
    when ``output`` is not the default file.
    """
    command = f"OMP_NUM_THREADS=1 python benchmarks/{Path(script).name}"
    if output != default:
        command += f" -o {output}"
    return command
