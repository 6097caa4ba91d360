"""Shared fixtures of the validation tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train on one torch thread: small networks ran slower on two contended ones."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
