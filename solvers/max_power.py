"""Every transmitter at full power: the interference-blind baseline."""

from __future__ import annotations

import numpy as np

from solvers.base import Solver
from solvers.equal_power import equal_power_mrt

__all__ = ["MaxPower"]


class MaxPower(Solver):
    r"""Max power: every link transmits at its full budget, p_k = P_k (baseline of Sun et al. 2018).

    The simplest reference of H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to
    Optimize: Training Deep Neural Networks for Interference Management", IEEE Trans. Signal Process.
    66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412 (Sec. V-C, "maximum power
    allocation"), and the starting point of WMMSE (Fig. 2, step 1):

    .. math::

        p_k = P_k, \qquad k = 1, \dots, K

    Optimal when there is no interference (every term of problem (1) increases in its own ``p_k``);
    far from it in interference-limited networks. Deterministic, stateless, no arguments.

    Beamforming (an observation with a ``channel``): every transmitter spends its full budget ``P_t``,
    split equally over its links, along the matched-filter (MRT) directions, the same precoders as
    :class:`~solvers.equal_power.EqualPower`.

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``. Beamforming: ``channel (K, T, Nr, Nt, 2)``,
        ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)`` -> precoders ``(K, Nt, d, 2)``.
    """

    name = "max_power"
    problems = frozenset({"power", "beamforming"})

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if "channel" in obs:
            return equal_power_mrt(obs)
        return np.array(obs["pmax"], dtype=np.float64)
