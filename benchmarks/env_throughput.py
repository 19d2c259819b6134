"""Env throughput: single-env steps/s, native vector-env slots/s, and the numpy floor.

Measures, in one run (fixed seeds, best of ``--repeats`` timed runs each):

1. single env: ``gym.make("PowerControl-IC-v0", num_links=20)`` (with Gymnasium's default wrappers),
   random actions drawn up front, steps/s including the auto-resets every 100 steps;
2. vector env: ``gym.make_vec("PowerControl-IC-v0", num_envs=1024, num_links=20)`` (native batched
   env), network-slots/s = num_envs x steps/s;
3. the floor: drawing the same number of complex Gaussians per slot (K^2 = 400 CN(0,1) for the IC)
   with numpy, ``rng.standard_normal((1024, K, K, 2))``, as slots/s.

Targets (issue 3, on 2 cores): vector env >= 50 % of the floor's slot rate; single env >= 10,000
steps/s. Also reports the other IDs (single and vector) for reference when their models import.

    python benchmarks/env_throughput.py              # prints a markdown table
    python benchmarks/env_throughput.py --quick      # fewer steps (smoke run)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gymnasium as gym
import numpy as np

import l2o_env  # noqa: F401  (registers the IDs)
from l2o_env.scenarios import env_ids


def best_of(fn, repeats: int) -> tuple[float, float]:
    """The shortest wall time and the shortest CPU time of this process (s) over ``repeats`` calls of
    ``fn``. On a machine shared with other jobs the wall time includes time spent descheduled; the
    CPU time (``time.process_time``) is what a dedicated core would need (still inflated by cache and
    frequency effects of the other load)."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def rate(n: float, times: tuple[float, float]) -> tuple[float, float]:
    """``n`` events over (wall, cpu) seconds -> (wall rate, cpu rate)."""
    return n / times[0], n / times[1]


def single_env_rate(env_id: str, steps: int, repeats: int, unwrapped: bool = False, **kwargs) -> tuple[float, float]:
    """Steps/s of ``gym.make(env_id, **kwargs)`` (``.unwrapped`` if asked) under pre-drawn random actions."""
    env = gym.make(env_id, **kwargs)
    if unwrapped:
        env = env.unwrapped
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(min(steps, 1000))]
    n_act = len(actions)

    def run():
        step, reset = env.step, env.reset
        for t in range(steps):
            _, _, term, trunc, _ = step(actions[t % n_act])
            if term or trunc:
                reset()

    run()  # warm-up (first-step checks of the wrappers)
    return rate(steps, best_of(run, repeats))


def vector_env_rate(env_id: str, num_envs: int, steps: int, repeats: int, **kwargs) -> tuple[float, float]:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(4)]

    def run():
        step = envs.step
        for t in range(steps):
            step(actions[t % 4])

    run()
    return rate(num_envs * steps, best_of(run, repeats))


def floor_rate(num_envs: int, k: int, steps: int, repeats: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)

    def run():
        for _ in range(steps):
            rng.standard_normal((num_envs, k, k, 2))

    return rate(num_envs * steps, best_of(run, repeats))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, numbers are noisy)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement; the best is kept")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--all-ids", action="store_true", help="also measure every other env ID")
    args = parser.parse_args()
    single_steps = 2000 if args.quick else 20000
    vec_steps = 5 if args.quick else 50
    k = 20

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cpu_name()}, {ncpu} cores usable; load average {os.getloadavg()}")
    print(f"numpy {np.__version__}, gymnasium {gym.__version__}, python {platform.python_version()}\n")

    single = single_env_rate("PowerControl-IC-v0", single_steps, args.repeats, num_links=k)
    single_raw = single_env_rate("PowerControl-IC-v0", single_steps, args.repeats, unwrapped=True, num_links=k)
    cartpole = single_env_rate("CartPole-v1", single_steps, args.repeats)
    vec = vector_env_rate("PowerControl-IC-v0", args.num_envs, vec_steps, args.repeats, num_links=k)
    vec_jakes = vector_env_rate("PowerControl-IC-v0", args.num_envs, vec_steps, args.repeats, num_links=k, speed=1.0)
    floor = floor_rate(args.num_envs, k, vec_steps, args.repeats)

    def row(name, r, unit, target="", met=""):
        print(f"| {name} | {r[0]:,.0f} {unit} | {r[1]:,.0f} {unit} | {target} | {met} |")

    ratio = (vec[0] / floor[0], vec[1] / floor[1])
    print("| measurement | wall-clock rate | CPU-time rate | target | met (wall / CPU) |")
    print("|---|---|---|---|---|")
    row(f"single env IC K={k} (gym.make, random actions)", single, "steps/s", ">= 10,000",
        f"{single[0] >= 1e4} / {single[1] >= 1e4}")
    row(f"vector env IC K={k}, B={args.num_envs}", vec, "slots/s", ">= 50 % of floor",
        f"{ratio[0] >= 0.5} / {ratio[1] >= 0.5}")
    row(f"floor: numpy CN(0,1) draws, {k * k} per slot", floor, "slots/s")
    print(f"| vector / floor | {ratio[0]:.0%} | {ratio[1]:.0%} | >= 50 % | {ratio[0] >= 0.5} / {ratio[1] >= 0.5} |")
    row("(ref) single env without Gymnasium's wrappers", single_raw, "steps/s")
    row("(ref) vector env, speed=1 m/s (Jakes: CN(0,1) innovations)", vec_jakes, "slots/s",
        f"{vec_jakes[0] / floor[0]:.0%} / {vec_jakes[1] / floor[1]:.0%} of floor")
    row("(ref) CartPole-v1 via gym.make, same loop", cartpole, "steps/s")

    if args.all_ids:
        print(f"\n| env ID (defaults) | single env steps/s (wall / CPU) | vector env slots/s, B={args.num_envs} (wall / CPU) |")
        print("|---|---|---|")
        for env_id in env_ids(problem="power"):
            s = single_env_rate(env_id, single_steps // 4, max(1, args.repeats // 2))
            v = vector_env_rate(env_id, args.num_envs, max(2, vec_steps // 5), max(1, args.repeats // 2))
            print(f"| {env_id} | {s[0]:,.0f} / {s[1]:,.0f} | {v[0]:,.0f} / {v[1]:,.0f} |")


if __name__ == "__main__":
    main()
