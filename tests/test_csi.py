"""Aged and noisy channel state (issue 14): the env knobs ``csi_delay``, ``csi_error`` and ``csi_history``.

The observation at step t holds the estimate of slot t - d (``sqrt(1 - e^2) h + e n``), the reward is paid
on the true channel of slot t, which ``info`` carries (``true_<key>``) beside every observation, and the
sampler returns it with ``with_truth=True``. Defaults (0, 0, 1) change nothing (the pinned hashes of
``tests/test_envs.py`` and the comparison below).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import l2o_env
from l2o_env.channels.base import jakes_correlation
from l2o_env.checks import check_env
from l2o_env.data import ObservationSampler
from l2o_env.envs import true_observation
from l2o_env.envs.core import ENV_DEFAULTS, parse_config
from l2o_env.problems import get_problem
from l2o_env.problems.beamforming import as_complex
from l2o_env.scenarios import ENV_IDS, get_scenario

POWER_IDS = [e for e in ENV_IDS if get_scenario(e).problem == "power"]
BF_IDS = [e for e in ENV_IDS if get_scenario(e).problem == "beamforming"]
# smaller networks where the default is large, so that every test stays cheap
SMALL = {"PowerControl-D2D-v0": {"num_links": 12}, "Beamforming-D2D-v0": {"num_links": 8}}
MOBILE = {"speed": 30.0, "slot_duration": 1e-3}  # rho = J0(2 pi f_d T) ~ 0.51 at 2.4 GHz


def kw(env_id, **extra):
    return {**SMALL.get(env_id, {}), **extra}


def channel_key(env_id):
    return get_problem(get_scenario(env_id).problem).channel_key


def random_action(space, rng):
    """Some entries outside the feasible set (clipped / projected), as a policy may give."""
    high = space.high.astype(np.float64)
    low = space.low.astype(np.float64)
    return (low + rng.random(space.shape) * 1.2 * (high - low)).astype(np.float32)


def slot_keys(info):
    return [k[len("true_"):] for k in info if k.startswith("true_")]


# --- defaults ---------------------------------------------------------------------------------------
def test_defaults_are_registered_and_parsed():
    assert ENV_DEFAULTS["csi_delay"] == 0 and ENV_DEFAULTS["csi_error"] == 0.0 and ENV_DEFAULTS["csi_history"] == 1
    cfg = parse_config("PowerControl-IC-v0")
    assert (cfg.csi_delay, cfg.csi_error, cfg.csi_history, cfg.perfect_csi) == (0, 0.0, 1, True)
    assert "gain_history" not in cfg.observation_keys


@pytest.mark.parametrize("vector", [False, True], ids=["single", "vector"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_explicit_defaults_change_nothing_and_info_truth_is_the_observation(env_id, vector):
    """(0, 0, 1) spelled out gives the same trajectory as no keyword; with perfect CSI the truth in
    ``info`` is the observation itself."""
    runs = []
    for extra in ({}, {"csi_delay": 0, "csi_error": 0.0, "csi_history": 1}):
        args = kw(env_id, speed=3.0, weights="random", **extra)
        env = gym.make_vec(env_id, num_envs=2, max_episode_steps=2, **args) if vector else gym.make(env_id, **args)
        rng = np.random.default_rng(0)
        obs, info = env.reset(seed=11)
        trace = [(obs, info)]
        for _ in range(3):
            obs, reward, _, _, info = env.step(random_action(env.action_space, rng))
            trace.append((obs, info, reward))
        runs.append(trace)
    for a, b in zip(*runs):
        assert list(a[0]) == list(b[0])
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key], err_msg=key)
        if len(a) == 3:
            np.testing.assert_array_equal(a[2], b[2])
        for key in slot_keys(a[1]):
            np.testing.assert_array_equal(a[1]["true_" + key], a[0][key], err_msg=key)
        assert set(slot_keys(a[1])) >= {channel_key(env_id)}


# --- delay ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [1, 2])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_env_observes_the_true_slot_of_d_steps_earlier(env_id, delay):
    env = gym.make(env_id, **kw(env_id, csi_delay=delay, **MOBILE))
    rng = np.random.default_rng(1)
    obs, info = env.reset(seed=3)
    observed, truths = [obs], [info]
    for _ in range(delay + 3):
        obs, _, _, _, info = env.step(random_action(env.action_space, rng))
        observed.append(obs)
        truths.append(info)
    keys = slot_keys(truths[0])
    assert channel_key(env_id) in keys
    for t in range(delay, len(observed)):
        for key in keys:  # the channel, positions, bs_gain, the IBC's noise: all of slot t - d
            np.testing.assert_array_equal(observed[t][key], truths[t - delay]["true_" + key], err_msg=f"{key} t={t}")
    # and not the current slot's (30 m/s, 1 ms: the channel moved)
    ch = channel_key(env_id)
    assert not np.array_equal(observed[-1][ch], truths[-1]["true_" + ch])


@pytest.mark.parametrize("env_id", ["PowerControl-IMAC-v0", "PowerControl-AdHoc-v0", "Beamforming-MISO-v0", "Beamforming-IBC-v0"])
def test_vector_env_observes_the_true_slot_of_d_steps_earlier_across_resets(env_id):
    """Per sub-env, within an episode (autoreset and reset_mask included), and the first observation of
    an episode is already aged: the env simulated the d slots before it."""
    d, b = 2, 3
    envs = gym.make_vec(env_id, num_envs=b, max_episode_steps=5, **kw(env_id, csi_delay=d, weights="random", **MOBILE))
    rng = np.random.default_rng(2)
    obs, info = envs.reset(seed=5)
    observed, truths, start = [obs], [info], [np.zeros(b, dtype=int)]
    ch = channel_key(env_id)
    for t in range(1, 13):
        obs, _, _, trunc, info = envs.step(random_action(envs.action_space, rng))
        first = start[-1].copy()
        first[trunc] = t
        if trunc.any():
            for i in np.flatnonzero(trunc):  # final_obs: slot t of the old episode, observed as slot t - d
                if t - d >= start[-1][i]:
                    np.testing.assert_array_equal(info["final_obs"][i][ch], truths[t - d]["true_" + ch][i])
        if t == 7:  # a partial reset of sub-env 1
            obs, info = envs.reset(options={"reset_mask": np.array([False, True, False])})
            first[1] = t
        observed.append(obs)
        truths.append(info)
        start.append(first)
    checked = 0
    for t in range(len(observed)):
        for i in range(b):
            if t - d >= start[t][i]:
                for key in slot_keys(truths[0]):
                    np.testing.assert_array_equal(observed[t][key][i], truths[t - d]["true_" + key][i], err_msg=f"{key} t={t} i={i}")
                checked += 1
    assert checked >= 12
    for i in range(b):  # the first observation of the first episode is the estimate of an earlier slot
        assert not np.array_equal(observed[0][ch][i], truths[0]["true_" + ch][i])


@pytest.mark.parametrize("env_id", ["PowerControl-IC-v0", "PowerControl-D2D-v0", "Beamforming-MISO-v0", "Beamforming-IBC-v0"])
def test_vector_env_of_one_is_the_single_env(env_id):
    args = kw(env_id, csi_delay=1, csi_error=0.2, csi_history=2, weights="random", **MOBILE)
    single = gym.make(env_id, **args)
    envs = gym.make_vec(env_id, num_envs=1, **args)
    obs, info = single.reset(seed=4)
    vobs, vinfo = envs.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(4):
        for key in obs:
            np.testing.assert_array_equal(vobs[key][0], obs[key], err_msg=key)
        for key in info:
            np.testing.assert_array_equal(vinfo[key][0], info[key], err_msg=key)
        action = random_action(single.action_space, rng)
        obs, reward, _, _, info = single.step(action)
        vobs, vreward, _, _, vinfo = envs.step(action[None])
        assert vreward[0] == reward


# --- the reward is paid on the true channel ---------------------------------------------------------
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_is_the_rate_on_the_true_channel_from_info(env_id):
    env = gym.make(env_id, **kw(env_id, csi_delay=1, csi_error=0.3, weights="random", **MOBILE))
    problem = env.unwrapped.problem
    rng = np.random.default_rng(3)
    obs, info = env.reset(seed=8)
    differs = 0
    for _ in range(4):
        action = random_action(env.action_space, rng)
        truth = {k: np.asarray(v, dtype=np.float64)[None] for k, v in true_observation(obs, info).items()}
        seen = {k: np.asarray(v, dtype=np.float64)[None] for k, v in obs.items()}
        feasible, _ = problem.project(truth, action[None].astype(np.float64))
        want = float(problem.weighted_sum_rate(truth, feasible)[0])
        on_observed = float(problem.weighted_sum_rate(seen, problem.project(seen, action[None].astype(np.float64))[0])[0])
        obs, reward, _, _, step_info = env.step(action)
        assert reward == pytest.approx(want, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(step_info["rates"], problem.rates(truth, feasible)[0], rtol=1e-9, atol=1e-12)
        differs += not np.isclose(reward, on_observed, rtol=1e-6)
        info = step_info
    assert differs >= 3  # the observed channel would have given other rewards


def test_vector_reward_is_the_rate_on_the_true_channel_and_the_genie_beats_aged_wmmse():
    """WMMSE fed the true channel through ``info`` (the genie) earns more than WMMSE on the aged
    observation; each reward is the rate on the truth that came with the observation."""
    import solvers

    env_id = "PowerControl-IC-v0"
    problem = get_problem("power")
    wmmse = solvers.make("wmmse")
    totals = {}
    for who in ("aged", "genie"):
        envs = gym.make_vec(env_id, num_envs=64, csi_delay=1, **MOBILE)
        obs, info = envs.reset(seed=0)
        total = 0.0
        for _ in range(3):
            truth = true_observation(obs, info)
            action = wmmse.act_batch(truth if who == "genie" else obs)
            batched = {k: np.asarray(v, dtype=np.float64) for k, v in truth.items()}
            want = problem.weighted_sum_rate(batched, problem.project(batched, action.astype(np.float32).astype(np.float64))[0])
            obs, reward, _, _, info = envs.step(action.astype(np.float32))
            np.testing.assert_allclose(reward, want, rtol=1e-9)
            total += reward.mean()
        totals[who] = total
    assert totals["genie"] > 1.1 * totals["aged"]


# --- estimation error: statistics -------------------------------------------------------------------
def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("error", [0.3, 0.7])
def test_csi_error_complex_correlation_is_sqrt_one_minus_e2(error):
    """MISO (unit large scale): the observed and true complex entries have correlation sqrt(1 - e^2) and
    the estimate keeps the channel's power (the noise has the large-scale power of each entry)."""
    envs = gym.make_vec("Beamforming-MISO-v0", num_envs=500, csi_error=error)
    obs, info = envs.reset(seed=0)
    h_hat = as_complex(obs["channel"]).ravel()
    h = as_complex(info["true_channel"]).ravel()  # 8,000 CN(0, 1) entries
    rho = (h_hat * h.conj()).sum() / np.sqrt((np.abs(h_hat) ** 2).sum() * (np.abs(h) ** 2).sum())
    assert abs(rho.real - np.sqrt(1 - error**2)) < 0.025  # standard error ~ (1 - rho^2) / sqrt(N) < 0.006
    assert abs(rho.imag) < 0.03
    assert np.mean(np.abs(h_hat) ** 2) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("error", [0.3, 0.7])
