"""Soak test (issue 16): 10^6 slots through the native vector env with mobility, aged CSI and warm-started WMMSE.

``--num-envs`` networks (default 1,000) are stepped ``--steps`` times (default 1,000) in one
:class:`~l2o_env.envs.vector.PowerControlVectorEnv` (``gym.make_vec``, ``SAME_STEP`` autoreset), with users
moving at ``--speed`` m/s, ``--slot-duration`` s slots and ``--csi-delay`` slots of CSI age; WMMSE with a warm
start (``solvers.make("wmmse", init="warm")``: each slot starts from the previous slot's powers, floored at
0.3 pmax) decides every slot on the aged observation, and is ``reset()`` when the episodes end (every
``--episode-steps`` slots; the sub-envs start together, so they end together), as the evaluation harness
does at every episode start.

Recorded: the resident set size (``VmRSS`` of ``/proc/self/status``, and the peak ``ru_maxrss``) before the
first step, after it (one-off allocations), after each tenth of the run and at the end; NaN/inf in the
rewards, the actions and the per-link rates (checked every step); clipped action entries; WMMSE's mean
iterations; and the mean reward per slot (bit/s/Hz, averaged over the sub-envs and the block's slots) of each
tenth, with its 95 % half-width over the sub-envs (each sub-env's block mean is one unit). With
``--episode-steps`` equal to a tenth of the run, each block is one fresh episode per sub-env (new layouts),
so the block means are independent draws of one distribution and should agree within their intervals.

Checks (exit status 1 when one fails): no non-finite value; RSS after the last block at most
``--max-rss-growth-mb`` above RSS after the first block; every block mean within 4 of its standard errors of
the mean over all blocks. The tables are printed as markdown (benchmarks/RESULTS.md, "Soak test (issue 16)").

    OMP_NUM_THREADS=1 python benchmarks/soak.py                      # 1,000 envs x 1,000 steps, IMAC
    python benchmarks/soak.py --num-envs 100 --steps 200             # a quick look
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import time

import l2o_env  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads, registers the envs)
import gymnasium as gym
import numpy as np
import torch

import solvers


def rss_mb() -> float:
    """Current resident set size in MiB (``VmRSS``; the peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="PowerControl-IMAC-v0", help="power-control env ID (default IMAC, 3 cells x 4 users)")
    p.add_argument("--num-envs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=1000, help="vector steps (slots per sub-env)")
    p.add_argument("--speed", type=float, default=30.0, help="m/s")
    p.add_argument("--slot-duration", type=float, default=1e-3, help="s (1 ms at 30 m/s and 2.4 GHz: rho = 0.51)")
    p.add_argument("--csi-delay", type=int, default=1)
    p.add_argument("--episode-steps", type=int, default=100, help="slots per episode (0: never truncate)")
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.steps % args.blocks:
        raise SystemExit(f"soak: --steps ({args.steps}) must be a multiple of --blocks ({args.blocks})")
    block_len = args.steps // args.blocks
    episode = args.episode_steps or None
    envs = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode="vector_entry_point",
                        max_episode_steps=episode, speed=args.speed, slot_duration=args.slot_duration,
                        csi_delay=args.csi_delay)
    rho = envs.unwrapped.fading_correlation if hasattr(envs.unwrapped, "fading_correlation") else float("nan")
    wmmse = solvers.make("wmmse", init="warm")
    obs, _ = envs.reset(seed=args.seed)
    rss = [("start (env built and reset)", 0, rss_mb())]

    bad = {"reward": 0, "action": 0, "rates": 0}
    blocks = []
    per_env = np.zeros(args.num_envs)  # sum of rewards of the current block, per sub-env
    iters = clipped = 0.0
    t_block = time.perf_counter()
    t_start = t_block
    for step in range(1, args.steps + 1):
        action = wmmse.act_batch(obs)
        iters += float(np.mean(wmmse.last_iterations))
        bad["action"] += int((~np.isfinite(action)).sum())
        obs, reward, terminated, truncated, info = envs.step(action.astype(np.float32))
        bad["reward"] += int((~np.isfinite(reward)).sum())
        bad["rates"] += int((~np.isfinite(info["rates"])).sum())
        clipped += float(info["clipped"].sum())
        per_env += np.where(np.isfinite(reward), reward, 0.0)
        if truncated.any():
            if not truncated.all():
                raise RuntimeError("soak: sub-envs ended their episodes at different steps; the warm start is "
                                   "reset for the whole batch, so they must end together")
            wmmse.reset()
        if step == 1:
            rss.append(("after the first step", 1, rss_mb()))
        if step % block_len == 0:
            now = time.perf_counter()
            means = per_env / block_len
            blocks.append({"block": len(blocks) + 1, "steps": f"{step - block_len + 1}-{step}",
                           "mean": float(means.mean()),
                           "se": float(means.std(ddof=1) / math.sqrt(args.num_envs)) if args.num_envs > 1 else float("nan"),
                           "iters": iters / block_len, "clipped": clipped,
                           "seconds": now - t_block, "rss": rss_mb()})
            rss.append((f"after block {len(blocks)}", step, blocks[-1]["rss"]))
            print(f"block {len(blocks)}/{args.blocks}: mean reward {blocks[-1]['mean']:.4f}, "
                  f"{blocks[-1]['seconds']:.1f} s, RSS {blocks[-1]['rss']:.1f} MiB", file=sys.stderr, flush=True)
            per_env[:] = 0.0
            iters = clipped = 0.0
            t_block = now
    wall = time.perf_counter() - t_start
    rss.append(("end", args.steps, rss_mb()))

    slots = args.num_envs * args.steps
    overall = float(np.mean([b["mean"] for b in blocks]))
    worst_z = max(abs(b["mean"] - overall) / b["se"] for b in blocks) if all(b["se"] > 0 for b in blocks) else float("nan")
    worst_rel = max(abs(b["mean"] - overall) / abs(overall) for b in blocks)
    growth = blocks[-1]["rss"] - blocks[0]["rss"]
    nonfinite = sum(bad.values())
    checks = {
        "no NaN/inf in rewards, actions, rates": nonfinite == 0,
        f"RSS growth after block 1 <= {args.max_rss_growth_mb:g} MiB": growth <= args.max_rss_growth_mb,
        "every block mean within 4 SE of the overall mean": bool(worst_z <= 4.0),
    }

    print(f"\n{args.env}: {args.num_envs} sub-envs x {args.steps} steps = {slots:,} slots; speed {args.speed:g} m/s, "
          f"slot {args.slot_duration:g} s (rho {rho:.3f}), csi_delay {args.csi_delay}, "
          f"{f'episodes of {episode} slots' if episode else 'one episode (never truncated)'}, WMMSE init='warm'"
          f"{' (reset at episode ends)' if episode else ''}; seed {args.seed}; "
          f"{args.threads} torch thread(s); {wall:.1f} s wall ({1e6 * wall / slots:.1f} us/slot); "
          f"torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}\n")
    print("| block | steps | mean reward (bit/s/Hz) +/- 95% | vs overall | WMMSE iterations | clipped | s | RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for b in blocks:
        print(f"| {b['block']} | {b['steps']} | {b['mean']:.4f} +/- {1.96 * b['se']:.4f} | "
              f"{100 * (b['mean'] / overall - 1):+.2f} % | {b['iters']:.1f} | {b['clipped']:.0f} | "
              f"{b['seconds']:.1f} | {b['rss']:.1f} |")
    print(f"\noverall mean reward {overall:.4f} bit/s/Hz per slot; largest block deviation {100 * worst_rel:.2f} % "
          f"({worst_z:.2f} standard errors)\n")
    print("| RSS (MiB) | at step | VmRSS |")
    print("|---|---|---|")
    for label, step, value in rss:
        print(f"| {label} | {step} | {value:.1f} |")
    print(f"\npeak RSS (ru_maxrss) {peak_rss_mb():.1f} MiB; RSS growth from block 1 to the end {growth:+.1f} MiB; "
          f"non-finite values: rewards {bad['reward']}, actions {bad['action']}, rates {bad['rates']}\n")
    for name, ok in checks.items():
        print(f"- {'PASS' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
