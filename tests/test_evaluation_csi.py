"""The harness with aged and noisy CSI (issue 14): scores on the true channel, the genie row and its reference,
the env facts a solver asks for, sweeps over the CSI knobs, files and reruns."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import l2o_env  # noqa: F401  (registers the IDs)
import solvers
from l2o_env.envs import true_observation
from l2o_env.evaluation import ConfigError, EvaluationResult, build_spec, evaluate, rerun
from l2o_env.evaluation.spec import GENIE_SUFFIX, genie_base, genie_label
from l2o_env.problems import get_problem

IC = "PowerControl-IC-v0"
GENIE = "wmmse (perfect CSI)"
MOBILE = {"speed": 30.0, "slot_duration": 1e-3}


def _first_batch(env_id, env_kwargs, slots, seed=0):
    """The observation and its truth the harness's first chunk sees (same seed, same vector env)."""
    spec, _, _ = build_spec(["max_power"], env_id, env_kwargs, slots=slots, seed=seed)
    assert spec.chunks == 1 and spec.episode_length == 1
    env = gym.make_vec(env_id, num_envs=spec.parallel_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    obs, info = env.reset(seed=spec.point_seeds()[0])
    env.close()
    as64 = lambda d: {k: np.asarray(v, dtype=np.float64) for k, v in d.items()}  # noqa: E731
    return as64(obs), as64(true_observation(obs, info))


# --- scores on the true channel -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["replay", "live"])
def test_every_runner_scores_on_the_true_channel_not_the_observation(mode):
    kw = {"num_links": 4, "csi_delay": 1}  # speed=None: the observed slot is an independent draw
    res = evaluate(["max_power"], IC, kw, slots=64, seed=0, mode=mode)
    obs, truth = _first_batch(IC, kw, 64)
    problem = get_problem("power")
    action = np.asarray(obs["pmax"])
    on_truth = problem.weighted_sum_rate(truth, action).mean()
    on_obs = problem.weighted_sum_rate(obs, action).mean()
    assert abs(on_truth - on_obs) > 0.05  # the two really differ
    assert math.isclose(res.row("max_power")["mean_wsr"], on_truth, rel_tol=1e-9)


def test_the_genie_row_is_wmmse_on_the_true_channel_and_the_default_reference():
    kw = {"num_links": 4, "csi_error": 0.5}
    res = evaluate(["wmmse", "max_power"], IC, kw, slots=64, seed=0)
    assert res.solvers == ["wmmse", "max_power", GENIE]
    obs, truth = _first_batch(IC, kw, 64)
    problem = get_problem("power")
    wmmse = solvers.make("wmmse")
    genie = problem.weighted_sum_rate(truth, wmmse.act_batch(truth)).mean()
    aged = problem.weighted_sum_rate(truth, wmmse.act_batch(obs)).mean()
    assert math.isclose(res.row(GENIE)["mean_wsr"], genie, rel_tol=1e-9)
    assert math.isclose(res.row("wmmse")["mean_wsr"], aged, rel_tol=1e-9)
    row = res.row(GENIE)
    assert row["ratio_to_reference"] == 1.0 and row["ratio_ci95"] == 0.0
    assert row["note"].startswith("reference (added automatically); genie: sees the true current channel")
    assert res.row("wmmse")["note"] == "" and res.row("wmmse")["ratio_to_reference"] < 1.0
    cfg = res.config
    assert cfg["reference"] == GENIE and cfg["reference_name"] == "wmmse" and cfg["reference_genie"] is True
    assert cfg["genie"] == {"label": GENIE, "name": "wmmse", "reference": True,
                            "sees": "the true current channel (perfect CSI)"}
    assert [s["genie"] for s in cfg["solvers"]] == [False, False, True]
    table = res.table()
    assert f"ratio to {GENIE}" in table and "genie row 'wmmse (perfect CSI)'" in table


def test_perfect_csi_adds_no_genie_and_keeps_wmmse_as_the_reference():
    res = evaluate(["max_power"], IC, {"num_links": 3, "csi_history": 2}, slots=16, seed=0)
    assert res.solvers == ["max_power", "wmmse"] and res.config["reference"] == "wmmse"
    assert res.config["genie"] is None and res.config["reference_genie"] is False
    assert "genie" not in res.table()


def test_an_explicit_reference_wins_and_the_genie_stays_an_ordinary_row():
    res = evaluate(["wmmse", "max_power"], IC, {"num_links": 4, "csi_delay": 1, **MOBILE}, slots=40, seed=0,
                   reference="wmmse")
    assert res.config["reference"] == "wmmse" and res.config["reference_genie"] is False
    assert res.config["genie"]["reference"] is False
    assert res.row("wmmse")["note"] == "reference"
    assert res.row(GENIE)["ratio_to_reference"] > 1.0
    assert res.row(GENIE)["note"].startswith("genie: ")


def test_the_genie_of_another_solver_can_be_the_reference_even_with_perfect_csi():
    # with perfect CSI the genie sees what every solver sees: exactly the plain row
    res = evaluate(["wmmse"], IC, {"num_links": 3}, slots=16, seed=0, reference=GENIE)
    assert res.solvers == ["wmmse", GENIE] and res.row("wmmse")["ratio_to_reference"] == 1.0
    best = evaluate(["max_power"], IC, {"num_links": 3, "csi_delay": 1}, slots=8, seed=0,
                    reference="wmmse_best_of (perfect CSI)", solver_kwargs={"wmmse_best_of": {"restarts": 1}})
    assert best.solvers == ["max_power", "wmmse_best_of (perfect CSI)"]  # one genie row: the reference's
    assert best.config["solvers"][-1]["kwargs"]["restarts"] == 1
    with pytest.raises(ConfigError, match="labelled 'wmmse_best_of \\(perfect CSI\\)'"):
        evaluate(["max_power"], IC, {"num_links": 3}, slots=4, reference="wmmse (perfect CSI)=wmmse_best_of")


def test_genie_kwargs_follow_the_plain_solver_and_labels_are_reserved():
    res = evaluate(["max_power"], IC, {"num_links": 3, "csi_error": 0.3}, slots=8, seed=0,
                   solver_kwargs={"wmmse": {"max_iter": 7}})
    assert res.config["solvers"][-1]["kwargs"] == {"max_iter": 7}
    with pytest.raises(ConfigError, match="reserved for the genie row"):
        evaluate({GENIE: "max_power"}, IC, {"num_links": 3, "csi_delay": 1}, slots=4)
    assert genie_label("wmmse") == GENIE and genie_base(GENIE) == "wmmse" and genie_base("wmmse") is None
    assert GENIE.endswith(GENIE_SUFFIX)


def test_speed_sweep_with_aged_csi_shows_the_loss_to_mobility(tmp_path):
    res = evaluate(["wmmse", "max_power"], IC, {"num_links": 4, "slot_duration": 1e-3, "csi_delay": 1}, slots=40,
                   seed=0, sweep={"speed": [0.0, 30.0]})
    # at 0 m/s (rho = 1) the observed slot is the current one: the plain row is the genie
    assert res.row("wmmse", 0.0)["ratio_to_reference"] == 1.0
    assert res.row("wmmse", 30.0)["ratio_to_reference"] < 0.9
    assert res.row(GENIE, 30.0)["fading_correlation"] == pytest.approx(0.5068, abs=1e-3)
    path = res.plot(tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csi_error_sweep():
    res = evaluate(["wmmse"], IC, {"num_links": 4}, slots=32, seed=0, sweep={"csi_error": [0.0, 0.5]})
    assert res.config["sweep"]["knob"] == "csi_error" and res.config["reference"] == GENIE
    assert res.row("wmmse", 0.0)["ratio_to_reference"] == 1.0
    assert res.row("wmmse", 0.5)["ratio_to_reference"] < 1.0


def test_files_record_the_genie_and_rerun_reproduces_it(tmp_path):
    res = evaluate(["wmmse", "max_power"], IC, {"num_links": 4, "csi_delay": 1}, slots=24, seed=1,
                   solver_kwargs={"wmmse": {"max_iter": 50}})
    json_path, csv_path = res.save(tmp_path / "aged.json")
    data = json.loads(json_path.read_text())
    assert data["config"]["reference"] == GENIE and data["config"]["genie"]["label"] == GENIE
    assert "genie" in next(r for r in data["rows"] if r["solver"] == GENIE)["note"]
    assert GENIE in csv_path.read_text()
    back = EvaluationResult.load(json_path)
    assert back.config["reference_genie"] is True
    for again in (rerun(json_path), rerun(json_path, slots=24)):
        assert again.solvers == res.solvers
        assert again.config["solvers"] == res.config["solvers"]
        for s in res.solvers:
            assert again.row(s)["mean_wsr"] == res.row(s)["mean_wsr"]
    explicit = evaluate(["wmmse", "max_power"], IC, {"num_links": 4, "csi_delay": 1}, slots=8, seed=1,
                        reference="wmmse")
    assert rerun(explicit).config["reference"] == "wmmse"
    bars = res.plot(tmp_path / "bars.png", metric="wsr")
    cdf = res.plot(tmp_path / "cdf.png")
    assert bars.stat().st_size > 0 and cdf.stat().st_size > 0


def test_a_genie_in_live_mode_sees_the_truth_of_its_own_env():
    kw = {"num_links": 4, "csi_delay": 1, "weights": "proportional_fair", **MOBILE}
    res = evaluate(["wmmse"], IC, kw, slots=20, seed=0)
    assert res.config["mode"] == "live" and res.config["reference"] == GENIE
    assert res.row(GENIE)["mean_wsr"] > res.row("wmmse")["mean_wsr"]


# --- env facts for solvers that ask for them ---------------------------------------------------------
def test_the_harness_fills_the_predictive_solvers_env_facts_per_point():
    res = evaluate(["wmmse_predictive"], IC, {"num_links": 3, "slot_duration": 1e-3, "csi_delay": 1}, slots=20,
                   seed=0, sweep={"speed": [3.0, 30.0]})
    assert res.row("wmmse_predictive", 3.0)["note"] == "from the env: rho=0.9943, csi_delay=1, csi_error=0"
    assert res.row("wmmse_predictive", 30.0)["note"] == "from the env: rho=0.5068, csi_delay=1, csi_error=0"
    assert res.config["solvers"][0]["kwargs"] == {}  # the recorded kwargs are the user's
    mine = evaluate(["wmmse_predictive"], IC, {"num_links": 3, "csi_delay": 1}, slots=8, seed=0,
                    solver_kwargs={"wmmse_predictive": {"rho": 0.9}})
    assert mine.row("wmmse_predictive")["note"] == "from the env: csi_delay=1, csi_error=0"
    # speed=None: independent slots, rho 0
    iid = evaluate(["wmmse_predictive"], IC, {"num_links": 3, "csi_delay": 2}, slots=8, seed=0)
    assert iid.row("wmmse_predictive")["note"] == "from the env: rho=0, csi_delay=2, csi_error=0"
