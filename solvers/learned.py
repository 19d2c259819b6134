"""Shared machinery of the learned solvers: config, torch forward, save/load, shipped checkpoints.

A learned solver subclasses :class:`LearnedSolver`, defines a ``Config`` dataclass (the paper's
hyper-parameters as defaults), builds its ``torch.nn.Module`` in :meth:`LearnedSolver.build`, maps a
batched observation to powers in :meth:`LearnedSolver.forward` (differentiable, used by ``fit`` and by
``act_batch`` under ``no_grad``) and trains with ``fit(sampler, ...)``: the one loop of
:mod:`solvers.training`, into which the solver plugs its loss, optimiser and defaults through the hooks
of :class:`LearnedSolver` (the schemas of the history and of :attr:`LearnedSolver.meta`, and the rule for
fitting a loaded model, are in that module's docstring).

A checkpoint is ONE file written by :func:`torch.save`: ``{"format": "l2o_env.solver/1", "solver": name,
"config": dataclasses.asdict(config), "state_dict": ..., "meta": {...}}``; :meth:`load` rebuilds the
model from the config and loads the weights with ``weights_only=True``. :meth:`save` writes atomically
(a temporary file renamed over the destination: an interrupted save leaves the old file intact). A
missing file raises ``FileNotFoundError``; an empty, truncated or foreign file, another format version,
another solver's model or weights that do not fit the config raise a one-line ``ValueError`` naming the
file and the mismatch.

``sampler(batch) -> dict`` is any callable returning batched float64 observation arrays (``gain (B,K,K)``,
``weight``, ``noise``, ``pmax`` ``(B,K)``, plus optional keys); :class:`l2o_env.data.ObservationSampler`
builds one from an env ID. Solvers never import an env class.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from l2o_env.atomic import atomic_write
from l2o_env.problems import problem_of_obs
from l2o_env.rates import weighted_sum_rate_torch
from l2o_env.validation import integer
from solvers.base import Solver
from solvers.wmmse import resolve_device
from solvers.wmmse_core import wmmse_run

__all__ = ["LearnedSolver", "CHECKPOINT_DIR", "FORMAT", "to_torch", "wmmse_reference", "shipped_checkpoints",
           "describe_training", "select_pretrained", "imperfect_csi", "imperfect_csi_kwargs"]

FORMAT = "l2o_env.solver/1"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

Sampler = Callable[[int], Mapping[str, np.ndarray]]


def imperfect_csi(sampler: Any) -> bool:
    """Whether ``sampler``'s observations are aged or noisy channel state, so that training scores the
    true channel (``sampler(B, with_truth=True)`` -> ``(obs, truth)``; :mod:`solvers.training`).

    True when the sampler's ``config`` (:class:`l2o_env.data.ObservationSampler` has one) says
    ``csi_delay > 0`` or ``csi_error > 0``; a custom sampler that accepts ``with_truth=True`` says so with an
    ``imperfect_csi = True`` attribute. Anything else (a plain callable) counts as perfect CSI.
    """
    flag = getattr(sampler, "imperfect_csi", None)
    if isinstance(flag, (bool, np.bool_)):
        return bool(flag)
    config = getattr(sampler, "config", None)
    try:
        return bool((getattr(config, "csi_delay", 0) or 0) > 0 or (getattr(config, "csi_error", 0) or 0) > 0)
    except TypeError:  # a config of another kind
        return False


def imperfect_csi_kwargs(env_kwargs: Mapping[str, Any] | None) -> bool:
    """Whether env keywords ask for aged or noisy CSI (``csi_delay > 0`` or ``csi_error > 0``; missing: 0)."""
    kw = env_kwargs or {}
    try:
        return float(kw.get("csi_delay") or 0) > 0 or float(kw.get("csi_error") or 0) > 0
    except (TypeError, ValueError):
        return False


_SHIPPED: dict[str, list[dict]] = {}  # solver name -> entries of shipped_checkpoints, read once per process


def shipped_checkpoints(name: str) -> list[dict]:
    """The checkpoints shipped for solver ``name`` in :data:`CHECKPOINT_DIR`, the default first, then by tag.

    One dict per file ``<name>.pt`` / ``<name>-<tag>.pt``: ``tag`` (``"default"`` or the tag), ``pretrained``
    (the value of ``pretrained=`` that loads it: ``True`` or the tag), ``path``, ``env_id`` and ``env_kwargs``
    of the scenario it was trained on (from its meta; ``None`` / ``{}`` when the file does not say),
    ``command`` (the command that trained it, or ``None``) and ``config`` (the model's config dict).
    Each file is read once per process; the result is a fresh copy on every call.
    """
    entries = _SHIPPED.get(name)
    if entries is None:
        entries = []
        for path in sorted(CHECKPOINT_DIR.glob(f"{name}*.pt")):
            if path.stem == name:
                tag = "default"
            elif path.stem.startswith(name + "-"):
                tag = path.stem[len(name) + 1:]
            else:  # another solver whose name starts with this one
                continue
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a corrupt file: listed without a scenario; loading it says what is wrong
                payload = {}
            payload = payload if isinstance(payload, dict) else {}
            meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
            kwargs = meta.get("env_kwargs")
            entries.append({"tag": tag, "pretrained": True if tag == "default" else tag, "path": path,
                            "env_id": meta.get("env_id") or None,
                            "env_kwargs": dict(kwargs) if isinstance(kwargs, Mapping) else {},
                            "command": meta.get("command"),
                            "config": dict(payload.get("config") or {})})
        entries.sort(key=lambda e: (e["tag"] != "default", e["tag"]))
        _SHIPPED[name] = entries
    return [{**e, "env_kwargs": dict(e["env_kwargs"]), "config": dict(e["config"])} for e in entries]


def describe_training(meta_or_entry: Mapping[str, Any] | None) -> str:
    """The scenario a checkpoint was trained on, from its meta or a :func:`shipped_checkpoints` entry:
    ``"PowerControl-IC-v0(num_links=10, snr_db=10)"``; ``"unknown scenario"`` without an ``env_id``."""
    env_id = (meta_or_entry or {}).get("env_id")
    if not env_id:
        return "unknown scenario"
    kwargs = meta_or_entry.get("env_kwargs") or {}
    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items()) if isinstance(kwargs, Mapping) else str(kwargs)
    return f"{env_id}({shown})" if shown else str(env_id)


def _shipped_summary(name: str) -> str:
    """``"default (trained on ...), ic10 (trained on ...)"`` or ``"none"``."""
    entries = shipped_checkpoints(name)
    return ", ".join(f"{e['tag']} (trained on {describe_training(e)})" for e in entries) or "none"


def select_pretrained(name: str, env_id: str, env_kwargs: Mapping[str, Any],
                      normalise: Callable[[str, Mapping[str, Any]], Mapping[str, Any]] | None = None) -> dict:
    """The :func:`shipped_checkpoints` entry of solver ``name`` that ``pretrained=True`` should load when
    evaluating on env ``env_id`` built with ``env_kwargs`` (the resolved keyword arguments, ``num_links``
    included).

    Only checkpoints trained on ``env_id`` qualify; among them first those whose channel state is of the
    same kind (aged or noisy, ``csi_delay > 0`` or ``csi_error > 0``, versus perfect: a checkpoint trained on
    aged CSI is picked for aged CSI, a perfect-CSI one for perfect CSI, :func:`imperfect_csi_kwargs`), then
    the closest size (``|num_links|`` difference;
    a checkpoint and a caller that both lack ``num_links`` count as equal, one lacking it as farthest), then
    the fewest other differing keyword arguments (a key only one side has counts as differing), then the
    default checkpoint first. Raises ``ValueError`` listing every shipped checkpoint with its training
    scenario when none was trained on ``env_id``.

    ``normalise(env_id, kwargs) -> kwargs``, when given, is applied to both sides before comparing (the
    evaluation harness passes one that drops keywords equal to the env's defaults, so that an omitted
    ``topology`` and ``topology="fixed"`` compare equal on an env whose default is ``"fixed"``; solvers
    cannot know env defaults themselves).
    """
    norm = normalise or (lambda _env, kw: kw)
    env_kwargs = dict(norm(env_id, dict(env_kwargs or {})))
    candidates = [{**e, "env_kwargs": dict(norm(env_id, e["env_kwargs"]))}
                  for e in shipped_checkpoints(name) if e["env_id"] == env_id]
    if not candidates:
        raise ValueError(f"{name}: no shipped checkpoint was trained on {env_id}; shipped: {_shipped_summary(name)}; "
                         f"pass pretrained=TAG to evaluate one of them anyway, or train one with "
                         f"`l2o train {name} --env {env_id}`")
    missing = object()

    def size_gap(entry) -> float:
        mine, theirs = entry["env_kwargs"].get("num_links"), env_kwargs.get("num_links")
        if mine is None and theirs is None:
            return 0.0
        try:
            return float(abs(int(mine) - int(theirs)))
        except (TypeError, ValueError):
            return math.inf

    def other_differences(entry) -> int:
        keys = (set(entry["env_kwargs"]) | set(env_kwargs)) - {"num_links"}
        return sum(entry["env_kwargs"].get(k, missing) != env_kwargs.get(k, missing) for k in keys)

    # candidates keep the default-first order, and min() returns the first of equals
    aged = imperfect_csi_kwargs(env_kwargs)

    def csi_mismatch(entry) -> bool:
        return imperfect_csi_kwargs(entry["env_kwargs"]) != aged

    best = min(candidates, key=lambda e: (csi_mismatch(e), size_gap(e), other_differences(e), e["tag"] != "default"))
    return next(e for e in shipped_checkpoints(name) if e["tag"] == best["tag"])


def to_torch(obs: Mapping[str, Any], dtype=torch.float32, device="cpu") -> dict[str, torch.Tensor]:
    """Numeric arrays of an observation dict as tensors (non-numeric entries are dropped)."""
    out = {}
    for k, v in obs.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device=device, dtype=dtype)
            continue
        arr = np.asarray(v)
        if arr.dtype.kind in "fiub":
            if not arr.flags.writeable:  # a broadcast view (checked scalars): torch wants its own memory
                arr = np.array(arr)
            out[k] = torch.as_tensor(arr, dtype=dtype, device=device)
    return out


def _rows(value: torch.Tensor, start: int, stop: int, bsz: int) -> torch.Tensor:
    """Rows ``start:stop`` of a batched tensor; a tensor without the batch axis is passed whole."""
    return value[start:stop] if value.ndim and value.shape[0] == bsz else value


def wmmse_reference(obs: Mapping[str, np.ndarray], **wmmse_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """WMMSE powers and WSR of a batched power-control observation (float64): the labels of the MLP
    (defaults: full power start, 100 iterations, tol 1e-3; the same numbers as :func:`reference_wsr`)."""
    t = to_torch({k: obs[k] for k in ("gain", "noise", "pmax", "weight")}, dtype=torch.float64)
    power, _ = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], **wmmse_kwargs)
    wsr = weighted_sum_rate_torch(t["gain"], power, t["noise"], t["weight"])
    return power.numpy(), wsr.numpy()


def reference_wsr(obs: Mapping[str, Any]) -> float:
    """WMMSE's mean weighted sum rate on a batched observation of any problem family (checked): the
    denominator of :meth:`LearnedSolver.ratio_to_wmmse`, the one definition of "ratio to WMMSE".

    The reference is ``solvers.make("wmmse")`` with its defaults (full-power start, 100 iterations,
    tol 1e-3; scalar WMMSE for power control, the MIMO WMMSE of Shi et al. 2011 for beamforming), scored
    by the family's ``weighted_sum_rate``. For power control its numbers are those of
    :func:`wmmse_reference`.
    """
    from solvers.registry import make

    problem = problem_of_obs(obs)
    batch = problem.check_obs(obs, batched=True, who="reference_wsr")
    extras = {k: v for k, v in obs.items() if k not in batch}
    action = make("wmmse").act_batch({**extras, **batch})
    return float(problem.weighted_sum_rate(batch, action).mean())


class LearnedSolver(Solver):
    """Base class of the learned solvers (a torch model behind the Solver interface).

    Subclasses set ``name``, ``Config`` (a dataclass) and implement ``build() -> nn.Module`` and
    ``forward(obs_tensors) -> powers (B, K)``; ``fit`` is :func:`solvers.training.train`, customised by the
    training hooks below (an unrolled solver also overrides :meth:`forward_layers`).

    Args:
        config: a ``Config`` instance; or pass its fields as keyword arguments.
        pretrained: ``True`` loads the checkpoint shipped for the solver's default scenario,
            ``solvers/checkpoints/<name>.pt``; a string ``tag`` loads ``<name>-<tag>.pt`` (another shipped
            scenario, see :meth:`shipped`; ``"default"`` is the same as ``True``). The checkpoint's config
            wins over ``config``.
        checkpoint: path of a checkpoint to load instead.
        device: torch device for the model: "cpu" (default), "cuda", "cuda:<index>" or "auto" (CUDA when
            available); a CUDA device on a machine without one is a ValueError.
        random_init: ``True`` lets a model that was neither loaded nor fitted act with its random initial
            weights (a baseline, or a smoke test). Without it, ``act``/``act_batch`` of such a model raise
            ``ValueError`` naming the ways out: ``pretrained=True`` (or a tag of :meth:`shipped`),
            ``checkpoint=PATH``, or ``fit(...)`` first. A model counts as trained once it is loaded or once a
            ``fit`` has initialised it (the training loop sets it before its first validation, which acts).
        init_seed: seed of the initial weights (integer >= 0, default 0). The model is built with torch
            seeded by it in a forked random state, so that a ``random_init=True`` baseline is the same model
            in every run and process (an evaluation table is reproducible) and building a solver never
            moves torch's global random stream. ``fit`` redraws a fresh model from its own ``seed``.
    """

    Config: type = None  # set by subclasses

    def __init__(self, config=None, *, pretrained: bool | str = False, checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", random_init: bool = False, init_seed: int = 0, **overrides):
        self.random_init = bool(random_init)
        self.init_seed = integer(type(self).__name__, "init_seed", init_seed, minimum=0)
        self._trained = False
        if config is None:
            try:
                config = self.Config(**overrides)
            except TypeError as exc:
                fields = [f.name for f in dataclasses.fields(self.Config)]
                raise TypeError(f"{type(self).__name__}: {exc}; allowed keyword arguments: {fields}") from None
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.device = resolve_device(device, type(self).__name__)
        self.model = self._build_seeded()
        self.meta: dict[str, Any] = {}
        if pretrained and checkpoint is not None:
            raise ValueError(f"{type(self).__name__}: pass either pretrained=... or checkpoint=..., not both")
        if pretrained:
            stem = self.name if pretrained is True or pretrained == "default" else f"{self.name}-{pretrained}"
            checkpoint = CHECKPOINT_DIR / f"{stem}.pt"
            if not checkpoint.exists():
                raise FileNotFoundError(
                    f"{type(self).__name__}: no shipped checkpoint {checkpoint.name!r} (pretrained={pretrained!r}); "
                    f"shipped: {_shipped_summary(self.name)}. Train one with `l2o train {self.name} --env ...` "
                    f"and load it with checkpoint=PATH")
        if checkpoint is not None:
            self._load_into(checkpoint)

    @classmethod
    def shipped(cls) -> list[str]:
        """Tags accepted by ``pretrained=`` (``"default"`` stands for ``pretrained=True``)."""
        tags = []
        for f in sorted(CHECKPOINT_DIR.glob(f"{cls.name}*.pt")):
            if f.stem == cls.name:
                tags.append("default")
            elif f.stem.startswith(cls.name + "-"):
                tags.append(f.stem[len(cls.name) + 1:])
        return tags

    @property
    def is_trained(self) -> bool:
        """Whether the model may act: loaded (``pretrained``/``checkpoint``/:meth:`load`), fitted (from the
        start of ``fit``), or built with ``random_init=True``. ``False``: ``act``/``act_batch`` raise."""
        return bool(self._trained or self.random_init)

    @property
    def trained_on(self) -> tuple[str, dict] | None:
        """``(env_id, env_kwargs)`` of the scenario the weights were trained on (from :attr:`meta`), or ``None``."""
        env_id = self.meta.get("env_id")
        if not env_id:
            return None
        kwargs = self.meta.get("env_kwargs")
        return env_id, dict(kwargs) if isinstance(kwargs, Mapping) else {}

    def _build_seeded(self) -> torch.nn.Module:
        """:meth:`build` on :attr:`device` with torch seeded by ``init_seed`` in a forked random state (the
        global one is restored afterwards): the same config gives the same initial weights in every run."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(getattr(self, "init_seed", 0))
            return self.build().to(self.device)

    # --- to implement ------------------------------------------------------------------------
    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_layers(self, obs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Powers ``(B, K)`` in watts after each layer of an unrolled model (differentiable), last layer last,
        so that a loss can sum over layers; ``forward_layers(obs)[-1]`` equals ``forward(obs)``. A model
        that is not unrolled has one entry, :meth:`forward`."""
        return [self.forward(obs)]

    @property
    def dtype(self) -> torch.dtype:
        # the first parameter, found once per model: `model.to(dtype)` converts it in place, and walking
        # `parameters()` on every call is a visible part of one small decision (benchmarks/RESULTS.md)
        found = self.__dict__.get("_dtype_param")
        if found is None or found[0] is not self.model:
            found = self._dtype_param = (self.model, next(self.model.parameters()))
        return found[1].dtype

    # --- Solver interface ----------------------------------------------------------------------
    #: observation keys :meth:`forward` reads (``None``: every numeric key); converting only these to
    #: tensors saves a copy of the keys a solver ignores (positions, ``bs_gain``) on every call
    input_keys: tuple[str, ...] | None = None

    def _inference_chunk(self, obs: Mapping[str, torch.Tensor]) -> int | None:
        """Samples per :meth:`forward` call in ``act_batch`` on the CPU; ``None`` runs the batch in one piece.

        Subclasses whose activations grow with the batch override it: chunks whose activations stay in
        the CPU cache are faster than one big batch (benchmarks/RESULTS.md, "Time per decision")."""
        return None

    def _check_cast(self, t: Mapping[str, torch.Tensor]) -> None:
        """Refuse inputs the cast to the model's dtype did not keep: a float64 value beyond float32 becomes inf,
        a tiny noise becomes 0 (the observation itself was checked finite and in range by the problem)."""
        for key, value in t.items():
            if not value.is_floating_point():
                continue
            bad = not bool(torch.isfinite(value).all()) or (key == "noise" and not bool((value > 0).all()))
            if bad:
                raise ValueError(f"{type(self).__name__}: obs[{key!r}] holds values beyond the {self.dtype} range of "
                                 f"this model (|x| up to {torch.finfo(self.dtype).max:.3g}, noise above "
                                 f"{torch.finfo(self.dtype).tiny:.3g}); rescale the powers / noise of the scenario")

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if not self.is_trained:
            others = [t for t in self.shipped() if t != "default"]
            tags = f" (or pretrained=TAG, TAG one of {', '.join(map(repr, others))})" if others else ""
            raise ValueError(
                f"{type(self).__name__}: this {self.name!r} model was neither loaded nor trained, so its weights are "
                f"random. Load weights with pretrained=True{tags} or checkpoint=PATH, or call fit(...) first; "
                f"build it with random_init=True to act with the random initial weights on purpose")
        if self.model.training:
            self.model.eval()
        keys = self.input_keys
        t = to_torch(obs if keys is None else {k: obs[k] for k in keys if k in obs}, dtype=self.dtype,
                     device=self.device)
        self._check_cast(t)
        bsz = self.problem_for(obs).batch_size(obs)
        step = self._inference_chunk(t) if self.device.type == "cpu" else None
        with torch.inference_mode():
            if not step or step >= bsz:
                power = self.forward(t)
            else:
                power = torch.cat([self.forward({k: _rows(v, i, i + step, bsz) for k, v in t.items()})
                                   for i in range(0, bsz, step)])
        return power.to("cpu", torch.float64).numpy()

    # --- evaluation helper used by fit's validation and the CLI --------------------------------
    def ratio_to_wmmse(self, obs: Mapping[str, np.ndarray], reference: float | None = None,
                       truth: Mapping[str, np.ndarray] | None = None) -> float:
        """Ratio of means (the papers' metric): mean WSR of this solver / mean WSR of WMMSE.

        ``reference``: WMMSE's mean WSR (on ``truth`` when given, else on ``obs``) when already known
        (:func:`reference_wsr`), so that a training loop validating on one fixed set runs WMMSE on it once,
        not at every validation.
        ``truth``: the true current channel of aged or noisy ``obs`` (``sampler(B, with_truth=True)``): the
        solver acts on ``obs``, its WSR is scored on ``truth``, and WMMSE runs on ``truth`` (the genie, the
        reference ``l2o eval`` uses with imperfect CSI).
        """
        problem = self.problem_for(obs)
        who = f"{type(self).__name__}.ratio_to_wmmse"
        batch = problem.check_obs(obs, batched=True, who=who)
        scored = batch if truth is None else problem.check_obs(truth, batched=True, who=f"{who} (truth)")
        mine = self.act_batch(obs)
        if reference is None:
            reference = reference_wsr(obs if truth is None else truth)
        return float(problem.weighted_sum_rate(scored, mine).mean() / max(reference, 1e-300))

    # --- training: the shared loop and its hooks ----------------------------------------------
    def fit(self, sampler: Sampler, *, steps: int | None = None, seed: int = 0, progress: bool = True,
            validation: Any = None, callback: Any = None) -> dict:
        """Train on ``sampler``'s observations with :func:`solvers.training.train` (the one loop).

        A loaded or already fitted model continues from its weights and buffers; a fresh one is built
        anew with torch seeded by ``seed`` (details, the history and the meta schemas:
        :mod:`solvers.training`). The weights with the best validation ratio to WMMSE are kept.

        Args:
            sampler: ``sampler(batch) -> dict`` of batched float64 observation arrays, fresh on every call
                (e.g. :class:`l2o_env.data.ObservationSampler`); its ``env_id`` / ``env_kwargs`` attributes,
                when present, are recorded in :attr:`meta`.
            steps: optimiser steps, an integer >= 0 (default: the config's ``steps``); 0 only validates.
            seed: seeds torch (a fresh model's initial weights, shuffling); the sampler has its own seed.
            progress: a tqdm bar on stderr with the loss and the validation ratio.
            validation: a fixed batched observation to validate on, or a pair ``(obs, truth)`` (aged CSI:
                scored on the truth); default ``sampler(val_size)`` drawn once (with the truth when
                :func:`imperfect_csi`).
            callback: a :class:`solvers.training.Callback`, a callable ``fn(step, logs)`` called after each
                validation, or a list of them; returning ``False`` stops training.

        Returns:
            the history dict (:mod:`solvers.training`): ``step``, ``loss``, ``val_step``, ``val_ratio``, ``lr``,
            ``best_val_ratio``, ``best_step``, ``wall_time``, ``cpu_time``, ``stopped_early``, ``stop_reason``,
            ``skipped_steps`` and the solver's extras.
        """
        from solvers.training import train

        return train(self, sampler, steps=steps, seed=seed, progress=progress, validation=validation,
                     callbacks=callback)

    @property
    def default_steps(self) -> int:
        """Optimiser steps of ``fit`` when ``steps`` is not given (``config.steps``)."""
        return self.config.steps

    @property
    def batch_size(self) -> int:
        """Samples per training step (``config.batch_size``)."""
        return self.config.batch_size

    @property
    def val_size(self) -> int:
        """Samples of the validation batch drawn when ``fit`` gets none (``config.val_size``)."""
        return self.config.val_size

    @property
    def val_every(self) -> int:
        """Steps between validations (``config.val_every``)."""
        return self.config.val_every

    @property
    def patience(self) -> int:
        """Validations without a new best before ``fit`` stops (``config.patience`` if any; 0: never)."""
        return getattr(self.config, "patience", 0)

    @property
    def grad_clip(self) -> float:
        """Global gradient-norm clip of each step (``config.grad_clip`` if any; 0: none)."""
        return getattr(self.config, "grad_clip", 0.0)

    #: skip the optimiser step of a batch whose gradient norm is not finite (counted in ``skipped_steps``)
    skip_nonfinite: bool = False
    #: the validation metric a ``ReduceLROnPlateau`` scheduler steps on (a key of the validation logs)
    plateau_metric: str = "val_ratio"

    def adapt_to(self, validation: Mapping[str, np.ndarray]) -> None:
        """Called by ``fit`` with the (checked) validation batch before the model is initialised: a solver
        whose shape depends on the data (the MLP's K) adapts its config here. Default: nothing."""

    def make_optimizer(self, steps: int) -> torch.optim.Optimizer:
        """The optimiser of one fit (default: Adam at ``config.lr``)."""
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps: int):
        """A torch learning-rate scheduler for one fit of ``steps`` steps, or ``None`` (default)."""
        return None

    def start_training(self, sampler: Sampler, validation: Mapping[str, np.ndarray]) -> None:
        """Per-fit set-up after the model is initialised, before the step-0 validation. ``validation`` is the
        checked validation batch; with imperfect CSI it also holds the checked truth under ``"truth"``.
        Default: nothing."""

    def observation_tensors(self, raw: Mapping[str, Any], who: str) -> dict[str, torch.Tensor]:
        """A batched observation, checked by its problem family (:meth:`problem_for`), as tensors in the
        model's dtype and device; keeps the extra keys :attr:`input_keys` names (positions)."""
        checked = self.problem_for(raw).check_obs(raw, batched=True, who=who)
        keys = self.input_keys
        extras = {k: raw[k] for k in raw if k not in checked and (keys is None or k in keys)}
        return to_torch({**extras, **checked}, dtype=self.dtype, device=self.device)

    def training_batch(self, sampler: Sampler, step: int) -> Any:
        """The batch of training step ``step`` (default: ``sampler(batch_size)`` as checked tensors). With
        aged or noisy CSI (:func:`imperfect_csi`) it is drawn with ``with_truth=True`` and carries the true
        current channel, checked the same way, as ``batch["truth"]`` (a dict of tensors)."""
        who = f"{type(self).__name__}.fit: sampler output"
        if imperfect_csi(sampler):
            obs, truth = sampler(self.batch_size, with_truth=True)
            batch = self.observation_tensors(obs, who)
            batch["truth"] = self.observation_tensors(truth, f"{who} (truth)")
            return batch
        return self.observation_tensors(sampler(self.batch_size), who)

    def loss(self, batch: Any) -> torch.Tensor:
        """The scalar to minimise on a training batch (default: minus the mean weighted sum rate of
        :meth:`forward`, the unsupervised loss). The network sees the batch's own keys; the rates are
        scored on ``batch["truth"]`` when the batch carries it (aged or noisy CSI), else on the batch."""
        power = self.forward(batch)
        scored = batch.get("truth", batch)
        return -weighted_sum_rate_torch(scored["gain"], power, scored["noise"], scored["weight"]).mean()

    def validation_metrics(self) -> dict[str, float]:
        """Extra numbers logged at every validation (history lists of the same names). Default: none."""
        return {}

    def end_training(self) -> dict[str, Any]:
        """Called when the loop ends (also on an error): frees per-fit state and returns extra history
        entries. Default: none."""
        return {}

    def training_meta(self) -> dict[str, Any]:
        """Extra :attr:`meta` entries written by ``fit``. Default: none."""
        return {}

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write state dict + config (+ ``self.meta``, e.g. training scenario and validation ratio) to one file.

        The write is atomic (:func:`l2o_env.atomic.atomic_write`): the file is written to a temporary file
        beside ``path`` and renamed over it once complete, so an interrupted save leaves the previous file
        (if any) intact and no partial file behind. Missing folders are created."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "solver": self.name,
            "config": dataclasses.asdict(self.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "meta": self.meta,
        }
        atomic_write(path, lambda f: torch.save(payload, f), "wb")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu"):
        """Rebuild a solver from a file written by :meth:`save`.

        Raises ``FileNotFoundError`` for a missing file and a one-line ``ValueError`` naming the file and
        what is wrong for anything else: an empty, truncated or non-torch file, another format version,
        another solver's model, a config this version cannot rebuild, weights missing, unexpected, of
        another shape than the config builds, or not finite."""
        payload = cls._read(path, f"{cls.__name__}.load")
        obj = cls(cls._config_from(payload, path, f"{cls.__name__}.load"), device=device)
        obj._apply(payload, path, f"{cls.__name__}.load")
        return obj

    def _load_into(self, path) -> None:
        who = f"{type(self).__name__}(checkpoint=...)"
        payload = self._read(path, who)
        self.config = self._config_from(payload, path, who)
        self.model = self._build_seeded()
        self._apply(payload, path, who)

    @classmethod
    def _read(cls, path, who: str | None = None) -> dict:
        """The checked payload of checkpoint ``path``: a dict of the current format for this solver."""
        who = who or f"{cls.__name__}.load"
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{who}: no checkpoint file at {path}")
        if path.is_dir():
            raise ValueError(f"{who}: {path}: is a folder, not a checkpoint file")
        if path.stat().st_size == 0:
            raise ValueError(f"{who}: {path}: not a readable checkpoint: the file is empty (0 bytes; an interrupted "
                             f"copy or save?)")
        try:
            with warnings.catch_warnings():  # torch's pickle-protocol advice on a garbage file adds nothing
                warnings.simplefilter("ignore", UserWarning)
                payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types (RuntimeError, EOFError, UnpicklingError ...)
            raise ValueError(f"{who}: {path}: {_unreadable(exc)}") from None
        if not isinstance(payload, dict):
            raise ValueError(f"{who}: {path}: not an l2o_env solver checkpoint (it holds a {type(payload).__name__}, "
                             f"not a dict with format {FORMAT!r}; write one with solver.save(path))")
        fmt = payload.get("format")
        if fmt is None:
            raise ValueError(f"{who}: {path}: not an l2o_env solver checkpoint (a dict without 'format'; keys "
                             f"{_keys(payload)}; this version reads {FORMAT})")
        if fmt != FORMAT:
            raise ValueError(f"{who}: {path}: format {_short(fmt)} is not supported (this version reads {FORMAT})")
        found = payload.get("solver")
        if found != cls.name:
            hint = (f"; load it with solvers.make({found!r}, checkpoint=...)" if isinstance(found, str) and found
                    else "")
            raise ValueError(f"{who}: {path}: checkpoint holds a {_short(found)} model, not {cls.name!r}{hint}")
        for key, kind in (("config", Mapping), ("state_dict", Mapping)):
            if not isinstance(payload.get(key), kind):
                got = "missing" if key not in payload else f"a {type(payload[key]).__name__}"
                raise ValueError(f"{who}: {path}: damaged checkpoint: {key!r} is {got}, not a dict")
        if "meta" in payload and not isinstance(payload["meta"], Mapping):
            raise ValueError(f"{who}: {path}: damaged checkpoint: 'meta' is a {type(payload['meta']).__name__}, "
                             f"not a dict")
        return payload

    @classmethod
    def _config_from(cls, payload, path, who: str | None = None):
        who = who or f"{cls.__name__}.load"
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(str(k) for k in payload["config"] if k not in fields)
        if unknown:
            raise ValueError(f"{who}: {path}: config has fields this version does not know: {', '.join(unknown)} "
                             f"(a checkpoint of a newer version?); known fields: {', '.join(sorted(fields))}")
        try:
            return cls.Config(**payload["config"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{who}: {path}: config cannot be rebuilt by this version ({_one_line(exc)})") from None

    def _apply(self, payload, path, who: str | None = None) -> None:
        """Check the file's weights against a model built from its config, then load them."""
        who = who or f"{type(self).__name__}.load"
        expected = self.model.state_dict()
        weights = payload["state_dict"]
        missing = [k for k in expected if k not in weights]
        unexpected = [str(k) for k in weights if k not in expected]
        mismatch = f"{who}: {path}: the weights do not match the config"
        if missing or unexpected:
            parts = ([f"missing {_names(missing)}"] if missing else []) + (
                [f"unexpected {_names(unexpected)}"] if unexpected else [])
            raise ValueError(f"{mismatch}: {'; '.join(parts)} (a model built from the file's config has "
                             f"{len(expected)} entries)")
        for key, want in expected.items():
            got = weights[key]
            if not isinstance(got, torch.Tensor):
                raise ValueError(f"{mismatch}: weight {key!r} is a {type(got).__name__}, not a tensor")
            if tuple(got.shape) != tuple(want.shape):
                raise ValueError(f"{mismatch}: weight {key!r} has shape {tuple(got.shape)} in the file but "
                                 f"{tuple(want.shape)} in a solver built from its config")
            if got.is_floating_point() or got.is_complex():
                bad = int((~torch.isfinite(got)).sum())
                if bad:
                    raise ValueError(f"{who}: {path}: damaged checkpoint: weight {key!r} holds {bad} NaN/inf "
                                     f"value{'s' if bad > 1 else ''} (of {got.numel()})")
        try:
            self.model.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(f"{mismatch} ({_one_line(exc)})") from None
        self.meta = dict(payload.get("meta") or {})
        self._trained = True


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """``"Type: first line of the message"``, cut to ``limit`` characters (torch's messages run to pages)."""
    text = " ".join(next((line for line in str(exc).splitlines() if line.strip()), "").split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _unreadable(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in one line."""
    msg = str(exc)
    detail = None
    if "WeightsUnpickler error:" in msg:  # torch's weights-only unpickler: the useful line is after this marker
        rest = msg.split("WeightsUnpickler error:", 1)[1]
        detail = next((line.strip() for line in rest.splitlines() if line.strip()), "")
        if detail.startswith("Unsupported global"):
            detail = detail.split(" was not an allowed global", 1)[0]
            return (f"not an l2o_env solver checkpoint: it holds Python objects that a weights-only load refuses "
                    f"({detail}); write checkpoints with solver.save(path)")
        detail = f"{type(exc).__name__}: {detail}"
    elif "zip archive:" in msg:  # PytorchStreamReader: "failed reading zip archive: <why>. This is an ..."
        detail = "zip archive: " + msg.split("zip archive:", 1)[1].split(". ", 1)[0].strip().rstrip(".")
    return (f"not a readable checkpoint: truncated or not a torch file "
            f"({detail or _one_line(exc)}; an interrupted copy or save?)")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _keys(mapping: Mapping) -> str:
    keys = [str(k) for k in mapping][:8]
    return "[" + ", ".join(map(repr, keys)) + (", ...]" if len(mapping) > 8 else "]")


def _names(keys: list[str], shown: int = 4) -> str:
    """``"'a', 'b' and 3 more"``."""
    head = ", ".join(map(repr, keys[:shown]))
    return head + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
