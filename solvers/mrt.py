"""Maximum ratio transmission (the matched filter): the interference-blind beamforming baseline."""

from __future__ import annotations

import numpy as np

from solvers.base import Solver
from solvers.wmmse_mimo_core import (beamforming_tensors, matched_filter, mimo_wmmse_prepare, num_streams,
                                     precoders_to_numpy)

__all__ = ["MRT"]


class MRT(Solver):
    r"""MRT: the matched filter ``V_k = a_t H_{k,t(k)}^H``, one scale per transmitter meeting its budget.

    Maximum ratio transmission (T. K. Y. Lo, "Maximum ratio transmission", IEEE Trans. Commun.
    47(10):1458-1461, 1999), in the matched-filter form that starts WMMSE in L. Pellaco, M. Bengtsson,
    J. Jaldén, "Deep unfolding of the weighted MMSE beamforming algorithm", arXiv:2006.08448, 2020
    (Sec. V, ``V = a H``):

    .. math::

        V_k = a_{t(k)} H_{k,t(k)}^H Q_k, \qquad
        a_t = \sqrt{P_t \big/ \textstyle\sum_{k: t(k) = t} \|H_{k,t}^H Q_k\|_F^2}

    so each transmitter spends ``P_t`` and its links share it in proportion to their channel gains
    ``||H_{k,t(k)}||_F^2``. ``Q_k = I`` when ``d = Nr`` (the matched filter itself); for fewer streams the ``d``
    dominant left singular vectors of ``H_{k,t(k)}``. Optimal for a single link (``log2(1 + P ||h||^2 /
    sigma^2)`` on a MISO channel); blind to the interference it causes. :class:`~solvers.equal_power.EqualPower`
    uses the same directions with an equal split. Deterministic, stateless, no arguments.

    Shapes:
        ``act``: ``channel (K, T, Nr, Nt, 2)``, ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)``
        -> precoders ``(K, Nt, d, 2)`` (real, imaginary); ``act_batch``: the same with a leading ``B``.
    """

    name = "mrt"
    problems = frozenset({"beamforming"})

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = beamforming_tensors(obs)
        ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
        return precoders_to_numpy(matched_filter(ch, t["pmax"], num_streams(obs)))
