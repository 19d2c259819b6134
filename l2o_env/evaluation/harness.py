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

Metrics (one row per solver x sweep point)
------------------------------------------
- ``mean_wsr``: mean weighted sum rate per slot, bit/s/Hz; ``std_wsr`` its standard deviation over slots.
- ``mean_sum_rate``: mean unweighted sum rate per slot, bit/s/Hz.
- ``ratio_to_wmmse``: ``mean_wsr / mean_wsr(wmmse)`` at the same sweep point: the ratio of means, as the
  papers report it. The ``wmmse`` solver is added as the reference when not listed (``note`` says so).
- ``p5_user_rate``: 5th percentile over users of each user's rate averaged over its episode, bit/s/Hz
  (with ``episode_length=1``: the 5th percentile of all per-slot link rates).
- ``time_per_slot_s``: wall-clock seconds of the solver's own calls (``act_batch``, or ``act`` per
  observation) divided by the number of slots: the batched cost of one decision. Each solver gets one
  untimed warm-up call on a few observations per sweep point (then ``reset()``), so one-off costs
  such as torch's lazy initialisation do not count.
- A solver that raises at a sweep point (a fixed-K MLP at another K, say) gets a row of NaNs there,
  ``slots = 0`` and ``note = "failed: <error>"`` (plus a ``RuntimeWarning``); the others go on. Only
  the reference failing ends the run.
- ``clipped_fraction``: fraction of slots whose action had an entry outside ``[0, pmax]`` or not finite
  and was clipped into the box before scoring (solvers built on :class:`solvers.Solver` clip themselves,
  so they read 0).
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
#: Registry name of the reference solver of ``ratio_to_wmmse``.
REFERENCE = "wmmse"
#: ``weights`` values whose per-slot weights depend on the solver's past actions (need ``mode="live"``).
ACTION_DEPENDENT_WEIGHTS = ("proportional_fair",)
_METRICS = ("mean_wsr", "std_wsr", "mean_sum_rate", "ratio_to_wmmse", "p5_user_rate", "time_per_slot_s",
            "clipped_fraction")
_TOL = 1e-6  # relative slack on pmax before an action counts as clipped (float32 observations)


@dataclasses.dataclass
class _Entry:
    label: str
    solver: Any
    name: str | None  # registry name, None for a user object
    kwargs: dict
    note: str = ""

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


