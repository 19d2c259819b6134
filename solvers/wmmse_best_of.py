"""WMMSE from several starting points, best per sample: the stronger reference for "% of WMMSE" tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from l2o_env.rates import weighted_sum_rate_torch
from l2o_env.validation import integer, real
from solvers.base import Solver
from solvers.wmmse import out_of_range, resolve_device, resolve_dtype
from solvers.wmmse_core import wmmse_run

__all__ = ["WMMSEBestOf"]

# Cap on gain entries of one (R + 1) x chunk batch (float64: 8 bytes each, 256 MB), so that 10,000
# samples x 11 starts x K = 30 does not allocate ~1 GB at once; wmmse_run then works in cache-sized blocks.
_MAX_ENTRIES = 1 << 25


class WMMSEBestOf(Solver):
    r"""Best-of WMMSE: full power plus R random starts, best per sample (Shen et al. 2021, "WMMSE 100 times").

    WMMSE converges to a stationary point of the weighted sum rate, which depends on where it starts.
    Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource
    Management: Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115,
    2021, doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632 (Sec. V-A, benchmark "WMMSE 100 times") run
    WMMSE from many random starts and keep the best as an upper reference. Here every sample runs the
    WMMSE of H. Sun et al., "Learning to Optimize: Training Deep Neural Networks for Interference
    Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382,
    arXiv:1705.09412 (Fig. 2, :func:`solvers.wmmse_core.wmmse_run`) from ``R + 1`` starts, all
    ``B (R + 1)`` runs in one batch:

    .. math::

        v^{0,(0)} = \sqrt{P}, \qquad v^{0,(r)}_k = \sqrt{U^{(r)}_k P_k},\ U^{(r)}_k \sim \mathcal U[0, 1],
        \quad r = 1..R

        p^\star = \arg\max_{r = 0..R} \sum_k \alpha_k \log_2\big(1 + \mathrm{SINR}_k(p^{(r)})\big)     \qquad (1)

    where ``p^{(r)}`` is WMMSE's output from start ``r`` and (1) is problem (1) of Sun et al. 2018. The full-power
    start is always one of them, so the result is never below :class:`~solvers.wmmse.WMMSE` with the
    same ``max_iter``/``tol`` (ties go to the full-power start).

    Args:
        restarts: number ``R`` of random starts besides full power (default 10), >= 0.
        seed: seed of the random starts (``numpy.random.default_rng(seed)``, drawn on the CPU, so
            results do not depend on the device). The stream continues across calls; :meth:`reset`
            does not rewind it.
        max_iter, tol, device, dtype: as for :class:`~solvers.wmmse.WMMSE` (defaults 100, 1e-3, "cpu",
            float64).

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``.
    """

    name = "wmmse_best_of"
    problems = frozenset({"power"})

    def __init__(self, restarts: int = 10, seed: int | None = None, max_iter: int = 100, tol: float = 1e-3,
                 device: Any = "cpu", dtype: Any = torch.float64):
        who = type(self).__name__
        self.restarts = integer(who, "restarts", restarts, minimum=0)
        self.max_iter = integer(who, "max_iter", max_iter)
        self.tol = real(who, "tol (bit/s/Hz)", tol, at_least=0.0)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.device = resolve_device(device, who)
        self.dtype = resolve_dtype(dtype, who)
        self.last_best_start: np.ndarray | None = None

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        bsz, k = obs["pmax"].shape
        starts = self.restarts + 1
        chunk = max(1, _MAX_ENTRIES // (starts * k * k))
        # starts as fractions of pmax, drawn for the whole batch at once so that chunking changes nothing
        frac = np.ones((starts, bsz, k))
        frac[1:] = self.rng.random((starts - 1, bsz, k))
        power = np.empty((bsz, k))
        best = np.empty(bsz, dtype=np.int64)
        for lo in range(0, bsz, chunk):
            hi = min(bsz, lo + chunk)
            power[lo:hi], best[lo:hi] = self._solve_chunk(
                {key: obs[key][lo:hi] for key in ("gain", "noise", "pmax", "weight")}, frac[:, lo:hi])
        if not np.isfinite(power).all():
            raise out_of_range(type(self).__name__, self.dtype, obs, torch.as_tensor(power))
        self.last_best_start = best
        return power

    def _solve_chunk(self, obs: dict[str, np.ndarray], frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, bsz, k = frac.shape
        # start-major layout: row r * bsz + b is sample b from start r
        t = {key: torch.as_tensor(np.ascontiguousarray(obs[key]), dtype=self.dtype, device=self.device)
             for key in ("gain", "noise", "pmax", "weight")}
        rep = {key: val.repeat((starts,) + (1,) * (val.ndim - 1)) for key, val in t.items()}
        v0 = (torch.as_tensor(frac.reshape(starts * bsz, k), dtype=self.dtype, device=self.device) * rep["pmax"]).sqrt()
        power, _ = wmmse_run(rep["gain"], rep["noise"], rep["pmax"], rep["weight"], v0,
                             max_iter=self.max_iter, tol=self.tol)
        wsr = weighted_sum_rate_torch(rep["gain"], power, rep["noise"], rep["weight"]).reshape(starts, bsz)
        best = torch.argmax(wsr, dim=0)  # first maximum: the full-power start wins ties
        chosen = power.reshape(starts, bsz, k)[best, torch.arange(bsz, device=power.device)]
        return chosen.cpu().numpy().astype(np.float64, copy=False), best.cpu().numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(restarts={self.restarts}, seed={self.seed!r}, max_iter={self.max_iter}, tol={self.tol})"
