"""RL solvers (ppo, sac, td3; issue 15): tiny fits through SB3VecEnv act feasibly, save/load round trip,
solvers.make(name, path=...), the untrained error, and `l2o eval` with a saved PPO model."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from solvers.registry import problems_of  # noqa: E402
from solvers.rl import META_MEMBER, RLSolver, read_meta  # noqa: E402

PC = "PowerControl-IC-v0"
K = 3
TINY = {
    "ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 2},
    "sac": {"buffer_size": 1000, "learning_starts": 64, "batch_size": 32},
    "td3": {"buffer_size": 1000, "learning_starts": 64, "batch_size": 32},
}


def _assert_feasible(problem, obs, action):
    action = np.asarray(action)
    assert np.isfinite(action).all()
    _, changed = get_problem(problem).project(obs, action)
    assert not np.any(changed), "the projection had to change a feasible-by-construction action"


@pytest.fixture(scope="module")
def trained():
    import torch

    torch.set_num_threads(1)
    out = {}
    for name in ("ppo", "sac", "td3"):
        out[name] = solvers.make(name, **TINY[name]).fit(PC, steps=256, seed=0, num_envs=8, num_links=K)
    return out


@pytest.mark.parametrize("name", ["ppo", "sac", "td3"])
def test_tiny_fit_acts_feasibly_through_act_batch(trained, name):
    solver = trained[name]
    assert solver.meta["env_id"] == PC and solver.meta["env_kwargs"] == {"num_links": K}
    assert solver.meta["gamma"] == 0.0  # speed=None: independent slots
    assert solver.meta["algorithm"] == name.upper() and solver.meta["formulation"] == "centralized"
    obs = ObservationSampler(PC, seed=1, num_links=K)(16)
    p = solver.act_batch(obs)
    assert p.shape == (16, K)
    assert (p >= 0).all() and (p <= obs["pmax"]).all()
    _assert_feasible("power", obs, p)
    one = solver.act({k: v[0] for k, v in obs.items()})
    np.testing.assert_allclose(one, p[0], rtol=1e-5)  # float32 matmuls of a batch of 1 vs 16


def test_gamma_default_is_per_slot_and_explicit():
    # moving channels do not depend on the powers: still per-slot greedy
    s = solvers.make("ppo", **TINY["ppo"]).fit(PC, steps=128, num_envs=8, num_links=K, speed=3.0)
    assert s.meta["gamma"] == 0.0 and s.model.gamma == 0.0
    # nor with proportional-fair weights (a discounted weighted-rate return rewards gaming the weights)
    s = solvers.make("ppo", **TINY["ppo"]).fit(PC, steps=128, num_envs=8, num_links=K, weights="proportional_fair")
    assert s.meta["gamma"] == 0.0 and s.model.gamma == 0.0
    s = solvers.make("ppo", gamma=0.5, **TINY["ppo"]).fit(PC, steps=128, num_envs=8, num_links=K)
    assert s.meta["gamma"] == 0.5


def test_ppo_on_beamforming_acts_feasibly(tmp_path):
    env_id = "Beamforming-MISO-v0"
    solver = solvers.make("ppo", **TINY["ppo"]).fit(env_id, steps=128, num_envs=8)
    obs = ObservationSampler(env_id, seed=2)(8)
    v = solver.act_batch(obs)
    assert v.shape == get_problem("beamforming").action_shape(obs)
    _assert_feasible("beamforming", obs, v)
    loaded = solvers.make("ppo", path=solver.save(tmp_path / "bf.zip"))
    np.testing.assert_array_equal(loaded.act_batch(obs), v)


@pytest.mark.parametrize("name", ["ppo", "sac", "td3"])
def test_save_load_round_trip_identical_actions(trained, name, tmp_path):
    solver = trained[name]
    path = solver.save(tmp_path / f"{name}.zip")
    assert path.suffix == ".zip"
    with zipfile.ZipFile(path) as z:  # SB3's zip plus our metadata member
        assert {"data", "policy.pth", META_MEMBER} <= set(z.namelist())
        assert json.loads(z.read(META_MEMBER))["env_id"] == PC
    obs = ObservationSampler(PC, seed=3, num_links=K)(32)
    want = solver.act_batch(obs)
    loaded = solvers.make(name, path=str(path))
    assert loaded.meta == read_meta(path) and loaded.meta["env_kwargs"] == {"num_links": K}
    np.testing.assert_array_equal(loaded.act_batch(obs), want)
    np.testing.assert_array_equal(RLSolver.load(path).act_batch(obs), want)
    assert type(RLSolver.load(path)).name == name


def test_wrong_algorithm_and_wrong_size_errors(trained, tmp_path):
    path = trained["sac"].save(tmp_path / "sac.zip")
    with pytest.raises(ValueError, match="'SAC' model"):
        solvers.make("ppo", path=path)
    obs = ObservationSampler(PC, seed=0, num_links=K + 1)(2)
    with pytest.raises(ValueError, match="trained on"):
        trained["ppo"].act_batch(obs)
    with pytest.raises(FileNotFoundError):
        solvers.make("ppo", path=tmp_path / "missing.zip")


@pytest.mark.parametrize("name", ["ppo", "sac", "td3"])
def test_untrained_refuses_to_act(name, tmp_path):
    obs = ObservationSampler(PC, seed=0, num_links=K)(2)
    with pytest.raises(ValueError, match=r"path=\.\.\..*fit"):
        solvers.make(name).act_batch(obs)
    with pytest.raises(ValueError, match="neither loaded nor trained"):
        solvers.make(name).save(tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_formulations():
    assert solvers.make("ppo", formulation="per_link").formulation == "per_link"
    with pytest.raises(ValueError, match="centralized"):
        solvers.make("sac", formulation="shared")
    with pytest.raises(ValueError, match="reward must be one of"):
        solvers.make("ppo", formulation="per_link", reward="selfish")
    with pytest.raises(ValueError, match="neighbors must be an integer >= 0"):
        solvers.make("ppo", formulation="per_link", neighbors=-1)


def test_registry_lists_both_families():
    for name in ("ppo", "sac", "td3"):
        assert problems_of(name) == frozenset({"power", "beamforming"})
        assert name in solvers.available("power") and name in solvers.available("beamforming")


def test_l2o_eval_with_a_saved_ppo(trained, tmp_path, capsys):
    from l2o_env.cli import main

    path = trained["ppo"].save(tmp_path / "ppo.zip")
    out = tmp_path / "res.json"
    rc = main(["eval", "--env", PC, "--env-kwargs", f"num_links={K}", "--solvers", "ppo,max_power",
               "--solver-kwargs", f"ppo.path={path}", "--slots", "20", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr()
    data = json.loads(out.read_text())
    rows = {r["solver"]: r for r in data["rows"]}
    assert {"ppo", "max_power", "wmmse"} <= set(rows)


def test_l2o_train_ppo_saves_a_zip_that_eval_loads(tmp_path, capsys):
    from l2o_env.cli import main

    out = tmp_path / "ppo.zip"
    assert main(["train", "ppo", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=3", "--steps", "64",
                 "--solver-kwargs", "n_steps=8,batch_size=16", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "ppo on PowerControl-IC-v0" in printed and "ratio to wmmse" in printed and out.exists()
    loaded = solvers.make("ppo", path=out)
    assert loaded.meta["command"].startswith("l2o train ppo") and loaded.meta["env_kwargs"] == {"num_links": 3}
    assert main(["eval", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=3", "--solvers", "ppo,max_power",
                 "--solver-kwargs", f"ppo.path={out}", "--slots", "8", "--no-progress"]) == 0
    assert main(["train", "ppo", "--env", "PowerControl-IC-v0", "--out", str(tmp_path / "x.zip")]) == 2  # no --steps
    assert "--steps is required" in capsys.readouterr().err
