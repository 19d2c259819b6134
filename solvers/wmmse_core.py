"""Scalar WMMSE, the one implementation every solver calls (torch, batched, differentiable).

H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training Deep Neural
Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412, Fig. 2 (real-valued scalar WMMSE), with the per-link
weights alpha_k. A. Chowdhury, G. Verma, C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using Graph
Neural Networks for Efficient Power Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017, 2021,
doi:10.1109/TWC.2021.3071480, arXiv:2009.10812, eqs. (6)-(8), write the same iteration as one unfolded
layer, with the learnable affine map of the w-update (eq. 7). With
``a = 1, b = 0`` :func:`wmmse_layer` is exactly one WMMSE iteration.

Layer k, from ``v^(k-1)`` (amplitudes, ``p = v^2``), with ``g_ij = |h_ij|^2`` (row = receiver):

.. math::

    u_i = \\frac{\\sqrt{g_{ii}} v_i}{\\sigma_i^2 + \\sum_j g_{ij} v_j^2}                  \\quad (6)

    w_i = \\frac{a_i}{1 - u_i \\sqrt{g_{ii}} v_i} + b_i                                     \\quad (7)

    v_i = \\Big[\\frac{\\alpha_i w_i u_i \\sqrt{g_{ii}}}{\\sum_j \\alpha_j w_j u_j^2 g_{ji}}\\Big]_0^{\\sqrt{P_i}} \\quad (8)

``1 / (1 - u_i sqrt(g_ii) v_i)`` equals ``1 + SINR_i`` (the MMSE-SINR equality, Sun et al. 2018, Sec. II-B); we compute
it as ``1 + g_ii v_i^2 / (sigma_i^2 + sum_{j != i} g_ij v_j^2)`` from the cross gains alone, so it never
rounds to zero or loses digits at very high SINR. The SINR comes from :func:`l2o_env.rates.sinr_torch`
(the one home of the rate formula), so the weighted sum rate of ``v`` that :func:`wmmse_run`'s stopping
rule needs costs nothing extra.

Shapes:
    gain ``(B, K, K)``, noise / pmax / weight / v / a / b ``(B, K)``; every function returns ``(B, K)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from l2o_env.rates import cross_gains_torch as _cross
from l2o_env.rates import rate_from_sinr_torch
from l2o_env.rates import sinr_torch

__all__ = ["WMMSEGains", "wmmse_layer", "wmmse_prepare", "wmmse_run"]

# CPU: run wmmse_run in blocks of about this many gain entries per copy (8 MB in float64) so that the
# block's gain and its transpose stay in the last-level cache (faster than one big batch: see
# benchmarks/RESULTS.md, "WMMSE speed").
_CPU_BLOCK_ENTRIES = 1 << 20


def _v_update(cross, direct, amp, vmax, weight, v, total, w):
    """Eq. (8) from ``v^(k-1)``, the u-update's denominator ``total`` and the MMSE weights ``w``."""
    u = amp * v / total  # eq. (6)
    awu = weight * w * u
    coeff = awu * u
    # sum_j alpha_j w_j u_j^2 g_ji = (coeff^T cross)_i + alpha_i w_i u_i^2 g_ii
    denom = (coeff.unsqueeze(-2) @ cross).squeeze(-2) + coeff * direct
    v_new = awu * amp / denom.clamp_min(torch.finfo(v.dtype).tiny)
    return torch.minimum(v_new.clamp_min(0.0), vmax)


class WMMSEGains(NamedTuple):
    """What every iteration reads from ``gain`` and ``pmax`` (built once by :func:`wmmse_prepare`)."""

    cross: torch.Tensor  # (B, K, K) gains with a zero diagonal
    cross_t: torch.Tensor  # (B, K, K) its transpose, contiguous (the SINR's mat-vec)
    direct: torch.Tensor  # (B, K) g_ii
    amp: torch.Tensor  # (B, K) sqrt(g_ii)
    vmax: torch.Tensor  # (B, K) sqrt(pmax)


def wmmse_prepare(gain, pmax) -> WMMSEGains:
    """The per-network constants of the iteration; an unrolled net (UWMMSE) passes them to every layer."""
    cross = _cross(gain)
    direct = torch.diagonal(gain, dim1=-2, dim2=-1).contiguous()
    return WMMSEGains(cross, cross.transpose(-1, -2).contiguous(), direct, direct.sqrt(), pmax.sqrt())


