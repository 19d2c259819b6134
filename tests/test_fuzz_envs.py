"""Property-based fuzzing of every registered env ID (issue 16, robustness), with hypothesis.

- Actions: random valid ones and invalid ones (wrong shape, wrong dtype, NaN, inf, negative, above the
  budget, huge up to 1e300, python lists, scalars), on the single and the native vector env. The contract
  (DESIGN.md, "Action, reward, episodes"): NaN/inf, a wrong shape or a non-numeric dtype raise ``ValueError``
  and leave the env untouched (the next valid step gives what a twin env that never saw the bad action
  gives, observation and reward bit for bit: no slot, RNG draw or weight update was spent); every other
  action is made feasible and scored: a finite reward >= 0, equal to the weighted sum rate of
  ``Problem.project(action)`` on the slot the action answered.
- Configurations: valid keyword combinations at the edges (one link, noise and budgets from 1e-44 to 1e37 W,
  any SNR whose budget is a float32, densities 1e-3..1e3, speeds, weights modes, aged and noisy CSI) build
  an env whose observations are finite float32 values inside its space and whose rewards are finite; one
  invalid value of any knob (NaN, inf, 0, negative, a string, a bool, a value that is 0 or inf in float32,
  a per-link array of the wrong length) raises a ``ValueError`` naming the knob.
- 1,000 links: one IC and one D2D env step finite rewards.

Derandomised (the ``ci`` profile of ``tests/conftest.py``); ``HYPOTHESIS_PROFILE=long`` runs 10x the examples.
"""

from __future__ import annotations

import os
import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import l2o_env  # noqa: E402,F401  (registers the IDs)
from l2o_env.envs.core import true_observation  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from l2o_env.scenarios import ENV_IDS, get_scenario  # noqa: E402

#: HYPOTHESIS_PROFILE=long (tests/conftest.py) tries 10x the examples of every property
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
F32_MAX = float(np.finfo(np.float32).max)
#: small networks keep the examples fast (the 1,000-link case is its own test)
SMALL = {
    "PowerControl-IC-v0": {"num_links": 4},
    "PowerControl-IMAC-v0": {"num_links": 4, "num_cells": 2},
    "PowerControl-AdHoc-v0": {"num_links": 4},
    "PowerControl-D2D-v0": {"num_links": 4},
    "Beamforming-MISO-v0": {"num_users": 3, "num_antennas": 2},
    "Beamforming-IBC-v0": {"num_cells": 2, "users_per_cell": 2, "num_antennas": 2},
    "Beamforming-D2D-v0": {"num_links": 4},
}
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_ENVS: dict = {}


def _envs(env_id: str, vector: bool):
    """A (cached) env and its twin: the twin takes only the valid actions, so both must stay equal."""
    key = (env_id, vector)
    if key not in _ENVS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if vector:
                _ENVS[key] = tuple(gym.make_vec(env_id, num_envs=2, **SMALL[env_id]) for _ in range(2))
            else:
                _ENVS[key] = tuple(gym.make(env_id, **SMALL[env_id]) for _ in range(2))
    return _ENVS[key]


