"""A movie of a mobility episode: moving links, aged channel state, a solver deciding every slot.

One file, top to bottom (CleanRL style): ``Args``, the env with ``render_mode="rgb_array"``, the episode
loop, the GIF. The default is the ad hoc network of Chowdhury et al. 2021 (UWMMSE, Sec. IV) with 10 pairs
(transmitters in a 20 m x 20 m square) moving at 30 m/s, 1 ms slots and ``csi_delay=1``: the solver sees
the channel of one slot earlier (fading correlation rho = J0(2 pi f_d T) ~ 0.51 at 2.4 GHz) and is scored
on the current one. At 30 m/s a pair moves 3 cm per slot, so the movie keeps one frame every ``--every``
slots: 300 slots (0.3 s, 9 m of travel) give 100 frames. Each frame is the env's own picture: links
coloured by the power WMMSE gave them, their width the rate they got, the layout of the true current slot.

It also reports what the aged channel state costs: the same solver on the true current channel (the genie,
from ``info``'s ``true_*`` keys, scored on the same slots but never sent to the env) against the one that
acted on the observation.

    python examples/mobility_movie.py                              # runs/mobility.gif, about a minute on 2 CPU cores
    python examples/mobility_movie.py --env-id PowerControl-IMAC-v0 --env-kwargs num_links=12 --speed 30 \\
        --slot-duration 0.01 --out runs/imac.gif
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import l2o_env  # noqa: F401  (registers the env IDs)
import solvers
from l2o_env.envs import true_observation
from l2o_env.envs.render import save_gif
from l2o_env.evaluation import parse_kwargs  # KEY=VALUE,... as `l2o` parses it


@dataclass
class Args:
    env_id: str = "PowerControl-AdHoc-v0"
    """the scenario (see `l2o list`); the geometric ones draw their layout, the IC and MISO a heat map"""
    env_kwargs: str = "num_links=10"
    """other env keywords, KEY=VALUE,... (e.g. num_links=10,topology=random)"""
    speed: float = 30.0
    """user speed in m/s"""
    slot_duration: float = 0.001
    """seconds per slot"""
    csi_delay: int = 1
    """slots between the observed channel and the one the action is scored on"""
    solver: str = "wmmse"
    """a registered solver (`l2o list`) that acts on every observation"""
    slots: int = 300
    """slots of the episode"""
    every: int = 3
    """one frame every this many slots (plus the first)"""
    fps: int = 10
    """frames per second of the GIF"""
    seed: int = 0
    """env seed"""
    genie: bool = True
    """also run the solver on the true current channel and report the rate that aging loses"""
    out: str = "runs/mobility.gif"
    """where the GIF goes"""


def parse_args(argv=None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    types = {"int": int, "float": float, "str": str}
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=types[f.type], default=f.default)
    return Args(**vars(p.parse_args(argv)))


def main(args: Args) -> Path:
    if args.slots < 1 or args.every < 1:
        raise SystemExit("--slots and --every must be >= 1")
    env = gym.make(args.env_id, render_mode="rgb_array", speed=args.speed, slot_duration=args.slot_duration,
                   csi_delay=args.csi_delay, max_episode_steps=args.slots, **parse_kwargs(args.env_kwargs))
    problem = env.unwrapped.problem
    solver = solvers.make(args.solver)
    print(f"{args.env_id}: {args.speed:g} m/s, {args.slot_duration * 1e3:g} ms slots "
          f"({args.speed * args.slot_duration * 100:.2g} cm per slot), rho = {env.unwrapped.fading_correlation:.3f}, "
          f"csi_delay={args.csi_delay}; {args.solver} acts on the observed channel")

    start = time.perf_counter()
    obs, info = env.reset(seed=args.seed)
    frames = [env.render()]
    aged, genie = [], []
    for t in range(1, args.slots + 1):
        action = solver.act(obs)
        if args.genie:  # the same solver on the channel the action is scored on (not sent to the env)
            truth = true_observation(obs, info)
            genie.append(float(problem.weighted_sum_rate(truth, solver.act(truth))))
        obs, reward, terminated, truncated, info = env.step(action)
        aged.append(reward)
        if t % args.every == 0:
            frames.append(env.render())
        if terminated or truncated:
            break
    env.close()

    out = Path(args.out)
    save_gif(frames, out, fps=args.fps)
    print(f"{len(aged)} slots, {len(frames)} frames in {time.perf_counter() - start:.1f} s -> {out} "
          f"({out.stat().st_size / 1e6:.2f} MB)")
    line = f"mean weighted sum rate: {args.solver} on aged CSI {np.mean(aged):.2f} bit/s/Hz"
    if genie:
        line += f", on the true channel {np.mean(genie):.2f} ({100 * np.mean(aged) / np.mean(genie):.1f} %)"
    print(line)
    return out


if __name__ == "__main__":
    main(parse_args())
