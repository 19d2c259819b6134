"""Property-based fuzzing of every registered solver (issue 16, robustness), with hypothesis.

For every solver of ``solvers.available()`` and every problem family it declares:

- valid observations with extreme values (gains or channels over 40 decades, zeros, one link, weights
  all zero or huge, noise down to 1e-45 W, budgets zero or huge; the numbers an env can put in a float32
  observation): ``act`` and ``act_batch`` return finite actions of the right shape on the feasible set,
  and the solver's own output (``_solve``, before the base class's safety net turns a non-finite entry
  into 0) is finite and feasible too: a solver must never produce NaN and rely on the net;
- float64 values beyond the float32 range (gains up to 1e150, noise down to 1e-300): a finite feasible
  action or a clear ``ValueError`` that names the solver;
- NaN, inf or an out-of-range value in any key of the observation (extras such as positions and the
  history included): a ``ValueError``/``TypeError`` naming the key, never an action.

Learned solvers load a shipped checkpoint of the family (``pretrained=TAG``) and are fuzzed on that
scenario's shapes, or act with random weights (``random_init=True``) where none is shipped; the RL
solvers (no checkpoint ships) are fitted for a few steps, which builds their SB3 model. The examples are
derandomised (the ``ci`` profile of ``tests/conftest.py``); ``HYPOTHESIS_PROFILE=long`` runs more.
"""

from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from l2o_env.scenarios import get_scenario  # noqa: E402
from solvers.registry import problems_of  # noqa: E402

CASES = [(name, fam) for name in solvers.available() for fam in sorted(problems_of(name))]
IDS = [f"{name}-{fam}" for name, fam in CASES]

#: the scenario whose observations a solver that needs no training is fuzzed around
BASE_ENV = {"power": ("PowerControl-D2D-v0", {"num_links": 4}),
            "beamforming": ("Beamforming-IBC-v0", {"num_cells": 2, "users_per_cell": 2, "num_antennas": 4})}
#: RL solvers: tiny fits (builds the SB3 model; nothing is learnt in 16 steps, which is all we need)
RL_KWARGS = {"ppo": {"n_steps": 8, "batch_size": 16, "n_epochs": 1},
             "sac": {"buffer_size": 100, "learning_starts": 1000, "batch_size": 16},
             "td3": {"buffer_size": 100, "learning_starts": 1000, "batch_size": 16}}
RL_ENV = {"power": ("PowerControl-IC-v0", {"num_links": 3}), "beamforming": ("Beamforming-MISO-v0", {})}
#: solvers that run on any size (the others are fuzzed on the shapes they were built for)
FREE_SHAPE = {"wcgcn", "uwmmse"}

#: HYPOTHESIS_PROFILE=long (tests/conftest.py) tries 10x the examples of every property
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1

