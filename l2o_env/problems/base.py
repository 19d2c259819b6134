"""The :class:`Problem` contract: what the envs, the solvers and the harness need to know about one
problem family (power control, beamforming, ...), in one object per family.

A problem family fixes the observation (its keys, shapes, units), the action (its shape and feasible
set), the per-link rates and the weighted sum rate. Everything else (channel models, envs, solvers, the
harness) reads these through a ``Problem`` instead of hard-coding one family, so a second family is an
addition (a module in ``l2o_env/problems/`` and an entry in :data:`l2o_env.problems.PROBLEMS`), not edits
everywhere.

Conventions shared by every family (DESIGN.md):

- an *observation* is a plain dict of arrays (no env class needed); a *batched* observation has a
  leading batch axis ``B`` on every key (the vector env's and the sampler's layout);
- actions carry the same leading batch axis; units are the family's (watts for powers);
- rates are in bit/s/Hz (log2), one per link (or user): ``(B, K)``; the weighted sum rate is ``(B,)``.

Import rule (checked by ``tests/test_problems.py``): this package imports only numpy, gymnasium,
``l2o_env.rates`` and ``l2o_env.validation`` (torch lazily, inside the functions that need it); never an
env, a channel model or a scenario, because solvers import it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from gymnasium import spaces

__all__ = ["Problem"]


class Problem(ABC):
    """One problem family: observation and action contract, feasibility, rates.

    Attributes:
        name: the family's name, e.g. ``"power"`` (what ``Solver.problems`` lists and
            ``Scenario.problem`` names).
        obs_keys: the observation keys every observation of this family has and every solver may rely
            on (others, e.g. positions, are optional extras).
        reference_solver: registry name of the solver the harness reports ratios against (``"wmmse"``).
        channel_key: the observation key that carries the channel state (``"gain"``, ``"channel"``): what
            CSI delay and estimation error act on.
        history_key: ``channel_key + "_history"``, the key of the last ``n`` observed channels (oldest
            first) that an env with ``csi_history=n > 1`` adds to its observation.

    Unless a method says otherwise, ``obs`` is a *batched* observation (leading batch axis on every key,
    e.g. the output of :meth:`check_obs` with ``batched=True``, a vector env's observation or an
    ``ObservationSampler`` batch); methods other than :meth:`check_obs` do not validate it again.
    """

    name: str
    obs_keys: tuple[str, ...]
    reference_solver: str
    channel_key: str

    @property
    def history_key(self) -> str:
        """``channel_key + "_history"`` (``"gain_history"``, ``"channel_history"``)."""
        return f"{self.channel_key}_history"

    # --- spaces (one network of an env configuration) ---------------------------------------
    @abstractmethod
    def observation_space(self, config: Any) -> "spaces.Dict":
        """The ``Dict`` observation space of one network (no batch axis) of an env configuration.

        ``config`` is the env's validated configuration (``l2o_env.envs.core.EnvConfig`` for power
        control); each family documents the attributes it reads.
        """

    @abstractmethod
    def action_space(self, config: Any) -> "spaces.Box":
        """The ``Box`` action space of one network (no batch axis) of an env configuration."""

    # --- validation ---------------------------------------------------------------------------
    @abstractmethod
    def check_obs(self, obs: Mapping[str, Any], *, batched: bool, who: str = "solver") -> dict[str, np.ndarray]:
        """Validate an observation once, at a boundary (a solver's ``act``/``act_batch``, the harness).

        Args:
            obs: a dict of arrays with at least :attr:`obs_keys`; with ``batched=True`` every key has a
                leading batch axis ``B``.
            batched: whether ``obs`` carries the batch axis.
            who: the name that error messages start with (e.g. ``"WMMSE.act"``).

        Returns:
            The :attr:`obs_keys` as float64 arrays with a leading batch axis (``B = 1`` when
            ``batched=False``); extra keys are not included.

        Raises:
            ValueError: a missing key, a wrong shape or a non-finite / out-of-range entry.
            TypeError: ``obs`` is not a mapping, or an entry is complex or not numeric.
            Every message names the key, what was given and what is allowed.
        """

    @abstractmethod
    def check_action(self, action: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
        """Validate an action for an env step and return it as a new float64 array of ``shape``.

        Raises a ValueError (naming the problem, prefixed by ``who``) for a non-numeric dtype, a shape
        other than ``shape`` or a NaN/inf entry. Entries outside the feasible set are not an error here
        (the env projects and counts them).
        """

    # --- feasibility and objective --------------------------------------------------------------
    @abstractmethod
    def project(self, obs: Mapping[str, Any], action: Any, *, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Project a batch of actions onto the feasible set of ``obs``.

        Args:
            obs: a batched observation.
            action: ``action_shape(obs)`` numbers (any real dtype).
            tol: relative tolerance: an entry that is infeasible by at most ``tol`` times its budget is
                projected but not counted (the harness passes ``1e-6`` for float32 observations, whose
                budgets a float64 solver may overshoot by rounding).

        Returns:
            ``(feasible, changed)``: a new float64 array of ``action_shape(obs)`` that is feasible, and
            ``(B,)`` int64 counts of the entries that were changed by more than the tolerance per sample.
            Non-finite entries become 0 and are always counted.

        Raises:
            ValueError: ``action`` has the wrong shape or is not numeric.
        """

    @abstractmethod
    def rates(self, obs: Mapping[str, Any], action: Any) -> np.ndarray:
        """Per-link rates ``(B, K)`` in bit/s/Hz (numpy, float64) of a feasible ``action``."""

    @abstractmethod
    def rates_torch(self, obs: Mapping[str, Any], action: "torch.Tensor") -> "torch.Tensor":
        """Per-link rates ``(B, K)`` in bit/s/Hz (torch, differentiable in ``action``).

        ``obs`` entries may be numpy arrays or tensors; numpy ones are moved to ``action``'s device and
        dtype. Equals :meth:`rates` up to floating-point rounding.
        """

    def weighted_sum_rate(self, obs: Mapping[str, Any], action: Any) -> np.ndarray:
        """``sum_k obs["weight"][b, k] * rates[b, k]``: the weighted sum rate ``(B,)`` in bit/s/Hz."""
        return (np.asarray(obs["weight"], dtype=np.float64) * self.rates(obs, action)).sum(axis=-1)

    @abstractmethod
    def zero_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        """An all-zero feasible action of ``action_shape(obs)`` (float64)."""

    @abstractmethod
    def action_shape(self, obs: Mapping[str, Any]) -> tuple[int, ...]:
        """The shape of a batch of actions for the batched observation ``obs``, batch axis first."""

    def batch_size(self, obs: Mapping[str, Any]) -> int:
        """``B``: the leading axis of the batched observation ``obs``."""
        return int(np.shape(obs[self.obs_keys[0]])[0])

    def _action_copy(self, action: Any, shape: tuple[int, ...], who: str, what: str) -> np.ndarray:
        """``action`` as a new float64 array of ``shape`` (the start of every :meth:`project`); a ValueError
        naming ``who`` for something that is not a real numeric array of that shape (``what`` describes
        the axes, e.g. ``"(B, K)"``)."""
        arr = action
        if type(arr) is not np.ndarray:
            try:
                arr = np.asarray(action)
            except Exception as exc:  # ragged lists and the like
                raise ValueError(f"{who}: action must be a numeric array of shape {shape}, got {type(action).__name__}") from exc
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{who}: action must be a real numeric array ({self.action_unit}), got dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{who}: action must have shape {shape} {what}, got {arr.shape}")
        return arr.astype(np.float64)  # a copy, never the caller's array

    #: what an action's numbers are, for error messages
    action_unit: str = "the action"

    def __repr__(self) -> str:
        return f"<Problem {self.name!r}: obs keys {self.obs_keys}, reference solver {self.reference_solver!r}>"
