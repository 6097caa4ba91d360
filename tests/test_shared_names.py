"""Tests for thermosynth.shared_names: flags that forked processes share."""

from __future__ import annotations

import copy
import multiprocessing
import pickle

import pytest

from thermosynth.shared_names import SharedNames


def test_shared_names_seen_across_fork():
    names = SharedNames(("frame", "rise"))
    context = multiprocessing.get_context("fork")
    child = context.Process(target=names.add, args=("rise",))
    child.start()
    child.join(timeout=30)

    assert child.exitcode == 0
    assert "rise" in names
    assert "frame" not in names
    assert set(names) == {"rise"}
    assert len(names) == 1
    with pytest.raises(ValueError, match="name 'saturated' is not one of"):
        names.add("saturated")
    names.discard("rise")
    assert not names


def add_in_forked_child(names: SharedNames, name: str) -> int | None:
    child = multiprocessing.get_context("fork").Process(target=names.add, args=(name,))
    child.start()
    child.join(timeout=30)
    return child.exitcode


def test_shared_names_deepcopy_is_same_set():
    names = SharedNames(("frame", "rise"))
    copied = copy.deepcopy({"warned": names})["warned"]

    assert add_in_forked_child(copied, "rise") == 0
    assert set(names) == {"rise"}
    assert copied is names


def test_shared_names_pickle_copy_shared_across_fork():
    names = SharedNames(("frame", "rise"))
    names.add("frame")
    restored = pickle.loads(pickle.dumps(names))

    assert add_in_forked_child(restored, "rise") == 0
    assert set(restored) == {"frame", "rise"}
    assert set(names) == {"frame"}
