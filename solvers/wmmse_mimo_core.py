"""MIMO WMMSE beamforming, the one implementation every beamforming solver calls (torch, batched, differentiable).

Q. Shi, M. Razaviyayn, Z.-Q. Luo, C. He, "An Iteratively Weighted MMSE Approach to Distributed Sum-Utility
Maximization for a MIMO Interfering Broadcast Channel", IEEE Trans. Signal Process. 59(9):4331-4340, 2011,
doi:10.1109/TSP.2011.2147784, Algorithm 1 (the pseudo-code of the WMMSE algorithm), with the per-link
weights alpha_k of the weighted sum rate. L. Pellaco, M. Bengtsson, J. Jaldén, "Deep unfolding of the
weighted MMSE beamforming algorithm", arXiv:2006.08448, 2020, write its MISO special case as eqs. (5a)-(5c)
with the multiplier equation (8) and its bisection bounds; their matched-filter start is ours.

Notation: ``K`` links (streams of data to one receiver each), ``T`` transmitters with ``Nt`` antennas,
receivers with ``Nr`` antennas, ``d`` streams per link. Link ``k`` is served by transmitter ``t(k)``;
``H_{k,t}`` (``Nr x Nt``) is the channel from transmitter ``t`` to the receiver of link ``k``; ``V_k``
(``Nt x d``) the precoder of link ``k``; ``sigma_k^2`` the noise power at its receiver, ``alpha_k`` its
weight, ``P_t`` the budget of transmitter ``t`` (``sum_{k: t(k) = t} ||V_k||_F^2 <= P_t``). One iteration
(Algorithm 1, lines 4-6; the labels (4)-(6) below are those line numbers, (8) is Pellaco et al.'s
equation), from ``V``:

.. math::

    U_k = J_k^{-1} H_{k,t(k)} V_k, \\quad
    J_k = \\sum_j H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H + \\sigma_k^2 I                     \\quad (4)

    W_k = (I - U_k^H H_{k,t(k)} V_k)^{-1}                                                \\quad (5)

    V_k = \\alpha_k (A_{t(k)} + \\mu_{t(k)} I)^{-1} H_{k,t(k)}^H U_k W_k, \\quad
    A_t = \\sum_l \\alpha_l H_{l,t}^H U_l W_l U_l^H H_{l,t}                              \\quad (6)

(``l`` runs over every link of the network: transmitter ``t`` weighs the interference it causes at every
receiver), and the algorithm stops when ``sum_k alpha_k log det W_k`` changes by less than ``epsilon``
(line 7). ``mu_t >= 0`` is the Lagrange multiplier of transmitter ``t``'s budget: 0 when the solution of (6)
with ``mu_t = 0`` is within the budget, else the root of (Pellaco et al. 2020, eq. 8, per transmitter)

.. math::

    \\sum_m \\frac{[\\Phi_t]_{mm}}{([\\Lambda_t]_{mm} + \\mu_t)^2} = P_t, \\quad
    A_t = E_t \\Lambda_t E_t^H, \\quad
    \\Phi_t = E_t^H \\Big(\\sum_{k: t(k) = t} B_k B_k^H\\Big) E_t, \\quad
    B_k = \\alpha_k H_{k,t(k)}^H U_k W_k                                                  \\quad (8)

whose left side decreases in ``mu``: we find it by batched bisection on
``[max(0, s_t - lambda_max), s_t - lambda_min]``, ``s_t = sqrt(tr(Phi_t) / P_t)`` (the left side is at
least ``P_t`` at the lower end and at most ``P_t`` at the upper end), to a relative width ``rtol`` (1e-12 in
float64), and use the upper end, so the budget is never exceeded. Eigen-directions of ``A_t`` with a zero
eigenvalue carry no ``B_k`` (``B_k`` lies in the range of ``A_t``) and are left out (the pseudo-inverse).

Line 5 is computed as ``W_k = I + S_k^H N_k^{-1} S_k`` with ``S_k = H_{k,t(k)} V_k`` and
``N_k = sigma_k^2 I + sum_{j != k} H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H`` (interference plus noise, summed from
the cross terms themselves, as the scalar WMMSE does): the same matrix by the matrix inversion lemma, and
it never loses digits at high SINR. ``log2 det W_k`` is then the rate of link k,
``log2 det(I + S_k S_k^H N_k^{-1})`` (the MMSE-rate identity behind Algorithm 1; the rate formula itself
lives in :func:`l2o_env.rates.mimo_link_rates_torch`, which the tests check this against), so the stopping
rule's weighted sum rate costs nothing extra; ``U_k = N_k^{-1} S_k W_k^{-1}`` equals line 4's ``J_k^{-1} S_k``.

Gradients (:func:`mimo_wmmse_layer` outside :func:`mimo_wmmse_run`'s ``no_grad``): the eigendecomposition and
the bisection run without gradient; ``V`` then gets the exact derivative of ``(A + mu I)^+ B`` at fixed
``mu`` plus ``mu``'s implicit derivative from eq. (8) (one Newton step whose value is zero), so no gradient
passes through ``eigh`` (whose backward is undefined at repeated eigenvalues, e.g. ``A_t`` of rank
``K d < Nt``).

Shapes (batch axis first, every tensor of one batch on one device; complex tensors in the complex dtype of
the real ones, complex128 for float64):
    channel ``(B, K, T, Nr, Nt)`` complex; tx_of_link ``(B, K)`` int64; pmax ``(B, T)``; noise / weight
    ``(B, K)``; precoders ``V`` ``(B, K, Nt, d)`` complex; ``U`` ``(B, K, Nr, d)``; ``W`` ``(B, K, d, d)``.
    At the numpy boundary a complex array is a real one with a trailing axis of 2 (real, imaginary).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch

__all__ = [
    "MIMOChannel",
    "mimo_wmmse_prepare",
    "mimo_uw_update",
    "mimo_v_update",
    "mimo_wmmse_layer",
    "mimo_wmmse_run",
    "stream_directions",
    "scale_to_budget",
    "matched_filter",
    "within_budget",
    "link_power",
    "transmitter_power",
    "num_streams",
    "beamforming_tensors",
    "precoders_to_numpy",
]

_LN2 = math.log(2.0)
# CPU: run mimo_wmmse_run in blocks of about this many cross-channel entries (16 MB in complex128) so that a
# block's working set stays in the last-level cache, as the scalar WMMSE does; on a GPU in one piece.
_CPU_BLOCK_ENTRIES = 1 << 20
_MAX_BISECTION_STEPS = 200


class MIMOChannel(NamedTuple):
    """What every iteration reads from the channel and the link-to-transmitter map (:func:`mimo_wmmse_prepare`)."""

    channel: torch.Tensor  # (B, K, T, Nr, Nt) H_{k,t}
    channel_h: torch.Tensor  # (B, K, T Nt, Nr) H_{l,t}^H stacked over t (the V-update's H^H U, one product per l)
    cross: torch.Tensor  # (B, K, K Nr, Nt) cross[b, j] = H_{k,t(j)} stacked over receivers k (one product per j)
    direct_h: torch.Tensor  # (B, K, Nt, Nr) H_{k,t(k)}^H
    tx_of_link: torch.Tensor  # (B, K) int64 t(k)
    serves: torch.Tensor  # (B, T, K) real, serves[b, t, k] = 1 when t(k) = t
    off_diagonal: torch.Tensor  # (K, 1, K, 1) real, 1 - I: drops j = k from the interference


def _batch_links(tx_of_link: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index tensors ``(B, 1)`` and ``(1, K)`` that pick one entry per link from a ``(B, K, ...)`` tensor."""
    bsz, k = tx_of_link.shape
    dev = tx_of_link.device
    return torch.arange(bsz, device=dev)[:, None], torch.arange(k, device=dev)[None, :]


