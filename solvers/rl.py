"""Reinforcement-learning baselines (issue 15): ``ppo``, ``sac``, ``td3`` through stable-baselines3.

Each is a :class:`~solvers.base.Solver` for both families (power control and beamforming) that wraps one
SB3 model trained on :class:`l2o_env.sb3.SB3VecEnv` (the native batched vector env with the flat
transforms of :class:`~l2o_env.wrappers.FlattenPowerControl` / :class:`~l2o_env.wrappers.FlattenBeamforming`):

>>> import solvers
>>> ppo = solvers.make("ppo", n_steps=16, batch_size=64)                       # doctest: +SKIP
>>> ppo.fit("PowerControl-IC-v0", steps=200_000, num_links=10)                # doctest: +SKIP
>>> ppo.save("runs/ppo.zip")                                                  # doctest: +SKIP
>>> solvers.make("ppo", path="runs/ppo.zip").act_batch(obs)                   # doctest: +SKIP

Formulation: only ``formulation="centralized"`` exists in this step (one policy over the whole flat
observation, one action per link); ``"per_link"`` (one policy shared across links, each acting on its own
local view, as issue 15 plans) raises ``NotImplementedError``.

Discount: ``gamma=None`` (the default) means 0.0 when the env's ``speed`` is None (the slots are independent
draws, so an action affects only its own slot's reward and the best policy is the per-slot greedy one;
issue 15 measured 85.5 % of WMMSE with 0 against 73.1 % with SB3's 0.99), else 0.99 (a moving network: the
channels and the weights carry over between slots). Every other SB3 hyper-parameter is a constructor
keyword passed to the SB3 algorithm unchanged, with SB3's defaults (``n_steps``, ``batch_size``,
``learning_rate``, ``buffer_size``, ``learning_starts``, ``policy_kwargs`` ...).

File format: :meth:`RLSolver.save` writes SB3's own zip (``model.save``), plus one extra member
``l2o_env.json`` in the same zip holding our metadata (``format``, ``algorithm``, ``formulation``,
``env_id``, ``env_kwargs``, ``problem``, ``gamma``, ``steps``, ``seed``, the observation/action sizes).
SB3's loader ignores members it does not know, so the file is still loadable with
``stable_baselines3.PPO.load``; :meth:`RLSolver.load` / ``solvers.make(name, path=...)`` read both.

Acting: :meth:`act_batch` applies the training transform to the batched Dict observation
(:func:`~l2o_env.wrappers.flatten_observation` / :func:`~l2o_env.wrappers.flatten_beamforming_observation`),
takes SB3's deterministic ``predict``, and maps it through the wrapper's action map
(:func:`~l2o_env.wrappers.action_to_power` / :func:`~l2o_env.wrappers.action_to_precoders`), so the actions
are feasible (the base class's projection is only a safety net).

Needs the ``rl`` extra (``pip install "l2o-env[rl]"``); importing this module does not import SB3.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from l2o_env.wrappers import flat_action_to_native, flatten_family_observation
from solvers.base import Solver

__all__ = ["RLSolver", "PPOSolver", "SACSolver", "TD3Solver", "FORMULATIONS", "META_MEMBER", "FORMAT"]

FORMULATIONS = ("centralized", "per_link")
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
        formulation: ``"centralized"`` (the only one implemented; ``"per_link"`` raises NotImplementedError).
        path: an RL model zip written by :meth:`save` to load (``solvers.make("ppo", path="model.zip")``).
        gamma: the discount; None: 0.0 when the training env's ``speed`` is None, else 0.99.
        policy: SB3 policy name (default ``"MlpPolicy"``).
        device: torch device of the SB3 model (default ``"cpu"``).
        **sb3_kwargs: other keywords of the SB3 algorithm's constructor (SB3's defaults otherwise).
    """

    name = "rl"
    algorithm = ""  # the SB3 class name: "PPO", "SAC", "TD3"
    problems = frozenset({"power", "beamforming"})

    #: trained by stepping an env (``fit(env_id, steps=...)``), not from an observation sampler: ``l2o train``
    #: calls it so
    trains_on_env = True

    def __init__(self, *, formulation: str = "centralized", path: str | os.PathLike | None = None,
                 gamma: float | None = None, policy: str = "MlpPolicy", device: str = "cpu", **sb3_kwargs: Any):
        if formulation not in FORMULATIONS:
            raise ValueError(f"{type(self).__name__}: formulation must be one of {', '.join(map(repr, FORMULATIONS))}, "
                             f"got {formulation!r}")
        if formulation == "per_link":
            raise NotImplementedError(
                f"{type(self).__name__}: formulation='per_link' (one policy shared across links, each on its local "
                "view, the K links presented to SB3 as a batch of agents) is planned by issue 15 and not implemented "
                "yet; use formulation='centralized'")
        self.formulation = formulation
        self.gamma = None if gamma is None else float(gamma)
        self.policy = policy
        self.device = device
        self.sb3_kwargs = dict(sb3_kwargs)
        self.model = None
        self.meta: dict[str, Any] = {}
        if path is not None:
            self._load_into(path)

    # --- training --------------------------------------------------------------------------------------
    def fit(self, env_id: str, *, steps: int, seed: int = 0, num_envs: int = 8, progress: bool = False,
            **env_kwargs: Any) -> "RLSolver":
        """Train for ``steps`` env steps (summed over the ``num_envs`` sub-envs) on ``env_id`` with
        ``env_kwargs``, through :class:`~l2o_env.sb3.SB3VecEnv`; records the env ID and kwargs. Returns self."""
        sb3 = _sb3()
        from l2o_env.sb3 import SB3VecEnv

        steps = int(steps)
        if steps <= 0:
            raise ValueError(f"{type(self).__name__}.fit: steps must be a positive integer, got {steps}")
        venv = SB3VecEnv(env_id, num_envs=int(num_envs), seed=int(seed), **env_kwargs)
        speed = getattr(getattr(venv.venv_native, "config", None), "speed", None)
        gamma = self.gamma if self.gamma is not None else (0.0 if speed is None else 0.99)
        cls = getattr(sb3, self.algorithm)
        kwargs = {"verbose": 0, **self.sb3_kwargs}
        try:
            model = cls(self.policy, venv, gamma=gamma, seed=int(seed), device=self.device, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: {exc} (keywords other than formulation/path/gamma/policy/device "
                            f"go to stable_baselines3.{self.algorithm})") from None
        model.learn(total_timesteps=steps, progress_bar=bool(progress))
        venv.close()
        self.model = model
        self.meta = {
            "format": FORMAT, "algorithm": self.algorithm, "solver": self.name, "formulation": self.formulation,
            "env_id": env_id, "env_kwargs": dict(env_kwargs), "problem": venv.problem_name, "gamma": gamma,
            "steps": steps, "seed": int(seed), "num_envs": int(num_envs),
            "obs_size": int(venv.observation_space.shape[0]), "action_size": int(venv.action_space.shape[0]),
        }
        return self

    # --- save / load -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write SB3's zip of the model with our metadata as the extra member ``l2o_env.json``; returns the path
        (``.zip`` appended when missing, as SB3 does)."""
        self._require_model("save")
        p = Path(path)
        if p.suffix != ".zip":
            p = p.with_name(p.name + ".zip")
        p.parent.mkdir(parents=True, exist_ok=True)
        self.model.save(p)
        try:
            json_meta = json.dumps(self.meta, indent=1)
        except TypeError as exc:
            raise ValueError(f"{type(self).__name__}.save: env_kwargs must be JSON values: {exc}") from None
        with zipfile.ZipFile(p, "a") as z:
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

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "RLSolver":
        """The solver saved in ``path`` (on ``RLSolver``: the class of its stored algorithm)."""
        if cls is RLSolver:
            meta = read_meta(path)
            by_alg = {c.algorithm: c for c in (PPOSolver, SACSolver, TD3Solver)}
            if meta.get("algorithm") not in by_alg:
                raise ValueError(f"{str(path)!r}: unknown algorithm {meta.get('algorithm')!r}; known: {sorted(by_alg)}")
            cls = by_alg[meta["algorithm"]]
        return cls(path=path, formulation=read_meta(path).get("formulation", "centralized"), device=device)

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
        x = flatten_family_observation(obs, problem)
        want = int(self.model.observation_space.shape[0])
        if x.shape[-1] != want:
            raise ValueError(f"{type(self).__name__}: the observation has {x.shape[-1]} flat features, the model "
                             f"was trained on {want} ({self.meta.get('env_id')} {self.meta.get('env_kwargs')}): "
                             "evaluate it on the env size it was trained on")
        a, _ = self.model.predict(x, deterministic=True)
        return flat_action_to_native(np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0), obs, problem)

    def __repr__(self) -> str:
        trained = f", env_id={self.meta.get('env_id')!r}" if self.meta else ""
        return f"{type(self).__name__}(formulation={self.formulation!r}{trained})"


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
