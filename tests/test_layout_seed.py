"""A fixed topology is a property of the env configuration (``layout_seed``), not of a reset or a sub-env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils import seeding

import l2o_env  # noqa: F401  (registers the IDs)
from l2o_env.data import ObservationSampler
from l2o_env.envs.core import ENV_DEFAULTS, ENV_KNOBS, parse_config
from l2o_env.scenarios import ENV_IDS, SCENARIOS, build_model

ADHOC = "PowerControl-AdHoc-v0"
B = 8


def vec(num_envs=B, **kwargs):
    return gym.make_vec(ADHOC, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def positions(obs):
    return obs["tx_pos"], obs["rx_pos"]


def assert_same_layout(obs, tx, rx):
    """Every network of ``obs`` (single ``(K, 2)`` or batched ``(B, K, 2)``) sits on ``tx``/``rx``."""
    np.testing.assert_array_equal(np.broadcast_to(tx, obs["tx_pos"].shape), obs["tx_pos"])
    np.testing.assert_array_equal(np.broadcast_to(rx, obs["rx_pos"].shape), obs["rx_pos"])


def expected_layout(layout_seed=0, **model_kw):
    """The documented rule, computed directly: ``sample_layout(default_rng(layout_seed), 1)`` as float32."""
    lay = build_model(ADHOC, **model_kw).sample_layout(np.random.default_rng(layout_seed), 1)
    return lay.tx_pos[0].astype(np.float32), lay.rx_pos[0].astype(np.float32)


# --- the rule and backward compatibility ----------------------------------------------------------
def test_layout_seed_0_is_the_layout_a_seed_0_reset_drew_before():
    """The shipped uwmmse-fixed checkpoint was trained on the layout of ``reset(seed=0)``: the first draw
    of the reset's generator (Gymnasium's ``seeding.np_random(0)``, which is ``default_rng(0)``)."""
    model = build_model(ADHOC)
    old_rng, _ = seeding.np_random(0)  # what `reset(seed=0)` handed the simulator before layout_seed existed
    old = model.sample_layout(old_rng, 1)  # and its first draw was the fixed layout
    new = model.sample_layout(np.random.default_rng(0), 1)
    np.testing.assert_array_equal(old.tx_pos, new.tx_pos)
    np.testing.assert_array_equal(old.rx_pos, new.rx_pos)
    tx, rx = old.tx_pos[0].astype(np.float32), old.rx_pos[0].astype(np.float32)
    for seed in (0, 1, 12345, None):
        obs, _ = gym.make(ADHOC).reset(seed=seed)
        assert_same_layout(obs, tx, rx)
    obs, _ = vec().reset(seed=3)
    assert_same_layout(obs, tx, rx)
    cfg = parse_config(ADHOC)
    assert cfg.layout_seed == 0
    np.testing.assert_array_equal(cfg.fixed_layout.tx_pos, old.tx_pos)


@pytest.mark.parametrize("layout_seed", [0, 7])
def test_one_layout_for_every_sub_env_and_every_reset(layout_seed):
    tx, rx = expected_layout(layout_seed)
    envs = vec(layout_seed=layout_seed, max_episode_steps=2)
    for seed in (0, 1, 99, None):
        obs, _ = envs.reset(seed=seed)
        assert_same_layout(obs, tx, rx)
        gains = obs["gain"]
        assert not np.array_equal(gains[0], gains[1])  # fading differs per sub-env
        for _ in range(3):  # steps and an autoreset keep the layout; only the fading changes
            obs, *_ = envs.step(envs.action_space.sample())
            assert_same_layout(obs, tx, rx)
    obs, _ = envs.reset(options={"reset_mask": np.arange(B) % 2 == 0})
    assert_same_layout(obs, tx, rx)
    env = gym.make(ADHOC, layout_seed=layout_seed)
    for seed in (0, 5, None):
        obs, _ = env.reset(seed=seed)
        assert_same_layout(obs, tx, rx)
        obs, *_ = env.step(env.action_space.sample())
        assert_same_layout(obs, tx, rx)


def test_the_reset_seed_still_drives_fading_and_weights():
    env = gym.make(ADHOC, weights="random")
    a, _ = env.reset(seed=0)
    b, _ = env.reset(seed=1)
    c, _ = env.reset(seed=0)
    assert not np.array_equal(a["gain"], b["gain"]) and not np.array_equal(a["weight"], b["weight"])
    np.testing.assert_array_equal(a["gain"], c["gain"])
    np.testing.assert_array_equal(a["weight"], c["weight"])


def test_single_env_sync_vector_env_native_vector_env_and_sampler_share_the_layout():
    kw = {"layout_seed": 11, "num_links": 12}
    tx, rx = expected_layout(11, num_links=12)
    single, _ = gym.make(ADHOC, **kw).reset(seed=4)
    native, _ = vec(**kw).reset(seed=5)
    sync, _ = gym.make_vec(ADHOC, num_envs=3, vectorization_mode="sync", **kw).reset(seed=6)
    for obs in (single, native, sync):
        assert_same_layout(obs, tx, rx)
    for seed in (0, 3):  # the sampler's seed drives its fading only
        batch = ObservationSampler(ADHOC, seed=seed, **kw)(5)
        assert_same_layout({k: batch[k].astype(np.float32) for k in ("tx_pos", "rx_pos")}, tx, rx)
    default = ObservationSampler(ADHOC, seed=3)(2)
    tx0, rx0 = expected_layout(0)
    assert_same_layout({k: default[k].astype(np.float32) for k in ("tx_pos", "rx_pos")}, tx0, rx0)


def test_different_layout_seeds_give_different_layouts():
    a, _ = gym.make(ADHOC, layout_seed=0).reset(seed=0)
    b, _ = gym.make(ADHOC, layout_seed=1).reset(seed=0)
    assert not np.array_equal(a["tx_pos"], b["tx_pos"])
    assert not np.array_equal(a["rx_pos"], b["rx_pos"])
    sa = ObservationSampler(ADHOC, seed=0, layout_seed=0)(1)["tx_pos"]
    sb = ObservationSampler(ADHOC, seed=0, layout_seed=1)(1)["tx_pos"]
    assert not np.array_equal(sa, sb)


def test_random_topology_still_draws_a_layout_per_sub_env():
    obs, _ = vec(topology="random").reset(seed=0)
    assert not np.array_equal(obs["tx_pos"][0], obs["tx_pos"][1])


# --- mobility ---------------------------------------------------------------------------------------
def test_mobility_starts_every_episode_from_the_fixed_drop():
    tx, rx = expected_layout(0)
    env = gym.make(ADHOC, speed=3.0)
    for seed in (0, 1, None):
        obs, _ = env.reset(seed=seed)
        assert_same_layout(obs, tx, rx)
        for _ in range(5):
            moved, *_ = env.step(env.action_space.sample())
        assert not np.array_equal(moved["tx_pos"], tx)
    envs = vec(speed=3.0, max_episode_steps=4)
    obs, _ = envs.reset(seed=2)
    assert_same_layout(obs, tx, rx)
    for _ in range(2):
        moved, *_ = envs.step(envs.action_space.sample())
    assert not np.array_equal(moved["tx_pos"][0], tx)
    mask = np.zeros(B, dtype=bool)
    mask[[1, 4]] = True
    again, _ = envs.reset(options={"reset_mask": mask})
    assert_same_layout({k: again[k][mask] for k in ("tx_pos", "rx_pos")}, tx, rx)  # back to the fixed drop
    np.testing.assert_array_equal(again["tx_pos"][~mask], moved["tx_pos"][~mask])  # the others untouched
    for _ in range(2):  # sub-envs 0, 2, ... reach 4 slots here and autoreset
        obs, _, _, trunc, info = envs.step(envs.action_space.sample())
    assert trunc[0] and not trunc[1]
    assert_same_layout({k: obs[k][trunc] for k in ("tx_pos", "rx_pos")}, tx, rx)
    assert not np.array_equal(info["final_obs"][0]["tx_pos"], tx)
    # moving never wrote into the configuration's layout (it is read-only)
    for cfg in (env.unwrapped.config, envs.unwrapped.config):
        np.testing.assert_array_equal(cfg.fixed_layout.tx_pos[0].astype(np.float32), tx)
        assert not cfg.fixed_layout.tx_pos.flags.writeable
    obs, _ = env.reset(seed=7)
    assert_same_layout(obs, tx, rx)


# --- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", [e for e in ENV_IDS if not SCENARIOS[e].topology_knob])
def test_envs_without_the_topology_knob_refuse_layout_seed(env_id):
    with pytest.raises(ValueError, match=r"layout_seed=3 is not a knob of this env"):
        gym.make(env_id, layout_seed=3)
    with pytest.raises(ValueError, match=r"layout_seed=3 is not a knob of this env"):
        ObservationSampler(env_id, layout_seed=3)


def test_layout_seed_with_a_random_topology_is_refused():
    with pytest.raises(ValueError, match=r"layout_seed=0 only applies to topology='fixed'"):
        gym.make(ADHOC, topology="random", layout_seed=0)
    with pytest.raises(ValueError, match=r"only applies to topology='fixed'"):
        vec(topology="random", layout_seed=2)
    with pytest.raises(ValueError, match=r"only applies to topology='fixed'"):
        ObservationSampler(ADHOC, topology="random", layout_seed=2)
    gym.make(ADHOC, topology="fixed", layout_seed=2)  # explicit fixed is fine


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None, float("nan")])
def test_layout_seed_must_be_an_integer_at_least_0(bad):
    with pytest.raises(ValueError, match=r"layout_seed must be an integer >= 0"):
        gym.make(ADHOC, layout_seed=bad)
    with pytest.raises(ValueError, match=r"layout_seed must be an integer >= 0"):
        ObservationSampler(ADHOC, layout_seed=bad)


def test_integral_layout_seeds_are_accepted():
    assert parse_config(ADHOC, layout_seed=np.int64(4)).layout_seed == 4
    assert parse_config(ADHOC, layout_seed=4.0).layout_seed == 4
    assert parse_config(ADHOC, topology="random").fixed_layout is None
    assert parse_config("PowerControl-IC-v0").layout_seed is None


# --- ENV_DEFAULTS -----------------------------------------------------------------------------------
def test_env_defaults_cover_every_env_knob_and_match_the_env():
    assert "layout_seed" in ENV_KNOBS
    assert set(ENV_DEFAULTS) == set(ENV_KNOBS)
    assert ENV_DEFAULTS == {
        "noise": None, "pmax": None, "snr_db": None, "speed": None, "slot_duration": 0.02,
        "weights": "uniform", "topology": None, "pf_smoothing": 0.1, "layout_seed": 0,
        "csi_delay": 0, "csi_error": 0.0, "csi_history": 1,
    }
    plain = parse_config(ADHOC)
    explicit = parse_config(ADHOC, **{k: v for k, v in ENV_DEFAULTS.items() if v is not None and k != "snr_db"})
    for name in ("slot_duration", "weights", "pf_smoothing", "layout_seed", "speed", "topology", "csi_delay",
                 "csi_error", "csi_history"):
        assert getattr(explicit, name) == getattr(plain, name), name
    np.testing.assert_array_equal(explicit.fixed_layout.tx_pos, plain.fixed_layout.tx_pos)
    assert plain.topology == SCENARIOS[ADHOC].default_topology
    np.testing.assert_allclose(plain.noise, build_model(ADHOC).default_noise, rtol=1e-6)  # None: the model's