def _as_index(tx_of_link: torch.Tensor) -> torch.Tensor:
    """Transmitter indices as int64 (an observation may carry them as floats)."""
    return tx_of_link.round().to(torch.int64) if tx_of_link.is_floating_point() else tx_of_link.to(torch.int64)


def _serves(tx_of_link: torch.Tensor, num_tx: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, T, K)``: 1 where transmitter ``t`` serves link ``k``."""
    return torch.nn.functional.one_hot(tx_of_link, num_tx).to(dtype).transpose(1, 2).contiguous()


def mimo_wmmse_prepare(channel: torch.Tensor, tx_of_link: torch.Tensor) -> MIMOChannel:
    """The per-network constants of the iteration; an unrolled net passes them to every layer."""
    bsz, k, t = channel.shape[:3]
    tx = _as_index(tx_of_link)
    b_idx, k_idx = _batch_links(tx)
    nr, nt = channel.shape[-2:]
    # cross[b, j, k] = H_{k,t(j)}: (B, K_j, K_k, Nr, Nt), then the receivers stacked for each link j
    cross = channel[b_idx[:, :, None], k_idx[:, None, :], tx[:, :, None]].reshape(bsz, k, k * nr, nt)
    direct = channel[b_idx, k_idx, tx]  # (B, K, Nr, Nt)
    real = channel.real.dtype
    serves = _serves(tx, t, real)
    off = (1.0 - torch.eye(k, dtype=real, device=channel.device))[:, None, :, None]  # (K_k, 1, K_j, 1)
    channel_h = channel.mH.reshape(bsz, k, t * nt, nr)
    return MIMOChannel(channel, channel_h, cross, direct.mH.contiguous(), tx, serves, off)


def _eye(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


def link_power(v: torch.Tensor) -> torch.Tensor:
    """``||V_k||_F^2`` per link: ``(B, K)`` (real)."""
    return (v.real ** 2 + v.imag ** 2).sum((-1, -2)) if v.is_complex() else (v ** 2).sum((-1, -2))


def transmitter_power(serves: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``sum_{k: t(k) = t} ||V_k||_F^2`` per transmitter: ``(B, T)``."""
    return (serves @ link_power(v).unsqueeze(-1)).squeeze(-1)


