"""The one solver registry: built-in names, runtime registration and the ``l2o_env.solvers`` entry points."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import Any, Callable

from l2o_env.validation import suggest

__all__ = ["make", "available", "register", "describe", "plain_text", "factory", "problems_of"]

ENTRY_POINT_GROUP = "l2o_env.solvers"

# name -> "module:attribute"; imported lazily so that `import solvers` stays cheap
_BUILTIN: dict[str, str] = {
    "wmmse": "solvers.wmmse:WMMSE",
    "truncated_wmmse": "solvers.truncated_wmmse:TruncatedWMMSE",
    "wmmse_best_of": "solvers.wmmse_best_of:WMMSEBestOf",
    "wmmse_predictive": "solvers.wmmse_predictive:WMMSEPredictive",
    "max_power": "solvers.max_power:MaxPower",
    "random_power": "solvers.random_power:RandomPower",
    "strongest_links": "solvers.strongest_links:StrongestLinks",
    "exhaustive": "solvers.exhaustive:Exhaustive",
    "mlp": "solvers.mlp:MLPSolver",
    "uwmmse": "solvers.uwmmse:UWMMSE",
    "wcgcn": "solvers.wcgcn:WCGCN",
    "mrt": "solvers.mrt:MRT",
    "zf": "solvers.zf:ZF",
    "rzf": "solvers.rzf:RZF",
    "equal_power": "solvers.equal_power:EqualPower",
    "unfolded_wmmse": "solvers.unfolded_wmmse:UnfoldedWMMSE",
    "pgd_wmmse": "solvers.unfolded_wmmse:PGDWMMSE",
    "structured_net": "solvers.structured_net:StructuredNet",
    "ppo": "solvers.rl:PPOSolver",
    "sac": "solvers.rl:SACSolver",
    "td3": "solvers.rl:TD3Solver",
}
_RUNTIME: dict[str, Callable[..., Any]] = {}


def register(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> solver`` under ``name`` for :func:`make`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register: name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"register: factory for {name!r} must be callable, got {type(factory).__name__}")
    if not overwrite and (name in _RUNTIME or name in _BUILTIN):
        raise ValueError(f"register: a solver named {name!r} already exists; pass overwrite=True to replace it")
    _RUNTIME[name] = factory


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available(problem: str | None = None) -> list[str]:
    """Every solver name :func:`make` accepts: built-in, registered at runtime, and entry points.

    ``problem`` (e.g. ``"power"``): only the solvers whose ``problems`` attribute includes that family; a
    factory without the attribute counts as power control (the first family, what such plugins predate),
    and a plugin that fails to import is left out of a filtered list (``l2o list`` shows why).
    """
    names = sorted(set(_BUILTIN) | set(_RUNTIME) | set(_entry_points()))
    if problem is None:
        return names
    from l2o_env.problems import get_problem

    get_problem(problem)  # an unknown family is an error, not an empty list
    return [n for n in names if problem in problems_of(n)]


def problems_of(name: str) -> frozenset[str]:
    """The problem families solver ``name`` declares (``frozenset()`` when it cannot be imported)."""
    try:
        target = _resolve(name)
    except (ImportError, ValueError):
        return frozenset()
    return frozenset(getattr(target, "problems", None) or {"power"})


def _resolve(name: str) -> Callable[..., Any]:
    if name in _RUNTIME:
        return _RUNTIME[name]
    if name in _BUILTIN:
        module, attr = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), attr)
    eps = _entry_points()
    if name in eps:
        try:
            return eps[name].load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise ImportError(f"solver {name!r}: the entry point {eps[name].value!r} (group {ENTRY_POINT_GROUP!r}) "
                              f"failed to load: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"unknown solver {name!r}.{suggest(name, available())} Available: {', '.join(available())}")


def factory(name: str) -> Callable[..., Any]:
    """What :func:`make` calls for ``name`` (usually the solver class), without building a solver."""
    if not isinstance(name, str):
        raise TypeError(f"solvers.factory: name must be a string, got {type(name).__name__}")
    return _resolve(name)


def make(name: str, **kwargs: Any):
    """Build the solver registered as ``name`` with ``kwargs`` (e.g. ``make("truncated_wmmse", iterations=4)``)."""
    if not isinstance(name, str):
        raise TypeError(f"solvers.make: name must be a string, got {type(name).__name__}")
    return _resolve(name)(**kwargs)


# :role:`target`, :domain:role:`~a.b.Name`, :role:`Title <target>` (Sphinx cross-references)
_ROLE = re.compile(r":(?:[A-Za-z][\w-]*:)+`([^`]+)`")
# ``literal`` and `default role` (RST inline markup around text without backticks)
_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")


def _role_text(target: str) -> str:
    """The readable part of a role's target: ``Title <x>`` -> Title, ``~a.b.C`` -> C, ``!x`` -> x."""
    titled = re.fullmatch(r"\s*(.*?)\s*<[^<>]*>\s*", target)
    if titled and titled.group(1):
        return titled.group(1)
    target = target.strip().lstrip("!")
    if target.startswith("~"):
        return target[1:].rsplit(".", 1)[-1]
    return target


def plain_text(line: str) -> str:
    """``line`` without Sphinx/RST inline markup, for a terminal: roles keep their readable name
    (``:class:`~solvers.base.Solver``` -> ``Solver``), literals their text (````x```` -> ``x``)."""
    line = _ROLE.sub(lambda m: _role_text(m.group(1)), line)
    return _LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), line)


def describe(name: str) -> str:
    """First line of the solver's docstring as plain text (for ``l2o list``): Sphinx roles and RST
    literals are reduced to their readable text by :func:`plain_text`."""
    doc = (getattr(_resolve(name), "__doc__", None) or "").strip()
    return plain_text(doc.splitlines()[0]) if doc else ""