def test_csi_error_gain_correlation_is_one_minus_e2(error):
    """Power control observes |h_hat|^2: for CN(0, 1) entries corr(|h_hat|^2, |h|^2) = 1 - e^2."""
    obs, truth = ObservationSampler("PowerControl-IC-v0", seed=1, csi_error=error)(500, with_truth=True)
    c = _corr(obs["gain"].ravel(), truth["gain"].ravel())  # 50,000 pairs
    assert abs(c - (1 - error**2)) < 0.03
    assert obs["gain"].mean() == pytest.approx(1.0, abs=0.03)


def test_csi_error_noise_follows_each_entrys_large_scale_power():
    """A fixed ad hoc layout (path gains over many decades): per entry, the estimate keeps the entry's
    mean gain and correlates 1 - e^2 with the truth; with a correct scale the pooled numbers say so."""
    e = 0.6
    obs, truth = ObservationSampler("PowerControl-AdHoc-v0", seed=2, csi_error=e)(800, with_truth=True)
    g_hat, g = obs["gain"], truth["gain"]
    scale = g.mean(axis=0)  # each entry's large scale (fixed layout), estimated
    assert scale.max() / scale.min() > 1e4
    ratio = g_hat.mean(axis=0) / scale
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert _corr((g_hat / scale).ravel(), (g / scale).ravel()) == pytest.approx(1 - e**2, abs=0.04)


