"""One sweep point of an evaluation as a pure task: :class:`PointTask` in, :class:`PointResult` out.

A task holds the :class:`~l2o_env.evaluation.spec.EvalSpec`, the point's index and its env seed (from
``SeedSequence(spec.seed).spawn``); solvers given by registry name are built inside :func:`run_point` from
their name and keyword arguments, so a task pickles and its result does not depend on which process runs
it or on the other points. Solver objects the user passed directly travel in ``objects`` (serial backend
only: they may not pickle, and they keep their state from point to point).

Within a point every solver answers the same observations (common random numbers), and every action is
scored with the problem's rate function on the *true* current channel, the one the env pays its reward on
(``true_observation(obs, info)``: the observation itself unless the env's ``csi_delay`` / ``csi_error``
make it aged or noisy). Solvers see the observation only; a genie row (``SolverSpec.genie``) sees that
true channel instead.

- replay (:func:`_run_replay`): one vector env; at each step its ``(B, ...)`` observation is handed to
  every solver in turn (a private copy each) and scored; the env then steps with the problem's zero
  action (the channel does not depend on the action).
- live (:func:`_run_live`): one env per solver, all reset with the same seed, each stepped with its own
  actions (weights that depend on past rates, ``weights="proportional_fair"``); the channels still agree
  because the env's random draws do not depend on the actions.

Registry solvers whose class asks for env facts (``from_env``, e.g. ``wmmse_predictive``'s rho and CSI
delay) get them from the point's env (:func:`~l2o_env.evaluation.spec.make_solver`); the row's note says
which values they got.

Slots are split into ``episodes x episode_length``; the episodes run ``B`` at a time in parallel envs
(``spec.parallel_envs``), and stateful solvers get ``reset()`` at every episode start. A solver that
raises is dropped for the rest of the point and reported; only the reference raising ends the point.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from l2o_env.envs.core import true_observation
from l2o_env.evaluation import metrics
from l2o_env.evaluation.spec import EvalSpec, SolverSpec, from_env_kwargs, make_solver, make_vec, point_facts

__all__ = ["PointTask", "PointResult", "run_point", "make_tasks", "CLIP_TOL"]

#: relative slack on pmax before an action counts as clipped (observations are float32)
CLIP_TOL = 1e-6


@dataclasses.dataclass(frozen=True)
class PointTask:
    """Everything one sweep point needs (picklable unless ``objects`` holds unpicklable user solvers)."""

    spec: EvalSpec
    index: int
    seed: int
    objects: Mapping[str, Any] | None = None

    @property
    def value(self) -> Any:
        return self.spec.sweep_values[self.index]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return {**self.spec.points()[self.index], **self.spec.env_extra}


@dataclasses.dataclass
class PointResult:
    """Per-solver summaries (:func:`summarise`), failures ``{label: message}``, per-slot sum rates and
    per-solver notes of the point (the env facts a ``from_env`` solver was given)."""

    index: int
    summaries: dict[str, dict[str, float]]
    failed: dict[str, str]
    per_slot_sum_rate: dict[str, np.ndarray]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)


def make_tasks(spec: EvalSpec, objects: Mapping[str, Any] | None = None) -> list[PointTask]:
    """One task per sweep point and seed, seed after seed (``spec.seed_values``): the tasks of seed ``s`` are
    those of the one-seed spec ``spec.for_seed(s)`` (its ``task.spec``), so each seed is exactly the
    evaluation ``evaluate(..., seed=s)`` runs. User objects (solvers without a registry name) ride along."""
    users = {s.label: objects[s.label] for s in spec.solvers if s.name is None} if objects else {}
    specs = [spec] if spec.seeds == 1 else [spec.for_seed(s) for s in spec.seed_values]
    return [PointTask(one, i, seed, users or None) for one in specs for i, seed in enumerate(one.point_seeds())]


class _Accum:
    """Per solver running totals: per-slot values and per-unit (episode) averages."""

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


def summarise(acc: _Accum, reference_units: np.ndarray, served_rate: float) -> dict[str, float]:
    """The table's metrics of one solver at one point (:mod:`l2o_env.evaluation.metrics`)."""
    units = acc.units()
    rates = np.concatenate(acc.unit_rates)
    mean_wsr, wsr_ci = metrics.mean_ci(units)
    mean_sr, sr_ci = metrics.mean_ci(np.concatenate(acc.unit_sum_rate))
    ratio, ratio_ci = metrics.ratio_ci(units, reference_units)
    return {
        "mean_wsr": mean_wsr,
        "wsr_ci95": wsr_ci,
        "std_wsr": float(np.concatenate(acc.wsr).std()),
        "mean_sum_rate": mean_sr,
        "sum_rate_ci95": sr_ci,
        "ratio_to_reference": ratio,
        "ratio_ci95": ratio_ci,
        "served_fraction": float(metrics.served_fraction(rates, served_rate).mean()),
        "jain_index": float(metrics.jain_index(rates).mean()),
        "time_per_slot_s": acc.seconds / acc.slots,
        "clipped_fraction": acc.clipped / acc.slots,
        "slots": acc.slots,
        "units": int(units.size),
    }


