"""Run several solvers on the identical channel sequence and tabulate how they do.

:func:`evaluate` is the one entry point (the ``l2o eval`` CLI is a thin shell around it).

How a run is laid out
---------------------
``slots`` decisions per sweep point are split into ``episodes x episode_length``:

- ``episode_length`` (time steps per episode) defaults to 1 when slots are i.i.d. (``speed=None``,
  nothing to carry over from one slot to the next) and to :data:`MOBILE_EPISODE_LENGTH` when a speed
  is set (slots correlated in time, so stateful solvers such as warm-started WMMSE have something to
  exploit); ``episodes = ceil(slots / episode_length)``.
- The episodes run in parallel through the env's native vector env
  (``gym.make_vec(env_id, num_envs=B, vectorization_mode="vector_entry_point")``), ``B`` at a time,
  where ``B`` is capped so that one batch of gain matrices stays near :data:`BATCH_BYTES` (a few
  thousand networks for K = 50, 8 for K = 1000). Chunks are equal in size, so when ``episodes`` is not
  a multiple of the cap the run rounds up to the next multiple of the chunk count; the ``slots`` column
  gives the number actually evaluated.

Common random numbers
---------------------
Every solver answers the same observations: at each time step the ``(B, ...)`` observation of the vector
env is handed to every solver in turn (lockstep replay; nothing is stored, so memory stays at one
batch) and each solver's weighted sum rate is computed with :mod:`l2o_env.rates` on that observation.
The env is reset with the same ``seed`` at every sweep point. When the weights depend on past actions
(``weights="proportional_fair"``) replay is impossible; there every solver steps its own env built with
the same seed (``mode="live"``); the channels are still identical because the env's random draws do
not depend on the actions. Solvers that keep state across slots get ``reset()`` at every episode start
(all ``B`` parallel episodes start together). Randomised solvers whose constructor takes ``seed``
(``random_power``) get ``seed=seed`` unless one is given, so that the same seed gives the same table
(the seed is recorded with their kwargs). With ``mode="live"`` each solver's weighted sum rate uses
the weights its own actions led to (proportional fairness), so the ratio compares those utilities.

Metrics (one row per solver x sweep point; :mod:`l2o_env.evaluation.metrics` defines them)
------------------------------------------------------------------------------------------
Means are over independent *units*: slots when ``episode_length == 1``, episodes otherwise (the slots of
an episode are correlated, so they are averaged first). Each mean comes with the half-width of its 95 %
confidence interval (``*_ci95``).

- ``mean_wsr`` (``wsr_ci95``): mean weighted sum rate per slot, bit/s/Hz; ``std_wsr`` its standard
  deviation over slots.
- ``mean_sum_rate`` (``sum_rate_ci95``): mean unweighted sum rate per slot, bit/s/Hz.
- ``ratio_to_reference`` (``ratio_ci95``): ``mean_wsr / mean_wsr(reference)`` at the same sweep point: the
  ratio of means, as the papers report it. The reference is ``reference`` (default ``"wmmse"``); it is
  added when not listed (``note`` says so).
- ``served_fraction``: fraction of links whose rate (averaged over the unit) exceeds ``served_rate``
  (0.01 bit/s/Hz); ``jain_index``: Jain's fairness index of the link rates, in ``[1/K, 1]``.
- ``time_per_slot_s``: wall-clock seconds of the solver's own calls (``act_batch``, or ``act`` per
  observation) divided by the number of slots: the batched cost of one decision. Each solver gets one
  untimed warm-up call on a few observations per sweep point (then ``reset()``), so one-off costs
  such as torch's lazy initialisation do not count.
- ``clipped_fraction``: fraction of slots whose action had an entry outside ``[0, pmax]`` or not finite
  and was clipped into the box before scoring (solvers built on :class:`solvers.Solver` clip themselves,
  so they read 0).
- ``fading_correlation``: rho = J0(2 pi f_d T) of the point's speed (None without a speed).
- A solver that raises at a sweep point (a fixed-K MLP at another K, say) gets a row of NaNs there,
  ``slots = 0`` and ``note = "failed: <error>"`` (plus a ``RuntimeWarning``); the others go on. Only
  the reference failing ends the run.

Learned solvers
---------------
``pretrained=True`` given to a learned solver by registry name picks the shipped checkpoint trained on
the evaluated env (:func:`solvers.learned.select_pretrained`: env ID first, then the closest size); the
pick is recorded in the solver's kwargs and in the row's note. A checkpoint evaluated on another setting
than its training one gets ``"trained on ..."`` in its note (and a notice in ``config["notices"]``); on
another env ID that is also a ``RuntimeWarning``. A learned solver that was never trained nor loaded is
refused before any slot runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from l2o_env import _threads
from l2o_env.evaluation import metrics
from l2o_env.evaluation.parsing import ConfigError
from l2o_env.evaluation.results import EvaluationResult, jsonable
from l2o_env.rates import link_rates

__all__ = ["evaluate", "rerun", "KNOBS", "MOBILE_EPISODE_LENGTH", "BATCH_BYTES", "REFERENCE"]

#: The knobs a sweep may vary, with their axis label and unit (used by the plot and the table).
KNOBS: dict[str, dict[str, str]] = {
    "speed": {"label": "user speed", "unit": "m/s"},
    # dimensionless knobs: the "unit" says what the number means
    "density": {"label": "density factor d", "unit": "links per unit area x d; transmitter positions / sqrt(d)"},
    "num_links": {"label": "number of links K", "unit": "count"},
}
#: Steps per episode when a speed is set (slots correlated in time).
MOBILE_EPISODE_LENGTH = 10
#: Target size in bytes of one batch of float64 gain matrices (sets the number of parallel envs).
BATCH_BYTES = 64 * 2**20
#: Default reference solver of ``ratio_to_reference`` (a registry name).
REFERENCE = "wmmse"
#: ``weights`` values whose per-slot weights depend on the solver's past actions (need ``mode="live"``).
ACTION_DEPENDENT_WEIGHTS = ("proportional_fair",)
_METRICS = ("mean_wsr", "wsr_ci95", "std_wsr", "mean_sum_rate", "sum_rate_ci95", "ratio_to_reference", "ratio_ci95",
            "served_fraction", "jain_index", "time_per_slot_s", "clipped_fraction")
_TOL = 1e-6  # relative slack on pmax before an action counts as clipped (float32 observations)


@dataclasses.dataclass
class _Entry:
    label: str
    solver: Any
    name: str | None  # registry name, None for a user object
    kwargs: dict
    note: str = ""
    reference: bool = False

    @property
    def batched(self) -> bool:
        return callable(getattr(self.solver, "act_batch", None))

    def describe(self) -> dict:
        cls = type(self.solver)
        return {"label": self.label, "name": self.name, "kwargs": jsonable(self.kwargs),
                "class": f"{cls.__module__}.{cls.__qualname__}", "note": self.note}


def _make_solver(label: str, name: str, kwargs: dict):
    import solvers

    try:
        return solvers.make(name, **kwargs)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise ConfigError(f"solver {label!r}: {exc}") from exc


def _seeded(label: str, name: str, kw: dict, obj, seed: int):
    """Rebuild ``obj`` with ``seed=seed`` when its constructor takes a seed the user did not give.

    Randomised solvers (``random_power``) default to ``seed=None``; seeding them with the evaluation
    seed keeps the promise that the same seed gives the same table. The seed is recorded in ``kw``.
    """
    if "seed" in kw:
        return obj
    try:
        params = inspect.signature(type(obj)).parameters
    except (TypeError, ValueError):  # builtins or C types without a signature
        return obj
    if "seed" not in params:
        return obj
    kw["seed"] = seed
    return _make_solver(label, name, kw)


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


def _learned_class(name: str):
    """The registry's class for ``name`` when it is a :class:`solvers.learned.LearnedSolver`, else None."""
    try:
        from solvers.learned import LearnedSolver
        from solvers.registry import factory

        cls = factory(name)
    except (ImportError, ValueError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, LearnedSolver) else None


