"""The one training loop of the learned solvers: :func:`train`, called by every ``LearnedSolver.fit``.

``solver.fit(sampler, *, steps=None, seed=0, progress=True, validation=None, callback=None)`` is
``train(solver, sampler, steps=..., seed=..., progress=..., validation=..., callbacks=callback)``. The loop
is the same for every solver; each solver supplies its parts through the hooks of
:class:`~solvers.learned.LearnedSolver` (defaults in brackets):

============================================  ===============================================================
hook                                          role
============================================  ===============================================================
``default_steps``, ``batch_size``,            ``config.steps``, ``config.batch_size``, ``config.val_size``,
``val_size``, ``val_every``                   ``config.val_every`` (the MLP's ``eval_every``)
``patience``                                  stop after this many validations without a new best [0: never]
``grad_clip``, ``skip_nonfinite``             clip the global gradient norm [0: off]; skip the optimiser step
                                              when that norm is not finite [False] (UWMMSE: both on)
``adapt_to(validation)``                      let a fresh model fit the data's shape [no-op] (MLP: K and N)
``make_optimizer(steps)``                     [Adam at ``config.lr``] (MLP: RMSprop)
``make_scheduler(optimizer, steps)``          a torch LR scheduler or ``None`` [None]; stepped after every
                                              optimiser step, except ``ReduceLROnPlateau``, stepped at every
                                              validation on ``logs[solver.plateau_metric]`` (MLP: ``val_mse``;
                                              WCGCN: cosine decay per step)
``start_training(sampler, validation)``       per-fit set-up after the initialisation (MLP: WMMSE labels;
                                              WCGCN: feature normalisation of a fresh model)
``training_batch(sampler, step)``             one batch [``sampler(batch_size)``, checked, as tensors; with
                                              imperfect CSI plus ``batch["truth"]``, below]
``loss(batch)``                               scalar tensor to minimise [minus the mean weighted sum rate of
                                              ``forward``, scored on ``batch.get("truth", batch)``] (MLP: MSE
                                              to WMMSE's powers)
``validation_metrics()``                      extra per-validation numbers [none] (MLP: ``val_mse``)
``end_training()``                            extra history entries, frees per-fit state [none]
``training_meta()``                           extra :attr:`meta` entries [none]
============================================  ===============================================================

The loop: check the arguments; seed torch with ``seed``; take ``validation`` (or draw ``sampler(val_size)``
once); ``adapt_to``; initialise (rule below); ``start_training``; validate at step 0; then for each step
draw a batch, minimise ``loss`` (one optimiser step), validate every ``val_every`` steps and at the last
step. The validation metric is :meth:`~solvers.learned.LearnedSolver.ratio_to_wmmse` on the fixed
validation batch (the solver's own ``act_batch`` output, e.g. the MLP's rounded powers; WMMSE's mean
WSR on it is computed once). The weights (and buffers) with the best validation ratio are kept at the
end, the step-0 weights included, so ``fit`` never returns a model worse on its validation batch than
the one it started from.

Aged or noisy CSI (the sampler's env has ``csi_delay > 0`` or ``csi_error > 0``,
:func:`solvers.learned.imperfect_csi`): the network sees the observation, the loss and the validation score
the true current channel. The loop draws ``sampler(B, with_truth=True)`` (``(obs, truth)``, see
:class:`l2o_env.data.ObservationSampler`) for the validation batch and, through the default
``training_batch``, for every training batch, which then carries the checked truth tensors as
``batch["truth"]`` (a dict of the same keys, the current slot without a history); a loss computes the
network's output from the batch's own keys and scores it on ``batch.get("truth", batch)``. The validation
ratio is the solver's mean WSR (acting on the observation, scored on the truth) over WMMSE's on the TRUE
channel, the genie reference of ``l2o eval`` with imperfect CSI (history and meta ``reference``:
``"wmmse (perfect CSI)"``; ``"wmmse"`` otherwise). ``validation=`` may then be a pair ``(obs, truth)``
(a plain observation is scored on itself). ``start_training`` receives the validation batch with its
truth under ``"truth"``. With perfect CSI nothing of this happens: the batches, the losses and the fit are
those of before.

Fit on a loaded or already fitted model (one rule for every solver). A model that was loaded
(``pretrained=``, ``checkpoint=``, :meth:`load`) or fitted before CONTINUES from its weights and its
buffers (WCGCN's feature normalisation): nothing is re-initialised; ``meta["steps"]`` adds this fit's
steps to the earlier ones. The optimiser and the scheduler start afresh (a checkpoint does not store
them). A fresh model (never loaded nor fitted; ``random_init=True`` does not count) is rebuilt with torch
seeded by ``seed``, weights and buffers alike, so ``fit(seed=s)`` gives the same model whatever happened
to the solver or to torch's random state before. Weights set by hand on a fresh model are therefore
re-drawn; save and load them (or fit once) to continue from them. ``seed`` also seeds torch's other
random draws in the fit (the MLP's shuffling); the sampler has its own seed.

History (the dict ``fit`` returns; one schema for every solver):

- ``step``, ``loss``: every training step run (1, 2, ...) and its training loss;
- ``val_step``, ``val_ratio``, ``lr``: every validation (step 0 = before the first step, then every
  ``val_every`` steps and the last step), its ratio to WMMSE and the learning rate at that point;
- ``best_val_ratio`` (float), ``best_step`` (int; 0: the starting weights stayed the best): the weights
  kept;
- ``wall_time``, ``cpu_time``: seconds of this fit (``time.perf_counter`` / ``time.process_time``, all
  threads of the process);
- ``reference`` (str): what the validation ratio divides by, ``"wmmse"`` or (imperfect CSI, validation
  with truth) ``"wmmse (perfect CSI)"``;
- ``stopped_early`` (bool) and ``stop_reason`` (``None``, ``"patience"`` or ``"callback"``);
- ``skipped_steps`` (int): optimiser steps skipped for a non-finite gradient (``skip_nonfinite``);
- solver extras: per-validation lists from ``validation_metrics`` (MLP ``val_mse``) and the entries of
  ``end_training`` (MLP ``label_time``, seconds spent on WMMSE labels).

Meta (written into ``solver.meta`` by ``fit``, saved with the checkpoint):

- ``env_id``, ``env_kwargs``: the sampler's attributes of those names (``l2o_env.data.ObservationSampler``
  has them); a sampler without them keeps what ``meta`` already says (set by the caller or a loaded
  checkpoint), else ``None``;
- ``steps``: training steps of the model in total, over every fit (and the fits before it was saved);
- ``seed`` (of the last fit), ``sampler_seed`` (the sampler's ``seed`` attribute or ``None``);
- ``val_ratio_to_wmmse``, ``val_size``, ``best_step``, ``wall_time``: of the last fit (its history's
  ``best_val_ratio``, the validation batch's size, ``best_step`` and ``wall_time``);
- ``reference`` (of the last fit's validation ratio, as in the history);
- ``skipped_steps`` (of the last fit), plus the solver's ``training_meta`` (MLP ``round_output``).

Keys of the former per-solver schemas (``train_steps``, ``val_ratio``, ``config``) are removed by a fit, and
so are the keys it makes stale, ``eval`` and ``command`` (an evaluation of the earlier weights, the command
that trained them; ``l2o train`` and the example scripts write both after ``fit``).

Callbacks (stable-baselines3 style): ``callback=`` takes a :class:`Callback`, a plain callable or a list
of them. :meth:`Callback.on_step` runs after every optimiser step, :meth:`Callback.on_validation` after
every validation but the one at step 0; a plain callable ``fn(step, logs)`` is called as
``on_validation``. **Returning ``False`` (exactly; not ``None`` or ``0``) stops training**; any other value
continues. A stop from ``on_step`` first validates that step when it was not a validation step; the best
validated weights are restored either way and the history says ``stop_reason="callback"``.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np
import torch

from l2o_env.validation import integer
from l2o_env.problems import Problem, get_problem, problem_of_obs

if TYPE_CHECKING:  # pragma: no cover
    from solvers.learned import LearnedSolver

__all__ = ["train", "Callback", "CallbackList", "FunctionCallback", "as_callback", "HISTORY_KEYS", "META_KEYS",
           "GENIE_REFERENCE"]

#: keys every history has (solver extras come on top)
HISTORY_KEYS = ("step", "loss", "val_step", "val_ratio", "lr", "best_val_ratio", "best_step", "wall_time", "cpu_time",
                "stopped_early", "stop_reason", "skipped_steps", "reference")
#: keys every fit writes into ``solver.meta`` (solver extras come on top)
META_KEYS = ("env_id", "env_kwargs", "steps", "seed", "sampler_seed", "val_ratio_to_wmmse", "val_size", "best_step",
             "wall_time", "skipped_steps", "reference")
#: the ``reference`` of a validation scored on the true channel (imperfect CSI): WMMSE on the truth
GENIE_REFERENCE = "wmmse (perfect CSI)"
_LEGACY_META = ("train_steps", "val_ratio", "config")
#: meta a fit makes stale (an evaluation of the weights before it; the command that trained them): scripts
#: write them after ``fit``
_STALE_META = ("eval", "command")


class Callback:
    """Base class of training callbacks; override the methods you need.

    ``on_step`` and ``on_validation`` return ``False`` to stop training (any other value continues);
    ``logs`` is a fresh dict each call:

    - ``on_step``: ``step``, ``loss`` (this step's), ``lr``;
    - ``on_validation``: ``step``, ``loss`` (mean training loss since the previous validation), ``val_ratio``,
      ``best_val_ratio``, ``best_step``, ``lr`` and the solver's ``validation_metrics`` (MLP ``val_mse``).
    """

    def on_train_start(self, solver: "LearnedSolver", logs: dict) -> None:
        """Before the first step; ``logs``: ``steps``, ``seed``, ``val_ratio`` (step 0), ``fresh`` (bool)."""

    def on_step(self, step: int, logs: dict) -> bool | None:
        """After optimiser step ``step``."""
        return None

    def on_validation(self, step: int, logs: dict) -> bool | None:
        """After the validation at ``step`` (not called for the one at step 0)."""
        return None

    def on_train_end(self, history: dict) -> None:
        """After the best weights are restored; ``history`` is what ``fit`` returns."""


class FunctionCallback(Callback):
    """A plain ``fn(step, logs)`` called after every validation (the ``callback=`` argument of ``fit``)."""

    def __init__(self, fn: Callable[[int, dict], Any]):
        self.fn = fn

    def on_validation(self, step: int, logs: dict) -> bool | None:
        return self.fn(step, logs)


class CallbackList(Callback):
    """Several callbacks, called in order; training stops when any of them returns ``False``."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)

    def on_train_start(self, solver, logs):
        for cb in self.callbacks:
            cb.on_train_start(solver, dict(logs))

    def on_step(self, step, logs):
        return False if any([_stops(cb.on_step(step, dict(logs))) for cb in self.callbacks]) else None

    def on_validation(self, step, logs):
        return False if any([_stops(cb.on_validation(step, dict(logs))) for cb in self.callbacks]) else None

    def on_train_end(self, history):
        for cb in self.callbacks:
            cb.on_train_end(history)


def _stops(result: Any) -> bool:
    return result is False or (isinstance(result, np.bool_) and not result)


def as_callback(obj: Any) -> Callback | None:
    """``None``, a :class:`Callback`, a plain callable ``fn(step, logs)`` or a list/tuple of these -> one
    :class:`Callback` (or ``None``)."""
    if obj is None:
        return None
    if isinstance(obj, Callback):
        return obj
    if isinstance(obj, (list, tuple)):
        parts = [as_callback(o) for o in obj]
        return CallbackList([p for p in parts if p is not None])
    if callable(obj):
        return FunctionCallback(obj)
    raise TypeError(f"callback must be a solvers.training.Callback, a callable fn(step, logs) or a list of them, "
                    f"got {type(obj).__name__}")


def _checked_obs(raw: Any, who: str, families: Iterable[str]) -> tuple[Problem, dict[str, np.ndarray]]:
    """The problem of ``raw`` among ``families`` (the solver class's ``problems``) and the observation dict
    with that family's keys checked (float64, ``Problem.check_obs``) and every other key kept."""
    names = sorted(families)
    problem = get_problem(names[0]) if len(names) == 1 else problem_of_obs(raw, names)
    checked = problem.check_obs(raw, batched=True, who=who)
    return problem, {**{k: np.asarray(v) for k, v in raw.items() if k not in checked}, **checked}


def _checked_truth(raw: Any, who: str, problem: Problem, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The truth of a checked observation ``obs``: a dict with ``problem``'s keys, checked, whose batch size and
    channel shape are ``obs``'s."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{who}: the truth must be a dict of batched arrays (the observation's keys), got "
                         f"{type(raw).__name__}")
    checked = problem.check_obs(raw, batched=True, who=who)
    for key in checked:
        if key in obs and np.shape(checked[key]) != np.shape(obs[key]):
            raise ValueError(f"{who}: truth[{key!r}] has shape {np.shape(checked[key])}, the observation's "
                             f"{np.shape(obs[key])}; the truth must be the same slots as the observation")
    return {**{k: np.asarray(v) for k, v in raw.items() if k not in checked}, **checked}


