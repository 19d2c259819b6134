"""The Ray backend (``evaluate(..., backend="ray")``, ``l2o eval --backend ray``): the same table as the serial
backend bit for bit (timings aside), several seeds and sweep points as Ray tasks, clear refusals (live
objects, solvers registered only in this process, a missing Ray), a task's own error, and the CLI.

A local Ray with 2 CPUs is started once for the module (``ray_cluster``); the tests that need no running
Ray (usage errors, the missing-Ray message) run without it, and the others are skipped when Ray is not
installed."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np
import pytest

from l2o_env.cli import main
from l2o_env.evaluation import ConfigError, EvaluationResult, build_spec, evaluate, get_backend, run_spec
from l2o_env.evaluation.runner import make_tasks

IC = "PowerControl-IC-v0"
ADHOC = "PowerControl-AdHoc-v0"
TIMING = "time_per_slot_s"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the Ray backend needs the ray extra: pip install 'l2o-env[ray]'")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _assert_same_numbers(a: EvaluationResult, b: EvaluationResult) -> None:
    """Every row (per seed and over the seeds) and every per-slot sum rate identical, timings aside."""
    assert len(a.rows) == len(b.rows) and len(a.seed_rows) == len(b.seed_rows)
    for ra, rb in zip(a.rows + a.seed_rows, b.rows + b.seed_rows):
        assert ra.keys() == rb.keys()
        diff = {k: (ra[k], rb[k]) for k in ra if k != TIMING and not _same(ra[k], rb[k])}
        assert not diff, (ra["solver"], ra["sweep_value"], diff)
    assert a.per_slot_sum_rate.keys() == b.per_slot_sum_rate.keys()
    for key, rates in a.per_slot_sum_rate.items():
        np.testing.assert_array_equal(rates, b.per_slot_sum_rate[key])


# --- the same numbers as the serial backend -------------------------------------------------------------
def test_ray_gives_the_serial_table_bit_for_bit(ray_cluster):
    kw = dict(solvers=["truncated_wmmse", "random_power", "max_power"], env_id=ADHOC,
              env_kwargs={"num_links": 5, "topology": "random"}, slots=24, seed=4, seeds=3,
              sweep={"density": [0.5, 2.0]})
    serial = evaluate(**kw)
    distributed = evaluate(**kw, backend="ray")
    assert distributed.config["backend"] == "ray" and serial.config["backend"] == "serial"
    assert len(distributed.seed_rows) == 3 * 2 * 4  # seeds x points x solvers (the reference added)
    _assert_same_numbers(serial, distributed)
    # the numbers vary from seed to seed and from point to point: the comparison is not of constants
    assert len({r["mean_wsr"] for r in distributed.seed_rows if r["solver"] == "random_power"}) == 6


def test_tasks_run_in_ray_workers_and_come_back_in_task_order(ray_cluster):
    from l2o_env.evaluation.ray_backend import RayBackend

    spec, _, _ = build_spec(["max_power"], IC, {}, slots=6, seed=1, seeds=2, sweep={"num_links": [2, 3, 4]})
    tasks = make_tasks(spec)
    steps: list[int] = []
    results = RayBackend().map(tasks, progress=steps.append)
    assert [r.index for r in results] == [t.index for t in tasks] == [0, 1, 2, 0, 1, 2]
    # each result is its own task's: K links per row, and the seeds differ
    assert [r.per_slot_sum_rate["max_power"].shape for r in results] == [(6,)] * 6
    assert results[0].summaries["max_power"]["mean_wsr"] != results[3].summaries["max_power"]["mean_wsr"]
    assert sum(steps) == len(tasks) * spec.chunks * spec.episode_length * len(spec.solvers)


def test_a_tasks_error_is_raised_as_its_own(ray_cluster):
    from l2o_env.evaluation.ray_backend import RayBackend

    spec, _, _ = build_spec(["max_power"], IC, {"num_links": 3}, slots=4, sweep={"speed": [None, 3.0]})
    # a keyword the worker cannot build (the driver's checks are bypassed on purpose)
    broken = dataclasses.replace(spec, solvers=tuple(
        dataclasses.replace(s, kwargs={**s.kwargs, "no_such_keyword": 1}) if s.reference else s for s in spec.solvers))
    with pytest.raises(ConfigError, match="solver 'wmmse'.*no_such_keyword") as info:
        run_spec(broken, {}, backend=RayBackend())
    assert "RayTaskError" not in type(info.value).__name__


# --- refusals -------------------------------------------------------------------------------------------
def test_live_objects_are_refused(ray_cluster):
    class Half:
        def act_batch(self, obs):
            return 0.5 * np.asarray(obs["pmax"])

    with pytest.raises(ConfigError, match=r"backend 'ray'.*\['half'\] are Python objects.*backend='serial'"):
        evaluate({"half": Half(), "mp": "max_power"}, IC, {"num_links": 3}, slots=4, backend="ray")


def test_solvers_registered_in_this_process_are_refused(ray_cluster, monkeypatch):
    from solvers import registry

    monkeypatch.setitem(registry._RUNTIME, "driver_only", registry.factory("max_power"))
    with pytest.raises(ConfigError, match=r"\['driver_only'\] were registered in this process.*entry-point group"):
        evaluate(["driver_only"], IC, {"num_links": 3}, slots=4, backend="ray")


def test_a_missing_ray_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from l2o_env.evaluation.ray_backend import MissingExtraError

    with pytest.raises(ImportError, match=r'pip install "l2o-env\[ray\]"') as info:
        evaluate(["max_power"], IC, {"num_links": 3}, slots=4, backend="ray")
    assert isinstance(info.value, MissingExtraError) and isinstance(info.value, ConfigError)
    with pytest.raises(ImportError, match="l2o-env"):
        get_backend("ray")
    rc = main(["eval", "--env", IC, "--solvers", "max_power", "--slots", "4", "--backend", "ray", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and 'pip install "l2o-env[ray]"' in err


@pytest.mark.parametrize("argv, message", [
    (["--address", "127.0.0.1:6379"], "--address configure the Ray backend; add --backend ray"),
    (["--ray-num-cpus", "2"], "--ray-num-cpus configure the Ray backend; add --backend ray"),
    (["--backend", "ray", "--address", "auto", "--ray-num-cpus", "2"], "drop --ray-num-cpus"),
    (["--backend", "ray", "--ray-num-cpus", "0"], "--ray-num-cpus must be >= 1, got 0"),
])
def test_cli_ray_flags_usage_errors(argv, message, capsys):
    rc = main(["eval", "--env", IC, "--solvers", "max_power", "--slots", "4", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_ray_backend_checks_its_arguments():
    pytest.importorskip("ray")
    from l2o_env.evaluation.ray_backend import RayBackend

    with pytest.raises(ConfigError, match="num_cpus must be an integer >= 1, got 0"):
        RayBackend(num_cpus=0)
    with pytest.raises(ConfigError, match="threads_per_task"):
        RayBackend(threads_per_task=1.5)
    with pytest.raises(ConfigError, match="address must be a Ray address"):
        RayBackend(address="")
    with pytest.raises(ConfigError, match="drop num_cpus"):
        RayBackend(address="auto", num_cpus=2)


# --- the CLI end to end ---------------------------------------------------------------------------------
def test_cli_backend_ray_end_to_end(ray_cluster, tmp_path, capsys):
    args = ["eval", "--env", IC, "--solvers", "max_power,random_power", "--slots", "12", "--seed", "1",
            "--seeds", "2", "--sweep", "num_links=3,4", "--no-progress"]
    assert main([*args, "--backend", "ray", "--out", str(tmp_path / "ray.json")]) == 0
    shown = capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "serial.json")]) == 0
    capsys.readouterr()
    ray_res = EvaluationResult.load(tmp_path / "ray.json")
    serial = EvaluationResult.load(tmp_path / "serial.json")
    assert ray_res.config["backend"] == "ray" and ray_res.config["seeds"] == 2
    _assert_same_numbers(serial, ray_res)
    assert "seeds=1..2" in shown.splitlines()[0] and "wrote" in shown
    assert json.loads((tmp_path / "ray.json").read_text())["seed_rows"][0]["seed"] == 1
