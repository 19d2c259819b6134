"""The Problem contract (l2o_env/problems): the power family, lookup, and the package's import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import l2o_env  # noqa: F401  (registers the env IDs)
from l2o_env.data import ObservationSampler
from l2o_env.problems import POWER, PROBLEMS, Problem, get_problem, problem_of_obs
from l2o_env.problems.power import PF_MIN_RATE, POWER_KEYS, check_action, check_power_obs, clip_power
from l2o_env.rates import link_rates, weighted_sum_rate

ROOT = Path(__file__).resolve().parents[1]


def batch(b=3, k=4, seed=0, pmax=2.0):
    rng = np.random.default_rng(seed)
    return {
        "gain": rng.exponential(size=(b, k, k)),
        "weight": rng.random((b, k)),
        "noise": np.full((b, k), 0.5),
        "pmax": np.full((b, k), pmax),
    }


# --- the package and its import rule ---------------------------------------------------------------
def test_registry_and_lookup():
    assert dict(PROBLEMS) == {"power": POWER, "beamforming": get_problem("beamforming")} and isinstance(POWER, Problem)
    assert get_problem("power") is POWER
    assert (POWER.name, POWER.obs_keys, POWER.reference_solver) == ("power", POWER_KEYS, "wmmse")
    assert POWER_KEYS == ("gain", "weight", "noise", "pmax")
    with pytest.raises(ValueError, match=r"unknown problem 'powr'.*'power'.*Did you mean 'power'\?"):
        get_problem("powr")
    with pytest.raises(ValueError, match="unknown problem 3"):
        get_problem(3)
    with pytest.raises(TypeError):
        PROBLEMS["x"] = POWER  # read-only


def test_problem_of_obs_picks_by_required_keys():
    obs = {**batch(), "tx_pos": np.zeros((3, 4, 2))}
    assert problem_of_obs(obs, ["power"]) is POWER
    assert problem_of_obs(obs) is POWER  # default: every family
    with pytest.raises(ValueError, match=r"keys \['gain', 'noise', 'weight'\].*'power' needs .*missing \['pmax'\]"):
        problem_of_obs({k: obs[k] for k in ("gain", "weight", "noise")}, ["power"])
    with pytest.raises(ValueError, match="no candidates given"):
        problem_of_obs(obs, [])
    with pytest.raises(ValueError, match="unknown problem"):
        problem_of_obs(obs, ["beam"])
    with pytest.raises(TypeError, match="dict of arrays"):
        problem_of_obs([1, 2], ["power"])


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(every module imported anywhere in ``path``, those imported at module level)."""
    tree = ast.parse(path.read_text())
    everywhere, top = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        everywhere.update(names)
        if node in tree.body:
            top.update(names)
    # `if TYPE_CHECKING:` blocks at module level are not executed
    return everywhere, top


def test_problems_import_only_rates_validation_numpy_gymnasium():
    # DESIGN.md: solvers import l2o_env.problems, so it must never import an env, a channel model or a
    # scenario (and torch only inside the functions that need it)
    files = sorted((ROOT / "l2o_env" / "problems").rglob("*.py"))
    assert {p.name for p in files} >= {"__init__.py", "base.py", "power.py"}
    for path in files:
        everywhere, top = _imports(path)
        project = {m for m in everywhere if m.split(".")[0] == "l2o_env"}
        assert project <= {"l2o_env.rates", "l2o_env.validation"} | {
            m for m in project if m.startswith("l2o_env.problems")}, (path.name, project)
        third_party = {m.split(".")[0] for m in everywhere} - {"l2o_env", "__future__"}
        assert third_party <= {"numpy", "gymnasium", "torch", "abc", "collections", "math", "types", "typing"}, (
            path.name, third_party)
        assert "torch" not in {m.split(".")[0] for m in top}, f"{path.name} imports torch at module level"


