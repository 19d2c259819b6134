"""The scenario table is the one list of env IDs: registration from it, one env class for every row,
per-scenario behaviour from its fields, and a new row (with an existing channel model) works end to end."""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import l2o_env  # noqa: F401  (registers the env IDs)
from l2o_env import scenarios
from l2o_env.data import ObservationSampler
from l2o_env.envs import PowerControlEnv, PowerControlVectorEnv
from l2o_env.envs.core import parse_config
from l2o_env.envs.registration import ENTRY_POINTS, MAX_EPISODE_STEPS, register_envs
from l2o_env.problems import PROBLEMS
from l2o_env.scenarios import ENV_IDS, SCENARIOS, Scenario

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def temporary_scenario(row: Scenario):
    """Add ``row`` to the table as if it were one more entry of ``scenarios._TABLE``, register it, and
    remove it again. (The table is a module constant: a real scenario is one more ``Scenario(...)`` in
    ``_TABLE``; this does at run time what that edit does at import time.)"""
    assert row.env_id not in SCENARIOS
    scenarios._BY_ID[row.env_id] = row
    scenarios.ENV_IDS.append(row.env_id)
    try:
        register_envs()
        yield row
    finally:
        del scenarios._BY_ID[row.env_id]
        scenarios.ENV_IDS.remove(row.env_id)
        gym.registry.pop(row.env_id, None)


# --- registration ---------------------------------------------------------------------------------
POWER_IDS = [e for e in ENV_IDS if SCENARIOS[e].problem == "power"]  # beamforming: test_beamforming_envs.py


@pytest.mark.parametrize("env_id", POWER_IDS, ids=POWER_IDS)
def test_every_row_is_registered_with_its_scenario_in_the_spec_kwargs(env_id):
    spec = gym.spec(env_id)
    single, vector = ENTRY_POINTS[SCENARIOS[env_id].problem]
    assert (spec.entry_point, spec.vector_entry_point) == (single, vector)
    assert spec.kwargs == {"env_id": env_id} and spec.max_episode_steps == MAX_EPISODE_STEPS
    env = gym.make(env_id, num_links=6)  # (IMAC: 3 cells of 2 users)
    assert type(env.unwrapped) is PowerControlEnv and env.unwrapped.env_id == env_id
    assert env.spec.kwargs == {"env_id": env_id, "num_links": 6}
    for mode, cls in (("vector_entry_point", PowerControlVectorEnv), ("sync", gym.vector.SyncVectorEnv)):
        envs = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, num_links=6)
        assert type(envs) is cls
        assert envs.spec.kwargs["env_id"] == env_id and envs.spec.kwargs["num_links"] == 6
        obs, _ = envs.reset(seed=0)
        assert obs["gain"].shape == (2, 6, 6)


def test_every_scenario_names_a_known_problem_with_env_classes():
    for s in SCENARIOS.values():
        assert s.problem in PROBLEMS and s.problem in ENTRY_POINTS
    assert set(ENTRY_POINTS) <= set(PROBLEMS)


def test_a_conflicting_env_id_keyword_is_refused_not_silently_used():
    match = r"env_id='PowerControl-D2D-v0' conflicts with the scenario this ID is registered with"
    with pytest.raises(ValueError, match=match):
        gym.make("PowerControl-IC-v0", env_id="PowerControl-D2D-v0")
    with pytest.raises(ValueError, match=match):
        gym.make_vec("PowerControl-IC-v0", num_envs=2, env_id="PowerControl-D2D-v0")
    with pytest.raises(ValueError, match=match):
        gym.make_vec("PowerControl-IC-v0", num_envs=2, vectorization_mode="sync", env_id="PowerControl-D2D-v0")
    # the same ID again is harmless, and the spec re-makes the same env
    env = gym.make("PowerControl-IC-v0", env_id="PowerControl-IC-v0", num_links=3)
    again = gym.make(env.spec)
    assert again.unwrapped.num_links == 3 and again.unwrapped.env_id == "PowerControl-IC-v0"


def test_a_user_registered_id_may_name_a_scenario():
    try:
        gym.register("L2OTestIC-v0", entry_point="l2o_env.envs.power_control:PowerControlEnv",
                     kwargs={"env_id": "PowerControl-IC-v0", "num_links": 4})
        env = gym.make("L2OTestIC-v0")
        assert (env.unwrapped.env_id, env.unwrapped.num_links) == ("PowerControl-IC-v0", 4)
        gym.register("L2OTestBare-v0", entry_point="l2o_env.envs.power_control:PowerControlEnv")
        assert gym.make("L2OTestBare-v0", env_id="PowerControl-D2D-v0").unwrapped.env_id == "PowerControl-D2D-v0"
        with pytest.raises(ValueError, match="pass env_id"):
            gym.make("L2OTestBare-v0")
    finally:
        gym.registry.pop("L2OTestIC-v0", None)
        gym.registry.pop("L2OTestBare-v0", None)


def test_the_classes_refuse_another_problem_family():
    row = Scenario(env_id="L2OTestOther-v0", model="l2o_env.channels.ic:GaussianIC", problem="beamforming")
    scenarios._BY_ID[row.env_id] = row
    try:
        with pytest.raises(ValueError, match="is a 'beamforming' scenario, not 'power'"):
            PowerControlEnv(row.env_id)
        with pytest.raises(ValueError, match="is a 'beamforming' scenario, not 'power'"):
            PowerControlVectorEnv(row.env_id, num_envs=2)
    finally:
        del scenarios._BY_ID[row.env_id]


