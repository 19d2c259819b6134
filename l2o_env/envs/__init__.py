"""Gymnasium envs (single and native batched vector) of every problem family and their registration.

One env class and one vector env class per problem family serve every scenario of that family in
``l2o_env.scenarios`` (power control: :class:`PowerControlEnv`, :class:`PowerControlVectorEnv`;
beamforming: :class:`BeamformingEnv`, :class:`BeamformingVectorEnv`); the registration passes the
scenario to them (``kwargs={"env_id": ID}``).

>>> import gymnasium as gym, l2o_env
>>> env = gym.make("PowerControl-IC-v0", num_links=20)
>>> envs = gym.make_vec("PowerControl-IC-v0", num_envs=1024)   # native batched VectorEnv
>>> bf = gym.make("Beamforming-MISO-v0")                        # precoders instead of powers

With ``csi_delay`` / ``csi_error`` the observation is an aged / noisy estimate of the channel and the
reward is paid on the true channel, which ``info`` carries (``true_gain``, ``true_channel``, ...);
:func:`true_observation` (``obs``, ``info``) is the perfect-CSI observation of the same slot.
"""

from l2o_env.envs.beamforming import BeamformingEnv, BeamformingVectorEnv
from l2o_env.envs.core import true_observation
from l2o_env.envs.power_control import PowerControlEnv
from l2o_env.envs.vector import PowerControlVectorEnv

__all__ = ["PowerControlEnv", "PowerControlVectorEnv", "BeamformingEnv", "BeamformingVectorEnv", "true_observation"]
