"""torch's OpenMP wait policy: set before torch loads, detected when it is too late.

torch's OpenMP worker threads spin while idle unless ``OMP_WAIT_POLICY=PASSIVE`` is in the environment
when torch is imported (the OpenMP runtime reads it once, at load). On a machine whose cores are busy,
spinning threads steal the cores the solver needs and batched torch solvers (WMMSE, the learned ones)
become many times slower, so a ``time_per_slot_s`` measured from Python differed from the CLI's by the
order in which the user happened to import things (benchmarks/RESULTS.md, "API and CLI timings").

Importing ``l2o_env`` (or ``solvers``, which imports it) sets ``OMP_WAIT_POLICY=PASSIVE`` unless the
user set it already. When torch was imported *before* l2o_env, that is too late: :func:`warn_if_spinning`
(called by the evaluation harness) then says so once per process, and the policy torch runs with is
recorded in every evaluation result (``config["omp_wait_policy"]``).
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["OMP_WAIT_POLICY", "TORCH_LOADED_FIRST", "warn_if_spinning"]

#: True when torch was already imported when l2o_env was (the policy below could not be set)
TORCH_LOADED_FIRST: bool = "torch" in sys.modules
if not TORCH_LOADED_FIRST:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
#: the wait policy torch's OpenMP runtime reads (as far as this process can tell): the environment's
#: value when torch loaded first, else the one set here (or the user's own); None when unset
OMP_WAIT_POLICY: str | None = os.environ.get("OMP_WAIT_POLICY")

_warned = False


def warn_if_spinning() -> bool:
    """Warn once per process when torch's idle threads spin (policy not PASSIVE); True if they do."""
    global _warned
    spinning = (OMP_WAIT_POLICY or "").strip().upper() != "PASSIVE"
    if spinning and not _warned:
        _warned = True
        how = ("torch was imported before l2o_env" if TORCH_LOADED_FIRST else "the environment sets it")
        warnings.warn(
            f"OMP_WAIT_POLICY is {OMP_WAIT_POLICY or 'unset'} ({how}): torch's idle OpenMP threads spin, and on a "
            "busy machine solver timings (time_per_slot_s) can be inflated many times over. Set "
            "OMP_WAIT_POLICY=PASSIVE in the environment, or import l2o_env before torch.",
            RuntimeWarning, stacklevel=3)
    return spinning