def mimo_uw_update(ch: MIMOChannel, noise, v):
    """Lines 4-5 of Algorithm 1 from ``V``: ``(U, W, rate)``, the rate ``log2 det W_k`` of every link ``(B, K)``.

    ``W`` is computed as ``I + S^H N^{-1} S`` (see the module docstring), ``U = N^{-1} S W^{-1}``.
    """
    bsz, k = v.shape[:2]
    nr, d = ch.direct_h.shape[-1], v.shape[-1]
    r = (ch.cross @ v).view(bsz, k, k, nr, d)  # r[b, j, k] = H_{k,t(j)} V_j
    signal = torch.diagonal(r, dim1=1, dim2=2).permute(0, 3, 1, 2)  # (B, K, Nr, d): S_k
    interf = (r.permute(0, 2, 3, 1, 4) * ch.off_diagonal).reshape(bsz, k, nr, k * d)  # [H_{k,t(j)} V_j]_{j != k}
    cov = interf @ interf.mH
    n = cov + _noise_floor(noise, cov)[..., None, None] * _eye(nr, noise)  # N_k (Hermitian, > 0)
    y = torch.cholesky_solve(signal, torch.linalg.cholesky(n))  # N^{-1} S
    w = _eye(d, v) + signal.mH @ y  # eq. (5) = I + S^H N^{-1} S
    w = 0.5 * (w + w.mH)
    chol_w, info = torch.linalg.cholesky_ex(w)
    rate = 2.0 * torch.log(torch.diagonal(chol_w, dim1=-2, dim2=-1).real).sum(-1) / _LN2
    u = torch.cholesky_solve(y.mH, chol_w).mH  # eq. (4): N^{-1} S W^{-1} = J^{-1} S
    failed = info != 0
    if bool(failed.any()):
        # W = I + S^H N^{-1} S with a rank-deficient S^H N^{-1} S beyond ~1e16: the I is below the rounding of the
        # other term and W is not positive definite in floating point. Those links take the same quantities from
        # the eigenvalues of S^H N^{-1} S, clamped at 0 (its rounding errors): W = E (1 + L) E^H.
        lam, e = torch.linalg.eigh(w - _eye(d, v))
        lam = lam.clamp_min(0.0)
        w_eig = (e * (1.0 + lam).unsqueeze(-2).to(e.dtype)) @ e.mH
        u_eig = y @ ((e * (1.0 / (1.0 + lam)).unsqueeze(-2).to(e.dtype)) @ e.mH)
        rate_eig = torch.log1p(lam).sum(-1) / _LN2
        pick = failed[..., None, None]
        w, u, rate = torch.where(pick, w_eig, w), torch.where(pick, u_eig, u), torch.where(failed, rate_eig, rate)
    return u, w, rate


