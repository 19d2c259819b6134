"""Beamforming (weighted sum rate with multi-antenna precoders): the ``"beamforming"`` problem family.

Observation (DESIGN.md, "Observation (beamforming)"), a dict of float32 arrays (float64 at the solver
boundary) with a leading batch axis ``B`` when batched:

| key | shape | meaning |
|---|---|---|
| ``channel`` | (K, T, Nr, Nt, 2) | ``channel[k, t]`` = H_{k,t}, the Nr x Nt channel from transmitter ``t`` to the receiver of link ``k``; real and imaginary parts on the last axis |
| ``tx_of_link`` | (K,) | the transmitter of every link: integers ``0 .. T-1`` stored as float32 |
| ``weight`` | (K,) | weights of the weighted sum rate |
| ``noise`` | (K,) | noise power sigma_k^2 at each receiver (W) |
| ``pmax`` | (T,) | total budget of each transmitter (W): ``sum_{k: t(k) = t} ||V_k||_F^2 <= pmax_t`` |
| ``tx_pos``, ``rx_pos`` | (T, 2), (K, 2) | positions in metres (geometric envs only; optional extras) |

The received signal of link ``k`` is ``y_k = sum_j H_{k, t(j)} V_j s_j + n_k``: the channel matrix itself
multiplies the precoder (no conjugate transpose). Action: precoders ``(K, Nt, d, 2)`` (real and imaginary
parts last; ``d = Nr`` streams per link, fewer streams = zero columns), feasible when every transmitter is
within its budget. Rates: :func:`l2o_env.rates.mimo_link_rates` (numpy) and
:func:`l2o_env.rates.mimo_link_rates_torch` (torch), the one home of the formula.

>>> import numpy as np
>>> from l2o_env.problems.beamforming import BEAMFORMING, as_complex
>>> obs = {"channel": np.ones((1, 2, 1, 1, 2, 2)), "tx_of_link": np.zeros((1, 2)), "weight": np.ones((1, 2)),
...        "noise": np.ones((1, 2)), "pmax": np.full((1, 1), 4.0)}
>>> v, changed = BEAMFORMING.project(obs, np.ones((1, 2, 2, 1, 2)))   # 8 W asked of a 4 W transmitter
>>> round(float((v**2).sum()), 9), changed.tolist()
(4.0, [1])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from gymnasium import spaces

from l2o_env.problems.base import Problem
from l2o_env.problems.power import PF_MIN_RATE
from l2o_env.rates import mimo_link_rates, mimo_link_rates_torch
from l2o_env.validation import real

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "Beamforming",
    "BEAMFORMING",
    "BEAMFORMING_KEYS",
    "check_beamforming_obs",
    "check_precoder_action",
    "project_precoders",
    "as_complex",
    "as_real",
    "single_observation_space",
    "single_action_space",
]

#: the keys every beamforming observation has (the contract every solver may rely on)
BEAMFORMING_KEYS = ("channel", "tx_of_link", "weight", "noise", "pmax")

_INF = np.float32(np.inf)
#: the projection lands 1e-12 (relative) inside the budget, so no summation order finds it above
_SHRINK = 1.0 - 2.0**-41
_TINY = float(np.finfo(np.float64).tiny)


def as_complex(arr: Any) -> np.ndarray:
    """``(..., 2)`` real/imaginary pairs -> complex128 ``(...)`` (channels and precoders)."""
    arr = np.asarray(arr, dtype=np.float64)
    return arr[..., 0] + 1j * arr[..., 1]


def as_real(z: Any) -> np.ndarray:
    """Complex ``(...)`` -> float64 ``(..., 2)`` real/imaginary pairs (the env's layout)."""
    z = np.asarray(z)
    return np.stack([z.real, z.imag], axis=-1).astype(np.float64)


# --- observation check (the solver boundary) ---------------------------------------------------
def _numeric(raw: Any, key: str, who: str, hint: str = "") -> np.ndarray:
    if np.iscomplexobj(raw):
        raise TypeError(f"{who}: obs[{key!r}] must be real; got a complex array{hint}")
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{who}: obs[{key!r}] must be numeric, got {type(raw).__name__}") from exc


def check_beamforming_obs(obs: Mapping[str, Any], *, batched: bool, who: str = "solver") -> dict[str, np.ndarray]:
    """Validate a beamforming observation once, at the solver boundary.

    Returns float64 arrays with a leading batch axis: ``channel (B, K, T, Nr, Nt, 2)``, ``tx_of_link``,
    ``weight``, ``noise`` ``(B, K)`` and ``pmax (B, T)``. ``weight``, ``noise`` and ``pmax`` may be scalars
    and ``tx_of_link`` may be ``(K,)`` in a batch (broadcast). Raises ``ValueError``/``TypeError`` naming
    the key, what was given and what is allowed.
    """
    if not isinstance(obs, Mapping):
        raise TypeError(f"{who}: obs must be a dict of arrays with keys {BEAMFORMING_KEYS}, got {type(obs).__name__}")
    missing = [k for k in BEAMFORMING_KEYS if k not in obs]
    if missing:
        raise ValueError(f"{who}: obs is missing key(s) {missing}; a beamforming observation needs {BEAMFORMING_KEYS}")
    ch = _numeric(obs["channel"], "channel", who,
                  " (pass real and imaginary parts on a last axis of 2: np.stack([h.real, h.imag], -1))")
    want = 6 if batched else 5
    if ch.ndim != want or ch.shape[-1] != 2:
        shape = "(B, K, T, Nr, Nt, 2)" if batched else "(K, T, Nr, Nt, 2)"
        raise ValueError(f"{who}: obs['channel'] must have shape {shape} (real/imaginary last), got {ch.shape}")
    if not batched:
        ch = ch[None]
    b, k, t = ch.shape[:3]
    out = {"channel": ch}
    for key, n, what in (("tx_of_link", k, "link"), ("weight", k, "link"), ("noise", k, "link"), ("pmax", t, "transmitter")):
        arr = _numeric(obs[key], key, who)
        full = (b, n)
        if arr.ndim == 0 and key != "tx_of_link":  # one value for every link / transmitter (and sample)
            arr = np.broadcast_to(arr, full)
        elif arr.shape == (n,):  # one network's values (in a batch: shared by every sample)
            arr = np.broadcast_to(arr, full)
        if arr.shape != full or (not batched and np.ndim(obs[key]) > 1):
            shape = f"(B, {n})" if batched else f"({n},)"
            raise ValueError(f"{who}: obs[{key!r}] must have shape {shape} (one per {what}) to match channel "
                             f"{tuple(np.shape(obs['channel']))}, got {np.shape(obs[key])}")
        out[key] = arr
    for key, arr in out.items():
        if not np.all(np.isfinite(arr)):
            bad = ~np.isfinite(arr)
            raise ValueError(f"{who}: obs[{key!r}] contains {int(bad.sum())} NaN or inf entries (first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}); every entry must be finite")
    tx = out["tx_of_link"]
    if np.any(tx != np.round(tx)) or np.any(tx < 0) or np.any(tx >= t):
        raise ValueError(f"{who}: obs['tx_of_link'] must hold transmitter indices 0 .. {t - 1} (integers), got "
                         f"values in [{tx.min()}, {tx.max()}]")
    if np.any(out["noise"] <= 0):
        raise ValueError(f"{who}: obs['noise'] must be > 0 (noise power sigma^2), got min {out['noise'].min()}")
    for key in ("pmax", "weight"):
        if np.any(out[key] < 0):
            raise ValueError(f"{who}: obs[{key!r}] must be >= 0, got min {out[key].min()}")
    return out


# --- action check and projection (the env step) ------------------------------------------------
def check_precoder_action(action: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
    """Validate precoders and return them as a new float64 array of ``shape`` (never a view).

    Raises a ValueError naming the problem for a non-numeric or complex dtype, a wrong shape, or NaN/inf
    entries (listing their indices). Over-budget precoders are not an error here: the env projects them.
    """
    if type(action) is not np.ndarray:
        try:
            action = np.asarray(action)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"{who}: action must be a numeric array of shape {shape}, got {type(action).__name__}") from exc
    if action.dtype.kind not in "fiu":
        hint = " (stack real and imaginary parts on a last axis of 2)" if action.dtype.kind == "c" else ""
        raise ValueError(f"{who}: action must be a real numeric array of precoders, got dtype {action.dtype}{hint}")
    if action.shape != shape:
        raise ValueError(f"{who}: action must have shape {shape} (links, Nt, streams, real/imag), got {action.shape}")
    v = action.astype(np.float64)
    # (min and max: NaN propagates, and neither overflows nor warns on inf + -inf as a sum does)
    if not (math.isfinite(v.min()) and math.isfinite(v.max())) and not np.isfinite(v).all():
        bad = np.argwhere(~np.isfinite(v))
        raise ValueError(f"{who}: action contains NaN or inf at index {[tuple(int(i) for i in x) for x in bad[:10]]}; "
                         "precoders must be finite")
    return v


def project_precoders(action: np.ndarray, pmax: Any, tx_of_link: Any, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scale every over-budget transmitter's precoders onto its budget.

    Args:
        action: float64 precoders ``(..., K, Nt, d, 2)``; written in place (pass a copy).
        pmax: budgets ``(..., T)`` (W), broadcast against the leading axes.
        tx_of_link: integer-valued ``(K,)`` or ``(..., K)``.
        tol: relative slack: a transmitter that uses at most ``(1 + tol) pmax`` is scaled onto the
            budget but not counted.

    Returns:
        ``(action, scaled)``: the feasible precoders (every transmitter ``t`` with used power
        ``P_t = sum_{k: t(k) = t} ||V_k||_F^2 > pmax_t`` multiplied by ``sqrt(pmax_t / P_t) (1 - 2^-41)``,
        so it uses ``pmax_t (1 - 1e-12)``: its budget, never more whatever the rounding of the check; the
        others untouched) and the number of transmitters scaled
        beyond the tolerance, ``(...)`` int64.
    """
    pmax = np.asarray(pmax, dtype=np.float64)
    tx = np.asarray(tx_of_link)
    tx = tx.astype(np.intp) if tx.dtype.kind != "i" else tx
    onehot = (tx[..., :, None] == np.arange(pmax.shape[-1])).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        used = np.einsum("...k,...kt->...t", np.einsum("...kndc,...kndc->...k", action, action), onehot)
        ratio = pmax / used
    if not (np.isfinite(used).all() and (ratio[used > pmax] >= _TINY).all()):
        return _project_scaled(action, pmax, tx, onehot, tol)
    over = used > pmax
    counted = used > pmax * (1.0 + tol) if tol > 0.0 else over
    if over.any():
        # 2^-41 below the exact factor: the result's sum of squares is pmax (1 - 1e-12), below the budget
        # however it is summed (rounding of a sum of n squares is < n 1.1e-16 relative)
        factor = np.sqrt(np.where(over, pmax, 1.0) / np.where(over, used, 1.0)) * np.where(over, _SHRINK, 1.0)
        lead = used.shape[:-1]
        per_link = np.take_along_axis(np.broadcast_to(factor, (*lead, factor.shape[-1])),
                                      np.broadcast_to(tx, (*lead, tx.shape[-1])), axis=-1)
        action *= per_link[..., None, None, None]
    return action, np.count_nonzero(counted, axis=-1).astype(np.int64)


def _project_scaled(action: np.ndarray, pmax: np.ndarray, tx: np.ndarray, onehot: np.ndarray,
                    tol: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`project_precoders` for precoders whose power overflows float64 (entries beyond 1e154, where the
    sum of squares is inf and inf x 0 in the transmitter sum is NaN) or whose ratio ``pmax / used`` is
    subnormal: every transmitter's precoders are first divided by their largest entry ``m_t``, so the sums of
    squares ``u_t = used_t / m_t^2`` are between 1 and the number of entries, and an over-budget transmitter
    becomes ``(V / m_t) sqrt(pmax_t / u_t) (1 - 2^-41)``: the same precoders as the direct formula, without
    an overflow or a subnormal on the way."""
    lead = action.shape[:-4]
    peak = np.abs(action).max(axis=(-3, -2, -1))  # (..., K)
    tx_peak = np.where(onehot > 0, peak[..., :, None], 0.0).max(axis=-2)  # (..., T)
    safe = np.where(tx_peak >= _TINY, tx_peak, 1.0)  # (a subnormal peak: its power is 0 in float64)

    def per_link(x: np.ndarray) -> np.ndarray:  # (..., T) -> (..., K)
        return np.take_along_axis(np.broadcast_to(x, (*lead, x.shape[-1])), np.broadcast_to(tx, (*lead, tx.shape[-1])),
                                  axis=-1)

    unit = action / per_link(safe)[..., None, None, None]
    used = np.einsum("...k,...kt->...t", np.einsum("...kndc,...kndc->...k", unit, unit), onehot)  # in [0, n]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        budget = pmax / (safe * safe)  # pmax / m_t^2 (inf or 0 where m_t^2 leaves the range)

        def above(limit: np.ndarray) -> np.ndarray:  # (a zero budget: over when the power is > 0 in float64,
            return (used > limit) | ((pmax == 0) & (used * safe * safe > 0))  # as the direct formula decides)

        over = above(budget)
        counted = above(budget * (1.0 + tol)) if tol > 0.0 else over
    factor = np.where(over, np.sqrt(pmax) / np.sqrt(np.where(over, used, 1.0)) * _SHRINK, 1.0)
    scaled = unit * per_link(factor)[..., None, None, None]
    action[...] = np.where(per_link(over)[..., None, None, None], scaled, action)
    return action, np.count_nonzero(counted, axis=-1).astype(np.int64)


# --- spaces ------------------------------------------------------------------------------------
def single_observation_space(cfg: Any) -> spaces.Dict:
    """The Dict observation space of one network of ``cfg`` (float32 everywhere).

    Reads ``cfg.num_links`` (K), ``cfg.num_tx`` (T), ``cfg.model.num_rx_antennas`` / ``num_tx_antennas``
    (Nr, Nt), ``cfg.weights`` (``"proportional_fair"`` widens the weight Box to ``[0, 1 / PF_MIN_RATE]``)
    ``cfg.has_geometry`` (adds ``tx_pos (T, 2)`` and ``rx_pos (K, 2)``) and ``cfg.csi_history`` (``n > 1``
    adds ``channel_history (n, K, T, Nr, Nt, 2)``, the last ``n`` observed channels, oldest first). ``tx_of_link`` is
    ``Box(0, max(T - 1, 1))``: integer values in float32 (the bound is loose for T = 1, where an exact
    ``Box(0, 0)`` would make Gymnasium warn on every ``gym.make``).
    """
    k, t = cfg.num_links, cfg.num_tx
    nr, nt = cfg.model.num_rx_antennas, cfg.model.num_tx_antennas
    f32 = np.float32
    w_high = 1.0 / PF_MIN_RATE if cfg.weights == "proportional_fair" else 1.0
    d = {
        "channel": spaces.Box(-_INF, _INF, (k, t, nr, nt, 2), f32),
        "tx_of_link": spaces.Box(0.0, f32(max(t - 1, 1)), (k,), f32),
        "weight": spaces.Box(0.0, f32(w_high), (k,), f32),
        "noise": spaces.Box(0.0, _INF, (k,), f32),
        "pmax": spaces.Box(0.0, _INF, (t,), f32),
    }
    if cfg.has_geometry:
        d["tx_pos"] = spaces.Box(-_INF, _INF, (t, 2), f32)
        d["rx_pos"] = spaces.Box(-_INF, _INF, (k, 2), f32)
    n = int(getattr(cfg, "csi_history", 1))
    if n > 1:
        d["channel_history"] = spaces.Box(-_INF, _INF, (n, k, t, nr, nt, 2), f32)
    return spaces.Dict(d)


def single_action_space(cfg: Any) -> spaces.Box:
    """``Box(-sqrt(pmax_t(k)), sqrt(pmax_t(k)), (K, Nt, d, 2), float32)``: precoders (sqrt W).

    The Box bounds every real and imaginary part by the square root of its transmitter's budget (what any
    feasible precoder satisfies); the feasible set itself is the per-transmitter budget, onto which the env
    projects. Reads ``cfg.pmax (T,)``, ``cfg.tx_of_link (K,)`` and the model's antenna numbers.
    """
    nt, d = cfg.model.num_tx_antennas, cfg.model.num_streams
    amp = np.sqrt(cfg.pmax.astype(np.float64))[cfg.tx_of_link].astype(np.float32)
    high = np.broadcast_to(amp[:, None, None, None], (cfg.num_links, nt, d, 2)).copy()
    return spaces.Box(-high, high, dtype=np.float32)


# --- the Problem -------------------------------------------------------------------------------
class Beamforming(Problem):
    """Weighted-sum-rate beamforming: ``max_V sum_k w_k log2 det(I + H_kk V_k V_k^H H_kk^H J_k^-1)``
    subject to ``sum_{k: t(k) = t} ||V_k||_F^2 <= pmax_t`` for every transmitter ``t`` (module docstring).

    Batched shapes: ``channel (B, K, T, Nr, Nt, 2)``, ``tx_of_link``/``weight``/``noise (B, K)``,
    ``pmax (B, T)``; actions (precoders, real/imaginary last) ``(B, K, Nt, Nr, 2)``; rates (bit/s/Hz)
    ``(B, K)``; weighted sum rates ``(B,)``.
    """

    name = "beamforming"
    obs_keys = BEAMFORMING_KEYS
    reference_solver = "wmmse"
    channel_key = "channel"
    action_unit = "precoders, real/imag last"

    def observation_space(self, config: Any) -> spaces.Dict:
        """:func:`single_observation_space`: channel, transmitter map, weights, noise, budgets (+ positions)."""
        return single_observation_space(config)

    def action_space(self, config: Any) -> spaces.Box:
        """:func:`single_action_space`: precoders ``(K, Nt, d, 2)``."""
        return single_action_space(config)

    def check_obs(self, obs: Mapping[str, Any], *, batched: bool, who: str = "solver") -> dict[str, np.ndarray]:
        """:func:`check_beamforming_obs`: the five keys as float64 arrays with a batch axis."""
        return check_beamforming_obs(obs, batched=batched, who=who)

    def check_action(self, action: Any, shape: tuple[int, ...], who: str) -> np.ndarray:
        """:func:`check_precoder_action`: a new float64 array of ``shape``, or a ValueError."""
        return check_precoder_action(action, shape, who)

    def project(self, obs: Mapping[str, Any], action: Any, *, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Scale each over-budget transmitter's precoders by ``sqrt(pmax_t / P_t)`` (exactly onto the budget);
        non-finite entries become 0 first.

        Returns the feasible precoders (a new float64 array of :meth:`action_shape`) and ``(B,)`` int64
        counts per sample: transmitters over ``(1 + tol) pmax`` plus non-finite entries zeroed.
        """
        who = f"{type(self).__name__}.project"
        tol = real(who, "tol", tol, at_least=0.0)
        shape = self.action_shape(obs)
        v = self._action_copy(action, shape, who, "(B, K, Nt, d, 2)")
        bad = None
        with np.errstate(over="ignore", invalid="ignore"):  # (NaN/inf entries are the point of this test)
            total = v.sum()
        if not math.isfinite(total) and not np.isfinite(v).all():
            bad = ~np.isfinite(v)
            v[bad] = 0.0
        v, changed = project_precoders(v, obs["pmax"], _tx_map(obs["tx_of_link"]), tol)
        if bad is not None:
            changed = changed + np.count_nonzero(bad.reshape(shape[0], -1), axis=-1)
        return v, np.array(changed, dtype=np.int64).reshape(shape[0])

    def rates(self, obs: Mapping[str, Any], action: Any) -> np.ndarray:
        """Per-link rates ``(B, K)`` bit/s/Hz of precoders ``(B, K, Nt, d, 2)``: ``l2o_env.rates.mimo_link_rates``."""
        return mimo_link_rates(as_complex(obs["channel"]), _tx_map(obs["tx_of_link"]), as_complex(action), obs["noise"])

    def rates_torch(self, obs: Mapping[str, Any], action: "torch.Tensor") -> "torch.Tensor":
        """Differentiable per-link rates ``(B, K)`` of a real precoder tensor ``(B, K, Nt, d, 2)``
        (``l2o_env.rates.mimo_link_rates_torch`` on the complex tensors)."""
        import torch

        def tensor(x: Any) -> "torch.Tensor":
            if torch.is_tensor(x):
                return x.to(device=action.device, dtype=action.dtype)
            return torch.as_tensor(np.asarray(x, dtype=np.float64), device=action.device).to(action.dtype)

        ch = tensor(obs["channel"])
        tx = _tx_map(obs["tx_of_link"].detach().cpu().numpy() if torch.is_tensor(obs["tx_of_link"]) else obs["tx_of_link"])
        return mimo_link_rates_torch(torch.complex(ch[..., 0], ch[..., 1]), torch.as_tensor(tx, device=action.device),
                                     torch.complex(action[..., 0], action[..., 1]), tensor(obs["noise"]))

    def zero_action(self, obs: Mapping[str, Any]) -> np.ndarray:
        """All-zero precoders ``(B, K, Nt, d, 2)`` (float64): feasible for every budget."""
        return np.zeros(self.action_shape(obs))

    def action_shape(self, obs: Mapping[str, Any]) -> tuple[int, ...]:
        """``(B, K, Nt, d, 2)`` with ``d = Nr``, from ``channel (B, K, T, Nr, Nt, 2)``."""
        b, k, _, nr, nt, _ = (int(n) for n in np.shape(obs["channel"]))
        return (b, k, nt, nr, 2)


def _tx_map(tx_of_link: Any) -> np.ndarray:
    """The transmitter map as intp: ``(K,)`` when every sample has the same one (the gather is then one
    index), else ``(B, K)``."""
    tx = np.asarray(tx_of_link)
    tx = tx.astype(np.intp) if tx.dtype.kind != "i" else tx
    if tx.ndim > 1 and tx.shape[0] > 0 and (tx == tx[:1]).all():
        return tx[0]
    return tx


#: the beamforming problem (``l2o_env.problems.PROBLEMS["beamforming"]``)
BEAMFORMING = Beamforming()
