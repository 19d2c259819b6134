"""Multi-antenna D2D network of the WCGCN paper (Shen et al. 2021), Sec. V-C "Beamformer Design".

Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource Management:
Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115, 2021,
doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632.

``K`` transmitter-receiver pairs, ``Nt`` antennas per transmitter (``num_antennas``, paper: 2), single-
antenna receivers (``Nr = d = 1``), one beamformer per pair with ``||v_k||^2 <= Pmax`` (eq. 5); K = 50
pairs in 1000 m x 1000 m with pair distances U[d_min, d_max] (Table V). The geometry is the power-control
D2D model's (:class:`~l2o_env.channels.d2d.D2D`: drop, density, rigid pair movement), reused as is.

Two path-loss models (``pathloss``):

- ``"authors"`` (default): what the authors' beamforming code draws
  (https://github.com/yshenaw/GNN-Resource-Management, ``D2D/Beamforming``): mean power gain
  ``4.4e5 / d^1.88`` (``d`` in metres) divided by ``10^(6.3 x / 20)``, ``x ~ N(0, 1)`` drawn independently
  for every (receiver, transmitter, antenna): written as on an amplitude, it multiplies the POWER gain,
  so it is a log-normal shadowing of 3.15 dB standard deviation in power (``shadowing_db`` = 3.15);
  noise 1, ``Pmax`` 1 (normalised units). No antenna gain.
- ``"itu1411"``: the power-control D2D env's model on every antenna pair: ITU-R P.1411 line of sight,
  2.5 dB antenna gain on direct links, 8 dB shadowing per (receiver, transmitter) pair (the same on its
  antennas), -169 dBm/Hz x 5 MHz noise, 40 dBm (10 W) budget; its knobs (``bandwidth``,
  ``antenna_gain_db``, ``tx_power_dbm``, ``noise_dbm_per_hz``, ``antenna_height``) apply.

Fading CN(0, 1) per antenna; the channel ``H[k, j]`` (``1 x Nt``, receiver ``k``, transmitter ``j``)
multiplies the beamformer, ``y_k = sum_j H[k, j] v_j s_j + n_k``, as in the authors' rate (their
``h_{j,k}^H`` of eq. 4 has the same distribution). ``tx_of_link = arange(K)``.

Shapes: layout as the D2D's, with ``shadowing (B, K, K, 1, Nt)`` (authors) or ``(B, K, K)`` (itu1411);
fading and channel ``(B, K, K, 1, Nt)`` complex128.
"""

from __future__ import annotations

import numpy as np

from l2o_env.channels.base import Layout, pairwise_sq_distance
from l2o_env.channels.d2d import D2D
from l2o_env.channels.mimo import MimoChannelModel
from l2o_env.validation import MAX_COUNT, choice, integer, real

__all__ = ["D2DBeamforming", "PATHLOSS_MODELS", "authors_pathloss_gain"]

PATHLOSS_MODELS = ("authors", "itu1411")
#: the authors' code: mean power gain AUTHORS_GAIN / d^AUTHORS_EXPONENT, d in metres
AUTHORS_GAIN = 4.4e5
AUTHORS_EXPONENT = 1.88
#: the authors' "6.3" enters as 10^(6.3 x / 20) on the power gain: 3.15 dB in power
AUTHORS_SHADOWING_DB = 3.15
# D2D knobs that only the ITU-R P.1411 model uses
_ITU_KNOBS = ("bandwidth", "antenna_height", "antenna_gain_db", "tx_power_dbm", "noise_dbm_per_hz")


def authors_pathloss_gain(distance) -> np.ndarray:
    """``4.4e5 / d^1.88``: the mean power gain of the authors' beamforming code (``d`` in metres)."""
    return AUTHORS_GAIN / np.asarray(distance, dtype=np.float64) ** AUTHORS_EXPONENT


