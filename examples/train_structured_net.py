"""Train the structured network (Song et al. 2023) on the multi-cell MIMO downlink, save it, evaluate it.

Paper: Q. Song, G. Liu, H. Xu, "Learning to Optimize Non-Convex Sum-Rate Maximization Problems", SynS & ML
workshop, ICML 2023.

One file, top to bottom (CleanRL style): ``Args``, the sampler, training (minus the sum rate, AdamW 1e-3
decaying to 1e-5), evaluation on fresh samples: ratio of means to WMMSE with our defaults (100 iterations,
tol 1e-3 bit/s/Hz), to WMMSE as the paper runs it (at most 50 iterations, tol 0.01), and the classical
precoders' ratios beside it.

    # the shipped checkpoints (small scale, low and high interference; widths below the paper's, see
    # benchmarks/RESULTS.md)
    python examples/train_structured_net.py --env-kwargs interference=low --steps 1500 --threads 1 \
        --solver-kwargs batch_size=64,left_hidden=128,precoder_embed=64,channel_embed=64,init_hidden=128 \
        --out solvers/checkpoints/structured_net.pt
    # interference=high ... --out solvers/checkpoints/structured_net-small-high.pt

The exact command is stored in the checkpoint's ``meta["command"]``; ``l2o train structured_net --env
Beamforming-IBC-v0 --env-kwargs scale=moderate`` trains the other scales.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from dataclasses import dataclass

# before torch loads: idle OpenMP threads that spin slow every other process on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from solvers.structured_net import StructuredNet  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402


@dataclass
class Args:
    env_id: str = "Beamforming-IBC-v0"
    """scenario (a beamforming env ID)"""
    env_kwargs: str = ""
    """env keyword arguments, KEY=VALUE,... (e.g. scale=small,interference=high)"""
    solver_kwargs: str = ""
    """StructuredNetConfig fields, KEY=VALUE,... (e.g. batch_size=64,left_hidden=128)"""
    steps: int | None = None
    """gradient steps (default: the config's `steps`)"""
    seed: int = 0
    """seed of the training sampler and of torch"""
    eval_seed: int = 1_000_003
    """seed of the evaluation sampler (fresh samples)"""
    eval_samples: int = 2_000
    """samples of the final evaluation"""
    threads: int = 2
    """torch CPU threads"""
    out: str = ""
    """checkpoint path (default runs/{env}__structured_net__{seed}__{time}.pt)"""
    progress: bool = True
    """tqdm progress bar on stderr"""
    checkpoint: str = ""
    """evaluate this checkpoint instead of training one (scenario from its meta unless --env-kwargs is given)"""


def parse_args(argv=None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            typ = int if f.type in ("int", "int | None") else str
            p.add_argument(flag, type=typ, default=f.default)
    return Args(**vars(p.parse_args(argv)))


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env_kwargs = parse_kv(args.env_kwargs)
    if args.checkpoint:
        net = StructuredNet.load(args.checkpoint)
        if not args.env_kwargs and net.meta.get("env_id") == args.env_id:
            env_kwargs = dict(net.meta.get("env_kwargs") or {})
        print(f"loaded {args.checkpoint}, trained by: {net.meta.get('command')}")
    else:
        sampler = ObservationSampler(args.env_id, seed=args.seed, **env_kwargs)
        net = StructuredNet(**parse_kv(args.solver_kwargs))
        hist = net.fit(sampler, steps=args.steps, seed=args.seed, progress=args.progress)
        net.meta["command"] = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
        out = args.out or f"runs/{args.env_id}__structured_net__{args.seed}__{int(time.time())}.pt"
        net.save(out)
        print(f"saved {out}: best validation ratio {hist['best_val_ratio']:.4f} at step {hist['best_step']}, "
              f"{hist['wall_time']:.0f} s wall, {net.meta['steps']} steps")
    print(f"parameters: {sum(p.numel() for p in net.model.parameters()):,}")

    # evaluation on fresh samples
    problem = get_problem("beamforming")
    obs = ObservationSampler(args.env_id, seed=args.eval_seed, **env_kwargs)(args.eval_samples)
    rows = {
        "wmmse (default: 100 iterations, tol 1e-3)": solvers.make("wmmse"),
        "wmmse (paper: 50 iterations, tol 0.01)": solvers.make("wmmse", max_iter=50, tol=0.01),
        "rzf": solvers.make("rzf"),
        "mrt": solvers.make("mrt"),
        "structured_net": net,
    }
    wsr = {name: float(problem.weighted_sum_rate(obs, s.act_batch(obs)).mean()) for name, s in rows.items()}
    ref, paper = wsr["wmmse (default: 100 iterations, tol 1e-3)"], wsr["wmmse (paper: 50 iterations, tol 0.01)"]
    shown = ",".join(f"{k}={v}" for k, v in env_kwargs.items())
    print(f"{args.eval_samples} fresh samples of {args.env_id}({shown}), sampler seed {args.eval_seed}:")
    for name, value in wsr.items():
        print(f"  {name:45s} WSR {value:8.4f} bit/s/Hz   ratio to WMMSE {value / ref:.4f}   "
              f"to the paper's WMMSE {value / paper:.4f}")
    return wsr


if __name__ == "__main__":
    main()
