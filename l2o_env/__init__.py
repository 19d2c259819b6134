"""l2o-env: Gymnasium environments for learning-to-optimize radio resource management.

Importing the package registers every env ID with Gymnasium (see :mod:`l2o_env.envs.registration`).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("l2o-env")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+local"

from l2o_env import rates  # noqa: E402,F401

try:  # the envs are filled in by the foundation work; keep the package importable while they grow
    from l2o_env.envs import registration as _registration  # noqa: E402,F401
except ImportError as _exc:  # pragma: no cover - only while the envs package is incomplete
    if "l2o_env.envs" not in str(_exc) and "registration" not in str(_exc):
        raise
