"""Reinforcement-learning baselines (issue 15): ``ppo``, ``sac``, ``td3`` through stable-baselines3.

Each is a :class:`~solvers.base.Solver` for both families (power control and beamforming) that wraps one
SB3 model trained on :class:`l2o_env.sb3.SB3VecEnv` (the native batched vector env with the flat
transforms of :class:`~l2o_env.wrappers.FlattenPowerControl` / :class:`~l2o_env.wrappers.FlattenBeamforming`):

>>> import solvers
>>> ppo = solvers.make("ppo", n_steps=16, batch_size=64)                       # doctest: +SKIP
>>> ppo.fit("PowerControl-IC-v0", steps=200_000, num_links=10)                # doctest: +SKIP
>>> ppo.save("runs/ppo.zip")                                                  # doctest: +SKIP
>>> solvers.make("ppo", path="runs/ppo.zip").act_batch(obs)                   # doctest: +SKIP

Formulations (``formulation=``):

- ``"centralized"`` (default): one policy over the whole flat observation
  (:func:`~l2o_env.wrappers.flatten_observation`), one action per link; every env ID (power control and
  beamforming). Its input grows as K^2 and it serves the network size it was trained on only.
- ``"per_link"``: one policy shared by all links, each acting on its own local view
  (:func:`~l2o_env.wrappers.per_link_observation`: its direct channel, its ``neighbors`` strongest
  interferers and victims, the weights), the links presented to SB3 as a batch of agents
  (:class:`l2o_env.sb3.SB3PerLinkVecEnv`), rewarded by ``reward="prices"`` (own weighted rate minus the
  interference it costs the others) or ``"shared"``; after Nasir and Guo, "Multi-agent deep reinforcement
  learning for dynamic power allocation in wireless networks", IEEE JSAC 2019, Sec. III. Power control
  only; the same policy acts on any K.

Steps: ``fit(..., steps=N)`` counts env slots summed over the ``num_envs`` networks, in both formulations
(one per-link step is K agent transitions for SB3), so the two formulations get the same budget.

Discount: ``gamma=None`` (the default) means 0.0: the reward is one slot's weighted sum rate, and the powers
change later slots only through proportional-fair weights (the channels, moving or aged, do not depend on
them). Without that feedback the best policy is the per-slot greedy one and a discount only adds the variance
of later, uncontrollable rewards to every return; with proportional-fair weights a discounted sum of
weighted rates rewards starving a link to inflate its weight, not the long-run utility (both measured in
benchmarks/RESULTS.md, "RL baselines"). Pass ``gamma=`` to train on another objective. Every other SB3 hyper-parameter is a constructor
keyword passed to the SB3 algorithm unchanged, with SB3's defaults (``n_steps``, ``batch_size``,
``learning_rate``, ``buffer_size``, ``learning_starts``, ``policy_kwargs`` ...).

File format: :meth:`RLSolver.save` writes SB3's own zip (``model.save``), plus one extra member
``l2o_env.json`` in the same zip holding our metadata (``format``, ``algorithm``, ``formulation``,
``env_id``, ``env_kwargs``, ``problem``, ``gamma``, ``steps``, ``seed``, the observation/action sizes).
SB3's loader ignores members it does not know, so the file is still loadable with
``stable_baselines3.PPO.load``; :meth:`RLSolver.load` / ``solvers.make(name, path=...)`` read both.

Acting: :meth:`act_batch` applies the training transform to the batched Dict observation
(:func:`~l2o_env.wrappers.flatten_observation` / :func:`~l2o_env.wrappers.flatten_beamforming_observation`
/ :func:`~l2o_env.wrappers.per_link_observation`), takes SB3's deterministic ``predict``, and maps it through
the wrapper's action map (:func:`~l2o_env.wrappers.action_to_power` / :func:`~l2o_env.wrappers.action_to_precoders`),
so the actions are feasible (the base class's projection is only a safety net).

Evaluation during training: every ``eval_every`` slots :meth:`fit` scores the deterministic policy on a
fixed batch of ``eval_batch`` fresh observations of the training scenario (on their true channels when the
CSI is aged) as a ratio to WMMSE on the true channels (:func:`solvers.learned.reference_wsr`), shows it on
the progress bar and keeps the history in ``meta["eval"]`` (``proportional_fair`` weights depend on an
episode's history, so that batch uses ``weights="random"`` instead, recorded as ``meta["eval"]["weights"]``).

Needs the ``rl`` extra (``pip install "l2o-env[rl]"``); importing this module does not import SB3.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from l2o_env.atomic import atomic_path
from l2o_env.wrappers import (
    PER_LINK_NEIGHBORS,
    action_to_power,
    flat_action_to_native,
    flatten_family_observation,
    per_link_observation,
)
from solvers.base import Solver

__all__ = ["RLSolver", "PPOSolver", "SACSolver", "TD3Solver", "FORMULATIONS", "REWARDS", "META_MEMBER", "FORMAT"]

FORMULATIONS = ("centralized", "per_link")
#: per-link rewards (:class:`l2o_env.sb3.SB3PerLinkVecEnv`)
REWARDS = ("prices", "shared")
#: the zip member holding our metadata next to SB3's ``data`` / ``policy.pth``
META_MEMBER = "l2o_env.json"
FORMAT = "l2o_env.rl/1"


def _sb3():
    try:
        import stable_baselines3
    except ImportError as exc:
        raise ImportError('the RL solvers (ppo, sac, td3) need stable-baselines3: pip install "l2o-env[rl]"') from exc
    return stable_baselines3


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata that :meth:`RLSolver.save` put in the zip ``path`` (``ValueError`` when absent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"RL model {str(p)!r} does not exist")
    try:
        with zipfile.ZipFile(p) as z:
            if META_MEMBER not in z.namelist():
                raise ValueError(f"{str(p)!r} is a zip but has no {META_MEMBER!r}: not saved by an l2o_env RL solver "
                                 "(RLSolver.save / `l2o` RL training)")
            return json.loads(z.read(META_MEMBER).decode())
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{str(p)!r} is not an SB3 zip model: {exc}") from None


class RLSolver(Solver):
    """Base of the SB3 RL solvers: one SB3 model over the flat transforms (see the module docstring).

    Args:
        formulation: ``"centralized"`` or ``"per_link"`` (module docstring); default: the saved model's with
            ``path=``, else ``"centralized"``.
        path: an RL model zip written by :meth:`save` to load (``solvers.make("ppo", path="model.zip")``).
        gamma: the discount; None: 0.0 (per-slot greedy; module docstring).
        policy: SB3 policy name (default ``"MlpPolicy"``).
        device: torch device of the SB3 model (default ``"cpu"``).
        neighbors: per_link only: interferers / victims in each link's view (default 5).
        reward: per_link only: ``"prices"`` (default) or ``"shared"``.
        **sb3_kwargs: other keywords of the SB3 algorithm's constructor (SB3's defaults otherwise).
    """

    name = "rl"
    algorithm = ""  # the SB3 class name: "PPO", "SAC", "TD3"
    problems = frozenset({"power", "beamforming"})

    #: trained by stepping an env (``fit(env_id, steps=...)``), not from an observation sampler: ``l2o train``
    #: calls it so
    trains_on_env = True

    def __init__(self, *, formulation: str | None = None, path: str | os.PathLike | None = None,
                 gamma: float | None = None, policy: str = "MlpPolicy", device: str = "cpu",
                 neighbors: int = PER_LINK_NEIGHBORS, reward: str = "prices", **sb3_kwargs: Any):
        if formulation is None:  # a saved model's own, else centralized
            formulation = read_meta(path).get("formulation", "centralized") if path is not None else "centralized"
        if formulation not in FORMULATIONS:
            raise ValueError(f"{type(self).__name__}: formulation must be one of {', '.join(map(repr, FORMULATIONS))}, "
                             f"got {formulation!r}")
        if reward not in REWARDS:
            raise ValueError(f"{type(self).__name__}: reward must be one of {', '.join(map(repr, REWARDS))}, got {reward!r}")
        if isinstance(neighbors, bool) or not isinstance(neighbors, (int, np.integer)) or neighbors < 0:
            raise ValueError(f"{type(self).__name__}: neighbors must be an integer >= 0, got {neighbors!r}")
        self.formulation = formulation
        self.neighbors = int(neighbors)
        self.reward = reward
        self.gamma = None if gamma is None else float(gamma)
        self.policy = policy
        self.device = device
        self.sb3_kwargs = dict(sb3_kwargs)
        self.model = None
        self.meta: dict[str, Any] = {}
        if path is not None:
            self._load_into(path)

    # --- training --------------------------------------------------------------------------------------
    def _make_venv(self, env_id: str, num_envs: int, seed: int, env_kwargs: Mapping[str, Any]):
        from l2o_env.sb3 import SB3PerLinkVecEnv, SB3VecEnv

        if self.formulation == "per_link":
            return SB3PerLinkVecEnv(env_id, num_envs=num_envs, seed=seed, neighbors=self.neighbors,
                                    reward=self.reward, **env_kwargs)
        return SB3VecEnv(env_id, num_envs=num_envs, seed=seed, **env_kwargs)

    def fit(self, env_id: str, *, steps: int, seed: int = 0, num_envs: int = 8, progress: bool = False,
            eval_every: int | None = None, eval_batch: int = 256, **env_kwargs: Any) -> "RLSolver":
        """Train for ``steps`` env slots (summed over the ``num_envs`` networks) on ``env_id`` with
        ``env_kwargs``; records the env ID and kwargs. Returns self.

        Args:
            eval_every: slots between evaluations of the ratio to WMMSE (default ``steps // 10``; 0: none).
            eval_batch: observations in the fixed evaluation batch.
            progress: a tqdm bar on stderr (slots, last evaluated ratio).
        """
        sb3 = _sb3()
        who = f"{type(self).__name__}.fit"
        steps = _positive_int(who, "steps", steps)
        num_envs = _positive_int(who, "num_envs", num_envs)
        eval_batch = _positive_int(who, "eval_batch", eval_batch)
        eval_every = max(1, steps // 10) if eval_every is None else int(eval_every)
        if eval_every < 0:
            raise ValueError(f"{who}: eval_every must be >= 0 (0: no evaluation), got {eval_every}")
        venv = self._make_venv(env_id, num_envs, int(seed), env_kwargs)
        gamma = 0.0 if self.gamma is None else self.gamma
        agents = venv.num_envs // num_envs  # SB3 transitions per env slot (K per_link, 1 centralized)
        cls = getattr(sb3, self.algorithm)
        kwargs = {"verbose": 0, **self.sb3_kwargs}
        try:
            model = cls(self.policy, venv, gamma=gamma, seed=int(seed), device=self.device, **kwargs)
        except TypeError as exc:
            venv.close()
            raise TypeError(f"{type(self).__name__}: {exc} (keywords other than formulation/path/gamma/policy/device/"
                            f"neighbors/reward go to stable_baselines3.{self.algorithm})") from None
        self.model = model
        self.meta = {
            "format": FORMAT, "algorithm": self.algorithm, "solver": self.name, "formulation": self.formulation,
            "env_id": env_id, "env_kwargs": dict(env_kwargs), "problem": venv.problem_name, "gamma": gamma,
            "steps": steps, "seed": int(seed), "num_envs": int(num_envs),
            "obs_size": int(venv.observation_space.shape[0]), "action_size": int(venv.action_space.shape[0]),
        }
        if self.formulation == "per_link":
            self.meta.update(neighbors=self.neighbors, reward=self.reward)
        callback = _FitCallback(self, env_id, env_kwargs, steps, agents, eval_every, eval_batch, int(seed), progress)
        try:
            model.learn(total_timesteps=steps * agents, callback=callback.sb3())
        finally:
            callback.close()
            venv.close()
        # SB3 completes its last rollout: PPO may train a little past the budget
        self.meta["slots_trained"] = int(model.num_timesteps // agents)
        if callback.history["step"]:
            self.meta["eval"] = callback.history
        return self

    # --- save / load -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write SB3's zip of the model with our metadata as the extra member ``l2o_env.json``, atomically
        (a temporary file renamed over ``path``); returns the path (``.zip`` appended when missing, as SB3 does)."""
        self._require_model("save")
        p = Path(path)
        if p.suffix != ".zip":
            p = p.with_name(p.name + ".zip")
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            json_meta = json.dumps(self.meta, indent=1)
        except TypeError as exc:
            raise ValueError(f"{type(self).__name__}.save: env_kwargs must be JSON values: {exc}") from None
        # written whole to a temporary file, then renamed: an interrupted save leaves the old file intact
        with atomic_path(p) as tmp:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as z:
                z.writestr(META_MEMBER, json_meta)
        return p

    def _load_into(self, path: str | os.PathLike) -> None:
        meta = read_meta(path)
        if meta.get("algorithm") != self.algorithm:
            raise ValueError(f"{type(self).__name__}: {str(path)!r} holds a {meta.get('algorithm')!r} model "
                             f"({meta.get('solver')!r}); load it with solvers.make({meta.get('solver')!r}, path=...)")
        if meta.get("formulation", "centralized") != self.formulation:
            raise ValueError(f"{type(self).__name__}: {str(path)!r} was trained with formulation="
                             f"{meta.get('formulation')!r}, this solver has {self.formulation!r}")
        cls = getattr(_sb3(), self.algorithm)
        self.model = cls.load(Path(path), device=self.device)
        self.meta = meta
        if self.formulation == "per_link":
            self.neighbors = int(meta.get("neighbors", PER_LINK_NEIGHBORS))
            self.reward = meta.get("reward", "prices")

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "RLSolver":
        """The solver saved in ``path`` (on ``RLSolver``: the class of its stored algorithm)."""
        if cls is RLSolver:
            meta = read_meta(path)
            by_alg = {c.algorithm: c for c in (PPOSolver, SACSolver, TD3Solver)}
            if meta.get("algorithm") not in by_alg:
                raise ValueError(f"{str(path)!r}: unknown algorithm {meta.get('algorithm')!r}; known: {sorted(by_alg)}")
            cls = by_alg[meta["algorithm"]]
        return cls(path=path, device=device)

    # --- acting ----------------------------------------------------------------------------------------
    @property
    def is_trained(self) -> bool:
        return self.model is not None

    def _require_model(self, what: str) -> None:
        if self.model is None:
            raise ValueError(f"{type(self).__name__}: this {self.name!r} model was neither loaded nor trained; load one "
                             f"with path=... (solvers.make({self.name!r}, path='model.zip')) or call fit(env_id, "
                             f"steps=...) first (needed by {what})")

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._require_model("act")
        problem = self.problem_for(obs).name
        trained_on = self.meta.get("problem")
        if trained_on is not None and trained_on != problem:
            raise ValueError(f"{type(self).__name__}: the model was trained on a {trained_on!r} env "
                             f"({self.meta.get('env_id')}), got a {problem!r} observation")
        if self.formulation == "per_link":
            if problem != "power":
                raise ValueError(f"{type(self).__name__}: the per_link formulation acts on power-control observations, "
                                 f"got a {problem!r} one")
            x = per_link_observation(obs, self.neighbors)
            b, k, f = x.shape
            self._check_size(f)
            a, _ = self.model.predict(x.reshape(b * k, f), deterministic=True)
            a = np.clip(np.asarray(a, dtype=np.float64).reshape(b, k), -1.0, 1.0)
            return action_to_power(a, obs["pmax"])
        x = flatten_family_observation(obs, problem)
        self._check_size(x.shape[-1])
        a, _ = self.model.predict(x, deterministic=True)
        return flat_action_to_native(np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0), obs, problem)

    def _check_size(self, features: int) -> None:
        want = int(self.model.observation_space.shape[0])
        if features != want:
            hint = ("evaluate it on the env size it was trained on" if self.formulation == "centralized"
                    else "the model was trained with another neighbors=")
            raise ValueError(f"{type(self).__name__}: the observation has {features} features per "
                             f"{'sample' if self.formulation == 'centralized' else 'link'}, the model was trained on "
                             f"{want} ({self.meta.get('env_id')} {self.meta.get('env_kwargs')}): {hint}")

    def __repr__(self) -> str:
        trained = f", env_id={self.meta.get('env_id')!r}" if self.meta else ""
        return f"{type(self).__name__}(formulation={self.formulation!r}{trained})"


