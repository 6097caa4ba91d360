"""Read output folders and compare two runs byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_tree(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` by its relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_trees(tree: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """Assert equal file names and equal bytes in every file."""
    assert sorted(tree) == sorted(expected)
    for name, data in expected.items():
        assert tree[name] == data, (name, _first_difference(tree[name], data))


def _first_difference(data: bytes, expected: bytes) -> str:
    """Describe where two byte strings first differ, for an assertion message."""
    if len(data) != len(expected):
        return f"{len(data)} bytes, expected {len(expected)}"
    differ = np.flatnonzero(
        np.frombuffer(data, np.uint8) != np.frombuffer(expected, np.uint8)
    )
    return f"{differ.size} bytes differ, the first at offset {differ[0]}"
