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

__all__ = ["link_rates", "weighted_sum_rate", "link_rates_torch", "weighted_sum_rate_torch"]


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
    return np.log2(1.0 + sinr)


def weighted_sum_rate(gain, power, noise, weight=None) -> np.ndarray:
    """Weighted sum rate in bit/s/Hz (numpy), summed over the last (link) axis. ``weight=None``: all 1."""
    rates = link_rates(gain, power, noise)
    if weight is None:
        return rates.sum(axis=-1)
    return (np.asarray(weight, dtype=np.float64) * rates).sum(axis=-1)


def link_rates_torch(gain, power, noise):
    """Per-link rates in bit/s/Hz (torch, differentiable in ``power`` and ``gain``).

    Same shapes as :func:`link_rates`; keeps the dtype/device of ``gain``.
    """
    import torch

    k = gain.shape[-1]
    off = 1.0 - torch.eye(k, dtype=gain.dtype, device=gain.device)
    received = gain * power.unsqueeze(-2)
    signal = torch.diagonal(received, dim1=-2, dim2=-1)
    # sum the cross terms themselves (see link_rates); a mask keeps it differentiable and batched
    interference = (received * off).sum(dim=-1)
    return torch.log2(1.0 + signal / (noise + interference))


def weighted_sum_rate_torch(gain, power, noise, weight=None):
    """Weighted sum rate (torch, differentiable); the unsupervised loss of the learned solvers is its negative."""
    rates = link_rates_torch(gain, power, noise)
    if weight is None:
        return rates.sum(dim=-1)
    return (weight * rates).sum(dim=-1)