def _build_entries(spec, solver_kwargs: Mapping[str, Mapping] | None, seed: int = 0) -> list[_Entry]:
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
    solver_kwargs = {k: dict(v) for k, v in (solver_kwargs or {}).items()}
    used: set[str] = set()
    entries: list[_Entry] = []
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
            obj = _seeded(label, name, kw, _make_solver(label, name, kw), seed)
        else:
            obj = s
            if not (callable(getattr(obj, "act", None)) or callable(getattr(obj, "act_batch", None))):
                raise ConfigError(f"solvers: {obj!r} is neither a registry name nor an object with act(obs)")
            label = label or getattr(obj, "name", None) or type(obj).__name__
            cfg = getattr(obj, "config", None)
            kw = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else {}
        if any(e.label == label for e in entries):
            raise ConfigError(f"solvers: {label!r} is listed twice; give distinct labels, e.g. "
                              f"{{'{label}_a': ..., '{label}_b': ...}} (CLI: --solvers a={label},b={label})")
        entries.append(_Entry(label, obj, name, kw))
    ref = [e for e in entries if e.label == REFERENCE]
    ref_kw = {}
    if not ref and REFERENCE in solver_kwargs:  # e.g. wmmse.device=cuda for the added reference
        ref_kw = solver_kwargs[REFERENCE]
        used.add(REFERENCE)
    unused = set(solver_kwargs) - used
    if unused:
        raise ConfigError(f"solver kwargs given for {sorted(unused)}, which are not among the solvers "
                          f"{[e.label for e in entries]}")
    if ref:
        ref[0].note = "reference"
    else:
        entries.append(_Entry(REFERENCE, _make_solver(REFERENCE, REFERENCE, ref_kw), REFERENCE, ref_kw,
                              note="reference (added automatically)"))
    return entries


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
    """Per (solver, sweep point) running totals."""

    def __init__(self):
        self.wsr: list[np.ndarray] = []
        self.sum_rate: list[np.ndarray] = []
        self.user_rate: list[np.ndarray] = []  # (B, K) mean over each episode
        self.episode_rates: np.ndarray | None = None
        self.seconds = 0.0
        self.clipped = 0
        self.slots = 0

    def summary(self) -> dict[str, float]:
        wsr = np.concatenate(self.wsr)
        users = np.concatenate([u.ravel() for u in self.user_rate])
        return {
            "mean_wsr": float(wsr.mean()),
            "std_wsr": float(wsr.std()),
            "mean_sum_rate": float(np.concatenate(self.sum_rate).mean()),
            "p5_user_rate": float(np.percentile(users, 5)),
            "time_per_slot_s": self.seconds / self.slots,
            "clipped_fraction": self.clipped / self.slots,
            "slots": self.slots,
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
    if e.label == REFERENCE:  # without the reference there is no table
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
                    a.wsr.append((weight * rates).sum(-1))
                    a.sum_rate.append(rates.sum(-1))
                    a.episode_rates = rates if t == 0 else a.episode_rates + rates
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
                    acc[e.label].user_rate.append(acc[e.label].episode_rates / steps)
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
    episode_length: int | None = None,
    max_batch: int | None = None,
    mode: str = "auto",
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``solvers`` on ``env_id`` with common random numbers; one row per solver x sweep point.

    Args:
        solvers: registry names (``["wmmse", "max_power"]`` or ``"wmmse,max_power"``), ``(name, kwargs)``
            pairs, objects with ``act_batch(obs)`` and/or ``act(obs)``, or a dict ``{label: any of those}``
            to give them names (needed to list one solver twice with different kwargs). Objects are used
            as they are at every sweep point (a learned solver trained on one setting is tested
            unchanged on the others). ``"wmmse"`` is added as the reference when no entry is labelled so.
        env_id: a registered ID, e.g. ``"PowerControl-IMAC-v0"`` (see ``l2o_env.scenarios.ENV_IDS``).
        env_kwargs: keyword arguments of ``gym.make`` (``num_links``, ``num_cells``, ``speed`` in m/s,
            ``density``, ``weights``, ...).
        slots: decisions per solver and sweep point (``episodes x episode_length``, see module docstring).
        seed: seeds the env's reset at every sweep point: same seed, same channels for every solver.
        sweep: one knob and its values, ``{"speed": [0, 3, 30]}`` (m/s), ``{"density": [0.5, 1, 2]}``
            (factor), or ``{"num_links": [10, 20, 30]}``; ``None`` evaluates ``env_kwargs`` alone.
        solver_kwargs: ``{name_or_label: {kwarg: value}}`` for solvers given by registry name.
        episode_length: steps per episode; default 1 without mobility, :data:`MOBILE_EPISODE_LENGTH`
            with a speed.
        max_batch: cap on parallel envs (default from :data:`BATCH_BYTES` and K).
        mode: ``"replay"`` (one env, every solver answers its observations), ``"live"`` (one env per
            solver, same seed, each stepped with its own actions; needed when the weights depend on
            past actions), or ``"auto"`` (live exactly when ``weights`` is action-dependent).
        progress: show a tqdm bar on stderr.

    Returns:
        :class:`EvaluationResult` (``.rows``, ``.table()``, ``.save(path)``, ``.plot(path)``).

    Raises:
        ConfigError (a ``ValueError``): unknown env, solver or knob, bad keyword, malformed sweep.
    """
    env_kwargs = dict(env_kwargs or {})
    spec = _env_spec(env_id)
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise ConfigError(f"slots must be a positive integer, got {slots!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if mode not in ("auto", "replay", "live"):
        raise ConfigError(f"mode must be 'auto', 'replay' or 'live', got {mode!r}")
    knob, values = _resolve_sweep(sweep, env_kwargs)
    points = [dict(env_kwargs) if knob is None else {**env_kwargs, knob: v} for v in values]

    default_kwargs = dict(spec.kwargs or {})
    speeds = [p.get("speed", default_kwargs.get("speed")) for p in points]
    if episode_length is None:
        episode_length = MOBILE_EPISODE_LENGTH if any(s not in (None, 0, 0.0) for s in speeds) else 1
    if isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
        raise ConfigError(f"episode_length must be a positive integer, got {episode_length!r}")
    episode_length = min(int(episode_length), int(slots))
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

    entries = _build_entries(solvers, solver_kwargs, int(seed))

    # build every point's env once before the long run, so that a bad keyword fails at once
    sizes = []
    for p in points:
        env = _make_vec(env_id, 1, p)
        try:
            sizes.append(int(env.single_observation_space["gain"].shape[-1]))
        finally:
            env.close()
    if max_batch is None:
        max_batch = max(1, BATCH_BYTES // (8 * max(sizes) ** 2))
    if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
        raise ConfigError(f"max_batch must be a positive integer, got {max_batch!r}")

    from tqdm.auto import tqdm
    import sys

    chunks = math.ceil(episodes / max_batch)
    total = len(points) * chunks * episode_length * len(entries)
    rows: list[dict] = []
    per_slot: dict[tuple[str, Any], np.ndarray] = {}
    with tqdm(total=total, disable=not progress, file=sys.stderr, unit="step", desc=env_id, leave=False) as pbar:
        for value, kw in zip(values, points):
            if knob is not None:
                pbar.set_description(f"{env_id} {knob}={value}")
            acc, failed = _run_point(entries, env_id, {**kw, **env_extra}, episodes=episodes, steps=episode_length, max_batch=int(max_batch),
                             seed=int(seed), live=mode == "live", pbar=pbar)
            ref = acc[REFERENCE].summary()["mean_wsr"]
            for e in entries:
                row = {"env_id": env_id, "sweep_knob": knob or "", "sweep_value": value, "solver": e.label}
                if e.label in failed:
                    where = f" at {knob}={value}" if knob else ""
                    warnings.warn(f"solver {e.label!r} failed{where}: {failed[e.label]}", RuntimeWarning, stacklevel=2)
                    rows.append({**row, **dict.fromkeys(_METRICS, float("nan")), "slots": 0,
                                 "note": f"failed: {failed[e.label]}"})
                    continue
                s = acc[e.label].summary()
                ratio = s["mean_wsr"] / ref if ref > 0 else float("nan")
                rows.append({**row, "mean_wsr": s["mean_wsr"], "std_wsr": s["std_wsr"],
                             "mean_sum_rate": s["mean_sum_rate"], "ratio_to_wmmse": ratio,
                             "p5_user_rate": s["p5_user_rate"], "time_per_slot_s": s["time_per_slot_s"],
                             "clipped_fraction": s["clipped_fraction"], "slots": s["slots"], "note": e.note})
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
        "parallel_envs": int(math.ceil(episodes / chunks)),
        "chunks": int(chunks),
        "mode": mode,
        "sweep": None if knob is None else {"knob": knob, "values": jsonable(values), **KNOBS[knob]},
        "solvers": [e.describe() for e in entries],
        "reference": REFERENCE,
        "reference_added": any(e.note.endswith("(added automatically)") for e in entries),
        "l2o_env_version": l2o_env.__version__,
        **_versions(),
    }
    return EvaluationResult(rows=rows, config=config, per_slot_sum_rate=per_slot)


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
    added = [s for s in config["solvers"] if str(s.get("note", "")).endswith("(added automatically)")]
    specs = {s["label"]: (s["name"], _untuple(s.get("kwargs") or {})) for s in config["solvers"] if s not in added}
    ref_kwargs = {s["label"]: _untuple(s["kwargs"]) for s in added if s.get("kwargs")}
    sweep = None if not config.get("sweep") else {config["sweep"]["knob"]: config["sweep"]["values"]}
    args = dict(solvers=specs, env_id=config["env_id"], env_kwargs=_untuple(config.get("env_kwargs") or {}),
                slots=config["slots"], seed=config["seed"], sweep=sweep, solver_kwargs=ref_kwargs or None, episode_length=config.get("episode_length"),
                mode=config.get("mode", "auto"), progress=progress)
    args.update(overrides)
    return evaluate(**args)


def _untuple(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turned tuples into lists; env keywords such as ``pair_distance=(10, 50)`` want tuples back."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
