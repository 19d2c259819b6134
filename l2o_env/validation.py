"""Scalar argument checks shared by the channel models, scenarios, envs and solvers.

One rule each, so that ``num_links=20.0`` or ``"3"`` is accepted or refused the same way everywhere:

- an **integer** is a Python or numpy integer, or a float with an integral value (``20.0`` -> ``20``, so
  numbers read from a config file work); ``bool`` and strings are refused;
- a **real number** is a Python or numpy int/float (not ``bool``, not a string) and must be finite;
- a **choice** is one of a fixed set of allowed values (strings compared exactly); a near miss gets a
  "did you mean" hint (:func:`suggest`, also used for unknown names and keywords).

Every failure is a ``ValueError`` naming the owner (the env ID, class or solver), the argument, the value
given and what is allowed. Pure Python + numpy, importable by ``solvers/`` (DESIGN.md import rules).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["integer", "real", "choice", "suggest", "name_unknown", "MAX_COUNT"]


#: the largest count of links, users, cells or antennas a channel model accepts: a network of K links holds
#: K^2 gains, and 2^16 links are 4.3e9 of them (34 GB in float64), beyond what one network can be simulated in
MAX_COUNT = 2**16


def integer(owner: str, name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int >= minimum`` (and ``<= maximum`` when given)."""
    ok = not isinstance(value, (bool, np.bool_)) and (
        isinstance(value, (int, np.integer))
        or (isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()))
    if not ok or int(value) < minimum or (maximum is not None and int(value) > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{owner}: {name} must be an integer {allowed}, got {value!r}")
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


def suggest(value: Any, allowed: Iterable[Any]) -> str:
    """``" Did you mean 'x'?"`` when ``value`` is a near miss of one of the string ``allowed`` values, else ``""``."""
    names = [a for a in allowed if isinstance(a, str)]
    close = difflib.get_close_matches(str(value), names, n=1) if isinstance(value, str) else []
    return f" Did you mean {close[0]!r}?" if close else ""


def name_unknown(names: Iterable[str], allowed: Iterable[str]) -> str:
    """``"'num_linkz' (did you mean 'num_links'?), 'foo'"``: unknown keywords listed with their near misses."""
    allowed = sorted(allowed)
    parts = []
    for k in names:
        close = difflib.get_close_matches(str(k), allowed, n=1)
        parts.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ", ".join(parts)


def choice(owner: str, name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` when it is one of ``allowed``; else a ValueError listing them (with a "did you mean")."""
    allowed = tuple(allowed)

    def same(a: Any) -> bool:
        # exact type for strings and bools (True is not 1, "1" is not 1); numbers compare by value
        if isinstance(a, (str, bool, np.bool_)) or isinstance(value, (str, bool, np.bool_)) or a is None or value is None:
            return value is a or (type(value) is type(a) and value == a)
        try:
            return bool(value == a)
        except (TypeError, ValueError):  # e.g. an array compared with a number
            return False

    ok = any(same(a) for a in allowed)
    if not ok:
        shown = ", ".join(repr(a) for a in allowed)
        hint = suggest(value, allowed)
        raise ValueError(f"{owner}: {name} must be one of {shown}, got {value!r}" + (f".{hint}" if hint else ""))
    return value
