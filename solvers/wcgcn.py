r"""WCGCN: the wireless channel graph convolution network of Shen et al. (power control and beamforming).

Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource Management:
Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115, 2021,
doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632: the layer is eq. (11), the loss Sec. IV (minus the
expected weighted sum rate), the hyper-parameters Sec. V-A/V-B.

Every link is a node, an edge ``j -> i`` carries the channel between link ``j`` and link ``i``; layer
``k`` (eq. 11, weights shared by the layers, max aggregation):

.. math::

    y_i^{(k)} = \mathrm{MLP_2}\Big(x_i^{(k-1)}, \max_{j \in \mathcal N(i)}
        \mathrm{MLP_1}\big(x_j^{(k-1)}, e_{ji}\big)\Big), \qquad
    x_i^{(k)} = \beta\big(y_i^{(k)}\big), \quad \beta = \mathrm{sigmoid}              \quad (11)

and the power is ``p_i = pmax_i * x_i^{(L)}`` after ``L = 3`` layers. Training is unsupervised:
``loss = -E sum_k w_k log2(1 + SINR_k)`` on the last layer (``l2o_env.rates.weighted_sum_rate_torch``),
Adam 1e-3, batch 64 (Sec. IV and the authors' code); we add a cosine decay of the rate to 1e-4
(``Config.lr_final``; set it to ``lr`` for the paper's constant rate).

Node state (3 numbers, as in the authors' code, where MLP2's output replaces the last entry):
``[a_i, w_i, s_i]`` with ``a_i`` the standardised direct SNR ``log10(g_ii pmax_i / sigma_i^2)``,
``w_i`` the weight, ``s_i`` the power fraction of the previous layer. The paper's third input feature
is the noise ``sigma_i^2``; since every gain is measured relative to its receiver's noise, the
normalised noise is 1, which is also the full-power start of WMMSE, so ``s_i^{(0)} = 1``.

Edge ``j -> i`` features (2 numbers): the standardised interference-to-noise ratios at full power
``log10(g_ij pmax_j / sigma_i^2)`` (what ``j`` does to ``i``) and ``log10(g_ji pmax_i / sigma_j^2)``
(what ``i`` does to ``j``; the authors' code also passes the reverse gain). Hence MLP1 is {3+2, 32, 32}
= {5, 32, 32} and MLP2 {3+32, 16, 1} = {35, 16, 1}, exactly the paper's widths.

Normalisation (our choice, documented): the authors' code feeds ``sqrt(gain)`` standardised with
training-set statistics; D2D gains span 1e-10..1e-5 W/W, so a linear scale is dominated by the few
nearest links and its statistics move with K and density. We use the log (dB/10) of the gain relative
to the receiver noise and the transmitter's budget, then standardise with mean/std measured on the
first training batch (stored as buffers, so a checkpoint carries them). A log-ratio does not depend on
the units of power and its distribution shifts only slightly when K grows at a fixed density (so a model
trained at K = 50 generalises to K = 1000, benchmarks/RESULTS.md). A fit of a loaded or fitted model
keeps its statistics (solvers/training.py); only a fresh model measures them.

Graph (Sec. V-B: "h_jk is available to WCGCN only if the distance between transmitter j and receiver
k is within 500 m"; the authors' code uses 300 m, our default, see ``Config.edge_threshold``):

- with positions (observation keys ``tx_pos``/``rx_pos``, metres): edge ``j -> i`` when the distance
  from transmitter ``j`` to receiver ``i`` OR from transmitter ``i`` to receiver ``j`` is at most
  ``edge_threshold`` (symmetrised, since each edge carries both directions' gains);
- without positions (Gaussian IC): the ``max_neighbors`` strongest interferers of each receiver
  (largest ``g_ij``, ``j != i``), i.e. all ``K - 1`` when ``K - 1 <= max_neighbors``.

The edge lists of a batch are built at once (``nonzero`` on a ``(B, K, K)`` mask, node ids offset by
``b K``), so the model runs on any K and any batch size without a Python loop over samples.

Beamforming (Sec. V-C): ``WCGCN(problem="beamforming", num_antennas=Nt)`` builds the beamforming net of
:mod:`solvers.wcgcn_beamforming` (complex channels as reals in each link's own frame, MLP1
{6 Nt + 2, 64, 64}, MLP2 {64 + 2 Nt + 2, 32, 2 Nt}, ``beta(x) = x / max(||x||, 1)``, the same graph builder
and the same layer with a vector output). One class serves both
families: its ``Config.problem`` says which net it holds, and an instance's ``problems`` is that one
family (the class lists both, so ``solvers.available(problem="beamforming")`` has it). ``fit`` on a fresh
model adapts ``problem`` and ``num_antennas`` to the sampler's observations, as the MLP adapts K.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch_geometric.nn import MessagePassing

from l2o_env.problems import get_problem, problem_of_obs
from l2o_env.problems.power import PF_MIN_RATE
from l2o_env.validation import choice, integer, real
from solvers.learned import LearnedSolver

__all__ = ["WCGCN", "WCGCNConv", "WCGCNNet", "build_graph"]

NODE_DIM = 3  # [direct SNR, weight, power fraction]
EDGE_DIM = 2  # [INR j -> i, INR i -> j]
_TINY_DB = -30.0  # log10 floor for zero gains (a gain 1e-30 below the noise is no interference)


def _mlp(widths: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or n < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))  # in place: at K = 1000 the allocations cost more than the math
    return nn.Sequential(*layers)


def _run(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``seq(x)`` for a Linear/ReLU stack of :func:`_mlp`, as functional calls: the modules' ``__call__``
    machinery costs more than their arithmetic on small graphs (one IC K = 10 decision makes ~27 such calls)."""
    for layer in seq:
        x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) else x.relu_()
    return x


