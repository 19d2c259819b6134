"""Training data for learned solvers: batches of observations drawn as an env would show them.

Solvers never import an env class; they train from :class:`ObservationSampler` (or
:func:`sample_observations`), which draws from the same channel model, with the same keyword arguments
and the same validation as ``gym.make(env_id, **env_kwargs)``, through the same code: a batch of ``B``
samples is the observation of a :class:`~l2o_env.envs.core.BatchSim` of ``B`` networks right after a
reset (what the vector env shows after ``reset``), converted to float64. The values are therefore the
env's float32 values exactly (gains, weights, positions rounded to float32; noise and pmax too).

Every sample is an independent draw (the ``speed=None`` semantics of the env: a new layout and new
fading per sample), except the ad hoc env's default ``topology="fixed"``: every sample shares the one
layout of the configuration, only the fading changes (as in Chowdhury et al., "Unfolding WMMSE Using
Graph Neural Networks for Efficient Power Allocation", IEEE TWC 2021, arXiv:2009.10812, Sec. IV). That
layout follows the env's rule: ``model.sample_layout(np.random.default_rng(layout_seed), 1)`` with the
``layout_seed`` keyword (default 0), so a sampler and ``gym.make`` with the same keywords see the same
layout, whatever the sampler's ``seed``. Mobility knobs (``speed``, ``slot_duration``) are validated but
do not change the samples (unless the CSI looks back, below): each sample is a draw from the per-slot
distribution. With ``speed=None`` the
first batch of ``ObservationSampler(env_id, seed=s, **kw)(B)`` equals the first observation of
``gym.make_vec(env_id, num_envs=B, **kw).reset(seed=s)`` (float64 instead of float32).

>>> from l2o_env.data import ObservationSampler
>>> sampler = ObservationSampler("PowerControl-IC-v0", seed=0, num_links=20)
>>> batch = sampler(64)
>>> batch["gain"].shape, batch["weight"].shape
((64, 20, 20), (64, 20))
>>> sampler.env_id, sampler.env_kwargs
('PowerControl-IC-v0', {'num_links': 20})
>>> ObservationSampler("Beamforming-IBC-v0", seed=0)(8)["channel"].shape   # (B, K, T, Nr, Nt, 2)
(8, 8, 2, 2, 8, 2)

Aged and noisy channel state (``csi_delay``, ``csi_error``, ``csi_history``; see ``l2o_env.envs.core``):
a sample is the first observation of a fresh episode, which the env builds by simulating the
``csi_delay + csi_history - 1`` earlier slots; when that number is > 0 and ``speed`` is set, the speed
*does* apply (the slots of a sample are correlated as in the env, so an aged observation says something
about the current channel), and the first batch again equals the vector env's first observation. With
``speed=None`` a delayed observation is an independent draw, unrelated to the channel it is scored on.
``sampler(B, with_truth=True)`` returns ``(obs, truth)``: ``truth`` is the perfect-CSI observation of
the same slots (the true current channel; the keys of ``csi_history=1``), so a loss can train on
``Problem.rates(truth, net(obs))`` while the network sees only ``obs``.

>>> obs, truth = ObservationSampler("PowerControl-D2D-v0", seed=0, speed=30.0, slot_duration=1e-3,
...                                 csi_delay=1, csi_history=3)(16, with_truth=True)
>>> obs["gain_history"].shape, truth["gain"].shape, "gain_history" in truth
((16, 3, 50, 50), (16, 50, 50), False)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from l2o_env.envs.core import BatchSim, parse_config
from l2o_env.validation import integer

__all__ = ["ObservationSampler", "sample_observations"]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (so ``env_kwargs`` is plain data)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class ObservationSampler:
    """Draws batches of observations of ``env_id`` (any problem family; float64, leading batch axis).

    Args:
        env_id: a registered ID, e.g. ``"PowerControl-IMAC-v0"`` or ``"Beamforming-IBC-v0"`` (see
            ``l2o_env.scenarios.ENV_IDS``).
        seed: seed of the sampler's own ``np.random.Generator``; the same seed gives the same batches.
            It drives the fading, the weights and a random topology's layouts only: a fixed topology's
            layout comes from ``layout_seed`` (default 0), as in the env.
        **env_kwargs: the keyword arguments of ``gym.make(env_id, ...)`` (``num_links``, ``num_cells``,
            ``density``, ``noise``, ``pmax``, ``snr_db``, ``weights``, ``topology``, ``layout_seed``,
            model knobs such as ``scale`` or ``num_antennas`` ...).
            ``weights="random"`` draws U[0, 1] weights per sample and link; ``"proportional_fair"``
            depends on an episode's rate history and is refused here.

    Returns (``sampler(batch)``): a dict with exactly the env's observation keys, as float64 arrays
    holding the env's float32 values. Power control: ``gain (B, K, K)``, ``weight (B, K)``, ``noise
    (B, K)`` (W), ``pmax (B, K)`` (W); geometric envs add ``tx_pos`` and ``rx_pos`` ``(B, K, 2)`` in
    metres; the IMAC adds ``bs_gain (B, N, K)``. Beamforming: ``channel (B, K, T, Nr, Nt, 2)``,
    ``tx_of_link``, ``weight``, ``noise`` ``(B, K)``, ``pmax (B, T)``, and ``tx_pos (B, T, 2)``,
    ``rx_pos (B, K, 2)`` where the env has geometry.

    Attributes:
        env_id: the scenario (the registered ID without a ``module:`` prefix).
        env_kwargs: the keyword arguments it was built with, as a plain dict (numpy scalars and arrays
            converted to Python numbers and lists): ``gym.make(env_id, **env_kwargs)`` is the env it
            samples from, and a checkpoint trained from it records them as ``meta["env_kwargs"]``.
        seed: the seed.
        config: the validated :class:`~l2o_env.envs.core.EnvConfig`.
        observation_keys: the keys of every batch.

    ``sampler(batch, with_truth=False)``: the batch; ``with_truth=True`` returns ``(obs, truth)``, where
    ``truth`` has the keys of the observation without a history (``csi_history=1``) and the true current
    channel in place of the observed one (equal to ``obs`` but for the history when the CSI is perfect).
    """

    def __init__(self, env_id: str, seed: int = 0, **env_kwargs: Any):
        seed = integer("ObservationSampler", "seed", seed, minimum=0)
        self.config = parse_config(env_id, **env_kwargs)
        if self.config.weights == "proportional_fair":
            raise ValueError(
                f"ObservationSampler({self.config.env_id!r}): weights='proportional_fair' depends on the rate "
                "history of an episode, which independent samples do not have; use weights='random' "
                "(U[0,1] per link) to train for arbitrary weights, or step the env"
            )
        self.env_id = self.config.env_id
        self.env_kwargs = {key: _plain(val) for key, val in env_kwargs.items()}
        self.seed = seed
        self.observation_keys = self.config.observation_keys
        self._rng = np.random.default_rng(self.seed)
        # every sample is a fresh slot: the speed=None dynamics whatever the speed knob says (a fixed
        # topology keeps the configuration's layout, from layout_seed, never from `seed`), unless the
        # observation looks back at earlier slots (a CSI delay or history), whose correlation with the
        # current slot is what the speed sets
        self._sim_config = self.config
        if self.config.csi_delay + self.config.csi_history == 1 or self.config.speed is None:
            self._sim_config = dataclasses.replace(self.config, speed=None, fading_correlation=None)
        self._sim: BatchSim | None = None

    def __call__(self, batch: int, with_truth: bool = False):
        batch = integer("ObservationSampler", "batch", batch)
        if not isinstance(with_truth, (bool, np.bool_)):
            raise ValueError(f"ObservationSampler: with_truth must be True or False, got {with_truth!r}")
        if self._sim is None or self._sim.batch != batch:
            self._sim = BatchSim(self._sim_config, batch)
        self._sim.reset(self._rng)
        obs = {key: val.astype(np.float64) for key, val in self._sim.observation().items()}
        if not with_truth:
            return obs
        return obs, {key: val.astype(np.float64) for key, val in self._sim.true_observation().items()}

    def __repr__(self) -> str:
        return f"ObservationSampler({self.env_id!r}, seed={self.seed}, K={self.config.num_links})"


def sample_observations(env_id: str, batch: int, seed: int = 0, **env_kwargs: Any) -> dict[str, np.ndarray]:
    """One batch of ``batch`` observations: ``ObservationSampler(env_id, seed, **env_kwargs)(batch)``."""
    return ObservationSampler(env_id, seed=seed, **env_kwargs)(batch)
