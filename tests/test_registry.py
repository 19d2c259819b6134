"""The solver registry: built-in names, runtime registration, entry-point discovery, errors."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import solvers
from solvers import registry
from solvers.base import Solver

CLASSICAL = ["wmmse", "truncated_wmmse", "wmmse_best_of", "max_power", "random_power", "strongest_links", "exhaustive"]


@pytest.fixture
def clean_runtime(monkeypatch):
    """Runtime registrations made by a test vanish after it."""
    monkeypatch.setattr(registry, "_RUNTIME", {})


def small_obs():
    rng = np.random.default_rng(0)
    return {"gain": rng.exponential(size=(3, 3)), "weight": np.ones(3), "noise": np.ones(3), "pmax": np.ones(3)}


@pytest.mark.parametrize("name", CLASSICAL)
def test_builtin_classical_solvers(name):
    assert name in solvers.available()
    solver = solvers.make(name)
    assert isinstance(solver, Solver)
    assert solver.name == name  # the registry name and the class attribute agree
    assert "power" in solver.problems
    line = solvers.describe(name)
    assert line and "\n" not in line and len(line) <= 120, line
    assert line == registry.plain_text(type(solver).__doc__.strip().splitlines()[0])


def test_every_builtin_name_points_at_an_existing_class():
    import importlib

    for name, target in registry._BUILTIN.items():
        module, attr = target.split(":")
        mod = importlib.import_module(module)
        assert hasattr(mod, attr), f"{name}: {module} has no {attr}"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError) as err:
        solvers.make("no_such_solver")
    msg = str(err.value)
    assert "no_such_solver" in msg
    for name in CLASSICAL:
        assert name in msg


def test_typo_gets_a_suggestion():
    with pytest.raises(ValueError, match="Did you mean 'wmmse'"):
        solvers.make("wmse")


def test_make_needs_a_string():
    with pytest.raises(TypeError, match="string"):
        solvers.make(None)


def test_make_passes_kwargs():
    s = solvers.make("truncated_wmmse", iterations=7)
    assert s.max_iter == 7 and s.tol == 0.0


def test_register_at_runtime(clean_runtime):
    class Half:
        """Half power everywhere (a third-party object that is not a Solver subclass)."""

        def act(self, obs):
            return 0.5 * np.asarray(obs["pmax"])

    solvers.register("half", Half)
    assert "half" in solvers.available()
    np.testing.assert_array_equal(solvers.make("half").act(small_obs()), 0.5 * np.ones(3))
    assert solvers.describe("half").startswith("Half power")
    with pytest.raises(ValueError, match="already exists"):
        solvers.register("half", Half)
    with pytest.raises(ValueError, match="already exists"):
        solvers.register("wmmse", Half)
    solvers.register("half", lambda: "replaced", overwrite=True)
    assert solvers.make("half") == "replaced"


def test_register_rejects_bad_arguments(clean_runtime):
    with pytest.raises(ValueError, match="non-empty string"):
        solvers.register("", object)
    with pytest.raises(TypeError, match="callable"):
        solvers.register("x", 3)


def test_entry_point_plugin_is_found(tmp_path, monkeypatch):
    """A package installed with ``[project.entry-points."l2o_env.solvers"]`` is found by make/available.

    Builds a real (temporary) installed distribution on ``sys.path``: a module and a ``.dist-info``
    with ``entry_points.txt``, which is what pip writes; nothing in the registry is patched.
    """
    (tmp_path / "thirdparty_l2o_plugin.py").write_text(textwrap.dedent('''
        import numpy as np
        from solvers.base import Solver

        class QuarterPower(Solver):
            """Quarter power: a third-party solver found through the l2o_env.solvers entry points."""
            name = "quarter_power"

            def __init__(self, fraction=0.25):
                self.fraction = fraction

            def _solve(self, obs):
                return self.fraction * obs["pmax"]
    '''))
    dist = tmp_path / "thirdparty_l2o_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-l2o-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[l2o_env.solvers]\nquarter_power = thirdparty_l2o_plugin:QuarterPower\n"
                                         "broken_power = thirdparty_l2o_missing:Nothing\n")
    assert "quarter_power" not in solvers.available()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "thirdparty_l2o_plugin", raising=False)
    assert "quarter_power" in solvers.available()
    solver = solvers.make("quarter_power", fraction=0.5)
    np.testing.assert_allclose(solver.act(small_obs()), 0.5 * np.ones(3))
    assert solvers.describe("quarter_power").startswith("Quarter power")
    with pytest.raises(ValueError) as err:
        solvers.make("quarter_powr")
    assert "quarter_power" in str(err.value)
    with pytest.raises(ImportError, match="broken_power.*thirdparty_l2o_missing:Nothing.*failed to load"):
        solvers.make("broken_power")


@pytest.mark.parametrize("markup, plain", [
    (":class:`~solvers.base.Solver`", "Solver"),
    (":class:`solvers.base.Solver`", "solvers.base.Solver"),
    (":func:`~solvers.wmmse_core.wmmse_run`", "wmmse_run"),
    (":meth:`Solver.act_batch`", "Solver.act_batch"),
    (":py:class:`~solvers.base.Solver`", "Solver"),
    (":attr:`the budget <pmax>`", "the budget"),
    (":data:`!MAX_LINKS`", "MAX_LINKS"),
    ("``x``", "x"),
    ("``gain (K, K)`` and `weight`", "gain (K, K) and weight"),
    ("p_k ~ U[0, P_k], |h| magnitudes (K <= 4)", "p_k ~ U[0, P_k], |h| magnitudes (K <= 4)"),
])
def test_plain_text_strips_sphinx_roles_and_literals(markup, plain):
    assert registry.plain_text(markup) == plain


def test_describe_is_plain_text(clean_runtime):
    class Marked:
        """Behind the :class:`~solvers.base.Solver` interface, with ``act`` and :func:`solvers.make`.

        Second line: ``ignored``.
        """

    solvers.register("marked", Marked)
    assert solvers.describe("marked") == "Behind the Solver interface, with act and solvers.make."


def test_every_registered_solver_describes_itself_in_plain_text():
    """What ``l2o list`` prints: one line per solver, no Sphinx/RST markup, no pointers to files."""
    for name in registry._BUILTIN:
        line = solvers.describe(name)
        assert line, name
        for mark in ("``", "`", ":class:", ":func:", ":meth:", ":mod:", ":attr:", "seed 00", "seeds/"):
            assert mark not in line, (name, line)