class WCGCNConv(MessagePassing):
    r"""One WCGCN layer, eq. (11) of Shen et al. 2021, before the output nonlinearity ``beta``.

    .. math::
        y_i = \mathrm{MLP_2}\big(x_i, \max_{j \in \mathcal N(i)} \mathrm{MLP_1}(x_j, e_{ji})\big)

    A node without neighbours aggregates zeros (PyG's ``max`` on an empty set).

    Args:
        node_dim (int): node state width ``F`` (default 3).
        edge_dim (int): edge feature width ``D`` (default 2).
        hidden1 (int): MLP1 widths ``{F + D, hidden1, hidden1}`` (paper 32).
        hidden2 (int): MLP2 widths ``{F + hidden1, hidden2, 1}`` (paper 16).

    Shapes:
        x ``(|V|, F)``, edge_index ``(2, |E|)`` (row 0 source ``j``, row 1 target ``i``),
        edge_attr ``(|E|, D)`` -> ``(|V|,)``.
    """

    def __init__(self, node_dim: int = NODE_DIM, edge_dim: int = EDGE_DIM, hidden1: int = 32, hidden2: int = 16):
        super().__init__(aggr="max")
        self.mlp1 = _mlp([node_dim + edge_dim, hidden1, hidden1], last_activation=True)  # applied in forward+message
        self.mlp2 = _mlp([node_dim + hidden1, hidden2, 1], last_activation=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (*self.mlp1, *self.mlp2):
            if isinstance(lin, nn.Linear):
                lin.reset_parameters()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        # MLP1's first linear map splits into a node part and an edge part, W [x_j; e] = W_x x_j + W_e e;
        # projecting the nodes once (|V| rows) instead of every edge (|E| rows) is cheaper on large graphs
        first = self.mlp1[0]
        f = x.shape[-1]
        x_proj = x @ first.weight[:, :f].T
        e_proj = torch.addmm(first.bias, edge_attr, first.weight[:, f:].T)
        aggr = self.propagate(edge_index, x=x_proj, edge_attr=e_proj)
        return _run(self.mlp2, torch.cat([x, aggr], dim=-1)).squeeze(-1)

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        # = MLP1(x_j, e_ji) of eq. (11), with its first linear layer applied in forward
        return _run(self.mlp1[1:], x_j + edge_attr)


class StandardisedGNN(nn.Module):
    """What both WCGCN nets share: one message-passing layer ``conv`` applied ``num_layers`` times, and the
    standardisation of the log channel strengths (``feat_mean`` / ``feat_std`` buffers: direct links, then
    cross links), set once from training data by :meth:`set_normalisation` and saved with the weights."""

    def __init__(self, conv: nn.Module, num_layers: int):
        super().__init__()
        self.num_layers = num_layers
        self.conv = conv
        self.register_buffer("feat_mean", torch.zeros(2))
        self.register_buffer("feat_std", torch.ones(2))
        self.register_buffer("normalised", torch.zeros((), dtype=torch.bool))

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def set_normalisation(self, direct_db: torch.Tensor, cross_db: torch.Tensor) -> None:
        """Mean and standard deviation of a batch's direct and cross log strengths (a graph without cross
        links borrows the direct ones; a spread that cannot be estimated counts as 1)."""
        cross_db = cross_db if cross_db.numel() > 1 else direct_db
        mean = torch.stack([direct_db.mean(), cross_db.mean()])
        std = torch.stack([direct_db.std(), cross_db.std()]).nan_to_num(1.0).clamp_min(1e-3)
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std)
        self.normalised.fill_(True)