# --- actions ----------------------------------------------------------------------------------------
@st.composite
def actions(draw, low: np.ndarray, high: np.ndarray):
    """Any action: inside the Box, outside it, huge, with NaN/inf, of another shape or dtype, a list."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = high.shape
    inside = rng.uniform(low.astype(np.float64), high.astype(np.float64))
    kind = draw(st.sampled_from(["inside", "scaled", "huge", "nonfinite", "shape", "dtype", "list", "scalar"]))
    if kind == "inside":
        action = inside
    elif kind == "scaled":  # over the budget, negative, tiny: by up to 30 decades
        signs = np.where(rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 1.0])), -1.0, 1.0)
        action = inside * signs * 10.0 ** draw(st.floats(-30, 30))
    elif kind == "huge":
        action = np.full(shape, draw(st.sampled_from([1e300, -1e300, F32_MAX, 1e38, -1e20])))
        action[..., :1] = inside[..., :1] if draw(st.booleans()) else action[..., :1]
    elif kind == "nonfinite":
        action = inside.copy()
        bad = rng.random(shape) < draw(st.sampled_from([0.0, 0.2, 1.0]))
        bad.flat[rng.integers(0, bad.size)] = True
        action[bad] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "shape":
        variants = [inside[..., :-1], inside[..., None], np.concatenate([inside, inside], axis=-1), inside.ravel(),
                    inside[:0], inside.T]
        action = variants[draw(st.integers(0, len(variants) - 1))]
    elif kind == "dtype":
        return draw(st.sampled_from([
            inside.astype(np.complex64), inside > 0.5, inside.astype(str), inside.astype(object),
            np.full(shape, None), inside.astype(np.int64), inside.astype(np.uint8), inside.astype(np.int8),
        ]))
    elif kind == "list":
        return inside.tolist()
    else:
        return float(inside.flat[0])
    with np.errstate(over="ignore"):  # (float16 and float32 turn the largest values into inf: invalid actions)
        return action.astype(draw(st.sampled_from([np.float64, np.float32, np.float16])))


def _invalid(action, shape) -> bool:
    """Whether the contract requires a ValueError: not a real numeric array of ``shape``, or NaN/inf in it."""
    try:
        arr = np.asarray(action)
    except Exception:
        return True
    if arr.dtype.kind not in "fiu" or arr.shape != shape:
        return True
    return not bool(np.isfinite(arr.astype(np.float64)).all())


def _step(env, action):
    """``env.step(action)``, with numpy's RuntimeWarnings (overflow, invalid value) as errors: a valid action,
    however large, must not overflow inside the env, and an invalid one is refused before any arithmetic."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return env.step(action)


def _same(a, b):
    """Two step (or reset) results, bit for bit."""
    obs_a, obs_b = a[0], b[0]
    assert obs_a.keys() == obs_b.keys()
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key], err_msg=key)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("vector", [False, True], ids=["single", "vector"])
@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=30 * SCALE, **_SETTINGS)
@given(data=st.data())
def test_any_action_is_refused_cleanly_or_scored_finite(env_id, vector, data):
    env, twin = _envs(env_id, vector)
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    obs, info = env.reset(seed=seed)
    twin.reset(seed=seed)
    space = env.action_space
    problem = get_problem(get_scenario(env_id).problem)
    good = (0.5 * space.high).astype(np.float32)
    for _ in range(data.draw(st.integers(1, 3), label="actions")):
        action = data.draw(actions(space.low, space.high), label="action")
        if _invalid(action, space.shape):
            with pytest.raises(ValueError):
                _step(env, action)
            _same(env.step(good), twin.step(good))  # nothing changed: the same next slot as the twin's
            obs, info = env.unwrapped.true_observation(), {}
            continue
        truth = true_observation(obs, info) if info else obs
        batched = {k: np.asarray(v, dtype=np.float64) if vector else np.asarray(v, dtype=np.float64)[None]
                   for k, v in truth.items()}
        arr = np.asarray(action, dtype=np.float64)
        feasible, changed = problem.project(batched, arr if vector else arr[None])
        want = problem.weighted_sum_rate(batched, feasible)
        obs, reward, _, _, info = _step(env, action)
        _, twin_reward, *_ = twin.step(action)
        reward = np.atleast_1d(np.asarray(reward, dtype=np.float64))
        note(f"reward {reward}, want {want}")
        assert np.all(np.isfinite(reward)) and np.all(reward >= 0.0)
        assert np.all(np.isfinite(info["rates"]))
        np.testing.assert_allclose(reward, want, rtol=1e-6, atol=1e-12)
        np.testing.assert_array_equal(np.atleast_1d(info[env.unwrapped.count_key]), changed)
        np.testing.assert_array_equal(reward, np.atleast_1d(twin_reward))
        for key, val in obs.items():
            assert np.all(np.isfinite(val)), key


