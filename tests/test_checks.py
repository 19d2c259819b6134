"""check_solver / check_env: breaches raise, advice warns."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import l2o_env  # noqa: F401
from l2o_env.checks import SolverCheckError, check_env, check_solver


class FullPower:
    name = "full"
    problems = frozenset({"power"})

    def act(self, obs):
        return np.asarray(obs["pmax"], dtype=np.float64).copy()

    def act_batch(self, obs):
        return np.asarray(obs["pmax"], dtype=np.float64).copy()

    def reset(self):
        pass


class TooMuch(FullPower):
    def act(self, obs):
        p = super().act(obs)
        p[[1, 3]] *= 2
        return p


class Mutates(FullPower):
    def act(self, obs):
        obs["gain"][0, 0] = 0.0
        return super().act(obs)


class WrongShape(FullPower):
    def act(self, obs):
        return super().act(obs)[:-1]


class NaNs(FullPower):
    def act(self, obs):
        p = super().act(obs)
        p[2] = np.nan
        return p


class BatchDisagrees(FullPower):
    def act_batch(self, obs):
        return 0.5 * super().act_batch(obs)


class Minimal:
    def act(self, obs):
        return np.zeros(np.shape(obs["pmax"]))


@pytest.mark.parametrize("env_id", ["PowerControl-IC-v0", "PowerControl-IMAC-v0"])
def test_a_good_solver_passes_silently(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_solver(FullPower(), env_id)


@pytest.mark.parametrize(
    "solver, match",
    [
        (TooMuch(), r"above pmax at \[\(1,\), \(3,\)\]"),
        (Mutates(), "modified the observation"),
        (WrongShape(), "shape"),
        (NaNs(), "NaN"),
        (object(), "act"),
    ],
    ids=["too-much", "mutates", "wrong-shape", "nan", "no-act"],
)
def test_breaches_raise(solver, match):
    with pytest.raises(SolverCheckError, match=match):
        check_solver(solver, "PowerControl-IC-v0")


def test_advice_warns():
    with pytest.warns(UserWarning, match="differ"):
        check_solver(BatchDisagrees(), "PowerControl-IC-v0")
    with pytest.warns(UserWarning) as record:
        check_solver(Minimal(), "PowerControl-IC-v0")
    messages = " ".join(str(w.message) for w in record)
    for part in ("no act_batch", "no `problems`", "no string `name`", "no reset()"):
        assert part in messages


def test_wrong_problem_is_a_breach():
    s = FullPower()
    s.problems = frozenset({"beamforming"})
    with pytest.raises(SolverCheckError, match="power"):
        check_solver(s, "PowerControl-IC-v0")


def test_check_env_catches_a_wrong_reward():
    class Doubled(gym.Wrapper):
        def step(self, action):
            obs, r, te, tr, info = self.env.step(action)
            return obs, 2 * r, te, tr, info

    check_env(gym.make("PowerControl-IC-v0"))
    with pytest.raises(SolverCheckError, match="reward"):
        check_env(Doubled(gym.make("PowerControl-IC-v0")))
