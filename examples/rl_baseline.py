"""Train an RL baseline (stable-baselines3 PPO) on the Gaussian interference channel, then compare it with
WMMSE, the learned MLP and the trivial baselines in the evaluation harness.

The per-link formulation (default) shares one policy across the K links, each acting on its own local view
(its channel, its strongest interferers and victims, the weights) and rewarded by its weighted rate minus
the interference it costs the others: Nasir and Guo, "Multi-agent deep reinforcement learning for dynamic
power allocation in wireless networks", IEEE JSAC 37(10), 2019, Sec. III. ``--formulation centralized`` trains
one policy over all K^2 gains instead (slower to learn; see benchmarks/RESULTS.md).

One file, top to bottom (CleanRL style): ``Args``, training (:meth:`solvers.rl.RLSolver.fit`, with the ratio to
WMMSE on a fixed batch every ``steps / 10`` slots), saving (SB3's zip), evaluation
(:func:`l2o_env.evaluation.evaluate`, ``--slots`` fresh slots).

    python examples/rl_baseline.py                       # per-link PPO, 30k slots (time: benchmarks/RESULTS.md)
    python examples/rl_baseline.py --formulation centralized --steps 300000 --solver-kwargs n_steps=256,batch_size=64

The same from the command line: ``l2o train ppo --env PowerControl-IC-v0 --env-kwargs num_links=10 --steps
100000 --solver-kwargs formulation=per_link,n_steps=16,batch_size=256 --out runs/ppo.zip`` then ``l2o eval
--env PowerControl-IC-v0 --env-kwargs num_links=10 --solvers wmmse,ppo,max_power --solver-kwargs
ppo.path=runs/ppo.zip``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass

# before torch loads: idle OpenMP threads that spin slow every other process on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.evaluation import evaluate  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402

#: SB3 settings per formulation (SB3's defaults for everything else)
DEFAULT_SB3 = {"per_link": {"n_steps": 16, "batch_size": 256}, "centralized": {"n_steps": 256, "batch_size": 64}}


@dataclass
class Args:
    env_id: str = "PowerControl-IC-v0"
    env_kwargs: str = "num_links=10"
    algorithm: str = "ppo"  # ppo, sac or td3
    formulation: str = "per_link"  # per_link or centralized
    steps: int = 30_000  # env slots, summed over the num_envs networks
    num_envs: int = 8
    seed: int = 0
    solver_kwargs: str = ""  # SB3 keywords, e.g. n_steps=16,batch_size=256 (replaces DEFAULT_SB3's for PPO)
    slots: int = 2000  # evaluation slots
    threads: int = 2
    out: str = "runs/rl_baseline.zip"


def parse_args() -> Args:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Args):
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    return Args(**vars(ap.parse_args()))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    env_kwargs = parse_kv(args.env_kwargs)
    sb3_kwargs = parse_kv(args.solver_kwargs) if args.solver_kwargs else (
        DEFAULT_SB3[args.formulation] if args.algorithm == "ppo" else {"gradient_steps": 8, "batch_size": 256})

    t0 = time.perf_counter()
    solver = solvers.make(args.algorithm, formulation=args.formulation, **sb3_kwargs)
    solver.fit(args.env_id, steps=args.steps, seed=args.seed, num_envs=args.num_envs, progress=True, **env_kwargs)
    train_s = time.perf_counter() - t0
    path = solver.save(args.out)
    hist = solver.meta.get("eval", {})
    curve = ", ".join(f"{s:,}: {100 * r:.1f} %" for s, r in zip(hist.get("step", []), hist.get("ratio", [])))
    print(f"trained {args.algorithm} ({args.formulation}) for {args.steps:,} slots in {train_s:.0f} s -> {path}")
    print(f"ratio to WMMSE during training (slots: %): {curve}")

    label = f"{args.algorithm} ({args.formulation})"
    compare = {"wmmse": ("wmmse", {}), label: (args.algorithm, {"path": str(path)}),
               "max_power": ("max_power", {}), "random_power": ("random_power", {})}
    if args.env_id == "PowerControl-IC-v0" and env_kwargs in ({"num_links": 10}, {}):
        compare["mlp (ic10)"] = ("mlp", {"pretrained": "ic10"})  # the shipped MLP of the same scenario
    result = evaluate(compare, args.env_id, env_kwargs, slots=args.slots, seed=args.seed + 1)
    print(result.table())


if __name__ == "__main__":
    main()
