"""Text -> Python values for the CLI's ``--env-kwargs``, ``--solver-kwargs`` and ``--sweep`` flags.

One grammar for every flag, so that what works in one works in the others:

=====================  ====================================================================
text                   value
=====================  ====================================================================
``12``                 ``int`` 12
``2.4e9``, ``0.5``     ``float``
``true`` / ``false``   ``bool`` (any case)
``none`` / ``null``    ``None`` (e.g. ``speed=none``: i.i.d. slots)
``10:50``              ``tuple`` of floats ``(10.0, 50.0)`` (e.g. ``pair_distance=10:50``)
``(64,32)``, ``[1,2]``  ``tuple`` of Python literals (e.g. ``hidden=(200,80,80)``; commas inside brackets
                       do not separate pairs)
anything else          ``str`` (e.g. ``weights=uniform``, ``topology=fixed``)
=====================  ====================================================================

Pairs are separated by commas: ``num_cells=3,num_links=12``. A sweep is ONE knob with its values
separated by commas: ``speed=0,3,30``.
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["ConfigError", "parse_value", "parse_kwargs", "parse_solver_kwargs", "parse_sweep"]


class ConfigError(ValueError):
    """A mistake in what the user asked for (unknown env/solver, bad keyword, malformed flag, bad path).

    The CLI prints it as one line and exits with status 2; library callers get a ``ValueError``.
    """


def parse_value(text: str) -> Any:
    """Parse one value: int, float, bool, None, ``a:b`` tuple of floats, ``(..)``/``[..]`` tuple of literals,
    else the string itself."""
    s = text.strip()
    if s and s[0] in "([" and s[-1] in ")]":
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return s
        return tuple(value) if isinstance(value, (list, tuple)) else value
    low = s.lower()
    if low in ("none", "null"):
        return None
    if low == "true":
        return True
    if low == "false":
        return False
    if ":" in s:
        parts = s.split(":")
        try:
            return tuple(float(p) for p in parts)
        except ValueError:
            return s  # a string that happens to contain ':' (e.g. a Windows path)
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def parse_kwargs(text: str | None, *, flag: str = "--env-kwargs") -> dict[str, Any]:
    """``"num_cells=3,num_links=12"`` -> ``{"num_cells": 3, "num_links": 12}``."""
    if text is None or not text.strip():
        return {}
    out: dict[str, Any] = {}
    for item in _split_top_level(text):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").replace(".", "a").isalnum():
            raise ConfigError(f"{flag}: expected KEY=VALUE pairs separated by commas, got {item!r} in {text!r}")
        if not val.strip():
            raise ConfigError(f"{flag}: {key!r} has no value in {text!r}")
        if key in out:
            raise ConfigError(f"{flag}: {key!r} given twice in {text!r}")
        out[key] = parse_value(val)
    return out


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets: ``"a=(1,2),b=3"`` -> ``["a=(1,2)", "b=3"]``."""
    items, depth, cur = [], 0, []
    for ch in text:
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "," and depth <= 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return items


def parse_solver_kwargs(text: str | None) -> dict[str, dict[str, Any]]:
    """``"truncated_wmmse.iterations=2,random_power.seed=1"`` -> ``{solver: {key: value}}``."""
    flat = parse_kwargs(text, flag="--solver-kwargs")
    out: dict[str, dict[str, Any]] = {}
    for dotted, val in flat.items():
        solver, sep, key = dotted.partition(".")
        if not sep or not solver or not key:
            raise ConfigError(f"--solver-kwargs: expected SOLVER.KEY=VALUE, got {dotted!r}")
        out.setdefault(solver, {})[key] = val
    return out


def parse_sweep(text: str | None) -> dict[str, list[Any]] | None:
    """``"speed=0,3,30"`` -> ``{"speed": [0, 3, 30]}``; ``None`` or empty -> ``None`` (no sweep)."""
    if text is None or not text.strip():
        return None
    knob, sep, vals = text.partition("=")
    knob = knob.strip()
    if not sep or not knob or not vals.strip():
        raise ConfigError(f"--sweep: expected KNOB=V1,V2,... (e.g. speed=0,3,30), got {text!r}")
    if "=" in vals:
        raise ConfigError(f"--sweep: only one knob can be swept at a time, got {text!r}")
    values = [parse_value(v) for v in vals.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--sweep: {knob!r} has no values in {text!r}")
    return {knob: values}
