"""Find and describe the value of a dict recipe that YAML cannot write.

A dict recipe is validated through its YAML text, and PyYAML's error names
neither the key nor a short form of the value, so `find_unwritable` finds the
key and `unwritable_message` describes the value briefly.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import yaml

KeyPath = tuple[str, ...]


def unwritable_message(found: tuple[KeyPath, Any] | None) -> str:
    """Describe a value that YAML cannot write, from `find_unwritable`.

    Returns text such as ``key 'frames.path': the value ndarray of shape
    (480, 640), float32 cannot be written as YAML; ...``, ending in what to
    give instead.
    """
    if found is None:
        return f"a value cannot be written as YAML; {_PLAIN_TYPES}"
    key, value = found
    where = f"key '{'.'.join(key)}': " if key else ""
    head = f"{where}the value {describe_value(value)} cannot be written as YAML"
    if isinstance(value, np.ndarray):
        return (
            f"{head}; save the array with np.save and give the .npy file's "
            "path instead, with frames.kind: arrays for frames"
        )
    return f"{head}; {_PLAIN_TYPES}"


_PLAIN_TYPES = "give strings, numbers, bools, lists and dicts"


def describe_value(value: Any) -> str:
    """Return a short description, such as ``ndarray of shape (480, 640), float32``."""
    if isinstance(value, np.ndarray):
        return f"ndarray of shape {value.shape}, {value.dtype}"
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 40
    return f"{shortener.repr(value)} ({type(value).__name__})"


def find_unwritable(
    data: Mapping[str, Any], dumper: type[yaml.Dumper]
) -> tuple[KeyPath, Any] | None:
    """Return the key path and value of the first leaf that ``dumper`` rejects.

    None where every leaf dumps, so the problem is a dict key or a mapping
    type that the dumper does not know.
    """
    for key, value in _leaves(data, ()):
        try:
            yaml.dump(value, Dumper=dumper)
        except yaml.representer.RepresenterError:
            return key, value
    return None


def _leaves(node: Any, key: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """Yield every value below dicts and lists, with its key path.

    List items are named by their index, as elsewhere in recipe messages.
    """
    if isinstance(node, Mapping):
        for name, child in node.items():
            yield from _leaves(child, (*key, str(name)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _leaves(child, (*key, str(index)))
    else:
        yield key, node
