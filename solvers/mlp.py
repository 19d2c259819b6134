"""Supervised MLP that imitates WMMSE: H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos,
"Learning to Optimize: Training Deep Neural Networks for Interference Management", IEEE Trans. Signal
Process. 66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412, Sec. IV ("System
setup") and Sec. V-B ("Parameter selection").

The network maps the channel magnitudes of one network to its power vector,

.. math::

    x = [\\,|h_{kj}|\\,]  \\;\\to\\;  \\text{3 x (Linear + ReLU), 200 units each}  \\;\\to\\;  \\text{Linear}(K),
    \\qquad y = \\min(\\max(x, 0), P_{\\max})                                                      \\quad (16)

and is trained on the mean squared error to WMMSE's powers (labels computed on the fly by
:func:`solvers.learned.wmmse_reference`, full-power start, 100 iterations, tol 1e-3), with RMSprop
(decay 0.9), learning rate 1e-3 lowered when the validation error stalls, batches of 1000, weights drawn
from a standard normal truncated at +-2 and divided by sqrt(fan-in) (Sec. IV, footnote 2). At test time
the paper rounds each output to 0 or Pmax at Pmax / 2 (Sec. V-C); ``round_output`` turns that on.

Inputs (``Config.input``):

- ``"gain"``: the K^2 magnitudes ``sqrt(gain[i, j])`` (Gaussian IC, Sec. V-B: input size K^2);
- ``"bs_gain"``: the N x K user-to-base-station magnitudes ``sqrt(obs["bs_gain"])`` of the IMAC (input
  size N x K);
- ``"auto"`` (default): ``"bs_gain"`` when ``num_bs > 0`` else ``"gain"``.

What we add to the paper (documented options; the config defaults are the paper's except ``round_output``):

- ``snr_scaling=True``: each magnitude is multiplied by ``sqrt(pmax_j / noise_i)`` (for ``bs_gain`` by
  ``sqrt(pmax_k / mean noise)``), so the input is dimensionless. With the authors' Pmax = 1, sigma^2 = 1
  this is exactly the paper's input; the powers are learnt and returned normalised by pmax (Sun
  normalises Pmax = 1).
- ``transform="log"``: ``log10`` of the (scaled) magnitude instead of the magnitude. The paper states no
  input normalisation; IMAC magnitudes span several decades (path loss (200/d)^3, 8 dB shadowing) and
  raw magnitudes let a few near-BS users dominate the first layer. ``"none"`` is the paper's raw input.
  Both shipped checkpoints use ``"log"`` (on the IC K = 10 it also learnt faster; benchmarks/RESULTS.md).
- biases start at 0.1 (the authors' code; the paper is silent), ``round_output=True`` by default (the
  paper's test-time rounding, which raised the ratio to WMMSE on both shipped scenarios; see
  benchmarks/RESULTS.md), and ``fit`` draws fresh WMMSE-labelled pools (``pool_size``, ``pool_epochs``)
  instead of one fixed set of 1e6 samples (bounded memory, and labelling a pool is a batched WMMSE run).
- Sun et al. train for far longer than our 10-minute budget (the authors' code: 300 epochs of ~1e6
  samples); ``examples/train_mlp.py`` records the faster recipes (smaller batches, quicker
  learning-rate decay) that the shipped checkpoints used.

The network has a fixed size: an observation with another K (or N x K) raises ``ValueError``.

Args (``MLPSolver(**config_fields)`` or ``MLPSolver(MLPSolver.Config(...))``): see :class:`MLPConfig`.

Shapes:
    input ``gain (B, K, K)`` (+ ``bs_gain (B, N, K)``), ``noise``/``pmax``/``weight (B, K)``;
    output powers ``(B, K)`` in watts, ``0 <= p <= pmax``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from l2o_env.validation import choice, integer, real
from solvers.base import check_power_obs
from solvers.learned import (LearnedSolver, describe_training, imperfect_csi, shipped_checkpoints, to_torch,
                             wmmse_reference)

__all__ = ["MLPSolver", "MLPConfig"]

_INPUTS = ("auto", "gain", "bs_gain")
_TRANSFORMS = ("none", "log")


@dataclass
class MLPConfig:
    """Hyper-parameters of :class:`MLPSolver`; defaults are Sun et al.'s (2018, Sec. IV and V-B) unless noted."""

    num_links: int = 12
    """K, the number of links (users); fixed at build time. Default: the library's IMAC (N, K) = (3, 12)."""
    num_bs: int = 3
    """N, the rows of ``obs["bs_gain"]`` (IMAC base stations); 0 for pairwise models (IC, ad hoc, D2D)."""
    input: str = "auto"
    """"gain" (K^2 magnitudes), "bs_gain" (N x K magnitudes, IMAC) or "auto" ("bs_gain" iff num_bs > 0)."""
    hidden: tuple = (200, 200, 200)
    """Hidden ReLU layer widths: the paper's 3 x 200 (Sec. V-B); the authors' code uses (200, 80, 80)."""
    transform: str = "none"
    """Input transform: "none" (the paper: raw magnitudes) or "log" (log10 magnitudes; ours, for the IMAC)."""
    snr_scaling: bool = True
    """Scale magnitudes by sqrt(pmax / noise) (dimensionless input; identical to the paper at Pmax = sigma^2 = 1)."""
    round_output: bool = True
    """Round each output to 0 or pmax at pmax / 2 at test time (Sec. V-C); training is never rounded.
    The default because it raised the ratio to WMMSE on both shipped scenarios (benchmarks/RESULTS.md)."""
    lr: float = 1e-3
    """Initial RMSprop learning rate (Sec. V-B)."""
    rms_alpha: float = 0.9
    """RMSprop decay rate of the squared-gradient average (Sec. IV, following Hinton's lecture [34])."""
    batch_size: int = 1000
    """Mini-batch size (Sec. V-B)."""
    steps: int = 20_000
    """Default number of gradient steps of ``fit`` (the paper gives no count; ours, sized to the 10-minute training budget)."""
    pool_size: int = 200_000
    """Labelled samples drawn per data pool (paper: one fixed set of 1e6); ours, to bound memory."""
    pool_epochs: int = 5
    """Epochs over one pool before a fresh pool is drawn and labelled (0: keep the first pool forever)."""
    val_size: int = 5000
    """Validation samples drawn once from the sampler (paper: 10,000) when ``fit`` gets no ``validation``."""
    eval_every: int = 500
    """Gradient steps between validations (validation MSE drives the learning-rate decay)."""
    lr_decay: float = 0.5
    """Factor applied to the learning rate when the validation MSE has not improved for ``lr_patience`` evals."""
    lr_patience: int = 2
    """Validations without improvement before the learning rate is lowered (the paper: "when it stalls")."""
    min_lr: float = 1e-5
    """The learning rate is never lowered below this."""
    label_chunk: int = 10_000
    """Samples per WMMSE labelling call (bounds memory; WMMSE is batched)."""

    def __post_init__(self):
        iterable = hasattr(self.hidden, "__iter__") and not isinstance(self.hidden, (str, bytes))
        widths = tuple(self.hidden) if iterable else ()
        if not widths:
            raise ValueError(f"MLPConfig: hidden must be a non-empty tuple of widths >= 1, got {self.hidden!r}")
        self.hidden = tuple(integer("MLPConfig", "hidden width", h) for h in widths)
        for name in ("num_links", "batch_size", "steps", "pool_size", "val_size", "eval_every", "label_chunk",
                     "lr_patience"):
            setattr(self, name, integer("MLPConfig", name, getattr(self, name)))
        for name in ("num_bs", "pool_epochs"):
            setattr(self, name, integer("MLPConfig", name, getattr(self, name), minimum=0))
        choice("MLPConfig", "input", self.input, _INPUTS)
        if self.input == "bs_gain" and self.num_bs < 1:
            raise ValueError("MLPConfig: input='bs_gain' needs num_bs >= 1 (the rows of obs['bs_gain'])")
        choice("MLPConfig", "transform", self.transform, _TRANSFORMS)
        for name in ("lr", "rms_alpha", "lr_decay", "min_lr"):
            setattr(self, name, real("MLPConfig", name, getattr(self, name), above=0.0))
        if not (self.rms_alpha < 1 and self.lr_decay < 1):
            raise ValueError(f"MLPConfig: rms_alpha and lr_decay must be < 1, got {self.rms_alpha}, {self.lr_decay}")

    @property
    def resolved_input(self) -> str:
        if self.input == "auto":
            return "bs_gain" if self.num_bs > 0 else "gain"
        return self.input

    @property
    def input_size(self) -> int:
        k = self.num_links
        return self.num_bs * k if self.resolved_input == "bs_gain" else k * k


