"""What an evaluation is, before it runs: a frozen, JSON-serialisable :class:`EvalSpec`.

:func:`build_spec` turns the arguments of :func:`l2o_env.evaluation.evaluate` into an ``EvalSpec`` (every
default resolved, every mistake a :class:`ConfigError` before any slot runs) plus the solver objects the
user passed directly (which cannot be serialised). The spec is what ``--rerun`` reads back
(``config["spec"]`` of a results file): env ID and keywords, the sweep, slots and their split into
episodes, the seed, every solver's registry name and keyword arguments (with ``pretrained=True`` already
resolved to the checkpoint it picked, so a rerun loads the same file), the reference and the problem.

Solvers given by registry name are rebuilt from ``(name, kwargs)`` wherever a sweep point runs
(:mod:`l2o_env.evaluation.runner`), so a point is a pure task; they are also built once here, to refuse
unknown names, bad keywords, untrained learned solvers and solvers of another problem family early.

Aged or noisy channel state (the env's ``csi_delay`` / ``csi_error`` at some sweep point): the spec gets a
*genie* row, :data:`GENIE_SUFFIX` appended to the problem's reference solver (``"wmmse (perfect CSI)"``),
which the runner feeds the true current channel instead of the observation (``SolverSpec.genie``); it is
the default reference then (an explicit ``reference`` still wins, and ``reference="NAME (perfect CSI)"``
makes the genie of another registry solver the reference). A solver class that names constructor keywords
in ``from_env`` (``{keyword: fact}``, facts of :func:`env_facts`) gets them filled from the evaluated env
at every sweep point unless the user gave them (:func:`make_solver`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from l2o_env.evaluation import metrics
from l2o_env.evaluation.parsing import ConfigError
from l2o_env.evaluation.results import jsonable
from l2o_env.validation import choice, integer, real, suggest

__all__ = ["EvalSpec", "SolverSpec", "build_spec", "KNOBS", "MOBILE_EPISODE_LENGTH", "BATCH_BYTES",
           "ACTION_DEPENDENT_WEIGHTS", "parse_reference", "make_solver", "explicit_kwargs", "describe_env",
           "scenario_defaults", "GENIE_SUFFIX", "GENIE_NOTE", "genie_label", "genie_base", "env_facts",
           "point_facts", "from_env_kwargs"]

#: The knobs a sweep may vary, with their axis label and unit (used by the plot and the table).
KNOBS: dict[str, dict[str, str]] = {
    "speed": {"label": "user speed", "unit": "m/s"},
    # dimensionless knobs: the "unit" says what the number means
    "density": {"label": "density factor d", "unit": "links per unit area x d; transmitter positions / sqrt(d)"},
    "num_links": {"label": "number of links K", "unit": "count"},
    "csi_delay": {"label": "CSI delay d", "unit": "slots between the observed and the scored channel"},
    "csi_error": {"label": "CSI estimation error e", "unit": "observed fading sqrt(1 - e^2) h + e n"},
}
#: Steps per episode when a speed is set (slots correlated in time).
MOBILE_EPISODE_LENGTH = 10
#: Target size in bytes of one batch of the largest observation array in float64 (power control: the gain
#: matrices); sets the number of parallel envs.
BATCH_BYTES = 64 * 2**20
#: ``weights`` values whose per-slot weights depend on the solver's past actions (need ``mode="live"``).
ACTION_DEPENDENT_WEIGHTS = ("proportional_fair",)
MODES = ("auto", "replay", "live")
#: appended to a registry name, the label of its genie row (``"wmmse (perfect CSI)"``)
GENIE_SUFFIX = " (perfect CSI)"
#: the note of a genie row
GENIE_NOTE = ("genie: sees the true current channel (perfect CSI), not the observation; an upper bound for the "
              "rows that see the aged/noisy observation")


def genie_label(name: str) -> str:
    """The label of the genie row of registry solver ``name``: ``"wmmse"`` -> ``"wmmse (perfect CSI)"``."""
    return f"{name}{GENIE_SUFFIX}"


def genie_base(label: str) -> str | None:
    """``"wmmse (perfect CSI)"`` -> ``"wmmse"``; None for a label that is not a genie's."""
    if isinstance(label, str) and label.endswith(GENIE_SUFFIX) and len(label) > len(GENIE_SUFFIX):
        return label[: -len(GENIE_SUFFIX)].strip() or None
    return None


