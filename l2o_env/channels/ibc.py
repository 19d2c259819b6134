"""Multi-cell MIMO downlink (interfering broadcast channel) of Song, Liu and Xu, "Learning to Optimize
Non-Convex Sum-Rate Maximization Problems", 1st Workshop on Synergy of Scientific and Machine Learning
Modeling (SynS & ML), ICML 2023, Sec. 2 and 4 (the problem and WMMSE of Shi, Razaviyayn, Luo and He,
"An Iteratively Weighted MMSE Approach to Distributed Sum-Utility Maximization for a MIMO Interfering
Broadcast Channel", IEEE TSP 59(9):4331-4340, 2011, doi:10.1109/TSP.2011.2147784).

``B = num_cells`` base stations with ``Nt`` antennas each serve ``U = users_per_cell`` users with ``Nr``
antennas each; link ``k`` is user ``k mod U`` of cell ``k // U`` (users of a cell are contiguous,
``tx_of_link = repeat(arange(B), U)``); every precoder is ``Nt x Nr`` (``d = Nr`` streams); the budget is
``P = 10 W`` per base station (``sum_u ||V_{b,u}||_F^2 <= P``).

What the paper states (Sec. 4, following Zhao, Lu, Shi and Luo, "Rethinking WMMSE: Can Its Complexity
Scale Linearly With the Number of BS Antennas?", IEEE TSP 71:433-446, 2023):

- users uniform 0.1 - 0.3 km from their base station (we draw them uniformly over the AREA of that
  annulus, ``user_distance=(100, 300)`` m);
- inter-site distance 2.8 km (low inter-cell interference) or 0.5 km (high): ``interference="low"|"high"``,
  or any ``inter_site_distance`` in metres; base stations on a hexagonal grid with that spacing (two
  cells: two base stations that distance apart);
- CN(0, 1) fading "with path loss between the users and the base stations";
- per-cell noise from an SNR rule: ``sigma_b^2 = 10^((1/U) sum_u log10(||H_{b,u}||_F^2 / Nr)) x
  10^(-SNR/10)`` with SNR = 5 dB (``snr_db``), ``H_{b,u}`` the channel from base station ``b`` to its own
  user ``u``; every user of cell ``b`` gets ``sigma_b^2``. We apply the rule to the channel of every
  slot (so the noise of the observation changes with the channel; an explicit ``noise=`` fixes it);
- three scales: 8 / 16 / 32 precoders on 8x2 / 16x2 / 32x2 matrix spaces (small / moderate / large).

Our choices where the paper is silent:

- path loss ``128.1 + 37.6 log10(d / 1 km)`` dB (the 3GPP macro-cell law of the WMMSE literature,
  e.g. Zhao et al. 2023) with 8 dB log-normal shadowing per (base station, user) pair, the same on every
  antenna pair; distances clipped below at 1 m;
- the split of each scale: a precoder ``Nt x 2`` means ``Nt`` transmit antennas and ``Nr = d = 2``; the
  number of precoders equals ``Nt``. We keep two cells at every scale and grow the users with the
  antennas, so that each base station carries exactly as many streams as it has antennas
  (``U d = Nt``, the most it can zero-force) at every scale: small = 2 cells x 4 users, ``Nt = 8``;
  moderate = 2 x 8, ``Nt = 16``; large = 2 x 16, ``Nt = 32``. ``num_cells``, ``users_per_cell``,
  ``num_antennas`` and ``num_rx_antennas`` override a scale's numbers;
- carrier frequency 2.4 GHz (only for the Doppler of the mobility model).

Geometry and mobility reuse the IMAC's (:class:`~l2o_env.channels.imac.IMAC`, "disc" cells): the user
drop over the annulus, the hexagonal grid, density (the whole layout scaled by ``1/sqrt(density)``,
path loss not) and the movement (users reflect inside their own annulus; base stations and shadowing
stay). The transmitters here are the base stations: ``tx_pos (B, T, 2)`` are the base stations,
``rx_pos (B, K, 2)`` the users.

Shapes: layout as the IMAC's (``tx_pos`` = users, ``extra["bs_pos"]``, ``shadowing (B, T, K)``); fading
and channel ``(B, K, T, Nr, Nt)`` complex128; ``large_scale`` ``(B, K, T, 1, 1)``.
"""

from __future__ import annotations

import numpy as np

from l2o_env.channels.base import Layout, pairwise_sq_distance
from l2o_env.channels.imac import IMAC
from l2o_env.channels.mimo import MimoChannelModel
from l2o_env.validation import MAX_COUNT, choice, integer, real

__all__ = ["IBC", "IBC_SCALES", "INTER_SITE_DISTANCES"]

