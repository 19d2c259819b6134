"""Zero forcing / block diagonalisation: precoders that null the interference at the other receivers."""

from __future__ import annotations

import numpy as np
import torch

from l2o_env.validation import choice
from solvers.base import Solver
from solvers.wmmse_mimo_core import (beamforming_tensors, mimo_wmmse_prepare, num_streams, precoders_to_numpy,
                                     scale_to_budget)

__all__ = ["ZF", "SCOPES", "interfered_receivers"]

#: whose receivers a transmitter protects: every other link's ("network", coordinated) or only its own
#: other links' ("cell", each transmitter on its own)
SCOPES = ("cell", "network")


def interfered_receivers(tx_of_link: torch.Tensor, scope: str) -> torch.Tensor:
    """``(B, K, K)`` bool: ``[b, k, j]`` when link ``k``'s precoder must spare the receiver of link ``j != k``."""
    k = tx_of_link.shape[-1]
    others = ~torch.eye(k, dtype=torch.bool, device=tx_of_link.device)
    if scope == "network":
        return others.expand(tx_of_link.shape[0], k, k)
    return others & (tx_of_link[:, :, None] == tx_of_link[:, None, :])


class ZF(Solver):
    r"""Zero forcing (block diagonalisation with multi-antenna receivers): no interference at the protected receivers.

    Block diagonalisation (Q. H. Spencer, A. L. Swindlehurst, M. Haardt, "Zero-forcing methods for downlink
    spatial multiplexing in multiuser MIMO channels", IEEE Trans. Signal Process. 52(2):461-471, 2004,
    doi:10.1109/TSP.2003.821107); with single-antenna receivers it is classical zero forcing, the
    normalised columns of the pseudo-inverse ``H^H (H H^H)^{-1}``. The precoder of link ``k`` lies in the null
    space of the stacked channels ``\tilde H_k`` from its transmitter to the protected receivers, along the
    ``d`` dominant right singular vectors of the projected direct channel:

    .. math::

        \Pi_k = I - \tilde H_k^+ \tilde H_k, \qquad
        V_k = \sqrt{P_{t(k)} / n_{t(k)}} \; \frac{\Pi_k \bar V_k}{\|\Pi_k \bar V_k\|_F}, \qquad
        \bar V_k = \text{the } d \text{ dominant right singular vectors of } H_{k,t(k)} \Pi_k

    so ``H_{j,t(k)} V_k = 0`` for every protected receiver ``j`` and each transmitter splits its budget
    equally over its ``n_t`` links (and a link's power equally over its streams).

    The streams must fit the antennas: with ``m`` protected receivers per link (``K - 1`` for
    ``scope="network"``, the transmitter's other links for ``"cell"``), ``d <= Nr`` and
    ``m Nr + d <= Nt``; otherwise a ``ValueError`` names the dimensions (use ``rzf``, which always exists).

    Args:
        scope: ``"cell"`` (default): each transmitter nulls its own other links' receivers only (per-cell
            zero forcing; interference between transmitters remains); ``"network"``: every other link's
            receiver (coordinated zero forcing over the whole network).

    Shapes:
        ``act``: ``channel (K, T, Nr, Nt, 2)``, ``tx_of_link``/``noise``/``weight`` ``(K,)``, ``pmax (T,)``
        -> precoders ``(K, Nt, d, 2)`` (real, imaginary); ``act_batch``: the same with a leading ``B``.
    """

    name = "zf"
    problems = frozenset({"beamforming"})

    def __init__(self, scope: str = "cell"):
        self.scope = choice(type(self).__name__, "scope", scope, SCOPES)

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = beamforming_tensors(obs)
        d = num_streams(obs)
        ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
        bsz, k, _, nr, nt = ch.channel.shape
        protect = interfered_receivers(ch.tx_of_link, self.scope)  # (B, K, K)
        m = int(protect.sum(-1).max()) if k > 1 else 0
        if d > nr or m * nr + d > nt:
            raise ValueError(
                f"{type(self).__name__}: zero forcing needs d <= Nr and m*Nr + d <= Nt, got d={d} streams per link, "
                f"Nr={nr} receive and Nt={nt} transmit antennas, m={m} protected receivers per link "
                f"(K={k} links, scope={self.scope!r}); use fewer links or streams, more transmit antennas, "
                f"scope='cell', or 'rzf'")
        # stacked channels H_{j,t(k)} from link k's transmitter to the protected receivers j (others zero)
        stacked = ch.cross.view(bsz, k, k, nr, nt) * protect[..., None, None].to(ch.cross.real.dtype)
        stacked = stacked.reshape(bsz, k, k * nr, nt)
        eye = torch.eye(nt, dtype=stacked.dtype)
        if m > 0:
            _, s, vh = torch.linalg.svd(stacked, full_matrices=False)  # (B, K, r), (B, K, r, Nt)
            tol = s[..., :1] * (max(k * nr, nt) * torch.finfo(s.dtype).eps)
            rows = vh * (s > tol).unsqueeze(-1).to(vh.dtype)
            projector = eye - rows.mH @ rows  # onto the null space of the protected channels
        else:
            projector = eye.expand(bsz, k, nt, nt)
        _, _, vh_eff = torch.linalg.svd(ch.direct_h.mH @ projector, full_matrices=True)  # H_kk Pi_k
        directions = projector @ vh_eff[..., :d, :].mH  # (B, K, Nt, d), in the null space
        return precoders_to_numpy(scale_to_budget(directions, ch.serves, ch.tx_of_link, t["pmax"], "equal"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self.scope!r})"
