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


# hypothesis (tests/test_fuzz_*.py): the "ci" profile, the default, is derandomised and keeps no example
# database, so every run tries the same examples; HYPOTHESIS_PROFILE=long is the same profile, and the fuzz
# modules then try 10x the examples of each property (the counts are in benchmarks/RESULTS.md, "Fuzzing
# (issue 16)")
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass
else:
    _hypothesis_settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
    _hypothesis_settings.register_profile("long", _hypothesis_settings.get_profile("ci"))
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
