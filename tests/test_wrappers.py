"""FlattenPowerControl / FlattenBeamforming: Gymnasium's and SB3's check_env on every ID, the action maps,
the observation transforms."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import l2o_env  # noqa: F401
from l2o_env.data import sample_observations
from l2o_env.scenarios import env_ids

ENV_IDS = env_ids(problem="power")  # the wrapper flattens power-control envs
from l2o_env.wrappers import LOG_CLIP, FlattenPowerControl, action_to_power, flatten_observation, power_to_action
from l2o_env.wrappers import (
    FlattenBeamforming,
    action_to_precoders,
    flatten_beamforming_observation,
    precoders_to_action,
)

BF_IDS = env_ids(problem="beamforming")


@pytest.mark.parametrize("env_id", ENV_IDS, ids=ENV_IDS)
def test_sb3_check_env_passes_through_the_wrapper(env_id):
    env = FlattenPowerControl(gym.make(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's advice (e.g. an asymmetric action Box) would show here
        sb3_check_env(env, warn=True)
    k = env.unwrapped.num_links
    assert env.observation_space.shape == (k * k + k,)
    assert env.action_space.low.min() == -1 and env.action_space.high.max() == 1


@pytest.mark.parametrize("env_id", ENV_IDS, ids=ENV_IDS)
def test_action_map_reaches_zero_and_pmax(env_id):
    wrapped, plain = FlattenPowerControl(gym.make(env_id)), gym.make(env_id)
    wrapped.reset(seed=0)
    plain.reset(seed=0)
    k = plain.unwrapped.num_links
    for a, p in ((np.ones(k), plain.action_space.high), (-np.ones(k), np.zeros(k))):
        obs, r_w, *_, info_w = wrapped.step(a.astype(np.float32))
        _, r_p, *_, info_p = plain.step(p.astype(np.float32))
        assert r_w == pytest.approx(r_p, rel=1e-12)
        assert info_w["clipped"] == 0
        assert obs in wrapped.observation_space
    # beyond [-1, 1] the env clips and counts
    *_, info = wrapped.step(np.full(k, 1.5, np.float32))
    assert info["clipped"] == k
    with pytest.raises(ValueError, match="shape"):
        wrapped.step(np.zeros(k + 1, np.float32))


def test_power_action_round_trip():
    pmax = np.array([1.0, 10.0, 0.5])
    p = np.array([0.0, 2.5, 0.5])
    np.testing.assert_allclose(action_to_power(power_to_action(p, pmax), pmax), p, rtol=1e-6, atol=1e-7)


def test_flatten_observation_batched_equals_single_and_is_log_snr():
    batch = sample_observations("PowerControl-D2D-v0", 3, seed=0, weights="random")
    flat = flatten_observation(batch)
    k = batch["gain"].shape[-1]
    assert flat.shape == (3, k * k + k) and flat.dtype == np.float32
    for i in range(3):
        one = flatten_observation({key: val[i] for key, val in batch.items()})
        np.testing.assert_array_equal(one, flat[i])
    snr = batch["gain"][0, 4, 7] * batch["pmax"][0, 7] / batch["noise"][0, 4]
    assert flat[0, 4 * k + 7] == pytest.approx(np.log10(snr) / 10.0, rel=1e-5)
    w = batch["weight"][0]
    np.testing.assert_allclose(flat[0, k * k :], w / w.max(), rtol=1e-6)
    assert np.all(np.abs(flat) <= LOG_CLIP)
    # zero gains and zero weights stay finite
    zero = {key: np.zeros_like(val[0]) if key in ("gain", "weight") else val[0] for key, val in batch.items()}
    assert np.all(np.isfinite(flatten_observation(zero)))


def test_wrapper_rejects_non_power_control_envs():
    with pytest.raises(ValueError, match="gain"):
        FlattenPowerControl(gym.make("CartPole-v1"))


@pytest.mark.parametrize("env_id", ["PowerControl-IC-v0", "PowerControl-IMAC-v0"])
def test_sb3_ppo_smoke_trains_and_acts_feasibly(env_id):
    """A tiny PPO run through the wrapper: learn() completes and the policy's powers are feasible."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO

    from l2o_env.wrappers import FlattenPowerControl

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = FlattenPowerControl(gym.make(env_id))
        model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, verbose=0, device="cpu")
        model.learn(128)
        obs, _ = env.reset(seed=1)
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action)  # SB3 clips a Box policy's action into [-1, 1]
        power = action_to_power(action, env.unwrapped.action_space.high)
        assert np.all(power >= 0) and np.all(power <= env.unwrapped.action_space.high * (1 + 1e-6))
        _, reward, _, _, info = env.step(action)
        assert np.isfinite(reward) and reward >= 0.0
        assert info["clipped"] == 0
    finally:
        torch.set_num_threads(threads)


# --- Gymnasium's checker on every ID, FlattenBeamforming ------------------------------------------
def _wrap(env_id):
    return (FlattenBeamforming if env_id in BF_IDS else FlattenPowerControl)(gym.make(env_id))


@pytest.mark.parametrize("env_id", ENV_IDS + BF_IDS, ids=ENV_IDS + BF_IDS)
def test_gymnasium_check_env_passes_through_the_wrappers(env_id):
    from gymnasium.utils.env_checker import check_env as gym_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "different from the unwrapped version": expected for a wrapper
        gym_check_env(_wrap(env_id))