_READY: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """torch on one thread for the module (tiny batches; spinning threads cost a lot on shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Ready:
    """A solver and the observations it is fuzzed around."""

    def __init__(self, name: str, family: str):
        from solvers.learned import shipped_checkpoints

        self.name, self.family = name, family
        factory = solvers.registry.factory(name)
        params = inspect.signature(factory).parameters
        kwargs = {"seed": 0} if "seed" in params else {}
        if name == "exhaustive":
            kwargs = {"grid": 5, "refine": 2}  # the same search, coarser: K <= 4 links
        env = BASE_ENV[family]
        if name in RL_KWARGS:
            env = RL_ENV[family]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                solver = solvers.make(name, **RL_KWARGS[name]).fit(env[0], steps=16, num_envs=2, seed=0, **env[1])
            self.free_shape = False
        else:
            solver = solvers.make(name, **kwargs)
            self.free_shape = True
            if getattr(solver, "is_trained", True) is False:
                tags = [e for e in shipped_checkpoints(name)
                        if e["env_id"] and get_scenario(e["env_id"]).problem == family]
                if tags:
                    solver = solvers.make(name, pretrained=tags[0]["pretrained"])
                    env = solver.trained_on
                else:
                    solver = solvers.make(name, random_init=True)
                self.free_shape = name in FREE_SHAPE
        if getattr(solver, "problems", None) is not None and family not in solver.problems:
            pytest.skip(f"{name}: the instance solves {set(solver.problems)}, not {family!r}")
        self.solver = solver
        self.env = env
        self.problem = get_problem(family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.base = ObservationSampler(env[0], seed=0, **env[1])(4)
        self.max_links = 4 if name == "exhaustive" else 6


def ready(name: str, family: str) -> Ready:
    key = (name, family)
    if key not in _READY:
        _READY[key] = Ready(name, family)
    return _READY[key]


# --- observation strategies -------------------------------------------------------------------------
def _pow10(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False).map(lambda e: float(10.0 ** e))


#: the extremes of float32, the type of every env observation (the solvers compute in float64)
F32_MAX = float(np.finfo(np.float32).max)
F32_MIN = float(np.float32(1e-45))  # the smallest positive (subnormal) float32
#: per-link values: one for all, or a mix per link
_NOISE = st.one_of(_pow10(-45, 20), st.sampled_from([F32_MIN, 1e-30, 1.0, 1e20, F32_MAX]))
_PMAX = st.one_of(_pow10(-20, 20), st.sampled_from([0.0, F32_MIN, 1e-20, 1.0, 1e20, F32_MAX]))
_WEIGHT = st.one_of(st.sampled_from([0.0, F32_MIN, 1e-10, 1.0, 1e10, 1e20, F32_MAX]), _pow10(-10, 10))


@st.composite
def _per_link(draw, shape, values, keep):
    """``keep`` (the base values), one drawn value for every entry, or one drawn value per entry."""
    how = draw(st.sampled_from(["keep", "one", "each"]))
    if how == "keep":
        return keep
    if how == "one":
        return np.full(shape, draw(values))
    return np.array(draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)


def _random_power_base(rng, b, k):
    g = rng.exponential(size=(b, k, k))
    return {"gain": g, "weight": np.ones((b, k)), "noise": np.ones((b, k)), "pmax": np.ones((b, k))}


def _random_beamforming_base(rng, b, k, t, nr, nt):
    tx = np.sort(rng.integers(0, t, size=k)).astype(np.float64)
    ch = rng.standard_normal((b, k, t, nr, nt, 2)) * np.sqrt(0.5)
    return {"channel": ch, "tx_of_link": np.tile(tx, (b, 1)), "weight": np.ones((b, k)), "noise": np.ones((b, k)),
            "pmax": np.ones((b, t))}


@st.composite
def observations(draw, r: Ready, *, span: float = 20.0, f64: bool = False):
    """A valid batched observation of ``r``'s family: rows of ``r.base`` (with its extra keys) or, for a
    solver that runs on any size, a random network (1 link and up), then extreme values.

    ``span``: gains over ``10^[-span, span]`` (channels over half the decades); ``f64`` pushes noise and
    gains beyond the float32 range."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = draw(st.integers(1, 3))
    if r.free_shape and draw(st.booleans()):
        if r.family == "power":
            obs = _random_power_base(rng, b, draw(st.integers(1, r.max_links)))
        else:
            k = draw(st.integers(1, 4))
            obs = _random_beamforming_base(rng, b, k, draw(st.integers(1, k)), draw(st.integers(1, 2)),
                                           draw(st.integers(1, 4)))
    else:
        rows = rng.integers(0, len(next(iter(r.base.values()))), size=b)
        obs = {key: np.array(val[rows], dtype=np.float64) for key, val in r.base.items()}
    key = "gain" if r.family == "power" else "channel"
    x = obs[key]
    power_like = 1.0 if r.family == "power" else 0.5  # a channel entry is an amplitude: half the decades
    scale = draw(st.floats(-span, span)) * power_like
    jitter = draw(st.sampled_from([0.0, 1.0, 5.0, span])) * power_like
    x = x * 10.0 ** (scale + rng.uniform(-jitter, jitter, x.shape))
    zeros = draw(st.sampled_from(["none", "some", "all", "direct", "cross"]))
    if zeros == "some":
        x = np.where(rng.random(x.shape) < 0.4, 0.0, x)
    elif zeros == "all":
        x = np.zeros_like(x)
    elif zeros in ("direct", "cross"):
        k = x.shape[1]
        if r.family == "power":
            eye = np.eye(k, dtype=bool)[None]
        else:  # the serving transmitter's block of each link
            tx = obs["tx_of_link"].astype(int)
            eye = (tx[:, :, None] == np.arange(x.shape[2]))[..., None, None, None]
        x = np.where(eye if zeros == "direct" else ~eye, 0.0, x)
    if f64:
        x = x * 10.0 ** draw(st.floats(0, 130 * power_like))
    elif draw(st.integers(0, 7)) == 0:  # the largest entry at the float32 maximum
        peak = np.abs(x).max()
        x = x * ((F32_MAX if r.family == "power" else np.sqrt(F32_MAX / 2)) / peak if peak > 0 else 1.0)
    else:
        x = np.minimum(x, F32_MAX) if r.family == "power" else x
    obs[key] = x
    k = obs["weight"].shape[1]
    obs["weight"] = np.broadcast_to(draw(_per_link((b, k), _WEIGHT, obs["weight"])), (b, k)).copy()
    noise = _pow10(-300, -45) if f64 else _NOISE
    obs["noise"] = np.broadcast_to(draw(_per_link((b, k), noise, obs["noise"])), (b, k)).copy()
    shape = obs["pmax"].shape
    obs["pmax"] = np.broadcast_to(draw(_per_link(shape, _PMAX, obs["pmax"])), shape).copy()
    return obs