def _noise_floor(noise, cov):
    """``noise (B, K)``, raised where it is below the working precision of the interference covariance ``cov``
    ``(B, K, Nr, Nr)`` (``8 Nr eps tr(cov)``): an interference of rank below ``Nr`` plus such a noise is
    singular in floating point (the Cholesky factorisation fails), e.g. a 1e-27 W noise under 1e-9 W of
    interference. Any realistic noise is far above the floor, and ``maximum`` returns it exactly."""
    floor = (8.0 * cov.shape[-1] * torch.finfo(noise.dtype).eps) * torch.diagonal(cov, dim1=-2, dim2=-1).real.sum(-1)
    return torch.maximum(noise, floor.to(noise.dtype))


def _bisect(lam, phi, pmax, rtol):
    """``mu (B, T)`` of eq. (8): 0 where ``mu = 0`` meets the budget, else the upper end of a bisection bracket."""
    tiny = torch.finfo(lam.dtype).tiny

    def power(mu):
        denom = (lam + mu.unsqueeze(-1)).clamp_min(tiny)
        return (phi / denom / denom).sum(-1)  # (0 / tiny / tiny = 0 where a direction carries nothing)

    zero = torch.zeros_like(pmax)
    active = power(zero) > pmax
    if not bool(active.any()):
        return zero, active
    kept = phi > 0  # eigen-directions that carry some B_k
    s = torch.sqrt(phi.sum(-1) / pmax.clamp_min(tiny))
    lam_min = torch.where(kept, lam, torch.full_like(lam, math.inf)).amin(-1)
    lam_max = torch.where(kept, lam, torch.zeros_like(lam)).amax(-1)
    lo = (s - lam_max).clamp_min(0.0)
    hi = torch.maximum((s - lam_min).clamp_min(0.0), lo)
    ratio = torch.where(active, (hi - lo) / (rtol * hi).clamp_min(tiny), torch.ones_like(hi))
    widest = float(ratio.max())
    if not math.isfinite(widest):  # (NaN or inf: the iteration's numbers left the floating-point range)
        raise FloatingPointError(
            "MIMO WMMSE: the multiplier bracket of eq. (8) is not finite: the channel, noise, weights or budgets "
            "are beyond the range of the floating-point type (e.g. an SNR above ~1e150)")
    steps = min(_MAX_BISECTION_STEPS, max(0, math.ceil(math.log2(max(widest, 1.0)))))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        over = power(mid) > pmax
        lo = torch.where(over, mid, lo)
        hi = torch.where(over, hi, mid)
    return torch.where(active, hi, zero), active


def mimo_v_update(ch: MIMOChannel, pmax, weight, u, w, *, rtol: float | None = None):
    """Line 6 of Algorithm 1 with each transmitter's multiplier from eq. (8): the new precoders ``V``.

    ``rtol``: relative width at which the bisection stops (default 1e-12 in float64, 1e-6 in float32).
    Differentiable in every argument (see the module docstring); the budget holds exactly.
    """
    bsz, k, t = ch.channel.shape[:3]
    nt, d = ch.channel.shape[-1], u.shape[-1]
    if rtol is None:
        rtol = 1e-12 if pmax.dtype == torch.float64 else 1e-6
    b_idx, k_idx = _batch_links(ch.tx_of_link)
    tx = ch.tx_of_link
    q = ch.channel_h @ u  # (B, K, T Nt, d): H_{l,t}^H U_l for every t
    qw = (q @ (weight[..., None, None] * w)).view(bsz, k, t, nt, d)  # alpha_l H_{l,t}^H U_l W_l
    by_tx = q.view(bsz, k, t, nt, d).permute(0, 2, 3, 1, 4).reshape(bsz, t, nt, k * d)
    a = qw.permute(0, 2, 3, 1, 4).reshape(bsz, t, nt, k * d) @ by_tx.mH
    a = 0.5 * (a + a.mH)  # A_t, eq. (6): (B, T, Nt, Nt)
    rhs = qw[b_idx, k_idx, tx]  # B_k = alpha_k H_{k,t(k)}^H U_k W_k: (B, K, Nt, d)
    with torch.no_grad():
        lam, e = torch.linalg.eigh(a.detach())
        lam = lam.clamp_min(0.0)
        # every B_k in its transmitter's column block (zero elsewhere): one product per transmitter
        own = ch.serves[:, :, None, :, None].to(rhs.dtype)  # (B, T, 1, K, 1)
        c = e.mH @ (rhs.detach().permute(0, 2, 1, 3).unsqueeze(1) * own).reshape(bsz, t, nt, k * d)  # E_t^H B_k
        phi = (c.real ** 2 + c.imag ** 2).sum(-1)  # diag(Phi_t): (B, T, Nt)
        null = lam <= lam[..., -1:] * (nt * torch.finfo(lam.dtype).eps)
        phi = torch.where(null, torch.zeros_like(phi), phi)
        mu, active = _bisect(lam, phi, pmax.detach(), rtol)
        tiny = torch.finfo(lam.dtype).tiny
        gain = torch.where(null, torch.zeros_like(lam), 1.0 / (lam + mu.unsqueeze(-1)).clamp_min(tiny))
        v_tx = (e @ (gain.unsqueeze(-1) * c)).view(bsz, t, nt, k, d)  # (A_t + mu_t I)^+ B_k
        v = v_tx[b_idx, tx, :, k_idx, :]  # each link from its own transmitter: (B, K, Nt, d)
        budget_on = (pmax.detach() > 0)[b_idx, tx][..., None, None]
        v = torch.where(budget_on, v, torch.zeros_like(v))
    if torch.is_grad_enabled() and any(x.requires_grad for x in (a, rhs, pmax)):
        v = _attach_gradient(ch, a, rhs, pmax, v, e, null, mu, active, lam, phi, budget_on)
    return v


