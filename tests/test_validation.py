"""The one rule for integer and real arguments (l2o_env/validation.py), and that envs and solvers share it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import l2o_env  # noqa: F401  (registers the env IDs)
import solvers
from l2o_env.validation import integer, real


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(3), 3), (3.0, 3), (np.float32(4.0), 4)])
def test_integer_accepts_integral_numbers(value, expected):
    out = integer("Owner", "n", value)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), "3", 3.5, float("nan"), float("inf"), None, [3], 0, -2])
def test_integer_refuses_everything_else(value):
    with pytest.raises(ValueError, match=r"Owner: n must be an integer >= 1, got"):
        integer("Owner", "n", value)


def test_integer_minimum():
    assert integer("O", "refine", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="refine must be an integer >= 2, got 1"):
        integer("O", "refine", 1, minimum=2)


@pytest.mark.parametrize("value", [1, 1.5, np.float32(2.5), np.int32(7), -3.0])
def test_real_accepts_finite_numbers(value):
    out = real("Owner", "x", value)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value, match", [("1", "a real number"), (True, "a real number"), (None, "a real number"),
                                          (np.array([1.0]), "a real number"), (float("nan"), "a finite number"),
                                          (float("-inf"), "a finite number")])
def test_real_refuses_non_numbers_and_non_finite(value, match):
    with pytest.raises(ValueError, match=f"Owner: x must be {match}"):
        real("Owner", "x", value)


def test_real_bounds():
    assert real("O", "d", 0.0, at_least=0.0) == 0.0
    with pytest.raises(ValueError, match=r"d must be a finite number > 0, got 0.0"):
        real("O", "d", 0.0, above=0.0)
    with pytest.raises(ValueError, match=r"d must be a finite number >= 0, got -1e-09"):
        real("O", "d", -1e-9, at_least=0.0)


def test_envs_and_solvers_apply_the_same_rule():
    # a string is refused and an integral float accepted by an env knob and a solver option alike
    with pytest.raises(ValueError, match="num_links must be an integer"):
        gym.make("PowerControl-IC-v0", num_links="5")
    with pytest.raises(ValueError, match="max_iter must be an integer"):
        solvers.make("wmmse", max_iter="50")
    assert gym.make("PowerControl-IC-v0", num_links=5.0).unwrapped.num_links == 5
    assert solvers.make("wmmse", max_iter=50.0).max_iter == 50
    with pytest.raises(ValueError, match="speed must be a real number"):
        gym.make("PowerControl-IC-v0", speed="1")


def _project_imports(folder: str, skip: tuple[str, ...] = ()) -> set[str]:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = set()
    for path in (root / folder).rglob("*.py"):
        if path.name in skip:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] == "l2o_env"}


def test_import_direction():
    # DESIGN.md: solvers never import an env, a channel model or the sampler (the problem families are
    # theirs to import: l2o_env.problems imports no env either, see tests/test_problems.py); channel models import no
    # other part of the project than the shared argument checks
    allowed = {"l2o_env.rates", "l2o_env.validation", "l2o_env._threads", "l2o_env.problems", "l2o_env.atomic"}
    assert {m for m in _project_imports("solvers", skip=("rl.py",)) if not m.startswith("l2o_env.problems.")} <= allowed
    # the RL solvers are the exception DESIGN.md names: an RL policy is trained by stepping an env, so
    # solvers/rl.py uses the RL wrappers (its observation and action maps), the SB3 adapter and, for the
    # evaluation batch of fit, the sampler; nothing else
    rl = {m for m in _project_imports("solvers") if not m.startswith("l2o_env.problems.")}
    assert rl <= allowed | {"l2o_env.wrappers", "l2o_env.sb3", "l2o_env.data"}
    assert {m for m in _project_imports("l2o_env/channels") if not m.startswith("l2o_env.channels")} <= {
        "l2o_env.validation"}


def test_choice_accepts_allowed_values_and_suggests_near_misses():
    from l2o_env.validation import choice, suggest

    assert choice("Env", "weights", "random", ("uniform", "random")) == "random"
    assert choice("Env", "speed", None, (None, 1.0)) is None
    with pytest.raises(ValueError, match=r"Env: weights must be one of 'uniform', 'random', got 'unifrm'\. Did you mean 'uniform'\?"):
        choice("Env", "weights", "unifrm", ("uniform", "random"))
    with pytest.raises(ValueError, match=r"got 3$"):
        choice("Env", "weights", 3, ("uniform", "random"))
    with pytest.raises(ValueError, match="got True"):  # True == 1 must not pass for 1
        choice("Env", "k", True, (1, 2))
    assert suggest("wmmsee", ["wmmse", "mlp"]) == " Did you mean 'wmmse'?" and suggest("zzz", ["wmmse"]) == ""
