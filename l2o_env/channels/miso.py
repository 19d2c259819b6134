"""MISO downlink of Pellaco, Bengtsson and Jaldén, "Deep unfolding of the weighted MMSE beamforming
algorithm", arXiv:2006.08448, 2020, Sec. II and V.

One base station with ``M`` antennas serves ``N`` single-antenna users (``M = N = 4`` in the paper); every
channel vector is drawn i.i.d. from CN(0, I) (Sec. V: "channel realizations drawn i.i.d. from a complex
standard Gaussian distribution"); one beamformer per user under the total budget ``Tr(V V^H) <= P``.
The paper gives the SNR (5 to 20 dB, 10 dB in most figures) but neither P nor sigma^2: we take
``sigma^2 = 1`` and ``P = 10^(snr_db / 10)`` (``snr_db`` default 10), so SNR = P / sigma^2.

In the beamforming convention (``channels.mimo``) the channel of user ``k`` is the ``1 x M`` row
``H[k, 0]``; Pellaco et al. write it ``h_k^H``, the same distribution. No geometry: density and movement
do not apply; a speed only correlates the fading (Jakes, per antenna).

Shapes: layout carries nothing; fading and channel ``(B, N, 1, 1, M)`` complex128.
"""

from __future__ import annotations

import numpy as np

from l2o_env.channels.base import Layout
from l2o_env.channels.mimo import MimoChannelModel
from l2o_env.validation import MAX_COUNT, integer, real

__all__ = ["MISO"]


class MISO(MimoChannelModel):
    """Single-cell MISO downlink (Pellaco et al. 2020), batched.

    Args:
        num_users: N >= 1 single-antenna users (paper: 4).
        num_antennas: M >= 1 base-station antennas (paper: 4).
        snr_db: SNR = P / sigma^2 in dB with sigma^2 = 1, i.e. ``default_pmax = 10^(snr_db / 10)`` W
            (paper: 5 to 20 dB; default 10).
        carrier_frequency: Hz, only used by the env's Doppler (default 2.4 GHz).

    Example:
        >>> import numpy as np
        >>> model = MISO()
        >>> model.default_pmax, model.default_noise
        (10.0, 1.0)
        >>> model.sample(np.random.default_rng(0), 2).shape
        (2, 4, 1, 1, 4)
    """

    has_geometry = False
    default_noise = 1.0
    pmax_knobs = ("snr_db",)

    def __init__(self, num_users: int = 4, num_antennas: int = 4, snr_db: float = 10.0, carrier_frequency: float = 2.4e9):
        owner = "MISO"
        users = integer(owner, "num_users", num_users, maximum=MAX_COUNT)
        self.num_tx_antennas = integer(owner, "num_antennas", num_antennas, maximum=MAX_COUNT)
        self.num_rx_antennas = 1
        self._set_links(np.zeros(users, dtype=np.intp), 1)
        self.snr_db = real(owner, "snr_db", snr_db)
        with np.errstate(over="ignore", under="ignore"):  # (0 or inf: refused just below)
            self.default_pmax = float(np.power(10.0, self.snr_db / 10.0))
        if not 0.0 < self.default_pmax < np.finfo(np.float32).max:
            raise ValueError(f"MISO: snr_db={snr_db!r} gives a budget outside the float32 range of the observation")
        self.carrier_frequency = real(owner, "carrier_frequency", carrier_frequency, above=0.0)

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        return Layout()

    def large_scale(self, layout: Layout) -> np.ndarray:
        return np.ones((1, 1, 1, 1, 1))
