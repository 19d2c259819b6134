r"""The structured network for multi-cell MIMO beamforming: precoders updated as ``W_L V W_R`` in a learned
lifted space.

Q. Song, G. Liu, H. Xu, "Learning to Optimize Non-Convex Sum-Rate Maximization Problems", 1st Workshop on
Synergy of Scientific and Machine Learning Modeling (SynS & ML), ICML 2023: problem (1) (the weighted sum
rate of the interfering broadcast channel under a power budget per base station), the structured updates
(Sec. 2.1), the lifting ``D`` (Sec. 2.2, Theorem A.1 and Corollary A.2), the module sizes (Sec. 2.3),
GELU, AdamW at 1e-3 decaying to 1e-5, loss = minus the objective (Sec. 3).

Notation (this library's convention): ``H_{k,t}`` is the ``Nr x Nt`` channel from transmitter (base station)
``t`` to the receiver of link ``k``, ``t(k)`` the transmitter of link ``k``, ``V_k`` its ``Nt x d`` precoder
(``d = Nr``). Every channel of receiver ``k`` is scaled to ``G_{k,t} = H_{k,t} sqrt(P_t / sigma_k^2)`` and
every precoder to ``X_k = V_k / sqrt(P_{t(k)})``, so that the noise is 1 and each transmitter's budget is
``sum_{k: t(k) = t} ||X_k||_F^2 <= 1`` (the rates do not change). A sample whose largest scaled entry
``|G|`` exceeds ``1e4`` (an SNR of 80 dB on one antenna pair, far above any training scenario; a tiny noise
would otherwise overflow the float32 net into NaN) has all its ``G`` scaled down together to that peak, as
if its noise were higher. Likewise weights above 100 (the largest an env gives, proportional fairness's cap)
are scaled down together to a largest weight of 100: the same problem (the weighted sum rate's maximiser
does not change when every weight is multiplied by one number).

The network (Fig. 1), one sample:

1. **Initialisation module** (from the channel only): for every link ``k``, embeddings (one fully
   connected layer each, on the real and imaginary parts) of its direct channel ``G_{k,t(k)}``, of the
   channels ``G_{j,t(k)}`` from its transmitter to the other receivers, and of the products
   ``G_{k,t(k)} G_{j,t(k)}^H`` (how far ``k``'s wanted direction already points at receiver ``j``). The
   embeddings of the other links are pooled (below) and concatenated with link ``k``'s; two 3-layer fully
   connected nets give ``W_L^0`` (``Nt x Nt``) and ``W_R^0`` (``d x d``), and
   ``X^0_k = W_L^0 G_{k,t(k)}^H W_R^0`` (from the matched filter), normalised.
2. **Lifting** by ``D`` (``Nt x L``, ``D D^H = I``; ``L = Nr K``, the paper's ``N_r U_b B``):
   ``G'_{k,t} = G_{k,t} D`` and ``X'_k = D^H X_k``. ``D`` is a learned matrix kept with orthonormal rows
   (``D^H`` is the Q factor of a QR decomposition of a free parameter), so Theorem A.1 holds exactly: the
   rates of ``X'`` under ``G'`` are those of ``D X'`` under ``G``, and ``D X'`` uses no more power than ``X'``.
3. **Update module**, ``num_layers`` times (five in the paper), in the lifted space:
   ``X'^t_k = W_L^t X'^{t-1}_k W_R^t``, normalised. The inputs of the nets of layer ``t`` are embeddings of
   the signal ``G'_{k,t(k)} X'_k``, of the interference ``G'_{k,t(j)} X'_j`` that link ``k`` receives and
   of the leakage ``G'_{j,t(k)} X'_k`` that it causes (pooled over ``j``), of the precoders ``X'_k`` and
   ``X'_j`` (pooled), and link ``k``'s channel embedding from step 1; a message-passing layer pools the
   previous layer's ``W_L^{t-1}, W_R^{t-1}`` of the other links, and two fully connected layers with
   GELU enhance it. One more fully connected layer outputs ``W_L^t`` (``L x L``); ``W_R^t`` comes from a
   3-layer net of the same shape as ``W_R^0``'s. Each layer has its own weights.
4. Back: ``X_k = D X'_k``, normalised, ``V_k = sqrt(P_{t(k)}) X_k``.

Normalisation (after each phase, Sec. 2.2): every transmitter's precoders are scaled to use its whole
budget, ``X_k <- X_k / sqrt(sum_{j: t(j) = t(k)} ||X_j||_F^2)``; a link's share of it is set by the
``W_L``, ``W_R`` of its own update.

Choices where the paper is silent or contradicts itself (ours; the reason after each):

- ``W_R^t`` is ``d x d`` (the paper writes ``Nt x Nr`` in Sec. 2.1 and ``Nr x Nr`` in Sec. 2.3): ``W_L V W_R``
  must have ``V``'s shape ``Nt x d``, which only a ``d x d`` right factor keeps.
- Pooling: the mean over the other links of the same cell and, separately, the mean over the links of the
  other cells (the paper says sum pooling in Sec. 2.3 and mean pooling in Sec. 2.1): means keep the
  features' scale when the number of users changes, and two pools let a link tell its own cell's users,
  whom its base station serves, from the other cells'. Both pools are symmetric in the links, so the net
  is equivariant to permuting users within a cell (tested).
- Complex numbers enter and leave the fully connected layers as (real, imaginary) pairs (the paper uses
  complex layers).
- Every ``W`` is the identity plus the net's output (residual form; the last layers start at zero), so the
  untrained net is the matched filter at full power and training starts from WMMSE's starting point.
- ``W_L^t`` also gets three channel terms (``channel_terms=True``, the default):

  .. math::

      W_L^t = I + N^t + \frac{1}{s}\Big(a_k G'^H_{k,t(k)} G'_{k,t(k)} - b_k A'_{t(k)}
              - \sum_j q_j G'^H_{j,t(k)} G'_{j,t(k)}\Big)

  with ``N^t`` the fully connected output, ``A'_t = sum_j G'^H_{j,t} G'_{j,t}`` (every receiver's channel
  from transmitter ``t``), ``s = tr(A'_t) / Nt`` (its mean eigenvalue), and the scalars ``a_k, b_k`` (link
  ``k``'s) and ``q_j`` (receiver ``j``'s) three more outputs of the same layer. The paper's inputs carry such
  products (``H_{b,u} H^H``), but a fully connected output cannot multiply its inputs, and WMMSE's
  v-update is made of them (``sum_j alpha_j H_j^H U_j W_j U_j^H H_j``: every receiver weighted by its MSE
  weight, which ``q_j`` stands for); with them one layer can take a WMMSE-like step. ``channel_terms=False``
  is the paper's plain output (benchmarks/RESULTS.md compares them).
- The embeddings' widths follow Sec. 2.3's multipliers by default (channels ``Nt`` times their input size,
  products ``Nt / 4``, signal and interference 4, precoders ``Nt / 2``; ``W_L^t``'s layers ``2 L^2`` real
  units, ``W_L^0``'s ``2 Nt^2``, ``W_R``'s ``2 d^2 (8, 4, 1)``); every width is a config field, so smaller
  nets can be trained on a CPU.
- The learning rate decays geometrically from ``lr`` to ``lr_final`` over the fit's steps ("decays with
  epochs to 1e-5").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from l2o_env.problems import get_problem
from l2o_env.problems.power import PF_MIN_RATE
from l2o_env.validation import integer, real
from solvers.learned import LearnedSolver
from solvers.wmmse_mimo_core import scale_to_budget

__all__ = ["StructuredNetConfig", "StructuredNet", "StructuredNetModel", "lifting_matrix", "paper_widths"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: the largest scaled channel entry |G| the net sees (module docstring): 80 dB of SNR on one antenna pair
MAX_SCALED_CHANNEL = 1e4
#: the largest weight the net sees (module docstring): proportional fairness's cap, the largest an env gives
MAX_WEIGHT = 1.0 / PF_MIN_RATE
_WIDTHS = ("channel_embed", "product_embed", "signal_embed", "precoder_embed", "left_hidden", "init_hidden",
           "right_hidden")


@dataclass
class StructuredNetConfig:
    """Hyper-parameters of the structured network; defaults are the paper's (Song et al. 2023, Sec. 2.3 and
    3) unless marked "ours". The shape fields are set from the data by ``fit`` on a fresh model.

    Attributes:
        num_layers: update iterations (Sec. 3: five).
        num_antennas: ``Nt`` (0: taken from the data by ``fit``).
        num_rx_antennas: ``Nr = d`` (0: from the data).
        num_links: ``K`` (0: from the data); only the default ``lift_dim`` depends on it.
        lift_dim: ``L``, the rows of the lifted precoders (``None``: ``Nr K``, the paper's ``N_r U_b B``).
        channel_embed: width of each channel embedding (``None``: ``Nt`` times its input size ``2 Nr Nt``).
        product_embed: width of the channel-product embedding (``None``: ``Nt / 4`` times ``2 Nr^2``).
        signal_embed: width of the signal / interference / leakage embeddings (``None``: 4 times ``2 Nr d``).
        precoder_embed: width of the precoder embeddings (``None``: ``Nt / 2`` times ``2 L d``).
        left_hidden: hidden width of ``W_L^t``'s layers (``None``: ``2 L^2``, the paper's ``(N_r U_b B)^2``).
        init_hidden: hidden width of ``W_L^0``'s net (``None``: ``2 Nt^2``).
        right_hidden: first hidden width of the ``W_R`` nets; the second is half of it (``None``: ``16 d^2``).
        channel_terms: the three channel terms of ``W_L^t`` (ours; module docstring).
        dtype: ``"float32"`` (ours) or ``"float64"``.
        lr, lr_final: AdamW learning rate at the start and at the end of a fit (1e-3 -> 1e-5).
        weight_decay: AdamW weight decay (torch's default, 0.01).
        batch_size: samples per step (512 at the small and moderate scales, 200 at the large).
        steps: training steps (ours; the paper trains 400 epochs of 80,000-96,000 samples).
        val_size: samples of the fixed validation batch (ours).
        val_every: steps between validations (ours).
        grad_clip: global gradient-norm clip (ours; 0: none).
    """

    num_layers: int = 5
    num_antennas: int = 0
    num_rx_antennas: int = 0
    num_links: int = 0
    lift_dim: int | None = None
    channel_embed: int | None = None
    product_embed: int | None = None
    signal_embed: int | None = None
    precoder_embed: int | None = None
    left_hidden: int | None = None
    init_hidden: int | None = None
    right_hidden: int | None = None
    channel_terms: bool = True
    dtype: str = "float32"
    lr: float = 1e-3
    lr_final: float = 1e-5
    weight_decay: float = 0.01
    batch_size: int = 512
    steps: int = 2_000
    val_size: int = 1_000
    val_every: int = 100
    grad_clip: float = 1.0

    def __post_init__(self):
        who = "StructuredNetConfig"
        for name in ("num_layers", "batch_size", "steps", "val_size", "val_every"):
            setattr(self, name, integer(who, name, getattr(self, name)))
        for name in ("num_antennas", "num_rx_antennas", "num_links"):
            setattr(self, name, integer(who, name, getattr(self, name), minimum=0))
        for name in ("lift_dim",) + _WIDTHS:
            if getattr(self, name) is not None:
                setattr(self, name, integer(who, name, getattr(self, name)))
        if not isinstance(self.channel_terms, (bool, np.bool_)):
            raise ValueError(f"{who}: channel_terms must be True or False, got {self.channel_terms!r}")
        self.channel_terms = bool(self.channel_terms)
        if self.dtype not in _DTYPES:
            raise ValueError(f"{who}: dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        self.lr = real(who, "lr", self.lr, above=0.0)
        self.lr_final = real(who, "lr_final", self.lr_final, above=0.0)
        self.weight_decay = real(who, "weight_decay", self.weight_decay, at_least=0.0)
        self.grad_clip = real(who, "grad_clip", self.grad_clip, at_least=0.0)
        if self.lift_dim is not None and self.num_antennas and self.lift_dim < self.num_antennas:
            raise ValueError(f"{who}: lift_dim must be >= num_antennas = {self.num_antennas} (D D^H = I needs "
                             f"L >= Nt), got {self.lift_dim}")

    @property
    def shaped(self) -> bool:
        """Whether the shape fields are set (a model can be built)."""
        return bool(self.num_antennas and self.num_rx_antennas and self.num_links)


def paper_widths(nt: int, nr: int, k: int, lift_dim: int | None = None) -> dict[str, int]:
    """The widths of Sec. 2.3 for ``Nt`` transmit and ``Nr = d`` receive antennas and ``K`` links (module
    docstring): the values the config's ``None`` widths take."""
    lift = lift_dim or nr * k
    return {"lift_dim": lift, "channel_embed": nt * 2 * nr * nt, "product_embed": max(nt // 4, 1) * 2 * nr * nr,
            "signal_embed": 4 * 2 * nr * nr, "precoder_embed": max(nt // 2, 1) * 2 * lift * nr,
            "left_hidden": 2 * lift * lift, "init_hidden": 2 * nt * nt, "right_hidden": 16 * nr * nr}


def lifting_matrix(param: torch.Tensor) -> torch.Tensor:
    """``D`` (``Nt x L``, complex, ``D D^H = I``) from a free real parameter ``(L, Nt, 2)``: ``D^H`` is the Q
    factor of the parameter's reduced QR decomposition (orthonormal columns), so ``D`` has orthonormal rows."""
    q, _ = torch.linalg.qr(torch.view_as_complex(param.contiguous()))
    return q.mH


def _mlp(sizes: list[int], zero_last: bool = False) -> nn.Sequential:
    """Fully connected layers with GELU between them; ``zero_last`` starts the output at zero (residual)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    if zero_last:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def _flat(z: torch.Tensor, dims: int) -> torch.Tensor:
    """Complex ``(..., a, b)`` (``dims`` = 2 trailing matrix axes) -> real ``(..., 2 a b)``."""
    return torch.view_as_real(z.flatten(-dims)).flatten(-2)


def _matrix(x: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Real ``(..., 2 n m)`` -> complex ``(..., n, m)``."""
    return torch.view_as_complex(x.unflatten(-1, (n, m, 2)).contiguous())


def _pool_masks(tx: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(same, other)`` ``(B, K, K)`` averaging weights: row ``k`` averages over the other links of its cell
    (``j != k``, ``t(j) = t(k)``) / over the links of the other cells (an empty set averages to zero)."""
    eq = tx[:, :, None] == tx[:, None, :]
    eye = torch.eye(tx.shape[1], dtype=torch.bool, device=tx.device)
    same = (eq & ~eye).to(dtype)
    other = (~eq).to(dtype)
    return (same / same.sum(-1, keepdim=True).clamp_min(1.0), other / other.sum(-1, keepdim=True).clamp_min(1.0))


def _pool_nodes(x: torch.Tensor, same: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Node features ``(B, K, E)`` -> their two pools ``(B, K, 2E)``."""
    return torch.cat([same @ x, other @ x], dim=-1)


def _pool_pairs(x: torch.Tensor, same: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Pair features ``(B, K, K, E)`` (row ``k``, column ``j``) -> the pools over ``j`` ``(B, K, 2E)``."""
    return torch.cat([(same[..., None] * x).sum(2), (other[..., None] * x).sum(2)], dim=-1)


class _ChannelTerms:
    """The channel products of ``W_L^t`` (module docstring), each divided by ``s = tr(A'_t) / Nt`` (the mean
    eigenvalue of ``A'_t`` over its ``Nt``-dimensional support).

    ``lifted (B, K, T, Nr, L)``: every lifted channel ``G'_{k,t}``; ``direct (B, K, Nr, L)``: ``G'_{k,t(k)}``;
    ``tx (B, K)``: transmitter indices; ``nt``: ``Nt``. Sums over receivers do not depend on the link, so they
    are done once per transmitter, as ``rows^H rows`` with ``rows (B, T, K Nr, L)`` its channels stacked.
    """

    def __init__(self, lifted: torch.Tensor, direct: torch.Tensor, tx: torch.Tensor, nt: int):
        bsz, k, t, nr, lift = lifted.shape
        self.nr = nr
        self.rows = lifted.permute(0, 2, 1, 3, 4).reshape(bsz, t, k * nr, lift)
        self.batch, self.tx = torch.arange(bsz, device=tx.device)[:, None], tx
        cell_t = self.rows.mH @ self.rows  # A'_t (B, T, L, L)
        trace = torch.diagonal(cell_t, dim1=-2, dim2=-1).real.sum(-1)  # (B, T)
        self.inv_scale_t = (nt / trace.clamp_min(1e-30))[..., None, None]  # 1 / s: (B, T, 1, 1)
        self.own = (direct.mH @ direct) * self.inv_scale_t[self.batch, tx]  # (B, K, L, L)
        self.cell = (cell_t * self.inv_scale_t)[self.batch, tx]

    def weighted(self, q: torch.Tensor) -> torch.Tensor:
        """``sum_j q_j G'^H_{j,t(k)} G'_{j,t(k)} / s`` for every link ``k`` ``(B, K, L, L)``: every receiver's
        channel from ``k``'s transmitter weighted by receiver ``j``'s output ``q_j`` (``q (B, K)``; WMMSE
        weighs each receiver by its MSE weight)."""
        rep = q.repeat_interleave(self.nr, dim=1)[:, None, :, None].to(self.rows.dtype)  # (B, 1, K Nr, 1)
        return (((rep * self.rows).mH @ self.rows) * self.inv_scale_t)[self.batch, self.tx]


class _UpdateLayer(nn.Module):
    """One update iteration: nets for ``W_L^t`` (``L x L``) and ``W_R^t`` (``d x d``) of every link."""

    def __init__(self, c: StructuredNetConfig, w: dict[str, int]):
        super().__init__()
        lift, d, nr = w["lift_dim"], c.num_rx_antennas, c.num_rx_antennas
        self.signal = nn.Linear(2 * nr * d, w["signal_embed"])
        self.interference = nn.Linear(2 * nr * d, w["signal_embed"])
        self.leakage = nn.Linear(2 * nr * d, w["signal_embed"])
        self.precoder = nn.Linear(2 * lift * d, w["precoder_embed"])
        prev = 2 * lift * lift + 2 * d * d
        self.message = _mlp([2 * prev, w["left_hidden"], w["left_hidden"]])  # MPNN: two layers, GELU
        features = (w["signal_embed"] * 5 + w["precoder_embed"] * 3 + w["channel_embed"] + 1)
        self.extra = 3 if c.channel_terms else 0
        self.left = _mlp([features + w["left_hidden"], w["left_hidden"], 2 * lift * lift + self.extra], zero_last=True)
        rh = w["right_hidden"]
        self.right = _mlp([features, rh, max(rh // 2, 1), 2 * d * d], zero_last=True)

    def forward(self, g_link, x, chan_emb, weight, prev, same, other, terms):
        """One layer. ``g_link (B, K, K, Nr, L)``: ``G'_{k, t(j)}`` (row ``k`` receiver, column ``j`` sender's
        transmitter); ``x (B, K, L, d)`` lifted precoders; ``prev (B, K, 2 L^2 + 2 d^2)`` previous ``W``s;
        ``terms``: the :class:`_ChannelTerms` or ``None``. Returns ``(W_L, W_R, prev)``."""
        bsz, k, lift, d = x.shape
        rx = g_link @ x[:, None]  # (B, K, K, Nr, d): receiver k, signal of link j
        eye_k = torch.eye(k, dtype=torch.bool, device=x.device)
        signal = rx[:, eye_k]  # (B, K, Nr, d)
        emb_s = F.gelu(self.signal(_flat(signal, 2)))
        emb_i = F.gelu(self.interference(_flat(rx, 2)))  # interference received by k from j
        emb_l = F.gelu(self.leakage(_flat(rx.transpose(1, 2), 2)))  # leakage of k at receiver j
        emb_v = F.gelu(self.precoder(_flat(x, 2)))
        feats = torch.cat([emb_s, _pool_pairs(emb_i, same, other), _pool_pairs(emb_l, same, other), emb_v,
                           _pool_nodes(emb_v, same, other), chan_emb, weight[..., None]], dim=-1)
        msg = self.message(_pool_nodes(prev, same, other))
        out = self.left(torch.cat([feats, msg], dim=-1))
        eye_l = torch.eye(lift, dtype=x.dtype, device=x.device)
        w_left = eye_l + _matrix(out[..., :2 * lift * lift], lift, lift)
        if terms is not None:
            coef = out[..., 2 * lift * lift:]
            w_left = (w_left + coef[..., 0, None, None] * terms.own - coef[..., 1, None, None] * terms.cell
                      - terms.weighted(coef[..., 2]))
        w_right = torch.eye(d, dtype=x.dtype, device=x.device) + _matrix(self.right(feats), d, d)
        new_prev = torch.cat([_flat(w_left - eye_l, 2), _flat(w_right, 2)], dim=-1)
        return w_left, w_right, new_prev


class StructuredNetModel(nn.Module):
    """The network of the module docstring for one shape (``Nt``, ``Nr = d``, ``K``, ``L``)."""

    def __init__(self, c: StructuredNetConfig):
        super().__init__()
        if not c.shaped:
            raise ValueError("StructuredNetModel: the config has no shape yet (num_antennas, num_rx_antennas, "
                             "num_links); fit() sets it from the data")
        self.config = c
        w = {**paper_widths(c.num_antennas, c.num_rx_antennas, c.num_links, c.lift_dim),
             **{name: getattr(c, name) for name in _WIDTHS if getattr(c, name) is not None}}
        self.widths = w
        nt, nr, lift = c.num_antennas, c.num_rx_antennas, w["lift_dim"]
        d = nr
        dtype = _DTYPES[c.dtype]
        # initialisation module
        self.emb_direct = nn.Linear(2 * nr * nt, w["channel_embed"])
        self.emb_cross = nn.Linear(2 * nr * nt, w["channel_embed"])
        self.emb_product = nn.Linear(2 * nr * nr, w["product_embed"])
        init_in = 3 * w["channel_embed"] + 2 * w["product_embed"] + 1
        ih, rh = w["init_hidden"], w["right_hidden"]
        self.init_left = _mlp([init_in, ih, ih, 2 * nt * nt], zero_last=True)
        self.init_right = _mlp([init_in, rh, max(rh // 2, 1), 2 * d * d], zero_last=True)
        # lifting: D^H starts as the first Nt columns of the identity (the lifted space holds the original)
        start = torch.zeros(lift, nt, 2)
        start[:nt, :, 0] = torch.eye(nt)
        self.lift_param = nn.Parameter(start)
        self.layers = nn.ModuleList(_UpdateLayer(c, w) for _ in range(c.num_layers))
        self.to(dtype)

    def forward(self, channel, tx_of_link, noise, pmax, weight) -> torch.Tensor:
        """Complex ``channel (B, K, T, Nr, Nt)`` -> complex precoders ``(B, K, Nt, d)`` in watts' units."""
        bsz, k, t_count, nr, nt = channel.shape
        real = pmax.dtype
        tx = tx_of_link.long()
        serves = F.one_hot(tx, t_count).to(real).transpose(1, 2)  # (B, T, K)
        unit = torch.ones_like(pmax)  # the net works with unit budgets, channels scaled by sqrt(P_t)

        def normalise(v: torch.Tensor) -> torch.Tensor:  # every transmitter at its whole budget
            return scale_to_budget(v, serves, tx, unit)

        same, other = _pool_masks(tx, real)
        amp = torch.sqrt(pmax[:, None, :] / noise[:, :, None])  # (B, K, T): sqrt(P_t / sigma_k^2)
        g = channel * amp[..., None, None]
        peak = g.abs().flatten(1).amax(-1)  # (NaN, inf: an SNR beyond float32; > 0 needed as the net's input)
        if not bool((peak <= MAX_SCALED_CHANNEL).all()):
            g = _saturate(channel, pmax, noise)
        # G_{j, t(k)} for every (j, k): row j receiver, column k sender's transmitter -> (B, K, K, Nr, Nt)
        idx = tx[:, None, :, None, None].expand(bsz, k, k, nr, nt)
        g_link = torch.gather(g, 2, idx)
        eye_k = torch.eye(k, dtype=torch.bool, device=channel.device)
        direct = g_link[:, eye_k]  # (B, K, Nr, Nt)
        wgt = weight.to(real)
        top = wgt.amax(-1, keepdim=True)
        if not bool((top <= MAX_WEIGHT).all()):  # (scaling every weight of a sample keeps its problem)
            wgt = wgt / (top / MAX_WEIGHT).clamp_min(1.0)

        # initialisation module (original space)
        chan_emb = F.gelu(self.emb_direct(_flat(direct, 2)))
        cross = F.gelu(self.emb_cross(_flat(g_link.transpose(1, 2), 2)))  # row k: G_{j, t(k)}
        prod = direct[:, :, None] @ g_link.transpose(1, 2).mH  # (B, K, K, Nr, Nr): G_kk G_{j,t(k)}^H
        prod_emb = F.gelu(self.emb_product(_flat(prod, 2)))
        init_feats = torch.cat([chan_emb, _pool_pairs(cross, same, other), _pool_pairs(prod_emb, same, other),
                                wgt[..., None]], dim=-1)
        eye_t = torch.eye(nt, dtype=channel.dtype, device=channel.device)
        eye_d = torch.eye(nr, dtype=channel.dtype, device=channel.device)
        w_left0 = eye_t + _matrix(self.init_left(init_feats), nt, nt)
        w_right0 = eye_d + _matrix(self.init_right(init_feats), nr, nr)
        x = normalise(w_left0 @ direct.mH @ w_right0)

        # lifting
        dmat = lifting_matrix(self.lift_param.to(real)).to(channel.dtype)  # (Nt, L)
        g_link_l = g_link @ dmat  # (B, K, K, Nr, L)
        x = dmat.mH @ x  # (B, K, L, d)
        terms = _ChannelTerms(g @ dmat, g_link_l[:, eye_k], tx, nt) if self.config.channel_terms else None
        lift = x.shape[-2]
        prev = torch.zeros(bsz, k, 2 * lift * lift + 2 * nr * nr, dtype=real, device=channel.device)
        for layer in self.layers:
            w_left, w_right, prev = layer(g_link_l, x, chan_emb, wgt, prev, same, other, terms)
            x = normalise(w_left @ x @ w_right)
        return scale_to_budget(dmat @ x, serves, tx, pmax)


def _saturate(channel: torch.Tensor, pmax: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``G = H sqrt(P_t / sigma_k^2)`` computed in float64 (it may overflow the net's dtype), every sample whose
    peak ``|G|`` exceeds :data:`MAX_SCALED_CHANNEL` scaled down to it, in the dtype of ``channel``."""
    amp = torch.sqrt(pmax.double()[:, None, :] / noise.double()[:, :, None])
    g = channel.to(torch.complex128) * amp[..., None, None]
    peak = g.abs().flatten(1).amax(-1)
    shrink = torch.where(peak > MAX_SCALED_CHANNEL, MAX_SCALED_CHANNEL / peak.clamp_min(1e-300), torch.ones_like(peak))
    return (g * shrink[:, None, None, None, None]).to(channel.dtype)


class StructuredNet(LearnedSolver):
    """The structured network of Song et al. 2023 (module docstring) behind the Solver interface.

    >>> import solvers
    >>> net = solvers.make("structured_net", pretrained=True)   # doctest: +SKIP  (IBC small, low interference)
    >>> precoders = net.act_batch(obs)                           # doctest: +SKIP  (B, K, Nt, d, 2)

    Beamforming only. A model is built for one shape (``Nt``, ``Nr``, ``K``); ``fit`` on a fresh model takes the
    shape from the sampler's observations, a loaded or fitted one refuses other shapes.

    Training (``fit``, the shared loop of :mod:`solvers.training`): unsupervised, loss = minus the mean weighted
    sum rate of the output, AdamW at ``lr`` decaying geometrically to ``lr_final`` over the fit's steps.

    Args:
        config: :class:`StructuredNetConfig`, or its fields as keyword arguments.
        pretrained: ``True`` or a tag of :meth:`shipped` loads a shipped checkpoint.
        checkpoint: path of a checkpoint written by :meth:`save`.
        device: torch device.
    """

    name = "structured_net"
    problems = frozenset({"beamforming"})
    Config = StructuredNetConfig
    input_keys = ("channel", "tx_of_link", "noise", "pmax", "weight")

    def build(self) -> nn.Module:
        if not self.config.shaped:
            return _Unshaped(_DTYPES[self.config.dtype])
        return StructuredNetModel(self.config)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Refuse a complex channel shape ``(K, T, Nr, Nt)`` other than the model's."""
        k, _, nr, nt = (int(n) for n in shape)
        c = self.config
        if (nt, nr, k) != (c.num_antennas, c.num_rx_antennas, c.num_links):
            raise ValueError(f"StructuredNet: this model was built for Nt = {c.num_antennas}, Nr = {c.num_rx_antennas}, "
                             f"K = {c.num_links}; the observation has Nt = {nt}, Nr = {nr}, K = {k}. Train one for "
                             f"this shape (`l2o train structured_net --env ...`)")

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        channel = obs["channel"]
        if not channel.is_complex():
            channel = torch.view_as_complex(channel.contiguous())
        if not self.config.shaped:
            raise ValueError("StructuredNet: the model has no shape yet; fit it, or load a checkpoint")
        self._check_shape(tuple(channel.shape[-4:]))
        v = self.model(channel, obs["tx_of_link"], obs["noise"], obs["pmax"], obs["weight"])
        return torch.view_as_real(v)

    def _inference_chunk(self, obs: Mapping[str, torch.Tensor]) -> int | None:
        return 256

    # --- training hooks (solvers/training.py) ---------------------------------------------------------
    def adapt_to(self, validation: Mapping[str, np.ndarray]) -> None:
        """A fresh model takes ``Nt``, ``Nr`` and ``K`` from the data; a loaded or fitted one must match."""
        k, _, nr, nt = (int(n) for n in np.shape(validation["channel"])[-5:-1])
        if self._trained:
            self._check_shape(np.shape(validation["channel"])[-5:-1])
            return
        self.config = dataclasses.replace(self.config, num_antennas=nt, num_rx_antennas=nr, num_links=k)

    def make_optimizer(self, steps: int) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps: int):
        ratio = self.config.lr_final / self.config.lr
        total = max(steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: ratio ** min(s / total, 1.0))

    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Minus the mean weighted sum rate of the output (Sec. 3: the negative objective of problem (1)),
        scored on ``batch["truth"]`` (the true current channel) when the batch carries it (aged CSI)."""
        v = self.forward(batch)
        scored = batch.get("truth", batch)
        return -(scored["weight"] * get_problem("beamforming").rates_torch(scored, v)).sum(-1).mean()


class _Unshaped(nn.Module):
    """Placeholder model of a fresh solver before ``fit`` has seen the data's shape (one dummy parameter,
    so that the dtype is known)."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.placeholder = nn.Parameter(torch.zeros(1, dtype=dtype))
