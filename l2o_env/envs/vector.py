"""Native batched vector env: ``B`` networks stepped in one numpy call (no Python loop over envs).

One class for every power-control scenario: ``gym.make_vec(ID, num_envs=B)`` (or
``vectorization_mode="vector_entry_point"``) builds it with the registered ``kwargs={"env_id": ID}``. The batch
axis of the channel model is the env axis: one ``sample_layout(rng, B)``, one ``sample_fading(rng, B)``,
one ``rates.link_rates`` on ``(B, K, K)`` per step. A fixed topology (ad hoc default) is one layout shared
by all ``B`` sub-envs (``layout_seed``), not ``B`` layouts. Its family-free part,
:class:`ScenarioVectorEnv` (autoreset, ``final_obs``, ``reset_mask``), is also the base of the
beamforming vector env (:mod:`l2o_env.envs.beamforming`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from l2o_env.envs.power_control import ScenarioEnvMixin
from l2o_env.envs.render import RENDER_FPS
from l2o_env.validation import integer

__all__ = ["PowerControlVectorEnv", "ScenarioVectorEnv"]


class ScenarioVectorEnv(ScenarioEnvMixin, VectorEnv):
    """``num_envs`` independent copies of the single env of a problem family, batched; subclasses set
    :attr:`problem_name` (:class:`PowerControlVectorEnv`, ``BeamformingVectorEnv``).

    Same spaces (batched), dynamics, reward and keywords as the single env, plus ``num_envs`` and
    ``max_episode_steps``. Each sub-env has its own network (own fading, weights and, with a random
    topology, own layout); with the ad hoc env's ``topology="fixed"`` (its default) every sub-env shares
    the configuration's one layout, drawn from ``layout_seed`` (as ``B`` single envs with the same
    keywords would), and keeps it across resets whatever the seed.

    Autoreset: ``AutoresetMode.SAME_STEP`` (``metadata["autoreset_mode"]``). A sub-env whose episode
    reaches ``max_episode_steps`` slots returns ``truncated=True`` together with the first observation
    of its next episode; the observation it would have shown next is in ``info["final_obs"]`` (an object
    array holding a dict for every truncated sub-env, ``None`` elsewhere; mask ``info["_final_obs"]``),
    as Gymnasium's ``SyncVectorEnv`` does in this mode. Every step is therefore a real slot with a real
    reward (no reward-0 reset steps, which would bias averages of the rate). ``info`` carries ``rates``
    ``(B, K)``, ``sum_rate`` ``(B,)`` and the family's count of feasibility changes (``clipped`` power
    entries, ``projected`` transmitters) ``(B,)`` for every sub-env (masks ``_rates`` ... all True), and
    ``final_info`` repeats them for the truncated sub-envs. ``info`` (of ``reset`` and ``step``) also carries
    the truth of every sub-env's current slot, ``true_<key> (B, ...)`` for every per-slot key (power:
    ``true_gain``, ``true_tx_pos`` ...; beamforming: ``true_channel`` ...; masks ``_true_<key>``), which
    differs from the observation when ``csi_delay`` / ``csi_error`` are set; ``final_info`` has the truth
    beside ``final_obs``. The env never terminates.

    ``reset(options={"reset_mask": mask})`` starts new episodes only where the boolean ``(B,)`` mask is
    True.

    Args:
        env_id: the scenario (a registered ID; ``gym.make_vec`` passes it from the registration).
        num_envs: B >= 1.
        max_episode_steps: slots per episode (registered default 100); None never truncates.
        **kwargs: the keywords of the single env (``num_links``, ``speed``, ``weights`` ...).

    Shapes: actions ``(B, ...)`` (the single env's action with a batch axis); observation keys
    ``(B, ...)``; rewards ``(B,)`` float64.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        env_id: str | None = None,
        num_envs: int = 1,
        max_episode_steps: int | None = 100,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        owner = env_id if isinstance(env_id, str) and env_id else type(self).__name__
        num_envs = integer(owner, "num_envs", num_envs)
        if max_episode_steps is not None:
            max_episode_steps = integer(owner, "max_episode_steps", max_episode_steps)
        self._configure(env_id, render_mode, kwargs, type(self).__name__)
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = self.problem.observation_space(self.config)
        self.single_action_space = self.problem.action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._init_sim(self.num_envs, self.action_space.shape, f"{self.env_id} vector step")
        self._init_picture(self.num_envs)

    def _obs(self) -> dict[str, np.ndarray]:
        return self._sim.observation()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"{self.env_id} vector reset: unknown options {sorted(options)}; only 'reset_mask' is supported")
        if mask is None:
            self._sim.reset(self.np_random)
            if self._picture is not None:
                self._picture.reset()
        else:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(
                    f"{self.env_id} vector reset: options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                    f"got dtype {mask.dtype} shape {mask.shape}"
                )
            if not self._ready:
                raise ValueError(f"{self.env_id} vector reset: a reset_mask needs a full reset() first")
            self._sim.reset(self.np_random, index=np.flatnonzero(mask))
            if self._picture is not None:
                self._picture.reset(np.flatnonzero(mask))
        self._ready = True
        return self._obs(), self._truth_info()

    def _truth_info(self) -> dict[str, Any]:
        """``true_<key>`` of every sub-env's current slot (``(B, ...)``) with its all-True mask ``_true_<key>``."""
        info: dict[str, Any] = self._sim.truth()
        everyone = np.ones(self.num_envs, dtype=np.bool_)
        for key in list(info):
            info[f"_{key}"] = everyone.copy()
        return info

    def true_observation(self) -> dict[str, np.ndarray]:
        """The batched observation an env with perfect CSI would show now (``BatchSim.true_observation``):
        the true current channel of every sub-env, the keys of ``csi_history=1``."""
        return self._sim.true_observation()

    def render(self) -> tuple[np.ndarray, ...] | None:
        """With ``render_mode="rgb_array"``: one RGB frame ``(480, 640, 3)`` uint8 per sub-env, as a tuple
        (Gymnasium's vector convention; each frame as the single env's, so keep ``num_envs`` small when
        rendering every step). Without a render_mode: a warning and None."""
        if self._picture is None:
            gym.logger.warn(f"{self.env_id}: render() without a render_mode returns None; pass render_mode='rgb_array'")
            return None
        if not self._ready:
            raise ValueError(f"{self.env_id}: render() called before reset(); call envs.reset(seed=...) first")
        return tuple(self._frame(i) for i in range(self.num_envs))

    def step(self, actions):
        if not self._ready:
            raise ValueError(f"{self.env_id}: step() called before reset(); call envs.reset(seed=...) first")
        rates, wsr, changed = self._step_batch(actions, self.np_random)
        self._record_step(actions, rates)
        sim = self._sim
        b = self.num_envs
        count = self._count_key
        everyone = np.ones(b, dtype=np.bool_)
        info: dict[str, Any] = {
            "rates": rates,
            "sum_rate": rates.sum(axis=-1),
            count: changed,
            "_rates": everyone,
            "_sum_rate": everyone.copy(),
            f"_{count}": everyone.copy(),
        }
        terminated = np.zeros(b, dtype=np.bool_)
        if self.max_episode_steps is None:
            truncated = np.zeros(b, dtype=np.bool_)
        else:
            truncated = sim.steps >= self.max_episode_steps
        if truncated.any():
            done = np.flatnonzero(truncated)
            final = self._obs()
            final_truth = sim.truth()
            final_obs = np.full(b, None, dtype=object)
            # one dict per finished sub-env, as SyncVectorEnv gives (only at episode ends)
            for i in done:
                final_obs[i] = {key: val[i] for key, val in final.items()}
            info["final_obs"] = final_obs
            info["_final_obs"] = truncated.copy()
            info["final_info"] = {
                "rates": rates.copy(),
                "sum_rate": info["sum_rate"].copy(),
                count: changed.copy(),
                "_rates": truncated.copy(),
                "_sum_rate": truncated.copy(),
                f"_{count}": truncated.copy(),
            }
            for key, val in final_truth.items():  # the truth beside final_obs
                info["final_info"][key] = val
                info["final_info"][f"_{key}"] = truncated.copy()
            info["_final_info"] = truncated.copy()
            sim.reset(self.np_random, index=done)
            if self._picture is not None:
                self._picture.reset(done)
        info.update(self._truth_info())
        return self._obs(), wsr, terminated, truncated, info


class PowerControlVectorEnv(ScenarioVectorEnv):
    """``num_envs`` independent copies of a power-control env (:class:`~l2o_env.envs.power_control.PowerControlEnv`),
    batched (:class:`ScenarioVectorEnv`): actions ``(B, K)`` float32 watts, ``info["clipped"] (B,)``."""

    problem_name = "power"