class _MLP(nn.Module):
    """Linear/ReLU stack; the output layer is linear (the clip of eq. (16) is applied by the solver)."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Sec. IV, footnote 2: standard normal redrawn when |x| > 2, divided by sqrt(fan-in). The paper
        # is silent on biases; the authors' code sets them to 0.1, which keeps the ReLUs and the clipped
        # output of eq. (16) inside their active range at the start (zero biases leave about half of
        # the outputs at 0 with zero gradient).
        for lin in self.layers:
            with torch.no_grad():
                nn.init.trunc_normal_(lin.weight, mean=0.0, std=1.0, a=-2.0, b=2.0)
                lin.weight.div_(math.sqrt(lin.in_features))
                lin.bias.fill_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # functional calls: a Linear module's __call__ costs more than its matmul for one decision
        # (benchmarks/RESULTS.md, "Time per decision"); in-place ReLU is safe after a Linear
        layers = list(self.layers)
        for lin in layers[:-1]:
            x = F.linear(x, lin.weight, lin.bias).relu_()
        return F.linear(x, layers[-1].weight, layers[-1].bias)


def _shipped_fit_hint(k: int, n: int) -> str:
    """``'the shipped checkpoint pretrained="ic10" (trained on ...) fits K = 10; otherwise '`` when a shipped MLP
    fits an observation with K links and N = ``n`` rows of ``bs_gain`` (0: none); ``""`` when none does."""
    fits = []
    for entry in shipped_checkpoints(MLPSolver.name):
        try:
            cfg = MLPConfig(**entry["config"])
        except (TypeError, ValueError):
            continue
        if cfg.num_links == k and (cfg.resolved_input == "gain" or cfg.num_bs == n):
            size = f"K = {k}" + (f", N = {n}" if cfg.resolved_input == "bs_gain" else "")
            value = "True" if entry["pretrained"] is True else '"' + entry["tag"] + '"'
            fits.append(f"pretrained={value} (trained on {describe_training(entry)}) fits {size}")
    if not fits:
        return ""
    return f"the shipped checkpoint{'s' if len(fits) > 1 else ''} {' and '.join(fits)}; otherwise "


class MLPSolver(LearnedSolver):
    """Supervised MLP imitating WMMSE (Sun et al. 2018, Sec. IV); fixed K, input |h| magnitudes.

    Training (``fit``, the shared loop of :mod:`solvers.training`): supervised on WMMSE's powers (Sec. IV
    "Training stage"). A pool of ``pool_size`` samples is drawn from the sampler and labelled with WMMSE;
    RMSprop runs over it for ``pool_epochs`` epochs (shuffled, batches of ``batch_size``, the last short
    batch dropped) before a fresh pool is drawn (the paper uses one fixed set of 1e6). Every ``eval_every``
    steps the validation MSE (history ``val_mse``) drives the plateau decay of the learning rate
    (x ``lr_decay`` after ``lr_patience`` validations without a 0.1 % lower MSE, never below ``min_lr``) and
    the ratio to WMMSE (of the rounded outputs when ``round_output``) selects the weights kept. History
    extra ``label_time``: seconds spent computing WMMSE labels; meta extra ``round_output``. ``fit`` sizes
    a fresh model to the sampler's K (and N); a loaded or fitted one must match.

    Aged or noisy CSI (the sampler's ``csi_delay`` or ``csi_error`` > 0): the input is the observed channel
    and the label is WMMSE's powers on the TRUE current channel (the validation labels too; the validation
    ratio is then scored on the truth, against WMMSE on the truth). Imitating WMMSE on the observation could
    at best reproduce WMMSE on the aged CSI; regressing the genie's powers on what is observed learns their
    conditional mean given the observation, which uses what the observation tells about the current
    channel. The supervised loss does not see rates, so this is not the WSR-optimal decision under the
    uncertainty (the unsupervised solvers maximise the WSR on the truth directly).
    """

    name = "mlp"
    Config = MLPConfig

    def build(self) -> nn.Module:
        cfg = self.config
        return _MLP([cfg.input_size, *cfg.hidden, cfg.num_links])

    # --- features -----------------------------------------------------------------------------------
    def _check_shapes(self, obs: Mapping[str, Any], who: str) -> None:
        cfg = self.config
        k = obs["gain"].shape[-1]
        if k != cfg.num_links:
            n = obs["bs_gain"].shape[-2] if "bs_gain" in obs else 0
            raise ValueError(f"{who}: this MLP was built for K = {cfg.num_links} links, got obs['gain'] with K = {k}; "
                             f"an MLP has a fixed input size: {_shipped_fit_hint(k, n)}train one for this scenario "
                             f"(MLPSolver(num_links={k}, num_bs={n}); fit also resizes an untrained model)")
        if cfg.resolved_input == "bs_gain":
            if "bs_gain" not in obs:
                raise ValueError(f"{who}: this MLP reads obs['bs_gain'] (input={cfg.input!r}, num_bs={cfg.num_bs}), "
                                 f"which the observation lacks (keys {sorted(obs)}); {_shipped_fit_hint(k, 0)}"
                                 f"use an IMAC observation or build with num_bs=0 / input='gain'")
            shape = tuple(obs["bs_gain"].shape[-2:])
            if shape != (cfg.num_bs, cfg.num_links):
                raise ValueError(f"{who}: this MLP was built for obs['bs_gain'] of shape (N, K) = "
                                 f"{(cfg.num_bs, cfg.num_links)}, got {shape}; {_shipped_fit_hint(k, shape[0])}"
                                 f"train one for this scenario (MLPSolver(num_links={k}, num_bs={shape[0]}))")

    def features(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Network input ``(B, input_size)`` from batched observation tensors (see the module docstring)."""
        cfg = self.config
        self._check_shapes(obs, f"{type(self).__name__}.features")
        pmax, noise = obs["pmax"], obs["noise"]
        if cfg.resolved_input == "bs_gain":
            g = obs["bs_gain"]
            if cfg.snr_scaling:
                # The IMAC's users of a cell share one receiver; its noise is the mean over links.
                g = g * (pmax.unsqueeze(-2) / noise.mean(-1, keepdim=True).unsqueeze(-1))
        else:
            g = obs["gain"]
            if cfg.snr_scaling:
                g = g * (pmax.unsqueeze(-2) / noise.unsqueeze(-1))
        g = g.flatten(1)
        if cfg.transform == "log":
            # log10 |h| = 0.5 log10 |h|^2; the floor keeps exact zeros (an absent link) finite.
            return 0.5 * torch.log10(g.clamp_min(1e-20))
        return g.sqrt()

    def forward_normalised(self, x: torch.Tensor) -> torch.Tensor:
        """Powers over pmax in [0, 1] (eq. 16 with Pmax = 1) from features ``x``."""
        return self.model(x).clamp(0.0, 1.0)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable powers ``(B, K)`` in watts: ``min(max(x, 0), 1) * pmax`` (eq. 16)."""
        return self.forward_normalised(self.features(obs)) * obs["pmax"]

    @property
    def input_keys(self) -> tuple[str, ...]:
        return ("gain", "noise", "pmax") + (("bs_gain",) if self.config.resolved_input == "bs_gain" else ())

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        power = super()._solve(obs)
        if self.config.round_output:
            # Sec. V-C: WMMSE's powers are binary in most cases, so each output snaps to 0 or Pmax.
            power = np.where(power > 0.5 * obs["pmax"], obs["pmax"], 0.0)
        return power

    # --- training (hooks of the shared loop, solvers/training.py; described in the class docstring) ---
    plateau_metric = "val_mse"

    @property
    def val_every(self) -> int:
        return self.config.eval_every

    def adapt_to(self, obs: Mapping[str, np.ndarray]) -> None:
        """Resize a fresh model to the sampler's K (and N); a trained or loaded one must already match."""
        k = int(np.shape(obs["gain"])[-1])
        n = int(np.shape(obs["bs_gain"])[-2]) if "bs_gain" in obs else 0
        cfg = self.config
        want = dict(num_links=k)
        if cfg.input == "auto":
            want["num_bs"] = n
        elif cfg.input == "bs_gain":
            if n == 0:
                raise ValueError("MLPSolver.fit: input='bs_gain' but the sampler's observations have no 'bs_gain'")
            want["num_bs"] = n
        if all(getattr(cfg, f) == v for f, v in want.items()):
            return
        if self._trained:
            raise ValueError(f"MLPSolver.fit: this model was trained for K = {cfg.num_links}, num_bs = {cfg.num_bs}; "
                             f"the sampler gives K = {k}, N = {n}. Start from a fresh MLPSolver to train another size")
        self.config = dataclasses.replace(cfg, **want)  # fit builds the fresh model for this config

    def _labelled(self, obs: Mapping[str, np.ndarray],
                  truth: Mapping[str, np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(features of ``obs``, WMMSE powers / pmax) of a batch, labels computed in chunks of ``label_chunk``
        on ``truth`` when given (aged or noisy CSI: WMMSE on the true channel), else on ``obs``."""
        cfg = self.config
        n = np.shape(obs["gain"])[0]
        feats, labels = [], []
        for s in range(0, n, cfg.label_chunk):
            chunk = {k: np.asarray(v)[s:s + cfg.label_chunk] for k, v in obs.items() if k != "truth"}
            label_src = chunk if truth is None else \
                {k: np.asarray(truth[k])[s:s + cfg.label_chunk] for k in ("gain", "noise", "pmax", "weight")}
            power, _ = wmmse_reference(label_src)
            pmax = np.asarray(chunk["pmax"], dtype=np.float64)
            labels.append(torch.as_tensor(np.divide(power, pmax, out=np.zeros_like(power), where=pmax > 0),
                                          dtype=torch.float32))
            with torch.no_grad():
                feats.append(self.features(to_torch(chunk, dtype=torch.float32)))
        return torch.cat(feats).to(self.device), torch.cat(labels).to(self.device)

    def _draw(self, sampler, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """``n`` checked samples and, with imperfect CSI, their checked truth (else ``None``)."""
        who = "MLPSolver.fit: sampler output"
        truth = None
        if imperfect_csi(sampler):
            obs, truth = sampler(n, with_truth=True)
            truth = check_power_obs(truth, batched=True, who=f"{who} (truth)")
        else:
            obs = sampler(n)
        batch = check_power_obs(obs, batched=True, who=who)
        return {**{k: np.asarray(v) for k, v in obs.items() if k not in batch}, **batch}, truth

    def make_optimizer(self, steps: int) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(self.model.parameters(), lr=self.config.lr, alpha=self.config.rms_alpha)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps: int):
        # "lowered when the validation error stalls": x lr_decay after lr_patience validations whose MSE is
        # not 0.1 % below the best so far (torch counts patience as the bad validations it tolerates)
        cfg = self.config
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.lr_decay, patience=cfg.lr_patience - 1, threshold=1e-3,
            threshold_mode="rel", min_lr=cfg.min_lr, eps=0.0)

    def start_training(self, sampler, validation: Mapping[str, np.ndarray]) -> None:
        t = time.perf_counter()
        self._val_xy = self._labelled(validation, validation.get("truth"))
        self._pool = None  # (x, y, permutation, position, epochs left)
        self._label_time = time.perf_counter() - t

    def training_batch(self, sampler, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        pool = self._pool
        if pool is None or pool[3] >= len(pool[2]):
            epochs_left = 0 if pool is None else pool[4]
            if pool is None or (epochs_left == 0 and cfg.pool_epochs > 0):
                t = time.perf_counter()
                x, y = self._labelled(*self._draw(sampler, cfg.pool_size))
                self._label_time += time.perf_counter() - t
                epochs_left = cfg.pool_epochs
            else:
                x, y = pool[0], pool[1]
            perm = torch.randperm(len(x), device=self.device)
            # drop the last short batch: every step sees batch_size samples
            perm = perm[: max(len(perm) - len(perm) % cfg.batch_size, min(len(perm), cfg.batch_size))]
            pool = self._pool = [x, y, perm, 0, max(epochs_left - 1, 0)]
        idx = pool[2][pool[3]:pool[3] + cfg.batch_size]
        pool[3] += cfg.batch_size
        return pool[0][idx], pool[1][idx]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.mean((self.forward_normalised(x) - y) ** 2)

    def validation_metrics(self) -> dict[str, float]:
        x, y = self._val_xy
        with torch.no_grad():
            return {"val_mse": float(torch.mean((self.forward_normalised(x) - y) ** 2))}

    def end_training(self) -> dict[str, Any]:
        label_time = getattr(self, "_label_time", 0.0)
        self._val_xy = self._pool = None
        return {"label_time": label_time}

    def training_meta(self) -> dict[str, Any]:
        return {"round_output": self.config.round_output}