class D2DBeamforming(MimoChannelModel, D2D):
    """Multi-antenna D2D pairs (Shen et al. 2021, Sec. V-C), batched.

    Args:
        num_links: K >= 1 pairs (paper: 50).
        num_antennas: Nt >= 1 antennas per transmitter (paper: 2).
        pathloss: ``"authors"`` (default) or ``"itu1411"`` (module docstring).
        area_side, pair_distance, density, carrier_frequency: the D2D geometry (1000 m, (2, 65) m, 1, 2.4 GHz).
        shadowing_db: standard deviation in dB of the log-normal shadowing of the power gain; default
            3.15 for ``"authors"`` (their ``10^(6.3 x / 20)``) and 8 for ``"itu1411"``; 0 disables it.
        bandwidth, antenna_height, antenna_gain_db, tx_power_dbm, noise_dbm_per_hz: ``"itu1411"`` only
            (the D2D model's defaults: 5 MHz, 1.5 m, 2.5 dB, 40 dBm, -169 dBm/Hz).

    Example:
        >>> import numpy as np
        >>> model = D2DBeamforming()
        >>> model.default_pmax, model.default_noise, model.num_tx_antennas
        (1.0, 1.0, 2)
        >>> model.sample(np.random.default_rng(0), 2).shape
        (2, 50, 50, 1, 2)
    """

    has_geometry = True
    pmax_knobs = ("tx_power_dbm",)
    noise_knobs = ("noise_dbm_per_hz", "bandwidth")

    def __init__(
        self,
        num_links: int = 50,
        num_antennas: int = 2,
        pathloss: str = "authors",
        area_side: float = 1000.0,
        pair_distance: tuple[float, float] = (2.0, 65.0),
        density: float = 1.0,
        carrier_frequency: float = 2.4e9,
        shadowing_db: float | None = None,
        bandwidth: float | None = None,
        antenna_height: float | None = None,
        antenna_gain_db: float | None = None,
        tx_power_dbm: float | None = None,
        noise_dbm_per_hz: float | None = None,
    ):
        owner = "D2DBeamforming"
        self.pathloss = choice(owner, "pathloss", pathloss, PATHLOSS_MODELS)
        itu = {"bandwidth": bandwidth, "antenna_height": antenna_height, "antenna_gain_db": antenna_gain_db,
               "tx_power_dbm": tx_power_dbm, "noise_dbm_per_hz": noise_dbm_per_hz}
        given = {name: val for name, val in itu.items() if val is not None}
        if self.pathloss == "authors" and given:
            raise ValueError(f"{owner}: {sorted(given)} only apply to pathloss='itu1411' (the authors' model has "
                             "noise 1 and Pmax 1 in normalised units; set noise= / pmax= instead)")
        if shadowing_db is None:
            shadowing_db = AUTHORS_SHADOWING_DB if self.pathloss == "authors" else 8.0
        D2D.__init__(self, num_links=num_links, area_side=area_side, pair_distance=pair_distance, density=density,
                     carrier_frequency=carrier_frequency, shadowing_db=shadowing_db, **given)
        self.num_tx_antennas = integer(owner, "num_antennas", num_antennas, maximum=MAX_COUNT)
        self.num_rx_antennas = 1
        self._set_links(np.arange(self.num_links), self.num_links)
        if self.pathloss == "authors":
            self.default_noise = 1.0
            self.default_pmax = 1.0

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """The D2D drop (:meth:`D2D.sample_positions`), then the model's shadowing and the headings."""
        tx, rx = self.sample_positions(rng, batch)
        b, k = tx.shape[0], self.num_links
        if self.pathloss == "authors":  # one draw per (receiver, transmitter, antenna), as the code
            shape = (b, k, k, 1, self.num_tx_antennas)
        else:  # one per (receiver, transmitter) pair, as the power-control D2D
            shape = (b, k, k)
        shadowing = np.exp(self.shadowing_db * rng.standard_normal(shape) * (np.log(10.0) / 10.0))
        heading = rng.random((b, k)) * 2.0 * np.pi
        return Layout(tx_pos=tx, rx_pos=rx, shadowing=shadowing, heading=heading)

    def large_scale(self, layout: Layout) -> np.ndarray:
        """Mean power gains: ``(B, K, K, 1, Nt)`` (authors) or ``(B, K, K, 1, 1)`` (itu1411)."""
        if self.pathloss == "itu1411":
            return D2D.large_scale(self, layout)[..., None, None]
        d2 = pairwise_sq_distance(layout.rx_pos, layout.tx_pos, self.MIN_DISTANCE)
        g = AUTHORS_GAIN * d2 ** (-0.5 * AUTHORS_EXPONENT)
        return g[..., None, None] * layout.shadowing