def test_csi_error_one_observes_only_the_large_scale():
    obs, truth = ObservationSampler("PowerControl-IC-v0", seed=3, csi_error=1.0)(400, with_truth=True)
    assert abs(_corr(obs["gain"].ravel(), truth["gain"].ravel())) < 0.03
    assert obs["gain"].mean() == pytest.approx(1.0, abs=0.03)


# --- delay: statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize("delay, speed", [(1, 30.0), (2, 30.0), (1, 3.0)])
def test_delayed_gain_correlation_is_rho_to_the_2d(delay, speed):
    """Jakes fading: corr(|h_(t-d)|^2, |h_t|^2) = rho^(2 d), rho = J0(2 pi f_d T)."""
    obs, truth = ObservationSampler("PowerControl-IC-v0", seed=4, csi_delay=delay, speed=speed,
                                    slot_duration=1e-3)(500, with_truth=True)
    rho = jakes_correlation(speed, 2.4e9, 1e-3)
    assert abs(_corr(obs["gain"].ravel(), truth["gain"].ravel()) - rho ** (2 * delay)) < 0.03


def test_delay_without_a_speed_observes_an_independent_draw():
    obs, truth = ObservationSampler("PowerControl-IC-v0", seed=5, csi_delay=1)(500, with_truth=True)
    assert abs(_corr(obs["gain"].ravel(), truth["gain"].ravel())) < 0.03
    env = gym.make("PowerControl-IC-v0", csi_delay=1)  # the env alike: slot t - 1 is another draw
    obs, info = env.reset(seed=0)
    obs2, *_, info2 = env.step(np.ones(10, np.float32))
    np.testing.assert_array_equal(obs2["gain"], info["true_gain"])


