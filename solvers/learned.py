"""Shared machinery of the learned solvers: config, torch forward, save/load, shipped checkpoints.

A learned solver subclasses :class:`LearnedSolver`, defines a ``Config`` dataclass (the paper's
hyper-parameters as defaults), builds its ``torch.nn.Module`` in :meth:`LearnedSolver.build`, maps a
batched observation to powers in :meth:`LearnedSolver.forward` (differentiable, used by ``fit`` and by
``act_batch`` under ``no_grad``) and trains in ``fit(sampler, ...)``.

A checkpoint is ONE file written by :func:`torch.save`: ``{"format": "l2o_env.solver/1", "solver": name,
"config": dataclasses.asdict(config), "state_dict": ..., "meta": {...}}``; :meth:`load` rebuilds the
model from the config and loads the weights with ``weights_only=True``. A missing, corrupt or mismatched
file raises ``ValueError``/``FileNotFoundError`` saying which.

``sampler(batch) -> dict`` is any callable returning batched float64 observation arrays (``gain (B,K,K)``,
``weight``, ``noise``, ``pmax`` ``(B,K)``, plus optional keys); :class:`l2o_env.data.ObservationSampler`
builds one from an env ID. Solvers never import an env class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from l2o_env.rates import weighted_sum_rate_torch
from solvers.base import Solver, check_power_obs
from solvers.wmmse import resolve_device
from solvers.wmmse_core import wmmse_run

__all__ = ["LearnedSolver", "CHECKPOINT_DIR", "FORMAT", "to_torch", "wmmse_reference", "shipped_checkpoints",
           "describe_training", "select_pretrained"]

FORMAT = "l2o_env.solver/1"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

Sampler = Callable[[int], Mapping[str, np.ndarray]]


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

    Only checkpoints trained on ``env_id`` qualify; among them the closest size (``|num_links|`` difference;
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
    best = min(candidates, key=lambda e: (size_gap(e), other_differences(e), e["tag"] != "default"))
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
            out[k] = torch.as_tensor(arr, dtype=dtype, device=device)
    return out


def _rows(value: torch.Tensor, start: int, stop: int, bsz: int) -> torch.Tensor:
    """Rows ``start:stop`` of a batched tensor; a tensor without the batch axis is passed whole."""
    return value[start:stop] if value.ndim and value.shape[0] == bsz else value


def wmmse_reference(obs: Mapping[str, np.ndarray], **wmmse_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """WMMSE powers and WSR of a batched observation (float64): the labels of the MLP and the
    denominator of every "ratio to WMMSE" (defaults: full power start, 100 iterations, tol 1e-3)."""
    t = to_torch({k: obs[k] for k in ("gain", "noise", "pmax", "weight")}, dtype=torch.float64)
    power, _ = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], **wmmse_kwargs)
    wsr = weighted_sum_rate_torch(t["gain"], power, t["noise"], t["weight"])
    return power.numpy(), wsr.numpy()


def reference_wsr(obs: Mapping[str, Any]) -> float:
    """WMMSE's mean weighted sum rate on a batched observation (checked): the denominator of
    :meth:`LearnedSolver.ratio_to_wmmse`."""
    batch = check_power_obs(obs, batched=True, who="reference_wsr")
    return float(wmmse_reference(batch)[1].mean())


class LearnedSolver(Solver):
    """Base class of the learned solvers (a torch model behind the Solver interface).

    Subclasses set ``name``, ``Config`` (a dataclass) and implement ``build() -> nn.Module``,
    ``forward(obs_tensors) -> powers (B, K)`` and ``fit(sampler, ...)``.

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
            ``fit`` starts (fit validates by acting before it returns).
    """

    Config: type = None  # set by subclasses

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # every fit marks the model trained when it STARTS: the fit loops validate by acting before they return
        fit = cls.__dict__.get("fit")
        if callable(fit) and not getattr(fit, "_marks_trained", False):
            @functools.wraps(fit)
            def marked_fit(self, *args, **kw):
                self._trained = True
                return fit(self, *args, **kw)

            marked_fit._marks_trained = True
            cls.fit = marked_fit

    def __init__(self, config=None, *, pretrained: bool | str = False, checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", random_init: bool = False, **overrides):
        self.random_init = bool(random_init)
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
        self.model = self.build().to(self.device)
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

    # --- to implement ------------------------------------------------------------------------
    def build(self) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        # the first parameter, found once per model: `model.to(dtype)` converts it in place, and walking
        # `parameters()` on every call cost ~10 us of a ~200 us single decision
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
        the CPU cache are faster than one big batch (measured in each subclass)."""
        return None

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
        bsz = t["gain"].shape[0]
        step = self._inference_chunk(t) if self.device.type == "cpu" else None
        with torch.inference_mode():
            if not step or step >= bsz:
                power = self.forward(t)
            else:
                power = torch.cat([self.forward({k: _rows(v, i, i + step, bsz) for k, v in t.items()})
                                   for i in range(0, bsz, step)])
        return power.to("cpu", torch.float64).numpy()

    # --- evaluation helper used by fit's validation and the CLI --------------------------------
    def ratio_to_wmmse(self, obs: Mapping[str, np.ndarray], reference: float | None = None) -> float:
        """Ratio of means (the papers' metric): mean WSR of this solver / mean WSR of WMMSE.

        ``reference``: WMMSE's mean WSR on ``obs`` when already known (:func:`reference_wsr`), so that a
        training loop validating on one fixed set runs WMMSE on it once, not at every validation.
        """
        batch = check_power_obs(obs, batched=True, who=f"{type(self).__name__}.ratio_to_wmmse")
        mine = self.act_batch(obs)
        if reference is None:
            reference = reference_wsr(batch)
        t = to_torch({k: batch[k] for k in ("gain", "noise", "weight")}, dtype=torch.float64)
        wsr = weighted_sum_rate_torch(t["gain"], torch.as_tensor(mine), t["noise"], t["weight"])
        return float(wsr.mean() / max(reference, 1e-300))

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write state dict + config (+ ``self.meta``, e.g. training scenario and validation ratio) to one file."""
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
        torch.save(payload, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu"):
        """Rebuild a solver from a file written by :meth:`save`."""
        payload = cls._read(path)
        obj = cls(cls._config_from(payload, path), device=device)
        obj._apply(payload, path)
        return obj

    def _load_into(self, path) -> None:
        payload = self._read(path)
        self.config = self._config_from(payload, path)
        self.model = self.build().to(self.device)
        self._apply(payload, path)

    @classmethod
    def _read(cls, path) -> dict:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{cls.__name__}.load: no checkpoint file at {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt file
            raise ValueError(f"{cls.__name__}.load: {path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{cls.__name__}.load: {path} is not an l2o_env solver checkpoint (format {FORMAT!r} expected)")
        if payload.get("solver") != cls.name:
            raise ValueError(f"{cls.__name__}.load: {path} holds a {payload.get('solver')!r} model, not {cls.name!r}")
        return payload

    @classmethod
    def _config_from(cls, payload, path):
        try:
            return cls.Config(**payload["config"])
        except TypeError as exc:
            raise ValueError(f"{cls.__name__}.load: {path} has a config this version cannot rebuild ({exc})") from None

    def _apply(self, payload, path) -> None:
        try:
            self.model.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"{type(self).__name__}.load: weights in {path} do not match the config ({exc})") from None
        self.meta = dict(payload.get("meta", {}))
        self._trained = True