# --- per-scenario behaviour is data ----------------------------------------------------------------
def test_knob_flags_of_the_table():
    flags = {s.env_id: (s.problem, s.snr_db_knob, s.topology_knob, s.default_topology) for s in SCENARIOS.values()}
    assert flags == {
        "PowerControl-IC-v0": ("power", True, False, "random"),
        "PowerControl-IMAC-v0": ("power", False, False, "random"),
        "PowerControl-AdHoc-v0": ("power", False, True, "fixed"),
        "PowerControl-D2D-v0": ("power", False, False, "random"),
        "Beamforming-MISO-v0": ("beamforming", False, False, "random"),
        "Beamforming-IBC-v0": ("beamforming", False, False, "random"),
        "Beamforming-D2D-v0": ("beamforming", False, False, "random"),
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(env_id="X-v0", model="nocolon"), "model must be 'module:Class'"),
        (dict(env_id="", model="a:B"), "env_id must be a non-empty string"),
        (dict(env_id="ns:X-v0", model="a:B"), "without ':'"),
        (dict(env_id="X-v0", model="a:B", default_topology="fixd"), "Did you mean 'fixed'"),
        (dict(env_id="X-v0", model="a:B", snr_db_knob=1), "snr_db_knob must be one of True, False"),
        (dict(env_id="X-v0", model="a:B", default_topology="fixed"), "needs topology_knob=True"),
    ],
)
def test_scenario_rows_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Scenario(**kwargs)


def test_a_new_row_with_an_existing_model_is_a_full_scenario():
    d2d_like = Scenario(
        env_id="PowerControl-L2OTestD2D-v0",
        model="l2o_env.channels.d2d:D2D",
        defaults={"num_links": 6, "pair_distance": (5.0, 20.0)},
        description="test row",
        citation="none",
        topology_knob=True,
        default_topology="fixed",
    )
    ic_like = Scenario(env_id="PowerControl-L2OTestIC-v0", model="l2o_env.channels.ic:GaussianIC",
                       defaults={"num_links": 3}, snr_db_knob=True)
    with temporary_scenario(d2d_like), temporary_scenario(ic_like):
        env_id = d2d_like.env_id
        assert env_id in ENV_IDS and gym.spec(env_id).kwargs == {"env_id": env_id}
        env = gym.make(env_id, weights="random")
        obs, _ = env.reset(seed=0)
        assert set(obs) == {"gain", "weight", "noise", "pmax", "tx_pos", "rx_pos"}
        assert obs["gain"].shape == (6, 6) and env.unwrapped.model.pair_distance == (5.0, 20.0)
        # the row's flags drive the knobs: a fixed topology by default, no snr_db
        nxt, *_ = env.step(env.action_space.sample())
        np.testing.assert_array_equal(nxt["tx_pos"], obs["tx_pos"])
        assert parse_config(env_id, topology="random").topology == "random"
        with pytest.raises(ValueError, match=r"snr_db is only defined for PowerControl-IC-v0, PowerControl-L2OTestIC-v0"):
            gym.make(env_id, snr_db=10)
        np.testing.assert_allclose(gym.make(ic_like.env_id, snr_db=10).reset(seed=0)[0]["noise"], 0.1, rtol=1e-6)
        with pytest.raises(ValueError, match=r"only PowerControl-AdHoc-v0, PowerControl-L2OTestD2D-v0 keep a fixed"):
            gym.make(ic_like.env_id, topology="fixed")
        # the vector env, the sampler and the checks take it like any registered ID
        envs = gym.make_vec(env_id, num_envs=3)
        vobs, _ = envs.reset(seed=1)
        batch = ObservationSampler(env_id, seed=1)(3)
        for key in batch:
            np.testing.assert_array_equal(batch[key], vobs[key].astype(np.float64))
        from l2o_env.checks import check_env

        check_env(gym.make(env_id))
    assert d2d_like.env_id not in gym.registry and d2d_like.env_id not in ENV_IDS


# --- the table is the only list of env IDs -------------------------------------------------------
_ID = re.compile(r"^(l2o_env:)?[A-Za-z]+-[A-Za-z0-9]+-v\d+$")


def _id_literals(path: Path) -> list[tuple[int, str]]:
    """String constants of ``path`` that are an env ID, outside docstrings and parameter defaults."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))  # a docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # a default argument (`env_id="PowerControl-IC-v0"`) picks one ID, it does not list them
            skip.update(id(d) for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and _ID.match(node.value)]


def test_no_code_outside_the_scenario_table_names_env_ids():
    found = {}
    for folder in ("l2o_env", "solvers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "l2o_env" / "scenarios.py":
                continue
            hits = _id_literals(path)
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    assert not found, f"env IDs outside l2o_env/scenarios.py (make the behaviour a Scenario field): {found}"
    # the scan does see the table's own IDs
    assert {v for _, v in _id_literals(ROOT / "l2o_env" / "scenarios.py")} == set(ENV_IDS)
