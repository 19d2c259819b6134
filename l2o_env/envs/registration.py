"""Registers every power-control env ID with Gymnasium (run when ``l2o_env`` is imported).

All IDs live in one table (:data:`l2o_env.scenarios.ENV_IDS`); each gets the single env as
``entry_point``, the native batched env as ``vector_entry_point`` and ``max_episode_steps=100``.
``gym.make("l2o_env:PowerControl-IMAC-v0")`` imports the package first and so works too.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from l2o_env.scenarios import ENV_IDS

__all__ = ["register_envs", "MAX_EPISODE_STEPS", "ENTRY_POINTS"]

MAX_EPISODE_STEPS = 100

# env ID -> (single-env class, vector-env class), both in l2o_env.envs
ENTRY_POINTS = {
    "PowerControl-IC-v0": ("ICPowerControlEnv", "ICPowerControlVectorEnv"),
    "PowerControl-IMAC-v0": ("IMACPowerControlEnv", "IMACPowerControlVectorEnv"),
    "PowerControl-AdHoc-v0": ("AdHocPowerControlEnv", "AdHocPowerControlVectorEnv"),
    "PowerControl-D2D-v0": ("D2DPowerControlEnv", "D2DPowerControlVectorEnv"),
}
assert set(ENTRY_POINTS) == set(ENV_IDS), "every scenario needs an env class (and nothing else may be registered)"


def register_envs() -> None:
    """Register every ID once (idempotent: a re-import does not re-register)."""
    for env_id in ENV_IDS:
        if env_id in registry:
            continue
        single, vector = ENTRY_POINTS[env_id]
        register(
            id=env_id,
            entry_point=f"l2o_env.envs.power_control:{single}",
            vector_entry_point=f"l2o_env.envs.vector:{vector}",
            max_episode_steps=MAX_EPISODE_STEPS,
        )


register_envs()
