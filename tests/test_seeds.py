"""Several seeds per sweep point (``evaluate(..., seeds=n)``, ``l2o eval --seeds n``): each seed is the
one-seed evaluation of that seed, the table reports the mean over the seeds with a Student-t 95 % interval,
the per-seed rows are saved and reloaded, the plot's error bars are those intervals, and one seed changes
nothing."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from l2o_env.cli import main
from l2o_env.evaluation import ConfigError, EvalSpec, EvaluationResult, evaluate, rerun
from l2o_env.evaluation.metrics import Z95, mean_t_ci, t_quantile

IC = "PowerControl-IC-v0"
ADHOC = "PowerControl-AdHoc-v0"
# two-sided 95 % quantiles of Student's t (printed tables, e.g. NIST/SEMATECH e-Handbook, Table 1.3.6.7.2)
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 20: 2.086, 30: 2.042, 100: 1.984}
TIMING = "time_per_slot_s"


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != TIMING}


# --- the t quantile ------------------------------------------------------------------------------------
@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantile_matches_the_printed_table(df):
    assert round(t_quantile(df), 3) == T_TABLE[df]


def test_t_quantile_tends_to_the_normal_and_checks_its_arguments():
    assert t_quantile(2) == pytest.approx(4.302652729749464, rel=1e-12)  # exact: sqrt(2 / (1 - 0.95^2) - 2)
    assert Z95 < t_quantile(10_000) < Z95 + 1e-3
    assert t_quantile(5, 0.90) == pytest.approx(2.015, abs=5e-4)
    for bad in (0, 1.5, "3", True):
        with pytest.raises(ValueError, match="df"):
            t_quantile(bad)
    with pytest.raises(ValueError, match="level"):
        t_quantile(3, 1.0)


def test_mean_t_ci_is_the_textbook_formula():
    x = np.array([2.0, 3.5, 4.0, 3.1])
    mean, half = mean_t_ci(x)
    s = math.sqrt(sum((v - x.sum() / 4) ** 2 for v in x) / 3)
    assert mean == pytest.approx(x.sum() / 4, rel=1e-15)
    assert half == pytest.approx(3.182446305284263 * s / 2, rel=1e-9)
    assert math.isnan(mean_t_ci([1.0])[1]) and math.isnan(mean_t_ci([])[0])


# --- one seed: nothing changes -------------------------------------------------------------------------
def test_one_seed_is_the_table_of_before():
    kw = dict(solvers=["max_power", "random_power"], env_id=IC, slots=20, seed=3, sweep={"num_links": [3, 4]})
    before, now = evaluate(**kw), evaluate(**kw, seeds=1)
    assert now.seed_rows == [] and now.config["seeds"] == 1 and "interval" not in now.config
    assert [_strip(r) for r in now.rows] == [_strip(r) for r in before.rows]
    for res in (before, now):  # the timing column is the only one that differs from run to run
        for r in res.rows:
            r[TIMING] = 1e-3
    assert now.table() == before.table()
    title = now.table().splitlines()[0]
    assert "  seed=3  " in title and "seeds=" not in title and "confidence interval over slots" in title
    assert "seed_rows" not in now.to_dict()


# --- several seeds -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_seeds():
    kw = dict(solvers=["truncated_wmmse", "random_power", "max_power"], env_id=ADHOC,
              env_kwargs={"num_links": 5, "topology": "random"}, slots=24, sweep={"density": [0.5, 2.0]})
    many = evaluate(**kw, seed=5, seeds=3)
    singles = {s: evaluate(**kw, seed=s) for s in (5, 6, 7)}
    return many, singles


def test_each_seed_is_the_one_seed_evaluation_of_that_seed(three_seeds):
    many, singles = three_seeds
    assert many.config["seeds"] == 3 and many.config["seed"] == 5
    assert len(many.seed_rows) == 3 * len(many.rows) == 3 * 4 * 2
    for seed, single in singles.items():
        for r in single.rows:
            (mine,) = [x for x in many.per_seed(r["solver"], r["sweep_value"]) if x["seed"] == seed]
            assert {k: v for k, v in _strip(mine).items() if k != "seed"} == _strip(r), (seed, r["solver"])
    # the randomised solver the harness seeds follows each seed (otherwise its seeds would agree)
    rp = [r["mean_wsr"] for r in many.per_seed("random_power", 0.5)]
    assert len(set(rp)) == 3


def test_the_table_is_the_mean_over_seeds_with_a_t_interval(three_seeds):
    many, singles = three_seeds
    t2 = 4.302652729749464  # t_{0.975, 2}
    for r in many.rows:
        per = [singles[s].row(r["solver"], r["sweep_value"]) for s in (5, 6, 7)]
        for column, half in (("mean_wsr", "wsr_ci95"), ("mean_sum_rate", "sum_rate_ci95"),
                             ("ratio_to_reference", "ratio_ci95")):
            x = [p[column] for p in per]
            mean = sum(x) / 3
            sd = math.sqrt(sum((v - mean) ** 2 for v in x) / 2)
            assert r[column] == pytest.approx(mean, rel=1e-13, abs=1e-15)
            assert r[half] == pytest.approx(t2 * sd / math.sqrt(3), rel=1e-9, abs=1e-15)
        for column in ("served_fraction", "jain_index", "clipped_fraction", "std_wsr"):
            assert r[column] == pytest.approx(sum(p[column] for p in per) / 3, rel=1e-13, abs=1e-15)
        assert r["slots"] == sum(p["slots"] for p in per) and r["units"] == 3
        assert "seed" not in r
    ref = many.row("wmmse", 2.0)
    assert ref["ratio_to_reference"] == 1.0 and ref["ratio_ci95"] == 0.0
    assert many.row("random_power", 2.0)["wsr_ci95"] > 0
    # every seed's slots behind the CDF, in seed order
    np.testing.assert_array_equal(many.per_slot_sum_rate[("max_power", 0.5)],
                                  np.concatenate([singles[s].per_slot_sum_rate[("max_power", 0.5)] for s in (5, 6, 7)]))
    title = many.table().splitlines()[0]
    assert "seeds=5..7" in title and "Student-t interval over the seeds" in title and "2 degrees of freedom" in title
    assert "Student-t" in many.config["interval"]


def test_per_seed_values_are_saved_and_reloaded(three_seeds, tmp_path):
    many, _ = three_seeds
    json_path, csv_path = many.save(tmp_path / "seeds.json")
    back = EvaluationResult.load(json_path)
    assert [_strip(r) for r in back.seed_rows] == [_strip(r) for r in json.loads(json.dumps(many.to_dict()))["seed_rows"]]
    assert back.seed_rows[0]["seed"] == 5 and len(back.seed_rows) == len(many.seed_rows)
    for r in many.rows:
        got = back.row(r["solver"], r["sweep_value"])
        assert all(_same(got[k], r[k]) for k in r)
    with csv_path.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[-1] == "seed"
    assert [row["seed"] for row in table] == ["all"] * len(many.rows) + [str(r["seed"]) for r in many.seed_rows]
    first = next(row for row in table if row["seed"] == "6" and row["solver"] == "random_power")
    assert float(first["mean_wsr"]) == many.per_seed("random_power", 0.5)[1]["mean_wsr"]


def test_the_plot_draws_the_seed_intervals(three_seeds, tmp_path):
    from matplotlib.figure import Figure

    from l2o_env.evaluation.plots import plot_sweep

    many, _ = three_seeds
    ax = Figure().add_subplot(1, 1, 1)
    plot_sweep(many, ax, "wsr")
    labels = [c.get_label() for c in ax.containers]
    container = ax.containers[labels.index("random_power")]
    segments = container.lines[2][0].get_segments()  # one vertical bar per sweep point
    lengths = [seg[1][1] - seg[0][1] for seg in segments]
    np.testing.assert_allclose(lengths, [2 * h for h in many.column("wsr_ci95", "random_power")], rtol=1e-12)
    assert many.plot(tmp_path / "seeds.png").stat().st_size > 0


def test_rerun_keeps_the_seeds_and_a_new_seed_moves_them(three_seeds, tmp_path):
    many, singles = three_seeds
    path, _ = many.save(tmp_path / "r.json")
    again = rerun(path)
    assert again.config["seeds"] == 3
    assert [_strip(r) for r in again.seed_rows] == [_strip(r) for r in many.seed_rows]
    one = rerun(path, seed=6, seeds=1)  # the harness-seeded random_power follows the new seed
    assert [_strip(r) for r in one.rows] == [_strip(r) for r in singles[6].rows]
    spec = EvalSpec.from_dict(json.loads(json.dumps(many.config["spec"])))
    assert spec.seeds == 3 and spec.seed_values == (5, 6, 7)
    assert spec.for_seed(7).solvers == EvalSpec.from_dict(singles[7].config["spec"]).solvers


def test_a_solver_failing_at_one_seed_fails_its_row():
    class Flaky:
        """Works for the first seed's point (a warm-up call and one slot), then raises."""

        def __init__(self):
            self.calls = 0

        def act_batch(self, obs):
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("flaky broke")
            return np.asarray(obs["pmax"]) * 0.5

    with pytest.warns(RuntimeWarning, match="flaky broke"):
        res = evaluate({"flaky": Flaky()}, IC, {"num_links": 3}, slots=8, seed=0, seeds=2)
    row = res.row("flaky")
    assert math.isnan(row["mean_wsr"]) and row["slots"] == 0
    assert row["note"].startswith("failed at seed(s) 1: RuntimeError: flaky broke")
    good, bad = res.per_seed("flaky")
    assert good["seed"] == 0 and good["slots"] == 8 and math.isnan(bad["mean_wsr"])
    assert res.row("wmmse")["units"] == 2 and ("flaky", None) not in res.per_slot_sum_rate