def _attach_gradient(ch, a, rhs, pmax, v, e, null, mu, active, lam, phi, budget_on):
    """``v`` (value unchanged) with the derivative of ``(A + mu I)^+ B`` and of ``mu`` from eq. (8).

    With ``mu > 0``, ``A + mu I`` is invertible and ``dV = (A + mu I)^{-1} (dB - dA V - d mu V)``. With
    ``mu = 0`` and a singular ``A`` (the pseudo-inverse solution), ``dV = A^+ (dB - dA V) + (I - A A^+) dA A^+ V``
    (the range of ``A`` turns with ``A``; ``B`` stays in it).
    """
    b_idx, k_idx = _batch_links(ch.tx_of_link)
    tx = ch.tx_of_link
    with torch.no_grad():
        e_link = e[b_idx, tx]  # (B, K, Nt, Nt)
        tiny = torch.finfo(lam.dtype).tiny
        mu_t = mu.unsqueeze(-1)
        inverse = torch.where(null, torch.where(mu_t > 0, 1.0 / mu_t.clamp_min(tiny), torch.zeros_like(lam)),
                              1.0 / (lam + mu_t).clamp_min(tiny))
        inv_link = (e_link * inverse[b_idx, tx].unsqueeze(-2)) @ e_link.mH  # (A + mu I)^{-1}, or A^+ at mu = 0
        null_link = null[b_idx, tx] & ~active[b_idx, tx].unsqueeze(-1)  # pseudo-inverse rows only
        leave = (e_link * null_link.unsqueeze(-2).to(e_link.dtype)) @ e_link.mH  # I - A A^+ there, else 0
        m_v = inv_link @ v
    a_link = a[b_idx, tx]
    mu_link = mu[b_idx, tx][..., None, None]
    step = inv_link @ (rhs - a_link @ v - mu_link * v) + leave @ (a_link @ m_v)  # value ~0
    v_mu = v + (step - step.detach())  # gradient of V at fixed mu
    # mu's implicit derivative: Newton step on f(mu) = P from eq. (8), value zero
    with torch.no_grad():
        denom = (lam + mu.unsqueeze(-1)).clamp_min(tiny)
        slope = -2.0 * (phi / denom / denom / denom).sum(-1)
        slope = torch.where(active, slope, -torch.ones_like(slope))
        dv_dmu = -m_v  # d V / d mu = -(A + mu I)^{-1} V
    delta = torch.where(active, (transmitter_power(ch.serves, v_mu) - pmax) / slope, torch.zeros_like(slope))
    dmu = -(delta - delta.detach())  # value zero, gradient d mu / d theta
    v_out = v_mu + dmu[b_idx, tx][..., None, None] * dv_dmu
    return torch.where(budget_on, v_out, torch.zeros_like(v_out))


