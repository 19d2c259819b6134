"""The evaluation's layers: a JSON spec, pure point tasks with their own seeds, backends, the problem check,
and every registered solver's contract (parametrised over the registry, so a new solver inherits it)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import solvers
from l2o_env.cli import main
from l2o_env.data import ObservationSampler
from l2o_env.evaluation import (
    Backend,
    ConfigError,
    EvalSpec,
    SerialBackend,
    build_spec,
    evaluate,
    get_backend,
    rerun,
    run_spec,
)
from l2o_env.evaluation import spec as spec_module
from l2o_env.evaluation.runner import make_tasks, run_point
from l2o_env.problems import get_problem

IC = "PowerControl-IC-v0"


# --- the spec ------------------------------------------------------------------------------------------
def test_spec_is_frozen_json_and_round_trips():
    spec, objects, rhos = build_spec(["max_power", ("truncated_wmmse", {"iterations": 2})], "PowerControl-D2D-v0",
                                     {"num_links": 6, "pair_distance": (10, 50)}, slots=24, seed=3,
                                     sweep={"speed": [None, 3.0]})
    d = json.loads(json.dumps(spec.to_dict()))
    back = EvalSpec.from_dict(d)
    assert back == spec and back.env_kwargs["pair_distance"] == (10, 50)
    assert [s.label for s in spec.solvers] == ["max_power", "truncated_wmmse", "wmmse"]
    assert spec.reference.label == "wmmse" and spec.problem == "power"
    with pytest.raises(Exception):
        spec.slots = 5  # frozen
    assert rhos[0] is None and rhos[1] is not None


def test_results_carry_the_spec_and_rerun_uses_it(tmp_path):
    res = evaluate(["random_power"], IC, {"num_links": 4}, slots=16, seed=5, max_batch=4)
    assert EvalSpec.from_dict(res.config["spec"]).max_batch == 4
    path, _ = res.save(tmp_path / "r.json")
    again = rerun(path)
    assert again.row("random_power")["mean_wsr"] == res.row("random_power")["mean_wsr"]
    assert again.config["chunks"] == res.config["chunks"] == 4


# --- points are pure tasks ------------------------------------------------------------------------------
def test_points_have_their_own_seeds_from_a_seed_sequence():
    spec, _, _ = build_spec(["max_power"], IC, {"num_links": 3}, slots=8, seed=7, sweep={"speed": [0.0, 3.0, 30.0]})
    seeds = spec.point_seeds()
    children = np.random.SeedSequence(7).spawn(3)
    assert seeds == [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
    assert len(set(seeds)) == 3


class Reversed(Backend):
    """Runs the tasks last to first (a stand-in for a backend whose workers finish in any order)."""

    name = "reversed"

    def map(self, tasks, progress=None, on_start=None):
        return list(reversed([run_point(t) for t in reversed(tasks)]))


def test_points_do_not_depend_on_the_order_they_run_in():
    kw = dict(solvers=["random_power", "truncated_wmmse"], env_id="PowerControl-AdHoc-v0",
              env_kwargs={"num_links": 5, "topology": "random"}, slots=20, seed=2, sweep={"density": [0.5, 1.0, 4.0]})
    a = evaluate(**kw)
    b = evaluate(**kw, backend=Reversed())
    assert b.config["backend"] == "reversed"
    for r in a.rows:
        assert b.row(r["solver"], r["sweep_value"])["mean_wsr"] == r["mean_wsr"]
    # the first point alone gives the same numbers as inside the sweep (child 0 of the seed sequence)
    single = evaluate(**{**kw, "sweep": {"density": [0.5]}})
    for s in ("random_power", "truncated_wmmse", "wmmse"):
        assert single.row(s, 0.5)["mean_wsr"] == a.row(s, 0.5)["mean_wsr"]


def test_a_task_pickles_and_runs_anywhere():
    spec, _, _ = build_spec(["max_power", "wmmse"], IC, {"num_links": 4}, slots=8, seed=1)
    (task,) = make_tasks(spec)
    clone = pickle.loads(pickle.dumps(task))
    a, b = run_point(task), run_point(clone)
    assert a.summaries["max_power"]["mean_wsr"] == b.summaries["max_power"]["mean_wsr"]
    assert set(a.summaries) == {"max_power", "wmmse"} and not a.failed


def test_backend_by_name_and_errors():
    assert isinstance(get_backend("serial"), SerialBackend)
    with pytest.raises(ConfigError, match="backend must be one of 'serial', 'ray', got 'serail'. Did you mean 'serial'"):
        evaluate(["max_power"], IC, {"num_links": 3}, slots=4, backend="serail")
    spec, objects, rhos = build_spec(["max_power"], IC, {"num_links": 3}, slots=4)
    assert run_spec(spec, objects, rhos=rhos).row("max_power")["slots"] == 4


def test_user_objects_cannot_be_rerun_from_a_spec():
    class Half:
        def act_batch(self, obs):
            return 0.5 * np.asarray(obs["pmax"])

    spec, _, _ = build_spec({"half": Half()}, IC, {"num_links": 3}, slots=4)
    with pytest.raises(ConfigError, match="user objects"):
        run_spec(spec)


# --- the problem family ----------------------------------------------------------------------------------
class OtherFamily:
    problems = frozenset({"beamforming"})

    def act_batch(self, obs):  # pragma: no cover - refused before any slot runs
        raise AssertionError("must not run")


def test_a_solver_of_another_problem_is_refused_before_any_slot(capsys):
    with pytest.raises(ConfigError, match=r"solver 'bf'.*solves \['beamforming'\], not PowerControl-IC-v0's problem 'power'"):
        evaluate({"bf": OtherFamily()}, IC, {"num_links": 3}, slots=4)


@pytest.mark.parametrize("name", solvers.available())
def test_every_registered_solver_is_refused_on_another_problem(name, monkeypatch):
    monkeypatch.setattr(spec_module, "_problem_of", lambda env_id: "other")
    monkeypatch.setattr(spec_module, "_reference_of", lambda problem: "max_power")
    kwargs = {name: {"random_init": True}} if name in ("mlp", "uwmmse", "wcgcn") else None
    with pytest.raises(ConfigError, match=rf"solves \[.*\], not {IC}'s problem 'other'"):
        evaluate([name], IC, {"num_links": 3}, slots=2, solver_kwargs=kwargs)


def test_registry_filters_by_problem():
    power, everything = solvers.available(problem="power"), solvers.available()
    assert set(power) <= set(everything) and "wmmse" in power
    for name in everything:
        problems = solvers.registry.problems_of(name)
        assert (name in power) == ("power" in problems)
    with pytest.raises(ValueError, match="unknown problem 'beamformin'"):
        solvers.available(problem="beamformin")


# --- every registered solver's contract -------------------------------------------------------------------
#: a small env of each problem family, for solvers that need no training
SMALL = {"power": (IC, {"num_links": 3}), "beamforming": ("Beamforming-MISO-v0", {})}
CASES = [(name, fam) for name in solvers.available() for fam in sorted(solvers.registry.problems_of(name))
         if fam in SMALL]


def _ready(name: str, family: str):
    """The solver, trained where it learns (a shipped checkpoint of the family), and observations for it."""
    import inspect

    from solvers.learned import shipped_checkpoints

    seeded = {"seed": 0} if "seed" in inspect.signature(solvers.registry.factory(name)).parameters else {}
    solver = solvers.make(name, **seeded)
    env_id, env_kwargs = SMALL[family]
    if getattr(solver, "is_trained", True) is False:
        from l2o_env.scenarios import get_scenario

        tags = [e for e in shipped_checkpoints(name) if e["env_id"] and get_scenario(e["env_id"]).problem == family]
        if not tags:
            pytest.skip(f"{name} ships no checkpoint for {family!r}")
        solver = solvers.make(name, pretrained=tags[0]["pretrained"])
        env_id, env_kwargs = solver.trained_on
    return solver, ObservationSampler(env_id, seed=0, **env_kwargs)(5)


@pytest.mark.parametrize("name, family", CASES)
def test_solver_contract(name, family):
    solver, obs = _ready(name, family)
    problem = get_problem(family)
    assert problem.name in solver.problems
    action = solver.act_batch(obs)
    assert action.shape == problem.action_shape(obs) and action.dtype == np.float64
    assert np.all(np.isfinite(action))
    projected, changed = problem.project(obs, action)
    np.testing.assert_array_equal(projected, action)  # already feasible
    assert not changed.any()
    one = {k: v[0] for k, v in obs.items()}
    first, again = _ready(name, family)[0], _ready(name, family)[0]  # fresh twins: seeded random solvers agree
    np.testing.assert_allclose(first.act(one), again.act_batch({k: v[:1] for k, v in obs.items()})[0],
                               rtol=1e-6, atol=1e-9)


def test_cli_refuses_a_solver_of_another_problem_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(spec_module, "_problem_of", lambda env_id: "other")
    monkeypatch.setattr(spec_module, "_reference_of", lambda problem: "max_power")
    assert main(["eval", "--env", IC, "--solvers", "wmmse", "--slots", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "solver 'wmmse'" in err and "'other'" in err