# --- history ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["PowerControl-IC-v0", "PowerControl-IMAC-v0", "Beamforming-MISO-v0", "Beamforming-D2D-v0"])
def test_history_shapes_order_and_contents(env_id):
    """``<channel>_history (n, ...)``, oldest first; its last entry is the observed channel and each entry
    is the channel observed that many steps before (estimates are not redrawn)."""
    n = 3
    env = gym.make(env_id, **kw(env_id, csi_history=n, csi_delay=1, csi_error=0.2, **MOBILE))
    ch = channel_key(env_id)
    hkey = f"{ch}_history"
    assert hkey in env.observation_space.spaces
    rng = np.random.default_rng(6)
    obs, _ = env.reset(seed=1)
    seen = [obs]
    for _ in range(5):
        assert obs in env.observation_space
        assert obs[hkey].shape == (n, *obs[ch].shape) and obs[hkey].dtype == np.float32
        np.testing.assert_array_equal(obs[hkey][-1], obs[ch])
        obs, *_ = env.step(random_action(env.action_space, rng))
        seen.append(obs)
    for t in range(n - 1, len(seen)):
        for j in range(n):
            np.testing.assert_array_equal(seen[t][hkey][j], seen[t - (n - 1) + j][ch])
    # the first observation's history: earlier slots of the same episode, distinct and correlated
    first = seen[0][hkey]
    assert not np.array_equal(first[0], first[1])


def test_history_in_the_vector_env_and_the_sampler():
    n, b = 4, 5
    envs = gym.make_vec("PowerControl-AdHoc-v0", num_envs=b, csi_history=n, max_episode_steps=3, **MOBILE)
    assert envs.single_observation_space["gain_history"].shape == (n, 20, 20)
    obs, _ = envs.reset(seed=0)
    for _ in range(4):
        assert obs["gain_history"].shape == (b, n, 20, 20)
        np.testing.assert_array_equal(obs["gain_history"][:, -1], obs["gain"])
        obs, *_ = envs.step(np.ones((b, 20), np.float32))
    batch, truth = ObservationSampler("PowerControl-AdHoc-v0", csi_history=n, **MOBILE)(6, with_truth=True)
    assert batch["gain_history"].shape == (6, n, 20, 20) and "gain_history" not in truth
    # perfect CSI with a history: the truth is the observation without the history
    for key in truth:
        np.testing.assert_array_equal(truth[key], batch[key])


def test_history_of_one_adds_no_key():
    env = gym.make("Beamforming-MISO-v0", csi_history=1)
    assert "channel_history" not in env.observation_space.spaces
    assert "channel_history" not in env.reset(seed=0)[0]


# --- sampler truth -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["PowerControl-D2D-v0", "Beamforming-IBC-v0"])
def test_sampler_truth_is_the_vector_env_truth(env_id):
    """The first batch of a sampler with a delay and a speed is the vector env's first observation, and
    its truth is the perfect-CSI observation built from the env's ``info``."""
    args = kw(env_id, csi_delay=2, csi_error=0.1, csi_history=2, **MOBILE)
    obs, truth = ObservationSampler(env_id, seed=9, **args)(4, with_truth=True)
    env_obs, info = gym.make_vec(env_id, num_envs=4, **args).reset(seed=9)
    assert list(obs) == list(env_obs)
    for key in env_obs:
        np.testing.assert_array_equal(obs[key], env_obs[key].astype(np.float64), err_msg=key)
    want = true_observation(env_obs, info)
    assert list(truth) == list(want) == list(parse_config(env_id, **SMALL.get(env_id, {})).observation_keys)
    for key in want:
        np.testing.assert_array_equal(truth[key], np.asarray(want[key], dtype=np.float64), err_msg=key)
    ch = channel_key(env_id)
    assert not np.array_equal(truth[ch], obs[ch])


