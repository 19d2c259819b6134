"""Batched channel models (numpy). ``MODELS`` maps a short name to its class.

| name | class | paper | receivers |
|---|---|---|---|
| ``ic`` | :class:`GaussianIC` | Sun et al. (000) Sec. V-A | K |
| ``imac`` | :class:`IMAC` | Sun et al. (000) Sec. V-A | N base stations |
| ``adhoc`` | :class:`AdHoc` | Chowdhury et al., UWMMSE (002) Sec. IV | K |
| ``d2d`` | :class:`D2D` | Shen et al., WCGCN (003) Sec. V-B | K |
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