@pytest.mark.parametrize("env_id", BF_IDS, ids=BF_IDS)
def test_sb3_check_env_passes_through_the_beamforming_wrapper(env_id):
    env = _wrap(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)
    k, t, nr, nt, _ = env.unwrapped.observation_space["channel"].shape
    assert env.observation_space.shape == (3 * k * t * nr * nt + k,)
    assert env.action_space.shape == (int(np.prod(env.unwrapped.action_space.shape)),)
    assert env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    # random actions (mostly norm > 1 per transmitter) are mapped onto the budget: the env never projects
    env.reset(seed=0)
    for _ in range(3):
        obs, reward, *_, info = env.step(env.action_space.sample())
        assert info["projected"] == 0 and np.isfinite(reward) and obs in env.observation_space
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))


@pytest.mark.parametrize("env_id", BF_IDS, ids=BF_IDS)
def test_precoder_action_round_trip_and_onto_the_budget(env_id):
    batch = sample_observations(env_id, 4, seed=1)
    pmax, tx = batch["pmax"].astype(np.float64), batch["tx_of_link"].astype(int)
    shape = gym.make(env_id).unwrapped.action_space.shape
    t = pmax.shape[-1]
    rng = np.random.default_rng(0)
    onehot = (tx[..., :, None] == np.arange(t)).astype(float)

    def used(v):
        return np.einsum("bk,bkt->bt", np.einsum("bkndc,bkndc->bk", v, v), onehot)

    # inside the unit ball per transmitter: action -> precoders -> action is the identity
    a = rng.uniform(-1, 1, (4, *shape))
    a /= 2.0 * np.sqrt(np.einsum("bk,bkt->bt", np.einsum("bkndc,bkndc->bk", a, a), onehot)).max()
    v = action_to_precoders(a, pmax, tx)
    np.testing.assert_allclose(precoders_to_action(v, pmax, tx), a, rtol=1e-6, atol=1e-7)
    # any feasible precoders: precoders -> action -> precoders is the identity (the map is onto)
    big = rng.choice([-1.0, 1.0], (4, *shape)) * rng.uniform(0.6, 1.0, (4, *shape))  # >= 4 entries per tx: norm > 1
    v_full = action_to_precoders(big, pmax, tx)  # on the budget
    np.testing.assert_allclose(used(v_full), pmax, rtol=1e-9)
    assert np.all(used(v_full) <= pmax)
    back = precoders_to_action(v_full, pmax, tx)
    assert np.all(np.abs(back) <= 1)
    np.testing.assert_allclose(action_to_precoders(back, pmax, tx), v_full, rtol=1e-5, atol=1e-7 * np.sqrt(pmax.max()))


def test_flatten_beamforming_observation_batched_and_features():
    batch = sample_observations("Beamforming-IBC-v0", 3, seed=0, weights="random")
    flat = flatten_beamforming_observation(batch)
    k, t, nr, nt, _ = batch["channel"].shape[1:]
    assert flat.shape == (3, 3 * k * t * nr * nt + k) and flat.dtype == np.float32
    for i in range(3):
        one = flatten_beamforming_observation({key: val[i] for key, val in batch.items()})
        np.testing.assert_array_equal(one, flat[i])
    h = batch["channel"][0, 5, 1, 0, 3].astype(np.float64)  # link 5, transmitter 1, rx antenna 0, tx antenna 3
    z = complex(h[0], h[1]) * np.sqrt(batch["pmax"][0, 1] / batch["noise"][0, 5])
    feat = flat[0, : 3 * k * t * nr * nt].reshape(k, t, nr, nt, 3)[5, 1, 0, 3]
    assert feat[0] == pytest.approx(np.log10(abs(z) ** 2) / 10.0, rel=1e-5)
    assert feat[1] == pytest.approx(z.real / abs(z), abs=1e-6) and feat[2] == pytest.approx(z.imag / abs(z), abs=1e-6)
    w = batch["weight"][0]
    np.testing.assert_allclose(flat[0, -k:], w / w.max(), rtol=1e-6)
    assert np.all(np.abs(flat) <= LOG_CLIP)
    zero = {key: np.zeros_like(val[0]) if key in ("channel", "weight") else val[0] for key, val in batch.items()}
    assert np.all(np.isfinite(flatten_beamforming_observation(zero)))


def test_beamforming_wrapper_rejects_other_envs():
    with pytest.raises(ValueError, match="channel"):
        FlattenBeamforming(gym.make("PowerControl-IC-v0"))


def test_family_dispatch_of_the_flat_transforms():
    from l2o_env.data import ObservationSampler
    from l2o_env.wrappers import (action_to_power, action_to_precoders, flat_action_to_native,
                                  flatten_beamforming_observation, flatten_family_observation, flatten_observation)

    bf = ObservationSampler("Beamforming-MISO-v0", seed=0)(3)
    pc = ObservationSampler("PowerControl-IC-v0", seed=0, num_links=4)(3)
    np.testing.assert_array_equal(flatten_family_observation(bf, "beamforming"), flatten_beamforming_observation(bf))
    np.testing.assert_array_equal(flatten_family_observation(pc, "power"), flatten_observation(pc))
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 4 * 4 * 1 * 2))
    np.testing.assert_array_equal(flat_action_to_native(a, bf, "beamforming"),
                                  action_to_precoders(a.reshape(3, 4, 4, 1, 2), bf["pmax"], bf["tx_of_link"]))
    p = rng.uniform(-1, 1, (3, 4))
    np.testing.assert_array_equal(flat_action_to_native(p, pc, "power"), action_to_power(p, pc["pmax"]))
    with pytest.raises(ValueError, match="problem family 'queueing'"):
        flatten_family_observation(pc, "queueing")
    with pytest.raises(ValueError, match="problem family 'queueing'"):
        flat_action_to_native(p, pc, "queueing")
