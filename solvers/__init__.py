"""Solver plugins behind one interface: ``act(obs) -> action`` (DESIGN.md, "Solver interface").

>>> import solvers
>>> wmmse = solvers.make("wmmse")          # doctest: +SKIP
>>> solvers.available()                      # doctest: +SKIP
"""

from solvers.base import Solver
from solvers.registry import available, describe, make, register

__all__ = ["Solver", "make", "available", "register", "describe"]
