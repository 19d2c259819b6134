"""The :class:`Solver` interface of DESIGN.md and the observation checks every solver shares.

An observation is a plain dict of arrays (no env class needed): ``gain (K, K)``, ``weight (K,)``,
``noise (K,)``, ``pmax (K,)`` for one network, or the same keys with a leading batch axis for
:meth:`Solver.act_batch`. Extra keys (positions, ``bs_gain``, ``active``) are ignored unless a solver
needs them.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["Solver", "check_power_obs", "feasible"]

POWER_KEYS = ("gain", "weight", "noise", "pmax")


def check_power_obs(obs: Mapping[str, Any], *, batched: bool, who: str = "solver") -> dict[str, np.ndarray]:
    """Validate a power-control observation once, at the solver boundary.

    Returns float64 arrays with a leading batch axis: ``gain (B, K, K)``, the others ``(B, K)``.
    Raises ``ValueError``/``TypeError`` naming the key, what was given and what is allowed.
    """
    if not isinstance(obs, Mapping):
        raise TypeError(f"{who}: obs must be a dict of arrays with keys {POWER_KEYS}, got {type(obs).__name__}")
    missing = [k for k in POWER_KEYS if k not in obs]
    if missing:
        raise ValueError(f"{who}: obs is missing key(s) {missing}; a power-control observation needs {POWER_KEYS}")
    out = {}
    for key in POWER_KEYS:
        raw = obs[key]
        if np.iscomplexobj(raw):
            raise TypeError(f"{who}: obs[{key!r}] must be real; got a complex array (gain is the power gain "
                            f"|h|^2: pass np.abs(h)**2)")
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{who}: obs[{key!r}] must be numeric, got {type(raw).__name__}") from exc
        out[key] = arr
    g = out["gain"]
    want = 3 if batched else 2
    if g.ndim != want or g.shape[-1] != g.shape[-2]:
        shape = "(B, K, K)" if batched else "(K, K)"
        raise ValueError(f"{who}: obs['gain'] must have shape {shape}, got {g.shape}")
    bsz, k = (g.shape[0], g.shape[-1]) if batched else (1, g.shape[-1])
    want_vec = (bsz, k) if batched else (k,)
    for key in ("weight", "noise", "pmax"):
        arr = out[key]
        if arr.ndim == 0:  # one scalar for every link (and sample)
            arr = np.broadcast_to(arr, want_vec)
        if arr.shape != want_vec:
            raise ValueError(f"{who}: obs[{key!r}] must have shape {want_vec} to match gain {g.shape}, got {arr.shape}")
        out[key] = arr
    if not batched:
        out = {key: arr[None] for key, arr in out.items()}
    if _plainly_valid(out):
        return out
    for key, arr in out.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"{who}: obs[{key!r}] contains {int(bad.sum())} NaN or inf entries (first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}); every entry must be finite")
    if np.any(out["gain"] < 0):
        raise ValueError(f"{who}: obs['gain'] must be >= 0 (power gains |h|^2), got min {out['gain'].min()}")
    if np.any(out["noise"] <= 0):
        raise ValueError(f"{who}: obs['noise'] must be > 0 (noise power sigma^2), got min {out['noise'].min()}")
    for key in ("pmax", "weight"):
        if np.any(out[key] < 0):
            raise ValueError(f"{who}: obs[{key!r}] must be >= 0, got min {out[key].min()}")
    return out


def _plainly_valid(out: dict[str, np.ndarray]) -> bool:
    """The value checks of :func:`check_power_obs` in eight reductions (NaN fails every comparison), so a
    valid observation costs no boolean temporaries; on ``False`` the detailed checks name the problem."""
    g, noise, pmax, weight = out["gain"], out["noise"], out["pmax"], out["weight"]
    if g.size == 0 or noise.size == 0:
        return False
    return bool(g.min() >= 0.0 and g.max() < np.inf and noise.min() > 0.0 and noise.max() < np.inf
                and pmax.min() >= 0.0 and pmax.max() < np.inf and weight.min() >= 0.0 and weight.max() < np.inf)


def feasible(power: np.ndarray, pmax: np.ndarray) -> np.ndarray:
    """Clip to ``[0, pmax]`` and replace any non-finite entry by 0 (a safety net, not a fix for bugs)."""
    power = np.where(np.isfinite(power), power, 0.0)
    return np.clip(power, 0.0, pmax)


class Solver:
    """Base class of every solver (DESIGN.md, "Solver interface").

    Subclasses set ``name`` and ``problems`` and implement :meth:`_solve` on validated, batched float64
    arrays; :meth:`act` is :meth:`act_batch` on a batch of one, never a second implementation.
    """

    name: str = "solver"
    problems: frozenset[str] = frozenset({"power"})

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """One observation (``gain (K, K)`` ...) -> powers ``(K,)`` in watts, ``0 <= p <= pmax``."""
        batch = check_power_obs(obs, batched=False, who=f"{type(self).__name__}.act")
        extras = {k: np.asarray(v)[None] for k, v in obs.items() if k not in batch}
        return self._act_checked({**extras, **batch})[0]

    def act_batch(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Observations with a leading batch axis -> powers ``(B, K)``, ``0 <= p <= pmax``."""
        batch = check_power_obs(obs, batched=True, who=f"{type(self).__name__}.act_batch")
        extras = {k: np.asarray(v) for k, v in obs.items() if k not in batch}
        return self._act_checked({**extras, **batch})

    def _act_checked(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        power = np.asarray(self._solve(obs), dtype=np.float64)
        if power.shape != obs["pmax"].shape:
            raise RuntimeError(f"{type(self).__name__}._solve returned shape {power.shape}, expected (B, K) = "
                               f"{obs['pmax'].shape}")
        return feasible(power, obs["pmax"])

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _solve(obs) -> (B, K) powers")

    def reset(self) -> None:
        """Forget any state kept across slots (warm starts). Stateless solvers do nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