def _pick_pretrained(label: str, name: str, kw: dict, context) -> str:
    """Replace ``pretrained=True`` of a learned solver by the shipped tag trained on the evaluated env."""
    if kw.get("pretrained") is not True or context is None or _learned_class(name) is None:
        return ""
    from solvers.learned import select_pretrained

    env_id, resolved = context
    try:
        entry = select_pretrained(name, env_id, resolved, normalise=explicit_kwargs)
    except ValueError as exc:
        raise ConfigError(f"solver {label!r}: pretrained=True: {exc}") from None
    kw["pretrained"] = entry["pretrained"]
    return f"pretrained=True -> {entry['tag']!r}"


def _build_entries(spec, solver_kwargs: Mapping[str, Mapping] | None, seed: int = 0, reference: str = REFERENCE,
                   context: tuple[str, dict] | None = None) -> list[_Entry]:
    """The solvers to run, the reference last unless listed. ``context``: ``(env_id, resolved env kwargs)``
    for choosing shipped checkpoints."""
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    items: list[tuple[str | None, Any]]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Iterable):
        items = [(None, s) for s in spec]
    else:
        items = [(None, spec)]
    if not items:
        raise ConfigError("solvers: give at least one solver (a registry name or an object with act(obs))")
    ref_label, ref_name = parse_reference(reference)
    solver_kwargs = {k: dict(v) for k, v in (solver_kwargs or {}).items()}
    used: set[str] = set()
    entries: list[_Entry] = []

    def build(label: str, name: str, kw: dict) -> _Entry:
        note = _pick_pretrained(label, name, kw, context)
        obj = _seeded(label, name, kw, _make_solver(label, name, kw), seed)
        return _Entry(label, obj, name, kw, note=note)

    for label, s in items:
        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], str) and isinstance(s[1], Mapping):
            name, kw = s[0], dict(s[1])
        elif isinstance(s, str):
            name, kw = s, {}
        else:
            name, kw = None, {}
        if name is not None:
            label = label or name
            for key in (name, label):  # kwargs may be addressed by registry name or by label
                if key in solver_kwargs:
                    kw.update(solver_kwargs[key])
                    used.add(key)
            entry = build(label, name, kw)
        else:
            obj = s
            if not (callable(getattr(obj, "act", None)) or callable(getattr(obj, "act_batch", None))):
                raise ConfigError(f"solvers: {obj!r} is neither a registry name nor an object with act(obs)")
            label = label or getattr(obj, "name", None) or type(obj).__name__
            cfg = getattr(obj, "config", None)
            kw = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else {}
            entry = _Entry(label, obj, None, kw)
        if any(e.label == label for e in entries):
            raise ConfigError(f"solvers: {label!r} is listed twice; give distinct labels, e.g. "
                              f"{{'{label}_a': ..., '{label}_b': ...}} (CLI: --solvers a={label},b={label})")
        entries.append(entry)
    ref = [e for e in entries if e.label == ref_label]
    ref_kw: dict = {}
    if not ref:
        for key in (ref_name, ref_label):  # e.g. wmmse.max_iter=500 for the added reference
            if key in solver_kwargs and key not in used:
                ref_kw.update(solver_kwargs[key])
                used.add(key)
    unused = set(solver_kwargs) - used
    if unused:
        raise ConfigError(f"solver kwargs given for {sorted(unused)}, which are not among the solvers "
                          f"{[e.label for e in entries]} nor the reference {ref_label!r}")
    if ref:
        ref[0].note = "; ".join(filter(None, ["reference", ref[0].note]))
        ref[0].reference = True
    else:
        added = build(ref_label, ref_name, ref_kw)
        added.note = "; ".join(filter(None, ["reference (added automatically)", added.note]))
        added.reference = True
        entries.append(added)
    for e in entries:
        if getattr(e.solver, "is_trained", True) is False:
            raise ConfigError(f"solver {e.label!r}: {_untrained_message(e)}")
    return entries


