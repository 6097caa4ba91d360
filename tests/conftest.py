"""Shared fixtures: the real thermal data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return ``../shared/data``; fail, never skip, where it is missing."""
    if not (DATA_ROOT / "README.md").is_file():
        pytest.fail(
            f"real thermal data not found at {DATA_ROOT}; clone the repository "
            "so that ../shared/data sits beside it, as CI does"
        )
    return DATA_ROOT