# --- what a solver must do --------------------------------------------------------------------------
def _feasible(problem, obs, action, tol=1e-6):
    """Whether ``action (B, ...)`` is finite and on the feasible set of ``obs`` (relative tolerance ``tol``)."""
    if not np.all(np.isfinite(action)):
        return False
    if problem.name == "power":
        pmax = np.asarray(obs["pmax"], dtype=np.float64)
        return bool(np.all(action >= -tol * pmax) and np.all(action <= pmax * (1 + tol)))
    _, changed = problem.project(obs, action, tol=tol)
    return not changed.any()


def _act(r: Ready, obs, single: bool):
    """``act`` (first sample) or ``act_batch`` of ``r.solver`` on ``obs``, and the solver's own output
    (``_solve``, recorded before the base class projects it)."""
    solver = r.solver
    raw = []
    solve = solver._solve

    def recording(o):
        out = solve(o)
        raw.append(np.array(out, dtype=np.float64))
        return out

    solver._solve = recording  # the instance attribute shadows the method for this one call
    try:
        if callable(getattr(solver, "reset", None)):
            solver.reset()
        if single:
            out = solver.act({k: v[0] for k, v in obs.items()})[None]
        else:
            out = solver.act_batch(obs)
    finally:
        del solver._solve
    return np.asarray(out), raw[0] if raw else None


def _note(text: str) -> None:
    try:
        note(text)
    except Exception:  # outside a test (a debugging session)
        pass


def _check_action(r: Ready, obs, single: bool):
    problem = r.problem
    batch = {k: v[:1] for k, v in obs.items()} if single else obs
    _note(f"{r.name} on {r.family}: " + ", ".join(f"{k} {np.shape(v)} in [{np.min(v):.3g}, {np.max(v):.3g}]"
                                                 for k, v in batch.items() if np.size(v)))
    out, raw = _act(r, obs, single)
    want = problem.action_shape(batch)
    assert out.shape == want and out.dtype == np.float64, (out.shape, want, out.dtype)
    assert np.all(np.isfinite(out)), "act returned NaN/inf"
    assert _feasible(problem, batch, out, tol=0.0), "act returned an infeasible action"
    assert raw is not None and raw.shape == want
    bad = ~np.isfinite(raw)
    assert not bad.any(), f"{r.name}._solve returned {int(bad.sum())} NaN/inf entries (the safety net hid them)"
    assert _feasible(problem, batch, raw), f"{r.name}._solve returned an infeasible action"


def _benign(obs, family):
    """``obs`` with ordinary values (unit noise, budgets and weights, gains or channels of order 1) and the
    same shapes and extra keys: what a solver that refuses ``obs`` for its shapes alone refuses too."""
    rng = np.random.default_rng(0)
    out = {k: np.array(v) for k, v in obs.items()}
    key = "gain" if family == "power" else "channel"
    out[key] = rng.exponential(size=obs[key].shape) if family == "power" else rng.standard_normal(obs[key].shape)
    for k in ("weight", "noise", "pmax"):
        out[k] = np.ones(np.shape(obs[k]))
    return out


def _check_or_shape_error(r: Ready, obs, single: bool):
    """:func:`_check_action`; a ValueError only when the solver refuses the shapes: it names the solver and
    the same shapes with ordinary values are refused too (values alone never make a solver give up)."""
    try:
        _check_action(r, obs, single)
    except ValueError as exc:
        assert type(r.solver).__name__ in str(exc), f"unclear error: {exc!r}"
        with pytest.raises(ValueError):
            _act(r, _benign(obs, r.family), single)


