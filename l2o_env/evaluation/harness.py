"""Run several solvers on the identical channel sequence and tabulate how they do.

:func:`evaluate` is the one entry point (the ``l2o eval`` CLI is a thin shell around it). It is assembled
from four layers, each in its own module:

- :mod:`~l2o_env.evaluation.spec`: the arguments become a frozen, JSON-serialisable ``EvalSpec`` (every
  default resolved, every mistake refused before any slot runs);
- :mod:`~l2o_env.evaluation.runner`: one sweep point is a pure task (``PointTask -> PointResult``) with
  its own random stream, ``SeedSequence(seed).spawn``: points are independent of each other and of the
  order in which they run;
- :mod:`~l2o_env.evaluation.backends`: where the tasks run (``"serial"``, or ``"ray"``:
  :mod:`~l2o_env.evaluation.ray_backend`, one Ray task per point and seed; the same table either way);
- :mod:`~l2o_env.evaluation.metrics`: what the table reports, with 95 % confidence intervals.

How a run is laid out
---------------------
``slots`` decisions per sweep point are split into ``episodes x episode_length``:

- ``episode_length`` (time steps per episode) defaults to 1 when slots are i.i.d. (``speed=None``,
  nothing to carry over from one slot to the next) and to :data:`MOBILE_EPISODE_LENGTH` when a speed
  is set (slots correlated in time, so stateful solvers such as warm-started WMMSE have something to
  exploit); ``episodes = ceil(slots / episode_length)``.
- The episodes run in parallel through the env's native vector env, ``B`` at a time, where ``B`` is capped
  so that one batch of gain matrices stays near :data:`BATCH_BYTES` (a few thousand networks for K = 50,
  8 for K = 1000). Chunks are equal in size, so when ``episodes`` is not a multiple of the cap the run
  rounds up to the next multiple of the chunk count; the ``slots`` column gives the number evaluated.

Common random numbers
---------------------
At a sweep point every solver answers the same observations, each on a private copy, scored with the
problem's rate function (:mod:`l2o_env.evaluation.runner`: replay, or live when the weights depend on past
actions). Each point resets its env with its own seed from ``SeedSequence(seed)``; the same ``seed`` gives
the same table. Randomised solvers whose constructor takes ``seed`` (``random_power``) get ``seed=seed``
unless one is given (recorded with their kwargs). With ``mode="live"`` each solver's weighted sum rate
uses the weights its own actions led to (proportional fairness), so the ratio compares those utilities.

Aged and noisy channel state
----------------------------
Every action is scored on the true current channel, the one the env pays its reward on (``info``'s
``true_<key>``, :func:`l2o_env.envs.true_observation`), while solvers see only the observation; with perfect
CSI (the default) the two are the same. When the env's ``csi_delay`` or ``csi_error`` is set at some sweep
point, a *genie* row is added: the problem's reference solver on the true current channel, labelled
``"wmmse (perfect CSI)"`` (``spec.GENIE_SUFFIX``), its note saying so. It is an upper bound for what the
other rows can reach, and the default reference: the ratio column then says how much of the perfect-CSI
rate each solver keeps, and a ``speed`` sweep with ``csi_delay=1`` how much it loses to mobility. An
explicit ``reference`` still wins (``"wmmse"``: WMMSE on the observation, then an ordinary row unless
chosen); ``reference="NAME (perfect CSI)"`` makes the genie of registry solver NAME the reference.
``config["genie"]`` (label, solver name, whether it is the reference) and ``config["reference_genie"]``
record it. Solver classes that name constructor keywords in ``from_env`` (``wmmse_predictive``: ``rho``,
``csi_delay``, ``csi_error``) get them from each point's env unless given; the row's note shows the values.

Metrics (one row per solver x sweep point; :mod:`l2o_env.evaluation.metrics` defines them)
------------------------------------------------------------------------------------------
Means are over independent *units*: slots when ``episode_length == 1``, episodes otherwise (the slots of
an episode are correlated, so they are averaged first). Each mean comes with the half-width of its 95 %
confidence interval (``*_ci95``).

- ``mean_wsr`` (``wsr_ci95``): mean weighted sum rate per slot, bit/s/Hz; ``std_wsr`` its standard
  deviation over slots.
- ``mean_sum_rate`` (``sum_rate_ci95``): mean unweighted sum rate per slot, bit/s/Hz.
- ``ratio_to_reference`` (``ratio_ci95``): ``mean_wsr / mean_wsr(reference)`` at the same sweep point: the
  ratio of means, as the papers report it. The reference is ``reference`` (default: the problem's
  reference solver, WMMSE, or its genie row when the CSI is aged or noisy); it is added when not listed
  (``note`` says so).
- ``served_fraction``: fraction of links whose rate (averaged over the unit) exceeds ``served_rate``
  (0.01 bit/s/Hz); ``jain_index``: Jain's fairness index of the link rates, in ``[1/K, 1]``.
- ``time_per_slot_s``: wall-clock seconds of the solver's own calls (``act_batch``, or ``act`` per
  observation) divided by the number of slots: the batched cost of one decision. Each solver gets one
  untimed warm-up call on a few observations per sweep point (then ``reset()``), so one-off costs
  such as torch's lazy initialisation do not count.
- ``clipped_fraction``: fraction of slots whose action had an entry outside the feasible set (for power
  control ``[0, pmax]``) or not finite and was projected onto it before scoring (solvers built on
  :class:`solvers.Solver` project themselves, so they read 0).
- ``fading_correlation``: rho = J0(2 pi f_d T) of the point's speed (None without a speed).
- A solver that raises at a sweep point (a fixed-K MLP at another K, say) gets a row of NaNs there,
  ``slots = 0`` and ``note = "failed: <error>"`` (plus a ``RuntimeWarning``); the others go on. Only
  the reference failing ends the run.

Several seeds
-------------
``seeds=n`` (CLI ``--seeds n``) runs the whole evaluation ``n`` times, with the seeds ``seed, seed + 1, ...,
seed + n - 1``; each is exactly the one-seed evaluation of its seed (``EvalSpec.for_seed``: its own point
seeds, and randomised solvers the harness seeded get that seed), so seed 3 of ``seeds=4`` is
``evaluate(..., seed=3)``. The per-seed rows are kept (``EvaluationResult.seed_rows``, a ``seed`` key each;
saved in the JSON and the CSV). The table has one row per solver x point: ``mean_wsr``, ``mean_sum_rate`` and
``ratio_to_reference`` are the means over the seeds of the per-seed values, and their ``*_ci95`` the
half-widths of the Student-t 95 % interval over the seeds, ``t_{0.975, n-1} s / sqrt(n)``
(:func:`l2o_env.evaluation.metrics.mean_t_ci`; ``s`` the standard deviation of the ``n`` per-seed values):
run-to-run variation, the number to report. ``std_wsr``, ``served_fraction``, ``jain_index``,
``time_per_slot_s`` and ``clipped_fraction`` are means over the seeds; ``slots`` is the total and ``units``
the number of seeds. A solver that failed at any seed fails the row (its note names the seeds). With one
seed (the default) nothing of this applies and the table is the one-seed table.

Solvers
-------
A solver whose ``problems`` does not include the env's problem family is refused before any slot runs.
``pretrained=True`` given to a learned solver by registry name picks the shipped checkpoint trained on
the evaluated env (:func:`solvers.learned.select_pretrained`: env ID first, then the closest size); the
pick is recorded in the solver's kwargs and in the row's note. A checkpoint evaluated on another setting
than its training one gets ``"trained on ..."`` in its note (and a notice in ``config["notices"]``); on
another env ID that is also a ``RuntimeWarning``. A learned solver that was never trained nor loaded is
refused before any slot runs.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from l2o_env import _threads
from l2o_env.evaluation import metrics
from l2o_env.evaluation.backends import Backend, get_backend
from l2o_env.evaluation.parsing import ConfigError
from l2o_env.evaluation.results import EvaluationResult, jsonable
from l2o_env.evaluation.runner import make_tasks
from l2o_env.evaluation.spec import (  # noqa: F401  (re-exported: the public names of this module)
    ACTION_DEPENDENT_WEIGHTS,
    BATCH_BYTES,
    KNOBS,
    MOBILE_EPISODE_LENGTH,
    EvalSpec,
    build_spec,
    describe_env,
    explicit_kwargs,
    parse_reference,
    scenario_defaults,
)

__all__ = ["evaluate", "rerun", "run_spec", "KNOBS", "MOBILE_EPISODE_LENGTH", "BATCH_BYTES", "REFERENCE"]

#: Default reference solver of ``ratio_to_reference`` for power control (each problem names its own).
REFERENCE = "wmmse"
#: ``config["interval"]`` of a several-seed result: what its ``*_ci95`` columns are
SEED_INTERVAL = "95 % Student-t interval over the seeds of the per-seed values (n - 1 degrees of freedom)"
_METRICS = ("mean_wsr", "wsr_ci95", "std_wsr", "mean_sum_rate", "sum_rate_ci95", "ratio_to_reference", "ratio_ci95",
            "served_fraction", "jain_index", "time_per_slot_s", "clipped_fraction")


def evaluate(
    solvers,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    slots: int = 1000,
    seed: int = 0,
    sweep: Mapping[str, Iterable[Any]] | None = None,
    *,
    solver_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    reference: str | None = None,
    episode_length: int | None = None,
    max_batch: int | None = None,
    mode: str = "auto",
    served_rate: float = metrics.SERVED_RATE,
    backend: str | Backend = "serial",
    progress: bool = False,
    seeds: int = 1,
) -> EvaluationResult:
    """Evaluate ``solvers`` on ``env_id`` with common random numbers; one row per solver x sweep point.

    Args:
        solvers: registry names (``["wmmse", "max_power"]`` or ``"wmmse,max_power"``), ``(name, kwargs)``
            pairs, objects with ``act_batch(obs)`` and/or ``act(obs)``, or a dict ``{label: any of those}``
            to give them names (needed to list one solver twice with different kwargs). Objects are used
            as they are at every sweep point (a learned solver trained on one setting is tested
            unchanged on the others); registry solvers are built afresh at every point. The reference is
            added when no entry has its label.
        env_id: a registered ID, e.g. ``"PowerControl-IMAC-v0"`` (see ``l2o_env.scenarios.ENV_IDS``).
        env_kwargs: keyword arguments of ``gym.make`` (``num_links``, ``num_cells``, ``speed`` in m/s,
            ``density``, ``weights``, ...).
        slots: decisions per solver and sweep point (``episodes x episode_length``, see module docstring).
        seed: seeds the evaluation: same seed, same channels for every solver, same table.
        seeds: how many seeds to run, ``seed, seed + 1, ..., seed + seeds - 1`` (integer >= 1, default 1):
            each a whole evaluation; the table then reports means over the seeds with Student-t 95 %
            intervals, and ``seed_rows`` keeps the per-seed rows (see "Several seeds" above).
        sweep: one knob and its values, ``{"speed": [0, 3, 30]}`` (m/s), ``{"density": [0.5, 1, 2]}``
            (factor), or ``{"num_links": [10, 20, 30]}``; ``None`` evaluates ``env_kwargs`` alone.
        solver_kwargs: ``{name_or_label: {kwarg: value}}`` for solvers given by registry name (the
            reference's too, e.g. ``{"wmmse": {"max_iter": 500}}``).
        reference: the solver every ratio is taken to: a label among ``solvers`` or a registry name
            (``"LABEL=NAME"`` to label an added one), or a genie label ``"NAME (perfect CSI)"``; default:
            the env's problem's reference (``"wmmse"``), or its genie ``"wmmse (perfect CSI)"`` when the
            CSI is aged or noisy (``csi_delay`` / ``csi_error``; see the module docstring).
        episode_length: steps per episode; default 1 without mobility, :data:`MOBILE_EPISODE_LENGTH`
            with a speed.
        max_batch: cap on parallel envs (default from :data:`BATCH_BYTES` and K).
        mode: ``"replay"`` (one env, every solver answers its observations), ``"live"`` (one env per
            solver, same seed, each stepped with its own actions; needed when the weights depend on
            past actions), or ``"auto"`` (live exactly when ``weights`` is action-dependent).
        served_rate: bit/s/Hz above which a link counts as served (``served_fraction``).
        backend: where the sweep points run: ``"serial"`` (the default: this process), ``"ray"`` (one Ray task
            per sweep point and seed, on a local Ray or the one already initialised; needs the ``ray`` extra and
            registry solvers only; :class:`~l2o_env.evaluation.ray_backend.RayBackend` takes an ``address``
            and a CPU cap), or a :class:`~l2o_env.evaluation.backends.Backend` instance. Every backend gives
            the same table (timings aside).
        progress: show a tqdm bar on stderr.

    Returns:
        :class:`EvaluationResult` (``.rows``, ``.table()``, ``.save(path)``, ``.plot(path)``).

    Raises:
        ConfigError (a ``ValueError``): unknown env, solver or knob, bad keyword, malformed sweep, a solver
        of another problem family, an untrained learned solver, no shipped checkpoint for ``pretrained=True``.
    """
    backend = get_backend(backend)  # a missing extra fails before the envs and solvers are built
    spec, objects, rhos = build_spec(solvers, env_id, env_kwargs, slots, seed, sweep, solver_kwargs=solver_kwargs,
                                     reference=reference, episode_length=episode_length, max_batch=max_batch,
                                     mode=mode, served_rate=served_rate, seeds=seeds)
    return run_spec(spec, objects, rhos=rhos, backend=backend, progress=progress)


def run_spec(spec: EvalSpec, objects: Mapping[str, Any] | None = None, *, rhos: list | None = None,
             backend: str | Backend = "serial", progress: bool = False) -> EvaluationResult:
    """Run a built :class:`EvalSpec` (``objects``: the user's solver objects by label) and tabulate it."""
    backend = get_backend(backend)
    if objects is None:  # a spec read back from a file: registry solvers only
        missing = [s.label for s in spec.solvers if s.name is None]
        if missing:
            raise ConfigError(f"rerun: solver(s) {missing} were user objects, not registry names; rebuild them and "
                              "call evaluate() instead")
        objects = {s.label: _build(s) for s in spec.solvers}
    if rhos is None:
        rhos = [None] * len(spec.sweep_values)
    spinning = _threads.warn_if_spinning()
    tasks = make_tasks(spec, objects)

    from tqdm.auto import tqdm

    total = len(tasks) * spec.chunks * spec.episode_length * len(spec.solvers)
    knob = spec.sweep_knob
    with tqdm(total=total, disable=not progress, file=sys.stderr, unit="step", desc=spec.env_id, leave=False) as bar:
        def started(task):
            where = (f" {knob}={task.value}" if knob is not None else "") + (
                f" seed={task.spec.seed}" if spec.seeds > 1 else "")
            if where:
                bar.set_description(spec.env_id + where)

        results = backend.map(tasks, progress=bar.update, on_start=started)

    many = spec.seeds > 1
    rows: list[dict] = []  # with several seeds: one per solver x point x seed (then averaged over the seeds)
    notices: list[dict] = []
    per_slot: dict[tuple, np.ndarray] = {}  # with several seeds keyed (label, value, seed)
    training: dict[int, dict[str, str]] = {}
    failed: dict[tuple[int, str], dict[int, str]] = {}  # (point, label) -> {seed: message}
    for task, res in zip(tasks, results, strict=True):
        value, seed = task.value, task.spec.seed
        where = f" at {knob}={value}" if knob else ""
        if task.index not in training:  # once per point, whatever the number of seeds
            training[task.index], point_notices = _training_notes(spec, objects, spec.points()[task.index])
            for n in point_notices:
                if n not in notices:
                    notices.append(n)
                if n["level"] == "warning":
                    warnings.warn(n["text"] + where, RuntimeWarning, stacklevel=3)
        trained_notes = training[task.index]
        where += f" with seed {seed}" if many else ""
        for s in task.spec.solvers:
            row = {"env_id": spec.env_id, "sweep_knob": knob or "", "sweep_value": value, "solver": s.label,
                   "fading_correlation": rhos[task.index]}
            tail = {"seed": seed} if many else {}
            note = "; ".join(filter(None, [s.note, res.notes.get(s.label, ""), trained_notes.get(s.label, "")]))
            if s.label in res.failed:
                warnings.warn(f"solver {s.label!r} failed{where}: {res.failed[s.label]}", RuntimeWarning, stacklevel=3)
                rows.append({**row, **dict.fromkeys(_METRICS, float("nan")), "slots": 0, "units": 0,
                             "note": "; ".join(filter(None, [f"failed: {res.failed[s.label]}", note])), **tail})
                failed.setdefault((task.index, s.label), {})[seed] = res.failed[s.label]
                continue
            rows.append({**row, **res.summaries[s.label], "note": note, **tail})
            per_slot[(s.label, value, seed) if many else (s.label, value)] = res.per_slot_sum_rate[s.label]
    seed_rows: list[dict] = []
    if many:
        seed_rows = rows
        rows, per_slot = _over_seeds(spec, seed_rows, per_slot, failed)

    import l2o_env

    ref = spec.reference
    genie = spec.genie
    config = {
        "env_id": spec.env_id,
        "env_kwargs": jsonable(dict(spec.env_kwargs)),
        "scenario_defaults": scenario_defaults(spec.env_id),
        "problem": spec.problem,
        "seed": spec.seed,
        "slots": spec.slots,
        "episodes": spec.chunks * spec.parallel_envs,
        "episode_length": spec.episode_length,
        "unit": "slot" if spec.episode_length == 1 else "episode",
        "parallel_envs": spec.parallel_envs,
        "chunks": spec.chunks,
        "mode": spec.mode,
        "sweep": None if knob is None else {"knob": knob, "values": jsonable(list(spec.sweep_values)), **KNOBS[knob]},
        "solvers": [s.to_dict() for s in spec.solvers],
        "reference": ref.label,
        "reference_name": ref.name,
        "reference_added": ref.note.startswith("reference (added automatically)"),
        "reference_genie": ref.genie,
        "genie": None if genie is None else {"label": genie.label, "name": genie.name, "reference": genie.reference,
                                             "sees": "the true current channel (perfect CSI)"},
        "served_rate": spec.served_rate,
        "seeds": spec.seeds,
        **({"interval": SEED_INTERVAL} if many else {}),
        "backend": backend.name,
        "notices": notices,
        "omp_wait_policy": _threads.OMP_WAIT_POLICY,
        "omp_threads_spin": spinning,
        "spec": spec.to_dict(),
        "l2o_env_version": l2o_env.__version__,
        **_versions(),
    }
    return EvaluationResult(rows=rows, config=config, per_slot_sum_rate=per_slot, seed_rows=seed_rows)


def _over_seeds(spec: EvalSpec, seed_rows: list[dict], per_slot: Mapping[tuple, np.ndarray],
                failed: Mapping[tuple[int, str], Mapping[int, str]]) -> tuple[list[dict], dict]:
    """One row per solver x point from the per-seed rows (see "Several seeds" in the module docstring), and
    the per-slot sum rates of every seed concatenated in seed order."""
    seeds = spec.seed_values
    labels = [s.label for s in spec.solvers]
    # the rows of the first seed give the order; row j of seed k is row j of the first seed
    per_seed = len(seed_rows) // len(seeds)
    rows, slots = [], {}
    for j, first in enumerate(seed_rows[:per_seed]):
        group = seed_rows[j::per_seed]
        label, value = first["solver"], first["sweep_value"]
        out = {k: first[k] for k in ("env_id", "sweep_knob", "sweep_value", "solver", "fading_correlation")}
        bad = failed.get((j // len(labels), label), {})
        if bad:  # a mean over the seeds where it ran would mislead: the row fails, as with one seed
            which = ", ".join(map(str, bad))
            seed, msg = next(iter(bad.items()))
            base = next((r["note"] for r in group if r["seed"] not in bad), None)
            if base is None:  # it failed at every seed: its note without the first seed's failure
                base = group[0]["note"].removeprefix(f"failed: {bad[group[0]['seed']]}").removeprefix("; ")
            rows.append({**out, **dict.fromkeys(_METRICS, float("nan")), "slots": 0, "units": 0,
                         "note": "; ".join(filter(None, [f"failed at seed(s) {which}: {msg}", base]))})
            continue
        for column, half in (("mean_wsr", "wsr_ci95"), ("mean_sum_rate", "sum_rate_ci95"),
                             ("ratio_to_reference", "ratio_ci95")):
            out[column], out[half] = metrics.mean_t_ci([r[column] for r in group])
        for column in ("std_wsr", "served_fraction", "jain_index", "time_per_slot_s", "clipped_fraction"):
            out[column] = float(np.mean([r[column] for r in group]))
        out["slots"] = sum(r["slots"] for r in group)
        out["units"] = len(group)  # the interval is over seeds
        out["note"] = first["note"]
        rows.append({k: out[k] for k in first if k in out})
        slots[(label, value)] = np.concatenate([per_slot[(label, value, s)] for s in seeds])
    return rows, slots


def _build(s) -> Any:
    from l2o_env.evaluation.spec import make_solver

    return make_solver(s.label, s.name, s.kwargs)


def _training_notes(spec: EvalSpec, objects: Mapping[str, Any], point_kwargs: Mapping[str, Any]
                    ) -> tuple[dict[str, str], list[dict]]:
    """``{label: note}`` for checkpoints evaluated away from their training setting, and the notices."""
    env_id = spec.env_id
    # (kwargs compared after dropping defaults: {} and {"num_links": 10} are the same IC)
    here = explicit_kwargs(env_id, point_kwargs)
    notes, notices = {}, []
    for s in spec.solvers:
        trained = getattr(objects.get(s.label), "trained_on", None)
        if not trained or not trained[0]:
            continue
        t_env, t_kwargs = trained[0], dict(trained[1] or {})
        if t_env == env_id and explicit_kwargs(t_env, t_kwargs) == here:
            continue
        text = f"trained on {describe_env(t_env, t_kwargs)}"
        notes[s.label] = text
        level = "warning" if t_env != env_id else "note"
        notices.append({"level": level, "solver": s.label,
                        "text": f"solver {s.label!r} was {text}, evaluated on {describe_env(env_id, point_kwargs)}"})
    return notes, notices


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


def rerun(config: Mapping[str, Any] | EvaluationResult | str, *, progress: bool = False,
          backend: str | Backend = "serial", **overrides) -> EvaluationResult:
    """Run again the evaluation described by a saved configuration (a JSON path, a result, or its ``config``).

    Only solvers built from the registry can be rebuilt (their name and kwargs are in the file); a
    result that holds user objects raises ``ConfigError`` naming them. ``overrides`` replace arguments of
    :func:`evaluate` (e.g. ``slots=100``, ``seed=3``, ``seeds=5``); a randomised solver the harness seeded
    follows the new ``seed``, as in a fresh :func:`evaluate`.
    """
    if isinstance(config, str) or hasattr(config, "__fspath__"):
        config = EvaluationResult.load(config).config
    elif isinstance(config, EvaluationResult):
        config = config.config
    missing = [s["label"] for s in config["solvers"] if s.get("name") is None]
    if missing:
        raise ConfigError(f"rerun: solver(s) {missing} were user objects, not registry names; rebuild them and "
                          "call evaluate() instead")
    from l2o_env.evaluation.spec import _untuple

    def kwargs_of(s: Mapping[str, Any]) -> dict:
        # a seed the harness filled in is filled in again, from the (possibly new) evaluation seed
        kw = _untuple(s.get("kwargs") or {})
        return {k: v for k, v in kw.items() if k != "seed"} if s.get("seeded") else kw

    ref_label = config.get("reference", REFERENCE)
    # the added reference and the genie row are added again by evaluate (their kwargs by label)
    added = [s for s in config["solvers"] if (config.get("reference_added", False) and s["label"] == ref_label)
             or s.get("genie")]
    specs = {s["label"]: (s["name"], kwargs_of(s)) for s in config["solvers"] if s not in added}
    ref_kwargs = {s["label"]: kwargs_of(s) for s in added if kwargs_of(s)}
    reference = ref_label
    ref_added = [s for s in added if s["label"] == ref_label and not s.get("genie")]
    if ref_added and ref_added[0]["name"] != ref_label:
        reference = f"{ref_label}={ref_added[0]['name']}"
    sweep = None if not config.get("sweep") else {config["sweep"]["knob"]: config["sweep"]["values"]}
    saved = config.get("spec") or {}
    args = dict(solvers=specs, env_id=config["env_id"], env_kwargs=_untuple(config.get("env_kwargs") or {}),
                slots=config["slots"], seed=config["seed"], sweep=sweep, solver_kwargs=ref_kwargs or None,
                reference=reference, episode_length=config.get("episode_length"), mode=config.get("mode", "auto"),
                served_rate=config.get("served_rate", metrics.SERVED_RATE), backend=backend, progress=progress,
                seeds=config.get("seeds", 1))
    if "max_batch" in saved:
        args["max_batch"] = saved["max_batch"]
    args.update(overrides)
    return evaluate(**args)
