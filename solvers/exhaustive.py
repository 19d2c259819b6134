"""Grid search over all power vectors (K <= 4) plus local refinement: the optimum to compare against."""

from __future__ import annotations

import numpy as np

from l2o_env.rates import weighted_sum_rate
from l2o_env.validation import integer
from solvers.base import Solver

__all__ = ["Exhaustive", "MAX_LINKS"]

MAX_LINKS = 4  # grid^K candidates per sample: 41^4 = 2.8 M; 41^5 would be 116 M
# Entries of the (samples, candidates, K, K) array the rate formula builds per chunk (8 bytes each)
_CHUNK_ENTRIES = 1 << 22


class Exhaustive(Solver):
    r"""Exhaustive search (K <= 4): best point of a fine power grid, refined locally; the reference optimum.

    Problem (1) of H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize:
    Training Deep Neural Networks for Interference Management", IEEE Trans. Signal Process.
    66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412 (Sec. II-A),

    .. math::

        \max_{0 \le p_k \le P_k} \sum_k \alpha_k \log_2\Big(1 + \frac{g_{kk} p_k}
        {\sigma_k^2 + \sum_{j \ne k} g_{kj} p_j}\Big)                                         \qquad (1)

    is NP-hard in general (Sun et al. 2018, Sec. II-A, their ref. [28]) but small ``K`` can be searched. Stage 1
    evaluates (1) at every point of the grid ``p_k \in \{0, P_k/(n-1), ..., P_k\}`` (``n = grid``
    points per link, ``n^K`` candidates, both ends included, so every on/off allocation is among them)
    and keeps the best. Stage 2 (``refine`` rounds) searches a ``5^K`` local grid
    ``p^\star + P \odot \delta``, ``\delta_k \in \{-h, -h/2, 0, h/2, h\}`` (clipped to ``[0, P_k]``),
    starting at ``h = 1/(n-1)`` and halving ``h`` each round, keeping the best point. After both stages
    the resolution is ``P_k / ((n - 1) 2^{refine})``. The result is the global optimum up to that
    resolution unless the optimum lies in a basin narrower than the coarse grid spacing.

    Cost per sample: ``n^K + refine 5^K`` evaluations of (1) (41^4 = 2.8 M for K = 4, 69 k for K = 3),
    batched over samples and candidates in memory-bounded chunks (timings: benchmarks/RESULTS.md).

    Args:
        grid: points per link of the coarse grid, >= 2 (default 41: steps of 2.5 % of ``P_k``).
        refine: rounds of local refinement, >= 0 (default 10).

    Raises:
        ValueError: at ``act``/``act_batch`` when ``K > 4``.

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``.
    """

    name = "exhaustive"
    problems = frozenset({"power"})

    def __init__(self, grid: int = 41, refine: int = 10):
        who = type(self).__name__
        self.grid = integer(who, "grid", grid, minimum=2)
        self.refine = integer(who, "refine", refine, minimum=0)

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        bsz, k = obs["pmax"].shape
        if k > MAX_LINKS:
            raise ValueError(f"Exhaustive: K = {k} links is too many for a grid search ({self.grid}^{k} points per "
                             f"sample); K <= {MAX_LINKS} is allowed. Use 'wmmse_best_of' as the reference for larger K.")
        levels = np.linspace(0.0, 1.0, self.grid)
        n_cand = self.grid**k
        per_chunk = max(1, _CHUNK_ENTRIES // max(1, k * k))
        frac = np.zeros((bsz, k))
        best = np.full(bsz, -np.inf)
        radix = self.grid ** np.arange(k)
        s_chunk = max(1, min(bsz, per_chunk // min(n_cand, per_chunk)))
        c_chunk = max(1, per_chunk // s_chunk)
        for s0 in range(0, bsz, s_chunk):
            rows = slice(s0, min(bsz, s0 + s_chunk))
            for c0 in range(0, n_cand, c_chunk):
                idx = np.arange(c0, min(n_cand, c0 + c_chunk))
                cand = levels[(idx[:, None] // radix) % self.grid]  # (C, K) fractions of pmax
                self._keep_best(obs, rows, np.broadcast_to(cand, (rows.stop - rows.start, *cand.shape)), frac, best)
        step = 1.0 / (self.grid - 1)
        offsets = np.stack(np.meshgrid(*([np.array([-1.0, -0.5, 0.0, 0.5, 1.0])] * k), indexing="ij"), -1)
        offsets = offsets.reshape(-1, k)
        s_local = max(1, per_chunk // len(offsets))
        for r in range(self.refine):
            h = step / 2**r
            for s0 in range(0, bsz, s_local):
                rows = slice(s0, min(bsz, s0 + s_local))
                cand = np.clip(frac[rows, None, :] + h * offsets, 0.0, 1.0)
                self._keep_best(obs, rows, cand, frac, best)
        return frac * obs["pmax"]

    @staticmethod
    def _keep_best(obs, rows: slice, cand: np.ndarray, frac: np.ndarray, best: np.ndarray) -> None:
        """Evaluate candidate fractions ``cand (b, C, K)`` for samples ``rows``; update ``frac``/``best`` in place."""
        pmax = obs["pmax"][rows]
        wsr = weighted_sum_rate(obs["gain"][rows, None], cand * pmax[:, None, :], obs["noise"][rows, None],
                                obs["weight"][rows, None])
        arg = np.argmax(wsr, axis=1)
        top = wsr[np.arange(len(arg)), arg]
        better = top > best[rows]
        sub_frac, sub_best = frac[rows], best[rows]  # views (basic slicing)
        sub_frac[better] = cand[better, arg[better]]
        sub_best[better] = top[better]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(grid={self.grid}, refine={self.refine})"
