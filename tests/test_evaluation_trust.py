"""What `l2o eval` prints must be right or say why not: references, intervals, notices, exit codes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from l2o_env.channels.base import jakes_correlation
from l2o_env.cli import main
from l2o_env.evaluation import ConfigError, EvaluationResult, evaluate, rerun
from l2o_env.evaluation.harness import explicit_kwargs
from l2o_env.evaluation.metrics import Z95, jain_index, mean_ci, ratio_ci, served_fraction
from test_evaluation import Fraction

IC = "PowerControl-IC-v0"


class Broken(Fraction):
    def act_batch(self, obs):
        raise RuntimeError("this solver is broken")


# --- the reference is a choice -----------------------------------------------------------------------
def test_reference_option_changes_the_denominator_and_is_recorded(tmp_path):
    res = evaluate(["max_power", "wmmse"], IC, {"num_links": 6}, slots=64, seed=0, reference="wmmse_best_of",
                   solver_kwargs={"wmmse_best_of": {"restarts": 2}})
    assert res.solvers == ["max_power", "wmmse", "wmmse_best_of"]
    ref = res.row("wmmse_best_of")
    assert ref["ratio_to_reference"] == 1.0 and ref["note"] == "reference (added automatically)"
    assert res.row("wmmse")["note"] == ""  # an ordinary row now
    mp = res.row("max_power")
    assert math.isclose(mp["ratio_to_reference"], mp["mean_wsr"] / ref["mean_wsr"], rel_tol=1e-12)
    assert res.config["reference"] == "wmmse_best_of" and res.config["reference_name"] == "wmmse_best_of"
    assert "ratio to wmmse_best_of" in res.table()
    path, _ = res.save(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["format"] == "l2o_env.evaluation/2" and data["config"]["reference"] == "wmmse_best_of"
    assert "ratio_to_reference" in data["columns"] and "ratio_to_wmmse" not in data["columns"]
    again = rerun(path)
    assert again.config["reference"] == "wmmse_best_of"
    assert again.row("max_power")["ratio_to_reference"] == mp["ratio_to_reference"]


def test_a_listed_solver_can_be_the_reference_and_a_labelled_one_added():
    res = evaluate({"t2": ("truncated_wmmse", {"iterations": 2}), "mp": "max_power"}, IC, {"num_links": 5},
                   slots=32, seed=0, reference="t2")
    assert res.solvers == ["t2", "mp"] and res.row("t2")["note"] == "reference"
    conv = evaluate(["max_power"], IC, {"num_links": 5}, slots=32, seed=0, reference="conv=wmmse",
                    solver_kwargs={"conv": {"max_iter": 500, "tol": 1e-6}})
    assert conv.solvers == ["max_power", "conv"]
    assert conv.config["solvers"][-1]["kwargs"] == {"max_iter": 500, "tol": 1e-6}
    assert rerun(conv).row("max_power")["ratio_to_reference"] == conv.row("max_power")["ratio_to_reference"]
    with pytest.raises(ConfigError, match="Did you mean 'wmmse'"):
        evaluate(["max_power"], IC, {"num_links": 3}, slots=4, reference="wmmsee")


def test_cli_reference_flag(capsys):
    assert main(["eval", "--env", IC, "--solvers", "max_power", "--reference", "wmmse_best_of", "--solver-kwargs",
                 "wmmse_best_of.restarts=1", "--env-kwargs", "num_links=4", "--slots", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ratio to wmmse_best_of" in out and "wmmse_best_of was not among --solvers" in out


def test_old_results_files_still_load(tmp_path):
    res = evaluate(["max_power"], IC, {"num_links": 3}, slots=8, seed=0)
    data = res.to_dict()
    data["format"] = "l2o_env.evaluation/1"
    for row in data["rows"]:
        row["ratio_to_wmmse"] = row.pop("ratio_to_reference")
        row["p5_user_rate"] = 0.1
        for key in ("wsr_ci95", "ratio_ci95", "served_fraction", "jain_index", "units", "fading_correlation"):
            row.pop(key)
    del data["config"]["reference"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = EvaluationResult.load(path)
    assert old.row("max_power")["ratio_to_reference"] == res.row("max_power")["ratio_to_reference"]
    assert math.isnan(old.row("max_power")["wsr_ci95"]) and "p5_user_rate" not in old.row("max_power")
    assert "ratio to wmmse" in old.table()


# --- spread ------------------------------------------------------------------------------------------
def test_confidence_interval_covers_a_known_mean():
    rng = np.random.default_rng(0)
    # exponential(1): mean 1, sd 1; over 400 repetitions the 95 % interval covers 1 about 95 % of the time
    covered = 0
    for _ in range(400):
        m, h = mean_ci(rng.exponential(1.0, 200))
        assert math.isclose(h, Z95 * 1.0 / math.sqrt(200), rel_tol=0.3)
        covered += abs(m - 1.0) <= h
    assert 0.91 <= covered / 400 <= 0.98
    assert math.isnan(mean_ci(np.ones(1))[1])


def test_ratio_interval_is_the_delta_method_on_paired_units():
    rng = np.random.default_rng(1)
    y = rng.uniform(1, 3, 5000)
    x = 0.8 * y + rng.normal(0, 0.05, 5000)  # paired: x tracks y closely
    r, h = ratio_ci(x, y)
    assert math.isclose(r, x.mean() / y.mean())
    # paired units make the ratio far more precise than the two means' own intervals suggest
    assert h < 0.2 * mean_ci(x)[1] / y.mean()
    d = (x - r * y) / y.mean()
    assert math.isclose(h, Z95 * d.std(ddof=1) / math.sqrt(5000))
    covered = 0
    for _ in range(300):  # E[x] / E[y] = 0.8 exactly: the interval covers it about 95 % of the time
        yy = rng.uniform(1, 3, 300)
        rr, hh = ratio_ci(0.8 * yy + rng.normal(0, 0.3, 300), yy)
        covered += abs(rr - 0.8) <= hh
    assert 0.90 <= covered / 300 <= 0.99
    assert all(math.isnan(v) for v in ratio_ci(np.ones(3), np.zeros(3)))


def test_table_intervals_shrink_with_more_slots_and_cover_the_long_run_mean():
    small = evaluate(["max_power"], IC, {"num_links": 5}, slots=200, seed=3)
    big = evaluate(["max_power"], IC, {"num_links": 5}, slots=8000, seed=4)
    s, b = small.row("max_power"), big.row("max_power")
    assert b["wsr_ci95"] < s["wsr_ci95"] / 4  # 40x the slots: about 1/sqrt(40) the width
    assert abs(s["mean_wsr"] - b["mean_wsr"]) <= s["wsr_ci95"] + b["wsr_ci95"]
    assert "+/-" in small.table()


def test_served_fraction_and_jain_index():
    rates = np.array([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0], [1e-228, 2.0, 0.005, 2.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(served_fraction(rates), [1.0, 0.25, 0.5, 0.0])
    np.testing.assert_allclose(jain_index(rates), [1.0, 0.25, 4.005 ** 2 / (4 * 8.000025), 0.0], rtol=1e-6)
    res = evaluate(["max_power", "wmmse"], IC, {"num_links": 10}, slots=200, seed=0)
    # max power serves most links of the IC (a few are drowned in interference); WMMSE switches many off
    assert 0.8 < res.row("max_power")["served_fraction"] < 1.0
    assert 0 < res.row("wmmse")["served_fraction"] < 0.6
    assert 0.1 <= res.row("wmmse")["jain_index"] <= 1.0


def test_plot_metrics_draw_error_bars(tmp_path):
    res = evaluate(["max_power"], IC, {"num_links": 4}, slots=40, seed=0, sweep={"speed": [0.0, 3.0, 30.0]})
    flat = evaluate(["max_power"], IC, {"num_links": 4}, slots=40, seed=0)
    for r, metric in ((res, "wsr"), (res, "ratio"), (flat, "wsr"), (flat, "ratio"), (flat, None)):
        path = r.plot(tmp_path / f"{metric}-{id(r)}.png", metric=metric)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="metric"):
        res.plot(tmp_path / "x.png", metric="p5")


# --- mobility: rho beside the speed --------------------------------------------------------------------
def test_speed_sweep_reports_the_fading_correlation(capsys, tmp_path):
    res = evaluate(["max_power"], IC, {"num_links": 3}, slots=20, seed=0, sweep={"speed": [None, 0.0, 3.0, 30.0]})
    rho = {r["sweep_value"]: r["fading_correlation"] for r in res.rows if r["solver"] == "max_power"}
    assert rho[None] is None and rho[0.0] == 1.0
    for v in (3.0, 30.0):
        assert math.isclose(rho[v], jakes_correlation(v, 2.4e9, 0.02), rel_tol=1e-12)
    assert round(rho[3.0], 2) == -0.27 and round(rho[30.0], 2) == -0.06
    table = res.table()
    assert "rho" in table.splitlines()[1] and "-0.27" in table and "-0.06" in table
    assert main(["eval", "--env", IC, "--solvers", "max_power", "--env-kwargs", "num_links=3", "--slots", "10",
                 "--sweep", "speed=0,3", "--plot", str(tmp_path / "s.png"), "--no-progress"]) == 0
    assert "-0.27" in capsys.readouterr().out


# --- exit codes ------------------------------------------------------------------------------------------
def test_cli_exits_non_zero_when_a_requested_solver_fails(tmp_path, capsys):
    out = tmp_path / "r.json"
    # the fixed-size IMAC MLP cannot act on an IC observation: its row fails, the reference still runs
    code = main(["eval", "--env", IC, "--solvers", "mlp,max_power", "--solver-kwargs", "mlp.pretrained=default",
                 "--env-kwargs", "num_links=4", "--slots", "10", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    assert "failed" in captured.out and "mlp" in captured.err and "failed" in captured.err
    data = json.loads(out.read_text())  # the files are still written
    assert {r["solver"] for r in data["rows"]} == {"mlp", "max_power", "wmmse"}


def test_python_api_reports_a_failed_solver_in_its_row():
    with pytest.warns(RuntimeWarning, match="broken"):
        res = evaluate({"b": Broken(), "ok": Fraction(0.5)}, IC, {"num_links": 3}, slots=8, seed=0)
    assert res.row("b")["note"].startswith("failed: RuntimeError: this solver is broken")


# --- learned solvers: which checkpoint, trained on what ---------------------------------------------------
def test_pretrained_true_picks_the_checkpoint_of_the_evaluated_env():
    res = evaluate(["wcgcn"], IC, {"num_links": 10}, slots=20, seed=0, solver_kwargs={"wcgcn": {"pretrained": True}})
    row = res.row("wcgcn")
    assert "pretrained=True -> 'ic10'" in row["note"]
    assert res.config["solvers"][0]["kwargs"]["pretrained"] == "ic10"  # rerun loads the same file
    # ic10 was trained at 10 dB: evaluated at 0 dB it says so (a note, not a warning: same env ID)
    assert "trained on PowerControl-IC-v0(num_links=10, snr_db=10)" in row["note"]
    assert [n["level"] for n in res.config["notices"]] == ["note"]
    exact = evaluate(["wcgcn"], IC, {"num_links": 10, "snr_db": 10}, slots=20, seed=0,
                     solver_kwargs={"wcgcn": {"pretrained": True}})
    assert exact.row("wcgcn")["note"] == "pretrained=True -> 'ic10'" and exact.config["notices"] == []
    d2d = evaluate(["wcgcn"], "PowerControl-D2D-v0", {"num_links": 20}, slots=4, seed=0,
                   solver_kwargs={"wcgcn": {"pretrained": True}})
    assert "pretrained=True -> 'default'" in d2d.row("wcgcn")["note"]


@pytest.mark.parametrize("env_kwargs, tag", [({}, "fixed"), ({"topology": "fixed"}, "fixed"),
                                              ({"topology": "random"}, "default"),
                                              ({"topology": "random", "num_links": 40}, "default")])
def test_pretrained_true_compares_settings_after_defaults(env_kwargs, tag):
    # the AdHoc env's default topology is "fixed": an evaluation that omits it must get the fixed-layout model
    res = evaluate(["uwmmse"], "PowerControl-AdHoc-v0", env_kwargs, slots=2, seed=0,
                   solver_kwargs={"uwmmse": {"pretrained": True}})
    assert res.row("uwmmse")["note"].startswith(f"pretrained=True -> {tag!r}")


def test_pretrained_true_without_a_checkpoint_for_the_env_names_the_tags():
    with pytest.raises(ConfigError, match=r"no shipped checkpoint.*PowerControl-IMAC-v0.*ic10.*PowerControl-IC-v0"):
        evaluate(["wcgcn"], "PowerControl-IMAC-v0", {}, slots=4, solver_kwargs={"wcgcn": {"pretrained": True}})


def test_a_checkpoint_on_another_env_id_is_a_warning(capsys):
    with pytest.warns(RuntimeWarning, match="trained on PowerControl-D2D-v0"):
        res = evaluate(["wcgcn"], IC, {"num_links": 10}, slots=10, seed=0,
                       solver_kwargs={"wcgcn": {"pretrained": "default"}})
    assert "trained on PowerControl-D2D-v0(num_links=50)" in res.row("wcgcn")["note"]
    assert res.config["notices"][0]["level"] == "warning"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["eval", "--env", IC, "--solvers", "wcgcn", "--solver-kwargs", "wcgcn.pretrained=default",
                     "--env-kwargs", "num_links=10", "--slots", "10", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "l2o eval: warning: solver 'wcgcn' was trained on PowerControl-D2D-v0" in err


def test_an_untrained_learned_solver_is_refused_before_any_slot_runs():
    with pytest.raises(ConfigError, match=r"untrained.*pretrained=true.*checkpoint=PATH.*l2o train wcgcn"):
        evaluate(["wcgcn"], IC, {"num_links": 4}, slots=4)
    res = evaluate(["wcgcn"], IC, {"num_links": 4}, slots=4, solver_kwargs={"wcgcn": {"random_init": True}})
    assert res.row("wcgcn")["slots"] == 4


def test_explicit_kwargs_drop_defaults():
    assert explicit_kwargs(IC, {}) == explicit_kwargs(IC, {"num_links": 10}) == {"num_links": 10}
    assert explicit_kwargs(IC, {"weights": "uniform", "speed": None}) == {"num_links": 10}
    assert explicit_kwargs("PowerControl-AdHoc-v0", {"topology": "fixed"}) == {"num_links": 20}
    assert explicit_kwargs("PowerControl-AdHoc-v0", {"topology": "random"}) == {"num_links": 20, "topology": "random"}
    assert explicit_kwargs("PowerControl-D2D-v0", {"pair_distance": [2, 65]}) == {"num_links": 50}
    # a knob whose env default is "the model's" (None) compares with the model's own default
    miso = {"num_users": 4, "num_antennas": 4}
    assert explicit_kwargs("Beamforming-MISO-v0", {"snr_db": 10}) == explicit_kwargs("Beamforming-MISO-v0", {}) == miso
    assert explicit_kwargs("Beamforming-MISO-v0", {"snr_db": 20}) == {**miso, "snr_db": 20}
    assert explicit_kwargs(IC, {"snr_db": 10}) == {"num_links": 10, "snr_db": 10}  # the IC's default is 0 dB


# --- timings do not depend on what was imported first ---------------------------------------------------
def _python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_importing_the_library_sets_the_passive_wait_policy():
    out = _python("import os, l2o_env, torch; print(os.environ.get('OMP_WAIT_POLICY'))")
    assert out.split()[-1] == "PASSIVE"
    out = _python("import os, solvers; from solvers.wmmse import WMMSE; print(os.environ.get('OMP_WAIT_POLICY'))")
    assert out.split()[-1] == "PASSIVE"


def test_torch_imported_first_is_detected_and_said_once():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import torch\n"
            "from l2o_env.evaluation import evaluate\n"
            "r = evaluate(['max_power'], 'PowerControl-IC-v0', {'num_links': 3}, slots=4)\n"
            "r = evaluate(['max_power'], 'PowerControl-IC-v0', {'num_links': 3}, slots=4)\n"
            "print('policy', r.config['omp_wait_policy'], r.config['omp_threads_spin'])\n")
    out = _python(code)
    assert out.count("OMP_WAIT_POLICY is unset (torch was imported before l2o_env)") == 1
    assert "policy None True" in out
    clean = _python(code.replace("import torch\n", ""))
    assert "OMP_WAIT_POLICY is" not in clean and "policy PASSIVE False" in clean