# --- check_obs / check_action (moved from solvers.base and envs.core: same messages) -------------
def test_check_obs_returns_batched_float64_and_broadcasts_scalars():
    one = {"gain": np.eye(3, dtype=np.float32), "weight": 1, "noise": 0.1, "pmax": [1.0, 2.0, 3.0], "tx_pos": 0}
    out = POWER.check_obs(one, batched=False)
    assert set(out) == set(POWER_KEYS)  # extras are not included
    assert out["gain"].shape == (1, 3, 3) and out["weight"].shape == (1, 3)
    assert all(v.dtype == np.float64 for v in out.values())
    b = batch()
    out = POWER.check_obs(b, batched=True)
    np.testing.assert_array_equal(out["gain"], b["gain"])
    assert POWER.check_obs is not None and check_power_obs(b, batched=True).keys() == out.keys()


@pytest.mark.parametrize(
    "edit, batched, exc, match",
    [
        (lambda o: o.pop("pmax"), True, ValueError, r"who: obs is missing key\(s\) \['pmax'\]; a power-control observation needs"),
        (lambda o: o.update(gain=o["gain"] + 0j), True, TypeError, r"who: obs\['gain'\] must be real; got a complex array"),
        (lambda o: o.update(noise=np.array(["a"] * 12).reshape(3, 4)), True, TypeError, r"who: obs\['noise'\] must be numeric"),
        (lambda o: o.update(gain=o["gain"][0]), True, ValueError, r"who: obs\['gain'\] must have shape \(B, K, K\), got \(4, 4\)"),
        (lambda o: None, False, ValueError, r"who: obs\['gain'\] must have shape \(K, K\), got \(3, 4, 4\)"),
        (lambda o: o.update(weight=o["weight"][:, :2]), True, ValueError, r"obs\['weight'\] must have shape \(3, 4\) to match gain"),
        (lambda o: o["gain"].__setitem__((1, 2, 3), np.nan), True, ValueError,
         r"who: obs\['gain'\] contains 1 NaN or inf entries \(first at index \(1, 2, 3\)\); every entry must be finite"),
        (lambda o: o["gain"].__setitem__((0, 0, 0), -1.0), True, ValueError, r"obs\['gain'\] must be >= 0 \(power gains"),
        (lambda o: o["noise"].__setitem__((0, 0), 0.0), True, ValueError, r"obs\['noise'\] must be > 0 \(noise power"),
        (lambda o: o["pmax"].__setitem__((0, 0), -1.0), True, ValueError, r"obs\['pmax'\] must be >= 0, got min -1.0"),
        (lambda o: o["weight"].__setitem__((0, 0), -1.0), True, ValueError, r"obs\['weight'\] must be >= 0"),
    ],
)
def test_check_obs_messages_name_the_key(edit, batched, exc, match):
    obs = batch()
    edit(obs)
    with pytest.raises(exc, match=match):
        POWER.check_obs(obs, batched=batched, who="who")
    with pytest.raises(TypeError, match=r"solver: obs must be a dict of arrays with keys"):
        POWER.check_obs([1], batched=True)


def test_check_action_is_the_env_step_check():
    out = POWER.check_action([1, 2], (2,), "env.step")
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]
    a = np.ones(2, np.float32)
    assert POWER.check_action(a, (2,), "w") is not a  # a copy
    with pytest.raises(ValueError, match=r"env.step: action must have shape \(3,\) \(one power per link\), got \(2,\)"):
        POWER.check_action([1, 2], (3,), "env.step")
    with pytest.raises(ValueError, match="got dtype bool"):
        check_action(np.ones(2, bool), (2,), "w")
    with pytest.raises(ValueError, match=r"action contains NaN or inf at index \[\(0, 1\)\]"):
        check_action(np.array([[0.0, np.inf]]), (1, 2), "w")


