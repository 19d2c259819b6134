"""Problem families: one :class:`Problem` per family, one module each (``power.py``: power control,
``beamforming.py``: multi-antenna precoders).

A family is the contract between the envs, the solvers and the harness: observation keys and spaces,
the action and its feasible set, rates and the weighted sum rate, the reference solver. Adding a family
is a module here and one entry in :data:`PROBLEMS`; a scenario names its family in
``l2o_env.scenarios.Scenario.problem`` and a solver lists the families it solves in ``Solver.problems``.

>>> from l2o_env.problems import get_problem, problem_of_obs
>>> get_problem("power").obs_keys
('gain', 'weight', 'noise', 'pmax')
>>> problem_of_obs({"gain": 0, "weight": 0, "noise": 0, "pmax": 0}, ["power"]).name
'power'
>>> get_problem("beamforming").obs_keys
('channel', 'tx_of_link', 'weight', 'noise', 'pmax')

This package imports only numpy, gymnasium, ``l2o_env.rates`` and ``l2o_env.validation`` (torch
lazily): never an env, a channel model or a scenario, so that solvers can import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any, Mapping

from l2o_env.problems.base import Problem
from l2o_env.problems.beamforming import BEAMFORMING, Beamforming
from l2o_env.problems.power import POWER, PowerControl
from l2o_env.validation import suggest

__all__ = ["Problem", "PowerControl", "POWER", "Beamforming", "BEAMFORMING", "PROBLEMS", "get_problem", "problem_of_obs"]

#: name -> problem family (a new family adds one entry)
PROBLEMS: Mapping[str, Problem] = MappingProxyType({POWER.name: POWER, BEAMFORMING.name: BEAMFORMING})


def get_problem(name: str) -> Problem:
    """The :class:`Problem` called ``name``; a ValueError listing the known ones (with a "did you mean")."""
    if isinstance(name, str) and name in PROBLEMS:
        return PROBLEMS[name]
    known = ", ".join(repr(n) for n in PROBLEMS)
    raise ValueError(f"unknown problem {name!r}; known problems: {known}.{suggest(name, PROBLEMS)}".rstrip("."))


def problem_of_obs(obs: Mapping[str, Any], candidates: Iterable[str] | None = None) -> Problem:
    """The problem among ``candidates`` (names; default: every family) whose required keys ``obs`` has.

    When several fit, the one requiring the most keys wins (the most specific), ties going to the
    first in ``candidates``. Keys beyond the required ones (positions, ...) are ignored.

    Raises:
        TypeError: ``obs`` is not a mapping.
        ValueError: an unknown name in ``candidates``, or no candidate fits; the message lists the
            observation's keys and, per candidate, the keys it lacks, and starts with the missing keys
            of the one family whose defining key (``gain``, ``channel``) the observation has.
    """
    if not isinstance(obs, Mapping):
        raise TypeError(f"obs must be a dict of arrays, got {type(obs).__name__}")
    names = list(PROBLEMS) if candidates is None else ([candidates] if isinstance(candidates, str) else list(candidates))
    problems = [get_problem(n) for n in names]
    fits = [p for p in problems if all(k in obs for k in p.obs_keys)]
    if fits:
        return max(fits, key=lambda p: len(p.obs_keys))  # max keeps the first of equals
    lacking = "; ".join(f"{p.name!r} needs {list(p.obs_keys)} (missing {[k for k in p.obs_keys if k not in obs]})"
                        for p in problems)
    # the family whose defining key (its first: "gain", "channel") the obs has is what the caller meant
    meant = [p for p in problems if p.obs_keys[0] in obs]
    lead = ""
    if len(meant) == 1:
        p = meant[0]
        lead = (f"obs is missing key(s) {[k for k in p.obs_keys if k not in obs]} of a {p.name!r} observation "
                f"(it has {p.obs_keys[0]!r}); ")
    raise ValueError(f"{lead}obs with keys {sorted(map(str, obs))} fits none of the problems {names}: "
                     f"{lacking or 'no candidates given'}")
