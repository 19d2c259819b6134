"""Regularised zero forcing: the pseudo-inverse regularised by the noise-to-power ratio."""

from __future__ import annotations

import numpy as np
import torch

from l2o_env.validation import choice
from solvers.base import Solver
from solvers.wmmse_mimo_core import (beamforming_tensors, mimo_wmmse_prepare, num_streams, precoders_to_numpy,
                                     scale_to_budget, stream_directions)
from solvers.zf import SCOPES

__all__ = ["RZF"]


class RZF(Solver):
    r"""Regularised zero forcing: the channel inverse regularised by the noise over the power per user.

    The regularised channel inversion of C. B. Peel, B. M. Hochwald, A. L. Swindlehurst, "A
    vector-perturbation technique for near-capacity multiantenna multiuser communication - part I: channel
    inversion and regularization", IEEE Trans. Commun. 53(1):195-202, 2005, doi:10.1109/TCOMM.2004.840638,
    with its regulariser ``K sigma^2 / P`` (the noise over the power per user; the transmit Wiener filter's
    ``tr(R_n) / P``), per transmitter ``t`` and its protected receivers ``j`` (its own links for
    ``scope="cell"``, every link for ``"network"``):

    .. math::

        \bar V_k = \Big(\sum_{j} H_{j,t}^H H_{j,t} + \lambda_t I\Big)^{-1} H_{k,t}^H Q_k, \qquad
        \lambda_t = \frac{\sum_j \sigma_j^2}{P_t}, \qquad t = t(k)

        V_k = \sqrt{P_t / n_t} \; \bar V_k / \|\bar V_k\|_F

    (``Q_k`` as in :class:`~solvers.mrt.MRT`; the budget split equally over the ``n_t`` links). It tends to
    zero forcing at high SNR and to MRT at low SNR, and exists for any number of antennas.

    Args:
        scope: ``"cell"`` (default) or ``"network"``, as for :class:`~solvers.zf.ZF`: whose receivers enter
            the regularised inverse (with ``"network"``, the leakage to every receiver of the network).

    Shapes:
        ``act``: ``channel (K, T, Nr, Nt, 2)``, ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)``
        -> precoders ``(K, Nt, d, 2)`` (real, imaginary); ``act_batch``: the same with a leading ``B``.
    """

    name = "rzf"
    problems = frozenset({"beamforming"})

    def __init__(self, scope: str = "cell"):
        self.scope = choice(type(self).__name__, "scope", scope, SCOPES)

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = beamforming_tensors(obs)
        ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
        bsz, k, _, nr, nt = ch.channel.shape
        # which receivers j enter transmitter t's inverse: (B, T, K)
        heard = torch.ones_like(ch.serves) if self.scope == "network" else ch.serves
        gram = ch.channel.mH @ ch.channel  # (B, K, T, Nt, Nt): H_{j,t}^H H_{j,t}
        gram = torch.einsum("btj,bjtmn->btmn", heard.to(gram.dtype), gram)
        tiny = torch.finfo(t["pmax"].dtype).tiny
        pmax = t["pmax"]
        noise_sum = (heard @ t["noise"].unsqueeze(-1)).squeeze(-1)
        lam = torch.where(pmax > 0, noise_sum / pmax.clamp_min(tiny), torch.ones_like(pmax))  # (B, T)
        # a regulariser below the rounding of a rank-deficient Gram matrix (fewer receivers than antennas at a
        # high SNR, e.g. a channel of 1e8 over a unit noise) leaves the matrix singular in floating point: it
        # is raised to 8 Nt eps tr(Gram), which a realistic SNR never reaches (the direction is then the
        # zero-forcing limit, which the regularised inverse tends to)
        trace = torch.diagonal(gram, dim1=-2, dim2=-1).real.sum(-1)
        lam = torch.maximum(lam, (8.0 * nt * torch.finfo(lam.dtype).eps) * trace)
        eye = torch.eye(nt, dtype=gram.dtype)
        b_idx = torch.arange(bsz)[:, None]
        regularised = (gram + lam[..., None, None] * eye)[b_idx, ch.tx_of_link]  # (B, K, Nt, Nt)
        directions = torch.linalg.solve(regularised, stream_directions(ch.direct_h, num_streams(obs)))
        return precoders_to_numpy(scale_to_budget(directions, ch.serves, ch.tx_of_link, pmax, "equal"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self.scope!r})"