#: scale -> (cells B, users per cell U, transmit antennas Nt, receive antennas Nr); B U = Nt precoders of Nt x 2
IBC_SCALES = {"small": (2, 4, 8, 2), "moderate": (2, 8, 16, 2), "large": (2, 16, 32, 2)}
#: interference level -> inter-site distance in metres (Song et al. 2023, Sec. 4)
INTER_SITE_DISTANCES = {"low": 2800.0, "high": 500.0}


class _CellGeometry(IMAC):
    """The IMAC's drop and mobility with users in the annulus ``user_distance`` around their base station
    and base stations ``inter_site_distance`` apart (only the geometry of the IMAC is used)."""

    def __init__(self, num_cells: int, users_per_cell: int, inter_site_distance: float,
                 user_distance: tuple[float, float], shadowing_db: float, density: float):
        super().__init__(num_links=num_cells * users_per_cell, num_cells=num_cells,
                         cell_radius=inter_site_distance / 2.0, density=density)
        self.outer_radius = user_distance[1] * self.scale
        self.min_radius = user_distance[0] * self.scale
        self.SHADOWING_DB = shadowing_db


#: the largest |snr_db| of the noise rule: the per-slot noise (channel power 1e-20..1e-5 W per entry over
#: 10^(snr_db/10)) then stays inside the float32 range of the observation
MAX_SNR_DB = 200.0


