"""Batched channel models (numpy). ``MODELS`` maps a short name to its class.

| name | class | paper | receivers |
|---|---|---|---|
| ``ic`` | :class:`GaussianIC` | Sun et al. 2018, Sec. V-A | K |
| ``imac`` | :class:`IMAC` | Sun et al. 2018, Sec. V-A | N base stations |
| ``adhoc`` | :class:`AdHoc` | Chowdhury et al. 2021 (UWMMSE), Sec. IV | K |
| ``d2d`` | :class:`D2D` | Shen et al. 2021 (WCGCN), Sec. V-B | K |

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
"""

from l2o_env.channels.adhoc import AdHoc
from l2o_env.channels.base import ChannelModel, Layout, evolve_fading, jakes_correlation
from l2o_env.channels.d2d import D2D
from l2o_env.channels.ic import GaussianIC
from l2o_env.channels.imac import IMAC

MODELS = {"ic": GaussianIC, "imac": IMAC, "adhoc": AdHoc, "d2d": D2D}

__all__ = [
    "ChannelModel",
    "Layout",
    "evolve_fading",
    "jakes_correlation",
    "GaussianIC",
    "IMAC",
    "AdHoc",
    "D2D",
    "MODELS",
]
