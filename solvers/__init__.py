"""Solver plugins behind one interface: ``act(obs) -> action`` (DESIGN.md, "Solver interface").

>>> import solvers
>>> wmmse = solvers.make("wmmse")          # doctest: +SKIP
>>> solvers.available()                      # doctest: +SKIP
"""

import l2o_env._threads  # noqa: F401  (before any solver loads torch: OMP_WAIT_POLICY=PASSIVE)
from solvers.base import Solver
from solvers.registry import available, describe, make, register

__all__ = ["Solver", "make", "available", "register", "describe"]
