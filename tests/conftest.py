"""Test-session settings shared by every test module."""

import os

# torch's OpenMP threads spin while idle by default; on a busy 2-core CI machine that makes batched
# torch code 15-40x slower (measured in benchmarks/wmmse_speed.py). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """torch on one thread for the test: tiny graphs and batches gain nothing from threads, and spinning
    threads cost a lot on shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
