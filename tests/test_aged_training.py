"""Training on aged CSI (issue 14): the network sees the observation, the loss and the validation score the true
channel (``batch["truth"]``, ``sampler(B, with_truth=True)``); the shipped aged checkpoints and which one
``pretrained=True`` picks. A few seconds, except the slow check of the shipped checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from l2o_env.cli import main as cli_main
from l2o_env.data import ObservationSampler
from l2o_env.evaluation.spec import explicit_kwargs
from l2o_env.problems import get_problem
from l2o_env.rates import weighted_sum_rate_torch
from solvers.learned import imperfect_csi, imperfect_csi_kwargs, select_pretrained, shipped_checkpoints, to_torch
from solvers.mlp import MLPSolver
from solvers.training import GENIE_REFERENCE
from solvers.uwmmse import UWMMSE
from solvers.wcgcn import WCGCN

AGED = dict(speed=30, slot_duration=0.001, csi_delay=1)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the conftest fixture)."""


def adhoc(seed=0, k=6, **kw):
    return ObservationSampler("PowerControl-AdHoc-v0", seed=seed, num_links=k, **{**AGED, **kw})


SMALL = {
    "mlp": dict(hidden=(16, 16), pool_size=200, batch_size=50, val_size=40, eval_every=2, label_chunk=200),
    "uwmmse": dict(hidden=3, batch_size=16, val_size=32, val_every=2),
    "wcgcn": dict(hidden1=8, hidden2=4, batch_size=16, val_size=32, val_every=2),
}


# --- which samplers have a truth ---------------------------------------------------------------------
def test_imperfect_csi_is_read_from_the_sampler_config():
    assert imperfect_csi(adhoc())
    assert imperfect_csi(adhoc(csi_delay=0, csi_error=0.2))
    assert not imperfect_csi(adhoc(csi_delay=0))  # speed alone: perfect CSI
    assert not imperfect_csi(adhoc(csi_delay=0, csi_history=3))  # a history of exact channels: perfect CSI
    assert not imperfect_csi(lambda b: adhoc()(b))  # a plain callable

    class Custom:
        imperfect_csi = True

        def __call__(self, b, with_truth=False):  # pragma: no cover - not drawn here
            raise AssertionError

    assert imperfect_csi(Custom())
    assert imperfect_csi_kwargs({"csi_delay": 1}) and imperfect_csi_kwargs({"csi_error": 0.1})
    assert not imperfect_csi_kwargs({"speed": 30, "csi_history": 2}) and not imperfect_csi_kwargs(None)


def test_training_batch_carries_the_truth_only_with_imperfect_csi():
    net = UWMMSE(random_init=True, **SMALL["uwmmse"])
    batch = net.training_batch(adhoc(3), 1)
    obs, truth = adhoc(3)(16, with_truth=True)  # the same draw
    assert set(batch["truth"]) >= {"gain", "noise", "pmax", "weight"}
    np.testing.assert_allclose(batch["truth"]["gain"].numpy(), truth["gain"])
    np.testing.assert_allclose(batch["gain"].numpy(), obs["gain"])
    assert not np.allclose(obs["gain"], truth["gain"])
    assert "truth" not in net.training_batch(adhoc(3, csi_delay=0), 1)


def test_perfect_csi_never_asks_for_the_truth():
    """With perfect CSI the loop draws exactly as before: never with_truth (bit-identical training)."""
    base = ObservationSampler("PowerControl-IC-v0", seed=0, num_links=4, speed=30, slot_duration=0.001)
    calls = []

    def sampler(b, **kw):
        calls.append(kw)
        return base(b, **kw)

    sampler.config = base.config
    for name in ("mlp", "uwmmse", "wcgcn"):
        hist = solvers.make(name, **SMALL[name]).fit(sampler, steps=2, progress=False)
        assert hist["reference"] == "wmmse"
    assert calls and all(kw == {} for kw in calls)


# --- the losses score the truth ----------------------------------------------------------------------
def _aged_batch(net, sampler):
    batch = net.training_batch(sampler, 1)
    obs = {k: v for k, v in batch.items() if k != "truth"}
    return batch, obs, batch["truth"]


