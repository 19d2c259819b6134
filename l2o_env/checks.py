"""Contract checks in the style of stable-baselines3's ``check_env``: errors for breaches, warnings for advice.

- :func:`check_solver` runs a solver against an env ID: ``act`` on real observations (with every extra
  key the env has), ``act_batch`` on a batch, shapes, dtypes, finiteness, feasibility (the power limits;
  the transmitters' budgets for beamforming), that the observation is not modified, and a few env
  steps. A breach raises :class:`SolverCheckError` naming the method, what was expected and what was
  returned (all out-of-bounds indices at once); advice (no ``act_batch``, ``act`` and ``act_batch``
  disagreeing, ...) is a ``UserWarning``.
- :func:`check_env` runs Gymnasium's ``check_env`` on an env of any problem family plus the contract of
  DESIGN.md (observation keys and dtypes, reward = weighted sum rate of the feasible action, ``info``).

>>> import solvers
>>> from l2o_env.checks import check_solver
>>> check_solver(solvers.make("max_power"), "PowerControl-IC-v0")   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from l2o_env.data import ObservationSampler
from l2o_env.envs.core import true_observation
from l2o_env.problems import Problem, get_problem
from l2o_env.problems.power import POWER_KEYS as _POWER_KEYS
from l2o_env.rates import weighted_sum_rate
from l2o_env.scenarios import get_scenario

__all__ = ["check_solver", "check_env", "SolverCheckError"]


class SolverCheckError(ValueError):
    """A solver or env breaks the contract of its problem family (DESIGN.md)."""


def _advice(msg: str) -> None:
    warnings.warn(msg, UserWarning, stacklevel=3)


def _as_finite(who: str, action: Any, shape: tuple[int, ...], unit: str = "", what: str = "") -> np.ndarray:
    """A solver's output as float64 ``shape``, finite, or a SolverCheckError naming the problem (``unit``,
    ``what``: the message's hints, e.g. `` (watts)`` and `` (one power per link)``)."""
    if action is None:
        raise SolverCheckError(f"{who} returned None; expected a numeric array of shape {shape}{unit}")
    try:
        arr = np.asarray(action)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise SolverCheckError(f"{who} returned {type(action).__name__}, not an array of shape {shape}") from exc
    if arr.dtype.kind not in "fiu":
        raise SolverCheckError(f"{who} returned dtype {arr.dtype}; expected real numbers{unit}, shape {shape}")
    if arr.shape != shape:
        raise SolverCheckError(f"{who} returned shape {arr.shape}; expected {shape}{what}")
    arr = arr.astype(np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        raise SolverCheckError(f"{who} returned NaN/inf at indices {[tuple(map(int, b)) for b in bad[:20]]}")
    return arr


def _check_powers(who: str, power: Any, shape: tuple[int, ...], pmax: np.ndarray) -> np.ndarray:
    """The returned powers as float64, or a SolverCheckError naming every problem of ``who``'s output."""
    arr = _as_finite(who, power, shape, " (watts)", " (one power per link)")
    tol = 1e-6 * np.maximum(pmax, 1e-30)
    low = np.argwhere(arr < -tol)
    high = np.argwhere(arr > pmax + tol)
    if low.size or high.size:
        parts = []
        if low.size:
            parts.append(f"below 0 at {[tuple(map(int, b)) for b in low[:20]]}")
        if high.size:
            parts.append(f"above pmax at {[tuple(map(int, b)) for b in high[:20]]}")
        raise SolverCheckError(f"{who} returned powers outside [0, pmax]: {'; '.join(parts)} (min {arr.min():.4g}, max {arr.max():.4g})")
    return arr


def _check_feasible(who: str, action: Any, shape: tuple[int, ...], problem: Problem, obs: dict) -> np.ndarray:
    """Any family but power: the returned action as float64 ``shape``, finite and feasible for the batched
    ``obs`` (``problem.project`` changes nothing beyond a 1e-6 relative tolerance), or a SolverCheckError."""
    arr = _as_finite(who, action, shape)
    batched = arr if len(shape) == len(problem.action_shape(obs)) else arr[None]
    _, changed = problem.project(obs, batched, tol=1e-6)
    if changed.any():
        raise SolverCheckError(f"{who} returned an infeasible {problem.name} action: the feasibility step "
                               f"({type(problem).__name__}.project) changes samples {np.flatnonzero(changed).tolist()} "
                               "(a transmitter over its budget)")
    return arr


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def check_solver(
    solver: Any,
    env_id: str = "PowerControl-IC-v0",
    *,
    seed: int = 0,
    steps: int = 3,
    batch: int = 4,
    **env_kwargs: Any,
) -> None:
    """Check that ``solver`` follows the solver interface of DESIGN.md on ``env_id``.

    Args:
        solver: any object with ``act(obs) -> (K,)`` powers; ``act_batch``, ``reset``, ``name`` and
            ``problems`` are checked when present (their absence is advice, not an error).
        env_id: the env whose observations the solver gets (``gym.make(env_id, **env_kwargs)``).
        seed: seed of the env and of the batch of observations.
        steps: env steps taken with the solver's actions.
        batch: size of the batch given to ``act_batch``.

    Raises:
        SolverCheckError: a breach (no ``act``, wrong shape or dtype, NaN/inf, powers outside
            ``[0, pmax]``, the observation modified in place, a non-finite reward).
    """
    name = type(solver).__name__
    act = getattr(solver, "act", None)
    if not callable(act):
        raise SolverCheckError(f"{name} has no callable act(obs); a solver maps one observation to (K,) powers")
    family = get_scenario(env_id).problem
    problems = getattr(solver, "problems", None)
    if problems is None:
        _advice(f"{name} has no `problems` attribute; set e.g. problems = frozenset({{{family!r}}}) (DESIGN.md)")
    elif family not in problems:
        raise SolverCheckError(f"{name}.problems = {set(problems)} does not include {family!r}; it cannot solve {env_id}")
    if not isinstance(getattr(solver, "name", None), str):
        _advice(f"{name} has no string `name`; the registry and the harness report solvers by name")
    if callable(getattr(solver, "reset", None)):
        solver.reset()
    else:
        _advice(f"{name} has no reset(); solvers that keep state across slots must forget it there")

    problem = get_problem(family)

    def check_output(who, action, shape, obs_batched):
        if problem.name == "power":
            return _check_powers(who, action, shape, np.asarray(obs_batched["pmax"], dtype=np.float64).reshape(shape))
        return _check_feasible(who, action, shape, problem, obs_batched)

    env = gym.make(env_id, **env_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        for t in range(max(1, steps)):
            before = copy.deepcopy(obs)
            one = {key: np.asarray(val)[None] for key, val in obs.items()}
            shape = problem.action_shape(one)[1:]
            power = check_output(f"{name}.act (step {t})", act(obs), shape, one)
            if not _same(before, obs):
                raise SolverCheckError(f"{name}.act modified the observation in place; solvers must treat obs as read-only")
            obs, reward, terminated, truncated, info = env.step(power.astype(np.float32))
            if not np.isfinite(reward):
                raise SolverCheckError(f"{env_id}.step returned reward {reward} for {name}'s powers")
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()

    act_batch = getattr(solver, "act_batch", None)
    if not callable(act_batch):
        _advice(f"{name} has no act_batch(obs); the harness then loops over samples in Python (slow)")
        return
    sampler_kwargs = dict(env_kwargs)
    if sampler_kwargs.get("weights") == "proportional_fair":
        sampler_kwargs["weights"] = "random"  # independent samples have no rate history
    sampler = ObservationSampler(env_id, seed=seed, **sampler_kwargs)
    data = sampler(batch)
    before = copy.deepcopy(data)
    shape = problem.action_shape(data)
    powers = check_output(f"{name}.act_batch", act_batch(data), shape, data)
    if not _same(before, data):
        raise SolverCheckError(f"{name}.act_batch modified the observation in place; solvers must treat obs as read-only")
    one = {key: val[0] for key, val in data.items()}
    if callable(getattr(solver, "reset", None)):
        solver.reset()
    single = check_output(f"{name}.act", act(one), shape[1:], {key: val[:1] for key, val in data.items()})
    if not np.allclose(single, powers[0], rtol=1e-4, atol=1e-6 * float(data["pmax"][0].max())):
        _advice(
            f"{name}.act(obs) and {name}.act_batch(obs)[0] differ on the same observation (max |diff| "
            f"{np.abs(single - powers[0]).max():.3g} W); fine for a randomised solver, a bug otherwise"
        )


def check_env(env: gym.Env, *, seed: int = 0, steps: int = 5) -> None:
    """Gymnasium's ``check_env`` on ``env.unwrapped`` plus the contract of DESIGN.md for its family.

    Checks: the observation has the problem's keys (``Problem.obs_keys``) as float32 arrays of the
    space's shapes (power control: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)``, and the action
    space is ``Box(0, pmax)``); the reward of random actions (some infeasible) equals the weighted sum
    rate (``Problem.weighted_sum_rate``; power control: ``rates.weighted_sum_rate``) of the feasible
    action (``Problem.project``) on the channel it answered: the observation, or with aged / noisy CSI
    the truth that ``info`` carried beside it (``true_observation(obs, info)``); ``info`` has ``rates (K,)``,
    ``sum_rate`` and the count of what feasibility changed (``clipped`` for power control, ``projected``
    transmitters for beamforming), equal to ``Problem.project``'s. Raises ``SolverCheckError`` (or
    Gymnasium's ``AssertionError``) on a breach.
    """
    from gymnasium.utils.env_checker import check_env as gym_check_env

    with warnings.catch_warnings():
        # Gymnasium's advice does not apply: gains are unbounded by nature, and the env's actions are
        # watts on purpose (FlattenPowerControl gives RL libraries their [-1, 1] Box)
        warnings.filterwarnings("ignore", message=".*infinity.*")
        warnings.filterwarnings("ignore", message=".*symmetric and normalized.*")
        gym_check_env(env.unwrapped, skip_render_check=True)
    problem = getattr(env.unwrapped, "problem", None)
    if not isinstance(problem, Problem):
        problem = get_problem("power")
    if problem.name == "power":
        _check_power_env(env, seed=seed, steps=steps)
        return
    space = env.observation_space
    for key in problem.obs_keys:
        if key not in space.spaces:
            raise SolverCheckError(f"{env}: observation space lacks key {key!r}; a {problem.name} env has {problem.obs_keys}")
    count_key = getattr(env.unwrapped, "count_key", "changed")
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        for key, sub in space.spaces.items():
            if obs[key].shape != sub.shape or obs[key].dtype != np.float32:
                raise SolverCheckError(f"{env}: obs[{key!r}] must be float32 {sub.shape}, got {obs[key].dtype} {obs[key].shape}")
        truth = true_observation(obs, info)  # the channel the action is scored on
        action = env.action_space.sample()  # the Box bounds each entry only: some transmitters over budget
        obs_next, reward, terminated, truncated, info = env.step(action)
        batched = {key: np.asarray(val, dtype=np.float64)[None] for key, val in truth.items()}
        feasible, changed = problem.project(batched, action[None])
        want_r = float(problem.weighted_sum_rate(batched, feasible)[0])
        if not np.isclose(reward, want_r, rtol=1e-6, atol=1e-9):
            raise SolverCheckError(f"{env}: reward {reward} != weighted sum rate {want_r} of the projected action")
        for key in ("rates", "sum_rate", count_key):
            if key not in info:
                raise SolverCheckError(f"{env}: info lacks {key!r}; it must carry rates, sum_rate and {count_key}")
        if int(info[count_key]) != int(changed[0]):
            raise SolverCheckError(f"{env}: info[{count_key!r}]={info[count_key]} but the projection changed {int(changed[0])}")
        obs = obs_next
        if terminated or truncated:
            obs, info = env.reset()


def _check_power_env(env: gym.Env, *, seed: int, steps: int) -> None:
    """The power-control part of :func:`check_env` (after Gymnasium's own checks)."""
    space = env.observation_space
    for key in _POWER_KEYS:
        if key not in space.spaces:
            raise SolverCheckError(f"{env}: observation space lacks key {key!r}; a power-control env has {_POWER_KEYS}")
    k = space["gain"].shape[-1]
    high = np.asarray(env.action_space.high, dtype=np.float64)
    if env.action_space.shape != (k,) or np.any(np.asarray(env.action_space.low) != 0):
        raise SolverCheckError(f"{env}: action space must be Box(0, pmax, ({k},)), got {env.action_space}")
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        for key in _POWER_KEYS:
            want = (k, k) if key == "gain" else (k,)
            if obs[key].shape != want or obs[key].dtype != np.float32:
                raise SolverCheckError(f"{env}: obs[{key!r}] must be float32 {want}, got {obs[key].dtype} {obs[key].shape}")
        if not np.array_equal(obs["pmax"], high.astype(np.float32)):
            raise SolverCheckError(f"{env}: obs['pmax'] {obs['pmax']} differs from the action space's high {high}")
        truth = true_observation(obs, info)  # the channel the action is scored on
        action = env.action_space.sample() * np.float32(1.2)  # some entries above pmax: clipped
        obs_next, reward, terminated, truncated, info = env.step(action)
        feasible = np.clip(action.astype(np.float64), 0.0, high)
        want_r = float(weighted_sum_rate(truth["gain"], feasible, truth["noise"], truth["weight"]))
        if not np.isclose(reward, want_r, rtol=1e-6, atol=1e-9):
            raise SolverCheckError(f"{env}: reward {reward} != weighted sum rate {want_r} of the clipped action")
        for key in ("rates", "sum_rate", "clipped"):
            if key not in info:
                raise SolverCheckError(f"{env}: info lacks {key!r}; it must carry rates, sum_rate and clipped")
        if int(info["clipped"]) != int(np.count_nonzero(feasible != action)):
            raise SolverCheckError(f"{env}: info['clipped']={info['clipped']} but {np.count_nonzero(feasible != action)} entries were clipped")
        obs = obs_next
        if terminated or truncated:
            obs, info = env.reset()