# --- configurations ---------------------------------------------------------------------------------
def _pow10(lo, hi):
    return st.floats(lo, hi).map(lambda e: float(10.0 ** e))


_COMMON = {
    "speed": st.one_of(st.none(), st.floats(0.0, 100.0)),
    "weights": st.sampled_from(["uniform", "random", "proportional_fair"]),
    "csi_delay": st.integers(0, 2),
    "csi_error": st.floats(0.0, 1.0),
    "csi_history": st.integers(1, 3),
}
_NOISE = st.one_of(st.none(), _pow10(-44, 37))  # (None: the default, the model's)
_PMAX = st.one_of(st.none(), _pow10(-44, 37))
_DENSITY = _pow10(-3, 3)


@st.composite
def configurations(draw, env_id: str):
    """Valid keywords of ``gym.make(env_id)`` at the edges of their ranges."""
    kw = {}
    if env_id == "PowerControl-IC-v0":
        kw["num_links"] = draw(st.integers(1, 5))
        which = draw(st.sampled_from(["noise", "snr_db", "neither"]))
        if which == "noise":
            kw["noise"] = draw(_NOISE)
        elif which == "snr_db":  # noise = pmax / 10^(snr/10) must be a float32 > 0: pmax 1 and |snr| <= 370 dB
            kw["snr_db"] = draw(st.floats(-370.0, 370.0))
        if which != "snr_db" and draw(st.booleans()):
            kw["pmax"] = draw(_PMAX)
    elif env_id == "PowerControl-IMAC-v0":
        cells = draw(st.integers(1, 3))
        kw.update(num_cells=cells, num_links=cells * draw(st.integers(1, 2)), density=draw(_DENSITY))
    elif env_id in ("PowerControl-AdHoc-v0", "PowerControl-D2D-v0"):
        kw.update(num_links=draw(st.integers(1, 5)), density=draw(_DENSITY))
        if env_id == "PowerControl-AdHoc-v0":
            kw["topology"] = draw(st.sampled_from(["fixed", "random"]))
    elif env_id == "Beamforming-MISO-v0":
        kw.update(num_users=draw(st.integers(1, 4)), num_antennas=draw(st.integers(1, 4)),
                  snr_db=draw(st.floats(-370.0, 370.0)))
    elif env_id == "Beamforming-IBC-v0":
        kw.update(num_cells=draw(st.integers(1, 2)), users_per_cell=draw(st.integers(1, 2)),
                  num_antennas=draw(st.integers(1, 4)), num_rx_antennas=draw(st.integers(1, 2)),
                  density=draw(_DENSITY), interference=draw(st.sampled_from(["low", "high"])))
        if draw(st.booleans()):  # (the SNR rule sets the noise: one or the other)
            kw["snr_db"] = draw(st.floats(-100.0, 100.0))
    else:
        kw.update(num_links=draw(st.integers(1, 5)), num_antennas=draw(st.integers(1, 3)), density=draw(_DENSITY),
                  pathloss=draw(st.sampled_from(["authors", "itu1411"])))
    if env_id not in ("PowerControl-IC-v0", "Beamforming-MISO-v0") and draw(st.booleans()):
        if "snr_db" not in kw:  # (the IBC's noise follows its SNR rule unless given)
            kw["noise"] = draw(_NOISE)
        kw["pmax"] = draw(_PMAX)
    for name, strategy in _COMMON.items():
        if draw(st.booleans()):
            kw[name] = draw(strategy)
    return kw


