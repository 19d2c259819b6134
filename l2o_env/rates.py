"""The one home of the weighted-sum-rate formula (numpy and torch twins).

Convention (DESIGN.md): ``gain[..., i, j] = |h_ij|^2`` is the power gain from transmitter ``j`` to
receiver ``i`` (row = receiver, column = transmitter, diagonal = direct links). Every array carries a
leading batch axis where it has one; both functions broadcast over any leading axes.

.. math::

    r_i = \\log_2\\Big(1 + \\frac{g_{ii} p_i}{\\sigma_i^2 + \\sum_{j \\ne i} g_{ij} p_j}\\Big),
    \\qquad \\mathrm{WSR} = \\sum_i w_i r_i

Units: powers in watts, noise power ``sigma^2`` in watts, rates in bit/s/Hz.

Shapes:
    gain: ``(..., K, K)``; power, noise, weight: ``(..., K)``  ->  rates ``(..., K)``, WSR ``(...)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "link_rates",
    "weighted_sum_rate",
    "link_rates_torch",
    "weighted_sum_rate_torch",
    "cross_gains_torch",
    "sinr_torch",
    "rate_from_sinr_torch",
]

_LN2 = float(np.log(2.0))


def link_rates(gain: np.ndarray, power: np.ndarray, noise: np.ndarray | float) -> np.ndarray:
    """Per-link rates in bit/s/Hz (numpy). ``gain (..., K, K)``, ``power (..., K)``, ``noise (..., K)``."""
    gain = np.asarray(gain, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    received = gain * power[..., None, :]  # received[i, j] = g_ij p_j
    signal = np.diagonal(received, axis1=-2, axis2=-1).copy()
    # sum the cross terms themselves: (total - signal) loses all precision when SNR > ~1e14
    idx = np.arange(received.shape[-1])
    received[..., idx, idx] = 0.0
    interference = received.sum(axis=-1)
    sinr = signal / (np.asarray(noise, dtype=np.float64) + interference)
    return np.log1p(sinr) / _LN2


def weighted_sum_rate(gain, power, noise, weight=None) -> np.ndarray:
    """Weighted sum rate in bit/s/Hz (numpy), summed over the last (link) axis. ``weight=None``: all 1."""
    rates = link_rates(gain, power, noise)
    if weight is None:
        return rates.sum(axis=-1)
    return (np.asarray(weight, dtype=np.float64) * rates).sum(axis=-1)


def cross_gains_torch(gain):
    """The gain matrix with its diagonal (the direct links) set to 0: ``(..., K, K)``, differentiable."""
    import torch

    k = gain.shape[-1]
    return gain * (1.0 - torch.eye(k, dtype=gain.dtype, device=gain.device))


def sinr_torch(cross_t, direct, noise, power):
    """Per-link SINR from the transposed cross gains, plus the total received power (torch).

    ``cross_t[..., j, i] = g_ij`` for ``j != i`` and 0 on the diagonal (``cross_gains_torch(gain)``
    transposed; an iterative solver builds it once, contiguous, and reuses it every iteration);
    ``direct (..., K)`` the direct gains ``g_ii``. The cross terms are summed themselves (not total minus
    signal), so the SINR is exact even above 1e14.

    Returns:
        ``(sinr, total)``, both ``(..., K)``: ``sinr_i = g_ii p_i / (sigma_i^2 + sum_{j != i} g_ij p_j)`` and
        ``total_i = sigma_i^2 + sum_j g_ij p_j`` (WMMSE's u-update denominator).
    """
    import torch

    signal = direct * power
    noise_interf = (noise + (power.unsqueeze(-2) @ cross_t).squeeze(-2)).clamp_min(torch.finfo(signal.dtype).tiny)
    return signal / noise_interf, noise_interf + signal


def rate_from_sinr_torch(sinr):
    """``log2(1 + sinr)`` in bit/s/Hz, computed as ``log1p(sinr) / ln 2`` (accurate at small SINR)."""
    import torch

    return torch.log1p(sinr) / _LN2


def link_rates_torch(gain, power, noise):
    """Per-link rates in bit/s/Hz (torch, differentiable in ``power`` and ``gain``).

    Same shapes as :func:`link_rates`; computed in the promoted dtype of ``gain`` and ``power``.
    """
    import torch

    dtype = torch.promote_types(gain.dtype, power.dtype)
    gain, power = gain.to(dtype), power.to(dtype)
    direct = torch.diagonal(gain, dim1=-2, dim2=-1)
    sinr, _ = sinr_torch(cross_gains_torch(gain).transpose(-1, -2), direct, noise, power)
    return rate_from_sinr_torch(sinr)


def weighted_sum_rate_torch(gain, power, noise, weight=None):
    """Weighted sum rate (torch, differentiable); the unsupervised loss of the learned solvers is its negative."""
    rates = link_rates_torch(gain, power, noise)
    if weight is None:
        return rates.sum(dim=-1)
    return (weight * rates).sum(dim=-1)
