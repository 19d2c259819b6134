"""Matched-filter directions with each transmitter's budget split equally over its links."""

from __future__ import annotations

import numpy as np

from solvers.base import Solver
from solvers.wmmse_mimo_core import (beamforming_tensors, mimo_wmmse_prepare, num_streams, precoders_to_numpy,
                                     scale_to_budget, stream_directions)

__all__ = ["EqualPower", "equal_power_mrt"]


def equal_power_mrt(obs: dict[str, np.ndarray]) -> np.ndarray:
    """MRT directions, ``P_t / n_t`` per link: float64 precoders ``(B, K, Nt, d, 2)`` of a batched observation."""
    t = beamforming_tensors(obs)
    ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
    directions = stream_directions(ch.direct_h, num_streams(obs))
    return precoders_to_numpy(scale_to_budget(directions, ch.serves, ch.tx_of_link, t["pmax"], "equal"))


class EqualPower(Solver):
    r"""Equal power: MRT directions, every link of a transmitter gets the same share ``P_t / n_t`` of its budget.

    The direction of :class:`~solvers.mrt.MRT` (the matched filter ``H_{k,t(k)}^H Q_k``) normalised, with
    the budget split equally over the ``n_t`` links of each transmitter (the "MRT with equal power
    allocation" baseline of multi-user MISO studies, e.g. E. Björnson, M. Bengtsson, B. Ottersten, "Optimal
    Multiuser Transmit Beamforming: A Difficult Problem with a Simple Solution Structure", IEEE Signal
    Process. Mag. 31(4):142-148, 2014):

    .. math::

        V_k = \sqrt{P_{t(k)} / n_{t(k)}} \; \frac{H_{k,t(k)}^H Q_k}{\|H_{k,t(k)}^H Q_k\|_F}

    Its streams (``d > 1``) share the link's power in proportion to their singular values squared.
    Deterministic, stateless, no arguments.

    Shapes:
        ``act``: ``channel (K, T, Nr, Nt, 2)``, ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)``
        -> precoders ``(K, Nt, d, 2)`` (real, imaginary); ``act_batch``: the same with a leading ``B``.
    """

    name = "equal_power"
    problems = frozenset({"beamforming"})

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return equal_power_mrt(obs)