def _finite_obs(env, obs):
    for key, val in obs.items():
        assert val.dtype == np.float32, key
        assert np.all(np.isfinite(val)), f"obs[{key!r}] is not finite"
    assert env.observation_space.contains(obs), "the observation is outside the env's space"


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=25 * SCALE, **_SETTINGS)
@given(data=st.data())
def test_edge_configurations_build_and_step_finite(env_id, data):
    kwargs = data.draw(configurations(env_id), label="kwargs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id, **kwargs)
    try:
        obs, _ = env.reset(seed=data.draw(st.integers(0, 2**31 - 1), label="seed"))
        _finite_obs(env, obs)
        space = env.action_space
        space.seed(0)
        for action in (space.sample(), np.zeros(space.shape, np.float32), space.high, space.low):
            obs, reward, _, _, info = _step(env, action)
            assert np.isfinite(reward) and reward >= 0.0, reward
            assert np.all(np.isfinite(info["rates"]))
            _finite_obs(env, obs)
    finally:
        env.close()


#: invalid values: (value, knobs it is invalid for); every knob refuses NaN, inf, strings and bools
_BAD_ANY = [np.nan, np.inf, -np.inf, "1", True, None, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]
_BAD = {
    "noise": [0.0, -1.0, 1e-46, 1e39, -np.inf],
    "pmax": [0.0, -1.0, 1e-46, 1e39],
    "num_links": [0, -3, 2.5, 1e20],
    "density": [0.0, -1.0],
    "speed": [-1.0],
    "slot_duration": [0.0, -1e-3],
    "csi_delay": [-1, 0.5],
    "csi_error": [-0.1, 1.5],
    "csi_history": [0, 1.5],
    "pf_smoothing": [0.0, 1.5],
    "snr_db": [1e6, -1e6],
}
_KNOBS = {
    "PowerControl-IC-v0": ["noise", "pmax", "num_links", "speed", "slot_duration", "csi_delay", "csi_error",
                           "csi_history", "pf_smoothing", "snr_db"],
    "PowerControl-IMAC-v0": ["noise", "pmax", "num_links", "density", "speed", "csi_error"],
    "PowerControl-AdHoc-v0": ["noise", "pmax", "num_links", "density", "speed", "csi_delay"],
    "PowerControl-D2D-v0": ["noise", "pmax", "num_links", "density", "speed", "csi_history"],
    "Beamforming-MISO-v0": ["noise", "pmax", "speed", "snr_db", "csi_error"],
    "Beamforming-IBC-v0": ["noise", "pmax", "density", "speed", "snr_db"],
    "Beamforming-D2D-v0": ["noise", "pmax", "num_links", "density", "speed", "csi_delay"],
}


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=20 * SCALE, **_SETTINGS)
@given(data=st.data())
def test_an_invalid_knob_is_a_value_error_naming_it(env_id, data):
    knob = data.draw(st.sampled_from(_KNOBS[env_id]), label="knob")
    allowed_none = knob in ("noise", "pmax", "speed", "snr_db")  # None means the default there
    value = data.draw(st.sampled_from([v for v in _BAD_ANY if not (v is None and allowed_none)] + _BAD.get(knob, [])),
                      label="value")
    kwargs = {**SMALL[env_id], knob: value}
    with pytest.raises(ValueError) as info:
        gym.make(env_id, **kwargs)
    assert knob in str(info.value), f"the error does not name {knob!r}: {info.value}"


@pytest.mark.parametrize("env_id, kwargs", [("PowerControl-IC-v0", {}), ("PowerControl-D2D-v0", {"speed": 3.0})],
                         ids=["ic", "d2d-moving"])
def test_a_thousand_links(env_id, kwargs):
    env = gym.make(env_id, num_links=1000, **kwargs)
    obs, _ = env.reset(seed=0)
    assert obs["gain"].shape == (1000, 1000)
    space = env.action_space
    space.seed(0)
    for action in (space.sample(), space.high, np.zeros(1000, np.float32), 10.0 * space.high):
        obs, reward, _, _, info = env.step(action)
        assert np.isfinite(reward) and reward >= 0.0
        assert np.all(np.isfinite(info["rates"])) and np.all(np.isfinite(obs["gain"]))
    bad = space.high.copy()
    bad[999] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