# --- project ---------------------------------------------------------------------------------
def test_project_clips_counts_and_never_returns_the_callers_array():
    obs = batch(b=2, k=4, pmax=2.0)
    action = np.array([[-1.0, 0.5, 3.0, 2.0], [0.0, 2.0, 1.0, -0.0]])
    feasible, changed = POWER.project(obs, action)
    np.testing.assert_array_equal(feasible, [[0.0, 0.5, 2.0, 2.0], [0.0, 2.0, 1.0, 0.0]])
    assert changed.tolist() == [2, 0] and changed.dtype == np.int64 and changed.shape == (2,)
    assert action[0, 0] == -1.0  # the input is untouched
    ok = np.full((2, 4), 1.0)
    out, changed = POWER.project(obs, ok)
    assert out is not ok and changed.tolist() == [0, 0]
    np.testing.assert_array_equal(out, ok)
    # int and float32 actions are accepted; the result is float64
    assert POWER.project(obs, np.ones((2, 4), np.int64))[0].dtype == np.float64
    # per-link budgets
    obs["pmax"] = np.array([[1.0, 2.0, 3.0, 4.0]] * 2)
    out, changed = POWER.project(obs, np.full((2, 4), 2.5))
    np.testing.assert_array_equal(out[0], [1.0, 2.0, 2.5, 2.5])
    assert changed.tolist() == [2, 2]


def test_project_nan_and_inf_become_zero_and_are_counted():
    obs = batch(b=2, k=3, pmax=1.0)
    action = np.array([[np.nan, 0.5, np.inf], [-np.inf, 0.2, 1.5]])
    out, changed = POWER.project(obs, action)
    np.testing.assert_array_equal(out, [[0.0, 0.5, 0.0], [0.0, 0.2, 1.0]])
    assert changed.tolist() == [2, 2]
    # counted whatever the tolerance (1.5 is within tol = 1 of pmax = 1: clipped, not counted)
    out, changed = POWER.project(obs, action, tol=1.0)
    assert changed.tolist() == [2, 1] and out[1, 2] == 1.0


def test_project_tolerance_clips_without_counting():
    obs = batch(b=1, k=4, pmax=2.0)
    tiny = 1e-6 * 2.0
    action = np.array([[2.0 + 0.5 * tiny, -0.5 * tiny, 2.0 + 2 * tiny, -2 * tiny]])
    out, changed = POWER.project(obs, action, tol=1e-6)
    np.testing.assert_array_equal(out, [[2.0, 0.0, 2.0, 0.0]])
    assert changed.tolist() == [2]  # the last two are beyond the tolerance
    assert POWER.project(obs, action)[1].tolist() == [4]  # tol = 0: every change counts
    # what the harness meets: a float32 budget below its float64 value, and a solver at the float64 value
    obs32 = {k: v.astype(np.float32) for k, v in batch(b=1, k=2, pmax=0.7).items()}
    assert float(np.float32(0.7)) < 0.7
    out, changed = POWER.project(obs32, np.array([[0.7, 0.1]]), tol=1e-6)
    assert changed.tolist() == [0] and out[0, 0] == np.float32(0.7)
    assert POWER.project(obs32, np.array([[0.7, 0.1]]))[1].tolist() == [1]
    with pytest.raises(ValueError, match="tol must be a finite number >= 0"):
        POWER.project(obs, action, tol=-1.0)


def test_project_refuses_wrong_shapes_and_dtypes():
    obs = batch(b=2, k=3)
    with pytest.raises(ValueError, match=r"PowerControl.project: action must have shape \(2, 3\)"):
        POWER.project(obs, np.ones(3))
    with pytest.raises(ValueError, match="got dtype complex128"):
        POWER.project(obs, np.ones((2, 3), complex))
    with pytest.raises(ValueError, match="got dtype"):
        POWER.project(obs, [["a"] * 3] * 2)


