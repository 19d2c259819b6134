"""Powers drawn uniformly in [0, pmax] per link: the chance baseline."""

from __future__ import annotations

import numpy as np
import torch

from solvers.base import Solver
from solvers.wmmse_mimo_core import (beamforming_tensors, mimo_wmmse_prepare, num_streams, precoders_to_numpy,
                                     scale_to_budget)

__all__ = ["RandomPower"]


class RandomPower(Solver):
    r"""Random power: p_k ~ U[0, P_k] independently per link and sample (seeded chance-level baseline).

    The "random power allocation" heuristic of H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu,
    N. D. Sidiropoulos, "Learning to Optimize: Training Deep Neural Networks for Interference
    Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382,
    arXiv:1705.09412 (Sec. V-C, Fig. 7):

    .. math::

        p_k = U_k P_k, \qquad U_k \sim \mathcal U[0, 1] \ \text{i.i.d.}

    Args:
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same powers for the same
            sequence of calls. The stream continues across calls; :meth:`reset` does not rewind it (so
            episodes after a reset are not copies of each other).

    Beamforming (an observation with a ``channel``): random precoders at full budget, every entry of
    ``V_k`` drawn i.i.d. CN(0, 1) and each transmitter's links scaled by one common factor so that it spends
    exactly ``P_t`` (random directions and a random split).

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``. Beamforming: ``channel (K, T, Nr, Nt, 2)``,
        ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)`` -> precoders ``(K, Nt, d, 2)``.
    """

    name = "random_power"
    problems = frozenset({"power", "beamforming"})

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if "channel" in obs:
            return self._precoders(obs)
        pmax = obs["pmax"]
        return self.rng.random(pmax.shape) * pmax

    def _precoders(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = beamforming_tensors(obs)
        ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
        bsz, k, _, _, nt = ch.channel.shape
        draw = self.rng.standard_normal((bsz, k, nt, num_streams(obs), 2)) / np.sqrt(2.0)
        v = torch.view_as_complex(torch.as_tensor(draw))
        return precoders_to_numpy(scale_to_budget(v, ch.serves, ch.tx_of_link, t["pmax"], "common"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed!r})"
