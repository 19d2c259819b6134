"""UWMMSE: WMMSE unfolded into a few layers whose w-update is modulated by graph neural networks.

A. Chowdhury, G. Verma, C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using Graph Neural Networks for
Efficient Power Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017, 2021,
doi:10.1109/TWC.2021.3071480, arXiv:2009.10812: eqs. (5)-(12), Sec. IV (setup, Table I) and Sec. IV-E
(robust training over network densities).

Layer ``k = 1..L`` (eqs. 5-8), from ``v^(0) = sqrt(p_max)``; the u/w/v updates are
:func:`solvers.wmmse_core.wmmse_layer` (the one WMMSE), only ``a`` and ``b`` are learned:

.. math::

    a^{(k)} = \\Psi(H; \\theta_a^{(k)}), \\quad b^{(k)} = \\Psi(H; \\theta_b^{(k)})            \\quad (5)

    u_i = \\frac{h_{ii} v_i}{\\sigma_i^2 + \\sum_j h_{ij}^2 v_j^2}                               \\quad (6)

    w_i = \\frac{a_i}{1 - u_i h_{ii} v_i} + b_i                                                  \\quad (7)

    v_i = \\Big[\\frac{\\alpha_i u_i h_{ii} w_i}{\\sum_j \\alpha_j h_{ji}^2 u_j^2 w_j}\\Big]_0^{\\sqrt{p_{max}}}  \\quad (8)

and ``p = (v^(L))^2``. With ``a = 1, b = 0`` the net is WMMSE truncated to ``L`` iterations.
``alpha_i`` are the observation's weights (the paper uses 1; the weighted form is WMMSE's own).

``Psi`` is the paper's 2-layer GCN (eqs. 11-12) on the amplitude graph ``H``:

.. math::

    Z = \\mathrm{ReLU}(\\mathrm{diag}(H) Q W_{11} + H Q W_{12} + \\beta_1)                          \\quad (12)

    \\Psi(H) = \\mathrm{sigmoid}(\\mathrm{diag}(H) Z \\omega_{21} + H Z \\omega_{22} + \\beta_2)     \\quad (11)

with node features ``Q = 1`` (paper) or ``Q = [1, w]`` (the link weights, Remark 3:
``node_features="weight"``); the biases ``beta`` are the authors' code's (initialised to 0.1 + 0.1),
absent from eqs. (11)-(12) (``bias=False`` drops them). The sigmoid keeps ``a, b`` in ``[0, 1]``.

Graph and index convention. The paper's Sec. IV writes ``H_ij`` for transmitter ``i`` -> receiver ``j``
(the authors' code builds ``H[i, j] = |t_i - r_j|^-2.2 x Rayleigh``), whereas our ``gain[i, j]`` is
transmitter ``j`` -> receiver ``i`` (DESIGN.md). The GCN therefore runs on ``H = sqrt(gain)^T``: node
``i`` aggregates the amplitudes of the links its transmitter interferes with, as in the authors' code.

Input scale (our choice, documented). Amplitudes ``d^-2.2`` span many decades across layouts and
densities, while WMMSE itself is invariant to a global gain scale at low noise. The GCN sees
``H / s`` with ``s`` per sample (``input_scale``): ``"mean_diag"`` (default) the mean direct amplitude
``mean_i h_ii``, ``"max"`` the largest amplitude, ``"none"`` raw amplitudes (the authors' code). Both
scaled versions make ``a, b`` invariant to multiplying every gain by a constant. Across densities the
scaled amplitudes are still heavy-tailed (a receiver next to an interferer gives entries ~1e5 that
saturate the sigmoids and made training diverge), so the robust model reads ``log(1 + H / s)``
(``input_transform="log1p"``); a fixed topology trains well on the linear ``H / s``.

Shipped checkpoints (``examples/train_uwmmse.py``; numbers in ``benchmarks/RESULTS.md``):
``uwmmse.pt`` (default) is the robust variant of Sec. IV-E: 20-link ad hoc networks, a new random layout
per sample and a random paper density factor ``d ~ U[0.5, 5]`` per batch; the env's ``density`` is an
area factor (coordinates divided by ``sqrt(density)``), so ``density = d^2``. ``uwmmse-fixed.pt``
(``pretrained="fixed"``) is Table I's setting: the one layout of
``ObservationSampler("PowerControl-AdHoc-v0", seed=0, num_links=20, topology="fixed")``; it is meant for
that layout only.

Not in this implementation: the authors' code also learns a scalar ``mu`` per layer added to the
denominator of (8); the paper's equations do not have it and :func:`wmmse_layer` is kept as the one
WMMSE, so we leave it out.

Shapes:
    gain ``(B, K, K)``; weight, noise, pmax ``(B, K)``  ->  powers ``(B, K)`` in watts. Any ``K``: the
    GCN weights do not depend on the number of links (the net is permutation equivariant, Prop. 1-2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from l2o_env.validation import choice, integer, real
from solvers.learned import LearnedSolver, to_torch
from solvers.wmmse_core import wmmse_layer, wmmse_prepare

__all__ = ["UWMMSE", "UWMMSEConfig", "GCNBank", "UWMMSENet"]

_INPUT_SCALES = ("mean_diag", "max", "none")
_NODE_FEATURES = ("ones", "weight")
_AGGREGATES = ("out", "both")
_TRANSFORMS = ("linear", "log1p")
_DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: the GCN input scale is at least this fraction of the largest amplitude (see UWMMSENet.coefficients)
_MIN_SCALE = 2.0**-40


@dataclass
class UWMMSEConfig:
    """Hyper-parameters of UWMMSE; defaults are the paper's (Sec. IV) unless marked "code" or "ours".

    Attributes:
        num_layers: unfolded WMMSE layers ``L`` (Sec. IV: 4).
        hidden: GCN hidden features ``F`` (Sec. IV: 4; the authors' code: 5).
        bias: GCN biases, initialised to 0.1 per term (code; eqs. 11-12 have none).
        node_features: ``"ones"`` (Sec. IV) or ``"weight"`` (``Q = [1, w]``, Remark 3).
        input_scale: what the amplitude graph is divided by before the GCN (ours, see module docstring):
            ``"mean_diag"``, ``"max"`` or ``"none"``.
        input_transform: ``"linear"`` (the GCN reads ``H / s``, eqs. 11-12) or ``"log1p"`` (ours: it reads
            ``log(1 + H / s)``, which keeps the heavy tail of ``d^-2.2`` amplitudes (a receiver next to an
            interferer in a dense network) from saturating the sigmoids).
        aggregate: ``"out"``: eqs. (11)-(12) on the paper's ``H`` (node ``i`` sums the links its
            transmitter interferes with, as the authors' code); ``"both"`` (ours) adds a term with
            ``H^T`` (the interference its receiver hears) to both GCN layers.
        dtype: ``"float64"`` (authors' code) or ``"float32"``: parameters and the unfolded WMMSE layers.
        gcn_dtype: precision of the GCN's activations (ours; ``"float32"`` default): ``a, b`` need no more
            than 7 digits, and float32 halves the cost of the ``(B, K, K)`` passes (sqrt, log1p,
            aggregation) that dominate the GCN; the WMMSE layers stay in ``dtype``.
        lr: Adam learning rate (Sec. IV: 1e-3).
        batch_size: channel samples per step (Sec. IV: 64).
        steps: training steps (Sec. IV: 10,000; the authors' code runs up to 20 epochs of 10,000).
        grad_clip: global gradient-norm clip (code: 5.0); ``0`` disables it.
        val_size: samples in the fixed validation batch (ours).
        val_every: steps between validations (ours).
        patience: early stopping after this many validations without a new best (ours; ``0`` = never).
    """

    num_layers: int = 4
    hidden: int = 4
    bias: bool = True
    node_features: str = "ones"
    input_scale: str = "mean_diag"
    input_transform: str = "linear"
    aggregate: str = "out"
    dtype: str = "float64"
    gcn_dtype: str = "float32"
    lr: float = 1e-3
    batch_size: int = 64
    steps: int = 10_000
    grad_clip: float = 5.0
    val_size: int = 1024
    val_every: int = 250
    patience: int = 20

    def __post_init__(self):
        who = "UWMMSEConfig"
        for name in ("num_layers", "hidden", "batch_size", "steps", "val_size", "val_every"):
            setattr(self, name, integer(who, name, getattr(self, name)))
        self.patience = integer(who, "patience", self.patience, minimum=0)
        choice(who, "node_features", self.node_features, _NODE_FEATURES)
        choice(who, "input_scale", self.input_scale, _INPUT_SCALES)
        choice(who, "input_transform", self.input_transform, _TRANSFORMS)
        choice(who, "aggregate", self.aggregate, _AGGREGATES)
        choice(who, "dtype", self.dtype, tuple(_DTYPES))
        choice(who, "gcn_dtype", self.gcn_dtype, tuple(_DTYPES))
        self.lr = real(who, "lr", self.lr, above=0.0)
        self.grad_clip = real(who, "grad_clip", self.grad_clip, at_least=0.0)  # 0 disables clipping


class GCNBank(nn.Module):
    """``G`` independent 2-layer GCNs of eqs. (11)-(12), evaluated together (one matmul per layer).

    All ``2 L`` coefficient maps of UWMMSE read the same graph, so they are batched along a GCN axis
    instead of looping over ``2 L`` modules.

    Args:
        num_gcns: ``G`` (``2 L``: ``a`` and ``b`` of every layer).
        in_features: node features ``F'`` (1 for ``Q = 1``).
        hidden: hidden features ``F``.
        bias: add the biases of the authors' code.
        both: also aggregate over the transposed graph (``aggregate="both"``).

    Shapes:
        graph ``(B, K, K)`` (paper's ``H``, row = transmitter), diag ``(B, K)``, features ``(B, K, F')``
        (``None``: ``Q = 1``), scale ``(B,)`` or ``None`` -> ``(B, G, K)`` in ``(0, 1)``, in the graph's dtype.
    """

    def __init__(self, num_gcns: int, in_features: int, hidden: int, bias: bool = True, both: bool = False):
        super().__init__()
        self.num_gcns, self.in_features, self.hidden = num_gcns, in_features, hidden
        # first layer: one (F', G*F) matrix per term, so both terms are single matmuls
        self.w11 = nn.Parameter(torch.empty(in_features, num_gcns * hidden))
        self.w12 = nn.Parameter(torch.empty(in_features, num_gcns * hidden))
        self.w21 = nn.Parameter(torch.empty(num_gcns, hidden))
        self.w22 = nn.Parameter(torch.empty(num_gcns, hidden))
        if both:  # the H^T terms of aggregate="both"
            self.w13 = nn.Parameter(torch.empty(in_features, num_gcns * hidden))
            self.w23 = nn.Parameter(torch.empty(num_gcns, hidden))
        else:
            self.register_parameter("w13", None)
            self.register_parameter("w23", None)
        if bias:
            self.b1 = nn.Parameter(torch.empty(num_gcns * hidden))
            self.b2 = nn.Parameter(torch.empty(num_gcns))
        else:
            self.register_parameter("b1", None)
            self.register_parameter("b2", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights per GCN (fan-in/out of that GCN's matrices), biases 0.2 (code: 0.1 + 0.1)."""
        f_in, f = self.in_features, self.hidden
        with torch.no_grad():
            lim1 = math.sqrt(6.0 / (f_in + f))
            lim2 = math.sqrt(6.0 / (f + 1))
            self.w11.uniform_(-lim1, lim1)
            self.w12.uniform_(-lim1, lim1)
            self.w21.uniform_(-lim2, lim2)
            self.w22.uniform_(-lim2, lim2)
            if self.w13 is not None:
                self.w13.uniform_(-lim1, lim1)
                self.w23.uniform_(-lim2, lim2)
            if self.b1 is not None:
                self.b1.fill_(0.2)
                self.b2.fill_(0.2)

    def forward(self, graph: torch.Tensor, diag: torch.Tensor, features: torch.Tensor,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        """``graph`` may be a transposed view; ``scale (B,)``, when given, divides ``graph`` and ``diag``.

        Both layers are linear in ``graph``, so ``H / s`` is applied to the aggregated ``(B, K, .)``
        results instead of the ``(B, K, K)`` matrix, and ``H Q`` is formed before the weights (``F'``
        columns instead of ``G F``). Each layer is then ONE matmul against the stacked weights, so the
        only ``(B, K, G F)`` tensor is ``Z`` (the GCNs cost about what a few WMMSE iterations cost).
        """
        bsz, k = diag.shape
        g, f = self.num_gcns, self.hidden
        dt = graph.dtype
        inv = None if scale is None else (1.0 / scale)[:, None, None]
        both = self.w13 is not None

        def aggregate(mat, x):  # (H / s) x; x = None stands for Q = 1 (a row sum, no matmul)
            y = mat.sum(-1, keepdim=True) if x is None else mat @ x
            return y if inv is None else y * inv

        def param(p):  # parameters live in the model dtype; the activations in the graph's
            return p.to(dt)

        d = (diag if inv is None else diag * inv[:, :, 0]).unsqueeze(-1)
        # (12): Z = ReLU(diag(H) Q W11 + H Q W12 [+ H^T Q W13] + b1) = ReLU([dQ, HQ, (H^T Q), 1] W1)
        parts = [d if features is None else d * features, aggregate(graph, features)]
        weights = [self.w11, self.w12]
        if both:
            parts.append(aggregate(graph.transpose(-1, -2), features))
            weights.append(self.w13)
        if self.b1 is not None:
            parts.append(torch.ones_like(d))
            weights.append(self.b1.unsqueeze(0))
        z = torch.relu_(torch.cat(parts, dim=-1) @ param(torch.cat(weights, dim=0)))  # (B, K, G F)
        # (11): per GCN, Z w21 (self), Z w22 (H) [, Z w23 (H^T)] as one block-diagonal matmul
        heads = [self.w21, self.w22] + ([self.w23] if both else [])
        eye = torch.eye(g, dtype=dt, device=z.device)
        w2 = torch.cat([(param(w).unsqueeze(-1) * eye.unsqueeze(1)).reshape(g * f, g) for w in heads], dim=1)
        y = z @ w2  # (B, K, len(heads) G)
        out = d * y[..., :g] + aggregate(graph, y[..., g:2 * g])
        if both:
            out = out + aggregate(graph.transpose(-1, -2), y[..., 2 * g:])
        if self.b2 is not None:
            out = out + param(self.b2)
        # clamp: a sigmoid that rounds to exactly 0 gives w = 0, a link stuck at v = 0 and, once every
        # w_j u_j^2 of a column is 0, a 0/0 in the backward pass of eq. (8); sigmoid(+-30) is 1e-13 off
        return torch.sigmoid(out.clamp(-30.0, 30.0)).transpose(1, 2)


class UWMMSENet(nn.Module):
    """The unfolded network: GCN coefficients (eq. 5) then ``L`` calls of :func:`wmmse_layer` (eqs. 6-8).

    Shapes:
        gain ``(B, K, K)``; noise, pmax, weight ``(B, K)``  ->  power ``(B, K)``.
    """

    def __init__(self, config: UWMMSEConfig):
        super().__init__()
        self.num_layers = config.num_layers
        self.input_scale = config.input_scale
        self.log_input = config.input_transform == "log1p"
        self.gcn_dtype = _DTYPES[config.gcn_dtype]
        self.node_features = config.node_features
        in_features = 1 if config.node_features == "ones" else 2
        self.gcn = GCNBank(2 * config.num_layers, in_features, config.hidden, config.bias,
                           both=config.aggregate == "both")

    def coefficients(self, gain, weight) -> tuple[torch.Tensor, torch.Tensor]:
        """``a, b`` of every layer, each ``(B, L, K)`` (eq. 5)."""
        # paper's H (row = transmitter) is the transpose of our amplitude matrix (row = receiver)
        dt = self.gcn_dtype
        graph = gain.to(dt).clamp_min(0.0).sqrt().transpose(-1, -2)
        # a gain beyond the GCN's dtype (above 3.4e38 for float32): the amplitudes and their scale in the gains'
        # dtype, divided by the scale before the cast (the GCN is linear in H / s, or reads log1p(H / s))
        prescale = dt != gain.dtype and not bool(torch.isfinite(graph).all())
        if prescale:
            graph = gain.clamp_min(0.0).sqrt().transpose(-1, -2)
        diag = torch.diagonal(graph, dim1=-2, dim2=-1)
        scale = None
        if self.input_scale == "mean_diag":
            scale = diag.mean(dim=-1)
        elif self.input_scale == "max":
            scale = graph.flatten(1).amax(dim=-1)
        if scale is not None:
            # a network whose direct links are all (nearly) zero has mean_diag = 0: H / s would overflow to inf
            # and the GCN output to NaN. The scale never drops below 2^-40 of the largest amplitude (realistic
            # networks are far from it), so H / s stays finite and a zero network stays zero.
            top = graph.flatten(1).amax(dim=-1)
            scale = torch.maximum(scale, top * _MIN_SCALE).clamp_min(torch.finfo(dt).tiny)
        if prescale:
            if scale is not None:
                graph = graph * (1.0 / scale)[:, None, None]
            graph = graph.to(dt)
            diag = torch.diagonal(graph, dim1=-2, dim2=-1)
            scale = None
        if self.log_input:  # the GCN is no longer linear in H: transform the matrix itself
            if scale is not None:
                graph = graph * (1.0 / scale)[:, None, None]
            graph = torch.log1p(graph)
            diag = torch.diagonal(graph, dim1=-2, dim2=-1)
            scale = None
        features = None if self.node_features == "ones" else torch.stack([torch.ones_like(diag), weight.to(dt)], dim=-1)
        coeff = self.gcn(graph, diag, features, scale).to(gain.dtype)
        return coeff[:, 0::2], coeff[:, 1::2]

    def unfold(self, gain, noise, pmax, weight, a, b, all_layers: bool = False):
        """Eqs. (6)-(8) for ``L`` layers from ``v0 = sqrt(pmax)`` with given ``a, b (B, L, K)``; returns the
        power after the last layer, or (``all_layers=True``) the list of the powers after each layer."""
        prepared = wmmse_prepare(gain, pmax)
        v = prepared.vmax
        powers = []
        for k in range(self.num_layers):
            v = wmmse_layer(gain, noise, pmax, weight, v, a=a[:, k], b=b[:, k], prepared=prepared)
            if all_layers:
                powers.append(v * v)
        return powers if all_layers else v * v

    def forward(self, gain, noise, pmax, weight, all_layers: bool = False):
        a, b = self.coefficients(gain, weight)
        return self.unfold(gain, noise, pmax, weight, a, b, all_layers=all_layers)


class UWMMSE(LearnedSolver):
    """Unfolded WMMSE whose w-update is set per layer by graph neural networks (Chowdhury et al. 2021).

    The layers and the GCN are described in the module docstring.

    Training (``fit``, the shared loop of :mod:`solvers.training`): unsupervised, minus the mean weighted
    sum rate of the last layer (eq. 9), Adam at ``lr``, gradients clipped to ``grad_clip``; a batch whose
    gradient is not finite is skipped (history / meta ``skipped_steps``), and training stops after
    ``patience`` validations without a new best. For the robust variant of Sec. IV-E the sampler draws a
    random density per call (``examples/train_uwmmse.py``); the solver itself does not see densities.

    Args:
        config: :class:`UWMMSEConfig`, or its fields as keyword arguments (``num_layers=4``, ...).
        pretrained: ``True`` loads ``solvers/checkpoints/uwmmse.pt`` (the robust model: ad hoc networks,
            20 links, random layouts and densities); a tag loads ``uwmmse-<tag>.pt``.
        checkpoint: path of a checkpoint written by :meth:`save`.
        device: torch device.

    Example:
        >>> import solvers
        >>> s = solvers.make("uwmmse", pretrained=True)   # doctest: +SKIP
        >>> p = s.act_batch(obs)                          # (B, K) watts   # doctest: +SKIP
    """

    name = "uwmmse"
    problems = frozenset({"power"})
    Config = UWMMSEConfig

    def build(self) -> nn.Module:
        return UWMMSENet(self.config).to(_DTYPES[self.config.dtype])

    #: samples per chunk in ``act_batch`` on the CPU: keeps the ``(chunk, K, 2 L F)`` hidden features and the
    #: gains of a chunk in cache (faster than one piece on large batches; benchmarks/RESULTS.md, UWMMSE)
    infer_chunk: int = 512
    input_keys = ("gain", "noise", "pmax", "weight")

    def _inference_chunk(self, obs: Mapping[str, torch.Tensor]) -> int:
        return self.infer_chunk

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.model(obs["gain"], obs["noise"], obs["pmax"], obs["weight"])

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        power = super()._solve(obs)
        if not np.isfinite(power).all():  # the WMMSE layers overflow only beyond the float32 range of the input
            rows = np.flatnonzero(~np.isfinite(power).all(-1))
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                snr = float(np.max(obs["gain"] * obs["pmax"][:, None, :] / obs["noise"][..., None]))
            raise ValueError(f"UWMMSE: the unfolded WMMSE layers left the floating-point range on sample(s) "
                             f"{rows[:10].tolist()}: the observation's SNR (gain x pmax / noise) reaches {snr:.3g}, "
                             "beyond what they can represent (observations within the float32 range stay inside it)")
        return power

    def coefficients(self, obs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The learned ``a, b`` (each ``(B, L, K)``) of a batched observation (Sec. IV-D's analysis)."""
        t = to_torch(obs, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            a, b = self.model.coefficients(t["gain"], t["weight"])
        return a.cpu().double().numpy(), b.cpu().double().numpy()

    def forward_layers(self, obs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Powers ``(B, K)`` after each of the ``L`` unfolded layers (the last one is :meth:`forward`)."""
        return self.model(obs["gain"], obs["noise"], obs["pmax"], obs["weight"], all_layers=True)

    # --- training (hooks of the shared loop, solvers/training.py; described in the class docstring) ---
    skip_nonfinite = True