@dataclasses.dataclass(frozen=True)
class SolverSpec:
    """One row of the table: ``label``, registry ``name`` (``None`` for a user object) and ``kwargs``;
    ``genie``: the row sees the true current channel instead of the observation (see the module docstring)."""

    label: str
    name: str | None
    kwargs: Mapping[str, Any]
    note: str = ""
    reference: bool = False
    cls: str = ""  # "module.Class" of the solver, for the record
    genie: bool = False
    #: ``kwargs["seed"]`` is the evaluation seed, filled in by the harness (a randomised solver the user did not
    #: seed): each seed of a several-seed run gives it its own (:meth:`EvalSpec.for_seed`)
    seeded: bool = False

    def to_dict(self) -> dict:
        return {"label": self.label, "name": self.name, "kwargs": jsonable(dict(self.kwargs)), "class": self.cls,
                "note": self.note, "reference": self.reference, "genie": self.genie, "seeded": self.seeded}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SolverSpec":
        return cls(label=d["label"], name=d.get("name"), kwargs=_untuple(d.get("kwargs") or {}),
                   note=d.get("note", ""), reference=bool(d.get("reference", False)), cls=d.get("class", ""),
                   genie=bool(d.get("genie", False)), seeded=bool(d.get("seeded", False)))


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """A fully resolved evaluation (see the module docstring). ``points()`` gives the env keywords of every
    sweep point; :meth:`to_dict` / :meth:`from_dict` round-trip through JSON. ``seeds`` (>= 1) whole
    evaluations run with the seeds ``seed, seed + 1, ..., seed + seeds - 1`` (:attr:`seed_values`); each is
    exactly the one-seed evaluation of its seed (:meth:`for_seed`)."""

    env_id: str
    env_kwargs: Mapping[str, Any]
    problem: str
    solvers: tuple[SolverSpec, ...]
    slots: int
    seed: int
    episode_length: int
    episodes: int
    max_batch: int
    mode: str
    served_rate: float = metrics.SERVED_RATE
    sweep_knob: str | None = None
    sweep_values: tuple = (None,)
    env_extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. a raised max_episode_steps
    seeds: int = 1

    @property
    def seed_values(self) -> tuple[int, ...]:
        """The evaluation seeds: ``seed, seed + 1, ..., seed + seeds - 1``."""
        return tuple(range(self.seed, self.seed + self.seeds))

    def for_seed(self, seed: int) -> "EvalSpec":
        """The one-seed spec of ``seed``: the same evaluation with ``seed`` (solvers the harness seeded with
        the evaluation seed get ``seed`` too), what ``evaluate(..., seed=seed)`` builds."""
        solvers = tuple(dataclasses.replace(s, kwargs={**s.kwargs, "seed": seed}) if s.seeded else s
                        for s in self.solvers)
        return dataclasses.replace(self, seed=seed, seeds=1, solvers=solvers)

    @property
    def reference(self) -> SolverSpec:
        return next(s for s in self.solvers if s.reference)

    @property
    def genie(self) -> SolverSpec | None:
        """The genie row (aged or noisy CSI), or None."""
        return next((s for s in self.solvers if s.genie), None)

    @property
    def chunks(self) -> int:
        """Rounds of parallel episodes per point (each at most ``max_batch`` envs)."""
        return math.ceil(self.episodes / self.max_batch)

    @property
    def parallel_envs(self) -> int:
        return math.ceil(self.episodes / self.chunks)

    def points(self) -> list[dict[str, Any]]:
        if self.sweep_knob is None:
            return [dict(self.env_kwargs)]
        return [{**self.env_kwargs, self.sweep_knob: v} for v in self.sweep_values]

    def point_seeds(self) -> list[int]:
        """The env seed of every sweep point: ``SeedSequence(seed).spawn(points)``, so each point's random
        stream is independent of the others and of the order in which points run."""
        children = np.random.SeedSequence(self.seed).spawn(len(self.sweep_values))
        return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]

    def to_dict(self) -> dict:
        return {"env_id": self.env_id, "env_kwargs": jsonable(dict(self.env_kwargs)), "problem": self.problem,
                "solvers": [s.to_dict() for s in self.solvers], "slots": self.slots, "seed": self.seed,
                "episode_length": self.episode_length, "episodes": self.episodes, "max_batch": self.max_batch,
                "mode": self.mode, "served_rate": self.served_rate, "sweep_knob": self.sweep_knob,
                "sweep_values": jsonable(list(self.sweep_values)), "env_extra": jsonable(dict(self.env_extra)),
                "seeds": self.seeds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalSpec":
        values = tuple(_untuple_value(v) for v in d.get("sweep_values", [None]))
        return cls(env_id=d["env_id"], env_kwargs=_untuple(d.get("env_kwargs") or {}), problem=d["problem"],
                   solvers=tuple(SolverSpec.from_dict(s) for s in d["solvers"]), slots=int(d["slots"]),
                   seed=int(d["seed"]), episode_length=int(d["episode_length"]), episodes=int(d["episodes"]),
                   max_batch=int(d["max_batch"]), mode=d["mode"], served_rate=float(d["served_rate"]),
                   sweep_knob=d.get("sweep_knob"), sweep_values=values, env_extra=dict(d.get("env_extra") or {}),
                   seeds=int(d.get("seeds", 1)))


# --- solvers ---------------------------------------------------------------------------------------------
def make_solver(label: str, name: str, kwargs: Mapping[str, Any], facts: Mapping[str, Any] | None = None):
    """``solvers.make(name, **kwargs)`` with the user's mistakes as :class:`ConfigError`; with ``facts``
    (:func:`env_facts`), the keywords the solver class asks for in ``from_env`` are filled first
    (:func:`from_env_kwargs`)."""
    import solvers

    kw = dict(kwargs)
    if facts is not None:
        kw.update(from_env_kwargs(name, kw, facts))
    try:
        return solvers.make(name, **kw)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise ConfigError(f"solver {label!r}: {exc}") from exc


def from_env_kwargs(name: str, kwargs: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor keywords registry solver ``name`` takes from the evaluated env: its class's
    ``from_env`` maps a keyword to a fact of :func:`env_facts` (``WMMSEPredictive``: ``rho`` <-
    ``fading_correlation``, ``csi_delay``, ``csi_error``); keywords in ``kwargs`` (the user's) are kept."""
    wants = getattr(_solver_class(name), "from_env", None)
    if not isinstance(wants, Mapping):
        return {}
    return {kw: facts[fact] for kw, fact in wants.items() if kw not in kwargs and fact in facts}


def env_facts(env) -> dict[str, Any]:
    """What a solver may take from an env (a single or vector env of the library; a third-party env without
    the attributes reads as perfect CSI): ``fading_correlation`` (rho = J0(2 pi f_d T); 0 when ``speed`` is
    None: independent slots), ``csi_delay``, ``csi_error``, ``csi_history``, and ``perfect_csi``."""
    base = getattr(env, "unwrapped", env)
    cfg = getattr(base, "config", None)
    rho = getattr(base, "fading_correlation", None)
    delay = int(getattr(cfg, "csi_delay", 0))
    error = float(getattr(cfg, "csi_error", 0.0))
    return {"fading_correlation": 0.0 if rho is None else float(rho), "csi_delay": delay, "csi_error": error,
            "csi_history": int(getattr(cfg, "csi_history", 1)), "perfect_csi": delay == 0 and error == 0.0}


def point_facts(env_id: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`env_facts` of ``gym.make_vec(env_id, 1, **kwargs)`` (a sweep point's env)."""
    env = make_vec(env_id, 1, kwargs)
    try:
        return env_facts(env)
    finally:
        env.close()


def _takes_seed(obj) -> bool:
    """Whether ``obj``'s constructor takes ``seed`` (randomised solvers such as ``random_power``)."""
    try:
        return "seed" in inspect.signature(type(obj)).parameters
    except (TypeError, ValueError):  # builtins or C types without a signature
        return False


def parse_reference(reference: Any) -> tuple[str, str]:
    """``"wmmse"`` -> ``("wmmse", "wmmse")``; ``"LABEL=NAME"`` -> ``(LABEL, NAME)``: the reference's label and
    registry name (the label may also be one of the listed solvers)."""
    if not isinstance(reference, str) or not reference.strip():
        raise ConfigError(f"reference must be a solver label or registry name such as 'wmmse' (or LABEL=NAME), "
                          f"got {reference!r}")
    label, sep, name = reference.partition("=")
    label, name = (label.strip(), name.strip()) if sep else (reference.strip(), reference.strip())
    if not label or not name:
        raise ConfigError(f"reference: expected NAME or LABEL=NAME, got {reference!r}")
    return label, name


def _solver_class(name: str):
    try:
        from solvers.registry import factory

        return factory(name)
    except (ImportError, ValueError, TypeError):
        return None


def _pick_pretrained(label: str, name: str, kw: dict, env_id: str, resolved: Mapping[str, Any]) -> str:
    """Replace ``pretrained=True`` of a learned solver by the shipped tag trained on the evaluated env."""
    if kw.get("pretrained") is not True:
        return ""
    cls = _solver_class(name)
    try:
        from solvers.learned import LearnedSolver, select_pretrained
    except ImportError:  # pragma: no cover - part of the package
        return ""
    if not (isinstance(cls, type) and issubclass(cls, LearnedSolver)):
        return ""
    try:
        entry = select_pretrained(name, env_id, resolved, normalise=explicit_kwargs)
    except ValueError as exc:
        raise ConfigError(f"solver {label!r}: pretrained=True: {exc}") from None
    kw["pretrained"] = entry["pretrained"]
    return f"pretrained=True -> {entry['tag']!r}"


def _check_problem(label: str, obj, problem: str, env_id: str) -> None:
    """Refuse a solver whose declared ``problems`` do not include the env's (objects without the attribute pass)."""
    declared = getattr(obj, "problems", None)
    if declared is None:
        return
    declared = sorted(declared)
    if problem not in declared:
        raise ConfigError(f"solver {label!r} ({type(obj).__name__}) solves {declared}, not {env_id}'s problem "
                          f"{problem!r}; `l2o list` groups solvers by problem")


def _untrained_message(label: str, name: str | None, obj) -> str:
    return (f"{type(obj).__name__} is untrained (never fitted nor loaded): pass --solver-kwargs "
            f"{label}.pretrained=true (or =TAG, or {label}.checkpoint=PATH), or train it first with "
            f"`l2o train {name or label}`; {label}.random_init=true evaluates a random initialisation on purpose")


def _solver_items(spec) -> list[tuple[str | None, Any]]:
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Iterable):
        items = [(None, s) for s in spec]
    else:
        items = [(None, spec)]
    if not items:
        raise ConfigError("solvers: give at least one solver (a registry name or an object with act(obs))")
    return items


def _build_solvers(spec, solver_kwargs, *, seed: int, reference: str, env_id: str, problem: str,
                   resolved: Mapping[str, Any], genie: str | None = None,
                   facts: Mapping[str, Any] | None = None) -> tuple[list[SolverSpec], dict[str, Any]]:
    """Solver specs (reference last unless listed; then the genie row, if any) and the built objects,
    ``{label: solver}``. ``genie``: the registry name whose genie row to add (aged/noisy CSI), or None; a
    ``reference`` that is a genie label (``"NAME (perfect CSI)"``) adds that genie as the reference.
    ``facts``: :func:`env_facts` of the first sweep point, for the solvers' ``from_env`` keywords."""
    ref_label, ref_name = parse_reference(reference)
    ref_genie = None
    if genie_base(ref_label) is not None:  # "wmmse (perfect CSI)", or "wmmse (perfect CSI)=wmmse"
        ref_genie = genie_base(ref_name) or ref_name
        if genie_label(ref_genie) != ref_label:
            raise ConfigError(f"reference {reference!r}: the genie row of {ref_genie!r} is labelled "
                              f"{genie_label(ref_genie)!r}")
        genie = ref_genie
    solver_kwargs = {k: dict(v) for k, v in (solver_kwargs or {}).items()}
    used: set[str] = set()
    specs: list[SolverSpec] = []
    objects: dict[str, Any] = {}

    def build(label: str, name: str, kw: dict) -> SolverSpec:
        note = _pick_pretrained(label, name, kw, env_id, resolved)
        obj = make_solver(label, name, kw, facts)
        seeded = "seed" not in kw and _takes_seed(obj)
        if seeded:
            # a randomised solver the user did not seed gets the evaluation seed: same seed, same table
            kw["seed"] = seed
            obj = make_solver(label, name, kw, facts)
        objects[label] = obj
        cls = type(obj)
        return SolverSpec(label, name, kw, note=note, cls=f"{cls.__module__}.{cls.__qualname__}", seeded=seeded)

    for label, s in _solver_items(spec):
        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) and isinstance(s[1], Mapping):
            name, kw = s[0], dict(s[1])
        elif isinstance(s, str):
            name, kw = s, {}
        else:
            name, kw = None, {}
        if name is not None:
            label = label or name
            _refuse_genie_label(label)
            for key in (name, label):  # kwargs may be addressed by registry name or by label
                if key in solver_kwargs:
                    kw.update(solver_kwargs[key])
                    used.add(key)
            if any(e.label == label for e in specs):
                raise _twice(label)
            specs.append(build(label, name, kw))
        else:
            obj = s
            if not (callable(getattr(obj, "act", None)) or callable(getattr(obj, "act_batch", None))):
                raise ConfigError(f"solvers: {obj!r} is neither a registry name nor an object with act(obs)")
            label = label or getattr(obj, "name", None) or type(obj).__name__
            _refuse_genie_label(label)
            if any(e.label == label for e in specs):
                raise _twice(label)
            cfg = getattr(obj, "config", None)
            kw = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else {}
            objects[label] = obj
            cls = type(obj)
            specs.append(SolverSpec(label, None, kw, cls=f"{cls.__module__}.{cls.__qualname__}"))

    def kwargs_of(*keys: str) -> dict:
        kw: dict = {}
        for key in keys:
            if key in solver_kwargs:
                kw.update(solver_kwargs[key])
                used.add(key)
        return kw

    if ref_genie is None:
        ref_kw: dict = {}
        listed = any(e.label == ref_label for e in specs)
        if not listed:
            # e.g. wmmse.max_iter=500 for the added reference (unless a listed row took them)
            ref_kw = kwargs_of(*(k for k in (ref_name, ref_label) if k not in used))
        if listed:
            specs = [dataclasses.replace(e, reference=True, note="; ".join(filter(None, ["reference", e.note])))
                     if e.label == ref_label else e for e in specs]
        else:
            added = build(ref_label, ref_name, ref_kw)
            specs.append(dataclasses.replace(added, reference=True, note="; ".join(
                filter(None, ["reference (added automatically)", added.note]))))
    if genie is not None:
        # the genie runs the same solver as its plain row: NAME's kwargs, then the genie label's
        label = genie_label(genie)
        row = build(label, genie, kwargs_of(genie, label))
        is_ref = ref_genie is not None
        note = "; ".join(filter(None, ["reference (added automatically)" if is_ref else "", GENIE_NOTE, row.note]))
        specs.append(dataclasses.replace(row, reference=is_ref, genie=True, note=note))
    unused = set(solver_kwargs) - used
    if unused:
        ref = genie_label(genie) if ref_genie is not None else ref_label
        raise ConfigError(f"solver kwargs given for {sorted(unused)}, which are not among the solvers "
                          f"{[e.label for e in specs]} nor the reference {ref!r}")
    for e in specs:
        obj = objects[e.label]
        _check_problem(e.label, obj, problem, env_id)
        if getattr(obj, "is_trained", True) is False:
            raise ConfigError(f"solver {e.label!r}: {_untrained_message(e.label, e.name, obj)}")
    return specs, objects


def _refuse_genie_label(label: str) -> None:
    if genie_base(label) is not None:
        raise ConfigError(f"solvers: the label {label!r} is reserved for the genie row the harness adds when the "
                          "CSI is aged or noisy (it sees the true channel); choose another label, or pass "
                          f"reference={label!r} to make that genie the reference")


def _twice(label: str) -> ConfigError:
    return ConfigError(f"solvers: {label!r} is listed twice; give distinct labels, e.g. "
                       f"{{'{label}_a': ..., '{label}_b': ...}} (CLI: --solvers a={label},b={label})")


# --- env settings ----------------------------------------------------------------------------------------
def _env_spec(env_id: str):
    import gymnasium as gym

    import l2o_env  # noqa: F401  (registers the IDs)

    if not isinstance(env_id, str):
        raise ConfigError(f"env_id must be a string such as 'PowerControl-IC-v0', got {type(env_id).__name__}")
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        from l2o_env.scenarios import ENV_IDS

        known = sorted(set(ENV_IDS) | {i for i in gym.registry if i.startswith("PowerControl")})
        raise ConfigError(f"unknown env {env_id!r}.{suggest(env_id, known)} Known: {', '.join(known)} ({exc})") from None


def make_vec(env_id: str, num_envs: int, kwargs: Mapping[str, Any]):
    """The env's native vector env, with a bad keyword as :class:`ConfigError`."""
    import gymnasium as gym

    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{env_id} with {dict(kwargs)}: {exc}") from exc


def _resolve_sweep(sweep, env_kwargs: Mapping[str, Any]) -> tuple[str | None, list[Any]]:
    if sweep is None:
        return None, [None]
    if isinstance(sweep, tuple) and len(sweep) == 2 and isinstance(sweep[0], str):
        sweep = {sweep[0]: sweep[1]}
    if not isinstance(sweep, Mapping) or len(sweep) != 1:
        raise ConfigError(f"sweep must be one knob and its values, e.g. {{'speed': [0, 3, 30]}}, got {sweep!r}")
    (knob, values), = sweep.items()
    if knob not in KNOBS:
        raise ConfigError(f"sweep: unknown knob {knob!r}.{suggest(knob, KNOBS)} Allowed: {', '.join(KNOBS)}")
    if knob in env_kwargs:
        raise ConfigError(f"sweep: {knob!r} is both swept and fixed in env_kwargs ({knob}={env_kwargs[knob]!r}); "
                          "drop one of them")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if not values:
        raise ConfigError(f"sweep: {knob!r} has no values")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"sweep: {knob!r} lists a value twice: {values}")
    return knob, values


def scenario_defaults(env_id: str) -> dict:
    """The keyword defaults the scenario table gives ``env_id`` (shown next to the user's keywords)."""
    try:
        from l2o_env.scenarios import SCENARIOS

        return jsonable(dict(SCENARIOS[env_id].defaults))
    except (ImportError, KeyError):  # a third-party env outside the scenario table
        return {}


def _problem_of(env_id: str) -> str:
    try:
        from l2o_env.scenarios import get_scenario

        return getattr(get_scenario(env_id), "problem", "power")
    except (ImportError, ValueError):  # a third-party env: power control unless it says otherwise
        return "power"


def explicit_kwargs(env_id: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The env keywords of ``gym.make(env_id, **kwargs)`` that differ from their defaults (the scenario's
    defaults included, so ``{}`` and ``{"num_links": 10}`` on the IC give the same answer)."""
    try:
        from l2o_env.envs.core import ENV_DEFAULTS
        from l2o_env.scenarios import get_scenario, model_class

        scenario = get_scenario(env_id)
        params = inspect.signature(model_class(env_id).__init__).parameters
    except (ImportError, ValueError, TypeError):  # a third-party env outside the scenario table
        return {k: _plain(v) for k, v in kwargs.items()}
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    # None in ENV_DEFAULTS means "the model's own default" (the beamforming models' snr_db): keep the model's
    defaults.update({k: v for k, v in ENV_DEFAULTS.items() if v is not None or k not in defaults})
    defaults["topology"] = scenario.default_topology
    defaults.setdefault("density", 1)
    merged = {**dict(scenario.defaults), **dict(kwargs)}
    return {k: _plain(v) for k, v in sorted(merged.items())
            if not (k in defaults and _plain(v) == _plain(defaults[k]) and k not in scenario.defaults)}


def describe_env(env_id: str, kw: Mapping[str, Any]) -> str:
    """``"PowerControl-IC-v0(num_links=10, snr_db=10)"``: the ID with the scenario's defaults and ``kw``."""
    merged = {**scenario_defaults(env_id), **{k: _plain(v) for k, v in kw.items()}}
    return f"{env_id}({', '.join(f'{k}={v}' for k, v in merged.items())})"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _untuple_value(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _untuple(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turned tuples into lists; env keywords such as ``pair_distance=(10, 50)`` want tuples back."""
    return {k: _untuple_value(v) for k, v in kwargs.items()}


def _int(name: str, value: Any, minimum: int = 1) -> int:
    try:
        return integer("evaluate", name, value, minimum=minimum)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# --- the one builder -------------------------------------------------------------------------------------
def build_spec(solvers, env_id: str, env_kwargs: Mapping[str, Any] | None = None, slots: int = 1000,
               seed: int = 0, sweep: Mapping[str, Iterable[Any]] | None = None, *,
               solver_kwargs: Mapping[str, Mapping[str, Any]] | None = None, reference: str | None = None,
               episode_length: int | None = None, max_batch: int | None = None, mode: str = "auto",
               served_rate: float = metrics.SERVED_RATE, seeds: int = 1
               ) -> tuple[EvalSpec, dict[str, Any], list[float | None]]:
    """Validate the arguments of :func:`l2o_env.evaluation.evaluate`; returns the spec, the built solver
    objects ``{label: solver}`` and the fading correlation rho of every sweep point (None without a speed)."""
    env_kwargs = dict(env_kwargs or {})
    gym_spec = _env_spec(env_id)
    problem = _problem_of(env_id)
    slots = _int("slots", slots)
    seed = _int("seed", seed, minimum=0)
    seeds = _int("seeds", seeds)
    try:
        mode = choice("evaluate", "mode", mode, MODES)
        served_rate = real("evaluate", "served_rate", served_rate, at_least=0.0)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    knob, values = _resolve_sweep(sweep, env_kwargs)
    points = [dict(env_kwargs) if knob is None else {**env_kwargs, knob: v} for v in values]

    default_kwargs = dict(gym_spec.kwargs or {})
    speeds = [p.get("speed", default_kwargs.get("speed")) for p in points]
    if episode_length is None:
        episode_length = MOBILE_EPISODE_LENGTH if any(s not in (None, 0, 0.0) for s in speeds) else 1
    episode_length = min(_int("episode_length", episode_length), slots)
    # the env must not truncate inside an evaluation episode; only the registered limit is raised
    long_episodes = gym_spec.max_episode_steps is not None and episode_length > gym_spec.max_episode_steps
    env_extra = {"max_episode_steps": episode_length} if long_episodes else {}
    episodes = math.ceil(slots / episode_length)

    weights = [p.get("weights", default_kwargs.get("weights")) for p in points]
    action_dependent = any(isinstance(w, str) and w in ACTION_DEPENDENT_WEIGHTS for w in weights)
    if mode == "auto":
        mode = "live" if action_dependent else "replay"
    elif mode == "replay" and action_dependent:
        raise ConfigError("mode='replay' cannot evaluate weights that depend on past actions "
                          f"({ACTION_DEPENDENT_WEIGHTS}); use mode='live' or 'auto'")

    # build every point's env once before the long run, so that a bad keyword fails at once
    sizes, sample_entries, rhos, facts = [], [], [], []
    for p in points:
        env = make_vec(env_id, 1, p)
        try:
            space = env.single_observation_space
            sizes.append(int(space["weight"].shape[0]))  # K links, whatever the family
            # the largest array of one observation (power control: the K x K gains) sets the batch
            sample_entries.append(max(int(np.prod(sub.shape)) for sub in space.values()))
            rho = getattr(getattr(env, "unwrapped", env), "fading_correlation", None)
            rhos.append(None if rho is None else float(rho))
            facts.append(env_facts(env))
        finally:
            env.close()
    max_batch = (max(1, BATCH_BYTES // (8 * max(sample_entries))) if max_batch is None
                 else _int("max_batch", max_batch))

    # shipped checkpoints are chosen for the unswept setting (a sweep tests one model across the knob)
    base = {**points[0], "num_links": sizes[0]} if knob == "num_links" else {**env_kwargs, "num_links": sizes[0]}
    # aged or noisy CSI somewhere: a genie row (the problem's reference solver on the true channel), and it
    # is the default reference
    default_ref = _reference_of(problem)
    genie = None if all(f["perfect_csi"] for f in facts) else default_ref
    if reference is None:
        reference = default_ref if genie is None else genie_label(genie)
    specs, objects = _build_solvers(solvers, solver_kwargs, seed=seed, env_id=env_id, problem=problem,
                                    resolved=base, reference=reference, genie=genie, facts=facts[0])
    spec = EvalSpec(env_id=env_id, env_kwargs=env_kwargs, problem=problem, solvers=tuple(specs), slots=slots,
                    seed=seed, episode_length=episode_length, episodes=episodes, max_batch=max_batch, mode=mode,
                    served_rate=served_rate, sweep_knob=knob, sweep_values=tuple(values), env_extra=env_extra,
                    seeds=seeds)
    return spec, objects, rhos


def _reference_of(problem: str) -> str:
    """The problem's default reference solver (WMMSE for power control)."""
    try:
        from l2o_env.problems import get_problem

        return get_problem(problem).reference_solver
    except (ImportError, ValueError):
        return "wmmse"
