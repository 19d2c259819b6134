"""Registers every env ID of the scenario table with Gymnasium (run when ``l2o_env`` is imported).

All IDs live in one table (:data:`l2o_env.scenarios.SCENARIOS`); each is registered with the env
classes of its problem family (:data:`ENTRY_POINTS`, one pair per family, not per ID), the scenario in
the spec's ``kwargs`` and ``max_episode_steps=100``::

    register(id=ID, entry_point="l2o_env.envs.power_control:PowerControlEnv",
             vector_entry_point="l2o_env.envs.vector:PowerControlVectorEnv",
             kwargs={"env_id": ID}, max_episode_steps=100)

``gym.make(ID, **kw)``, ``gym.make_vec(ID, num_envs=B)`` (``vector_entry_point``) and
``gym.make_vec(ID, num_envs=B, vectorization_mode="sync")`` all merge ``kw`` into those ``kwargs``, so
the class learns its scenario from ``env_id`` and ``env.spec.kwargs`` is ``{"env_id": ID, **kw}``; an
``env_id`` keyword that names another scenario is refused (see
:class:`~l2o_env.envs.power_control.ScenarioEnvMixin`). ``gym.make("l2o_env:PowerControl-IMAC-v0")``
imports the package first and so works too.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from gymnasium.envs.registration import register, registry

from l2o_env import scenarios

__all__ = ["register_envs", "MAX_EPISODE_STEPS", "ENTRY_POINTS"]

MAX_EPISODE_STEPS = 100

#: problem family -> (single-env entry point, native vector-env entry point); a new power-control
#: scenario needs nothing here, a new problem family adds one entry
ENTRY_POINTS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "power": ("l2o_env.envs.power_control:PowerControlEnv", "l2o_env.envs.vector:PowerControlVectorEnv"),
    "beamforming": ("l2o_env.envs.beamforming:BeamformingEnv", "l2o_env.envs.beamforming:BeamformingVectorEnv"),
})


def register_envs() -> None:
    """Register every scenario of the table once (idempotent: a re-import does not re-register)."""
    for env_id, scenario in scenarios.SCENARIOS.items():
        if env_id in registry:
            continue
        if scenario.problem not in ENTRY_POINTS:
            raise RuntimeError(f"{env_id}: no env class for problem {scenario.problem!r} (l2o_env.envs.registration.ENTRY_POINTS)")
        single, vector = ENTRY_POINTS[scenario.problem]
        register(
            id=env_id,
            entry_point=single,
            vector_entry_point=vector,
            kwargs={"env_id": env_id},
            max_episode_steps=MAX_EPISODE_STEPS,
        )


register_envs()
