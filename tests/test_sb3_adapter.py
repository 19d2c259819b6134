"""SB3VecEnv: the native vector env as a stable-baselines3 VecEnv; SB3 stays out of `import l2o_env`."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import l2o_env  # noqa: F401
from l2o_env.wrappers import flatten_beamforming_observation, flatten_observation

IDS = ["PowerControl-IC-v0", "Beamforming-MISO-v0"]


def _flat(env_id, obs):
    return flatten_observation(obs) if env_id.startswith("Power") else flatten_beamforming_observation(obs)


@pytest.mark.parametrize("env_id", IDS)
def test_observations_equal_flattened_native_and_terminal_observation(env_id):
    from l2o_env.sb3 import SB3VecEnv

    b, steps = 3, 4
    venv = SB3VecEnv(env_id, num_envs=b, seed=5, max_episode_steps=steps)
    native = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point", max_episode_steps=steps)
    obs = venv.reset()
    nobs, _ = native.reset(seed=5)
    np.testing.assert_array_equal(obs, _flat(env_id, nobs))
    assert obs.shape == (b, *venv.observation_space.shape) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    for t in range(1, 2 * steps + 1):
        actions = rng.uniform(-1, 1, (b, *venv.action_space.shape)).astype(np.float32)
        native_actions = venv._transform_actions(actions)
        obs, rewards, dones, infos = venv.step(actions)
        # the adapter's native env and the reference one share seeds and actions
        nobs, nrew, _, _, ninfo = native.step(native_actions)
        np.testing.assert_array_equal(obs, _flat(env_id, nobs))
        np.testing.assert_allclose(rewards, nrew, rtol=1e-6)
        assert dones.dtype == np.bool_ and dones.shape == (b,)
        assert isinstance(infos, list) and len(infos) == b
        assert all(info[venv._count_key] == 0 for info in infos)  # the maps are feasible
        if t % steps == 0:
            assert dones.all()
            for i, info in enumerate(infos):
                term = info["terminal_observation"]
                final = {k: v[None] for k, v in ninfo["final_obs"][i].items()}
                np.testing.assert_array_equal(term, _flat(env_id, final)[0])
                assert info["TimeLimit.truncated"] and info["episode"]["l"] == steps
                assert venv.observation_space.contains(term)
        else:
            assert not dones.any() and all("terminal_observation" not in info for info in infos)
    venv.close()


@pytest.mark.parametrize("env_id", IDS)
def test_ppo_learns_through_the_adapter(env_id):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecCheckNan

    from l2o_env.wrappers import SB3VecEnv  # the lazy name on l2o_env.wrappers

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        venv = VecCheckNan(SB3VecEnv(env_id, num_envs=4, seed=0, max_episode_steps=8), raise_exception=True)
        model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, verbose=0, device="cpu")
        model.learn(64)
        assert len(model.ep_info_buffer) > 0  # "episode" infos reach SB3's logger
        obs = venv.reset()
        action, _ = model.predict(obs, deterministic=True)
        _, rewards, _, infos = venv.step(action)
        assert np.all(np.isfinite(rewards)) and np.all(rewards >= 0)
        assert all(info[venv.unwrapped._count_key] == 0 for info in infos)
    finally:
        torch.set_num_threads(threads)


def test_seed_is_reproducible_and_vecenv_api():
    from l2o_env.sb3 import SB3VecEnv

    a, b = SB3VecEnv("PowerControl-IC-v0", 2), SB3VecEnv("PowerControl-IC-v0", 2)
    a.seed(3)
    b.seed(3)
    np.testing.assert_array_equal(a.reset(), b.reset())
    assert a.get_attr("num_links") == [10, 10]
    assert a.env_is_wrapped(gym.Wrapper) == [False, False]
    assert a.env_method("true_observation", indices=[0])[0]["gain"].shape == (2, 10, 10)
    with pytest.raises(ValueError, match="indices=None"):
        a.set_attr("max_episode_steps", 5, indices=[0])
    a.set_attr("max_episode_steps", 5)
    assert a.venv_native.max_episode_steps == 5


def test_unflattened_passes_dict_observations():
    from l2o_env.sb3 import SB3VecEnv

    venv = SB3VecEnv("PowerControl-IC-v0", 2, seed=0, flatten=False)
    obs = venv.reset()
    assert isinstance(obs, dict) and obs["gain"].shape == (2, 10, 10)
    _, rewards, _, _ = venv.step(np.zeros((2, 10), np.float32))
    assert rewards.shape == (2,)


def test_import_l2o_env_does_not_import_sb3():
    code = (
        "import sys, l2o_env, l2o_env.wrappers, gymnasium as gym; "
        "gym.make('PowerControl-IC-v0'); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'stable_baselines3'); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_sb3_names_the_extra(monkeypatch):
    import l2o_env.wrappers as wrappers

    monkeypatch.delitem(sys.modules, "l2o_env.sb3", raising=False)
    for name in [m for m in sys.modules if m.split(".")[0] == "stable_baselines3"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes `import stable_baselines3...` fail
    with pytest.raises(ImportError, match=r'pip install "l2o-env\[rl\]"'):
        wrappers.SB3VecEnv
    monkeypatch.delitem(sys.modules, "l2o_env.sb3", raising=False)  # no half-imported module left behind