def _scenario(sampler: Any, meta: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(env_id, env_kwargs)`` of the sampler, else what meta already says, else ``None``."""
    env_id = getattr(sampler, "env_id", None)
    kwargs = getattr(sampler, "env_kwargs", None)
    if env_id is None:
        env_id = meta.get("env_id")
        if kwargs is None:
            kwargs = meta.get("env_kwargs")
    elif kwargs is None and env_id == meta.get("env_id"):
        kwargs = meta.get("env_kwargs")
    if isinstance(kwargs, Mapping):
        kwargs = dict(kwargs)
    return env_id, kwargs


def train(solver: "LearnedSolver", sampler: Callable[[int], Mapping[str, np.ndarray]], *, steps: int | None = None,
          seed: int = 0, progress: bool = True, validation: Any = None,
          callbacks: Any = None) -> dict:
    """Train ``solver`` on ``sampler``'s observations; returns the history (schemas in the module docstring).

    Args:
        solver: a :class:`~solvers.learned.LearnedSolver` (it supplies the hooks listed above).
        sampler: ``sampler(batch) -> dict`` of batched float64 observation arrays, fresh on every call
            (e.g. :class:`l2o_env.data.ObservationSampler`).
        steps: optimiser steps, an integer >= 0 (default ``solver.default_steps``); 0 only validates.
        seed: seeds torch: the initial weights of a fresh model and any random draw of the fit.
        progress: a tqdm bar on stderr with the loss and the validation ratio.
        validation: a fixed batched observation to validate on, or a pair ``(obs, truth)`` (scored on the truth,
            ratio to WMMSE on the truth); default ``sampler(solver.val_size)`` drawn once (with the truth when
            the sampler's CSI is imperfect).
        callbacks: a :class:`Callback`, a callable ``fn(step, logs)`` (called after each validation) or a list
            of them; returning ``False`` stops training.

    Raises:
        TypeError: ``sampler`` is not callable, or ``callbacks`` is none of the above.
        ValueError: ``steps``/``seed`` is not an integer >= 0, an observation fails its checks, or (MLP) a
            trained model does not fit the sampler's shapes.
    """
    from tqdm.auto import tqdm

    from solvers.learned import imperfect_csi, reference_wsr

    owner = f"{type(solver).__name__}.fit"
    steps = solver.default_steps if steps is None else steps
    steps = integer(owner, "steps", steps, minimum=0)
    seed = integer(owner, "seed", seed, minimum=0)
    if not callable(sampler):
        raise TypeError(f"{owner}: sampler must be callable as sampler(batch) -> dict, got {type(sampler).__name__}")
    callback = as_callback(callbacks)
    val_every = integer(owner, "val_every", solver.val_every)
    patience = integer(owner, "patience", solver.patience, minimum=0)
    clip = float(solver.grad_clip or 0.0)
    skip_nonfinite = bool(solver.skip_nonfinite)

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    raw_truth = None
    if validation is None:
        if imperfect_csi(sampler):  # aged or noisy CSI: validate on the true channel
            raw_val, raw_truth = sampler(solver.val_size, with_truth=True)
        else:
            raw_val = sampler(solver.val_size)
    elif isinstance(validation, (tuple, list)):
        if len(validation) != 2:
            raise ValueError(f"{owner}: validation must be an observation dict or a pair (obs, truth), got a "
                             f"{type(validation).__name__} of length {len(validation)}")
        raw_val, raw_truth = validation
    else:
        raw_val = validation
    who = f"{owner}: validation" if validation is not None else f"{owner}: sampler output"
    val_problem, val = _checked_obs(raw_val, who, type(solver).problems)
    val_truth = None if raw_truth is None else _checked_truth(raw_truth, f"{who} (truth)", val_problem, val)
    solver.adapt_to(val)

    # --- the one initialisation rule -------------------------------------------------------------
    fresh = not solver._trained
    previous_steps = 0 if fresh else _previous_steps(solver.meta)
    if fresh:
        torch.manual_seed(seed)
        solver.model = solver.build().to(solver.device)
    solver._trained = True  # from here on the model may act (validation acts)

    solver.start_training(sampler, val if val_truth is None else {**val, "truth": val_truth})
    optimizer = solver.make_optimizer(steps)
    scheduler = solver.make_scheduler(optimizer, steps)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]

    hist: dict[str, Any] = {"step": [], "loss": [], "val_step": [], "val_ratio": [], "lr": []}
    # WMMSE on the fixed validation batch, once: on the true channel when there is one (the genie)
    reference = reference_wsr(val if val_truth is None else val_truth)
    reference_name = "wmmse" if val_truth is None else GENIE_REFERENCE
    best = {"ratio": -math.inf, "step": 0, "state": None}
    since_best, skipped, stop_reason = 0, 0, None
    run_loss, run_n = 0.0, 0

    def validate(step: int) -> dict:
        nonlocal since_best, run_loss, run_n
        solver.model.eval()
        ratio = solver.ratio_to_wmmse(val, reference) if val_truth is None else \
            solver.ratio_to_wmmse(val, reference, truth=val_truth)
        extras = solver.validation_metrics()
        lr = float(optimizer.param_groups[0]["lr"])
        hist["val_step"].append(step)
        hist["val_ratio"].append(ratio)
        hist["lr"].append(lr)
        for key, value in extras.items():
            hist.setdefault(key, []).append(value)
        if best["state"] is None or ratio > best["ratio"] or (math.isnan(best["ratio"]) and not math.isnan(ratio)):
            best.update(ratio=ratio, step=step, state=copy.deepcopy(solver.model.state_dict()))
            since_best = 0
        elif step > 0:
            since_best += 1
        logs = {"step": step, "loss": run_loss / run_n if run_n else math.nan, "val_ratio": ratio,
                "best_val_ratio": best["ratio"], "best_step": best["step"], "lr": lr, **extras}
        run_loss, run_n = 0.0, 0
        if plateau and step > 0:
            scheduler.step(logs[solver.plateau_metric])
        return logs

    first = validate(0)
    if callback is not None:
        callback.on_train_start(solver, {"steps": steps, "seed": seed, "val_ratio": first["val_ratio"], "fresh": fresh})
    bar = tqdm(total=steps, desc=solver.name, disable=not progress, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        for step in range(1, steps + 1):
            solver.model.train()
            batch = solver.training_batch(sampler, step)
            loss = solver.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0 or skip_nonfinite:
                norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)
                ok = bool(torch.isfinite(norm)) or not skip_nonfinite
            else:
                ok = True
            if ok:
                optimizer.step()
            else:  # a degenerate batch (e.g. 0/0 in a saturated layer): skip it rather than poison the optimiser
                skipped += 1
            if scheduler is not None and not plateau:
                scheduler.step()
            value = float(loss.detach())
            hist["step"].append(step)
            hist["loss"].append(value)
            run_loss, run_n = run_loss + value, run_n + 1
            bar.update(1)
            stop = callback is not None and _stops(callback.on_step(
                step, {"step": step, "loss": value, "lr": float(optimizer.param_groups[0]["lr"])}))
            if stop:
                stop_reason = "callback"
            if step % val_every == 0 or step == steps or stop:
                logs = validate(step)
                bar.set_postfix(loss=f"{logs['loss']:.4g}", val=f"{logs['val_ratio']:.4f}",
                                best=f"{logs['best_val_ratio']:.4f}")
                if callback is not None and _stops(callback.on_validation(step, logs)) and not stop:
                    stop, stop_reason = True, "callback"
                if not stop and patience and since_best >= patience:
                    stop, stop_reason = True, "patience"
            if stop:
                break
    finally:
        bar.close()
        extras = solver.end_training()

    solver.model.load_state_dict(best["state"])
    solver.model.eval()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    hist.update(best_val_ratio=best["ratio"], best_step=best["step"], wall_time=wall, cpu_time=cpu,
                stopped_early=stop_reason is not None, stop_reason=stop_reason, skipped_steps=skipped,
                reference=reference_name, **extras)

    env_id, env_kwargs = _scenario(sampler, solver.meta)
    for key in _LEGACY_META + _STALE_META:
        solver.meta.pop(key, None)
    sampler_seed = getattr(sampler, "seed", None)
    solver.meta.update(
        env_id=env_id, env_kwargs=env_kwargs, steps=previous_steps + len(hist["step"]), seed=seed,
        sampler_seed=int(sampler_seed) if isinstance(sampler_seed, (int, np.integer)) else None,
        val_ratio_to_wmmse=best["ratio"], val_size=val_problem.batch_size(val), best_step=best["step"], wall_time=wall,
        skipped_steps=skipped, reference=reference_name, **solver.training_meta())
    if callback is not None:
        callback.on_train_end(hist)
    return hist


def _previous_steps(meta: Mapping[str, Any]) -> int:
    """Training steps a loaded model already had (``steps``; ``train_steps`` in older UWMMSE checkpoints)."""
    for key in ("steps", "train_steps"):
        value = meta.get(key)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
    return 0
