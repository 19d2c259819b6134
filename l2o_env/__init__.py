"""l2o-env: Gymnasium environments for learning-to-optimize radio resource management.

Importing the package registers every env ID with Gymnasium (see :mod:`l2o_env.envs.registration`)
and sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it (see :mod:`l2o_env._threads`).
"""

from l2o_env import _threads  # noqa: F401  (first: sets OMP_WAIT_POLICY before anything loads torch)

from importlib.metadata import PackageNotFoundError, version as _version  # noqa: E402

try:
    __version__ = _version("l2o-env")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

from l2o_env import rates  # noqa: E402,F401

from l2o_env.envs import registration as _registration  # noqa: E402,F401  (registers the env IDs)
