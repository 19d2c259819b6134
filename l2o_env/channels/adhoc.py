"""Ad hoc network of the UWMMSE paper (Chowdhury et al. 2021), Sec. IV.

A. Chowdhury, G. Verma, C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using Graph Neural Networks for
Efficient Power Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017, 2021,
doi:10.1109/TWC.2021.3071480, arXiv:2009.10812.

``M = num_links`` transmitter-receiver pairs (Sec. IV, first paragraphs): transmitter ``i`` uniform in
``[-M, M]^2`` (metres; the paper gives no unit), its receiver uniform in ``t_i +- M/4`` per axis. The
amplitude is path gain times fading, ``H_ij = ||t_j - r_i||^{-2.2} H^F_ij`` with ``H^F ~ Rayleigh(1)``,
so with our convention (row = receiver ``i``, column = transmitter ``j``) the power gain is

.. math::

    g_{ij} = 2\\, d_{ij}^{-4.4} |f_{ij}|^2, \\qquad f_{ij} \\sim CN(0, 1),

the factor 2 being ``E|H^F|^2`` of a Rayleigh(scale 1) amplitude, folded into :meth:`AdHoc.large_scale`
so that the fading stays CN(0, 1). No shadowing. ``Pmax = 1``; noise ``sigma^2 = noise_std^2``, with the
paper's low-noise regime ``sigma = 2.6e-5`` by default (``noise_std=1`` gives the high-noise regime).

Density (Sec. IV-E): the paper's density factor ``d_paper`` moves transmitter ``i`` to ``t_i / d_paper``
and redraws each receiver within ``+- M/4`` of it (pair offsets NOT scaled). Our ``density`` is an AREA
density factor, so ``density = d_paper^2``: transmitters are drawn in ``[-M, M]^2 / sqrt(density)``,
the receiver offsets stay ``U[-M/4, M/4]^2``.

Distances are clipped below at :attr:`AdHoc.MIN_DISTANCE` = 1 cm (``d^-4.4`` diverges at 0). A receiver
is uniform in an ``M/2 x M/2`` square around its transmitter, so ``P(d < 1 cm) = pi 1e-4 / (M/2)^2``,
3e-6 per link for M = 20; a clipped link loses on average ``4.4 E[log2(0.01/d) | d < 0.01] = 3.2``
bit/s/Hz of SNR-limited rate, so the mean sum rate moves by ~2e-4 bit/s/Hz, far below its Monte-Carlo
error (measured: 4000 drops of 20 links give the same mean WMMSE sum rate, 77.28, with clips at 1 cm
and at 1 um).

Mobility (:meth:`AdHoc.move`): every pair moves rigidly (transmitter and receiver get the same
displacement along the pair's heading), so pair distances stay as drawn. The TRANSMITTER reflects at
the boundary of its square ``[-M, M]^2 / sqrt(density)`` (position reflected, heading component
flipped); the receiver follows at its fixed offset, so receivers may sit up to ``M/4`` per axis outside
the square, exactly as in a fresh drop. Path loss follows the positions.

Shapes: layout ``tx_pos``/``rx_pos`` ``(B, K, 2)``, ``heading (B, K)``, ``shadowing None``; fading
``(B, K, K)`` complex128; ``large_scale``/``gain`` ``(B, K, K)`` float64.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l2o_env.channels.base import (
    ChannelModel,
    Layout,
    heading_vector,
    pairwise_sq_distance,
    reflect_in_box,
)
from l2o_env.validation import MAX_COUNT, integer, real

__all__ = ["AdHoc"]


class AdHoc(ChannelModel):
    """Random geometric ad hoc network with Rayleigh fading (Chowdhury et al. 2021, Sec. IV), batched.

    Args:
        num_links: M = K >= 1 pairs; also the half side of the transmitter square in metres.
        density: area density factor > 0 (``= d_paper^2`` of Sec. IV-E); transmitter coordinates are
            divided by ``sqrt(density)``, receiver offsets are not.
        noise_std: noise standard deviation sigma > 0; the noise power is ``sigma^2`` (W).
            Paper: 2.6e-5 (low-noise regime, default) or 1 (high-noise regime).
        carrier_frequency: Hz, used only by the env's Doppler (default 2.4 GHz).

    Example:
        >>> import numpy as np
        >>> model = AdHoc(num_links=20)
        >>> round(model.default_noise, 14)  # sigma^2 = (2.6e-5)^2 W
        6.76e-10
        >>> model.sample(np.random.default_rng(0), 3).shape
        (3, 20, 20)
    """

    has_geometry = True
    default_pmax = 1.0
    #: metres; distances below are clipped
    MIN_DISTANCE = 0.01
    #: amplitude path-loss exponent 2.2 of Sec. IV, i.e. power exponent 4.4
    PATHLOSS_EXP = 4.4
    #: E|Rayleigh(1)|^2, folded into the large scale
    FADING_POWER = 2.0

    def __init__(
        self,
        num_links: int = 20,
        density: float = 1.0,
        noise_std: float = 2.6e-5,
        carrier_frequency: float = 2.4e9,
    ):
        owner = "AdHoc"
        self.num_links = integer(owner, "num_links", num_links, maximum=MAX_COUNT)
        self.num_rx = self.num_links
        self.density = real(owner, "density", density, above=0.0)
        self.noise_std = real(owner, "noise_std", noise_std, above=0.0)
        self.carrier_frequency = real(owner, "carrier_frequency", carrier_frequency, above=0.0)
        self.default_noise = self.noise_std**2
        #: transmitters live in [-half_side, half_side]^2 metres
        self.half_side = self.num_links / np.sqrt(self.density)
        #: receiver offset bound per axis, metres (not density-scaled)
        self.rx_spread = self.num_links / 4.0

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """``batch`` drops: transmitters uniform in the square, receivers uniform around them."""
        batch = integer("AdHoc.sample_layout", "batch", batch)
        shape = (batch, self.num_links, 2)
        tx = rng.uniform(-1.0, 1.0, shape) * self.half_side
        rx = tx + rng.uniform(-1.0, 1.0, shape) * self.rx_spread
        heading = rng.random((batch, self.num_links)) * 2.0 * np.pi
        return Layout(tx_pos=tx, rx_pos=rx, heading=heading)

    def large_scale(self, layout: Layout) -> np.ndarray:
        """``2 d_ij^-4.4`` for receiver ``i`` and transmitter ``j``, ``(B, K, K)``."""
        d2 = pairwise_sq_distance(layout.rx_pos, layout.tx_pos, self.MIN_DISTANCE)
        return self.FADING_POWER * d2 ** (-0.5 * self.PATHLOSS_EXP)

    def move(self, layout: Layout, rng: np.random.Generator, distance) -> Layout:
        """Each pair moves rigidly ``distance`` metres (scalar or ``(B, K)``) along its heading; the
        transmitter reflects at the square's boundary and the receiver keeps its offset.

        Returns a new :class:`Layout` (new position and heading arrays); the input is never written, and
        its shadowing and ``extra`` arrays are shared with the result.
        """
        dist = np.broadcast_to(np.asarray(distance, dtype=np.float64), layout.heading.shape)
        if not np.all(np.isfinite(dist)) or np.any(dist < 0):
            raise ValueError(f"AdHoc.move: distance must be finite and >= 0 metres, got {distance!r}")
        u = heading_vector(layout.heading)
        tx, u = reflect_in_box(layout.tx_pos + dist[..., None] * u, u, -self.half_side, self.half_side)
        return replace(
            layout,
            tx_pos=tx,
            rx_pos=tx + (layout.rx_pos - layout.tx_pos),
            heading=np.arctan2(u[..., 1], u[..., 0]),
            extra=dict(layout.extra),
        )