@pytest.mark.parametrize("name", ["uwmmse", "wcgcn"])
def test_power_losses_score_the_output_on_the_truth(name):
    net = solvers.make(name, random_init=True, **SMALL[name])
    batch, obs, truth = _aged_batch(net, adhoc(5))
    loss = float(net.loss(batch).detach())
    with torch.no_grad():
        power = net.forward(obs)  # the network sees the observation only
        on_truth = -weighted_sum_rate_torch(truth["gain"], power, truth["noise"], truth["weight"]).mean()
        on_obs = -weighted_sum_rate_torch(obs["gain"], power, obs["noise"], obs["weight"]).mean()
        # the output does not depend on the truth: a batch with another truth gives the same powers
        assert torch.equal(net.forward(batch), power)
    assert loss == pytest.approx(float(on_truth), rel=1e-5)
    assert abs(float(on_truth) - float(on_obs)) > 1e-3 * abs(float(on_obs))  # the test can tell them apart
    assert float(net.loss(obs).detach()) == pytest.approx(float(on_obs), rel=1e-5)  # perfect CSI: as before


def test_wcgcn_beamforming_loss_scores_the_truth():
    sampler = ObservationSampler("Beamforming-D2D-v0", seed=0, num_links=6, **AGED)
    net = WCGCN(random_init=True, problem="beamforming", num_antennas=2, **SMALL["wcgcn"])
    batch, obs, truth = _aged_batch(net, sampler)
    problem = get_problem("beamforming")
    with torch.no_grad():
        v = net.forward(obs)
        on_truth = -(truth["weight"] * problem.rates_torch(truth, v)).sum(-1).mean()
        on_obs = -(obs["weight"] * problem.rates_torch(obs, v)).sum(-1).mean()
    assert float(net.loss(batch).detach()) == pytest.approx(float(on_truth), rel=1e-5)
    assert abs(float(on_truth) - float(on_obs)) > 1e-3 * abs(float(on_obs))


def test_mlp_labels_are_wmmse_on_the_truth():
    from solvers.learned import wmmse_reference

    net = MLPSolver(num_links=6, num_bs=0, **SMALL["mlp"])
    obs, truth = net._draw(adhoc(7), 30)
    assert truth is not None
    x, y = net._labelled(obs, truth)
    power, _ = wmmse_reference(truth)
    np.testing.assert_allclose(y.numpy(), power / truth["pmax"], atol=1e-6)
    with torch.no_grad():  # features come from the observation
        np.testing.assert_allclose(x.numpy(), net.features(to_torch(obs)).numpy(), rtol=1e-6)
    _, y_obs = net._labelled(obs)
    assert not torch.allclose(y, y_obs)


# --- the loop's validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_aged_validation_is_scored_on_the_truth_against_genie_wmmse(name):
    solver = solvers.make(name, **SMALL[name])
    hist = solver.fit(adhoc(11), steps=3, seed=0, progress=False)
    assert hist["reference"] == GENIE_REFERENCE and solver.meta["reference"] == GENIE_REFERENCE
    assert solver.meta["env_kwargs"] == {"num_links": 6, **AGED}
    obs, truth = adhoc(11)(SMALL[name]["val_size"], with_truth=True)  # the validation batch: the first draw
    assert solver.ratio_to_wmmse(obs, truth=truth) == pytest.approx(hist["best_val_ratio"], rel=1e-9)
    # the ratio really is on the truth: act on obs, score on truth, over WMMSE on the truth
    problem = get_problem("power")
    mine = problem.weighted_sum_rate(truth, solver.act_batch(obs)).mean()
    genie = problem.weighted_sum_rate(truth, solvers.make("wmmse").act_batch(truth)).mean()
    assert hist["best_val_ratio"] == pytest.approx(mine / genie, rel=1e-9)
    assert solver.ratio_to_wmmse(obs) != pytest.approx(hist["best_val_ratio"], rel=1e-6)


def test_a_given_validation_pair_is_scored_on_its_truth():
    obs, truth = adhoc(12)(24, with_truth=True)
    net = UWMMSE(**SMALL["uwmmse"])
    hist = net.fit(adhoc(13), steps=2, progress=False, validation=(obs, truth))
    assert hist["reference"] == GENIE_REFERENCE and net.meta["val_size"] == 24
    assert net.ratio_to_wmmse(obs, truth=truth) == pytest.approx(hist["best_val_ratio"], rel=1e-9)
    plain = UWMMSE(**SMALL["uwmmse"]).fit(adhoc(13), steps=1, progress=False, validation=obs)
    assert plain["reference"] == "wmmse"  # a plain observation is scored on itself
    with pytest.raises(ValueError, match="pair"):
        UWMMSE(**SMALL["uwmmse"]).fit(adhoc(13), steps=1, progress=False, validation=(obs, truth, truth))
    short = {k: v[:10] for k, v in truth.items()}
    with pytest.raises(ValueError, match="truth"):
        UWMMSE(**SMALL["uwmmse"]).fit(adhoc(13), steps=1, progress=False, validation=(obs, short))