def _untrained_message(e: _Entry) -> str:
    return (f"{type(e.solver).__name__} is untrained (never fitted nor loaded): pass --solver-kwargs "
            f"{e.label}.pretrained=true (or =TAG, or {e.label}.checkpoint=PATH), or train it first with "
            f"`l2o train {e.name or e.label}`; {e.label}.random_init=true evaluates a random initialisation on purpose")


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
    defaults.update(ENV_DEFAULTS)
    defaults["topology"] = scenario.default_topology
    defaults.setdefault("density", 1)
    merged = {**dict(scenario.defaults), **dict(kwargs)}
    return {k: _plain(v) for k, v in sorted(merged.items())
            if not (k in defaults and _plain(v) == _plain(defaults[k]) and k not in scenario.defaults)}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe_env(env_id: str, kw: Mapping[str, Any]) -> str:
    """``"PowerControl-IC-v0(num_links=10, snr_db=10)"``: the ID with the scenario's defaults and ``kw``."""
    merged = {**_scenario_defaults(env_id), **{k: _plain(v) for k, v in kw.items()}}
    return f"{env_id}({', '.join(f'{k}={v}' for k, v in merged.items())})"


def _training_notes(entries, env_id: str, point_kwargs: Mapping[str, Any]) -> tuple[dict[str, str], list[dict]]:
    """``{label: note}`` for checkpoints evaluated away from their training setting, and the notices."""
    # (kwargs compared after dropping defaults: {} and {"num_links": 10} are the same IC)
    here = explicit_kwargs(env_id, point_kwargs)
    notes, notices = {}, []
    for e in entries:
        trained = getattr(e.solver, "trained_on", None)
        if not trained or not trained[0]:
            continue
        t_env, t_kwargs = trained[0], dict(trained[1] or {})
        there = explicit_kwargs(t_env, t_kwargs)
        if t_env == env_id and there == here:
            continue
        text = f"trained on {describe_env(t_env, t_kwargs)}"
        notes[e.label] = text
        level = "warning" if t_env != env_id else "note"
        notices.append({"level": level, "solver": e.label,
                        "text": f"solver {e.label!r} was {text}, evaluated on {describe_env(env_id, point_kwargs)}"})
    return notes, notices


