"""Training data for learned solvers: batches of observations drawn as an env would show them.

Solvers never import an env class; they train from :class:`ObservationSampler` (or
:func:`sample_observations`), which draws from the same channel model, with the same keyword arguments
and the same validation as ``gym.make(env_id, **env_kwargs)``.

Every sample is an independent draw (the ``speed=None`` semantics of the env: a new layout and new
fading per sample), except the ad hoc env's default ``topology="fixed"``: every sample shares the one
layout of the configuration, only the fading changes (as in Chowdhury et al., "Unfolding WMMSE Using
Graph Neural Networks for Efficient Power Allocation", IEEE TWC 2021, arXiv:2009.10812, Sec. IV). That
layout follows the env's rule: ``model.sample_layout(np.random.default_rng(layout_seed), 1)`` with the
``layout_seed`` keyword (default 0), so a sampler and ``gym.make`` with the same keywords see the same
layout, whatever the sampler's ``seed``. Mobility knobs (``speed``, ``slot_duration``) are validated but
do not change the samples: each sample is a draw from the per-slot distribution.

>>> from l2o_env.data import ObservationSampler
>>> sampler = ObservationSampler("PowerControl-IC-v0", seed=0, num_links=20)
>>> batch = sampler(64)
>>> batch["gain"].shape, batch["weight"].shape
((64, 20, 20), (64, 20))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from l2o_env.envs.core import F32_MAX, parse_config

__all__ = ["ObservationSampler", "sample_observations"]


class ObservationSampler:
    """Draws batches of power-control observations of ``env_id`` (float64, leading batch axis).

    Args:
        env_id: a registered ID, e.g. ``"PowerControl-IMAC-v0"`` (see ``l2o_env.scenarios.ENV_IDS``).
        seed: seed of the sampler's own ``np.random.Generator``; the same seed gives the same batches.
            It drives the fading, the weights and a random topology's layouts only: a fixed topology's
            layout comes from ``layout_seed`` (default 0), as in the env.
        **env_kwargs: the keyword arguments of ``gym.make(env_id, ...)`` (``num_links``, ``num_cells``,
            ``density``, ``noise``, ``pmax``, ``snr_db``, ``weights``, ``topology``, ``layout_seed``,
            model knobs ...).
            ``weights="random"`` draws U[0, 1] weights per sample and link; ``"proportional_fair"``
            depends on an episode's rate history and is refused here.

    Returns (``sampler(batch)``): a dict with exactly the env's observation keys, as float64 arrays:
        ``gain (B, K, K)``, ``weight (B, K)``, ``noise (B, K)`` (W), ``pmax (B, K)`` (W); geometric envs
        add ``tx_pos`` and ``rx_pos`` ``(B, K, 2)`` in metres; the IMAC adds ``bs_gain (B, N, K)``.

    Attributes:
        config: the validated :class:`~l2o_env.envs.core.EnvConfig`.
        observation_keys: the keys of every batch.
    """

    def __init__(self, env_id: str, seed: int = 0, **env_kwargs: Any):
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"ObservationSampler: seed must be an integer >= 0, got {seed!r}")
        self.config = parse_config(env_id, **env_kwargs)
        if self.config.weights == "proportional_fair":
            raise ValueError(
                f"ObservationSampler({self.config.env_id!r}): weights='proportional_fair' depends on the rate "
                "history of an episode, which independent samples do not have; use weights='random' "
                "(U[0,1] per link) to train for arbitrary weights, or step the env"
            )
        self.env_id = self.config.env_id
        self.seed = int(seed)
        self.observation_keys = self.config.observation_keys
        self._rng = np.random.default_rng(self.seed)
        # the configuration's fixed layout (from layout_seed, never from `seed`; read-only, shared)
        self._fixed = self.config.fixed_layout

    def __call__(self, batch: int) -> dict[str, np.ndarray]:
        if isinstance(batch, (bool, np.bool_)) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"ObservationSampler: batch must be an integer >= 1, got {batch!r}")
        cfg, model, rng = self.config, self.config.model, self._rng
        batch = int(batch)
        if self._fixed is not None:
            layout = self._fixed.take(np.zeros(batch, dtype=np.intp))
        else:
            layout = model.sample_layout(rng, batch)
        fading = model.sample_fading(rng, batch)
        k = cfg.num_links
        out = {"gain": np.minimum(model.gain(layout, fading), F32_MAX)}
        if cfg.weights == "random":
            out["weight"] = rng.random((batch, k))
        else:
            out["weight"] = np.ones((batch, k))
        out["noise"] = np.tile(cfg.noise, (batch, 1))
        out["pmax"] = np.tile(cfg.pmax, (batch, 1))
        if cfg.has_geometry:
            out["tx_pos"] = np.array(layout.tx_pos, dtype=np.float64)
            out["rx_pos"] = np.array(layout.rx_pos, dtype=np.float64)
        for key, val in model.observation_extras(layout, fading).items():
            out[key] = np.minimum(np.asarray(val, dtype=np.float64), F32_MAX)
        return out

    def __repr__(self) -> str:
        return f"ObservationSampler({self.env_id!r}, seed={self.seed}, K={self.config.num_links})"


def sample_observations(env_id: str, batch: int, seed: int = 0, **env_kwargs: Any) -> dict[str, np.ndarray]:
    """One batch of ``batch`` observations: ``ObservationSampler(env_id, seed, **env_kwargs)(batch)``."""
    return ObservationSampler(env_id, seed=seed, **env_kwargs)(batch)
