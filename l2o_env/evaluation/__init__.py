"""Evaluation harness: every solver on the identical channel sequence, one tidy table, CSV/JSON/PNG.

>>> from l2o_env.evaluation import evaluate
>>> res = evaluate(["truncated_wmmse", "max_power"], "PowerControl-IC-v0", {"num_links": 10},
...                slots=200, seed=0)                                  # doctest: +SKIP
>>> print(res.table()); res.save("results/ic.json"); res.plot("results/ic.png")  # doctest: +SKIP

See :mod:`l2o_env.evaluation.harness` for the slot layout (episodes x steps), common random numbers and
the definition of every metric; the layers are ``spec`` (what to run), ``runner`` (one sweep point as a
pure task), ``backends`` (where tasks run: ``"serial"``, or ``"ray"`` from
:mod:`~l2o_env.evaluation.ray_backend`) and ``metrics`` (what the table reports).
"""

from l2o_env.evaluation.backends import BACKENDS, Backend, SerialBackend, get_backend
from l2o_env.evaluation.harness import KNOBS, REFERENCE, evaluate, rerun, run_spec
from l2o_env.evaluation.spec import EvalSpec, SolverSpec, build_spec
from l2o_env.evaluation.parsing import ConfigError, parse_kwargs, parse_solver_kwargs, parse_sweep, parse_value
from l2o_env.evaluation.plots import plot_result
from l2o_env.evaluation.ray_backend import RayBackend
from l2o_env.evaluation.results import COLUMNS, EvaluationResult

__all__ = ["evaluate", "rerun", "run_spec", "build_spec", "EvalSpec", "SolverSpec", "Backend", "SerialBackend",
           "RayBackend", "BACKENDS", "get_backend", "EvaluationResult", "COLUMNS", "KNOBS", "REFERENCE", "ConfigError",
           "plot_result", "parse_value", "parse_kwargs", "parse_solver_kwargs", "parse_sweep"]