def _env_spec(env_id: str):
    import gymnasium as gym

    import l2o_env  # noqa: F401  (registers the IDs)

    if not isinstance(env_id, str):
        raise ConfigError(f"env_id must be a string such as 'PowerControl-IC-v0', got {type(env_id).__name__}")
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        known = sorted(i for i in gym.registry if i.startswith("PowerControl"))
        close = difflib.get_close_matches(env_id, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown env {env_id!r}.{hint} Known: {', '.join(known) or 'none'} ({exc})") from None


def _make_vec(env_id: str, num_envs: int, kwargs: Mapping[str, Any]):
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
        close = difflib.get_close_matches(str(knob), list(KNOBS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"sweep: unknown knob {knob!r}.{hint} Allowed: {', '.join(KNOBS)}")
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


def _clip(power: np.ndarray, pmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feasible powers and a per-slot flag of whether anything had to change."""
    finite = np.isfinite(power)
    bad = ~finite | (power < -_TOL * pmax) | (power > pmax * (1.0 + _TOL))
    clipped = np.clip(np.where(finite, power, 0.0), 0.0, pmax)
    return clipped, bad.any(axis=-1)


class _Accum:
    """Per (solver, sweep point) running totals: per-slot values and per-unit (episode) averages."""

    def __init__(self):
        self.wsr: list[np.ndarray] = []        # (B,) per slot
        self.sum_rate: list[np.ndarray] = []   # (B,) per slot
        self.unit_wsr: list[np.ndarray] = []   # (B,) per chunk: episode means
        self.unit_sum_rate: list[np.ndarray] = []
        self.unit_rates: list[np.ndarray] = []  # (B, K) per chunk: episode-averaged link rates
        self._ep: list[np.ndarray] | None = None
        self.seconds = 0.0
        self.clipped = 0
        self.slots = 0

    def add_slot(self, wsr: np.ndarray, rates: np.ndarray, first: bool) -> None:
        sum_rate = rates.sum(-1)
        self.wsr.append(wsr)
        self.sum_rate.append(sum_rate)
        if first or self._ep is None:
            self._ep = [wsr.copy(), sum_rate.copy(), rates.copy()]
        else:
            self._ep[0] += wsr
            self._ep[1] += sum_rate
            self._ep[2] += rates

    def end_episodes(self, steps: int) -> None:
        wsr, sum_rate, rates = self._ep
        self.unit_wsr.append(wsr / steps)
        self.unit_sum_rate.append(sum_rate / steps)
        self.unit_rates.append(rates / steps)
        self._ep = None

    def units(self) -> np.ndarray:
        return np.concatenate(self.unit_wsr)

    def summary(self, reference_units: np.ndarray, served_rate: float) -> dict[str, float]:
        units = self.units()
        rates = np.concatenate(self.unit_rates)
        mean_wsr, wsr_ci = metrics.mean_ci(units)
        mean_sr, sr_ci = metrics.mean_ci(np.concatenate(self.unit_sum_rate))
        ratio, ratio_ci = metrics.ratio_ci(units, reference_units)
        return {
            "mean_wsr": mean_wsr,
            "wsr_ci95": wsr_ci,
            "std_wsr": float(np.concatenate(self.wsr).std()),
            "mean_sum_rate": mean_sr,
            "sum_rate_ci95": sr_ci,
            "ratio_to_reference": ratio,
            "ratio_ci95": ratio_ci,
            "served_fraction": float(metrics.served_fraction(rates, served_rate).mean()),
            "jain_index": float(metrics.jain_index(rates).mean()),
            "time_per_slot_s": self.seconds / self.slots,
            "clipped_fraction": self.clipped / self.slots,
            "slots": self.slots,
            "units": int(units.size),
        }


def _act(entry: _Entry, obs: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    if entry.batched:
        power = entry.solver.act_batch(obs)
    else:
        power = np.stack([np.asarray(entry.solver.act({k: v[b] for k, v in obs.items()}), dtype=np.float64)
                          for b in range(batch)])
    return np.asarray(power, dtype=np.float64)


def _reset(entry: _Entry) -> None:
    reset = getattr(entry.solver, "reset", None)
    if callable(reset):
        reset()


def _slice(obs: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {k: np.array(v[:n]) for k, v in obs.items()}  # copies: the warm-up must not touch the env's arrays


def _step(env, action: np.ndarray, env_id: str, t: int, steps: int):
    obs, _reward, terminated, truncated, _info = env.step(action.astype(np.float32))
    if np.any(terminated) or np.any(truncated):
        raise RuntimeError(f"{env_id} ended an episode after {t + 1} step(s), before episode_length={steps}; "
                           "use a shorter episode_length")
    return obs


def _failure(e: _Entry, exc: Exception) -> str:
    if e.reference:  # without the reference there is no table
        raise exc
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def _run_point(entries, env_id, kwargs, *, episodes, steps, max_batch, seed, live, pbar
               ) -> tuple[dict[str, _Accum], dict[str, str]]:
    """Accumulators of every solver at one sweep point, and ``{label: error}`` of the solvers that raised.

    A solver that raises (e.g. a fixed-K MLP at another K of a ``num_links`` sweep) is dropped for the
    rest of the point and reported, instead of ending the whole evaluation.
    """
    chunks = math.ceil(episodes / max_batch)
    batch = math.ceil(episodes / chunks)
    acc = {e.label: _Accum() for e in entries}
    failed: dict[str, str] = {}
    envs = {e.label: _make_vec(env_id, batch, kwargs) for e in entries} if live else {None: _make_vec(env_id, batch, kwargs)}
    try:
        for c in range(chunks):
            # one seeded reset per point; later chunks continue the same random stream
            first = {key: env.reset(seed=seed if c == 0 else None)[0] for key, env in envs.items()}
            obs_of = {e.label: first[e.label if live else None] for e in entries}
            if c == 0:
                for e in entries:  # untimed warm-up: one-off costs (imports, torch init) are not per-slot costs
                    try:
                        _act(e, _slice(obs_of[e.label], min(batch, 4)), min(batch, 4))
                    except Exception as exc:  # noqa: BLE001 - reported in the table, see _failure
                        failed[e.label] = _failure(e, exc)
            for e in entries:
                if e.label not in failed:
                    _reset(e)
            for t in range(steps):
                for e in entries:
                    if e.label in failed:
                        pbar.update(1)
                        continue
                    obs = obs_of[e.label]
                    gain = np.asarray(obs["gain"], dtype=np.float64)
                    k = gain.shape[-1]
                    # a private copy (untimed): a solver that edits its input in place cannot change what
                    # the next solver sees or what this one is scored on
                    mine = {key: np.array(val) for key, val in obs.items()}
                    t0 = time.perf_counter()
                    try:
                        power = _act(e, mine, batch)
                        if power.shape != (batch, k):
                            raise ValueError(f"returned powers of shape {power.shape}, expected {(batch, k)} (B, K)")
                    except Exception as exc:  # noqa: BLE001 - reported in the table, see _failure
                        failed[e.label] = _failure(e, exc)
                        pbar.update(1)
                        continue
                    a = acc[e.label]
                    a.seconds += time.perf_counter() - t0
                    pmax = np.asarray(obs["pmax"], dtype=np.float64)
                    power, bad = _clip(power, pmax)
                    rates = link_rates(gain, power, np.asarray(obs["noise"], dtype=np.float64))
                    weight = np.asarray(obs["weight"], dtype=np.float64)
                    a.add_slot((weight * rates).sum(-1), rates, first=t == 0)
                    a.clipped += int(bad.sum())
                    a.slots += batch
                    if live and t < steps - 1:
                        obs_of[e.label] = _step(envs[e.label], power, env_id, t, steps)
                    pbar.update(1)
                if not live and t < steps - 1:
                    # replay: the observation sequence does not depend on the action, so any feasible one will do
                    nxt = _step(envs[None], np.zeros((batch, k)), env_id, t, steps)
                    obs_of = {e.label: nxt for e in entries}
            for e in entries:
                if e.label not in failed:
                    acc[e.label].end_episodes(steps)
    finally:
        for env in envs.values():
            env.close()
    return acc, failed


def evaluate(
    solvers,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    slots: int = 1000,
    seed: int = 0,
    sweep: Mapping[str, Iterable[Any]] | None = None,
    *,
    solver_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    reference: str = REFERENCE,
    episode_length: int | None = None,
    max_batch: int | None = None,
    mode: str = "auto",
    served_rate: float = metrics.SERVED_RATE,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``solvers`` on ``env_id`` with common random numbers; one row per solver x sweep point.

    Args:
        solvers: registry names (``["wmmse", "max_power"]`` or ``"wmmse,max_power"``), ``(name, kwargs)``
            pairs, objects with ``act_batch(obs)`` and/or ``act(obs)``, or a dict ``{label: any of those}``
            to give them names (needed to list one solver twice with different kwargs). Objects are used
            as they are at every sweep point (a learned solver trained on one setting is tested
            unchanged on the others). The reference is added when no entry has its label.
        env_id: a registered ID, e.g. ``"PowerControl-IMAC-v0"`` (see ``l2o_env.scenarios.ENV_IDS``).
        env_kwargs: keyword arguments of ``gym.make`` (``num_links``, ``num_cells``, ``speed`` in m/s,
            ``density``, ``weights``, ...).
        slots: decisions per solver and sweep point (``episodes x episode_length``, see module docstring).
        seed: seeds the env's reset at every sweep point: same seed, same channels for every solver.
        sweep: one knob and its values, ``{"speed": [0, 3, 30]}`` (m/s), ``{"density": [0.5, 1, 2]}``
            (factor), or ``{"num_links": [10, 20, 30]}``; ``None`` evaluates ``env_kwargs`` alone.
        solver_kwargs: ``{name_or_label: {kwarg: value}}`` for solvers given by registry name (the
            reference's too, e.g. ``{"wmmse": {"max_iter": 500}}``).
        reference: the solver every ratio is taken to: a label among ``solvers`` or a registry name
            (``"wmmse"``, the default; ``"wmmse_best_of"``; ``"LABEL=NAME"`` to label an added one).
        episode_length: steps per episode; default 1 without mobility, :data:`MOBILE_EPISODE_LENGTH`
            with a speed.
        max_batch: cap on parallel envs (default from :data:`BATCH_BYTES` and K).
        mode: ``"replay"`` (one env, every solver answers its observations), ``"live"`` (one env per
            solver, same seed, each stepped with its own actions; needed when the weights depend on
            past actions), or ``"auto"`` (live exactly when ``weights`` is action-dependent).
        served_rate: bit/s/Hz above which a link counts as served (``served_fraction``).
        progress: show a tqdm bar on stderr.

    Returns:
        :class:`EvaluationResult` (``.rows``, ``.table()``, ``.save(path)``, ``.plot(path)``).

    Raises:
        ConfigError (a ``ValueError``): unknown env, solver or knob, bad keyword, malformed sweep, an
        untrained learned solver, no shipped checkpoint for ``pretrained=True``.
    """
    env_kwargs = dict(env_kwargs or {})
    spec = _env_spec(env_id)
    slots = _positive_int("slots", slots)
    seed = _positive_int("seed", seed, minimum=0)
    if mode not in ("auto", "replay", "live"):
        raise ConfigError(f"mode must be 'auto', 'replay' or 'live', got {mode!r}")
    try:
        from l2o_env.validation import real

        served_rate = real("evaluate", "served_rate", served_rate, at_least=0.0)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    knob, values = _resolve_sweep(sweep, env_kwargs)
    points = [dict(env_kwargs) if knob is None else {**env_kwargs, knob: v} for v in values]

    default_kwargs = dict(spec.kwargs or {})
    speeds = [p.get("speed", default_kwargs.get("speed")) for p in points]
    if episode_length is None:
        episode_length = MOBILE_EPISODE_LENGTH if any(s not in (None, 0, 0.0) for s in speeds) else 1
    episode_length = min(_positive_int("episode_length", episode_length), slots)
    # the env must not truncate inside an evaluation episode; only the registered limit is raised
    long_episodes = spec.max_episode_steps is not None and episode_length > spec.max_episode_steps
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
    sizes, rhos, resolved = [], [], []
    for p in points:
        env = _make_vec(env_id, 1, p)
        try:
            inner = getattr(env, "unwrapped", env)
            sizes.append(int(env.single_observation_space["gain"].shape[-1]))
            rho = getattr(inner, "fading_correlation", None)
            rhos.append(None if rho is None else float(rho))
            resolved.append({**p, "num_links": sizes[-1]})
        finally:
            env.close()
    if max_batch is None:
        max_batch = max(1, BATCH_BYTES // (8 * max(sizes) ** 2))
    max_batch = _positive_int("max_batch", max_batch)

    # shipped checkpoints are chosen for the unswept setting (a sweep tests one model across the knob)
    base = {**env_kwargs, "num_links": sizes[0]} if knob != "num_links" else dict(resolved[0])
    entries = _build_entries(solvers, solver_kwargs, int(seed), reference, context=(env_id, base))
    ref_entry = next(e for e in entries if e.reference)
    spinning = _threads.warn_if_spinning()

    from tqdm.auto import tqdm
    import sys

    chunks = math.ceil(episodes / max_batch)
    total = len(points) * chunks * episode_length * len(entries)
    rows: list[dict] = []
    notices: list[dict] = []
    per_slot: dict[tuple[str, Any], np.ndarray] = {}
    with tqdm(total=total, disable=not progress, file=sys.stderr, unit="step", desc=env_id, leave=False) as pbar:
        for value, kw, rho in zip(values, points, rhos):
            if knob is not None:
                pbar.set_description(f"{env_id} {knob}={value}")
            acc, failed = _run_point(entries, env_id, {**kw, **env_extra}, episodes=episodes, steps=episode_length,
                                     max_batch=int(max_batch), seed=int(seed), live=mode == "live", pbar=pbar)
            ref_units = acc[ref_entry.label].units()
            trained_notes, point_notices = _training_notes(entries, env_id, kw)
            where = f" at {knob}={value}" if knob else ""
            for n in point_notices:
                if n not in notices:
                    notices.append(n)
                if n["level"] == "warning":
                    warnings.warn(n["text"] + where, RuntimeWarning, stacklevel=2)
            for e in entries:
                row = {"env_id": env_id, "sweep_knob": knob or "", "sweep_value": value, "solver": e.label,
                       "fading_correlation": rho}
                note = "; ".join(filter(None, [e.note, trained_notes.get(e.label, "")]))
                if e.label in failed:
                    warnings.warn(f"solver {e.label!r} failed{where}: {failed[e.label]}", RuntimeWarning, stacklevel=2)
                    rows.append({**row, **dict.fromkeys(_METRICS, float("nan")), "slots": 0, "units": 0,
                                 "note": "; ".join(filter(None, [f"failed: {failed[e.label]}", note]))})
                    continue
                summary = acc[e.label].summary(ref_units, served_rate)
                if e.reference:
                    summary["ratio_ci95"] = 0.0  # the reference against itself: exactly 1
                rows.append({**row, **summary, "note": note})
                per_slot[(e.label, value)] = np.concatenate(acc[e.label].sum_rate)

    import l2o_env

    config = {
        "env_id": env_id,
        "env_kwargs": jsonable(env_kwargs),
        "scenario_defaults": _scenario_defaults(env_id),
        "seed": int(seed),
        "slots": int(slots),
        "episodes": int(chunks * math.ceil(episodes / chunks)),
        "episode_length": int(episode_length),
        "unit": "slot" if episode_length == 1 else "episode",
        "parallel_envs": int(math.ceil(episodes / chunks)),
        "chunks": int(chunks),
        "mode": mode,
        "sweep": None if knob is None else {"knob": knob, "values": jsonable(values), **KNOBS[knob]},
        "solvers": [e.describe() for e in entries],
        "reference": ref_entry.label,
        "reference_name": ref_entry.name,
        "reference_added": ref_entry.note.startswith("reference (added automatically)"),
        "served_rate": served_rate,
        "notices": notices,
        "omp_wait_policy": _threads.OMP_WAIT_POLICY,
        "omp_threads_spin": spinning,
        "l2o_env_version": l2o_env.__version__,
        **_versions(),
    }
    return EvaluationResult(rows=rows, config=config, per_slot_sum_rate=per_slot)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    from l2o_env.validation import integer

    try:
        return integer("evaluate", name, value, minimum=minimum)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _scenario_defaults(env_id: str) -> dict:
    """The keyword defaults the scenario table gives ``env_id`` (shown next to the user's keywords)."""
    try:
        from l2o_env.scenarios import SCENARIOS

        return jsonable(dict(SCENARIOS[env_id].defaults))
    except (ImportError, KeyError):  # a third-party env outside the scenario table
        return {}


def _versions() -> dict[str, str]:
    import platform
    from datetime import datetime, timezone

    import gymnasium

    out = {"numpy_version": np.__version__, "gymnasium_version": gymnasium.__version__,
           "python_version": platform.python_version(), "platform": platform.platform(),
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        import torch

        out["torch_version"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return out


def rerun(config: Mapping[str, Any] | EvaluationResult | str, *, progress: bool = False, **overrides) -> EvaluationResult:
    """Run again the evaluation described by a saved configuration (a JSON path, a result, or its ``config``).

    Only solvers built from the registry can be rebuilt (their name and kwargs are in the file); a
    result that holds user objects raises ``ConfigError`` naming them. ``overrides`` replace arguments of
    :func:`evaluate` (e.g. ``slots=100``).
    """
    if isinstance(config, str) or hasattr(config, "__fspath__"):
        config = EvaluationResult.load(config).config
    elif isinstance(config, EvaluationResult):
        config = config.config
    missing = [s["label"] for s in config["solvers"] if s.get("name") is None]
    if missing:
        raise ConfigError(f"rerun: solver(s) {missing} were user objects, not registry names; rebuild them and "
                          "call evaluate() instead")
    ref_label = config.get("reference", REFERENCE)
    added = [s for s in config["solvers"] if config.get("reference_added", False) and s["label"] == ref_label]
    specs = {s["label"]: (s["name"], _untuple(s.get("kwargs") or {})) for s in config["solvers"] if s not in added}
    ref_kwargs = {s["label"]: _untuple(s["kwargs"]) for s in added if s.get("kwargs")}
    reference = ref_label
    if added and added[0]["name"] != ref_label:
        reference = f"{ref_label}={added[0]['name']}"
    sweep = None if not config.get("sweep") else {config["sweep"]["knob"]: config["sweep"]["values"]}
    args = dict(solvers=specs, env_id=config["env_id"], env_kwargs=_untuple(config.get("env_kwargs") or {}),
                slots=config["slots"], seed=config["seed"], sweep=sweep, solver_kwargs=ref_kwargs or None,
                reference=reference, episode_length=config.get("episode_length"), mode=config.get("mode", "auto"),
                served_rate=config.get("served_rate", metrics.SERVED_RATE), progress=progress)
    args.update(overrides)
    return evaluate(**args)


def _untuple(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turned tuples into lists; env keywords such as ``pair_distance=(10, 50)`` want tuples back."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