def wmmse_layer(gain, noise, pmax, weight, v, a=None, b=None, *, prepared: WMMSEGains | None = None):
    """One WMMSE iteration (Chowdhury et al. 2021, eqs. 6-8; Sun et al. 2018, Fig. 2 steps 7-9). Returns ``v``.

    Differentiable in every argument (the learned solvers unfold it); ``a``/``b`` default to 1/0.
    ``prepared``: ``wmmse_prepare(gain, pmax)``, to share across the layers of an unrolled net (the
    same numbers; saves rebuilding the cross gains every layer).
    """
    g = wmmse_prepare(gain, pmax) if prepared is None else prepared
    sinr, total = sinr_torch(g.cross_t, g.direct, noise, v * v)
    w = 1.0 + sinr  # = 1 / MMSE, eq. (7) with a = 1, b = 0
    if a is not None:
        w = a * w
    if b is not None:
        w = w + b
    return _v_update(g.cross, g.direct, g.amp, g.vmax, weight, v, total, w)


@torch.no_grad()
def wmmse_run(gain, noise, pmax, weight, v0=None, *, max_iter=100, tol=1e-3, history=False):
    """Run WMMSE per sample until its weighted sum rate changes by less than ``tol`` or ``max_iter``.

    Finished samples stop changing (their ``v`` is frozen); the batch shrinks to the active samples
    as they finish, so a batch costs what its slowest samples cost, not ``B x max_iter``. On the CPU the
    batch runs in cache-sized blocks of samples (same result, faster); on a GPU in one piece.

    Args:
        gain, noise, pmax, weight: float tensors, shapes as in the module docstring.
        v0: initial amplitudes ``(B, K)``; default full power ``sqrt(pmax)`` (Sun et al. 2018, Fig. 2 / Sec. IV).
        max_iter: iteration cap (authors' code 100; paper 500).
        tol: stop when ``|WSR_t - WSR_(t-1)| < tol`` (bit/s/Hz; authors' code 1e-3, paper 1e-5);
            ``tol=0`` runs exactly ``max_iter`` iterations.
        history: also return the WSR after every iteration, ``(max_iter + 1, B)`` (row 0: the start),
            NaN after a sample stopped.

    Returns:
        ``(power (B, K), iterations (B,) int64)`` and, with ``history=True``, the WSR history.
    """
    bsz, k = gain.shape[0], gain.shape[-1]
    v = pmax.sqrt().clone() if v0 is None else v0.clone()
    iters = torch.zeros(bsz, dtype=torch.int64, device=gain.device)
    hist = None
    if history:
        hist = torch.full((max_iter + 1, bsz), float("nan"), dtype=gain.dtype, device=gain.device)
    block = bsz if gain.device.type != "cpu" else max(1, _CPU_BLOCK_ENTRIES // max(1, k * k))
    for start in range(0, bsz, block):
        sl = slice(start, min(bsz, start + block))
        _run_block(gain[sl], noise[sl], pmax[sl], weight[sl], v[sl], iters[sl],
                   None if hist is None else hist[:, sl], max_iter, tol)
    power = v * v
    return (power, iters, hist) if history else (power, iters)


def _run_block(gain, noise, pmax, weight, v, iters, hist, max_iter, tol):
    """:func:`wmmse_run` on one block; writes ``v``, ``iters`` and ``hist`` (views) in place."""
    bsz = gain.shape[0]
    cross, cross_t, direct, amp, vmax = wmmse_prepare(gain, pmax)
    rows = torch.arange(bsz, device=gain.device)  # block rows of the working set
    alive = torch.ones(bsz, dtype=torch.bool, device=gain.device)  # working-set rows still iterating
    vv, prev = v.clone(), None
    t = 0
    while True:
        sinr, total = sinr_torch(cross_t, direct, noise, vv * vv)
        obj = (weight * rate_from_sinr_torch(sinr)).sum(-1)  # WSR of vv
        if hist is not None:
            hist[t, rows[alive]] = obj[alive]
        if prev is not None:
            alive &= (obj - prev).abs() >= tol
        if t == max_iter or not bool(alive.any()):
            break
        n_alive = int(alive.sum())
        # Shrink the working set once a quarter of it has finished: copying costs about one iteration,
        # so compacting after every finished sample would cost more than it saves.
        if n_alive <= 0.75 * alive.numel():
            idx = alive.nonzero(as_tuple=True)[0]
            v[rows] = vv
            rows = rows[idx]
            cross, cross_t, direct, amp, vmax = cross[idx], cross_t[idx], direct[idx], amp[idx], vmax[idx]
            noise, weight, vv, sinr, total, obj = noise[idx], weight[idx], vv[idx], sinr[idx], total[idx], obj[idx]
            alive = torch.ones(n_alive, dtype=torch.bool, device=gain.device)
        prev = obj
        t += 1
        v_new = _v_update(cross, direct, amp, vmax, weight, vv, total, 1.0 + sinr)
        vv = v_new if n_alive == alive.numel() else torch.where(alive.unsqueeze(-1), v_new, vv)
        iters[rows[alive]] = t
    v[rows] = vv
