"""Batched channel models (numpy). ``MODELS`` maps a short name to its class (``MIMO_MODELS`` for the
multi-antenna ones).

| name | class | paper | receivers |
|---|---|---|---|
| ``ic`` | :class:`GaussianIC` | Sun et al. 2018, Sec. V-A | K |
| ``imac`` | :class:`IMAC` | Sun et al. 2018, Sec. V-A | N base stations |
| ``adhoc`` | :class:`AdHoc` | Chowdhury et al. 2021 (UWMMSE), Sec. IV | K |
| ``d2d`` | :class:`D2D` | Shen et al. 2021 (WCGCN), Sec. V-B | K |

Multi-antenna (beamforming) models follow :class:`MimoChannelModel` (``mimo.py``): a channel
``(B, K, T, Nr, Nt)`` instead of a gain matrix.

| name | class | paper | transmitters x antennas, receivers x antennas |
|---|---|---|---|
| ``miso`` | :class:`MISO` | Pellaco et al. 2020, Sec. V | 1 x M, N users x 1 |
| ``ibc`` | :class:`IBC` | Song et al. 2023, Sec. 4 | B base stations x Nt, B U users x Nr |
| ``d2d_beamforming`` | :class:`D2DBeamforming` | Shen et al. 2021 (WCGCN), Sec. V-C | K x Nt, K x 1 |

References:

- Sun et al. 2018: H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize:
  Training Deep Neural Networks for Interference Management", IEEE Trans. Signal Process.
  66(20):5438-5453, 2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412.
- Chowdhury et al. 2021: A. Chowdhury, G. Verma, C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using
  Graph Neural Networks for Efficient Power Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017,
  2021, doi:10.1109/TWC.2021.3071480, arXiv:2009.10812.
- Shen et al. 2021: Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio
  Resource Management: Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun.
  39(1):101-115, 2021, doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632.
- Pellaco et al. 2020: L. Pellaco, M. Bengtsson, J. Jalden, "Deep unfolding of the weighted MMSE
  beamforming algorithm", arXiv:2006.08448, 2020.
- Song et al. 2023: Q. Song, G. Liu, H. Xu, "Learning to Optimize Non-Convex Sum-Rate Maximization
  Problems", SynS & ML workshop, ICML 2023.
"""

from l2o_env.channels.adhoc import AdHoc
from l2o_env.channels.base import ChannelModel, Layout, evolve_fading, jakes_correlation
from l2o_env.channels.d2d import D2D
from l2o_env.channels.d2d_beamforming import D2DBeamforming
from l2o_env.channels.ibc import IBC
from l2o_env.channels.ic import GaussianIC
from l2o_env.channels.imac import IMAC
from l2o_env.channels.mimo import MimoChannelModel
from l2o_env.channels.miso import MISO

#: the power-gain models (``gain (B, K, K)``)
MODELS = {"ic": GaussianIC, "imac": IMAC, "adhoc": AdHoc, "d2d": D2D}
#: the multi-antenna models (``channel (B, K, T, Nr, Nt)``, :class:`MimoChannelModel`)
MIMO_MODELS = {"miso": MISO, "ibc": IBC, "d2d_beamforming": D2DBeamforming}

__all__ = [
    "ChannelModel",
    "Layout",
    "evolve_fading",
    "jakes_correlation",
    "GaussianIC",
    "IMAC",
    "AdHoc",
    "D2D",
    "MimoChannelModel",
    "MISO",
    "IBC",
    "D2DBeamforming",
    "MODELS",
    "MIMO_MODELS",
]