class IBC(MimoChannelModel):
    """Multi-cell MIMO interfering broadcast channel (Song et al. 2023), batched.

    Args:
        scale: ``"small"`` | ``"moderate"`` | ``"large"``: the cells, users, ``Nt`` and ``Nr`` of
            :data:`IBC_SCALES` (module docstring).
        interference: ``"low"`` (inter-site distance 2.8 km, the default) or ``"high"`` (0.5 km).
        num_cells, users_per_cell, num_antennas, num_rx_antennas: override the scale's B, U, Nt, Nr.
        num_streams: d, streams per link; must equal Nr (the default): the action ``(K, Nt, d, 2)`` has d = Nr
            columns, and a link uses fewer streams by leaving columns at zero.
        inter_site_distance: metres, instead of ``interference``'s preset.
        user_distance: ``(min, max)`` distance of a user from its base station, metres (100, 300).
        snr_db: the SNR of the noise rule (5 dB), within +-200 dB.
        shadowing_db: log-normal shadowing standard deviation in dB (8; 0 disables it).
        density: area density factor > 0: the layout is scaled by ``1/sqrt(density)``.
        carrier_frequency: Hz, for the Doppler of the mobility model (2.4 GHz).

    Example:
        >>> import numpy as np
        >>> model = IBC(scale="small")
        >>> (model.num_tx, model.num_links, model.num_tx_antennas, model.num_rx_antennas)
        (2, 8, 8, 2)
        >>> model.sample(np.random.default_rng(0), 3).shape
        (3, 8, 2, 2, 8)
    """

    has_geometry = True
    noise_from_channel = True
    noise_knobs = ("snr_db",)
    default_pmax = 10.0
    default_noise = 1.0  # only with an explicit noise rule off; the env uses channel_noise by default
    #: metres: distances below are clipped (the law exceeds 0 dB gain below 0.4 m)
    MIN_DISTANCE = 1.0
    #: path loss 128.1 + 37.6 log10(d / km) dB
    PATHLOSS_DB_AT_1KM = 128.1
    PATHLOSS_SLOPE_DB = 37.6

    def __init__(
        self,
        scale: str = "small",
        interference: str | None = None,
        num_cells: int | None = None,
        users_per_cell: int | None = None,
        num_antennas: int | None = None,
        num_rx_antennas: int | None = None,
        num_streams: int | None = None,
        inter_site_distance: float | None = None,
        user_distance: tuple[float, float] = (100.0, 300.0),
        snr_db: float = 5.0,
        shadowing_db: float = 8.0,
        density: float = 1.0,
        carrier_frequency: float = 2.4e9,
    ):
        owner = "IBC"
        self.scale = choice(owner, "scale", scale, tuple(IBC_SCALES))
        cells, users, nt, nr = IBC_SCALES[self.scale]

        def count(name: str, value, default: int) -> int:
            return default if value is None else integer(owner, name, value, maximum=MAX_COUNT)

        self.num_cells = count("num_cells", num_cells, cells)
        self.users_per_cell = count("users_per_cell", users_per_cell, users)
        self.num_tx_antennas = count("num_antennas", num_antennas, nt)
        self.num_rx_antennas = count("num_rx_antennas", num_rx_antennas, nr)
        # d = Nr streams per link: the action is (K, Nt, Nr, 2) so that its shape follows from the observation;
        # a link that needs fewer streams leaves precoder columns at zero (same rate)
        if num_streams is not None and integer(owner, "num_streams", num_streams) != self.num_rx_antennas:
            raise ValueError(f"{owner}: num_streams={num_streams!r} must equal num_rx_antennas={self.num_rx_antennas} "
                             "(d = Nr streams per link; to use fewer, leave precoder columns at zero, which gives "
                             "the same rate); other stream counts are not supported")
        if inter_site_distance is None:
            self.interference = choice(owner, "interference", "low" if interference is None else interference,
                                       tuple(INTER_SITE_DISTANCES))
            self.inter_site_distance = INTER_SITE_DISTANCES[self.interference]
        else:
            if interference is not None:
                raise ValueError(f"IBC: give either interference={interference!r} (a preset inter-site distance) "
                                 f"or inter_site_distance={inter_site_distance!r} (m), not both")
            self.interference = None
            self.inter_site_distance = real(owner, "inter_site_distance", inter_site_distance, above=0.0)
        try:
            d_min, d_max = user_distance
        except (TypeError, ValueError):
            raise ValueError(f"IBC: user_distance must be a pair (min, max) in metres, got {user_distance!r}") from None
        d_min = real(owner, "user_distance[0] (min)", d_min, at_least=0.0)
        d_max = real(owner, "user_distance[1] (max)", d_max, above=0.0)
        if d_min >= d_max:
            raise ValueError(f"IBC: user_distance must have min < max, got {user_distance!r}")
        self.user_distance = (d_min, d_max)
        self.snr_db = real(owner, "snr_db", snr_db)
        if abs(self.snr_db) > MAX_SNR_DB:  # the noise rule would leave float32 (the observation's type)
            raise ValueError(f"IBC: snr_db must be within +-{MAX_SNR_DB:g} dB (the noise it sets from every slot's "
                             f"channel must be a float32 > 0), got {snr_db!r}")
        self.shadowing_db = real(owner, "shadowing_db", shadowing_db, at_least=0.0)
        self.density = real(owner, "density", density, above=0.0)
        self.carrier_frequency = real(owner, "carrier_frequency", carrier_frequency, above=0.0)
        self._geometry = _CellGeometry(self.num_cells, self.users_per_cell, self.inter_site_distance,
                                       self.user_distance, self.shadowing_db, self.density)
        self._set_links(self._geometry.cell_of_user, self.num_cells)

    # --- layout ------------------------------------------------------------------------------
    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """``batch`` drops: users uniform over their annulus, shadowing per (base station, user), headings."""
        return self._geometry.sample_layout(rng, batch)

    def move(self, layout: Layout, rng: np.random.Generator, distance) -> Layout:
        """Users move ``distance`` metres and reflect inside their own annulus (the IMAC's movement)."""
        return self._geometry.move(layout, rng, distance)

    def positions(self, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """Base stations ``(B, T, 2)`` (the transmitters) and users ``(B, K, 2)`` (the receivers)."""
        return layout.extra["bs_pos"], layout.tx_pos

    def pathloss_gain(self, distance) -> np.ndarray:
        """Linear gain ``10^(-(128.1 + 37.6 log10(d / 1000)) / 10)`` of distances in metres (no shadowing)."""
        d = np.maximum(np.asarray(distance, dtype=np.float64), self.MIN_DISTANCE)
        return 10.0 ** (-(self.PATHLOSS_DB_AT_1KM + self.PATHLOSS_SLOPE_DB * np.log10(d / 1000.0)) / 10.0)

    def large_scale(self, layout: Layout) -> np.ndarray:
        """Path loss x shadowing, ``(B, K, T, 1, 1)``: receiver (user) rows, transmitter (base station) columns."""
        d2 = pairwise_sq_distance(layout.extra["bs_pos"], layout.tx_pos, self.MIN_DISTANCE)  # (B, T, K)
        # 10^(-128.1/10) (d / 1 km)^(-3.76), from squared distances
        g = 10.0 ** (-self.PATHLOSS_DB_AT_1KM / 10.0) * (d2 * 1e-6) ** (-self.PATHLOSS_SLOPE_DB / 20.0)
        g *= layout.shadowing
        return np.swapaxes(g, -1, -2)[..., None, None]

    # --- the SNR rule of the noise -------------------------------------------------------------
    def channel_noise(self, channel: np.ndarray) -> np.ndarray:
        """``sigma_b^2 = 10^((1/U) sum_u log10(||H_{b,u}||_F^2 / Nr)) 10^(-snr_db/10)`` for every user of
        cell ``b``: ``(B, K)`` from a channel ``(B, K, T, Nr, Nt)``."""
        k = np.arange(self.num_links)
        direct = channel[:, k, self.tx_of_link]  # (B, K, Nr, Nt): each user's channel from its own BS
        fro2 = (direct.real**2 + direct.imag**2).sum(axis=(-2, -1)) / self.num_rx_antennas
        per_cell = np.log10(fro2).reshape(-1, self.num_cells, self.users_per_cell).mean(axis=-1)
        sigma2 = 10.0 ** (per_cell - self.snr_db / 10.0)
        return np.repeat(sigma2, self.users_per_cell, axis=-1)
