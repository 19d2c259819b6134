r"""Deep-unfolded WMMSE beamforming with learned projected-gradient step sizes, and its untrained twin.

L. Pellaco, M. Bengtsson, J. Jaldén, "Deep unfolding of the weighted MMSE beamforming algorithm",
arXiv:2006.08448, 2020: the MISO downlink (one base station with ``M`` antennas, ``N`` single-antenna users,
total budget ``Tr(V V^H) <= P``); the WMMSE updates (5a)-(5b); the v-update (5c) replaced by ``K`` projected
gradient (PGD) steps (12) on the precoders; ``L`` such iterations unfolded into the layers of a network whose
only trainable parameters are the step sizes ``gamma_l^(k)`` (Algorithm 1, Fig. 1), initialised to 1; loss
(14), minus the weighted sum rate summed over the outputs of all layers; Adam at 1e-3, batches of 100.

One layer ``l``, from the precoders ``V`` (our convention: ``H_k`` is the ``Nr x Nt`` channel that multiplies
the precoder, so the paper's column ``h_i`` is ``H_i^H`` and its ``h_i^H v`` is ``H_i v``):

1. ``U, W`` from ``V`` (eqs. 5a-5b; the MIMO WMMSE's :func:`solvers.wmmse_mimo_core.mimo_uw_update`, whose
   ``U`` is the paper's ``u_i`` and ``W`` its ``w_i``);
2. ``K`` PGD steps, ``V <- Pi_C(V - gamma_l^(k) grad f(V))`` (12) with (per transmitter ``t``; the paper's
   network has one)

   .. math::

       \nabla f(V_i) = -2 B_i + 2 A_{t(i)} V_i, \quad B_i = \alpha_i H_i^H U_i W_i, \quad
       A_t = \sum_l \alpha_l H_{l,t}^H U_l W_l U_l^H H_{l,t}

   (the paper's ``-2 alpha_i w_i u_i h_i + 2 A v_i``, ``A = sum_i alpha_i w_i |u_i|^2 h_i h_i^H``: the
   derivative of the weighted MSE sum with respect to ``conj(V_i)``, times 2), and ``Pi_C`` the projection on
   the power ball: a transmitter over its budget has its precoders scaled by ``sqrt(P_t / used)``
   (:func:`solvers.wmmse_mimo_core.within_budget`, a few ulps inside), the others are left alone.

The start is the matched filter at full power, ``V = a H^H`` (the MIMO WMMSE's
:func:`~solvers.wmmse_mimo_core.matched_filter`). The formulas hold for ``Nr > 1`` (``d = Nr`` streams, the
matrices ``U_k, W_k`` of the MIMO WMMSE) and for several transmitters, so the solver accepts every
beamforming scenario; the paper's setting is ``Beamforming-MISO-v0``.

``pgd_wmmse`` is the same network with every step size fixed at its initial value 1 (nothing to learn; it
acts without training): the row of a table that says what learning the step sizes adds.

Range: the fixed step sizes tie the PGD steps to the observation's scale (``A_t`` grows like
``SNR^2 / P``), so float32 observations far from any training scenario (entries up to 1e38) overflow the net's
float32 arithmetic. A batch with a sample outside the box SNR ``|H|^2 P / sigma^2 <= 1e6``, ``|H|^2 P <= 1e12``,
budgets in ``[1e-6, 1e6]`` W (or 0) and weights ``<= 100`` runs in float64 instead, with every SNR above
``1e12`` (120 dB) brought down to it by a higher noise and weights above 100 scaled down together to 100
(the problem's optimum does not change; the PGD steps do). Any other batch runs as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from l2o_env.problems import get_problem
from l2o_env.problems.power import PF_MIN_RATE
from l2o_env.validation import integer, real
from solvers.learned import LearnedSolver
from solvers.wmmse_mimo_core import _batch_links, matched_filter, mimo_uw_update, mimo_wmmse_prepare, within_budget

__all__ = ["UnfoldedWMMSEConfig", "UnfoldedWMMSENet", "UnfoldedWMMSE", "PGDWMMSE", "pgd_gradient_terms"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class UnfoldedWMMSEConfig:
    """Hyper-parameters of the unfolded WMMSE; defaults are the paper's (Sec. IV) unless marked "ours".

    Attributes:
        num_layers: unfolded WMMSE iterations ``L`` (Fig. 2: 1-6; 4 here).
        pgd_steps: projected gradient steps ``K`` per layer (4-8; 4 here, Fig. 2).
        step_init: initial value of every step size ``gamma_l^(k)`` (1).
        dtype: ``"float32"`` (ours) or ``"float64"``: the step sizes and the layers.
        lr: Adam learning rate (1e-3).
        batch_size: channel samples per step (100).
        steps: training steps (ours; the paper trains on 2-8 x 10^6 channels, 20,000-80,000 steps).
        val_size: samples in the fixed validation batch (ours).
        val_every: steps between validations (ours).
    """

    num_layers: int = 4
    pgd_steps: int = 4
    step_init: float = 1.0
    dtype: str = "float32"
    lr: float = 1e-3
    batch_size: int = 100
    steps: int = 5_000
    val_size: int = 1_000
    val_every: int = 250

    def __post_init__(self):
        who = "UnfoldedWMMSEConfig"
        for name in ("num_layers", "pgd_steps", "batch_size", "steps", "val_size", "val_every"):
            setattr(self, name, integer(who, name, getattr(self, name)))
        if self.dtype not in _DTYPES:
            raise ValueError(f"{who}: dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        self.lr = real(who, "lr", self.lr, above=0.0)
        self.step_init = real(who, "step_init", self.step_init)


def pgd_gradient_terms(ch, weight: torch.Tensor, u: torch.Tensor, w: torch.Tensor):
    """``(A_link, B)`` of the PGD gradient ``2 (A_{t(k)} V_k - B_k)``: ``A_t`` of each link's transmitter
    ``(B, K, Nt, Nt)`` and ``B_k = alpha_k H_k^H U_k W_k`` ``(B, K, Nt, d)`` (the matrices of the MIMO WMMSE's
    v-update, eq. (6) of Shi et al. 2011; the paper's ``A`` and ``alpha_i w_i u_i h_i``)."""
    bsz, k, t = ch.channel.shape[:3]
    nt, d = ch.channel.shape[-1], u.shape[-1]
    b_idx, k_idx = _batch_links(ch.tx_of_link)
    q = ch.channel_h @ u  # (B, K, T Nt, d): H_{l,t}^H U_l for every t
    qw = (q @ (weight[..., None, None].to(w.dtype) * w)).view(bsz, k, t, nt, d)  # alpha_l H_{l,t}^H U_l W_l
    by_tx = q.view(bsz, k, t, nt, d).permute(0, 2, 3, 1, 4).reshape(bsz, t, nt, k * d)
    a = qw.permute(0, 2, 3, 1, 4).reshape(bsz, t, nt, k * d) @ by_tx.mH
    a = 0.5 * (a + a.mH)  # A_t: (B, T, Nt, Nt)
    return a[b_idx, ch.tx_of_link], qw[b_idx, k_idx, ch.tx_of_link]


#: the box of the module docstring's "Range": SNR, budget, received power |H|^2 P, weight
_SAFE_SNR, _SAFE_BUDGET, _SAFE_POWER, _MAX_WEIGHT = 1e6, 1e6, 1e12, 1.0 / PF_MIN_RATE
#: the largest SNR (|H|^2 P / sigma^2) of an observation outside the box: 120 dB
_MAX_SNR = 1e12


def _within_range(channel: torch.Tensor, noise: torch.Tensor, pmax: torch.Tensor, weight: torch.Tensor):
    """``(channel, noise, pmax, weight)`` as given when every sample is inside the box of the module docstring
    ("Range"), else all in float64 with the SNR floor and the weight cap applied."""
    peak = channel.abs().flatten(1).amax(-1).double() ** 2 * pmax.double().amax(-1)  # (B,) largest |H|^2 P
    snr = peak / noise.double().amin(-1)
    budget = pmax.double()
    top = weight.double().amax(-1)
    inside = ((peak <= _SAFE_POWER) & (snr <= _SAFE_SNR) & (top <= _MAX_WEIGHT)
              & ((budget == 0) | ((budget >= 1.0 / _SAFE_BUDGET) & (budget <= _SAFE_BUDGET))).all(-1))
    if bool(inside.all()):
        return channel, noise, pmax, weight
    nz = torch.maximum(noise.double(), (peak / _MAX_SNR)[:, None])
    w = weight.double() * torch.clamp(_MAX_WEIGHT / top.clamp_min(1e-300), max=1.0)[:, None]
    return channel.to(torch.complex128), nz, budget, w


class UnfoldedWMMSENet(nn.Module):
    """``L`` WMMSE layers with ``K`` PGD steps each; the step sizes ``gamma (L, K)`` are the parameters."""

    def __init__(self, config: UnfoldedWMMSEConfig):
        super().__init__()
        self.num_layers = config.num_layers
        self.pgd_steps = config.pgd_steps
        self.gamma = nn.Parameter(torch.full((config.num_layers, config.pgd_steps), float(config.step_init),
                                             dtype=_DTYPES[config.dtype]))

    def forward(self, channel, tx_of_link, noise, pmax, weight) -> list[torch.Tensor]:
        """Complex ``channel (B, K, T, Nr, Nt)`` -> complex precoders ``(B, K, Nt, Nr)`` after every layer."""
        ch = mimo_wmmse_prepare(channel, tx_of_link)
        v = matched_filter(ch, pmax, channel.shape[-2])
        gamma = self.gamma.to(pmax.dtype)
        out = []
        for layer in range(self.num_layers):
            u, w, _ = mimo_uw_update(ch, noise, v)  # (5a)-(5b)
            a_link, b = pgd_gradient_terms(ch, weight, u, w)
            for step in range(self.pgd_steps):  # (12a)-(12b)
                grad = 2.0 * (a_link @ v - b)
                v = within_budget(v - gamma[layer, step] * grad, ch.tx_of_link, pmax)
            out.append(v)
        return out


class UnfoldedWMMSE(LearnedSolver):
    """Deep-unfolded WMMSE beamforming with learned projected-gradient step sizes (Pellaco et al. 2020).

    The layers are described in the module docstring: ``num_layers`` WMMSE iterations whose v-update is
    ``pgd_steps`` projected gradient steps with learnable step sizes, from the matched filter at full power.

    Training (``fit``, the shared loop of :mod:`solvers.training`): unsupervised, loss (14) = minus the
    weighted sum rate summed over the outputs of all layers (mean over the batch), Adam at ``lr`` (1e-3),
    batches of ``batch_size`` (100).

    Args:
        config: :class:`UnfoldedWMMSEConfig`, or its fields as keyword arguments (``num_layers=4``, ...).
        pretrained: ``True`` loads ``solvers/checkpoints/unfolded_wmmse.pt`` when shipped.
        checkpoint: path of a checkpoint written by :meth:`save`.
        device: torch device.
    """

    name = "unfolded_wmmse"
    problems = frozenset({"beamforming"})
    Config = UnfoldedWMMSEConfig
    input_keys = ("channel", "tx_of_link", "noise", "pmax", "weight")

    def build(self) -> nn.Module:
        return UnfoldedWMMSENet(self.config)

    @property
    def num_layers(self) -> int:
        """Unfolded layers ``L``."""
        return self.config.num_layers

    @property
    def pgd_steps(self) -> int:
        """PGD steps ``K`` per layer."""
        return self.config.pgd_steps

    @property
    def step_sizes(self) -> np.ndarray:
        """The step sizes ``gamma (L, K)`` (float64 copy)."""
        return self.model.gamma.detach().cpu().double().numpy()

    def forward_layers(self, obs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Precoders ``(B, K, Nt, Nr, 2)`` (real, imaginary) after each of the ``L`` layers (differentiable)."""
        channel = obs["channel"]
        if not channel.is_complex():
            channel = torch.view_as_complex(channel.contiguous())
        channel, noise, pmax, weight = _within_range(channel, obs["noise"], obs["pmax"], obs["weight"])
        layers = self.model(channel, obs["tx_of_link"], noise, pmax, weight)
        return [torch.view_as_real(v) for v in layers]

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.forward_layers(obs)[-1]

    # --- training hooks (solvers/training.py) ---------------------------------------------------------
    def loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss (14): minus the weighted sum rate summed over the layers, averaged over the batch; scored on
        ``batch["truth"]`` (the true current channel) when the batch carries it (aged or noisy CSI)."""
        problem = get_problem("beamforming")
        scored = batch.get("truth", batch)
        total = 0.0
        for v in self.forward_layers(batch):
            total = total + (scored["weight"] * problem.rates_torch(scored, v)).sum(-1).mean()
        return -total


class PGDWMMSE(UnfoldedWMMSE):
    """WMMSE beamforming with the v-update replaced by projected gradient steps of size 1 (not learned).

    The network of the unfolded WMMSE (Pellaco et al. 2020) with every step size fixed at its initial value
    ``step_init``: it acts without training (``is_trained`` is always true) and cannot be fitted.
    """

    name = "pgd_wmmse"

    def build(self) -> nn.Module:
        net = UnfoldedWMMSENet(self.config)
        net.gamma.requires_grad_(False)
        return net

    @property
    def is_trained(self) -> bool:
        return True

    def fit(self, *args, **kwargs):
        raise ValueError("PGDWMMSE: the step sizes are fixed (nothing to learn); fit 'unfolded_wmmse' instead")
