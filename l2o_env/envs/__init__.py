"""Gymnasium power-control envs (single and native batched vector) and their registration.

>>> import gymnasium as gym, l2o_env
>>> env = gym.make("PowerControl-IC-v0", num_links=20)
>>> envs = gym.make_vec("PowerControl-IC-v0", num_envs=1024)   # native batched VectorEnv
"""

from l2o_env.envs.power_control import (
    AdHocPowerControlEnv,
    D2DPowerControlEnv,
    ICPowerControlEnv,
    IMACPowerControlEnv,
    PowerControlEnv,
)
from l2o_env.envs.vector import (
    AdHocPowerControlVectorEnv,
    D2DPowerControlVectorEnv,
    ICPowerControlVectorEnv,
    IMACPowerControlVectorEnv,
    PowerControlVectorEnv,
)

__all__ = [
    "PowerControlEnv",
    "ICPowerControlEnv",
    "IMACPowerControlEnv",
    "AdHocPowerControlEnv",
    "D2DPowerControlEnv",
    "PowerControlVectorEnv",
    "ICPowerControlVectorEnv",
    "IMACPowerControlVectorEnv",
    "AdHocPowerControlVectorEnv",
    "D2DPowerControlVectorEnv",
]
