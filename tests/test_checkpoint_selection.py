"""Which shipped checkpoint ``pretrained=True`` means on a given env (solvers.learned.select_pretrained), and
learned solvers that refuse to act with weights nobody trained (unless ``random_init=True``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
import solvers.learned as learned
from solvers.learned import describe_training, select_pretrained, shipped_checkpoints
from solvers.mlp import MLPSolver
from solvers.uwmmse import UWMMSE
from solvers.wcgcn import WCGCN


def plain_obs(batch=2, k=4, seed=0):
    rng = np.random.default_rng(seed)
    ones = np.ones((batch, k))
    return {"gain": rng.exponential(1.0, (batch, k, k)), "weight": ones, "noise": ones.copy(), "pmax": ones.copy()}


# --- the shipped list ------------------------------------------------------------------------------
def test_shipped_checkpoints_list_every_file_default_first_with_its_scenario():
    entries = shipped_checkpoints("wcgcn")
    assert [e["tag"] for e in entries] == ["default", "bf", "d2d-aged", "d2d-random", "ic10", "ic10-aged"]
    assert [e["pretrained"] for e in entries] == [True, "bf", "d2d-aged", "d2d-random", "ic10", "ic10-aged"]
    assert all(e["path"].exists() for e in entries)
    assert entries[0]["env_id"] == "PowerControl-D2D-v0" and entries[0]["env_kwargs"] == {"num_links": 50}
    assert entries[4]["env_kwargs"] == {"num_links": 10, "snr_db": 10}
    assert entries[1]["env_id"] == "Beamforming-D2D-v0"
    assert all(isinstance(e["command"], str) for e in entries)
    assert [e["tag"] for e in shipped_checkpoints("mlp")] == ["default", "ic10"]
    assert shipped_checkpoints("wmmse") == []  # a solver without checkpoints (and no "wmmse_best_of" files)


def test_shipped_checkpoints_read_each_file_once(monkeypatch):
    learned._SHIPPED.pop("uwmmse", None)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(a[0]) or real(*a, **kw))
    first = shipped_checkpoints("uwmmse")
    first[0]["env_kwargs"]["num_links"] = 999  # the caller's copy: the cache stays as read
    again = shipped_checkpoints("uwmmse")
    assert len(calls) == len(first) == 3 and again[0]["env_kwargs"]["num_links"] == 20


def test_describe_training():
    assert describe_training({"env_id": "PowerControl-IC-v0", "env_kwargs": {"num_links": 10, "snr_db": 10}}) \
        == "PowerControl-IC-v0(num_links=10, snr_db=10)"
    assert describe_training({"env_id": "PowerControl-IMAC-v0", "env_kwargs": {}}) == "PowerControl-IMAC-v0"
    assert describe_training({"steps": 3}) == "unknown scenario"
    fixed = next(e for e in shipped_checkpoints("uwmmse") if e["tag"] == "fixed")
    assert describe_training(fixed) == "PowerControl-AdHoc-v0(num_links=20, topology=fixed)"


# --- selection -------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id,kwargs,tag", [
    ("PowerControl-IC-v0", {"num_links": 10, "snr_db": 10.0}, "ic10"),
    ("PowerControl-IC-v0", {"num_links": 20}, "ic10"),            # closest size on the same env ID
    ("PowerControl-D2D-v0", {"num_links": 50}, "default"),
    ("PowerControl-D2D-v0", {"num_links": 30, "weights": "ones"}, "default"),  # ties go to the default
    ("PowerControl-D2D-v0", {"num_links": 50, "weights": "random"}, "d2d-random"),
])
def test_select_pretrained_wcgcn(env_id, kwargs, tag):
    assert select_pretrained("wcgcn", env_id, kwargs)["tag"] == tag


@pytest.mark.parametrize("topology,tag", [("fixed", "fixed"), ("random", "default")])
def test_select_pretrained_uwmmse_topology(topology, tag):
    entry = select_pretrained("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "topology": topology})
    assert entry["tag"] == tag and entry["pretrained"] == (True if tag == "default" else tag)


def test_select_pretrained_mlp():
    assert select_pretrained("mlp", "PowerControl-IMAC-v0", {"num_links": 12})["tag"] == "default"
    assert select_pretrained("mlp", "PowerControl-IC-v0", {"num_links": 10})["tag"] == "ic10"


def test_no_checkpoint_for_the_env_lists_every_tag_and_its_training_env():
    with pytest.raises(ValueError) as err:
        select_pretrained("wcgcn", "PowerControl-IMAC-v0", {"num_links": 12})
    msg = str(err.value)
    assert msg.startswith("wcgcn: no shipped checkpoint was trained on PowerControl-IMAC-v0; shipped: ")
    for e in shipped_checkpoints("wcgcn"):
        assert f"{e['tag']} (trained on {describe_training(e)})" in msg
    assert "default (trained on PowerControl-D2D-v0(num_links=50))" in msg
    assert "ic10 (trained on PowerControl-IC-v0(num_links=10, snr_db=10))" in msg
    assert "pretrained=TAG" in msg and "`l2o train wcgcn --env PowerControl-IMAC-v0`" in msg


# --- untrained models --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_untrained_model_refuses_to_act(name):
    kw = {"num_links": 4, "num_bs": 0} if name == "mlp" else {}
    solver = solvers.make(name, **kw)
    assert solver.is_trained is False and solver.trained_on is None
    obs = plain_obs()
    for call in (solver.act_batch, lambda o: solver.act({k: v[0] for k, v in o.items()})):
        with pytest.raises(ValueError, match="neither loaded nor trained") as err:
            call(obs)
        msg = str(err.value)
        assert "pretrained=True" in msg and "checkpoint=PATH" in msg and "fit(...)" in msg
        assert "random_init=True" in msg


@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_random_init_acts(name):
    kw = {"num_links": 4, "num_bs": 0} if name == "mlp" else {}
    solver = solvers.make(name, random_init=True, **kw)
    assert solver.random_init is True and solver.is_trained
    p = solver.act_batch(plain_obs())
    assert p.shape == (2, 4) and np.all((p >= 0) & (p <= 1))


def test_save_of_an_untrained_model_works_and_load_marks_it_trained(tmp_path):
    net = WCGCN(hidden1=8)
    path = net.save(tmp_path / "w.pt")
    for back in (WCGCN.load(path), WCGCN(checkpoint=path)):
        assert back.is_trained and back.act_batch(plain_obs()).shape == (2, 4)


def test_fit_marks_the_model_trained_from_its_start():
    # UWMMSE validates (acts) before its first step: steps=0 only validates
    s = UWMMSE(val_size=8)
    s.fit(lambda b: plain_obs(b, k=5), steps=0, progress=False)
    assert s.is_trained and s.act_batch(plain_obs(k=5)).shape == (2, 5)
    net = WCGCN(val_size=8, batch_size=8, val_every=1)
    net.fit(lambda b: plain_obs(b, k=5), steps=1, progress=False)
    assert net.is_trained and net.act_batch(plain_obs(k=5)).shape == (2, 5)


def test_trained_on_of_a_loaded_checkpoint():
    assert WCGCN(pretrained="ic10").trained_on == ("PowerControl-IC-v0", {"num_links": 10, "snr_db": 10})
    assert UWMMSE(pretrained=True).trained_on == ("PowerControl-AdHoc-v0", {"num_links": 20, "topology": "random"})
    assert MLPSolver(pretrained=True).trained_on == ("PowerControl-IMAC-v0", {})
    assert WCGCN(pretrained="default").trained_on == WCGCN(pretrained=True).trained_on  # "default" means True


def test_mlp_size_mismatch_names_the_shipped_checkpoint_that_fits():
    sol = MLPSolver(pretrained=True)  # IMAC (N, K) = (3, 12)
    with pytest.raises(ValueError) as err:
        sol.act_batch(plain_obs(k=10))  # an IC observation with K = 10
    msg = str(err.value)
    assert 'pretrained="ic10" (trained on PowerControl-IC-v0(num_links=10)) fits K = 10' in msg
    assert "otherwise train one" in msg and "\n" not in msg
    with pytest.raises(ValueError) as err:
        sol.act_batch(plain_obs(k=7))  # no shipped MLP fits K = 7
    assert "pretrained=" not in str(err.value) and "train one for this scenario" in str(err.value)