def test_cli_train_on_aged_csi_reports_the_ratio_to_genie_wmmse(tmp_path, capsys):
    out = tmp_path / "u.pt"
    argv = ["train", "uwmmse", "--env", "PowerControl-AdHoc-v0", "--env-kwargs",
            "num_links=6,speed=30,slot_duration=0.001,csi_delay=1", "--solver-kwargs", "hidden=3,val_size=32",
            "--steps", "2", "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "ratio to wmmse (perfect CSI)" in text
    meta = UWMMSE.load(out).meta
    assert meta["reference"] == GENIE_REFERENCE and meta["env_kwargs"]["csi_delay"] == 1
    assert meta["command"].startswith("l2o train uwmmse")


# --- the shipped aged checkpoints and pretrained=True ---------------------------------------------------
SHIPPED_AGED = {  # solver, tag, env ID, the perfect-CSI sibling's tag
    ("uwmmse", "aged"): ("PowerControl-AdHoc-v0", "fixed"),
    ("wcgcn", "d2d-aged"): ("PowerControl-D2D-v0", "default"),
    ("wcgcn", "ic10-aged"): ("PowerControl-IC-v0", "ic10"),
}


@pytest.mark.parametrize("name,tag", list(SHIPPED_AGED))
def test_shipped_aged_checkpoints_record_their_scenario_and_command(name, tag):
    entry = next(e for e in shipped_checkpoints(name) if e["tag"] == tag)
    env_id, _ = SHIPPED_AGED[name, tag]
    assert entry["env_id"] == env_id
    assert {k: entry["env_kwargs"].get(k) for k in AGED} == AGED
    assert entry["command"].startswith(f"l2o train {name} --env {env_id}")
    meta = solvers.make(name, pretrained=tag).meta
    assert meta["reference"] == GENIE_REFERENCE


@pytest.mark.parametrize("name,env_id,kwargs,tag", [
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, **AGED}, "aged"),
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "speed": 3, "slot_duration": 0.001, "csi_delay": 1}, "aged"),
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "csi_error": 0.3}, "aged"),
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "topology": "fixed"}, "fixed"),
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "topology": "fixed", "speed": 30, "slot_duration": 0.001},
     "fixed"),
    ("uwmmse", "PowerControl-AdHoc-v0", {"num_links": 20, "topology": "random"}, "default"),
    ("wcgcn", "PowerControl-D2D-v0", {"num_links": 50, **AGED}, "d2d-aged"),
    ("wcgcn", "PowerControl-D2D-v0", {"num_links": 50}, "default"),
    ("wcgcn", "PowerControl-D2D-v0", {"num_links": 50, "speed": 30, "slot_duration": 0.001}, "default"),
    ("wcgcn", "PowerControl-D2D-v0", {"num_links": 50, "weights": "random"}, "d2d-random"),
    ("wcgcn", "PowerControl-IC-v0", {"num_links": 10, **AGED}, "ic10-aged"),
    ("wcgcn", "PowerControl-IC-v0", {"num_links": 10, "snr_db": 10, **AGED}, "ic10-aged"),
    ("wcgcn", "PowerControl-IC-v0", {"num_links": 20, **AGED}, "ic10-aged"),
    ("wcgcn", "PowerControl-IC-v0", {"num_links": 10}, "ic10"),
    ("wcgcn", "PowerControl-IC-v0", {"num_links": 10, "speed": 30, "slot_duration": 0.001}, "ic10"),
])
def test_pretrained_picks_the_aged_tag_on_aged_csi_only(name, env_id, kwargs, tag):
    # as the evaluation harness calls it (keywords equal to the env's defaults dropped) and raw
    assert select_pretrained(name, env_id, kwargs, normalise=explicit_kwargs)["tag"] == tag
    assert select_pretrained(name, env_id, kwargs)["tag"] == tag


# --- the shipped aged checkpoints beat their perfect-CSI siblings on aged CSI ----------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name,tag", list(SHIPPED_AGED))
def test_aged_checkpoint_beats_its_perfect_csi_sibling_on_aged_csi(name, tag):
    env_id, sibling = SHIPPED_AGED[name, tag]
    aged = solvers.make(name, pretrained=tag)
    sampler = ObservationSampler(env_id, seed=2024, **aged.meta["env_kwargs"])
    obs, truth = sampler(1000, with_truth=True)
    problem = get_problem("power")

    def wsr(solver):
        return problem.weighted_sum_rate(truth, solver.act_batch(obs))

    diff = wsr(aged) - wsr(solvers.make(name, pretrained=sibling))  # paired over the same samples
    assert diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(diff.size)
