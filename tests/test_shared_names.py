"""Tests for thermosynth.shared_names: flags that forked processes share."""

from __future__ import annotations

import multiprocessing

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