def test_clip_power_fast_path_and_counts():
    p = np.array([[0.5, 1.0], [2.0, -1.0]])
    out, n = clip_power(p, np.ones(2), 1.0)
    np.testing.assert_array_equal(out, [[0.5, 1.0], [1.0, 0.0]])
    assert n.tolist() == [0, 2]
    ok = np.array([[0.5, 1.0]])
    out, n = clip_power(ok, np.ones(2), 1.0)
    assert out is ok and n.tolist() == [0]  # no copy when feasible
    assert clip_power(np.array([0.5]), np.ones(1), 1.0)[1] == 0


# --- rates, zero action, shapes ---------------------------------------------------------------
def test_rates_numpy_torch_and_weighted_sum_rate_agree():
    obs = batch(b=5, k=6, seed=3)
    power, _ = POWER.project(obs, np.random.default_rng(1).random((5, 6)) * 2.0)
    r = POWER.rates(obs, power)
    assert r.shape == (5, 6)
    np.testing.assert_array_equal(r, link_rates(obs["gain"], power, obs["noise"]))
    p_t = torch.tensor(power, requires_grad=True)
    r_t = POWER.rates_torch(obs, p_t)
    assert r_t.shape == (5, 6) and r_t.dtype == torch.float64
    np.testing.assert_allclose(r_t.detach().numpy(), r, rtol=1e-12, atol=1e-12)
    r_t.sum().backward()  # differentiable in the action
    assert p_t.grad is not None and torch.isfinite(p_t.grad).all()
    # tensors in the observation, float32 actions
    obs_t = {k: torch.as_tensor(v) for k, v in obs.items()}
    r32 = POWER.rates_torch(obs_t, torch.tensor(power, dtype=torch.float32))
    assert r32.dtype == torch.float32
    np.testing.assert_allclose(r32.numpy(), r, rtol=1e-4, atol=1e-6)
    wsr = POWER.weighted_sum_rate(obs, power)
    assert wsr.shape == (5,)
    np.testing.assert_allclose(wsr, weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"]), rtol=1e-12)


def test_zero_action_shapes_and_batch_size():
    obs = batch(b=3, k=7)
    z = POWER.zero_action(obs)
    assert z.shape == (3, 7) and z.dtype == np.float64 and not z.any()
    assert POWER.project(obs, z)[1].tolist() == [0, 0, 0]
    assert np.all(POWER.rates(obs, z) == 0.0)
    assert POWER.action_shape(obs) == (3, 7) and POWER.batch_size(obs) == 3
    assert all(isinstance(n, int) for n in POWER.action_shape(obs))


def test_rates_equal_the_env_reward():
    envs = gym.make_vec("PowerControl-IMAC-v0", num_envs=4, weights="random")
    obs, _ = envs.reset(seed=0)
    action = (np.random.default_rng(0).random((4, 12)) * 1.3).astype(np.float32)
    _, reward, *_, info = envs.step(action)
    feasible, changed = POWER.project(obs, action)
    np.testing.assert_array_equal(changed, info["clipped"])
    np.testing.assert_allclose(POWER.weighted_sum_rate(obs, feasible), reward, rtol=1e-12)
    np.testing.assert_allclose(POWER.rates(obs, feasible), info["rates"], rtol=1e-12)


# --- spaces -------------------------------------------------------------------------------------
def test_spaces_are_the_envs():
    for env_id, kw in (("PowerControl-IMAC-v0", {}), ("PowerControl-IC-v0", {"weights": "proportional_fair", "pmax": 2.0})):
        env = gym.make(env_id, **kw)
        cfg = env.unwrapped.config
        assert POWER.observation_space(cfg) == env.observation_space
        assert POWER.action_space(cfg) == env.action_space
        assert env.unwrapped.problem is POWER
    assert env.observation_space["weight"].high.max() == pytest.approx(1.0 / PF_MIN_RATE)
    sampler = ObservationSampler("PowerControl-D2D-v0", seed=0, num_links=5)
    space = POWER.observation_space(sampler.config)
    assert set(space.spaces) == set(sampler.observation_keys)
