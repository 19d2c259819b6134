"""Wrappers for RL libraries. :class:`FlattenPowerControl` and :class:`FlattenBeamforming` turn a
power-control or beamforming env into the flat Box-in / Box-out env that stable-baselines3 prefers (its
``check_env`` passes through them); :class:`l2o_env.sb3.SB3VecEnv` (also importable from here, needs the
``rl`` extra) presents the native batched vector env as an SB3 ``VecEnv`` with the same transforms.

The transforms are plain functions on dicts of arrays (any leading batch axes), so the same observation
transform applies to data that no env produced (e.g. an ``ObservationSampler`` batch):

- :func:`flatten_observation`: ``gain (..., K, K)``, ``weight``, ``noise``, ``pmax`` ``(..., K)`` ->
  ``(..., K*K + K)`` float32;
- :func:`action_to_power`: ``a`` in ``[-1, 1]^K`` -> powers ``pmax (a + 1) / 2`` in watts;
- :func:`flatten_beamforming_observation`: ``channel (..., K, T, Nr, Nt, 2)``, ``weight``, ``noise``
  ``(..., K)``, ``pmax (..., T)`` -> ``(..., 3 K T Nr Nt + K)`` float32;
- :func:`per_link_observation`: the local view of every link, ``(..., K, F)`` float32 with ``F`` independent
  of ``K`` (the per-link shared-policy formulation of the RL solvers);
- :func:`action_to_precoders` / :func:`precoders_to_action`: ``a`` in ``[-1, 1]^(K Nt d 2)`` <-> feasible
  precoders (each transmitter's part of ``a`` scaled into the unit ball, times ``sqrt(pmax_t)``).
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from l2o_env.problems.beamforming import BEAMFORMING_KEYS
from l2o_env.problems.power import POWER_KEYS

__all__ = [
    "FlattenPowerControl",
    "FlattenBeamforming",
    "SB3VecEnv",
    "flatten_observation",
    "action_to_power",
    "power_to_action",
    "flatten_beamforming_observation",
    "action_to_precoders",
    "precoders_to_action",
    "flatten_family_observation",
    "flat_action_to_native",
    "per_link_observation",
    "per_link_size",
    "PER_LINK_NEIGHBORS",
    "PER_LINK_CLIP",
    "LOG_SCALE",
    "LOG_CLIP",
]

#: the gain features are log10(SNR) / LOG_SCALE: one unit = 100 dB
LOG_SCALE = 10.0
#: features are clipped to [-LOG_CLIP, LOG_CLIP] (+-200 dB), so the Box is bounded
LOG_CLIP = 2.0
_SNR_FLOOR = 10.0 ** (-LOG_CLIP * LOG_SCALE)


def flatten_observation(obs: Mapping[str, Any]) -> np.ndarray:
    r"""The flat float32 feature vector of a power-control observation (any leading batch axes).

    Features, in this order:

    - ``K*K`` gain features, row-major (receiver ``i``, transmitter ``j``): the received SNR at full
      power on a log scale, :math:`x_{ij} = \mathrm{clip}(\log_{10}(g_{ij} p^{max}_j / \sigma_i^2) / 10,
      -2, 2)` (one unit = 100 dB), so that gains spanning many decades (D2D, ad hoc) become O(1);
    - ``K`` weight features ``w_i / max_j w_j`` in ``[0, 1]`` (the optimal powers do not change when all
      weights are scaled; an all-zero weight vector maps to zeros).

    Other keys (positions, ``bs_gain``) are not used: the gain matrix already holds what the reward
    depends on.

    Shapes: ``gain (..., K, K)``, ``weight``/``noise``/``pmax`` ``(..., K)`` -> ``(..., K*K + K)``.
    """
    gain = np.asarray(obs["gain"], dtype=np.float64)
    k = gain.shape[-1]
    noise = np.asarray(obs["noise"], dtype=np.float64)
    pmax = np.asarray(obs["pmax"], dtype=np.float64)
    weight = np.asarray(obs["weight"], dtype=np.float64)
    with np.errstate(over="ignore"):  # an overflow is inf, clipped below; pmax / noise first could give 0 x inf
        snr = (gain * pmax[..., None, :]) / noise[..., :, None]
    feat = np.clip(np.log10(np.maximum(snr, _SNR_FLOOR)) / LOG_SCALE, -LOG_CLIP, LOG_CLIP)
    wmax = weight.max(axis=-1, keepdims=True)
    wfeat = np.where(wmax > 0, weight / np.where(wmax > 0, wmax, 1.0), 0.0)
    lead = gain.shape[:-2]
    return np.concatenate([feat.reshape(*lead, k * k), wfeat], axis=-1).astype(np.float32)


#: how many strongest interferers and strongest victims each link sees in :func:`per_link_observation`
PER_LINK_NEIGHBORS = 5


#: per-link features are log10(SNR) / PER_LINK_LOG_SCALE (one unit = 20 dB, finer than the flat transform's
#: 100 dB: Rayleigh gains spread over ~30 dB and a per-link policy must tell them apart), clipped to +-10
PER_LINK_LOG_SCALE = 2.0
PER_LINK_CLIP = 10.0


def _log_feature(snr: np.ndarray) -> np.ndarray:
    return np.clip(np.log10(np.maximum(snr, 1e-300)) / PER_LINK_LOG_SCALE, -PER_LINK_CLIP, PER_LINK_CLIP)


def per_link_size(neighbors: int = PER_LINK_NEIGHBORS) -> int:
    """The number of features per link of :func:`per_link_observation`: ``4 + 5 * neighbors``."""
    return 4 + 5 * int(neighbors)


def per_link_observation(obs: Mapping[str, Any], neighbors: int = PER_LINK_NEIGHBORS) -> np.ndarray:
    r"""The local view of every link of a power-control observation: ``(..., K, 4 + 5 c)`` float32, ``c =
    neighbors``; the same ``F`` for every ``K``, so one policy serves any network size.

    After the local state of Nasir and Guo, "Multi-agent deep reinforcement learning for dynamic power
    allocation in wireless networks", IEEE JSAC 2019, Sec. III-B (own channel, the interferers that hurt
    it most, the neighbours it hurts most), restricted to what the observation holds (their last power and
    rate are not in it: a solver acts on the observation alone). For link ``i``, with every SNR-like term at
    full power on a log scale, ``clip(log10(x) / 2, -10, 10)`` (one unit = 20 dB), and weights divided by
    the network's largest weight:

    - 4 own features: direct SNR ``g_ii pmax_i / s_i``; interference received ``sum_{j!=i} g_ij pmax_j /
      s_i``; interference caused ``sum_{j!=i} g_ji pmax_i / s_j``; own weight;
    - ``c`` strongest interferers ``j`` (by ``g_ij pmax_j / s_i``, descending): that term and ``w_j``;
    - ``c`` strongest victims ``j`` (by ``g_ji pmax_i / s_j``, descending): that term, the victim's direct SNR
      ``g_jj pmax_j / s_j`` and ``w_j``.

    With fewer than ``c`` other links the missing neighbours are ``-10`` (no signal) with weight 0.
    """
    gain = np.asarray(obs["gain"], dtype=np.float64)
    k = gain.shape[-1]
    c = int(neighbors)
    if c < 0:
        raise ValueError(f"per_link_observation: neighbors must be >= 0, got {neighbors}")
    noise = np.asarray(obs["noise"], dtype=np.float64)
    pmax = np.asarray(obs["pmax"], dtype=np.float64)
    weight = np.asarray(obs["weight"], dtype=np.float64)
    wmax = weight.max(axis=-1, keepdims=True)
    wn = np.where(wmax > 0, weight / np.where(wmax > 0, wmax, 1.0), 0.0)
    with np.errstate(over="ignore"):  # snr[i, j]: j's full power at receiver i, over s_i (inf is clipped)
        snr = (gain * pmax[..., None, :]) / noise[..., :, None]
    direct = np.diagonal(snr, axis1=-2, axis2=-1)
    cross = snr * (1.0 - np.eye(k))
    lead = gain.shape[:-2]
    received, caused = cross, np.swapaxes(cross, -1, -2)  # caused[i, j] = snr[j, i]: what i does to j
    own = [_log_feature(direct), _log_feature(received.sum(-1)), _log_feature(caused.sum(-1)), wn]
    out = [np.stack(own, axis=-1)]
    if c:
        m = min(c, k - 1)
        # the diagonal is 0 in cross: order by value with the own link forced last
        rank_key = np.where(np.eye(k, dtype=bool), -np.inf, cross)
        top_rx = np.argsort(-rank_key, axis=-1, kind="stable")[..., :m]
        top_tx = np.argsort(-np.swapaxes(rank_key, -1, -2), axis=-1, kind="stable")[..., :m]
        w_b = np.broadcast_to(wn[..., None, :], (*lead, k, k))
        d_b = np.broadcast_to(direct[..., None, :], (*lead, k, k))
        rx = [_log_feature(np.take_along_axis(received, top_rx, -1)), np.take_along_axis(w_b, top_rx, -1)]
        tx = [_log_feature(np.take_along_axis(caused, top_tx, -1)), _log_feature(np.take_along_axis(d_b, top_tx, -1)),
              np.take_along_axis(w_b, top_tx, -1)]
        pad = c - m
        if pad:
            fill = [np.full((*lead, k, pad), v) for v in (-PER_LINK_CLIP, 0.0, -PER_LINK_CLIP, -PER_LINK_CLIP, 0.0)]
            rx = [np.concatenate([a, f], -1) for a, f in zip(rx, fill[:2])]
            tx = [np.concatenate([a, f], -1) for a, f in zip(tx, fill[2:])]
        out += [np.stack(rx, -1).reshape(*lead, k, 2 * c), np.stack(tx, -1).reshape(*lead, k, 3 * c)]
    return np.concatenate(out, axis=-1).astype(np.float32)


def action_to_power(action: Any, pmax: Any) -> np.ndarray:
    """Affine map of ``action`` in ``[-1, 1]`` to powers ``pmax (a + 1) / 2`` in watts (float64).

    Values outside ``[-1, 1]`` map outside ``[0, pmax]``; the env clips them and counts them in
    ``info["clipped"]``.
    """
    return np.asarray(pmax, dtype=np.float64) * (np.asarray(action, dtype=np.float64) + 1.0) * 0.5


def power_to_action(power: Any, pmax: Any) -> np.ndarray:
    """Inverse of :func:`action_to_power`: ``2 p / pmax - 1`` (float32)."""
    return (2.0 * np.asarray(power, dtype=np.float64) / np.asarray(pmax, dtype=np.float64) - 1.0).astype(np.float32)


class FlattenPowerControl(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Flat observations and a ``[-1, 1]`` action Box for stable-baselines3 (or any RL library).

    - observation: ``Box(-2, 2, (K*K + K,), float32)`` from :func:`flatten_observation` (log-scaled
      SNR features of the gain matrix, then the weights normalised by their maximum);
    - action: ``Box(-1, 1, (K,), float32)``, mapped affinely to ``[0, pmax]`` watts by
      :func:`action_to_power` before the wrapped env sees it.

    Reward, termination, truncation and ``info`` (per-link ``rates``, ``sum_rate``, ``clipped``) are
    the wrapped env's, unchanged: the reward is still the weighted sum rate in bit/s/Hz.

    >>> import gymnasium as gym, l2o_env
    >>> from l2o_env.wrappers import FlattenPowerControl
    >>> env = FlattenPowerControl(gym.make("PowerControl-IC-v0", num_links=10))
    >>> env.observation_space.shape, env.action_space.shape
    ((110,), (10,))

    Args:
        env: a power-control env (``gym.make("PowerControl-...-v0")``), wrapped or not.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or not set(POWER_KEYS) <= set(space.spaces):
            raise ValueError(
                "FlattenPowerControl: env must have a power-control Dict observation space with keys "
                f"gain/weight/noise/pmax, got {space}"
            )
        k = space["gain"].shape[-1]
        self.num_links = k
        self.observation_space = spaces.Box(-LOG_CLIP, LOG_CLIP, (k * k + k,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (k,), np.float32)
        self._pmax = np.asarray(env.action_space.high, dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return flatten_observation(obs), info

    def step(self, action):
        if np.shape(action) != (self.num_links,):
            raise ValueError(
                f"FlattenPowerControl.step: action must have shape ({self.num_links},) in [-1, 1], got {np.shape(action)}"
            )
        try:
            power = action_to_power(action, self._pmax)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"FlattenPowerControl.step: action must be numeric, got {action!r}") from exc
        obs, reward, terminated, truncated, info = self.env.step(power)
        return flatten_observation(obs), reward, terminated, truncated, info


# --- beamforming -------------------------------------------------------------------------------
#: :func:`action_to_precoders` puts a transmitter whose action has norm >= 1 at (1 - 2^-41) of its
#: budget, so that rounding never makes the env count a projection
_BUDGET_SHRINK = 1.0 - 2.0**-41


def flatten_beamforming_observation(obs: Mapping[str, Any]) -> np.ndarray:
    r"""The flat float32 feature vector of a beamforming observation (any leading batch axes).

    The channel entries are tiny (path loss), so each is first scaled to the receiver's SNR scale,
    :math:`z = h_{k,t} \sqrt{p^{max}_t / \sigma_k^2}` (``|z|^2`` is the SNR at receiver ``k`` of
    transmitter ``t``'s whole budget on one antenna pair), then written as three bounded features:

    - ``clip(log10(|z|^2) / 10, -2, 2)`` (one unit = 100 dB, as :func:`flatten_observation`);
    - ``cos(arg z)``, ``sin(arg z)`` (``1, 0`` for ``z = 0``).

    Features, in this order: the ``3 K T Nr Nt`` channel features (``channel`` axes ``(K, T, Nr, Nt)``
    row-major, the three features last), then ``K`` weight features ``w_k / max_j w_j`` in ``[0, 1]``.
    The noise and the budgets enter through the scaling; ``tx_of_link`` (fixed by the scenario), the
    positions and ``channel_history`` are not used.

    Shapes: ``channel (..., K, T, Nr, Nt, 2)``, ``weight``/``noise (..., K)``, ``pmax (..., T)`` ->
    ``(..., 3 K T Nr Nt + K)``.
    """
    ch = np.asarray(obs["channel"], dtype=np.float64)
    noise = np.asarray(obs["noise"], dtype=np.float64)
    pmax = np.asarray(obs["pmax"], dtype=np.float64)
    weight = np.asarray(obs["weight"], dtype=np.float64)
    lead = ch.shape[:-5]
    re, im = ch[..., 0], ch[..., 1]
    mag2 = re * re + im * im  # (..., K, T, Nr, Nt)
    with np.errstate(over="ignore"):  # an overflow is inf, clipped below
        snr = (mag2 * pmax[..., None, :, None, None]) / noise[..., :, None, None, None]
    logf = np.clip(np.log10(np.maximum(snr, _SNR_FLOOR)) / LOG_SCALE, -LOG_CLIP, LOG_CLIP)
    mag = np.sqrt(mag2)
    pos = mag > 0
    safe = np.where(pos, mag, 1.0)
    cos = np.where(pos, re / safe, 1.0)
    sin = np.where(pos, im / safe, 0.0)
    feat = np.stack([logf, cos, sin], axis=-1).reshape(*lead, -1)
    wmax = weight.max(axis=-1, keepdims=True)
    wfeat = np.where(wmax > 0, weight / np.where(wmax > 0, wmax, 1.0), 0.0)
    return np.concatenate([feat, wfeat], axis=-1).astype(np.float32)


def _per_link(per_tx: np.ndarray, tx_of_link: Any) -> np.ndarray:
    """``per_tx (..., T)`` -> ``(..., K)``: each link's transmitter's value."""
    tx = np.asarray(tx_of_link)
    tx = tx.astype(np.intp) if tx.dtype.kind != "i" else tx
    lead = np.broadcast_shapes(per_tx.shape[:-1], tx.shape[:-1])
    return np.take_along_axis(np.broadcast_to(per_tx, (*lead, per_tx.shape[-1])), np.broadcast_to(tx, (*lead, tx.shape[-1])), axis=-1)


def _tx_norms(x: np.ndarray, tx_of_link: Any, num_tx: int) -> np.ndarray:
    """Euclidean norm of each transmitter's part of ``x (..., K, Nt, d, 2)`` -> ``(..., T)``."""
    tx = np.asarray(tx_of_link)
    tx = tx.astype(np.intp) if tx.dtype.kind != "i" else tx
    onehot = (tx[..., :, None] == np.arange(num_tx)).astype(np.float64)
    per_link = np.einsum("...kndc,...kndc->...k", x, x)
    return np.sqrt(np.einsum("...k,...kt->...t", per_link, onehot))


def action_to_precoders(action: Any, pmax: Any, tx_of_link: Any) -> np.ndarray:
    r"""Map ``action`` in ``[-1, 1]`` onto the feasible precoders (float64, same shape).

    ``action (..., K, Nt, d, 2)`` (the flat action of :class:`FlattenBeamforming` reshaped), ``pmax
    (..., T)``, ``tx_of_link (K,)`` or ``(..., K)``. Transmitter ``t``'s part ``a_t`` (the actions of its
    links) becomes :math:`V_t = \sqrt{p^{max}_t}\, a_t / \max(1, \lVert a_t \rVert)`: an action of
    norm 1 per transmitter uses the whole budget (up to a factor ``1 - 2^-41``, so that rounding never
    exceeds it), a larger one is scaled back onto it, a smaller one uses ``||a_t||^2`` of it. The map is
    onto the feasible set (the unit ball lies in the cube), and :func:`precoders_to_action` inverts it on
    the ball ``||a_t|| <= 1``.
    """
    a = np.asarray(action, dtype=np.float64)
    pmax = np.asarray(pmax, dtype=np.float64)
    norm = _tx_norms(a, tx_of_link, pmax.shape[-1])
    scale = np.sqrt(pmax) * np.where(norm >= 1.0, _BUDGET_SHRINK / np.maximum(norm, 1.0), 1.0)
    return a * _per_link(scale, tx_of_link)[..., None, None, None]


def precoders_to_action(precoders: Any, pmax: Any, tx_of_link: Any) -> np.ndarray:
    """Inverse of :func:`action_to_precoders` on feasible precoders: ``V_t / sqrt(pmax_t)``, clipped to
    ``[-1, 1]`` (float32, same shape ``(..., K, Nt, d, 2)``)."""
    v = np.asarray(precoders, dtype=np.float64)
    pmax = np.asarray(pmax, dtype=np.float64)
    inv = 1.0 / np.sqrt(np.where(pmax > 0, pmax, 1.0))
    return np.clip(v * _per_link(inv, tx_of_link)[..., None, None, None], -1.0, 1.0).astype(np.float32)


class FlattenBeamforming(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Flat observations and a ``[-1, 1]`` action Box for a beamforming env (stable-baselines3 or any RL
    library).

    - observation: ``Box(-2, 2, (3 K T Nr Nt + K,), float32)`` from
      :func:`flatten_beamforming_observation` (log-SNR magnitude and phase of every channel entry, then
      the weights normalised by their maximum);
    - action: ``Box(-1, 1, (K Nt d 2,), float32)``, reshaped to ``(K, Nt, d, 2)`` and mapped onto the
      per-transmitter power ball by :func:`action_to_precoders` (with the budgets and ``tx_of_link`` of
      the last observation) before the wrapped env sees it, so the env never projects.

    Reward, termination, truncation and ``info`` are the wrapped env's, unchanged.

    >>> import gymnasium as gym, l2o_env
    >>> from l2o_env.wrappers import FlattenBeamforming
    >>> env = FlattenBeamforming(gym.make("Beamforming-MISO-v0"))
    >>> env.observation_space.shape, env.action_space.shape
    ((52,), (32,))
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or not set(BEAMFORMING_KEYS) <= set(space.spaces):
            raise ValueError(
                "FlattenBeamforming: env must have a beamforming Dict observation space with keys "
                f"{'/'.join(BEAMFORMING_KEYS)}, got {space}"
            )
        k, t, nr, nt, _ = space["channel"].shape
        self.num_links = k
        self.precoder_shape = tuple(env.action_space.shape)  # (K, Nt, d, 2)
        n_obs = 3 * k * t * nr * nt + k
        self.observation_space = spaces.Box(-LOG_CLIP, LOG_CLIP, (n_obs,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (int(np.prod(self.precoder_shape)),), np.float32)
        self._pmax: np.ndarray | None = None
        self._tx: np.ndarray | None = None

    def _remember(self, obs: Mapping[str, Any]) -> np.ndarray:
        self._pmax = np.asarray(obs["pmax"], dtype=np.float64)
        self._tx = np.asarray(obs["tx_of_link"]).astype(np.intp)
        return flatten_beamforming_observation(obs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._remember(obs), info

    def step(self, action):
        if self._pmax is None:
            raise ValueError("FlattenBeamforming.step: call reset() first")
        if np.shape(action) != self.action_space.shape:
            raise ValueError(
                f"FlattenBeamforming.step: action must have shape {self.action_space.shape} in [-1, 1], got {np.shape(action)}"
            )
        try:
            a = np.asarray(action, dtype=np.float64).reshape(self.precoder_shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"FlattenBeamforming.step: action must be numeric, got {action!r}") from exc
        obs, reward, terminated, truncated, info = self.env.step(action_to_precoders(a, self._pmax, self._tx))
        return self._remember(obs), reward, terminated, truncated, info


def flatten_family_observation(obs: Mapping[str, Any], family: str) -> np.ndarray:
    """The flat features of a (batched) observation of problem ``family`` (``"power"`` or ``"beamforming"``):
    :func:`flatten_observation` or :func:`flatten_beamforming_observation`."""
    if family == "power":
        return flatten_observation(obs)
    if family == "beamforming":
        return flatten_beamforming_observation(obs)
    raise ValueError(f"no flat transform for problem family {family!r}; allowed: 'power', 'beamforming'")


def flat_action_to_native(action: Any, obs: Mapping[str, Any], family: str) -> np.ndarray:
    """A flat ``[-1, 1]`` action ``(B, n)`` -> the env's action for the batched observation ``obs`` of
    ``family``: powers (:func:`action_to_power`) or precoders of the observation's shape
    (:func:`action_to_precoders`)."""
    if family == "power":
        return action_to_power(action, obs["pmax"])
    if family == "beamforming":
        b, k, _, nr, nt, _ = np.shape(obs["channel"])
        return action_to_precoders(np.reshape(action, (b, k, nt, nr, 2)), obs["pmax"], obs["tx_of_link"])
    raise ValueError(f"no flat action map for problem family {family!r}; allowed: 'power', 'beamforming'")


def __getattr__(name: str) -> Any:
    # SB3VecEnv lives in l2o_env.sb3 (it subclasses SB3's VecEnv): imported on first use only, so that
    # importing l2o_env.wrappers never imports stable_baselines3
    if name == "SB3VecEnv":
        from l2o_env.sb3 import SB3VecEnv

        return SB3VecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
