"""Gymnasium power-control envs (single and native batched vector) and their registration.

One env class and one vector env class serve every power-control scenario of ``l2o_env.scenarios``;
the registration passes the scenario to them (``kwargs={"env_id": ID}``).

>>> import gymnasium as gym, l2o_env
>>> env = gym.make("PowerControl-IC-v0", num_links=20)
>>> envs = gym.make_vec("PowerControl-IC-v0", num_envs=1024)   # native batched VectorEnv
"""

from l2o_env.envs.power_control import PowerControlEnv
from l2o_env.envs.vector import PowerControlVectorEnv

__all__ = ["PowerControlEnv", "PowerControlVectorEnv"]