def test_sampler_without_truth_and_bad_with_truth():
    sampler = ObservationSampler("PowerControl-IC-v0", seed=0, csi_error=0.5)
    assert isinstance(sampler(3), dict)
    with pytest.raises(ValueError, match="with_truth"):
        sampler(3, with_truth="yes")


def test_sampler_with_perfect_csi_returns_the_observation_as_truth():
    obs, truth = ObservationSampler("Beamforming-MISO-v0", seed=0)(8, with_truth=True)
    assert list(obs) == list(truth)
    for key in obs:
        np.testing.assert_array_equal(obs[key], truth[key])


# --- helpers for the harness ----------------------------------------------------------------------
def test_true_observation_of_the_env_and_of_obs_info_agree():
    env = gym.make("PowerControl-IMAC-v0", csi_delay=1, csi_error=0.2, csi_history=2, **MOBILE)
    obs, info = env.reset(seed=2)
    a = env.unwrapped.true_observation()
    b = true_observation(obs, info)
    assert list(a) == list(b) == list(parse_config("PowerControl-IMAC-v0").observation_keys)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    envs = gym.make_vec("Beamforming-IBC-v0", num_envs=2, csi_error=0.5)
    obs, info = envs.reset(seed=0)
    a, b = envs.true_observation(), true_observation(obs, info)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(obs["noise"], a["noise"])  # the IBC's noise follows the (estimated) channel
    # an info without truth (another env) leaves the observation as it is, less any history
    assert list(true_observation({"gain": 1, "gain_history": 2}, {})) == ["gain"]


# --- Gymnasium's checker, every ID ------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes_with_the_knobs(env_id):
    check_env(gym.make(env_id, **kw(env_id, csi_delay=2, csi_error=0.3, csi_history=3, **MOBILE)))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_the_issue_example_works_for_every_id(env_id):
    env = gym.make(env_id, csi_delay=1, csi_error=0.1, csi_history=3, speed=30, slot_duration=0.001)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    ch = channel_key(env_id)
    assert obs[f"{ch}_history"].shape[0] == 3 and info[f"true_{ch}"].shape == obs[ch].shape
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isfinite(reward) and obs in env.observation_space and not terminated


# --- bad values --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value, allowed", [
    ("csi_delay", -1, "integer >= 0"),
    ("csi_delay", 1.5, "integer >= 0"),
    ("csi_delay", "1", "integer >= 0"),
    ("csi_delay", True, "integer >= 0"),
    ("csi_error", -0.1, r"in \[0, 1\]"),
    ("csi_error", 1.5, r"in \[0, 1\]"),
    ("csi_error", float("nan"), "finite"),
    ("csi_error", "0.1", "real number"),
    ("csi_history", 0, "integer >= 1"),
    ("csi_history", 2.5, "integer >= 1"),
    ("csi_history", None, "integer >= 1"),
])
def test_bad_values_name_the_argument_the_value_and_what_is_allowed(name, value, allowed):
    for build in (lambda: gym.make("PowerControl-IC-v0", **{name: value}),
                  lambda: gym.make_vec("Beamforming-MISO-v0", num_envs=2, **{name: value}),
                  lambda: ObservationSampler("PowerControl-D2D-v0", **{name: value})):
        with pytest.raises(ValueError, match=name) as err:
            build()
        msg = str(err.value)
        assert repr(value) in msg or (isinstance(value, float) and "nan" in msg)
        assert __import__("re").search(allowed, msg), msg


def test_integral_floats_are_accepted():
    cfg = parse_config("PowerControl-IC-v0", csi_delay=2.0, csi_history=np.int64(3), csi_error=np.float32(0.25))
    assert (cfg.csi_delay, cfg.csi_history, cfg.csi_error) == (2, 3, 0.25)
    assert type(cfg.csi_delay) is int and type(cfg.csi_error) is float
    assert l2o_env.envs.core.ENV_KNOBS[-3:] == ("csi_delay", "csi_error", "csi_history")