def mimo_wmmse_layer(channel, tx_of_link, noise, pmax, weight, v, a=None, b=None, *,
                     prepared: MIMOChannel | None = None):
    """One WMMSE iteration (Algorithm 1, lines 4-6). Returns the new precoders ``V (B, K, Nt, d)``.

    Differentiable in every argument (unrolled nets build on it); ``a``/``b`` ``(B, K)`` optionally modify
    the weight update as ``W <- a W + b I`` (the learnable affine map of unfolded WMMSE; default 1/0).
    ``prepared``: ``mimo_wmmse_prepare(channel, tx_of_link)``, to share across the layers of an unrolled net.
    """
    ch = mimo_wmmse_prepare(channel, tx_of_link) if prepared is None else prepared
    u, w, _ = mimo_uw_update(ch, noise, v)
    if a is not None:
        w = a[..., None, None] * w
    if b is not None:
        w = w + b[..., None, None] * _eye(w.shape[-1], w)
    return mimo_v_update(ch, pmax, weight, u, w)


# --- starting points and budgets -------------------------------------------------------------------------
def stream_directions(direct_h: torch.Tensor, streams: int) -> torch.Tensor:
    """Matched-filter directions ``H_{k,t(k)}^H Q_k`` ``(B, K, Nt, d)`` for ``d = streams``.

    ``Q_k = I`` when ``d = Nr`` (the matched filter ``H^H`` itself); for ``d < Nr`` the ``d`` dominant left
    singular vectors of ``H_{k,t(k)}`` (eigen-beamforming on the strongest modes); for ``d`` above the
    channel's rank the extra columns are zero (streams the link cannot carry).
    """
    nt, nr = direct_h.shape[-2:]
    if streams == nr:
        return direct_h
    m = min(streams, nr, nt)
    if streams < nr:
        _, s, vh = torch.linalg.svd(direct_h.mH, full_matrices=False)  # H = U S V^H
        out = vh[..., :m, :].mH * s[..., None, :m].to(direct_h.dtype)
    else:
        out = direct_h
    pad = streams - out.shape[-1]
    if pad > 0:
        out = torch.cat([out, out.new_zeros(*out.shape[:-1], pad)], dim=-1)
    return out


