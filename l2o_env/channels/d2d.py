"""Device-to-device network of the WCGCN paper (Shen et al. 2021), Sec. V-B.

Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource Management:
Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115, 2021,
doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632.

The paper only says "the channel model from [19]", i.e. W. Cui, K. Shen, W. Yu, "Spatial Deep Learning
for Wireless Scheduling", IEEE J. Sel. Areas Commun. 37(6):1248-1261, 2019, doi:10.1109/JSAC.2019.2904352,
arXiv:1808.01486: ITU-R P.1411 short-range outdoor path loss at 2.4 GHz, 5 MHz bandwidth, antenna height
1.5 m, 2.5 dB antenna gain, 40 dBm maximum power, noise -169 dBm/Hz, 8 dB shadowing, Rayleigh fading;
K = 50 pairs in a 1000 m x 1000 m square, pair distances U[d_min, d_max]. We realise it as the authors'
code does (https://github.com/yshenaw/GNN-Resource-Management, ``D2D/Weighted Power Control``):

- path loss, ITU-R P.1411 line-of-sight median with breakpoint ``R_bp = 4 h1 h2 / lambda`` (72.05 m)
  and ``L_bp = |20 log10(lambda^2 / (8 pi h1 h2))|`` (71.18 dB), ``lambda = c / f``:

  .. math::

      PL(d) = L_{bp} + 6 + \\begin{cases} 20 \\log_{10}(d / R_{bp}) & d \\le R_{bp} \\\\
                                           40 \\log_{10}(d / R_{bp}) & d > R_{bp} \\end{cases}
      \\quad \\text{dB};

- the antenna gain (2.5 dB) is added to the DIRECT links only (as the code does);
- shadowing ``10^(N(0, 8^2)/10)`` and fading ``|CN(0, 1)|^2`` independent for every (receiver,
  transmitter) entry, so ``g_ij = 10^((-PL(d_ij) + G 1[i=j]) / 10) L_ij |f_ij|^2``;
- transmitters uniform in the square; each receiver at a uniform angle and distance ``U[d_min, d_max]``
  from its transmitter, redrawn (that link only) until inside the square; then all receivers of a
  network are redrawn while any cross link (transmitter ``j`` to receiver ``i != j``) is shorter than
  1 m. We do both vectorised (candidate rounds over the whole batch). The cross-link redraw is capped at
  20 rounds: a network that still has a cross link under 1 m (only at densities far above the papers')
  keeps its last draw. (The code also checks direct links against 1 m, which would never terminate
  for ``d_min < 1``; we check cross links only.)
- noise ``-169 dBm/Hz x 5 MHz = 6.29e-14 W``; ``Pmax = 10 W`` (40 dBm); rate ``log2(1 + SINR)``.

All distances are clipped below at :attr:`D2D.MIN_DISTANCE` = 1 m: ITU-R P.1411 is a far-field model
(the formula would exceed 0 dB gain below ~0.1 m). With the defaults no link is shorter than 1 m
anyway (direct links >= 2 m, cross links redrawn), so the clip only acts at extreme densities or with
``d_min < 1``.

Density ``d``: the square's side becomes ``area_side / sqrt(d)`` (the same K pairs in 1/d of the area);
pair distances stay U[d_min, d_max] (the WCGCN density test, Sec. V-B, puts more pairs in the same area).

Mobility (:meth:`D2D.move`): every pair moves rigidly (transmitter and receiver get the same
displacement along the pair's heading), so pair distances stay as drawn; a pair reflects at the square
as one body (its transmitter reflects inside the part of the square that keeps the receiver inside
too), so both nodes always stay in the square. Shadowing is fixed per drop; path loss follows the
positions.

Shapes: layout ``tx_pos``/``rx_pos`` ``(B, K, 2)`` in metres (square ``[0, side]^2``), ``shadowing``
``(B, K, K)``, ``heading (B, K)``; fading ``(B, K, K)`` complex128; ``large_scale``/``gain``
``(B, K, K)`` float64, in linear units (W received per W sent).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l2o_env.channels.base import (
    SPEED_OF_LIGHT,
    ChannelModel,
    Layout,
    heading_vector,
    pairwise_sq_distance,
    reflect_in_box,
)
from l2o_env.validation import MAX_COUNT, integer, real

__all__ = ["D2D", "itu1411_los_pathloss_db"]


def itu1411_los_pathloss_db(distance, carrier_frequency: float, h_tx: float, h_rx: float) -> np.ndarray:
    """ITU-R P.1411 line-of-sight median path loss in dB (the two-slope form of the authors' code).

    Args:
        distance: metres, any shape (> 0).
        carrier_frequency: Hz.
        h_tx, h_rx: antenna heights in metres.
    """
    wavelength = SPEED_OF_LIGHT / carrier_frequency
    r_bp = 4.0 * h_tx * h_rx / wavelength
    l_bp = abs(20.0 * np.log10(wavelength**2 / (8.0 * np.pi * h_tx * h_rx)))
    slope = np.where(distance > r_bp, 40.0, 20.0)
    return l_bp + 6.0 + slope * np.log10(distance / r_bp)


class D2D(ChannelModel):
    """D2D weighted-sum-rate network of the WCGCN paper (Shen et al. 2021, Sec. V-B), batched.

    Args:
        num_links: K >= 1 transmitter-receiver pairs (paper: 50).
        area_side: side of the square in metres (1000).
        pair_distance: ``(d_min, d_max)`` in metres, ``0 < d_min <= d_max`` (paper: (2, 65), (10, 50),
            (30, 70), (30, 30)).
        density: area density factor > 0; the side becomes ``area_side / sqrt(density)``.
        carrier_frequency: Hz (2.4e9).
        bandwidth: Hz (5e6), scales the noise power.
        antenna_height: metres, both ends (1.5).
        antenna_gain_db: dB added to direct links only (2.5).
        tx_power_dbm: maximum transmit power in dBm (40 dBm = 10 W = ``default_pmax``).
        noise_dbm_per_hz: noise power spectral density in dBm/Hz (-169).
        shadowing_db: log-normal shadowing standard deviation in dB (8; 0 disables it).

    Example:
        >>> import numpy as np
        >>> model = D2D()
        >>> model.default_pmax, float(f"{model.default_noise:.3g}")
        (10.0, 6.29e-14)
        >>> model.sample(np.random.default_rng(0), 2).shape
        (2, 50, 50)
    """

    has_geometry = True
    #: metres; every distance is clipped below at this (also the cross-link redraw threshold)
    MIN_DISTANCE = 1.0
    #: cap on the vectorised redraw rounds of the cross-link rule
    CROSS_LINK_ROUNDS = 20
    #: candidates drawn per unplaced receiver and round (the first one inside the square is kept)
    _CANDIDATES = 4
    _MAX_PLACEMENT_ROUNDS = 10_000

    def __init__(
        self,
        num_links: int = 50,
        area_side: float = 1000.0,
        pair_distance: tuple[float, float] = (2.0, 65.0),
        density: float = 1.0,
        carrier_frequency: float = 2.4e9,
        bandwidth: float = 5e6,
        antenna_height: float = 1.5,
        antenna_gain_db: float = 2.5,
        tx_power_dbm: float = 40.0,
        noise_dbm_per_hz: float = -169.0,
        shadowing_db: float = 8.0,
    ):
        owner = "D2D"
        self.num_links = integer(owner, "num_links", num_links, maximum=MAX_COUNT)
        self.num_rx = self.num_links
        self.area_side = real(owner, "area_side", area_side, above=0.0)
        try:
            d_min, d_max = pair_distance
        except (TypeError, ValueError):
            raise ValueError(f"D2D: pair_distance must be a pair (d_min, d_max) in metres, got {pair_distance!r}") from None
        d_min = real(owner, "pair_distance[0] (d_min)", d_min, above=0.0)
        d_max = real(owner, "pair_distance[1] (d_max)", d_max, above=0.0)
        if d_min > d_max:
            raise ValueError(f"D2D: pair_distance must have d_min <= d_max, got {pair_distance!r}")
        self.pair_distance = (d_min, d_max)
        self.density = real(owner, "density", density, above=0.0)
        self.side = self.area_side / np.sqrt(self.density)
        # a receiver at distance >= d_min from a transmitter inside the square must fit in it
        if d_min >= self.side * np.sqrt(2.0):
            raise ValueError(
                f"D2D: pair_distance d_min={d_min} m does not fit in the square of side "
                f"area_side/sqrt(density) = {self.side:.4g} m (needs d_min < side*sqrt(2)); "
                "lower density or d_min"
            )
        self.carrier_frequency = real(owner, "carrier_frequency", carrier_frequency, above=0.0)
        self.bandwidth = real(owner, "bandwidth", bandwidth, above=0.0)
        self.antenna_height = real(owner, "antenna_height", antenna_height, above=0.0)
        self.antenna_gain_db = float(antenna_gain_db)
        self.tx_power_dbm = float(tx_power_dbm)
        self.noise_dbm_per_hz = float(noise_dbm_per_hz)
        for name, val in (
            ("antenna_gain_db", self.antenna_gain_db),
            ("tx_power_dbm", self.tx_power_dbm),
            ("noise_dbm_per_hz", self.noise_dbm_per_hz),
        ):
            if not np.isfinite(val):
                raise ValueError(f"D2D: {name} must be finite, got {val!r}")
        self.shadowing_db = real(owner, "shadowing_db", shadowing_db, at_least=0.0)
        wavelength = SPEED_OF_LIGHT / self.carrier_frequency
        self._r_bp = 4.0 * self.antenna_height**2 / wavelength
        # 10^(-(PL at R_bp)/10) on every link, times the antenna gain on the direct links
        at_bp = itu1411_los_pathloss_db(self._r_bp, self.carrier_frequency, self.antenna_height, self.antenna_height)
        self._gain_matrix = 10.0 ** ((-at_bp + self.antenna_gain_db * np.eye(self.num_links)) / 10.0)
        self.default_pmax = 10.0 ** ((self.tx_power_dbm - 30.0) / 10.0)
        self.default_noise = 10.0 ** ((self.noise_dbm_per_hz - 30.0) / 10.0) * self.bandwidth

    # --- layout ------------------------------------------------------------------------------
    def _place_receivers(self, rng: np.random.Generator, tx: np.ndarray, rx: np.ndarray, todo: np.ndarray) -> None:
        """Draw receivers for the links flagged in ``todo (B, K)`` in place: uniform angle, distance
        U[d_min, d_max], rejected until inside the square (the first accepted candidate of each round)."""
        b_idx, k_idx = np.nonzero(todo)
        d_min, d_max = self.pair_distance
        for _ in range(self._MAX_PLACEMENT_ROUNDS):
            if b_idx.size == 0:
                return
            shape = (b_idx.size, self._CANDIDATES)
            dist = rng.uniform(d_min, d_max, shape)
            ang = rng.uniform(0.0, 2.0 * np.pi, shape)
            cand = tx[b_idx, k_idx][:, None, :] + dist[..., None] * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
            inside = np.all((cand >= 0.0) & (cand <= self.side), axis=-1)
            got = inside.any(axis=1)
            first = inside.argmax(axis=1)
            rx[b_idx[got], k_idx[got]] = cand[got, first[got]]
            b_idx, k_idx = b_idx[~got], k_idx[~got]
        raise RuntimeError(
            f"D2D: could not place {b_idx.size} receivers inside the {self.side:.4g} m square after "
            f"{self._MAX_PLACEMENT_ROUNDS} rounds (pair_distance={self.pair_distance}); lower density"
        )

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """``batch`` drops as the authors' generator makes them (module docstring), plus shadowing and headings."""
        tx, rx = self.sample_positions(rng, batch)
        k = self.num_links
        shadow_db = self.shadowing_db * rng.standard_normal((tx.shape[0], k, k))
        heading = rng.random((tx.shape[0], k)) * 2.0 * np.pi
        shadowing = np.exp(shadow_db * (np.log(10.0) / 10.0))
        return Layout(tx_pos=tx, rx_pos=rx, shadowing=shadowing, heading=heading)

    def sample_positions(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Transmitter and receiver positions ``(B, K, 2)`` of ``batch`` drops (module docstring: pairs
        placed inside the square, cross links shorter than 1 m redrawn); :meth:`sample_layout` adds the
        shadowing and headings, and the multi-antenna D2D model (``channels.d2d_beamforming``) its own."""
        batch = integer("D2D.sample_layout", "batch", batch)
        k = self.num_links
        tx = rng.uniform(0.0, self.side, (batch, k, 2))
        rx = np.empty_like(tx)
        self._place_receivers(rng, tx, rx, np.ones((batch, k), dtype=bool))
        off_diag = ~np.eye(k, dtype=bool)
        redo = np.arange(batch)
        for _ in range(self.CROSS_LINK_ROUNDS):
            d2 = pairwise_sq_distance(rx[redo], tx[redo])
            bad = ((d2 < self.MIN_DISTANCE**2) & off_diag).any(axis=(1, 2))
            redo = redo[bad]
            if redo.size == 0:
                break
            todo = np.zeros((batch, k), dtype=bool)
            todo[redo] = True
            self._place_receivers(rng, tx, rx, todo)
        return tx, rx

    def large_scale(self, layout: Layout) -> np.ndarray:
        """``10^((-PL(d_ij) + G 1[i=j]) / 10) L_ij``, ``(B, K, K)`` (fading power 1)."""
        # the two-slope law in linear form: 10^(-(L_bp + 6)/10) (R_bp/d)^2 below the breakpoint, ^4 above,
        # from squared distances (no square root, logarithm or power function on (B, K, K) arrays)
        q = self._r_bp**2 / pairwise_sq_distance(layout.rx_pos, layout.tx_pos, self.MIN_DISTANCE)
        q = np.where(q < 1.0, q * q, q)
        q *= self._gain_matrix
        q *= layout.shadowing
        return q

    # --- mobility ----------------------------------------------------------------------------
    def move(self, layout: Layout, rng: np.random.Generator, distance) -> Layout:
        """Each pair moves rigidly ``distance`` metres (scalar or ``(B, K)``) along its heading and
        reflects at the square as one body: the transmitter reflects inside
        ``[max(0, -o), min(side, side - o)]`` per axis, ``o = rx - tx``, so both nodes stay inside.

        Returns a new :class:`Layout` (new position and heading arrays); the input is never written, and
        its shadowing and ``extra`` arrays are shared with the result.
        """
        dist = np.broadcast_to(np.asarray(distance, dtype=np.float64), layout.heading.shape)
        if not np.all(np.isfinite(dist)) or np.any(dist < 0):
            raise ValueError(f"D2D.move: distance must be finite and >= 0 metres, got {distance!r}")
        offset = layout.rx_pos - layout.tx_pos
        low = np.maximum(0.0, -offset)
        high = np.minimum(self.side, self.side - offset)
        u = heading_vector(layout.heading)
        tx, u = reflect_in_box(layout.tx_pos + dist[..., None] * u, u, low, high)
        return replace(
            layout,
            tx_pos=tx,
            rx_pos=tx + offset,
            heading=np.arctan2(u[..., 1], u[..., 0]),
            extra=dict(layout.extra),
        )
