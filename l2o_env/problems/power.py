"""Power control (weighted sum rate on a K-link interference network): the ``"power"`` problem family.

Observation (DESIGN.md, "Observation (power control)"): a dict with ``gain (K, K)`` (power gains,
``gain[i, j] = |h_ij|^2`` from transmitter ``j`` to the receiver of link ``i``), ``weight (K,)``,
``noise (K,)`` (W) and ``pmax (K,)`` (W), plus optional extras (``tx_pos``, ``rx_pos``, ``bs_gain``);
batched observations put ``B`` first. Action: transmit powers ``(K,)`` in watts with
``0 <= p <= pmax`` (``(B, K)`` batched). Rates: :mod:`l2o_env.rates` (the one formula).

This module is the one home of the power-control contract: the env spaces, the action check and clip
of an env step, and the observation check of the solvers (``check_power_obs``) all live here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from gymnasium import spaces

from l2o_env.problems.base import Problem
from l2o_env.rates import link_rates, link_rates_torch
from l2o_env.validation import real

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "PowerControl",
    "POWER",
    "POWER_KEYS",
    "PF_MIN_RATE",
    "check_power_obs",
    "feasible",
    "check_action",
    "clip_power",
    "single_observation_space",
    "single_action_space",
]

#: the keys every power-control observation has (the contract every solver may rely on)
POWER_KEYS = ("gain", "weight", "noise", "pmax")
#: bit/s/Hz: proportional-fair weights are ``1 / max(R, PF_MIN_RATE)``, so the weight space is [0, 100]
PF_MIN_RATE = 1e-2

_INF = np.float32(np.inf)


# --- observation check (the solver boundary) ---------------------------------------------------
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


# --- action check and clip (the env step) -------------------------------------------------------
def check_action(action: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
    """Validate an action and return it as a new float64 array (never a view of the caller's data).

    Raises a ValueError naming the problem for a non-numeric dtype, a wrong shape, or NaN/inf entries
    (listing their indices). Out-of-range values are not an error here: the env clips and counts them.
    """
    if type(action) is not np.ndarray:
        try:
            action = np.asarray(action)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{who}: action must be a numeric array of shape {shape}, got {type(action).__name__}") from exc
    if action.dtype.kind not in "fiu":
        raise ValueError(
            f"{who}: action must be a real numeric array (float or int powers in watts), got dtype {action.dtype}"
        )
    if action.shape != shape:
        raise ValueError(f"{who}: action must have shape {shape} (one power per link), got {action.shape}")
    power = action.astype(np.float64)  # a copy: later in-place edits by the caller cannot reach the env
    # two reductions catch any NaN/inf (NaN propagates through min and max, which neither overflow nor warn
    # on inf + -inf as a sum does); the exact test runs only then
    if not (math.isfinite(power.min()) and math.isfinite(power.max())) and not np.isfinite(power).all():
        bad = np.argwhere(~np.isfinite(power))
        where = [tuple(int(i) for i in b) if len(b) > 1 else int(b[0]) for b in bad[:10]]
        raise ValueError(f"{who}: action contains NaN or inf at index {where}; powers must be finite watts")
    return power


def clip_power(power: np.ndarray, pmax: np.ndarray, pmax_low: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip ``power (..., K)`` into ``[0, pmax]``; returns the feasible powers and the number of clipped
    entries per row (``(...)`` ints). ``pmax_low``: the smallest entry of ``pmax``."""
    if power.min() >= 0.0 and power.max() <= pmax_low:
        # the common case (a policy that respects the Box) costs two reductions and no copy
        return power, (0 if power.ndim == 1 else np.zeros(power.shape[:-1], dtype=np.int64))
    feasible = np.minimum(np.maximum(power, 0.0), pmax)
    return feasible, np.count_nonzero(feasible != power, axis=-1)


# --- spaces ------------------------------------------------------------------------------------
def single_observation_space(cfg: Any) -> spaces.Dict:
    """The Dict observation space of one network of ``cfg`` (float32 everywhere).

    Reads ``cfg.num_links`` (K), ``cfg.weights`` (``"proportional_fair"`` widens the weight Box to
    ``[0, 1 / PF_MIN_RATE]``), ``cfg.has_geometry`` (adds ``tx_pos``/``rx_pos (K, 2)``) and
    ``cfg.extra_shapes`` (the model's extra keys, e.g. ``bs_gain (N, K)``) and ``cfg.csi_history``
    (``n > 1`` adds ``gain_history (n, K, K)``, the last ``n`` observed gain matrices, oldest first).
    """
    k = cfg.num_links
    f32 = np.float32
    # (a degenerate Box with low == high, exact for constant noise, would make every gym.make warn)
    w_high = 1.0 / PF_MIN_RATE if cfg.weights == "proportional_fair" else 1.0
    d = {
        "gain": spaces.Box(0.0, _INF, (k, k), f32),
        "weight": spaces.Box(0.0, f32(w_high), (k,), f32),
        "noise": spaces.Box(0.0, _INF, (k,), f32),
        "pmax": spaces.Box(0.0, _INF, (k,), f32),
    }
    if cfg.has_geometry:
        d["tx_pos"] = spaces.Box(-_INF, _INF, (k, 2), f32)
        d["rx_pos"] = spaces.Box(-_INF, _INF, (k, 2), f32)
    for key, shape in cfg.extra_shapes.items():
        low = 0.0 if key.endswith("gain") else -_INF
        d[key] = spaces.Box(low, _INF, shape, f32)
    n = int(getattr(cfg, "csi_history", 1))
    if n > 1:
        d["gain_history"] = spaces.Box(0.0, _INF, (n, k, k), f32)
    return spaces.Dict(d)


def single_action_space(cfg: Any) -> spaces.Box:
    """``Box(0, pmax, (K,), float32)``: transmit powers in watts (reads ``cfg.pmax``, ``(K,)`` W)."""
    pmax = cfg.pmax.astype(np.float32)
    return spaces.Box(np.zeros_like(pmax), pmax, dtype=np.float32)


# --- the Problem -------------------------------------------------------------------------------
class PowerControl(Problem):
    """Weighted-sum-rate power control: ``max_p sum_i w_i log2(1 + g_ii p_i / (sigma_i^2 + sum_{j!=i} g_ij p_j))``
    subject to ``0 <= p_i <= pmax_i`` (DESIGN.md, "Observation (power control)" and "Action, reward").

    Batched shapes: ``gain (B, K, K)``, ``weight``/``noise``/``pmax (B, K)``; actions (powers in watts)
    and rates (bit/s/Hz) ``(B, K)``; weighted sum rates ``(B,)``.
    """

    name = "power"
    obs_keys = POWER_KEYS
    reference_solver = "wmmse"
    channel_key = "gain"
    action_unit = "powers in watts"

    def observation_space(self, config: Any) -> spaces.Dict:
        """:func:`single_observation_space`: gains, weights, noise, pmax (+ positions, model extras)."""
        return single_observation_space(config)

    def action_space(self, config: Any) -> spaces.Box:
        """:func:`single_action_space`: ``Box(0, pmax, (K,), float32)`` watts."""
        return single_action_space(config)

    def check_obs(self, obs: Mapping[str, Any], *, batched: bool, who: str = "solver") -> dict[str, np.ndarray]:
        """:func:`check_power_obs`: float64 ``gain (B, K, K)`` and ``weight``/``noise``/``pmax (B, K)``.

        ``weight``, ``noise`` and ``pmax`` may be scalars (broadcast to every link and sample).
        """
        return check_power_obs(obs, batched=batched, who=who)

    def check_action(self, action: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
        """:func:`check_action`: a new float64 array of ``shape`` (watts), or a ValueError."""
        return check_action(action, shape, who)

    def project(self, obs: Mapping[str, Any], action: Any, *, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Clip powers ``(B, K)`` into ``[0, obs["pmax"]]`` (W); non-finite entries become 0.

        Returns the feasible powers (a new float64 array) and ``(B,)`` int64 counts of entries changed:
        every non-finite entry, and every entry below ``-tol * pmax`` or above ``(1 + tol) * pmax``
        (entries within that tolerance are clipped but not counted).
        """
        who = f"{type(self).__name__}.project"
        if tol != 0.0:
            tol = real(who, "tol", tol, at_least=0.0)
        shape = self.action_shape(obs)
        power = self._action_copy(action, shape, who, "(B, K)")
        pmax = obs["pmax"]
        if type(pmax) is not np.ndarray or pmax.dtype != np.float64 or pmax.shape != shape:
            pmax = np.broadcast_to(np.asarray(pmax, dtype=np.float64), shape)
        with np.errstate(over="ignore", invalid="ignore"):  # (NaN/inf entries are the point of this test)
            total = power.sum()
        if math.isfinite(total) and power.min() >= 0.0 and (power <= pmax).all():
            return power, np.zeros(shape[:-1], dtype=np.int64)  # the common case: already feasible
        bad = None
        if not math.isfinite(total):
            bad = ~np.isfinite(power)
            power[bad] = 0.0
        out, changed = clip_power(power, pmax, float(pmax.min()) if pmax.size else 0.0)
        changed = np.broadcast_to(np.asarray(changed, dtype=np.int64), shape[:-1])
        if tol > 0.0 and changed.any():
            slack = tol * pmax
            changed = np.count_nonzero((power < -slack) | (power > pmax + slack), axis=-1)
        if bad is not None:
            changed = changed + np.count_nonzero(bad, axis=-1)
        return out, np.array(changed, dtype=np.int64)

    def rates(self, obs: Mapping[str, Any], action: Any) -> np.ndarray:
        """Per-link rates ``(B, K)`` bit/s/Hz of powers ``action (B, K)`` W: ``l2o_env.rates.link_rates``."""
        return link_rates(obs["gain"], action, obs["noise"])

    def rates_torch(self, obs: Mapping[str, Any], action: "torch.Tensor") -> "torch.Tensor":
        """Differentiable per-link rates ``(B, K)``: ``l2o_env.rates.link_rates_torch``."""
        import torch

        def tensor(x: Any) -> "torch.Tensor":
            if torch.is_tensor(x):
                return x.to(device=action.device, dtype=action.dtype)
            return torch.as_tensor(np.asarray(x, dtype=np.float64), device=action.device).to(action.dtype)

        return link_rates_torch(tensor(obs["gain"]), action, tensor(obs["noise"]))

    def zero_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        """All-zero powers ``(B, K)`` (float64 W): feasible for every budget."""
        return np.zeros(self.action_shape(obs))

    def action_shape(self, obs: Mapping[str, Any]) -> tuple[int, ...]:
        """``(B, K)`` for a batched observation with ``gain (B, K, K)``."""
        return tuple(int(n) for n in np.shape(obs["gain"])[:-1])


#: the power-control problem (``l2o_env.problems.PROBLEMS["power"]``)
POWER = PowerControl()