class _Solver:
    """A solver of the point: its spec, the object, and how to call it (``genie``: it sees the truth)."""

    def __init__(self, spec: SolverSpec, obj: Any):
        self.spec, self.obj = spec, obj
        self.label = spec.label
        self.genie = spec.genie
        self.batched = callable(getattr(obj, "act_batch", None))

    def sees(self, obs: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """What the solver is given: the observation, or the true channel for a genie."""
        return truth if self.genie else obs

    def act(self, obs: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
        if self.batched:
            return np.asarray(self.obj.act_batch(obs), dtype=np.float64)
        return np.stack([np.asarray(self.obj.act({k: v[b] for k, v in obs.items()}), dtype=np.float64)
                         for b in range(batch)])

    def reset(self) -> None:
        reset = getattr(self.obj, "reset", None)
        if callable(reset):
            reset()


def _copy(obs: Mapping[str, np.ndarray], n: int | None = None) -> dict[str, np.ndarray]:
    # copies: a solver that edits its input in place cannot change what the next solver sees or what it is
    # scored on, and the warm-up cannot touch the env's arrays
    return {k: np.array(v if n is None else v[:n]) for k, v in obs.items()}


def _failure(s: _Solver, exc: Exception) -> str:
    if s.spec.reference:  # without the reference there is no table
        raise exc
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


class _Point:
    """State shared by the replay and live runners of one point."""

    def __init__(self, task: PointTask, progress: Callable[[int], None] | None):
        from l2o_env.problems import get_problem

        self.task, self.spec = task, task.spec
        self.problem = get_problem(self.spec.problem)
        self.progress = progress or (lambda n: None)
        objects = task.objects or {}
        facts = point_facts(self.spec.env_id, task.env_kwargs)
        self.notes: dict[str, str] = {}
        for s in self.spec.solvers:
            filled = {} if s.name is None else from_env_kwargs(s.name, s.kwargs, facts)
            if filled:
                self.notes[s.label] = "from the env: " + ", ".join(f"{k}={_short(v)}" for k, v in filled.items())
        self.solvers = [_Solver(s, objects[s.label] if s.name is None
                                else make_solver(s.label, s.name, s.kwargs, facts)) for s in self.spec.solvers]
        self.acc = {s.label: _Accum() for s in self.solvers}
        self.failed: dict[str, str] = {}
        self.batch = self.spec.parallel_envs

    def warm_up(self, obs_of: Mapping[str, Mapping[str, np.ndarray]],
                truth_of: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """One untimed call per solver: one-off costs (imports, torch init) are not per-slot costs."""
        n = min(self.batch, 4)
        for s in self.solvers:
            try:
                s.act(_copy(s.sees(obs_of[s.label], truth_of[s.label]), n), n)
            except Exception as exc:  # noqa: BLE001 - reported in the table, see _failure
                self.failed[s.label] = _failure(s, exc)

    def live(self) -> list[_Solver]:
        return [s for s in self.solvers if s.label not in self.failed]

    def score(self, s: _Solver, obs: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray],
              first: bool) -> np.ndarray | None:
        """Time ``s`` on what it sees (``obs``, or ``truth`` for a genie), project its action and accumulate
        its rates on ``truth``, the true current channel (the env's reward); the feasible action, or None."""
        seen = s.sees(obs, truth)
        t0 = time.perf_counter()
        try:
            action = s.act(_copy(seen), self.batch)
            want = self.problem.action_shape(seen)
            if action.shape != want:
                raise ValueError(f"returned an action of shape {action.shape}, expected {want}")
        except Exception as exc:  # noqa: BLE001 - reported in the table, see _failure
            self.failed[s.label] = _failure(s, exc)
            return None
        a = self.acc[s.label]
        a.seconds += time.perf_counter() - t0
        action, changed = self.problem.project(truth, action, tol=CLIP_TOL)
        rates = self.problem.rates(truth, action)
        weight = np.asarray(truth["weight"], dtype=np.float64)
        a.add_slot((weight * rates).sum(-1), rates, first=first)
        a.clipped += int(np.count_nonzero(changed))
        a.slots += self.batch
        return action

    def step(self, env, action: np.ndarray, t: int) -> tuple[dict, dict]:
        """Step ``env``; the new observation and the true channel it stands for."""
        steps = self.spec.episode_length
        obs, _reward, terminated, truncated, info = env.step(action.astype(np.float32))
        if np.any(terminated) or np.any(truncated):
            raise RuntimeError(f"{self.spec.env_id} ended an episode after {t + 1} step(s), before "
                               f"episode_length={steps}; use a shorter episode_length")
        return obs, true_observation(obs, info)

    def end_chunk(self) -> None:
        for s in self.live():
            self.acc[s.label].end_episodes(self.spec.episode_length)

    def result(self) -> PointResult:
        ref = self.spec.reference.label
        ref_units = self.acc[ref].units()
        summaries, per_slot = {}, {}
        for s in self.live():
            summary = summarise(self.acc[s.label], ref_units, self.spec.served_rate)
            if s.spec.reference:
                summary["ratio_ci95"] = 0.0  # the reference against itself: exactly 1
            summaries[s.label] = summary
            per_slot[s.label] = np.concatenate(self.acc[s.label].sum_rate)
        return PointResult(self.task.index, summaries, dict(self.failed), per_slot, dict(self.notes))


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _reset(env, seed: int | None) -> tuple[dict, dict]:
    obs, info = env.reset(seed=seed)
    return obs, true_observation(obs, info)


def _run_replay(p: _Point) -> None:
    spec = p.spec
    env = make_vec(spec.env_id, p.batch, p.task.env_kwargs)
    try:
        for c in range(spec.chunks):
            # one seeded reset per point; later chunks continue the same random stream
            obs, truth = _reset(env, p.task.seed if c == 0 else None)
            if c == 0:
                p.warm_up({s.label: obs for s in p.solvers}, {s.label: truth for s in p.solvers})
            for s in p.live():
                s.reset()
            for t in range(spec.episode_length):
                for s in p.solvers:
                    if s.label not in p.failed:
                        p.score(s, obs, truth, first=t == 0)
                    p.progress(1)
                if t < spec.episode_length - 1:
                    # the observation sequence does not depend on the action: any feasible one will do
                    obs, truth = p.step(env, p.problem.zero_action(obs), t)
            p.end_chunk()
    finally:
        env.close()


def _run_live(p: _Point) -> None:
    spec = p.spec
    envs = {s.label: make_vec(spec.env_id, p.batch, p.task.env_kwargs) for s in p.solvers}
    try:
        for c in range(spec.chunks):
            obs_of, truth_of = {}, {}
            for label, env in envs.items():
                obs_of[label], truth_of[label] = _reset(env, p.task.seed if c == 0 else None)
            if c == 0:
                p.warm_up(obs_of, truth_of)
            for s in p.live():
                s.reset()
            for t in range(spec.episode_length):
                for s in p.solvers:
                    if s.label not in p.failed:
                        action = p.score(s, obs_of[s.label], truth_of[s.label], first=t == 0)
                        if action is not None and t < spec.episode_length - 1:
                            obs_of[s.label], truth_of[s.label] = p.step(envs[s.label], action, t)
                    p.progress(1)
            p.end_chunk()
    finally:
        for env in envs.values():
            env.close()


def run_point(task: PointTask, progress: Callable[[int], None] | None = None) -> PointResult:
    """Run every solver of ``task.spec`` at sweep point ``task.index``; ``progress(n)`` is told of each
    solver step (``len(solvers) x episode_length x chunks`` in all)."""
    p = _Point(task, progress)
    (_run_live if task.spec.mode == "live" else _run_replay)(p)
    return p.result()