@pytest.mark.parametrize("bad", [0, -2, 1.5, "3", True])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ConfigError, match="seeds"):
        evaluate(["max_power"], IC, {"num_links": 3}, slots=4, seeds=bad)


# --- the CLI -------------------------------------------------------------------------------------------
def test_cli_seeds(capsys, tmp_path):
    out = tmp_path / "cli.json"
    rc = main(["eval", "--env", IC, "--solvers", "max_power", "--env-kwargs", "num_links=3", "--slots", "10",
               "--seed", "2", "--seeds", "2", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "seeds=2..3" in text.splitlines()[0]
    res = EvaluationResult.load(out)
    assert res.config["seeds"] == 2 and [r["seed"] for r in res.seed_rows] == [2, 2, 3, 3]
    single = evaluate(["max_power"], IC, {"num_links": 3}, slots=10, seed=3)
    assert res.per_seed("max_power")[1]["mean_wsr"] == single.row("max_power")["mean_wsr"]
    # --rerun may change the number of seeds
    rc = main(["eval", "--rerun", str(out), "--seeds", "1", "--no-progress"])
    assert rc == 0 and "  seed=2  " in capsys.readouterr().out


def test_cli_seeds_must_be_positive(capsys):
    rc = main(["eval", "--env", IC, "--solvers", "max_power", "--seeds", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--seeds must be >= 1, got 0" in err and len(err.strip().splitlines()) == 1
