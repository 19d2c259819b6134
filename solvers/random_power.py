"""Powers drawn uniformly in [0, pmax] per link: the chance baseline."""

from __future__ import annotations

import numpy as np

from solvers.base import Solver

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

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``.
    """

    name = "random_power"
    problems = frozenset({"power"})

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pmax = obs["pmax"]
        return self.rng.random(pmax.shape) * pmax

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed!r})"