def _unit_peak(v: torch.Tensor, group: torch.Tensor | None,
               tx_of_link: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(v / m, m > 0)``: the precoders divided by the largest entry magnitude ``m`` of their transmitter
    (``group = serves (B, T, K)``) or of each link (``group = None``), so that the sums of squares that follow
    neither overflow (entries of 1e20) nor lose their digits to subnormals (a budget of 1e-20 W over 1e22 W
    is a ratio below float32's normal range); ``(B, K)`` mask of the links whose ``m`` is positive (and normal)."""
    b_idx, _ = _batch_links(tx_of_link)
    peak = v.abs().flatten(-2).amax(-1)  # (B, K)
    if group is not None:
        peak = (group * peak.unsqueeze(-2)).amax(-1)[b_idx, tx_of_link]  # the transmitter's peak for each link
    # (a subnormal peak counts as zero: dividing by it overflows, and its power is below the smallest normal)
    nonzero = peak >= torch.finfo(peak.dtype).tiny
    return v / torch.where(nonzero, peak, torch.ones_like(peak))[..., None, None], nonzero


def scale_to_budget(v: torch.Tensor, serves: torch.Tensor, tx_of_link: torch.Tensor, pmax: torch.Tensor,
                    split: str = "common") -> torch.Tensor:
    """Scale precoders so that every transmitter spends its whole budget ``P_t``.

    ``split="common"``: one factor per transmitter (the links keep their relative powers, ``V = a_t D``);
    ``"equal"``: every link of ``t`` gets ``P_t / n_t`` (``n_t`` its number of links) along its own
    direction. Links with a zero direction stay zero. The budget is met to within a few ulps from below,
    for any finite precoders and budgets (the precoders are first divided by their largest entry).
    """
    b_idx, _ = _batch_links(tx_of_link)
    tiny = torch.finfo(pmax.dtype).tiny
    shrink = 1.0 - 64.0 * torch.finfo(pmax.dtype).eps  # rounding never pushes a transmitter over its budget
    if split == "common":
        unit, nonzero = _unit_peak(v, serves, tx_of_link)
        total = transmitter_power(serves, unit)  # >= 1 where the transmitter has a nonzero entry
        factor = torch.sqrt(shrink * pmax) * torch.rsqrt(total.clamp_min(tiny))
        return unit * torch.where(nonzero, factor[b_idx, tx_of_link], torch.zeros_like(nonzero, dtype=pmax.dtype)
                                  )[..., None, None]
    if split == "equal":
        n_links = serves.sum(-1)
        share = shrink * pmax / n_links.clamp_min(1.0)  # (B, T)
        unit, nonzero = _unit_peak(v, None, tx_of_link)
        norm2 = link_power(unit)  # >= 1 where the link has a nonzero entry
        factor = torch.sqrt(share[b_idx, tx_of_link]) * torch.rsqrt(norm2.clamp_min(tiny))
        return unit * torch.where(nonzero, factor, torch.zeros_like(factor))[..., None, None]
    raise ValueError(f"scale_to_budget: split must be 'common' or 'equal', got {split!r}")


def within_budget(v: torch.Tensor, tx_of_link: torch.Tensor, pmax: torch.Tensor) -> torch.Tensor:
    """``v`` with every transmitter above ``(1 - 64 eps) P_t`` scaled down to it (rounding never leaves a
    precoder over its budget, for any finite precoders and budgets); the others unchanged."""
    b_idx, _ = _batch_links(tx_of_link)
    serves = _serves(tx_of_link, pmax.shape[-1], pmax.dtype)
    cap = (1.0 - 64.0 * torch.finfo(pmax.dtype).eps) * pmax
    # in float64 (float32 powers of 1e-20 W entries underflow to 0, which a zero budget would let pass; an
    # overflow to inf counts as over)
    wide = v.to(torch.complex128) if v.is_complex() else v.double()
    over = transmitter_power(serves.double(), wide) > cap.double()
    unit, _ = _unit_peak(v, serves, tx_of_link)
    total = transmitter_power(serves, unit)  # >= 1 on the transmitters over their budget
    scaled = unit * (torch.sqrt(cap) * torch.rsqrt(total.clamp_min(torch.finfo(pmax.dtype).tiny)))[b_idx, tx_of_link][
        ..., None, None]
    return torch.where(over[b_idx, tx_of_link][..., None, None], scaled, v)


def matched_filter(ch: MIMOChannel, pmax: torch.Tensor, streams: int) -> torch.Tensor:
    """The matched filter at full power, ``V_k = a_t H_{k,t(k)}^H`` with one ``a_t`` per transmitter meeting
    its budget (Pellaco et al. 2020's start ``V = a H``, per transmitter): the default start of WMMSE."""
    return scale_to_budget(stream_directions(ch.direct_h, streams), ch.serves, ch.tx_of_link, pmax, "common")


# --- the run ---------------------------------------------------------------------------------------------
@torch.no_grad()
def mimo_wmmse_run(channel, tx_of_link, noise, pmax, weight, v0=None, *, streams: int | None = None,
                   max_iter: int = 100, tol: float = 1e-3, history: bool = False):
    """Run MIMO WMMSE per sample until its weighted sum rate changes by less than ``tol`` or ``max_iter``.

    Same rules as the scalar :func:`solvers.wmmse_core.wmmse_run`: finished samples stop changing, the
    batch shrinks to the active samples as they finish, CPU batches run in cache-sized blocks of samples.

    Args:
        channel, tx_of_link, noise, pmax, weight: tensors, shapes as in the module docstring.
        v0: initial precoders ``(B, K, Nt, d)``; default the matched filter at full power
            (:func:`matched_filter`, ``d = streams``).
        streams: ``d`` when ``v0`` is not given (default ``Nr``).
        max_iter: iteration cap (default 100).
        tol: stop when ``|WSR_t - WSR_(t-1)| < tol`` (bit/s/Hz; Algorithm 1, line 7, with the weighted sum
            of ``log2 det W``); ``tol=0`` runs exactly ``max_iter`` iterations.
        history: also return the WSR after every iteration, ``(max_iter + 1, B)`` (row 0: the start),
            NaN after a sample stopped.

    Returns:
        ``(V (B, K, Nt, d), iterations (B,) int64)`` and, with ``history=True``, the WSR history.
    """
    bsz, k = channel.shape[:2]
    nr, nt = channel.shape[-2:]
    tx_of_link = _as_index(tx_of_link)
    if v0 is None:
        ch = mimo_wmmse_prepare(channel, tx_of_link)
        v = matched_filter(ch, pmax, nr if streams is None else streams)
        del ch
    else:
        v = v0.clone()
    iters = torch.zeros(bsz, dtype=torch.int64, device=channel.device)
    hist = None
    if history:
        hist = torch.full((max_iter + 1, bsz), float("nan"), dtype=pmax.dtype, device=channel.device)
    per_sample = k * k * nr * nt  # entries of the stacked cross channels
    block = bsz if channel.device.type != "cpu" else max(1, _CPU_BLOCK_ENTRIES // max(1, per_sample))
    for start in range(0, bsz, block):
        sl = slice(start, min(bsz, start + block))
        _run_block(channel[sl], tx_of_link[sl], noise[sl], pmax[sl], weight[sl], v[sl], iters[sl],
                   None if hist is None else hist[:, sl], max_iter, tol)
        v[sl] = within_budget(v[sl], tx_of_link[sl], pmax[sl])
    return (v, iters, hist) if history else (v, iters)


def _take(ch: MIMOChannel, idx: torch.Tensor) -> MIMOChannel:
    return MIMOChannel(ch.channel[idx], ch.channel_h[idx], ch.cross[idx], ch.direct_h[idx], ch.tx_of_link[idx],
                       ch.serves[idx], ch.off_diagonal)


def _run_block(channel, tx_of_link, noise, pmax, weight, v, iters, hist, max_iter, tol):
    """:func:`mimo_wmmse_run` on one block; writes ``v``, ``iters`` and ``hist`` (views) in place."""
    bsz = channel.shape[0]
    ch = mimo_wmmse_prepare(channel, tx_of_link)
    rows = torch.arange(bsz, device=channel.device)  # block rows of the working set
    alive = torch.ones(bsz, dtype=torch.bool, device=channel.device)
    vv, prev = v.clone(), None
    t = 0
    while True:
        u, w, rate = mimo_uw_update(ch, noise, vv)
        obj = (weight * rate).sum(-1)  # WSR of vv
        if hist is not None:
            hist[t, rows[alive]] = obj[alive]
        if prev is not None:
            alive &= (obj - prev).abs() >= tol
        if t == max_iter or not bool(alive.any()):
            break
        n_alive = int(alive.sum())
        # shrink the working set once a quarter of it has finished (copying costs about one iteration)
        if n_alive <= 0.75 * alive.numel():
            idx = alive.nonzero(as_tuple=True)[0]
            v[rows] = vv
            rows = rows[idx]
            ch = _take(ch, idx)
            noise, pmax, weight, vv, u, w, obj = (x[idx] for x in (noise, pmax, weight, vv, u, w, obj))
            alive = torch.ones(n_alive, dtype=torch.bool, device=channel.device)
        prev = obj
        t += 1
        v_new = mimo_v_update(ch, pmax, weight, u, w)
        vv = v_new if n_alive == alive.numel() else torch.where(alive[:, None, None, None], v_new, vv)
        iters[rows[alive]] = t
    v[rows] = vv


# --- the numpy boundary of the beamforming solvers ---------------------------------------------------------
def num_streams(obs: Mapping[str, Any]) -> int:
    """``d``, the streams per link of a batched beamforming observation: the beamforming problem's action
    shape (``d = Nr``; a link that carries fewer streams leaves columns at zero)."""
    from l2o_env.problems import get_problem

    return int(get_problem("beamforming").action_shape(obs)[-2])


def beamforming_tensors(obs: Mapping[str, Any], dtype: torch.dtype = torch.float64,
                        device: Any = "cpu") -> dict[str, torch.Tensor]:
    """A batched beamforming observation as tensors: ``channel`` complex ``(B, K, T, Nr, Nt)``, ``tx_of_link``
    int64 ``(B, K)``, ``pmax (B, T)``, ``noise``/``weight`` ``(B, K)`` in ``dtype``."""
    def real(key):
        return torch.tensor(np.asarray(obs[key]), dtype=dtype, device=device)  # a copy (inputs may be read-only views)

    channel = torch.view_as_complex(real("channel").contiguous())
    tx = torch.as_tensor(np.rint(np.asarray(obs["tx_of_link"], dtype=np.float64)).astype(np.int64), device=device)
    return {"channel": channel, "tx_of_link": tx, "pmax": real("pmax"), "noise": real("noise"),
            "weight": real("weight")}


def precoders_to_numpy(v: torch.Tensor) -> np.ndarray:
    """Complex precoders ``(B, K, Nt, d)`` -> float64 ``(B, K, Nt, d, 2)`` (real, imaginary)."""
    return torch.view_as_real(v.detach().resolve_conj()).cpu().numpy().astype(np.float64, copy=False)
