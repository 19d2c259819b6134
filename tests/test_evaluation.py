"""The evaluation harness: common random numbers, sweeps, resets, metrics, files (small slot counts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from l2o_env.evaluation import (
    COLUMNS,
    ConfigError,
    EvaluationResult,
    evaluate,
    parse_kwargs,
    parse_solver_kwargs,
    parse_sweep,
    parse_value,
    rerun,
)
from l2o_env.rates import link_rates

IC = "PowerControl-IC-v0"


# --- toy solvers -------------------------------------------------------------------------------------
class Fraction:
    """Every link at ``frac * pmax`` (batched)."""

    def __init__(self, frac=0.5, name="fraction"):
        self.frac, self.name = frac, name

    def act_batch(self, obs):
        return self.frac * np.asarray(obs["pmax"], dtype=np.float64)


class ActOnly:
    """Only ``act(obs)`` for one observation, as a third-party policy might have."""

    def __init__(self, frac=0.5):
        self.frac = frac
        self.calls = 0

    def act(self, obs):
        assert np.ndim(obs["gain"]) == 2, "act must get one observation, not a batch"
        self.calls += 1
        return self.frac * np.asarray(obs["pmax"], dtype=np.float64)


class Recorder(Fraction):
    """Logs resets, the batches it answered and their shapes."""

    def __init__(self, frac=1.0, name="recorder"):
        super().__init__(frac, name)
        self.events: list[str] = []
        self.obs: list[dict] = []

    def reset(self):
        self.events.append("reset")

    def act_batch(self, obs):
        self.events.append("act")
        self.obs.append({k: np.array(v) for k, v in obs.items()})
        return super().act_batch(obs)


class Overshoot(Fraction):
    """Asks for twice the budget: the harness must clip it to pmax and count it."""

    def __init__(self):
        super().__init__(2.0, "overshoot")


# --- common random numbers and the reference --------------------------------------------------------
def test_identical_solvers_give_identical_numbers():
    res = evaluate({"a": Fraction(0.5), "b": Fraction(0.5), "c": Fraction(0.2)}, IC, {"num_links": 6}, slots=64, seed=1)
    a, b, c = res.row("a"), res.row("b"), res.row("c")
    for col in ("mean_wsr", "wsr_ci95", "std_wsr", "mean_sum_rate", "ratio_to_reference", "ratio_ci95",
                "served_fraction", "jain_index", "clipped_fraction"):
        assert a[col] == b[col], col
    assert a["mean_wsr"] != c["mean_wsr"]
    np.testing.assert_array_equal(res.per_slot_sum_rate[("a", None)], res.per_slot_sum_rate[("b", None)])


def test_every_solver_sees_the_same_channels():
    r1, r2 = Recorder(1.0, "r1"), Recorder(0.3, "r2")
    evaluate([r1, r2], IC, {"num_links": 4}, slots=20, seed=3, episode_length=5, max_batch=2)
    assert len(r1.obs) == len(r2.obs) > 1
    for o1, o2 in zip(r1.obs, r2.obs):
        np.testing.assert_array_equal(o1["gain"], o2["gain"])


class Vandal(Fraction):
    """Scribbles over its input: must not reach the other solvers or its own score."""

    def act_batch(self, obs):
        obs["gain"][...] = 0.0
        obs["pmax"][...] = 0.0
        return super().act_batch({**obs, "pmax": np.ones_like(obs["pmax"])})


def test_a_solver_that_edits_its_input_changes_nothing_for_the_others():
    clean = evaluate({"a": Fraction(0.5)}, IC, {"num_links": 4}, slots=16, seed=0)
    messy = evaluate({"v": Vandal(0.5), "a": Fraction(0.5)}, IC, {"num_links": 4}, slots=16, seed=0)
    assert messy.row("a")["mean_wsr"] == clean.row("a")["mean_wsr"]
    assert messy.row("v")["mean_wsr"] == clean.row("a")["mean_wsr"]  # scored on the true channel (pmax = 1)


def test_same_seed_same_table_other_seed_other_table():
    kw = dict(env_id=IC, env_kwargs={"num_links": 5}, slots=50)
    a = evaluate([Fraction(0.7)], seed=4, **kw)
    b = evaluate([Fraction(0.7)], seed=4, **kw)
    c = evaluate([Fraction(0.7)], seed=5, **kw)
    assert a.row("fraction")["mean_wsr"] == b.row("fraction")["mean_wsr"]
    assert a.row("fraction")["mean_wsr"] != c.row("fraction")["mean_wsr"]


def test_randomised_solvers_get_the_evaluation_seed():
    a = evaluate(["random_power"], IC, {"num_links": 5}, slots=40, seed=11)
    b = evaluate(["random_power"], IC, {"num_links": 5}, slots=40, seed=11)
    assert a.row("random_power")["mean_wsr"] == b.row("random_power")["mean_wsr"]
    assert a.config["solvers"][0]["kwargs"] == {"seed": 11}
    c = evaluate(["random_power"], IC, {"num_links": 5}, slots=40, seed=11, solver_kwargs={"random_power": {"seed": 3}})
    assert c.config["solvers"][0]["kwargs"] == {"seed": 3}
    assert c.row("random_power")["mean_wsr"] != a.row("random_power")["mean_wsr"]


def test_max_power_below_wmmse_on_the_ic_and_reference_added():
    res = evaluate(["max_power"], IC, {"num_links": 10}, slots=200, seed=0)
    assert res.solvers == ["max_power", "wmmse"]
    ref = res.row("wmmse")
    assert ref["note"] == "reference (added automatically)" and res.config["reference_added"]
    assert ref["ratio_to_reference"] == 1.0 and ref["ratio_ci95"] == 0.0
    mp = res.row("max_power")
    assert mp["ratio_to_reference"] < 1.0
    assert math.isclose(mp["ratio_to_reference"], mp["mean_wsr"] / ref["mean_wsr"], rel_tol=1e-12)


def test_kwargs_reach_the_added_reference():
    res = evaluate(["max_power"], IC, {"num_links": 4}, slots=20, seed=0, solver_kwargs={"wmmse": {"max_iter": 1}})
    ref = res.config["solvers"][-1]
    assert ref["label"] == "wmmse" and ref["kwargs"] == {"max_iter": 1}
    full = evaluate(["max_power"], IC, {"num_links": 4}, slots=20, seed=0)
    assert res.row("wmmse")["mean_wsr"] < full.row("wmmse")["mean_wsr"]
    assert rerun(res).row("wmmse")["mean_wsr"] == res.row("wmmse")["mean_wsr"]


def test_listed_wmmse_is_the_reference_and_not_added_twice():
    res = evaluate(["wmmse", "max_power"], IC, {"num_links": 4}, slots=20, seed=0)
    assert res.solvers == ["wmmse", "max_power"]
    assert res.row("wmmse")["note"] == "reference" and not res.config["reference_added"]


def test_metrics_match_a_direct_computation():
    rec = Recorder(0.6)
    res = evaluate([rec], IC, {"num_links": 5, "weights": "random"}, slots=30, seed=2, episode_length=3, max_batch=5)
    # 30 slots = 10 episodes of 3 steps, 5 parallel envs -> 2 chunks; first recorded call is the warm-up
    calls = rec.obs[1:]
    assert len(calls) == 6 and all(o["gain"].shape == (5, 5, 5) for o in calls)
    wsr, users, ep_wsr = [], [], []
    for chunk in (calls[:3], calls[3:]):
        ep, ew = 0, 0
        for o in chunk:
            r = link_rates(o["gain"], 0.6 * o["pmax"].astype(np.float64), o["noise"])
            wsr.append((o["weight"] * r).sum(-1))
            ep, ew = ep + r, ew + wsr[-1]
        users.append(ep / 3)
        ep_wsr.append(ew / 3)
    row = res.row("recorder")
    assert row["slots"] == 30 and row["units"] == 10 and res.config["unit"] == "episode"
    assert math.isclose(row["mean_wsr"], np.concatenate(wsr).mean(), rel_tol=1e-12)
    # the interval is over the 10 episodes (slots of an episode are not independent draws)
    episodes = np.concatenate(ep_wsr)
    assert math.isclose(row["wsr_ci95"], 1.959963984540054 * episodes.std(ddof=1) / np.sqrt(10), rel_tol=1e-9)
    rates = np.concatenate(users)  # (10, K) episode-averaged link rates
    assert math.isclose(row["served_fraction"], (rates > 0.01).mean(), rel_tol=1e-12)
    jain = rates.sum(-1) ** 2 / (rates.shape[-1] * (rates ** 2).sum(-1))
    assert math.isclose(row["jain_index"], jain.mean(), rel_tol=1e-12)
    assert row["mean_sum_rate"] != row["mean_wsr"]  # random weights: weighted and plain sums differ
    assert row["clipped_fraction"] == 0.0 and row["time_per_slot_s"] > 0


def test_out_of_budget_actions_are_clipped_and_counted():
    res = evaluate({"over": Overshoot(), "full": Fraction(1.0)}, IC, {"num_links": 4}, slots=16, seed=0)
    assert res.row("over")["clipped_fraction"] == 1.0
    assert res.row("full")["clipped_fraction"] == 0.0
    assert res.row("over")["mean_wsr"] == res.row("full")["mean_wsr"]


# --- solver kinds --------------------------------------------------------------------------------------
def test_object_with_only_act_works_and_matches_batched():
    plain = ActOnly(0.5)
    res = evaluate({"plain": plain, "batched": Fraction(0.5)}, IC, {"num_links": 4}, slots=12, seed=0)
    assert plain.calls >= 12
    assert res.row("plain")["mean_wsr"] == res.row("batched")["mean_wsr"]


def test_stateful_solver_is_reset_at_every_episode_start():
    rec = Recorder()
    evaluate([rec], IC, {"num_links": 3, "speed": 3.0}, slots=40, seed=0, episode_length=10, max_batch=2)
    ev = rec.events
    assert ev[0] == "act" and ev[1] == "reset"  # untimed warm-up, then the first episode starts clean
    # 4 episodes of 10 steps in 2 chunks of 2 parallel envs: each reset is followed by exactly 10 decisions
    assert ev[1:] == (["reset"] + ["act"] * 10) * 2


def test_episodes_longer_than_the_registered_limit_are_not_cut():
    rec = Recorder()
    res = evaluate([rec], IC, {"num_links": 2, "speed": 1.0}, slots=120, seed=0, episode_length=120)
    assert res.config["episodes"] == 1 and res.row("recorder")["slots"] == 120
    assert rec.events == ["act", "reset"] + ["act"] * 120


def test_solver_kwargs_reach_the_solver_and_labels_tell_copies_apart():
    res = evaluate({"t1": "truncated_wmmse", "t8": "truncated_wmmse"}, IC, {"num_links": 8}, slots=64, seed=0,
                   solver_kwargs={"t1": {"iterations": 1}, "t8": {"iterations": 8}})
    kws = {s["label"]: s["kwargs"] for s in res.config["solvers"]}
    assert kws["t1"] == {"iterations": 1} and kws["t8"] == {"iterations": 8}
    assert res.row("t1")["mean_wsr"] < res.row("t8")["mean_wsr"]


# --- sweeps ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["PowerControl-AdHoc-v0", "PowerControl-D2D-v0"])
def test_density_sweep_changes_the_sum_rate(env_id):
    res = evaluate([Fraction(1.0, "full")], env_id, {"num_links": 8}, slots=40, seed=0, sweep={"density": [0.5, 4.0]})
    lo, hi = (res.row("full", d)["mean_sum_rate"] for d in (0.5, 4.0))
    assert lo != hi
    assert [r["sweep_value"] for r in res.rows if r["solver"] == "full"] == [0.5, 4.0]


def test_num_links_sweep_changes_k():
    rec = Recorder()
    res = evaluate([rec], "PowerControl-IMAC-v0", {"num_cells": 3}, slots=8, seed=0, sweep={"num_links": [6, 12]})
    assert sorted({o["gain"].shape[-1] for o in rec.obs}) == [6, 12]
    assert res.config["sweep"] == {"knob": "num_links", "values": [6, 12], "label": "number of links K", "unit": "count"}


class FixedK(Fraction):
    """Like a fixed-size MLP: only K = 4."""

    def act_batch(self, obs):
        k = np.shape(obs["gain"])[-1]
        if k != 4:
            raise ValueError(f"FixedK was built for K=4, got K={k}")
        return super().act_batch(obs)


def test_a_solver_failing_at_one_sweep_point_is_reported_not_fatal(tmp_path):
    with pytest.warns(RuntimeWarning, match="num_links=6"):
        res = evaluate([FixedK(1.0, "fixed_k"), Fraction(1.0, "any_k")], IC, {}, slots=8, seed=0,
                       sweep={"num_links": [4, 6]})
    assert res.row("fixed_k", 4)["mean_wsr"] == res.row("any_k", 4)["mean_wsr"]
    bad = res.row("fixed_k", 6)
    assert bad["note"] == "failed: ValueError: FixedK was built for K=4, got K=6"
    assert math.isnan(bad["mean_wsr"]) and math.isnan(bad["ratio_to_reference"]) and bad["slots"] == 0
    assert not math.isnan(res.row("any_k", 6)["mean_wsr"])
    assert "failed: ValueError" in res.table()
    json_path, _ = res.save(tmp_path / "r.json")  # NaN survives as null in strict JSON
    assert math.isnan(EvaluationResult.load(json_path).row("fixed_k", 6)["mean_wsr"])
    res.plot(tmp_path / "r.png")


def test_speed_sweep_runs_episodes_with_correlated_slots():
    rec = Recorder()
    res = evaluate([rec], IC, {"num_links": 4}, slots=20, seed=0, sweep={"speed": [0.0, 30.0]})
    assert res.config["episode_length"] == 10  # a speed is set: slots come in episodes
    assert len(res.rows) == 4 and all(r["slots"] == 20 for r in res.rows)
    # at 0 m/s the channel stays put within an episode, at 30 m/s it moves
    first = rec.obs[1:11]  # speed=0: 10 steps after the warm-up
    np.testing.assert_array_equal(first[0]["gain"], first[-1]["gain"])
    fast = rec.obs[12:22]
    assert not np.array_equal(fast[0]["gain"], fast[-1]["gain"])


def test_replay_and_live_agree_when_weights_are_fixed():
    kw = dict(env_id="PowerControl-IMAC-v0", env_kwargs={"speed": 3.0}, slots=20, seed=0, episode_length=5)
    a = evaluate(["max_power", "truncated_wmmse"], mode="replay", **kw)
    b = evaluate(["max_power", "truncated_wmmse"], mode="live", **kw)
    for s in ("max_power", "truncated_wmmse", "wmmse"):
        assert math.isclose(a.row(s)["mean_wsr"], b.row(s)["mean_wsr"], rel_tol=1e-12), s


def test_proportional_fair_weights_run_live():
    res = evaluate(["max_power"], IC, {"num_links": 4, "weights": "proportional_fair", "speed": 1.0}, slots=20, seed=0)
    assert res.config["mode"] == "live"
    assert res.row("max_power")["mean_wsr"] != res.row("max_power")["mean_sum_rate"]
    with pytest.raises(ConfigError, match="proportional_fair"):
        evaluate(["max_power"], IC, {"num_links": 4, "weights": "proportional_fair"}, slots=4, mode="replay")


# --- files -------------------------------------------------------------------------------------------
def test_save_load_and_rerun_reproduce_the_table(tmp_path):
    res = evaluate(["max_power", "truncated_wmmse"], IC, {"num_links": 5}, slots=30, seed=7,
                   solver_kwargs={"truncated_wmmse": {"iterations": 2}}, sweep={"speed": [None, 3.0]})
    json_path, csv_path = res.save(tmp_path / "deep" / "run")
    assert json_path.name == "run.json" and csv_path.name == "run.csv"
    data = json.loads(json_path.read_text())
    cfg = data["config"]
    assert cfg["env_id"] == IC and cfg["seed"] == 7 and cfg["env_kwargs"] == {"num_links": 5}
    assert "l2o_env_version" in cfg and cfg["sweep"]["values"] == [None, 3.0]
    assert {s["label"]: s["kwargs"] for s in cfg["solvers"]}["truncated_wmmse"] == {"iterations": 2}
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(COLUMNS) and len(lines) == 1 + len(res.rows) == 7
    loaded = EvaluationResult.load(json_path)
    assert loaded.rows == json.loads(json.dumps(res.to_dict()["rows"]))
    again = rerun(json_path)
    for r in res.rows:
        assert again.row(r["solver"], r["sweep_value"])["mean_wsr"] == r["mean_wsr"]


def test_plot_files_are_pngs(tmp_path):
    swept = evaluate([Fraction(0.5)], IC, {}, slots=8, seed=0, sweep={"num_links": [3, 4]})
    flat = evaluate([Fraction(0.5)], IC, {"num_links": 4}, slots=8, seed=0)
    for res, name in ((swept, "sweep.png"), (flat, "cdf.png")):
        path = res.plot(tmp_path / "figs" / name)
        head = path.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# --- user mistakes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(env_id="PowerControl-IMAK-v0"), "Did you mean 'PowerControl-IMAC-v0'"),
        (dict(solvers=["wmmsee"]), "Did you mean 'wmmse'"),
        (dict(env_kwargs={"num_linkz": 3}), "num_linkz"),
        (dict(sweep={"sped": [1, 2]}), "Did you mean 'speed'"),
        (dict(sweep={"speed": [1], "density": [2]}), "one knob"),
        (dict(env_kwargs={"speed": 1.0}, sweep={"speed": [1, 2]}), "both swept and fixed"),
        (dict(sweep={"density": [2.0]}), "density"),  # the IC has no geometry
        (dict(slots=0), "slots"),
        (dict(solver_kwargs={"nope": {"x": 1}}), "nope"),
        (dict(solvers=[object()]), "act"),
    ],
)
def test_user_mistakes_raise_config_error(kwargs, match):
    args = dict(solvers=["max_power"], env_id=IC, env_kwargs={"num_links": 3}, slots=4, seed=0)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        evaluate(**args)


# --- parsing -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, value",
    [("12", 12), ("-3", -3), ("2.5", 2.5), ("2.4e9", 2.4e9), ("True", True), ("false", False), ("none", None),
     ("None", None), ("10:50", (10.0, 50.0)), ("uniform", "uniform"), ("proportional_fair", "proportional_fair"),
     ("(200,80,80)", (200, 80, 80)), ("[1, 2.5]", (1, 2.5)), ("(bad", "(bad")],
)
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_parse_kwargs_sweep_and_solver_kwargs():
    assert parse_kwargs("num_cells=3, num_links=12,pair_distance=10:50") == {
        "num_cells": 3, "num_links": 12, "pair_distance": (10.0, 50.0)}
    assert parse_kwargs("hidden=(8,8),pool_size=300,widths=[1,2]") == {  # commas inside brackets stay
        "hidden": (8, 8), "pool_size": 300, "widths": (1, 2)}
    assert parse_solver_kwargs("mlp.hidden=(8,8),wmmse.max_iter=50") == {"mlp": {"hidden": (8, 8)}, "wmmse": {"max_iter": 50}}
    assert parse_sweep("speed=0,3,30") == {"speed": [0, 3, 30]}
    assert parse_sweep("speed=none,3") == {"speed": [None, 3]}
    assert parse_sweep(None) is None
    assert parse_solver_kwargs("truncated_wmmse.iterations=2,wmmse.max_iter=50") == {
        "truncated_wmmse": {"iterations": 2}, "wmmse": {"max_iter": 50}}
    for bad in ("num_links", "=3", "a=1,a=2", "a="):
        with pytest.raises(ConfigError):
            parse_kwargs(bad)
    for bad in ("speed", "speed=", "=1,2", "speed=1,density=2"):
        with pytest.raises(ConfigError):
            parse_sweep(bad)
    with pytest.raises(ConfigError):
        parse_solver_kwargs("iterations=2")
