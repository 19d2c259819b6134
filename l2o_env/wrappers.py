"""Wrappers for RL libraries. :class:`FlattenPowerControl` turns a power-control env into the flat
Box-in / Box-out env that stable-baselines3 prefers (its ``check_env`` passes through it).

The transforms are plain functions on dicts of arrays (any leading batch axes), so the same observation
transform applies to data that no env produced (e.g. an ``ObservationSampler`` batch):

- :func:`flatten_observation`: ``gain (..., K, K)``, ``weight``, ``noise``, ``pmax`` ``(..., K)`` ->
  ``(..., K*K + K)`` float32;
- :func:`action_to_power`: ``a`` in ``[-1, 1]^K`` -> powers ``pmax (a + 1) / 2`` in watts.
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from l2o_env.problems.power import POWER_KEYS

__all__ = ["FlattenPowerControl", "flatten_observation", "action_to_power", "power_to_action", "LOG_SCALE", "LOG_CLIP"]

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
    snr = gain * (pmax[..., None, :] / noise[..., :, None])
    feat = np.clip(np.log10(np.maximum(snr, _SNR_FLOOR)) / LOG_SCALE, -LOG_CLIP, LOG_CLIP)
    wmax = weight.max(axis=-1, keepdims=True)
    wfeat = np.where(wmax > 0, weight / np.where(wmax > 0, wmax, 1.0), 0.0)
    lead = gain.shape[:-2]
    return np.concatenate([feat.reshape(*lead, k * k), wfeat], axis=-1).astype(np.float32)


def action_to_power(action: Any, pmax: Any) -> np.ndarray:
    """Affine map of ``action`` in ``[-1, 1]`` to powers ``pmax (a + 1) / 2`` in watts (float64).

    Values outside ``[-1, 1]`` map outside ``[0, pmax]``; the env clips them and counts them in
    ``info["clipped"]``.
    """
    return np.asarray(pmax, dtype=np.float64) * (np.asarray(action, dtype=np.float64) + 1.0) * 0.5


def power_to_action(power: Any, pmax: Any) -> np.ndarray:
    """Inverse of :func:`action_to_power`: ``2 p / pmax - 1`` (float32)."""
    return (2.0 * np.asarray(power, dtype=np.float64) / np.asarray(pmax, dtype=np.float64) - 1.0).astype(np.float32)


class FlattenPowerControl(gym.Wrapper):
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
        super().__init__(env)
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
