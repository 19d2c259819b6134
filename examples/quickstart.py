"""Quickstart: max power vs random power on the IMAC env (Sun et al. 2018, Sec. V-A).

Runs each policy for 200 slots from the same seed (so both see the same channels: the env's
randomness does not depend on the actions) and prints the average weighted sum rate in bit/s/Hz.

    python examples/quickstart.py
"""

import gymnasium as gym
import numpy as np

import l2o_env  # noqa: F401  (registers the PowerControl-* IDs)

SLOTS = 200
SEED = 0


def average_wsr(policy) -> float:
    """Mean reward of ``policy(obs, rng) -> powers (W)`` over SLOTS slots of PowerControl-IMAC-v0."""
    env = gym.make("PowerControl-IMAC-v0")  # N = 3 cells, K = 12 users, pmax = noise = 1
    rng = np.random.default_rng(SEED)
    obs, _ = env.reset(seed=SEED)
    total = 0.0
    for _ in range(SLOTS):
        obs, reward, terminated, truncated, info = env.step(policy(obs, rng))
        total += reward
        if terminated or truncated:  # episodes are 100 slots long
            obs, _ = env.reset()
    env.close()
    return total / SLOTS


def max_power(obs, rng):
    return obs["pmax"]


def random_power(obs, rng):
    return (rng.random(obs["pmax"].shape) * obs["pmax"]).astype(np.float32)


if __name__ == "__main__":
    print(f"PowerControl-IMAC-v0, {SLOTS} slots, seed {SEED}: average weighted sum rate (bit/s/Hz)")
    print(f"  max power    {average_wsr(max_power):7.3f}")
    print(f"  random power {average_wsr(random_power):7.3f}")
