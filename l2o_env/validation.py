"""Scalar argument checks shared by the channel models, scenarios, envs and solvers.

One rule each, so that ``num_links=20.0`` or ``"3"`` is accepted or refused the same way everywhere:

- an **integer** is a Python or numpy integer, or a float with an integral value (``20.0`` -> ``20``, so
  numbers read from a config file work); ``bool`` and strings are refused;
- a **real number** is a Python or numpy int/float (not ``bool``, not a string) and must be finite.

Every failure is a ``ValueError`` naming the owner (the env ID, class or solver), the argument, the value
given and what is allowed. Pure Python + numpy, importable by ``solvers/`` (DESIGN.md import rules).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["integer", "real"]


def integer(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``."""
    ok = not isinstance(value, (bool, np.bool_)) and (
        isinstance(value, (int, np.integer))
        or (isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()))
    if not ok or int(value) < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real(owner: str, name: str, value: Any, *, above: float | None = None, at_least: float | None = None) -> float:
    """``value`` as a finite ``float``; ``above=x`` also requires ``> x``, ``at_least=x`` requires ``>= x``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    x = float(value)
    bound = f" > {above:g}" if above is not None else f" >= {at_least:g}" if at_least is not None else ""
    if not math.isfinite(x) or (above is not None and not x > above) or (at_least is not None and not x >= at_least):
        raise ValueError(f"{owner}: {name} must be a finite number{bound}, got {value!r}")
    return x
