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
    "interference_prices",
    "link_rates_torch",
    "weighted_sum_rate_torch",
    "cross_gains_torch",
    "sinr_torch",
    "rate_from_sinr_torch",
    "mimo_link_rates",
    "mimo_link_rates_torch",
    "mimo_weighted_sum_rate",
]

_LN2 = float(np.log(2.0))
#: eigenvalues of S^H J^-1 S below this times d times the largest are rounding errors (64 float64 epsilons)
_EIG_RTOL = 64.0 * float(np.finfo(np.float64).eps)


def link_rates(gain: np.ndarray, power: np.ndarray, noise: np.ndarray | float) -> np.ndarray:
    """Per-link rates in bit/s/Hz (numpy). ``gain (..., K, K)``, ``power (..., K)``, ``noise (..., K)``.

    Finite for every finite input with ``noise > 0``: the links whose received power or SINR overflows float64
    (gains x powers above 1e308, out of reach of float32 observations; numpy then warns about the overflow) are
    computed from the logarithms instead (:func:`_link_rates_from_logs`). The inputs are not validated (the env's
    action check and the solvers' observation check do that once, at their boundaries)."""
    gain = np.asarray(gain, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    received = gain * power[..., None, :]  # received[i, j] = g_ij p_j
    signal = np.diagonal(received, axis1=-2, axis2=-1).copy()
    # sum the cross terms themselves: (total - signal) loses all precision when SNR > ~1e14
    idx = np.arange(received.shape[-1])
    received[..., idx, idx] = 0.0
    interference = received.sum(axis=-1)
    sinr = signal / (noise + interference)
    rates = np.log1p(sinr) / _LN2
    if not np.isfinite(rates).all() or not np.isfinite(interference).all():
        rates = np.where(np.isfinite(rates) & np.isfinite(interference), rates,
                         _link_rates_from_logs(gain, power, noise))
    return rates


def _link_rates_from_logs(gain: np.ndarray, power: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """:func:`link_rates` from ``log g_ij + log p_j`` (log-sum-exp over the interference and the noise), for the
    links whose received powers overflow float64: ``log2(1 + SINR) = softplus(log SINR) / ln 2``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.log(gain) + np.log(power)[..., None, :]  # -inf for the zeros
        idx = np.arange(terms.shape[-1])
        log_signal = terms[..., idx, idx]
        terms[..., idx, idx] = -np.inf
        top = np.maximum(terms.max(axis=-1), np.log(np.broadcast_to(noise, log_signal.shape)))
        top = np.where(np.isfinite(top), top, 0.0)
        log_denom = top + np.log(np.exp(terms - top[..., None]).sum(axis=-1) + np.exp(np.log(noise) - top))
        return np.logaddexp(0.0, log_signal - log_denom) / _LN2


def weighted_sum_rate(gain, power, noise, weight=None) -> np.ndarray:
    """Weighted sum rate in bit/s/Hz (numpy), summed over the last (link) axis. ``weight=None``: all 1."""
    rates = link_rates(gain, power, noise)
    if weight is None:
        return rates.sum(axis=-1)
    return (np.asarray(weight, dtype=np.float64) * rates).sum(axis=-1)


def interference_prices(gain, power, noise, weight=None) -> np.ndarray:
    r"""What each link's interference costs the others (numpy): ``(..., K)``.

    :math:`\pi_i = \sum_{j \ne i} w_j \big(r_j^{(-i)} - r_j\big)`, where :math:`r_j^{(-i)}` is link ``j``'s
    rate (the formula above) with transmitter ``i``'s interference removed. ``w_i r_i - \pi_i`` is the
    per-link reward of Nasir and Guo, "Multi-agent deep reinforcement learning for dynamic power allocation
    in wireless networks", IEEE JSAC 2019, Sec. III-B (their "interference penalty"): its derivative in
    ``p_i`` is that of the weighted sum rate, so links maximising it cooperate.
    Same shapes and units as :func:`weighted_sum_rate`; ``weight=None``: all 1.
    """
    gain = np.asarray(gain, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    k = gain.shape[-1]
    noise = np.broadcast_to(np.asarray(noise, dtype=np.float64), power.shape)
    weight = np.ones(power.shape) if weight is None else np.asarray(weight, dtype=np.float64)
    received = gain * power[..., None, :]  # received[j, i] = g_ji p_i
    signal = np.diagonal(received, axis1=-2, axis2=-1).copy()
    cross = received
    idx = np.arange(k)
    cross[..., idx, idx] = 0.0
    interference = cross.sum(axis=-1)
    # without[j, i]: j's noise plus interference once transmitter i is silent (total minus g_ji p_i,
    # clamped at 0: the difference can round below 0 when i is j's only interferer)
    without = noise[..., :, None] + np.maximum(interference[..., :, None] - cross, 0.0)
    gain_rate = np.log1p(signal[..., :, None] / without) / _LN2 - link_rates(gain, power, noise)[..., :, None]
    gain_rate[..., idx, idx] = 0.0
    return (weight[..., :, None] * gain_rate).sum(axis=-2)


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


# --- multi-antenna links (beamforming): the one home of the MIMO rate --------------------------------
# Convention (DESIGN.md, "Observation (beamforming)"): ``channel[..., k, t]`` is the Nr x Nt matrix H_{k,t}
# from transmitter t to the receiver of link k, and the received signal of link k is
# ``y_k = sum_j H_{k, t(j)} V_j s_j + n_k`` with ``t(j) = tx_of_link[j]``: H itself multiplies the precoder
# (no conjugate transpose). The rate of link k is
#     r_k = log2 det(I + H_{k,t(k)} V_k V_k^H H_{k,t(k)}^H J_k^{-1}),
#     J_k = sigma_k^2 I + sum_{j != k} H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H,
# computed as log det(I_d + S_k^H J_k^{-1} S_k) with S_k = H_{k,t(k)} V_k (Sylvester's identity; d x d
# instead of Nr x Nr, and log1p when d = 1, so the single-antenna case is exactly `link_rates`). The
# interference is summed from its own terms (never total minus signal), as in `link_rates`.
def _mimo_pieces(xp, channel, tx_of_link, precoder):
    """Signal ``S (..., K, Nr, d)`` and the interference terms side by side ``(..., K, Nr, K*d)`` (the own
    link's block zeroed), for numpy (``xp = np``) or torch (``xp = torch``)."""
    k = channel.shape[-4]
    ids = _arange(xp, k, channel)
    if tx_of_link.ndim == 1:
        if channel.shape[-3] == k and bool((tx_of_link == ids).all()):
            picked = channel  # one transmitter per link (D2D, the IC): nothing to gather
        else:
            picked = channel[..., tx_of_link, :, :]  # (..., K, K, Nr, Nt): H_{k, t(j)}
    else:  # a transmitter map per sample
        lead = tuple(np.broadcast_shapes(tuple(channel.shape[:-4]), tuple(tx_of_link.shape[:-1])))
        idx = tx_of_link.reshape(*tx_of_link.shape[:-1], 1, k, 1, 1)
        shape = (*lead, k, k, *channel.shape[-2:])
        if xp is np:
            picked = np.take_along_axis(np.broadcast_to(channel, (*lead, *channel.shape[-4:])),
                                        np.broadcast_to(idx, shape), axis=-3)
        else:
            picked = xp.gather(channel.expand(*lead, *channel.shape[-4:]), -3, idx.expand(*shape).long())
    received = picked @ precoder[..., None, :, :, :]  # (..., K, K, Nr, d): H_{k,t(j)} V_j
    signal = received[..., ids, ids, :, :]
    off = (ids[:, None] != ids[None, :])[..., None, None]
    cross = received * off
    nr, d = received.shape[-2], received.shape[-1]
    cross = np.swapaxes(cross, -3, -2) if xp is np else cross.transpose(-3, -2)
    return signal, cross.reshape(*cross.shape[:-3], nr, k * d)


def _arange(xp, k, ref):
    return np.arange(k) if xp is np else xp.arange(k, device=ref.device)


def _solve_hermitian(xp, j, signal, noise):
    """``J^-1 S`` for ``J = C + sigma^2 I`` (``C`` the interference covariance, Hermitian, PSD) that is singular in
    floating point (a noise below the rounding of a rank-deficient ``C``, e.g. 1e-45 W under 1 W): from the
    eigenvalues of ``C``, clamped at 0 (their rounding errors), plus ``sigma^2 > 0``, so never singular.
    ``xp``: numpy or torch."""
    if xp is np:
        c = j - noise[..., None, None] * np.eye(j.shape[-1])
        lam, e = np.linalg.eigh(0.5 * (c + np.conj(np.swapaxes(c, -1, -2))))
        inv = 1.0 / (np.maximum(lam, 0.0) + noise[..., None])
        return e @ (inv[..., :, None] * (np.conj(np.swapaxes(e, -1, -2)) @ signal))
    eye = xp.eye(j.shape[-1], dtype=noise.dtype, device=j.device)
    c = j - (noise[..., None, None] * eye).to(j.dtype)
    lam, e = xp.linalg.eigh(0.5 * (c + c.conj().transpose(-1, -2)))
    inv = (1.0 / (lam.clamp_min(0.0) + noise[..., None])).to(j.dtype)
    return e @ (inv[..., :, None] * (e.conj().transpose(-1, -2) @ signal))


def mimo_link_rates(channel, tx_of_link, precoder, noise) -> np.ndarray:
    """Per-link rates in bit/s/Hz of precoders on a multi-antenna network (numpy, any leading axes).

    Args:
        channel: complex ``(..., K, T, Nr, Nt)``: ``channel[..., k, t]`` is H_{k,t}, from transmitter ``t``
            (Nt antennas) to the receiver of link ``k`` (Nr antennas); ``y_k = sum_j H_{k,t(j)} V_j s_j + n_k``
            (H multiplies V: no conjugate transpose).
        tx_of_link: integer-valued ``(K,)`` or ``(..., K)``: the transmitter ``t(j)`` of every link.
        precoder: complex ``(..., K, Nt, d)``: V_k, the precoder of link ``k`` (``d`` streams).
        noise: ``(..., K)`` or a scalar: the noise power sigma_k^2 of every receiver (W), > 0.

    Returns:
        float64 ``(..., K)``: ``log2 det(I + H_kk V_k V_k^H H_kk^H J_k^{-1})`` with
        ``J_k = sigma_k^2 I + sum_{j != k} H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H``. With ``Nr = Nt = d = 1`` this
        is :func:`link_rates` of the gains ``|h|^2`` and the powers ``|v|^2``.
    """
    channel = np.asarray(channel, dtype=np.complex128)
    precoder = np.asarray(precoder, dtype=np.complex128)
    tx = np.asarray(tx_of_link)
    tx = tx.astype(np.intp) if tx.dtype.kind != "i" else tx
    signal, cross = _mimo_pieces(np, channel, tx, precoder)
    nr, d = signal.shape[-2], signal.shape[-1]
    noise = np.asarray(noise, dtype=np.float64)
    j = cross @ np.conj(np.swapaxes(cross, -1, -2))  # (..., K, Nr, Nr)
    j = j + noise[..., None, None] * np.eye(nr)
    try:
        solved = np.linalg.solve(j, signal)
    except np.linalg.LinAlgError:  # singular in floating point: a noise below the interference's rounding
        solved = _solve_hermitian(np, j, signal, noise)
    a = np.conj(np.swapaxes(signal, -1, -2)) @ solved  # S^H J^-1 S, (..., K, d, d)
    if d == 1:
        return np.log1p(np.maximum(a[..., 0, 0].real, 0.0)) / _LN2
    # log det(I + A) from the eigenvalues of A (Hermitian PSD): a determinant of I + A loses the I next to a
    # huge rank-deficient A (an SINR of 1e45 on one stream: the other eigenvalue's rounding error is 1e29, and
    # the determinant can come out <= 0). Eigenvalues below the rounding of the largest count as 0.
    mu = np.linalg.eigvalsh(0.5 * (a + np.conj(np.swapaxes(a, -1, -2))))
    mu = np.where(mu > _EIG_RTOL * d * mu[..., -1:], mu, 0.0)
    return np.log1p(mu).sum(axis=-1) / _LN2


def mimo_link_rates_torch(channel, tx_of_link, precoder, noise):
    """:func:`mimo_link_rates` in torch, differentiable in ``precoder`` (and ``channel``).

    ``channel`` ``(..., K, T, Nr, Nt)`` and ``precoder`` ``(..., K, Nt, d)`` are complex tensors (promoted to
    the wider complex dtype of the two), ``tx_of_link`` an integer-valued tensor ``(K,)`` or ``(..., K)``,
    ``noise`` a real tensor ``(..., K)`` or a number. Returns real rates ``(..., K)`` in bit/s/Hz.
    """
    import torch

    dtype = torch.promote_types(channel.dtype, precoder.dtype)
    channel, precoder = channel.to(dtype), precoder.to(dtype)
    tx = torch.as_tensor(tx_of_link, device=channel.device)
    tx = tx.long() if tx.is_floating_point() else tx
    signal, cross = _mimo_pieces(torch, channel, tx, precoder)
    nr, d = signal.shape[-2], signal.shape[-1]
    real = signal.real.dtype
    noise = torch.as_tensor(noise, device=channel.device).to(real)
    j = cross @ cross.conj().transpose(-1, -2)
    j = j + (noise[..., None, None] * torch.eye(nr, dtype=real, device=channel.device)).to(dtype)
    solved, info = torch.linalg.solve_ex(j, signal)
    if bool((info != 0).any()):  # singular in floating point: a noise below the interference's rounding
        solved = _solve_hermitian(torch, j, signal, noise)
    a = signal.conj().transpose(-1, -2) @ solved
    if d == 1:
        return torch.log1p(a[..., 0, 0].real.clamp_min(0.0)) / _LN2
    # from the eigenvalues of A, as mimo_link_rates (a determinant of I + A is lost next to a huge rank-deficient A)
    mu = torch.linalg.eigvalsh(0.5 * (a + a.conj().transpose(-1, -2)))
    rtol = 64.0 * torch.finfo(mu.dtype).eps  # (_EIG_RTOL in the tensors' precision)
    mu = torch.where(mu > rtol * d * mu[..., -1:], mu, torch.zeros_like(mu))
    return torch.log1p(mu).sum(-1) / _LN2


def mimo_weighted_sum_rate(channel, tx_of_link, precoder, noise, weight=None) -> np.ndarray:
    """Weighted sum rate in bit/s/Hz (numpy) of :func:`mimo_link_rates`; ``weight=None``: all 1."""
    rates = mimo_link_rates(channel, tx_of_link, precoder, noise)
    if weight is None:
        return rates.sum(axis=-1)
    return (np.asarray(weight, dtype=np.float64) * rates).sum(axis=-1)