class WCGCNNet(StandardisedGNN):
    """``num_layers`` applications of one shared :class:`WCGCNConv`, each followed by a sigmoid.

    Holds the feature standardisation (``feat_mean``/``feat_std`` buffers: direct SNR, then the INR
    used by both edge features), set once from training data by :meth:`set_normalisation`.
    """

    def __init__(self, hidden1: int = 32, hidden2: int = 16, num_layers: int = 3):
        super().__init__(WCGCNConv(NODE_DIM, EDGE_DIM, hidden1, hidden2), num_layers)

    def forward(self, direct_db, weight, edge_index, edge_db, all_layers: bool = False):
        """direct_db, weight ``(|V|,)``; edge_index ``(2, |E|)``; edge_db ``(|E|, 2)`` -> fractions ``(|V|,)``
        after the last layer, or (``all_layers=True``) the list of the fractions after each layer."""
        a = (direct_db - self.feat_mean[0]) / self.feat_std[0]
        e = (edge_db - self.feat_mean[1]) / self.feat_std[1]
        s = torch.ones_like(a)  # normalised noise sigma^2 / sigma^2 = 1 = full-power start
        layers = []
        for _ in range(self.num_layers):
            x = torch.stack([a, weight, s], dim=-1)
            s = torch.sigmoid(self.conv(x, edge_index, e))
            if all_layers:
                layers.append(s)
        return layers if all_layers else s


