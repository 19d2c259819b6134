"""The beamforming envs: registration, Gymnasium checks, the observation and action contract, projection,
bad input, seeds, the vector env, the sampler and the three channel models' numbers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import l2o_env  # noqa: F401  (registers the env IDs)
from l2o_env.channels import D2D, IBC, MISO, D2DBeamforming
from l2o_env.channels.base import jakes_correlation
from l2o_env.channels.d2d_beamforming import authors_pathloss_gain
from l2o_env.checks import SolverCheckError, check_env, check_solver
from l2o_env.data import ObservationSampler
from l2o_env.envs import BeamformingEnv, BeamformingVectorEnv
from l2o_env.envs.registration import ENTRY_POINTS
from l2o_env.problems import BEAMFORMING
from l2o_env.problems.beamforming import as_complex
from l2o_env.rates import link_rates
from l2o_env.scenarios import SCENARIOS, env_ids

BF_IDS = env_ids(problem="beamforming")
MISO_ID, IBC_ID, D2D_ID = "Beamforming-MISO-v0", "Beamforming-IBC-v0", "Beamforming-D2D-v0"
# (K, T, Nr, Nt) of the defaults
SHAPES = {MISO_ID: (4, 1, 1, 4), IBC_ID: (8, 2, 2, 8), D2D_ID: (50, 50, 1, 2)}
GEOMETRIC = [IBC_ID, D2D_ID]


def batched(obs):
    return {key: np.asarray(val, dtype=np.float64)[None] for key, val in obs.items()}


def expected_reward(obs, action):
    """The weighted sum rate of the projected action on the observation it answered (float64 of the float32)."""
    one = batched(obs)
    feasible, changed = BEAMFORMING.project(one, np.asarray(action, dtype=np.float64)[None])
    return float(BEAMFORMING.weighted_sum_rate(one, feasible)[0]), int(changed[0]), BEAMFORMING.rates(one, feasible)[0]


def rollout(env, seed, steps, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out, rewards = [obs], []
    high = env.action_space.high
    for _ in range(steps):
        obs, r, *_ = env.step((rng.uniform(-1, 1, high.shape) * high).astype(np.float32))
        out.append(obs)
        rewards.append(r)
    return out, rewards


# --- registration and the contract ------------------------------------------------------------------
def test_the_three_ids_are_beamforming_rows_with_their_env_classes():
    assert BF_IDS == [MISO_ID, IBC_ID, D2D_ID]
    single, vector = ENTRY_POINTS["beamforming"]
    for env_id in BF_IDS:
        assert SCENARIOS[env_id].problem == "beamforming"
        spec = gym.spec(env_id)
        assert (spec.entry_point, spec.vector_entry_point) == (single, vector)
        assert spec.max_episode_steps == 100 and spec.kwargs == {"env_id": env_id}
        env = gym.make(env_id)
        assert type(env.unwrapped) is BeamformingEnv and env.unwrapped.env_id == env_id
        assert type(gym.make_vec(env_id, num_envs=2)) is BeamformingVectorEnv


@pytest.mark.parametrize("env_id", BF_IDS)
def test_gymnasium_check_env_and_the_beamforming_contract(env_id):
    check_env(gym.make(env_id))


@pytest.mark.parametrize("env_id", [MISO_ID, IBC_ID])
def test_check_env_with_mobility_and_random_weights(env_id):
    check_env(gym.make(env_id, speed=3.0, weights="random"))


@pytest.mark.parametrize("env_id", BF_IDS)
def test_observation_and_action_spaces(env_id):
    env = gym.make(env_id)
    k, t, nr, nt = SHAPES[env_id]
    obs, _ = env.reset(seed=1)
    keys = ["channel", "tx_of_link", "weight", "noise", "pmax"] + (["tx_pos", "rx_pos"] if env_id in GEOMETRIC else [])
    assert list(obs) == keys and set(env.observation_space.spaces) == set(keys)
    want = {"channel": (k, t, nr, nt, 2), "tx_of_link": (k,), "weight": (k,), "noise": (k,), "pmax": (t,),
            "tx_pos": (t, 2), "rx_pos": (k, 2)}
    for key in keys:
        assert obs[key].shape == want[key] and obs[key].dtype == np.float32, key
    assert obs in env.observation_space
    assert env.action_space.shape == (k, nt, nr, 2) and env.action_space.dtype == np.float32
    # each real/imaginary entry is bounded by sqrt of its transmitter's budget
    tx = obs["tx_of_link"].astype(int)
    np.testing.assert_array_equal(obs["tx_of_link"], tx)
    np.testing.assert_allclose(env.action_space.high[:, 0, 0, 0], np.sqrt(obs["pmax"][tx]), rtol=1e-6)
    np.testing.assert_array_equal(env.action_space.low, -env.action_space.high)
    assert np.all(obs["weight"] == 1.0) and np.all(obs["noise"] > 0)


def test_the_defaults_of_each_model():
    miso, _ = gym.make(MISO_ID).reset(seed=0)
    np.testing.assert_allclose(miso["pmax"], [10.0])
    np.testing.assert_allclose(miso["noise"], 1.0)
    np.testing.assert_array_equal(miso["tx_of_link"], 0)
    np.testing.assert_allclose(gym.make(MISO_ID, snr_db=20).reset(seed=0)[0]["pmax"], [100.0])
    ibc, _ = gym.make(IBC_ID).reset(seed=0)
    np.testing.assert_allclose(ibc["pmax"], [10.0, 10.0])
    np.testing.assert_array_equal(ibc["tx_of_link"], [0, 0, 0, 0, 1, 1, 1, 1])
    d2d = gym.make(D2D_ID)
    obs, _ = d2d.reset(seed=0)
    np.testing.assert_allclose(obs["pmax"], 1.0)
    np.testing.assert_allclose(obs["noise"], 1.0)
    np.testing.assert_array_equal(obs["tx_of_link"], np.arange(50))
    itu, _ = gym.make(D2D_ID, pathloss="itu1411").reset(seed=0)
    np.testing.assert_allclose(itu["pmax"], 10.0, rtol=1e-6)
    np.testing.assert_allclose(itu["noise"], D2D().default_noise, rtol=1e-6)


# --- reward, projection, bad input ---------------------------------------------------------------------
@pytest.mark.parametrize("env_id", BF_IDS)
def test_reward_is_the_weighted_sum_rate_of_the_projected_action(env_id):
    for weights in ("uniform", "random", "proportional_fair"):
        env = gym.make(env_id, weights=weights)
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(0)
        for scale in (0.05, 1.0, 3.0):  # under budget, partly over, all over
            action = (rng.uniform(-1, 1, env.action_space.shape) * env.action_space.high * scale).astype(np.float32)
            nxt, reward, term, trunc, info = env.step(action)
            want, changed, rates = expected_reward(obs, action)
            assert reward == pytest.approx(want, rel=1e-12, abs=1e-12)
            assert info["projected"] == changed and np.isfinite(reward) and not term and not trunc
            np.testing.assert_allclose(info["rates"], rates, rtol=1e-12, atol=1e-14)
            assert info["sum_rate"] == pytest.approx(float(rates.sum()), rel=1e-12)
            assert nxt in env.observation_space
            obs = nxt


def test_over_budget_transmitters_are_projected_and_counted():
    env = gym.make(IBC_ID)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(env.action_space.shape)
    tx = obs["tx_of_link"].astype(int)
    per_link = (v**2).sum(axis=(1, 2, 3))
    used = np.array([per_link[tx == t].sum() for t in range(2)])
    v[tx == 0] *= np.sqrt(5.0 * 10.0 / used[0])  # transmitter 0 at 5x its 10 W, transmitter 1 at 0.5x
    v[tx == 1] *= np.sqrt(0.5 * 10.0 / used[1])
    _, reward, _, _, info = env.step(v)
    assert info["projected"] == 1
    scaled = v.copy()
    scaled[tx == 0] *= np.sqrt(1 / 5.0)
    want = float(BEAMFORMING.weighted_sum_rate(batched(obs), scaled[None])[0])
    assert reward == pytest.approx(want, rel=1e-9)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert info["projected"] == 0 and info["sum_rate"] == 0.0
    env.step(v.tolist())  # lists and float64 are accepted


@pytest.mark.parametrize("env_id", BF_IDS)
def test_bad_actions_raise_and_leave_the_env_untouched(env_id):
    env, ref = gym.make(env_id), gym.make(env_id)
    env.reset(seed=5)
    ref.reset(seed=5)
    good = (0.5 * env.action_space.high).astype(np.float32)
    nan, inf = good.copy(), good.copy()
    nan[1, 0, 0, 1] = np.nan
    inf[0, 0, 0, 0] = np.inf
    for action, match in [
        (nan, r"NaN or inf at index \[\(1, 0, 0, 1\)\]"),
        (inf, "NaN or inf"),
        (good[:-1], "shape"),
        (good[..., 0], "shape"),
        (as_complex(good), "complex|dtype"),
        (np.full(good.shape, "a"), "dtype"),
        (np.ones(good.shape, dtype=bool), "dtype"),
    ]:
        with pytest.raises(ValueError, match=match):
            env.step(action)
    got, want = env.step(good), ref.step(good)
    assert got[1] == want[1]
    for key in got[0]:
        np.testing.assert_array_equal(got[0][key], want[0][key])


def test_step_before_reset_and_reset_options_are_errors():
    with pytest.raises(ValueError, match="before reset"):
        gym.make(MISO_ID).unwrapped.step(np.zeros((4, 4, 1, 2), np.float32))
    with pytest.raises(ValueError, match="options"):
        gym.make(MISO_ID).unwrapped.reset(seed=0, options={"x": 1})
    with pytest.raises(ValueError, match="before reset"):
        gym.make_vec(MISO_ID, num_envs=2).step(np.zeros((2, 4, 4, 1, 2), np.float32))


# --- the single-antenna case ---------------------------------------------------------------------------
def test_a_single_antenna_d2d_env_is_power_control_on_the_gains():
    env = gym.make(D2D_ID, num_links=8, num_antennas=1, weights="random")
    obs, _ = env.reset(seed=2)
    assert obs["channel"].shape == (8, 8, 1, 1, 2) and env.action_space.shape == (8, 1, 1, 2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        action = (rng.uniform(-1, 1, env.action_space.shape) * env.action_space.high).astype(np.float32)
        nxt, reward, _, _, info = env.step(action)
        gain = (obs["channel"].astype(np.float64) ** 2).sum(-1)[:, :, 0, 0]
        power = np.minimum((action.astype(np.float64) ** 2).sum(axis=(1, 2, 3)), obs["pmax"].astype(np.float64))
        want = link_rates(gain, power, obs["noise"].astype(np.float64))
        np.testing.assert_allclose(info["rates"], want, rtol=1e-9)
        assert reward == pytest.approx(float((obs["weight"] * want).sum()), rel=1e-9)
        obs = nxt


# --- seeds, the vector env, the sampler -----------------------------------------------------------------
@pytest.mark.parametrize("env_id", BF_IDS)
def test_same_seed_same_trajectory_different_seed_differs(env_id):
    a, ra = rollout(gym.make(env_id, weights="random"), seed=7, steps=3)
    b, rb = rollout(gym.make(env_id, weights="random"), seed=7, steps=3)
    c, rc = rollout(gym.make(env_id, weights="random"), seed=8, steps=3)
    for oa, ob in zip(a, b):
        for key in oa:
            np.testing.assert_array_equal(oa[key], ob[key])
    assert ra == rb and ra != rc
    assert not np.array_equal(a[1]["channel"], c[1]["channel"])


@pytest.mark.parametrize("env_id", BF_IDS)
@pytest.mark.parametrize("speed", [None, 3.0])
def test_vector_env_of_one_is_the_single_env(env_id, speed):
    single = gym.make(env_id, speed=speed, weights="random")
    envs = gym.make_vec(env_id, num_envs=1, speed=speed, weights="random")
    obs, _ = single.reset(seed=4)
    vobs, _ = envs.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for key in obs:
            np.testing.assert_array_equal(vobs[key][0], obs[key], err_msg=key)
        action = (rng.uniform(-1.2, 1.2, single.action_space.shape) * single.action_space.high).astype(np.float32)
        obs, reward, _, _, info = single.step(action)
        vobs, vreward, _, _, vinfo = envs.step(action[None])
        assert vreward[0] == reward and vinfo["projected"][0] == info["projected"]


@pytest.mark.parametrize("env_id", BF_IDS)
def test_vector_env_autoreset_and_reward(env_id):
    b = 3
    envs = gym.make_vec(env_id, num_envs=b, max_episode_steps=2, weights="random")
    single = gym.make(env_id)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    obs, _ = envs.reset(seed=0)
    assert obs in envs.observation_space
    envs.action_space.seed(0)
    for t in range(1, 5):
        action = envs.action_space.sample()
        nxt, reward, term, trunc, info = envs.step(action)
        one = {key: val.astype(np.float64) for key, val in obs.items()}
        feasible, changed = BEAMFORMING.project(one, action)
        np.testing.assert_allclose(reward, BEAMFORMING.weighted_sum_rate(one, feasible), rtol=1e-12)
        np.testing.assert_array_equal(info["projected"], changed)
        assert info["rates"].shape == (b, SHAPES[env_id][0]) and not term.any()
        assert trunc.all() == (t % 2 == 0) and trunc.any() == (t % 2 == 0)
        if trunc.any():
            assert info["_final_obs"].all() and info["final_info"]["_projected"].all()
            for i in range(b):
                assert info["final_obs"][i] in single.observation_space
            # the returned observation is the next episode's first: new weights
            ended = np.stack([info["final_obs"][i]["weight"] for i in range(b)])
            assert not np.array_equal(nxt["weight"], ended)
        obs = nxt
    with pytest.raises(ValueError, match="shape"):
        envs.step(envs.action_space.sample()[:2])


@pytest.mark.parametrize("env_id", BF_IDS)
def test_sampler_batches_are_the_vector_env_first_observation(env_id):
    sampler = ObservationSampler(env_id, seed=11, weights="random")
    first = sampler(4)
    obs, _ = gym.make_vec(env_id, num_envs=4, weights="random").reset(seed=11)
    assert list(first) == list(obs)
    for key in obs:
        assert first[key].dtype == np.float64
        np.testing.assert_array_equal(first[key], obs[key].astype(np.float64), err_msg=key)
    assert not np.array_equal(sampler(4)["channel"], first["channel"])  # every call a fresh draw
    # a solver-side check accepts it as is
    BEAMFORMING.check_obs(first, batched=True)


# --- the channel models ---------------------------------------------------------------------------------
def test_miso_channel_entries_are_cn01():
    batch = ObservationSampler(MISO_ID, seed=0)(4000)["channel"]  # (B, 4, 1, 1, 4, 2): 64,000 entries
    re, im = batch[..., 0], batch[..., 1]
    assert abs(re.mean()) < 0.01 and abs(im.mean()) < 0.01
    assert (re**2 + im**2).mean() == pytest.approx(1.0, abs=0.015)  # mean power 1 per complex entry
    assert re.var() == pytest.approx(0.5, abs=0.01) and im.var() == pytest.approx(0.5, abs=0.01)
    assert abs((re * im).mean()) < 0.01


def test_mobility_correlates_the_fading_of_every_antenna_pair():
    envs = gym.make_vec(MISO_ID, num_envs=512, speed=1.0)
    rho = envs.unwrapped.fading_correlation
    assert rho == pytest.approx(jakes_correlation(1.0, 2.4e9, 0.02))
    obs, _ = envs.reset(seed=0)
    h0 = as_complex(obs["channel"])
    nxt, *_ = envs.step(np.zeros(envs.action_space.shape, np.float32))
    h1 = as_complex(nxt["channel"])
    corr = (h1 * h0.conj()).mean().real / (np.abs(h0) ** 2).mean()
    assert corr == pytest.approx(rho, abs=0.03)


@pytest.mark.parametrize("env_id", GEOMETRIC)
def test_positions_move_at_speed(env_id):
    env = gym.make(env_id, speed=10.0)
    obs, _ = env.reset(seed=0)
    nxt, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    step = np.linalg.norm(nxt["rx_pos"] - obs["rx_pos"], axis=-1)
    assert np.all(step <= 10.0 * 0.02 + 1e-4) and np.median(step) == pytest.approx(0.2, rel=1e-3)


def test_d2d_density_shrinks_the_area():
    def spread(density):
        s = ObservationSampler(D2D_ID, seed=0, density=density)(16)["tx_pos"]
        return np.linalg.norm(s - s.mean(axis=1, keepdims=True), axis=-1).mean()

    assert spread(1.0) / spread(4.0) == pytest.approx(2.0, rel=0.1)


def test_d2d_beamforming_pathloss_numbers():
    # the authors' code: mean power gain 4.4e5 / d^1.88 (d in m); 10^(6.3 x / 20) on the power: 3.15 dB
    assert authors_pathloss_gain(1.0) == 4.4e5
    assert authors_pathloss_gain(10.0) == pytest.approx(4.4e5 / 10**1.88, rel=1e-12)
    assert authors_pathloss_gain(65.0) == pytest.approx(171.86, rel=1e-4)  # 22.35 dB at the longest pair (2, 65) m
    rng = np.random.default_rng(0)
    flat = D2DBeamforming(num_links=10, shadowing_db=0.0)
    layout = flat.sample_layout(rng, 3)
    d = np.linalg.norm(layout.rx_pos[:, :, None] - layout.tx_pos[:, None], axis=-1)
    np.testing.assert_allclose(flat.large_scale(layout)[..., 0, :], (4.4e5 / d**1.88)[..., None].repeat(2, -1), rtol=1e-12)
    model = D2DBeamforming(num_links=20)
    assert (model.shadowing_db, model.default_noise, model.default_pmax) == (3.15, 1.0, 1.0)
    layout = model.sample_layout(rng, 50)
    d = np.linalg.norm(layout.rx_pos[:, :, None] - layout.tx_pos[:, None], axis=-1)
    shadow_db = 10 * np.log10(model.large_scale(layout) / (4.4e5 / d**1.88)[..., None, None])
    assert shadow_db.shape == (50, 20, 20, 1, 2)  # drawn per (receiver, transmitter, antenna), as the code
    assert shadow_db.std() == pytest.approx(3.15, rel=0.03) and abs(shadow_db.mean()) < 0.05
    # itu1411: the power-control D2D model's large scale on every antenna pair
    itu = D2DBeamforming(num_links=20, pathloss="itu1411")
    layout = itu.sample_layout(rng, 2)
    assert layout.shadowing.shape == (2, 20, 20) and itu.shadowing_db == 8.0
    np.testing.assert_array_equal(itu.large_scale(layout)[..., 0, 0], D2D.large_scale(itu, layout))
    assert (itu.default_pmax, itu.default_noise) == (D2D().default_pmax, D2D().default_noise)
    # the geometry is the D2D's: pairs within pair_distance, inside the square
    pair = np.linalg.norm(layout.rx_pos - layout.tx_pos, axis=-1)
    assert np.all((pair >= 2.0) & (pair <= 65.0)) and np.all((layout.rx_pos >= 0) & (layout.rx_pos <= 1000.0))


def test_ibc_geometry_pathloss_and_scales():
    model = IBC()
    assert (model.num_tx, model.num_links, model.num_tx_antennas, model.num_rx_antennas) == (2, 8, 8, 2)
    assert [IBC(scale=s).num_tx_antennas * IBC(scale=s).num_rx_antennas for s in ("small", "moderate", "large")] == [16, 32, 64]
    for scale, (n_prec, nt) in {"small": (8, 8), "moderate": (16, 16), "large": (32, 32)}.items():
        m = IBC(scale=scale)
        assert (m.num_links, m.num_tx_antennas, m.num_rx_antennas) == (n_prec, nt, 2)  # n precoders of nt x 2
    assert model.pathloss_gain(1000.0) == pytest.approx(10 ** (-12.81), rel=1e-12)
    assert 10 * np.log10(model.pathloss_gain(100.0)) == pytest.approx(-(128.1 - 37.6), abs=1e-9)
    rng = np.random.default_rng(0)
    for interference, isd in (("low", 2800.0), ("high", 500.0)):
        m = IBC(interference=interference, shadowing_db=0.0)
        layout = m.sample_layout(rng, 500)
        bs, users = m.positions(layout)
        assert np.linalg.norm(bs[:, 1] - bs[:, 0], axis=-1) == pytest.approx(isd)
        own = np.linalg.norm(users - bs[:, m.tx_of_link], axis=-1)
        assert own.min() >= 100.0 - 1e-9 and own.max() <= 300.0 + 1e-9
        assert np.mean(own**2) == pytest.approx((300.0**2 + 100.0**2) / 2, rel=0.03)  # uniform over the annulus area
        d = np.linalg.norm(users[:, :, None] - bs[:, None], axis=-1)  # (B, K, T)
        np.testing.assert_allclose(m.large_scale(layout)[..., 0, 0], m.pathloss_gain(d), rtol=1e-10)
    assert IBC(inter_site_distance=1000.0).inter_site_distance == 1000.0


def test_ibc_noise_follows_the_snr_rule_of_every_slot():
    env = gym.make(IBC_ID, snr_db=5.0)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        h = as_complex(obs["channel"].astype(np.float64))  # (K, T, Nr, Nt)
        tx = obs["tx_of_link"].astype(int)
        fro = np.array([(np.abs(h[k, tx[k]]) ** 2).sum() / 2 for k in range(8)])  # ||H_bu||_F^2 / Nr
        for b in range(2):
            users = tx == b
            want = 10 ** np.mean(np.log10(fro[users])) * 10 ** (-0.5)
            np.testing.assert_allclose(obs["noise"][users], want, rtol=1e-5)
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    ten, _ = gym.make(IBC_ID, snr_db=15.0).reset(seed=0)
    first, _ = gym.make(IBC_ID).reset(seed=0)  # default SNR 5 dB
    np.testing.assert_allclose(ten["noise"], first["noise"] / 10.0, rtol=1e-6)
    fixed, _ = gym.make(IBC_ID, noise=1e-10).reset(seed=0)
    np.testing.assert_allclose(fixed["noise"], 1e-10, rtol=1e-6)


@pytest.mark.parametrize(
    "env_id, kwargs, match",
    [
        (MISO_ID, {"density": 2.0}, "density"),
        (MISO_ID, {"num_links": 3}, "num_links"),
        (MISO_ID, {"snr_db": 10, "pmax": 2.0}, "pmax"),
        (IBC_ID, {"scale": "huge"}, "scale must be one of 'small', 'moderate', 'large'"),
        (IBC_ID, {"interference": "high", "inter_site_distance": 700.0}, "not both"),
        (IBC_ID, {"snr_db": 5, "noise": 1e-9}, "noise"),
        (IBC_ID, {"pmax": [1.0, 2.0, 3.0]}, r"\(2,\) \(one per transmitter\)"),
        (IBC_ID, {"user_distance": (300, 100)}, "user_distance"),
        (D2D_ID, {"pathloss": "itu"}, "Did you mean 'itu1411'"),
        (D2D_ID, {"tx_power_dbm": 30}, "only apply to pathloss='itu1411'"),
        (D2D_ID, {"num_antennas": 0}, "num_antennas"),
        (D2D_ID, {"topology": "fixed"}, "topology"),
        (D2D_ID, {"snr_db": 10}, "snr_db"),
    ],
)
def test_invalid_keywords_raise_clear_value_errors(env_id, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kwargs)
    with pytest.raises(ValueError, match=match):
        ObservationSampler(env_id, **kwargs)


def test_knobs_reach_the_model():
    env = gym.make(IBC_ID, scale="moderate", interference="high", num_rx_antennas=1)
    obs, _ = env.reset(seed=0)
    assert obs["channel"].shape == (16, 2, 1, 16, 2) and env.action_space.shape == (16, 16, 1, 2)
    env = gym.make(D2D_ID, num_links=12, num_antennas=4, pair_distance=(10, 50), pathloss="itu1411", pmax=2.0)
    obs, _ = env.reset(seed=0)
    assert obs["channel"].shape == (12, 12, 1, 4, 2) and np.all(obs["pmax"] == 2.0)
    assert env.unwrapped.model.pair_distance == (10.0, 50.0)
    obs, _ = gym.make(MISO_ID, num_users=6, num_antennas=8).reset(seed=0)
    assert obs["channel"].shape == (6, 1, 1, 8, 2)


# --- solvers against the family -------------------------------------------------------------------------
class MatchedFilter:
    """Feasible by construction: each transmitter's budget split equally over its links, along H^H."""

    name = "matched_filter_test"
    problems = frozenset({"beamforming"})

    def reset(self):
        pass

    def act_batch(self, obs):
        h = as_complex(obs["channel"])
        tx = np.asarray(obs["tx_of_link"]).astype(int)
        b, k = tx.shape
        own = h[np.arange(b)[:, None], np.arange(k)[None], tx]  # (B, K, Nr, Nt)
        v = np.conj(np.swapaxes(own, -1, -2))  # (B, K, Nt, Nr)
        v /= np.linalg.norm(v, axis=(-2, -1), keepdims=True)
        share = np.take_along_axis(np.asarray(obs["pmax"]), tx, -1) / np.array([np.bincount(r, minlength=obs["pmax"].shape[-1])[r] for r in tx])
        v *= np.sqrt(share * (1 - 1e-9))[..., None, None]
        return np.stack([v.real, v.imag], axis=-1)

    def act(self, obs):
        return self.act_batch({key: np.asarray(val)[None] for key, val in obs.items()})[0]


def test_check_solver_accepts_a_feasible_solver_and_refuses_an_over_budget_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for env_id in BF_IDS:
            check_solver(MatchedFilter(), env_id)

    class Greedy(MatchedFilter):
        def act_batch(self, obs):
            return 2.0 * super().act_batch(obs)

    with pytest.raises(SolverCheckError, match="infeasible beamforming action"):
        check_solver(Greedy(), IBC_ID)


def test_ibc_num_streams_is_the_number_of_receive_antennas():
    env = gym.make("Beamforming-IBC-v0", num_streams=2)
    assert env.action_space.shape[-2] == 2
    with pytest.raises(ValueError, match="num_streams=1 must equal num_rx_antennas=2"):
        gym.make("Beamforming-IBC-v0", num_streams=1)
