"""Scalar WMMSE, the one implementation every solver calls (torch, batched, differentiable).

Sun et al., "Learning to optimize" (../shared/seeds/000_904d63b2a59c0431.txt), Fig. 2 (real-valued
scalar WMMSE), with the per-link weights alpha_k; Chowdhury et al. (002_...txt) eqs. (6)-(8) write the
same iteration as one unfolded layer, with the learnable affine map of the w-update (eq. 7). With
``a = 1, b = 0`` :func:`wmmse_layer` is exactly one WMMSE iteration.

Layer k, from ``v^(k-1)`` (amplitudes, ``p = v^2``), with ``g_ij = |h_ij|^2`` (row = receiver):

.. math::

    u_i = \\frac{\\sqrt{g_{ii}} v_i}{\\sigma_i^2 + \\sum_j g_{ij} v_j^2}                  \\quad (6)

    w_i = \\frac{a_i}{1 - u_i \\sqrt{g_{ii}} v_i} + b_i                                     \\quad (7)

    v_i = \\Big[\\frac{\\alpha_i w_i u_i \\sqrt{g_{ii}}}{\\sum_j \\alpha_j w_j u_j^2 g_{ji}}\\Big]_0^{\\sqrt{P_i}} \\quad (8)

``1 - u_i sqrt(g_ii) v_i`` equals ``(sigma_i^2 + I_i) / (sigma_i^2 + I_i + S_i)`` (the MMSE); we compute it in
that form so that it never rounds to zero at very high SINR.

Shapes:
    gain ``(B, K, K)``, noise / pmax / weight / v / a / b ``(B, K)``; every function returns ``(B, K)``.
"""

from __future__ import annotations

import torch

from l2o_env.rates import weighted_sum_rate_torch

__all__ = ["wmmse_layer", "wmmse_run"]


def wmmse_layer(gain, noise, pmax, weight, v, a=None, b=None):
    """One WMMSE iteration (eqs. 6-8 of 002; Fig. 2 steps 7-9 of 000). Returns the new ``v``."""
    direct = torch.diagonal(gain, dim1=-2, dim2=-1)
    amp = direct.sqrt()
    v2 = v * v
    total = noise + (gain @ v2.unsqueeze(-1)).squeeze(-1)  # sigma_i^2 + sum_j g_ij v_j^2
    u = amp * v / total
    mmse = (total - direct * v2) / total  # = 1 - u_i sqrt(g_ii) v_i, without cancellation
    tiny = torch.finfo(gain.dtype).tiny
    w = 1.0 / mmse.clamp_min(tiny)
    if a is not None:
        w = a * w
    if b is not None:
        w = w + b
    # denominator_i = sum_j alpha_j w_j u_j^2 g_ji
    coeff = weight * w * u * u
    denom = (gain.transpose(-1, -2) @ coeff.unsqueeze(-1)).squeeze(-1)
    v_new = weight * w * u * amp / denom.clamp_min(tiny)
    return torch.minimum(v_new.clamp_min(0.0), pmax.sqrt())


@torch.no_grad()
def wmmse_run(gain, noise, pmax, weight, v0=None, *, max_iter=100, tol=1e-3, history=False):
    """Run WMMSE per sample until its weighted sum rate changes by less than ``tol`` or ``max_iter``.

    Finished samples stop changing (their ``v`` is frozen); the batch shrinks to the active samples
    as they finish, so a batch costs what its slowest samples cost, not ``B x max_iter``.

    Args:
        gain, noise, pmax, weight: float tensors, shapes as in the module docstring.
        v0: initial amplitudes ``(B, K)``; default full power ``sqrt(pmax)`` (Fig. 2 / Sec. IV of 000).
        max_iter: iteration cap (authors' code 100; paper 500).
        tol: stop when ``|WSR_t - WSR_(t-1)| < tol`` (bit/s/Hz; authors' code 1e-3, paper 1e-5).
        history: also return the WSR after every iteration, ``(max_iter + 1, B)``, NaN after a
            sample stopped.

    Returns:
        ``(power (B, K), iterations (B,) int64)`` and, with ``history=True``, the WSR history.
    """
    v = pmax.sqrt().clone() if v0 is None else v0.clone()
    bsz = gain.shape[0]
    iters = torch.zeros(bsz, dtype=torch.int64, device=gain.device)
    obj = weighted_sum_rate_torch(gain, v * v, noise, weight)
    hist = None
    if history:
        hist = torch.full((max_iter + 1, bsz), float("nan"), dtype=gain.dtype, device=gain.device)
        hist[0] = obj
    active = torch.arange(bsz, device=gain.device)
    g, n, p, wt, vv, ob = gain, noise, pmax, weight, v, obj
    for t in range(1, max_iter + 1):
        vv = wmmse_layer(g, n, p, wt, vv)
        new_obj = weighted_sum_rate_torch(g, vv * vv, n, wt)
        v[active] = vv
        iters[active] = t
        if hist is not None:
            hist[t, active] = new_obj
        keep = (new_obj - ob).abs() >= tol
        ob = new_obj
        if not bool(keep.all()):
            if not bool(keep.any()):
                break
            idx = keep.nonzero(as_tuple=True)[0]
            active = active[idx]
            g, n, p, wt, vv, ob = g[idx], n[idx], p[idx], wt[idx], vv[idx], ob[idx]
    power = v * v
    return (power, iters, hist) if history else (power, iters)
