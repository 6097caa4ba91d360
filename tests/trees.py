"""Read an output folder's files, to compare two runs byte for byte."""

from __future__ import annotations

from pathlib import Path


def read_tree(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` by its relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
