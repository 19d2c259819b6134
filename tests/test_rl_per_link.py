"""The per-link shared-policy formulation of the RL solvers (issue 15): the local view, the interference
prices, the per-link SB3 VecEnv, and short fits of every algorithm x formulation on every power-control env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from l2o_env.rates import interference_prices, link_rates, weighted_sum_rate  # noqa: E402
from l2o_env.scenarios import ENV_IDS, get_scenario  # noqa: E402
from l2o_env.wrappers import PER_LINK_CLIP, per_link_observation, per_link_size  # noqa: E402

POWER_IDS = [e for e in ENV_IDS if get_scenario(e).problem == "power"]
# small networks so that a fit takes about a second
SMALL = {"PowerControl-IC-v0": {"num_links": 4}, "PowerControl-IMAC-v0": {"num_links": 6, "num_cells": 2},
         "PowerControl-D2D-v0": {"num_links": 5}, "PowerControl-AdHoc-v0": {"num_links": 5}}
TINY = {
    "ppo": {"n_steps": 8, "batch_size": 32, "n_epochs": 2},
    "sac": {"buffer_size": 2000, "learning_starts": 32, "batch_size": 32},
    "td3": {"buffer_size": 2000, "learning_starts": 32, "batch_size": 32},
}


def _feature(x):
    return np.clip(np.log10(x) / 2.0, -PER_LINK_CLIP, PER_LINK_CLIP)


def test_power_ids_are_covered():
    assert set(SMALL) == set(POWER_IDS)


def test_per_link_observation_by_hand():
    obs = ObservationSampler("PowerControl-IC-v0", seed=0, num_links=8)(3)
    obs["weight"] = np.random.default_rng(0).uniform(0.1, 2.0, (3, 8))
    x = per_link_observation(obs, neighbors=3)
    assert x.shape == (3, 8, per_link_size(3)) == (3, 8, 19) and x.dtype == np.float32
    g, s, p, w = obs["gain"][1], obs["noise"][1], obs["pmax"][1], obs["weight"][1]
    i = 5
    snr = g * p[None, :] / s[:, None]  # snr[r, t]
    others = [j for j in range(8) if j != i]
    want = [_feature(snr[i, i]), _feature(sum(snr[i, j] for j in others)), _feature(sum(snr[j, i] for j in others)),
            w[i] / w.max()]
    rx = sorted(others, key=lambda j: -snr[i, j])[:3]
    for j in rx:
        want += [_feature(snr[i, j]), w[j] / w.max()]
    tx = sorted(others, key=lambda j: -snr[j, i])[:3]
    for j in tx:
        want += [_feature(snr[j, i]), _feature(snr[j, j]), w[j] / w.max()]
    np.testing.assert_allclose(x[1, i], np.array(want, dtype=np.float32), rtol=1e-5, atol=1e-6)
    # batch and single agree; the feature count does not depend on K
    single = per_link_observation({k: v[1] for k, v in obs.items()}, neighbors=3)
    np.testing.assert_array_equal(single, x[1])
    small = per_link_observation(ObservationSampler("PowerControl-IC-v0", seed=0, num_links=2)(1), neighbors=3)
    assert small.shape == (1, 2, 19)
    # one neighbour exists; the two missing ones are "no signal" with weight 0
    np.testing.assert_array_equal(small[0, :, 6:10], np.tile([-PER_LINK_CLIP, 0.0], (2, 2)))
    with pytest.raises(ValueError, match="neighbors must be >= 0"):
        per_link_observation(obs, neighbors=-1)


def test_interference_prices_match_removing_each_transmitter():
    rng = np.random.default_rng(1)
    g = rng.exponential(size=(4, 5, 5))
    p = rng.uniform(0, 1, (4, 5))
    s = np.full((4, 5), 0.1)
    w = rng.uniform(0, 2, (4, 5))
    prices = interference_prices(g, p, s, w)
    base = link_rates(g, p, s)
    for b in range(4):
        for i in range(5):
            g2 = g[b].copy()
            g2[:, i] = 0.0
            g2[i, i] = g[b, i, i]
            gain = link_rates(g2, p[b], s[b]) - base[b]
            gain[i] = 0.0
            assert prices[b, i] == pytest.approx(float(w[b] @ gain), rel=1e-10)
    assert (prices >= 0).all()
    # a silent transmitter costs nothing; the weighted sum rate is unchanged by the bookkeeping
    p[:, 2] = 0.0
    assert np.all(interference_prices(g, p, s, w)[:, 2] == 0.0)
    assert np.isfinite(weighted_sum_rate(g, p, s, w)).all()


@pytest.mark.parametrize("reward", ["prices", "shared"])
def test_per_link_vecenv_steps_agents_and_rewards(reward):
    from l2o_env.sb3 import SB3PerLinkVecEnv

    b, k, steps = 3, 4, 3
    venv = SB3PerLinkVecEnv("PowerControl-IC-v0", num_envs=b, seed=2, reward=reward, num_links=k,
                            max_episode_steps=steps)
    native = gym.make_vec("PowerControl-IC-v0", num_envs=b, vectorization_mode="vector_entry_point", num_links=k,
                          max_episode_steps=steps)
    assert venv.num_envs == b * k and venv.observation_space.shape == (per_link_size(),)
    obs = venv.reset()
    nobs, _ = native.reset(seed=2)
    np.testing.assert_array_equal(obs, per_link_observation(nobs).reshape(b * k, -1))
    rng = np.random.default_rng(0)
    for t in range(1, 2 * steps + 1):
        a = rng.uniform(-1, 1, (b * k, 1)).astype(np.float32)
        power = nobs["pmax"] * (a.reshape(b, k).astype(np.float64) + 1) / 2
        gain, noise, weight = nobs["gain"], nobs["noise"], nobs["weight"]
        obs, rewards, dones, infos = venv.step(a)
        nobs, wsr, _, _, ninfo = native.step(power)
        assert rewards.shape == (b * k,) and dones.shape == (b * k,)
        if reward == "shared":
            np.testing.assert_allclose(rewards, np.repeat(wsr / k, k), rtol=1e-5)
        else:
            want = weight * link_rates(gain, power, noise) - interference_prices(gain, power, noise, weight)
            np.testing.assert_allclose(rewards, want.reshape(-1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([info["sum_rate"] for info in infos], np.repeat(ninfo["sum_rate"], k), rtol=1e-6)
        if t % steps == 0:
            assert dones.all()
            final = {key: np.stack([f[key] for f in ninfo["final_obs"]]) for key in ninfo["final_obs"][0]}
            term = per_link_observation(final).reshape(b * k, -1)
            for a_i, info in enumerate(infos):
                np.testing.assert_array_equal(info["terminal_observation"], term[a_i])
                assert info["episode"]["l"] == steps
        else:
            assert not dones.any()
        np.testing.assert_array_equal(obs, per_link_observation(nobs).reshape(b * k, -1))
    venv.close()


def test_per_link_vecenv_refusals():
    from l2o_env.sb3 import SB3PerLinkVecEnv

    with pytest.raises(ValueError, match="per-link formulation is for power control"):
        SB3PerLinkVecEnv("Beamforming-MISO-v0", num_envs=2)
    with pytest.raises(ValueError, match="reward must be one of"):
        SB3PerLinkVecEnv("PowerControl-IC-v0", num_envs=2, reward="greedy")


@pytest.fixture(scope="module")
def torch_one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("env_id", POWER_IDS)
@pytest.mark.parametrize("formulation", ["centralized", "per_link"])
@pytest.mark.parametrize("name", ["ppo", "sac", "td3"])
def test_short_fit_of_every_algorithm_and_formulation_acts_feasibly(torch_one_thread, name, formulation, env_id):
    kw = SMALL[env_id]
    solver = solvers.make(name, formulation=formulation, **TINY[name])
    solver.fit(env_id, steps=96, seed=0, num_envs=4, eval_every=48, eval_batch=8, **kw)
    assert solver.meta["formulation"] == formulation and solver.meta["steps"] == 96
    assert solver.meta["eval"]["step"] == [48, 96] and len(solver.meta["eval"]["ratio"]) == 2
    assert all(np.isfinite(solver.meta["eval"]["ratio"]))
    obs = ObservationSampler(env_id, seed=1, **kw)(8)
    # SB3 counted K transitions per slot in the per-link formulation
    k = obs["weight"].shape[-1]
    assert solver.model.num_timesteps >= 96 * (1 if formulation == "centralized" else k)
    p = solver.act_batch(obs)
    assert p.shape == obs["weight"].shape and np.isfinite(p).all()
    assert (p >= 0).all() and (p <= obs["pmax"]).all()
    _, changed = get_problem("power").project(obs, p)
    assert not np.any(changed)


def test_per_link_policy_acts_on_another_network_size_and_round_trips(torch_one_thread, tmp_path):
    solver = solvers.make("ppo", formulation="per_link", neighbors=2, reward="shared", **TINY["ppo"])
    solver.fit("PowerControl-IC-v0", steps=64, seed=0, num_envs=4, eval_every=0, num_links=3)
    assert "eval" not in solver.meta and solver.meta["neighbors"] == 2 and solver.meta["reward"] == "shared"
    obs = ObservationSampler("PowerControl-IC-v0", seed=3, num_links=7)(5)
    p = solver.act_batch(obs)
    assert p.shape == (5, 7) and (p >= 0).all() and (p <= obs["pmax"]).all()
    path = solver.save(tmp_path / "pl.zip")
    loaded = solvers.make("ppo", path=path, formulation="per_link")
    assert loaded.neighbors == 2 and loaded.reward == "shared"
    np.testing.assert_array_equal(loaded.act_batch(obs), p)
    assert solvers.make("ppo", path=path).formulation == "per_link"  # the file's, when not given
    with pytest.raises(ValueError, match="trained with formulation='per_link'"):
        solvers.make("ppo", path=path, formulation="centralized")
    with pytest.raises(ValueError, match="got a 'beamforming' observation"):
        loaded.act_batch(ObservationSampler("Beamforming-MISO-v0", seed=0)(2))


def test_fit_refuses_bad_budgets():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        solvers.make("ppo").fit("PowerControl-IC-v0", steps=0)
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        solvers.make("ppo", **TINY["ppo"]).fit("PowerControl-IC-v0", steps=8, eval_every=-1, num_links=3)


def test_rl_baseline_example_runs_end_to_end(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "ppo.zip"
    proc = subprocess.run([sys.executable, str(root / "examples" / "rl_baseline.py"), "--steps", "64", "--slots", "16",
                           "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and "trained ppo (per_link) for 64 slots" in proc.stdout
    for row in ("wmmse", "ppo (per_link)", "max_power", "random_power", "mlp (ic10)"):
        assert row in proc.stdout


def test_rl_solvers_without_sb3_name_the_extra(monkeypatch, tmp_path):
    import sys

    for name in [m for m in sys.modules if m.split(".")[0] == "stable_baselines3"] + ["l2o_env.sb3"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # makes `import stable_baselines3` fail
    solver = solvers.make("ppo", formulation="per_link")  # building one needs no SB3
    with pytest.raises(ImportError, match=r'pip install "l2o-env\[rl\]"'):
        solver.fit("PowerControl-IC-v0", steps=8, num_links=3)
    monkeypatch.delitem(sys.modules, "l2o_env.sb3", raising=False)


def test_l2o_train_per_link_with_proportional_fair_weights(tmp_path, capsys):
    from l2o_env.cli import main

    out = tmp_path / "pf.zip"
    assert main(["train", "ppo", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=3,weights=proportional_fair",
                 "--steps", "32", "--solver-kwargs", "formulation=per_link,n_steps=4,batch_size=16", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "with random weights" in printed
    loaded = solvers.make("ppo", path=out)
    assert loaded.formulation == "per_link" and loaded.meta["env_kwargs"]["weights"] == "proportional_fair"
    assert loaded.meta["eval"]["weights"] == "random"


def test_interrupted_save_keeps_the_old_model(torch_one_thread, tmp_path, monkeypatch):
    solver = solvers.make("ppo", formulation="per_link", **TINY["ppo"])
    solver.fit("PowerControl-IC-v0", steps=32, seed=0, num_envs=4, eval_every=0, num_links=3)
    path = solver.save(tmp_path / "m.zip")
    before = path.read_bytes()

    def broken(self, where, *a, **k):
        with open(where, "wb") as f:
            f.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(solver.model), "save", broken)
    with pytest.raises(KeyboardInterrupt):
        solver.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]
