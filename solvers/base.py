"""The :class:`Solver` interface: ``act(obs) -> action`` for any problem family the solver declares.

An observation is a plain dict of arrays (no env class needed). Each problem family
(:mod:`l2o_env.problems`) defines its keys, how an observation is validated and how an action is
projected onto the feasible set; a solver lists the families it solves in :attr:`Solver.problems`, and
:meth:`Solver.act` / :meth:`Solver.act_batch` route every call through the family of the observation. For
power control: ``gain (K, K)``, ``weight (K,)``, ``noise (K,)``, ``pmax (K,)`` for one network, or the same
keys with a leading batch axis for :meth:`Solver.act_batch`. Extra keys (positions, ``bs_gain``) reach the
solver untouched, once checked for NaN and inf (a ``ValueError`` naming the key).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from l2o_env.problems import Problem, get_problem, problem_of_obs
from l2o_env.problems.power import POWER_KEYS, check_power_obs, feasible  # noqa: F401  (re-exported)

__all__ = ["Solver", "check_power_obs", "feasible"]


def _finite_extras(extras: dict[str, np.ndarray], who: str) -> dict[str, np.ndarray]:
    """``extras`` (the keys beyond the problem's: positions, ``bs_gain``, the history), or a ValueError naming
    the first numeric one with a NaN or inf entry: a solver may read them (WCGCN's graph, the predictive WMMSE's
    history), and a non-finite number there must not become an action."""
    for key, arr in extras.items():
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            bad = ~np.isfinite(arr)
            raise ValueError(f"{who}: obs[{key!r}] contains {int(bad.sum())} NaN or inf entries (first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}); every entry must be finite")
    return extras


class Solver:
    """Base class of every solver (DESIGN.md, "Solver interface").

    Subclasses set ``name`` and ``problems`` (the names of the :mod:`l2o_env.problems` families they
    solve) and implement :meth:`_solve` on validated, batched float64 arrays; :meth:`act` is
    :meth:`act_batch` on a batch of one, never a second implementation. Every call is routed through the
    observation's problem: its ``check_obs`` validates the input once, at the boundary, and its ``project``
    makes the output feasible (a safety net: a non-finite entry becomes 0).
    """

    name: str = "solver"
    problems: frozenset[str] = frozenset({"power"})

    def problem_for(self, obs: Mapping[str, Any]) -> Problem:
        """The family of ``obs`` among :attr:`problems` (the only one when the solver has one family)."""
        if len(self.problems) == 1:
            (only,) = self.problems
            return get_problem(only)
        return problem_of_obs(obs, sorted(self.problems))

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """One observation (``gain (K, K)`` ...) -> one action (powers ``(K,)`` in watts, ``0 <= p <= pmax``)."""
        problem = self.problem_for(obs)
        who = f"{type(self).__name__}.act"
        batch = problem.check_obs(obs, batched=False, who=who)
        extras = _finite_extras({k: np.asarray(v)[None] for k, v in obs.items() if k not in batch}, who)
        return self._act_checked(problem, {**extras, **batch})[0]

    def act_batch(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Observations with a leading batch axis -> actions (powers ``(B, K)``, ``0 <= p <= pmax``)."""
        problem = self.problem_for(obs)
        who = f"{type(self).__name__}.act_batch"
        batch = problem.check_obs(obs, batched=True, who=who)
        extras = _finite_extras({k: np.asarray(v) for k, v in obs.items() if k not in batch}, who)
        return self._act_checked(problem, {**extras, **batch})

    def _act_checked(self, problem: Problem, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = np.asarray(self._solve(obs), dtype=np.float64)
        want = problem.action_shape(obs)
        if action.shape != want:
            raise RuntimeError(f"{type(self).__name__}._solve returned shape {action.shape}, expected {want}")
        return problem.project(obs, action)[0]

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _solve(obs) -> (B, K) powers")

    def reset(self) -> None:
        """Forget any state kept across slots (warm starts). Stateless solvers do nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