def _positive_int(who: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


class _FitCallback:
    """The progress bar and the periodic ratio-to-WMMSE evaluation of :meth:`RLSolver.fit` (an SB3 callback
    built on demand, so that importing this module does not import SB3)."""

    def __init__(self, solver: RLSolver, env_id: str, env_kwargs: Mapping[str, Any], steps: int, agents: int,
                 eval_every: int, eval_batch: int, seed: int, progress: bool):
        import sys

        from tqdm.auto import tqdm

        self.solver, self.steps, self.agents, self.eval_every = solver, steps, agents, eval_every
        self.history: dict[str, Any] = {"step": [], "ratio": []}
        self.next_eval = eval_every if eval_every else None
        self.bar = tqdm(total=steps, desc=solver.name, disable=not progress, file=sys.stderr, leave=False,
                        dynamic_ncols=True, unit="slot")
        self.done = 0
        self._eval = None
        if eval_every:
            self._eval = self._eval_set(env_id, dict(env_kwargs), eval_batch, seed)

    def _eval_set(self, env_id, env_kwargs, batch, seed):
        from l2o_env.data import ObservationSampler
        from solvers.learned import reference_wsr

        weights = env_kwargs.get("weights")
        if isinstance(weights, str) and weights == "proportional_fair":
            env_kwargs["weights"] = "random"
        self.history.update(batch=batch, reference="wmmse (perfect CSI)", weights=env_kwargs.get("weights", "default"))
        obs, truth = ObservationSampler(env_id, seed=seed + 1_000_003, **env_kwargs)(batch, with_truth=True)
        return obs, truth, reference_wsr(truth)

    def evaluate(self) -> float:
        from l2o_env.problems import problem_of_obs

        obs, truth, reference = self._eval
        problem = problem_of_obs(truth)
        action = self.solver.act_batch(obs)
        return float(problem.weighted_sum_rate(truth, action).mean() / max(reference, 1e-300))

    def on_step(self, num_timesteps: int) -> None:
        slots = num_timesteps // self.agents
        shown = min(slots, self.steps)  # SB3 finishes its last rollout, which may run past the budget
        if shown > self.done:
            self.bar.update(shown - self.done)
            self.done = shown
        if self.next_eval is not None and slots >= self.next_eval:
            ratio = self.evaluate()
            self.history["step"].append(slots)
            self.history["ratio"].append(ratio)
            self.bar.set_postfix(ratio_to_wmmse=f"{ratio:.4f}")
            self.next_eval = (slots // self.eval_every + 1) * self.eval_every

    def sb3(self):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class _Callback(BaseCallback):
            def _on_step(self) -> bool:
                evaluated = len(outer.history["ratio"])
                outer.on_step(self.num_timesteps)
                if len(outer.history["ratio"]) > evaluated:
                    self.logger.record("eval/ratio_to_wmmse", outer.history["ratio"][-1])
                return True

        return _Callback()

    def close(self) -> None:
        self.bar.close()


class PPOSolver(RLSolver):
    """PPO (stable-baselines3) over the flat observation: centralized RL baseline (``path=`` to load, ``fit`` to train)."""

    name = "ppo"
    algorithm = "PPO"


class SACSolver(RLSolver):
    """SAC (stable-baselines3) over the flat observation: centralized RL baseline (``path=`` to load, ``fit`` to train)."""

    name = "sac"
    algorithm = "SAC"


class TD3Solver(RLSolver):
    """TD3 (stable-baselines3) over the flat observation: centralized RL baseline (``path=`` to load, ``fit`` to train)."""

    name = "td3"
    algorithm = "TD3"