def build_graph(gain: torch.Tensor, *, tx_pos=None, rx_pos=None, edge_threshold: float = 300.0,
                max_neighbors: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edge lists of a batch of interference graphs, vectorised.

    Args:
        gain: ``(B, K, K)`` power gains (row = receiver).
        tx_pos, rx_pos: ``(B, K, 2)`` positions in metres, or ``None`` (then top-``max_neighbors``).
        edge_threshold: metres; edge ``j -> i`` when ``d(tx_j, rx_i)`` or ``d(tx_i, rx_j)`` is at most this.
        max_neighbors: incoming edges per receiver without positions (its strongest interferers).

    Returns:
        ``(edge_index (2, E), b, i, j)``: ``edge_index[0] = b K + j`` (source), ``edge_index[1] = b K + i``
        (target); ``b, i, j`` index the gain matrix of each edge.
    """
    bsz, k, _ = gain.shape
    eye = torch.eye(k, dtype=torch.bool, device=gain.device)
    if tx_pos is not None and rx_pos is not None:
        # d[b, i, j] = |rx_i - tx_j|
        d = torch.cdist(rx_pos, tx_pos)
        near = d <= edge_threshold
        mask = (near | near.transpose(-1, -2)) & ~eye
    elif k - 1 <= max_neighbors:
        mask = ~eye.expand(bsz, k, k)
    else:
        cross = gain.masked_fill(eye, -1.0)
        top = cross.topk(max_neighbors, dim=-1).indices
        mask = torch.zeros(bsz, k, k, dtype=torch.bool, device=gain.device)
        mask.scatter_(-1, top, True)
    # nonzero on the flat mask is faster than on (B, K, K) (one index column instead of three)
    flat = mask.reshape(-1).nonzero().squeeze(1)
    b, rem = flat // (k * k), flat % (k * k)
    i, j = rem // k, rem % k
    edge_index = torch.stack([b * k + j, b * k + i])
    return edge_index, b, i, j


#: the problem families a WCGCN net exists for, and their paper widths (hidden1, hidden2)
FAMILIES = ("power", "beamforming")
_WIDTHS = {"power": (32, 16), "beamforming": (64, 32)}


class _ConfigFamily:
    """``WCGCN.problems``: both families on the class (what the registry lists), the config's one on an
    instance (what routing and the harness check), so it always follows the config (load, fit)."""

    def __get__(self, obj, owner=None) -> frozenset[str]:
        if obj is None:
            return frozenset(FAMILIES)
        return frozenset({obj.config.problem})


#: the largest weight the net reads: proportional fairness's cap, the largest weight an env gives
MAX_WEIGHT = 1.0 / PF_MIN_RATE


def _capped(weight: torch.Tensor) -> torch.Tensor:
    """Weights ``(B, K)``; a sample whose largest weight exceeds :data:`MAX_WEIGHT` has them all scaled down
    together to that maximum: the same problem (the weighted sum rate's maximiser does not change when every
    weight is multiplied by one number), and a node feature the net can take (1e38 overflows it into NaN)."""
    top = weight.amax(-1, keepdim=True)
    if bool((top <= MAX_WEIGHT).all()):
        return weight
    return weight / (top / MAX_WEIGHT).clamp_min(1.0)


def _log10_snr(gain: torch.Tensor, pmax: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``log10(gain pmax / noise)`` floored at ``_TINY_DB`` (a zero gain or budget gives the floor), in the
    dtype of ``gain``. Summed as logarithms in float64: the product and the ratio of float32 observations
    overflow float32 (a gain of 1e20 at 1e20 W over a noise of 1e-45 W is 1e85), each logarithm does not."""
    db = torch.log10(gain.double()) + torch.log10(pmax.double()) - torch.log10(noise.double())
    return db.clamp_min(_TINY_DB).to(gain.dtype)


class WCGCN(LearnedSolver):
    """WCGCN power control and beamforming (Shen et al. 2021, eq. 11; Sec. V-C) behind the Solver interface.

    >>> import solvers
    >>> net = solvers.make("wcgcn", pretrained=True)        # doctest: +SKIP  (D2D, K = 50)
    >>> power = net.act_batch(obs)                           # doctest: +SKIP  (B, K) watts
    >>> bf = solvers.make("wcgcn", pretrained="bf")         # doctest: +SKIP  (Beamforming-D2D-v0, Nt = 2)
    >>> precoders = bf.act_batch(bf_obs)                     # doctest: +SKIP  (B, K, Nt, 1, 2)

    ``Config.problem`` chooses the family: ``"power"`` (the default; powers ``(B, K)``) or ``"beamforming"``
    (precoders ``(B, K, Nt, 1, 2)`` of single-antenna-receiver networks, :mod:`solvers.wcgcn_beamforming`).
    An instance solves its config's family only (``problems``); the class lists both. ``fit`` on a fresh
    model adapts ``problem`` and ``num_antennas`` to the sampler's observations; a loaded or fitted model
    of one family refuses the other's data.

    Uses the observation keys ``gain``, ``weight``, ``noise``, ``pmax`` and, when present, ``tx_pos`` /
    ``rx_pos`` (metres) to build the distance-threshold graph. Runs on any K.

    Training (``fit``, the shared loop of :mod:`solvers.training`): unsupervised (Sec. IV), minus the mean
    weighted sum rate of the last layer, Adam at ``lr`` with a cosine decay to ``lr_final`` over the fit's
    steps. A fresh model measures its feature standardisation on the first training batch (also the batch
    of step 1); a loaded or fitted one keeps its own. :meth:`forward_layers` gives every layer's powers.
    """

    name = "wcgcn"
    problems = _ConfigFamily()

    @dataclass
    class Config:
        """Hyper-parameters; defaults from Shen et al. 2021, Sec. V-A/V-B, and the authors' code."""

        hidden1: int | None = None
        """MLP1 hidden/output width; ``None``: the family's paper width, power 32 ({5, 32, 32}, Sec. V-A),
        beamforming 64 ({6 Nt + 2, 64, 64}, Sec. V-C)."""
        hidden2: int | None = None
        """MLP2 hidden width; ``None``: power 16 ({3 + hidden1, 16, 1}), beamforming 32
        ({2 Nt + 2 + hidden1, 32, 2 Nt})."""
        num_layers: int = 3
        """Layers sharing one set of weights (Sec. III-C / authors' code: 3)."""
        edge_threshold: float = 300.0
        """Metres: links closer than this are neighbours when positions are observed. The paper (Sec. V-B)
        uses 500 m, the authors' code 300 m; we default to 300 m: at K = 1000 (same density) it gives far
        fewer edges, which keeps one decision within the 50 ms target on a CPU core (benchmarks/RESULTS.md)."""
        max_neighbors: int = 32
        """Without positions: incoming edges per receiver, its strongest interferers (all when K - 1 <= this)."""
        lr: float = 1e-3
        """Adam learning rate (Sec. IV)."""
        lr_final: float = 1e-4
        """Learning rate at the last step (cosine decay from ``lr``; set equal to ``lr`` for the paper's constant rate)."""
        batch_size: int = 64
        """Training batch (authors' code: 64)."""
        steps: int = 3000
        """Training steps of ``fit`` when ``steps`` is not passed (64 x 3000 = 192k on-the-fly samples)."""
        val_size: int = 512
        """Validation batch drawn once from the sampler (when ``validation`` is not given)."""
        val_every: int = 100
        """Steps between validations; the best validated weights are kept."""
        problem: str = "power"
        """The problem family of the net: ``"power"`` (power control) or ``"beamforming"`` (Sec. V-C). A fresh
        model's ``fit`` sets it (and ``num_antennas``) from the sampler's observations."""
        num_antennas: int = 1
        """Transmit antennas ``Nt`` of the beamforming net (1 for power control)."""

        def __post_init__(self):
            for field in ("hidden1", "hidden2"):
                if getattr(self, field) is not None:
                    setattr(self, field, integer("WCGCN", f"config.{field}", getattr(self, field)))
            for field in ("num_layers", "max_neighbors", "batch_size", "steps", "val_size", "val_every",
                          "num_antennas"):
                setattr(self, field, integer("WCGCN", f"config.{field}", getattr(self, field)))
            self.problem = choice("WCGCN", "config.problem", self.problem, FAMILIES)
            if self.problem == "power" and self.num_antennas != 1:
                raise ValueError(f"WCGCN: config.num_antennas must be 1 for problem='power', got {self.num_antennas}")
            for field in ("edge_threshold", "lr", "lr_final"):
                setattr(self, field, real("WCGCN", f"config.{field}", getattr(self, field), above=0.0))

    # --- model ---------------------------------------------------------------------------------
    @property
    def widths(self) -> tuple[int, int]:
        """``(hidden1, hidden2)`` of the net: the config's, or the family's paper widths where it says ``None``."""
        c = self.config
        d1, d2 = _WIDTHS[c.problem]
        return (d1 if c.hidden1 is None else c.hidden1, d2 if c.hidden2 is None else c.hidden2)

    @property
    def beamforming(self) -> bool:
        """Whether the net is the beamforming one (``config.problem == "beamforming"``)."""
        return self.config.problem == "beamforming"

    def build(self) -> nn.Module:
        c = self.config
        h1, h2 = self.widths
        if self.beamforming:
            from solvers.wcgcn_beamforming import WCGCNBeamformingNet

            return WCGCNBeamformingNet(c.num_antennas, h1, h2, c.num_layers)
        return WCGCNNet(h1, h2, c.num_layers)

    def _graph(self, obs: Mapping[str, torch.Tensor]):
        """:func:`build_graph` of a batch, after checking its (optional) positions."""
        if self.beamforming:
            from solvers.wcgcn_beamforming import beamforming_graph

            return beamforming_graph(obs, edge_threshold=self.config.edge_threshold,
                                     max_neighbors=self.config.max_neighbors)
        gain = obs["gain"]
        bsz, k, _ = gain.shape
        tx, rx = obs.get("tx_pos"), obs.get("rx_pos")
        if (tx is None) != (rx is None):
            raise ValueError("WCGCN: obs must carry both 'tx_pos' and 'rx_pos' or neither")
        if tx is not None and (tx.shape != (bsz, k, 2) or rx.shape != (bsz, k, 2)):
            raise ValueError(f"WCGCN: obs['tx_pos'] and obs['rx_pos'] must have shape {(bsz, k, 2)}, "
                             f"got {tuple(tx.shape)} and {tuple(rx.shape)}")
        return build_graph(gain, tx_pos=tx, rx_pos=rx, edge_threshold=self.config.edge_threshold,
                           max_neighbors=self.config.max_neighbors)

    def _features(self, obs: Mapping[str, torch.Tensor]):
        if self.beamforming:
            from solvers.wcgcn_beamforming import beamforming_features

            nt = obs["channel"].shape[-2]
            if nt != self.config.num_antennas:
                raise ValueError(f"WCGCN: this net is a {self._family_text('beamforming', self.config.num_antennas)} "
                                 f"net; the observation's channel {tuple(obs['channel'].shape)} has Nt = {nt} "
                                 "transmit antennas. Fit a WCGCN on that network (a fresh one adapts to the data)")
            return beamforming_features(obs, edge_threshold=self.config.edge_threshold,
                                        max_neighbors=self.config.max_neighbors)
        gain, noise, pmax = obs["gain"], obs["noise"], obs["pmax"]
        edge_index, b, i, j = self._graph(obs)
        direct = torch.diagonal(gain, dim1=-2, dim2=-1)
        # pmax = 0 links get a floor value; their power is 0 anyway (p = x pmax)
        direct_db = _log10_snr(direct, pmax, noise).reshape(-1)
        inr_in = _log10_snr(gain[b, i, j], pmax[b, j], noise[b, i])   # j's interference at i
        inr_out = _log10_snr(gain[b, j, i], pmax[b, i], noise[b, j])  # i's interference at j
        return direct_db, edge_index, torch.stack([inr_in, inr_out], dim=-1)

    #: edges per ``forward`` call in ``act_batch`` on the CPU. The ``(|E|, 32)`` messages of a chunk then stay
    #: in cache, several times faster than one piece on large batches (benchmarks/RESULTS.md, WCGCN)
    infer_edges: int = 12_000
    input_keys = ("gain", "noise", "pmax", "weight", "tx_pos", "rx_pos", "channel", "tx_of_link")

    def _inference_chunk(self, obs: Mapping[str, torch.Tensor]) -> int:
        bsz, k = obs["weight"].shape  # (B, K) in both families
        if bsz == 1 or bsz * k * (k - 1) <= self.infer_edges:  # one chunk holds every edge there can be
            return bsz
        # edges per sample estimated on the first sample (the graph depends on the layout; building it
        # once more costs 1 / B of the batch's graph)
        keys = ("gain", "tx_pos", "rx_pos", "channel", "tx_of_link", "noise", "pmax")
        head = {key: v[:1] for key, v in obs.items() if key in keys}
        edges, *_ = self._graph(head)
        per_sample = max(1.0, edges.shape[1])
        return max(1, int(self.infer_edges / per_sample))

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Batched observation tensors -> powers ``(B, K)`` in watts, or (beamforming) precoders
        ``(B, K, Nt, 1, 2)`` (differentiable)."""
        return self.forward_layers(obs, all_layers=False)[-1]

    def forward_layers(self, obs: Mapping[str, torch.Tensor], all_layers: bool = True) -> list[torch.Tensor]:
        """Actions after each of the ``num_layers`` layers (the last one is :meth:`forward`): powers ``(B, K)``
        in watts, or precoders ``(B, K, Nt, 1, 2)``."""
        if self.beamforming:
            from solvers.wcgcn_beamforming import precoders_from_fractions

            q, direct_db, edge_index, edge_in, edge_out = self._features(obs)
            out = self.model(direct_db, _capped(obs["weight"]).reshape(-1), edge_index, edge_in, edge_out,
                             all_layers=all_layers)
            return [precoders_from_fractions(obs, q, y) for y in (out if all_layers else [out])]
        gain, pmax = obs["gain"], obs["pmax"]
        direct_db, edge_index, edge_db = self._features(obs)
        out = self.model(direct_db, _capped(obs["weight"]).reshape(-1), edge_index, edge_db, all_layers=all_layers)
        return [frac.reshape(gain.shape[0], gain.shape[-1]) * pmax for frac in (out if all_layers else [out])]

    # --- training (hooks of the shared loop, solvers/training.py; described in the class docstring) ---
    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps: int):
        c = self.config
        total = max(steps, 1)

        def factor(s: int) -> float:
            return (c.lr_final + 0.5 * (c.lr - c.lr_final) * (1 + math.cos(math.pi * min(s / total, 1.0)))) / c.lr

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def adapt_to(self, validation: Mapping[str, np.ndarray]) -> None:
        """A fresh model takes the family (and ``Nt``) of the data, and its widths become numbers (the family's
        where the config says ``None``, so a checkpoint does not depend on these defaults); a loaded or fitted
        model must match the data."""
        family = problem_of_obs(validation, FAMILIES).name
        nt = int(np.shape(validation["channel"])[-2]) if family == "beamforming" else 1
        mine = (self.config.problem, self.config.num_antennas)
        if (family, nt) != mine and self._trained:
            raise ValueError(f"WCGCN.fit: this model is a trained {self._family_text(*mine)} net; the sampler gives "
                             f"{self._family_text(family, nt)} observations. Fit a fresh WCGCN on them (it adapts to "
                             f"the data)")
        if not self._trained:
            self.config = dataclasses.replace(self.config, problem=family, num_antennas=nt)
            self.config = dataclasses.replace(self.config, **dict(zip(("hidden1", "hidden2"), self.widths)))

    @staticmethod
    def _family_text(family: str, nt: int) -> str:
        return f"beamforming (Nt = {nt})" if family == "beamforming" else family

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Minus the mean weighted sum rate of :meth:`forward` (the problem's differentiable rates), scored on
        ``batch["truth"]`` (the true current channel) when the batch carries it (aged or noisy CSI)."""
        if not self.beamforming:
            return super().loss(batch)
        scored = batch.get("truth", batch)
        rates = get_problem("beamforming").rates_torch(scored, self.forward(batch))
        return -(scored["weight"] * rates).sum(-1).mean()

    def start_training(self, sampler, validation) -> None:
        self._first_batch = self.training_batch(sampler, 0)
        if not bool(self.model.normalised):
            with torch.no_grad():
                if self.beamforming:
                    from solvers.wcgcn_beamforming import canonical

                    _, direct_db, _, edge_in, _ = self._features(self._first_batch)
                    self.model.set_normalisation(direct_db, canonical(edge_in)[1])
                else:
                    d, _, e = self._features(self._first_batch)
                    self.model.set_normalisation(d, e[:, 0])

    def training_batch(self, sampler, step: int) -> dict[str, torch.Tensor]:
        first = getattr(self, "_first_batch", None)
        if step == 1 and first is not None:
            self._first_batch = None
            return first
        return super().training_batch(sampler, step)

    def end_training(self) -> dict[str, Any]:
        self._first_batch = None
        return {}
