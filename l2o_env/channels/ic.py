"""Gaussian interference channel of Sun et al. 2018, Sec. V-A.

H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training Deep Neural
Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412.

Every coefficient ``h_kj ~ CN(0, 1)`` independently, so ``gain = |h_kj|^2`` is Exp(1) with mean 1. No
geometry: density and movement do not apply; mobility only correlates the fading across slots.
The authors' code uses ``Pmax = 1`` and ``sigma^2 = 1`` (the paper sets neither).

Shapes: layout carries nothing; fading ``(B, K, K)`` complex128; gain ``(B, K, K)`` float64.
"""

from __future__ import annotations

import numpy as np

from l2o_env.channels.base import ChannelModel, Layout
from l2o_env.validation import MAX_COUNT, integer, real


class GaussianIC(ChannelModel):
    """K-link Gaussian IC (Sun et al. Sec. V-A).

    Args:
        num_links: K >= 1.
        carrier_frequency: Hz, only used by the env's Doppler (default 2.4 GHz).
    """

    has_geometry = False
    default_noise = 1.0
    default_pmax = 1.0

    def __init__(self, num_links: int = 10, carrier_frequency: float = 2.4e9):
        self.num_links = integer("GaussianIC", "num_links", num_links, maximum=MAX_COUNT)
        self.num_rx = self.num_links
        self.carrier_frequency = real("GaussianIC", "carrier_frequency", carrier_frequency, above=0.0)

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        return Layout()

    def large_scale(self, layout: Layout) -> np.ndarray:
        return np.ones((1, self.num_rx, self.num_links))

    def gain(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        return fading.real**2 + fading.imag**2

    def sample(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """``batch`` independent gain matrices ``(B, K, K)``: ``|CN(0, 1)|^2`` is Exp(1), drawn directly.

        Same distribution as ``gain(layout, sample_fading(rng, batch))`` with half the random numbers
        and no complex arithmetic (the env's independent-slot fast path).
        """
        return rng.standard_exponential((batch, self.num_rx, self.num_links))