_SOLVER_SETTINGS = settings(max_examples=12 * SCALE,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name, family", CASES, ids=IDS)
@_SOLVER_SETTINGS
@given(data=st.data())
def test_finite_feasible_actions_on_extreme_observations(name, family, data):
    r = ready(name, family)
    obs = data.draw(observations(r), label="obs")
    single = data.draw(st.booleans(), label="act (else act_batch)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an overflow inside a solver is a finding too
        _check_or_shape_error(r, obs, single)


F64_CASES = [pytest.param(name, fam, id=f"{name}-{fam}") for name, fam in CASES]


@pytest.mark.parametrize("name, family", F64_CASES)
@settings(max_examples=5 * SCALE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_float64_extremes_give_an_action_or_a_clear_error(name, family, data):
    r = ready(name, family)
    obs = data.draw(observations(r, span=20.0, f64=True), label="obs")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _check_action(r, obs, single=False)
    except ValueError as exc:
        assert type(r.solver).__name__ in str(exc), f"unclear error: {exc!r}"


# --- non-finite and out-of-range entries -----------------------------------------------------------
#: values outside each key's domain (besides NaN and inf, which no key allows)
_OUT_OF_RANGE = {"gain": [-1e-3], "noise": [0.0, -1.0], "pmax": [-1.0], "weight": [-1.0],
                 "tx_of_link": [0.5, -1.0, 1e6]}


@pytest.mark.parametrize("name, family", CASES, ids=IDS)
@settings(max_examples=10 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_nan_inf_or_out_of_range_in_any_key_is_a_clear_error(name, family, data):
    r = ready(name, family)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    single = data.draw(st.booleans(), label="act (else act_batch)")
    obs = {k: np.array(v[:1] if single else v) for k, v in r.base.items()}  # (act reads the first sample)
    key = data.draw(st.sampled_from(sorted(obs)), label="key")
    value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf] + _OUT_OF_RANGE.get(key, [])), label="value")
    every = data.draw(st.booleans(), label="every entry")
    arr = obs[key]
    if every:
        arr[...] = value
    else:
        arr[tuple(rng.integers(0, n) for n in arr.shape)] = value
    with pytest.raises((ValueError, TypeError)) as info:
        _act(r, obs, single)
    assert repr(key) in str(info.value), f"the error does not name obs[{key!r}]: {info.value}"


@pytest.mark.parametrize("name", solvers.available(problem="power"))
def test_one_link_and_zero_channels(name):
    """The smallest network, with every gain zero and then a lone strong link: finite feasible powers."""
    r = ready(name, "power")
    if not r.free_shape:
        pytest.skip(f"{name} runs on its trained size only")
    for gain in (0.0, 1e20, 1e-20):
        obs = {"gain": np.full((2, 1, 1), gain), "weight": np.ones((2, 1)), "noise": np.full((2, 1), 1e-30),
               "pmax": np.array([[1.0], [0.0]])}
        _check_action(r, obs, single=False)


# --- the budget helpers every beamforming solver ends with ------------------------------------------
@settings(max_examples=40 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_budget_helpers_keep_directions_for_any_finite_precoders(data):
    """``scale_to_budget`` and ``within_budget`` (solvers/wmmse_mimo_core.py) on precoders from subnormal
    (WMMSE drives switched-off links there) to 1e150 entries and budgets from 0 to 3.4e38 W, in float64 and
    float32: finite, within every budget, and each transmitter's precoders scaled by one positive factor."""
    import torch

    from solvers.wmmse_mimo_core import _serves, scale_to_budget, transmitter_power, within_budget

    dtype = data.draw(st.sampled_from([torch.float64, torch.float32]), label="dtype")
    info = torch.finfo(dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    b, k, nt, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)), 1
    t = data.draw(st.integers(1, k))
    tx = torch.as_tensor(np.tile(np.sort(rng.integers(0, t, size=k)), (b, 1)))
    low = np.log10(info.tiny) - data.draw(st.sampled_from([0.0, 5.0]))  # (5 decades into the subnormals)
    exp = rng.uniform(low, data.draw(st.floats(low, np.log10(info.max) / 2 - 1)), (b, k, 1, 1))
    v = torch.as_tensor((rng.standard_normal((b, k, nt, d)) + 1j * rng.standard_normal((b, k, nt, d))) * 10.0 ** exp)
    v = v.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    budgets = [0.0, float(info.tiny), 1e-20, 1.0, 1e20, float(info.max) / 4]
    pmax = torch.as_tensor(rng.choice(budgets, size=(b, t)), dtype=dtype)
    serves = _serves(tx, t, dtype)
    for out in (within_budget(v, tx, pmax), scale_to_budget(v, serves, tx, pmax, "common"),
                scale_to_budget(v, serves, tx, pmax, "equal")):
        assert bool(torch.isfinite(torch.view_as_real(out)).all())
        used = transmitter_power(serves.double(), out.to(torch.complex128))
        assert bool((used <= pmax.double() * (1 + 1e-12)).all()), (used, pmax)
    # within_budget: every transmitter's precoders times one factor in [0, 1] (1 when within the budget)
    out, wide = within_budget(v, tx, pmax).to(torch.complex128), v.to(torch.complex128)
    for bi in range(b):
        for j in range(t):
            links = tx[bi] == j
            if not bool(links.any()):  # (a transmitter without links)
                continue
            got, ref = out[bi, links], wide[bi, links]
            peak = ref.abs().max()
            if peak < info.tiny:  # (subnormal precoders: their power is 0 to the dtype, either answer is right)
                continue
            factor = got.abs().max() / peak
            assert 0.0 <= factor <= 1.0
            err = (got - factor * ref).abs().max() / peak
            assert err <= 16 * info.eps * max(1.0, float(factor)), (err, factor)
