"""Test-session settings shared by every test module."""

import os

# torch's OpenMP threads spin while idle by default; on a busy 2-core CI machine that makes batched
# torch code 15-40x slower (measured in benchmarks/wmmse_speed.py). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
