"""Greedy on/off power control by direct gain: strongest links first, kept on only if they help."""

from __future__ import annotations

import numpy as np

from l2o_env.rates import weighted_sum_rate
from solvers.base import Solver

__all__ = ["StrongestLinks"]


class StrongestLinks(Solver):
    r"""Strongest links (greedy on/off): switch links on at full power, strongest direct gain first, while the WSR grows.

    A binary-power heuristic in the spirit of the "Strongest" benchmark of Y. Shen, Y. Shi, J. Zhang,
    K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource Management: Architecture Design and
    Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115, 2021, doi:10.1109/JSAC.2020.3036965,
    arXiv:2007.07632 (Sec. V-A), which puts a fixed proportion of the links with the largest ``|h_kk|``
    at ``P_max`` and the rest at 0. Instead of a fixed proportion, the number of active links is chosen
    greedily on the weighted sum rate (problem (1) of H. Sun et al., "Learning to Optimize: Training Deep
    Neural Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
    doi:10.1109/TSP.2018.2866382, arXiv:1705.09412). With links sorted by direct gain,
    ``g_{\pi(1) \pi(1)} \ge g_{\pi(2) \pi(2)} \ge \dots`` (ties: lower index first), start from
    ``p = 0`` and for ``n = 1..K``:

    .. math::

        p' = p + P_{\pi(n)} e_{\pi(n)}, \qquad
        p \leftarrow p' \ \text{if} \ \sum_k \alpha_k \log_2\big(1 + \mathrm{SINR}_k(p')\big)
        > \sum_k \alpha_k \log_2\big(1 + \mathrm{SINR}_k(p)\big)

    Every link is tried once, in order (a link skipped early is not retried). ``K`` steps, each
    vectorised over the batch; powers are 0 or ``P_k``. Deterministic, stateless, no arguments.

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``.
    """

    name = "strongest_links"
    problems = frozenset({"power"})

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        gain, noise, pmax, weight = obs["gain"], obs["noise"], obs["pmax"], obs["weight"]
        bsz, k = pmax.shape
        direct = np.diagonal(gain, axis1=-2, axis2=-1)
        order = np.argsort(-direct, axis=-1, kind="stable")
        power = np.zeros((bsz, k))
        best = np.zeros(bsz)  # WSR of p = 0
        rows = np.arange(bsz)
        for n in range(k):
            link = order[:, n]
            trial = power.copy()
            trial[rows, link] = pmax[rows, link]
            wsr = weighted_sum_rate(gain, trial, noise, weight)
            better = wsr > best
            power[better] = trial[better]
            best = np.where(better, wsr, best)
        return power
