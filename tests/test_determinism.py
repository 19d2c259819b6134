"""The same seed gives a bit-identical evaluation table: across calls in one process and across processes.

Compared exactly (``==`` on floats, no tolerance): every numeric column of every row except the solver's
wall-clock time, and the per-slot sum rates behind the plots. Classical solvers (WMMSE, its warm-started,
truncated and randomly restarted variants, the randomised baselines), learned solvers (a shipped WCGCN, the
MLP, and an UWMMSE with random initial weights, whose init is seeded by ``init_seed``), perfect and aged CSI
(the genie row), with mobility (stateful solvers). On the CPU no torch setting is needed for this (measured:
also identical with 1 and 2 torch threads); see the README, "Determinism", for GPUs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import solvers
from l2o_env.evaluation import COLUMNS, evaluate

#: columns that legitimately differ between runs: the solver's own wall-clock time
TIMING = {"time_per_slot_s"}
NUMERIC = [c for c in COLUMNS if c not in TIMING]


def _same(a, b) -> bool:
    """Exactly equal, NaN equal to NaN (a failed or undefined cell)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_identical_tables(first, second) -> None:
    rows1, rows2 = first.rows, second.rows
    assert [r["solver"] for r in rows1] == [r["solver"] for r in rows2]
    for r1, r2 in zip(rows1, rows2):
        for column in NUMERIC:
            assert _same(r1[column], r2[column]), (r1["solver"], column, r1[column], r2[column])
    assert first.per_slot_sum_rate.keys() == second.per_slot_sum_rate.keys()
    for key, values in first.per_slot_sum_rate.items():
        other = second.per_slot_sum_rate[key]
        assert values.dtype == other.dtype and np.array_equal(values, other), key


def test_identical_tables_differ_from_another_seed():
    """The comparison can fail: another seed gives other numbers."""
    a = evaluate(["wmmse", "max_power"], "PowerControl-IC-v0", slots=50, seed=0)
    b = evaluate(["wmmse", "max_power"], "PowerControl-IC-v0", slots=50, seed=1)
    with pytest.raises(AssertionError):
        assert_identical_tables(a, b)


CLASSICAL = ["wmmse", "truncated_wmmse", "wmmse_best_of", "random_power", "strongest_links", "max_power"]


def test_classical_solvers_twice_in_one_process():
    kw = dict(slots=200, seed=3)
    assert_identical_tables(evaluate(CLASSICAL, "PowerControl-IC-v0", **kw), evaluate(CLASSICAL, "PowerControl-IC-v0", **kw))


def test_stateful_solvers_with_mobility_and_aged_csi_twice():
    """Warm-started WMMSE and the predictive WMMSE keep state across slots; the genie row sees the truth."""
    env_kwargs = {"num_links": 8, "speed": 30.0, "slot_duration": 1e-3, "csi_delay": 1}
    kw = dict(slots=60, seed=4, episode_length=10, solver_kwargs={"warm": {"init": "warm"}})
    names = {"wmmse": "wmmse", "warm": "wmmse", "wmmse_predictive": "wmmse_predictive", "random_power": "random_power"}
    a = evaluate(names, "PowerControl-AdHoc-v0", env_kwargs, **kw)
    b = evaluate(names, "PowerControl-AdHoc-v0", env_kwargs, **kw)
    assert any("perfect CSI" in r["solver"] for r in a.rows)
    assert_identical_tables(a, b)


def test_learned_solvers_twice_in_one_process():
    names = ["wmmse", "wcgcn", "uwmmse"]
    skw = {"wcgcn": {"pretrained": "ic10"}, "uwmmse": {"random_init": True}}
    a = evaluate(names, "PowerControl-IC-v0", slots=200, seed=5, solver_kwargs=skw)
    torch.rand(100)  # another global torch state must not matter
    b = evaluate(names, "PowerControl-IC-v0", slots=200, seed=5, solver_kwargs=skw)
    assert_identical_tables(a, b)
    kw = dict(slots=100, seed=2, solver_kwargs={"mlp": {"pretrained": True}})
    assert_identical_tables(evaluate(["wmmse", "mlp"], "PowerControl-IMAC-v0", **kw),
                            evaluate(["wmmse", "mlp"], "PowerControl-IMAC-v0", **kw))


def test_random_initial_weights_come_from_init_seed_and_leave_torch_alone():
    torch.manual_seed(11)
    expected_next = torch.rand(3)
    torch.manual_seed(11)
    a = solvers.make("uwmmse", random_init=True)
    assert torch.equal(torch.rand(3), expected_next)  # building a solver did not move torch's random stream
    torch.manual_seed(99)
    b = solvers.make("uwmmse", random_init=True)
    c = solvers.make("uwmmse", random_init=True, init_seed=1)
    same = [torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values())]
    other = [torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), c.model.state_dict().values())]
    assert all(same) and not all(other)
    with pytest.raises(ValueError, match="init_seed must be an integer >= 0, got -1"):
        solvers.make("mlp", init_seed=-1)


SOLVERS = ["wmmse", "random_power", "wcgcn", "uwmmse"]
SOLVER_KWARGS = {"wcgcn": {"pretrained": "ic10"}, "uwmmse": {"random_init": True}}
CLI = ["eval", "--env", "PowerControl-IC-v0", "--solvers", ",".join(SOLVERS), "--solver-kwargs",
       "wcgcn.pretrained=ic10,uwmmse.random_init=true", "--slots", "150", "--seed", "5", "--no-progress"]


def test_two_processes_write_identical_tables(tmp_path, capsys):
    """`l2o eval` in a fresh process (another hash seed) and in this one write the same numbers."""
    from l2o_env.cli import main

    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "l2o_env.cli", *CLI, "--out", str(tmp_path / "other.json")]
    other = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        torch.rand(10)  # this process's torch state is not the fresh one's
        assert main([*CLI, "--out", str(tmp_path / "here.json")]) == 0
    finally:
        out, _ = other.communicate(timeout=300)
    assert other.returncode == 0, out
    here, there = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("here", "other"))
    assert [r["solver"] for r in here["rows"]] == SOLVERS
    for r1, r2 in zip(here["rows"], there["rows"]):
        for column in NUMERIC:
            assert r1[column] == r2[column], (r1["solver"], column, r1[column], r2[column])
    assert here["per_slot_sum_rate"] == there["per_slot_sum_rate"]
