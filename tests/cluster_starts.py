"""Count the local Dask clusters that a test starts."""

from __future__ import annotations

import dask.distributed
import pytest


def count_cluster_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch LocalCluster to record each start's worker count; return the record."""
    starts: list[int] = []
    real_cluster = dask.distributed.LocalCluster

    def counted_cluster(*args, **kwargs):
        starts.append(kwargs["n_workers"])
        return real_cluster(*args, **kwargs)

    monkeypatch.setattr(dask.distributed, "LocalCluster", counted_cluster)
    return starts
