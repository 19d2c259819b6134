"""The native batched vector env as a stable-baselines3 ``VecEnv`` (needs the ``rl`` extra).

:class:`SB3VecEnv` steps ``num_envs`` networks in one numpy call (:class:`~l2o_env.envs.vector.ScenarioVectorEnv`)
and applies the wrappers' transforms batched (:func:`~l2o_env.wrappers.flatten_observation` /
:func:`~l2o_env.wrappers.action_to_power` for power control, :func:`~l2o_env.wrappers.flatten_beamforming_observation`
/ :func:`~l2o_env.wrappers.action_to_precoders` for beamforming), so SB3 trains from the fast native batch
instead of a ``DummyVecEnv`` of single envs:

>>> from stable_baselines3 import PPO
>>> from l2o_env.sb3 import SB3VecEnv
>>> venv = SB3VecEnv("PowerControl-IC-v0", num_envs=16, seed=0)
>>> model = PPO("MlpPolicy", venv, n_steps=8, batch_size=64, verbose=0).learn(256)  # doctest: +SKIP

Importing this module imports stable_baselines3; ``import l2o_env`` does not.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv
except ImportError as exc:  # pragma: no cover - exercised with a monkeypatched import
    raise ImportError(
        'l2o_env.sb3 (SB3VecEnv) needs stable-baselines3: pip install "l2o-env[rl]"'
    ) from exc

from l2o_env.rates import interference_prices
from l2o_env.wrappers import (
    LOG_CLIP,
    PER_LINK_CLIP,
    PER_LINK_NEIGHBORS,
    action_to_power,
    flat_action_to_native,
    flatten_family_observation,
    per_link_observation,
    per_link_size,
)

__all__ = ["SB3VecEnv", "SB3PerLinkVecEnv", "PER_LINK_REWARDS"]

#: per-link rewards of :class:`SB3PerLinkVecEnv`
PER_LINK_REWARDS = ("prices", "shared")


class SB3VecEnv(VecEnv):
    """A stable-baselines3 ``VecEnv`` over the native vector env of ``env_id``.

    With ``flatten=True`` (the default) observations and actions are those of
    :class:`~l2o_env.wrappers.FlattenPowerControl` / :class:`~l2o_env.wrappers.FlattenBeamforming`
    (flat float32 features in ``[-2, 2]``, actions in ``[-1, 1]``), computed for the whole batch at once;
    with ``flatten=False`` the native Dict observations and actions (watts / precoders) pass through (use
    ``MultiInputPolicy``; SB3 will warn about the asymmetric action Box).

    The native env autoresets in the same step (every step is a real slot): ``dones`` is
    ``terminated | truncated``, and for every finished sub-env ``infos[i]`` has ``"terminal_observation"``
    (the observation it would have shown next, transformed like the others), ``"TimeLimit.truncated"`` and,
    as SB3's ``Monitor`` gives, ``"episode": {"r", "l", "t"}`` (return, length, seconds since creation), so
    ``rollout/ep_rew_mean`` is logged. Every ``infos[i]`` has ``sum_rate`` and the feasibility count
    (``clipped`` / ``projected``) of that sub-env.

    Seeding: ``seed(s)`` (or the ``seed`` argument) seeds the next ``reset()`` of the one generator of the
    batch (the native env has one generator for all sub-envs), so runs are reproducible.

    Args:
        env_id: a registered env ID (``PowerControl-...-v0`` or ``Beamforming-...-v0``).
        num_envs: the batch size B.
        seed: the seed of the first ``reset()`` (None: fresh entropy).
        flatten: apply the flat transforms (default True).
        **env_kwargs: keywords of the env (``num_links``, ``speed``, ``max_episode_steps`` ...).
    """

    def __init__(self, env_id: str, num_envs: int = 8, seed: int | None = None, flatten: bool = True, **env_kwargs: Any):
        self.env_id = env_id
        vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
        self.venv_native = vec.unwrapped
        self.flatten = bool(flatten)
        self.problem_name = self.venv_native.problem_name
        try:
            num_agents, obs_space, act_space = self._spaces()
        except ValueError:
            self.venv_native.close()
            raise
        self.render_mode = self.venv_native.render_mode
        super().__init__(num_agents, obs_space, act_space)
        self._count_key = self.venv_native.count_key
        self._actions: np.ndarray | None = None
        self._last_obs: dict[str, np.ndarray] | None = None
        self._next_seed = seed
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        import time

        self._time = time.perf_counter
        self._t0 = self._time()

    def _spaces(self) -> tuple[int, gym.Space, gym.Space]:
        """SB3's number of envs and its observation and action spaces, from the native env."""
        single_obs, single_act = self.venv_native.single_observation_space, self.venv_native.single_action_space
        if not self.flatten:
            return self.venv_native.num_envs, single_obs, single_act
        if self.problem_name == "power":
            k = single_obs["gain"].shape[-1]
            obs_space = gym.spaces.Box(-LOG_CLIP, LOG_CLIP, (k * k + k,), np.float32)
        elif self.problem_name == "beamforming":
            k, t, nr, nt, _ = single_obs["channel"].shape
            obs_space = gym.spaces.Box(-LOG_CLIP, LOG_CLIP, (3 * k * t * nr * nt + k,), np.float32)
        else:  # pragma: no cover - a new family needs its transform here
            raise ValueError(f"SB3VecEnv: no flat transform for problem family {self.problem_name!r}; pass flatten=False")
        act_space = gym.spaces.Box(-1.0, 1.0, (int(np.prod(single_act.shape)),), np.float32)
        return self.venv_native.num_envs, obs_space, act_space

    def _remember(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        """Keep what the next actions answer: the observation (its budgets map the actions)."""
        self._last_obs = obs

    # --- transforms (batched) ----------------------------------------------------------------------
    def _transform_obs(self, obs: dict[str, np.ndarray]) -> Any:
        return flatten_family_observation(obs, self.problem_name) if self.flatten else obs

    def _transform_actions(self, actions: np.ndarray) -> np.ndarray:
        if not self.flatten:
            return actions
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)
        return flat_action_to_native(a, self._last_obs, self.problem_name)

    # --- VecEnv API ----------------------------------------------------------------------------------
    def reset(self):
        seed, self._next_seed = self._next_seed, None
        obs, info = self.venv_native.reset(seed=seed)
        self._remember(obs, info)
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return self._transform_obs(obs)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next ``reset()`` (one generator for the whole batch); returns ``[seed] * num_envs``."""
        self._next_seed = seed
        return [seed] * self.num_envs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if self._last_obs is None:
            raise ValueError("SB3VecEnv.step: call reset() first")
        obs, rewards, terminated, truncated, info = self.venv_native.step(self._transform_actions(self._actions))
        self._remember(obs, info)
        dones = np.logical_or(terminated, truncated)
        self._ep_return += rewards
        self._ep_length += 1
        sum_rate = info["sum_rate"]
        count = info[self._count_key]
        key = self._count_key
        infos: list[dict[str, Any]] = [{"sum_rate": float(sum_rate[i]), key: int(count[i])} for i in range(self.num_envs)]
        if dones.any():
            done = np.flatnonzero(dones)
            final = info.get("final_obs")
            now = round(self._time() - self._t0, 6)
            for i in done:
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i]["episode"] = {"r": float(self._ep_return[i]), "l": int(self._ep_length[i]), "t": now}
                if final is not None and final[i] is not None:
                    one = {k: v[None] for k, v in final[i].items()}
                    term = self._transform_obs(one)
                    infos[i]["terminal_observation"] = term[0] if self.flatten else final[i]
            self._ep_return[done] = 0.0
            self._ep_length[done] = 0
        return self._transform_obs(obs), np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.venv_native.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv_native.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    def _indices(self, indices: Any) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The native vector env's attribute (shared by all sub-envs), once per index."""
        value = getattr(self.venv_native, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the native vector env; only for all sub-envs at once (``indices=None``)."""
        if indices is not None and sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise ValueError("SB3VecEnv.set_attr: the sub-envs share one native env; set attributes for all of them (indices=None)")
        setattr(self.venv_native, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: Any = None, **method_kwargs) -> list[Any]:
        """Call a method of the native vector env once; its result is repeated for every index."""
        result = getattr(self.venv_native, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """The native env is not wrapped: False for every index."""
        return [False for _ in self._indices(indices)]


class SB3PerLinkVecEnv(SB3VecEnv):
    """The links of a power-control vector env as a stable-baselines3 ``VecEnv`` of agents sharing one policy.

    ``num_envs`` networks of ``K`` links become ``num_envs * K`` SB3 sub-envs (agent ``b * K + i`` is link
    ``i`` of network ``b``). Each sees its local view, :func:`~l2o_env.wrappers.per_link_observation`
    (``4 + 5 * neighbors`` float32 features, the same for every ``K``), and answers one number in ``[-1, 1]``,
    mapped to ``[0, pmax_i]`` watts (:func:`~l2o_env.wrappers.action_to_power`); the network steps once
    all its links have answered (one native vector step for the whole batch).

    Rewards (``reward=``), computed on the true channel of the slot acted on (``info["true_gain"]``, so
    aged CSI is scored as the env scores it):

    - ``"prices"`` (default): ``w_i r_i - pi_i``, link ``i``'s weighted rate minus what its interference
      costs the others (:func:`~l2o_env.rates.interference_prices`; Nasir and Guo, IEEE JSAC 2019,
      Sec. III-B): a link-local signal whose gradient in ``p_i`` is the weighted sum rate's;
    - ``"shared"``: the network's weighted sum rate divided by ``K``, the same for all its links.

    Episode bookkeeping (``dones``, ``terminal_observation``, ``episode``) is per agent, as in
    :class:`SB3VecEnv`; ``infos[b * K + i]["sum_rate"]`` is network ``b``'s.

    Args:
        env_id: a power-control env ID (``PowerControl-...-v0``).
        num_envs: the number of networks B (SB3 sees ``B * K`` envs).
        seed: the seed of the first ``reset()``.
        neighbors: interferers / victims per link in the local view (default 5).
        reward: ``"prices"`` or ``"shared"``.
        **env_kwargs: keywords of the env.
    """

    def __init__(self, env_id: str, num_envs: int = 8, seed: int | None = None,
                 neighbors: int = PER_LINK_NEIGHBORS, reward: str = "prices", **env_kwargs: Any):
        if reward not in PER_LINK_REWARDS:
            raise ValueError(f"SB3PerLinkVecEnv: reward must be one of {', '.join(map(repr, PER_LINK_REWARDS))}, "
                             f"got {reward!r}")
        if isinstance(neighbors, bool) or not isinstance(neighbors, (int, np.integer)) or neighbors < 0:
            raise ValueError(f"SB3PerLinkVecEnv: neighbors must be an integer >= 0, got {neighbors!r}")
        self.neighbors = int(neighbors)
        self.reward = reward
        self._last_gain: np.ndarray | None = None
        super().__init__(env_id, num_envs=num_envs, seed=seed, flatten=True, **env_kwargs)

    def _spaces(self) -> tuple[int, gym.Space, gym.Space]:
        if self.problem_name != "power":
            raise ValueError(f"SB3PerLinkVecEnv: the per-link formulation is for power control (one power per "
                             f"link); {self.env_id} is a {self.problem_name!r} env: use the centralized SB3VecEnv")
        self.num_networks = self.venv_native.num_envs
        self.num_links = int(self.venv_native.single_observation_space["gain"].shape[-1])
        obs_space = gym.spaces.Box(-PER_LINK_CLIP, PER_LINK_CLIP, (per_link_size(self.neighbors),), np.float32)
        return self.num_networks * self.num_links, obs_space, gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _remember(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        """Also keep the true gains of the slot the next actions answer: the rewards price them."""
        self._last_obs, self._last_gain = obs, info["true_gain"]

    def _transform_obs(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        x = per_link_observation(obs, self.neighbors)
        return x.reshape(-1, x.shape[-1])

    def _transform_actions(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_networks, self.num_links)
        return action_to_power(a, self._last_obs["pmax"])

    def step_wait(self):
        if self._last_obs is None:
            raise ValueError("SB3PerLinkVecEnv.step: call reset() first")
        last = self._last_obs
        power = self._transform_actions(self._actions)
        obs, wsr, terminated, truncated, info = self.venv_native.step(power)
        k = self.num_links
        if self.reward == "prices":
            applied = np.clip(power, 0.0, last["pmax"])
            weight = np.asarray(last["weight"], dtype=np.float64)
            rewards = weight * info["rates"] - interference_prices(self._last_gain, applied, last["noise"], weight)
        else:
            rewards = np.repeat(np.asarray(wsr, dtype=np.float64)[:, None] / k, k, axis=1)
        rewards = rewards.reshape(-1)
        self._remember(obs, info)
        net_done = np.logical_or(terminated, truncated)
        dones = np.repeat(net_done, k)
        self._ep_return += rewards
        self._ep_length += 1
        sum_rate = np.repeat(info["sum_rate"], k)
        infos: list[dict[str, Any]] = [{"sum_rate": float(s)} for s in sum_rate]
        if net_done.any():
            final = info.get("final_obs")
            now = round(self._time() - self._t0, 6)
            for b in np.flatnonzero(net_done):
                term = None
                if final is not None and final[b] is not None:
                    term = per_link_observation({key: v[None] for key, v in final[b].items()}, self.neighbors)[0]
                for i in range(k):
                    a = b * k + i
                    infos[a]["TimeLimit.truncated"] = bool(truncated[b] and not terminated[b])
                    infos[a]["episode"] = {"r": float(self._ep_return[a]), "l": int(self._ep_length[a]), "t": now}
                    if term is not None:
                        infos[a]["terminal_observation"] = term[i]
            self._ep_return[dones] = 0.0
            self._ep_length[dones] = 0
        return self._transform_obs(obs), rewards.astype(np.float32), dones, infos
