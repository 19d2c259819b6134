"""WMMSE stopped after a fixed number of iterations: the truncated baseline of UWMMSE and deep unfolding."""

from __future__ import annotations

from typing import Any

import torch

from l2o_env.validation import integer
from solvers.wmmse import WMMSE

__all__ = ["TruncatedWMMSE"]


class TruncatedWMMSE(WMMSE):
    r"""Truncated WMMSE (Chowdhury et al. 2021, Sec. IV-A): exactly L WMMSE iterations (default 4), no stopping test.

    The baseline that unfolded networks are compared with at equal depth: A. Chowdhury, G. Verma,
    C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using Graph Neural Networks for Efficient Power
    Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017, 2021, doi:10.1109/TWC.2021.3071480,
    arXiv:2009.10812 (Sec. IV-A, item 2 and Table I, "Tr-WMMSE" with 4 iterations, the depth of UWMMSE).
    L. Pellaco, M. Bengtsson, J. Jaldén, "Deep unfolding of the weighted MMSE beamforming algorithm",
    arXiv:2006.08448, 2020, use the same comparison for beamforming. Each iteration is eqs. (6)-(8) of
    Chowdhury et al. 2021 with ``a = 1, b = 0``, i.e. Fig. 2 steps 7-9 of H. Sun et al., "Learning to
    Optimize: Training Deep Neural Networks for Interference Management", IEEE Trans. Signal Process.
    66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412:

    .. math::

        u_i = \frac{\sqrt{g_{ii}} v_i}{\sigma_i^2 + \sum_j g_{ij} v_j^2}                      \qquad (6)

        w_i = \frac{1}{1 - u_i \sqrt{g_{ii}} v_i}                                           \qquad (7)

        v_i = \Big[\frac{\alpha_i w_i u_i \sqrt{g_{ii}}}{\sum_j \alpha_j w_j u_j^2 g_{ji}}\Big]_0^{\sqrt{P_i}}  \qquad (8)

    from full power ``v^0 = \sqrt{P}``, with no convergence test (``tol = 0``), so every sample runs
    exactly ``iterations`` steps. Same code as :class:`~solvers.wmmse.WMMSE` (``solvers.wmmse_core``).
    On a beamforming observation (a ``channel``): ``iterations`` iterations of the MIMO WMMSE of Shi et al.
    2011, Algorithm 1 (``solvers.wmmse_mimo_core``), from the matched filter at full power, the baseline of
    Pellaco et al. 2020 at equal depth.

    Args:
        iterations: number of WMMSE iterations ``L`` (default 4), >= 1.
        init, warm_floor, device, dtype: as for :class:`~solvers.wmmse.WMMSE`.

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts);
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``. Beamforming: ``channel (K, T, Nr, Nt, 2)``,
        ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)`` -> precoders ``(K, Nt, d, 2)``.
    """

    name = "truncated_wmmse"

    def __init__(self, iterations: int = 4, init: str = "full", warm_floor: float = 0.3,
                 device: Any = "cpu", dtype: Any = torch.float64):
        iterations = integer(type(self).__name__, "iterations", iterations)
        super().__init__(max_iter=iterations, tol=0.0, init=init, warm_floor=warm_floor, device=device, dtype=dtype)
        self.iterations = iterations

    def __repr__(self) -> str:
        return f"{type(self).__name__}(iterations={self.iterations}, init={self.init!r}, device={str(self.device)!r})"
