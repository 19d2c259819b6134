"""Train WCGCN (Shen et al. 2021, eq. 11; Sec. V-C) unsupervised on an env's observations, save, evaluate.

Paper: Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource
Management: Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115,
2021, doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632.

CleanRL-style single file: ``Args``, then the run under ``__main__``. The shipped checkpoints were made
with (see benchmarks/RESULTS.md for the measured ratios):

    python examples/train_wcgcn.py --env-id PowerControl-D2D-v0 --num-links 50 \
        --steps 2000 --out solvers/checkpoints/wcgcn.pt
    python examples/train_wcgcn.py --env-id PowerControl-D2D-v0 --num-links 50 --env-kwargs '{"weights": "random"}' \
        --steps 2000 --out solvers/checkpoints/wcgcn-d2d-random.pt
    python examples/train_wcgcn.py --env-id PowerControl-IC-v0 --num-links 10 --env-kwargs '{"snr_db": 10}' \
        --steps 3000 --out solvers/checkpoints/wcgcn-ic10.pt
    python examples/train_wcgcn.py --env-id Beamforming-D2D-v0 --num-links 50 --steps 2000 --threads 2 \
        --eval-samples 2000 --out solvers/checkpoints/wcgcn-bf.pt

The same script trains the beamforming net (Sec. V-C) on a beamforming env: the fresh model takes the
family and the antenna number of the sampler's observations (``WCGCN.Config.problem``/``num_antennas``).

A run prints the validation ratio to WMMSE as it trains, then the ratio on ``eval_samples`` fresh
samples (another sampler seed) and the time per decision of WCGCN and WMMSE on the same batches (WMMSE:
``solvers.make("wmmse")``, full-power start, 100 iterations, tol 1e-3; scalar for power control, MIMO for
beamforming: the reference of ``LearnedSolver.ratio_to_wmmse``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# before torch loads: idle OpenMP threads that spin slow every other process on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import problem_of_obs  # noqa: E402
from solvers.training import Callback  # noqa: E402
from solvers.wcgcn import WCGCN  # noqa: E402


@dataclass
class Args:
    env_id: str = "PowerControl-D2D-v0"
    """registered env ID whose observations train the model"""
    num_links: int = 50
    """K of the training scenario"""
    env_kwargs: str = "{}"
    """JSON of further env keyword arguments, e.g. '{"snr_db": 10}' or '{"weights": "random"}'"""
    steps: int = 2000
    """Adam steps of config.batch_size samples each (fresh samples every step)"""
    seed: int = 0
    """torch seed of the weight initialisation"""
    sampler_seed: int = 1
    """seed of the training sampler (the evaluation sampler uses sampler_seed + 1000)"""
    edge_threshold: float = 300.0
    """metres: neighbours when positions are observed (paper 500, authors' code 300)"""
    max_neighbors: int = 32
    """strongest interferers per receiver when there are no positions"""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to lr_final)"""
    lr_final: float = 1e-4
    """learning rate at the last step"""
    batch_size: int = 64
    """training batch"""
    val_size: int = 512
    """validation batch (drawn once from the training sampler)"""
    val_every: int = 100
    """steps between validations (the best validated weights are kept)"""
    out: str = "runs/wcgcn.pt"
    """where to save the checkpoint"""
    eval_samples: int = 10_000
    """fresh samples of the final evaluation (0 skips it)"""
    eval_chunk: int = 1000
    """samples per evaluation batch (lower it for large K: a batch holds B K^2 gains)"""
    threads: int = 1
    """torch CPU threads"""


def parse_args(argv=None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Args):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args(argv)))


def evaluate(solver: WCGCN, sampler, samples: int, chunk: int) -> dict:
    """Ratio of mean WSRs to WMMSE (``solvers.make("wmmse")``: full-power start, 100 iterations, tol 1e-3) on
    fresh samples, and the wall time per decision of both on the same batches."""
    mine, ref, t_mine, t_ref, done = [], [], 0.0, 0.0, 0
    wmmse = solvers.make("wmmse")
    while done < samples:
        obs = sampler(min(chunk, samples - done))
        problem = problem_of_obs(obs)
        t0 = time.perf_counter()
        action = solver.act_batch(obs)
        t1 = time.perf_counter()
        action_ref = wmmse.act_batch(obs)
        t2 = time.perf_counter()
        mine.append(problem.weighted_sum_rate(obs, action))
        ref.append(problem.weighted_sum_rate(obs, action_ref))
        t_mine, t_ref, done = t_mine + t1 - t0, t_ref + t2 - t1, done + len(action)
    mine, ref = np.concatenate(mine), np.concatenate(ref)
    return {"samples": done, "ratio": float(mine.mean() / ref.mean()), "wsr": float(mine.mean()),
            "wsr_wmmse": float(ref.mean()), "ms_per_decision": 1e3 * t_mine / done,
            "wmmse_ms_per_decision": 1e3 * t_ref / done}


if __name__ == "__main__":
    args = parse_args()
    torch.set_num_threads(args.threads)
    env_kwargs = {"num_links": args.num_links, **json.loads(args.env_kwargs)}
    run_name = f"{args.env_id}__wcgcn__{args.seed}__{int(time.time())}"
    print(f"{run_name}\n" + "\n".join(f"  {k}: {v}" for k, v in dataclasses.asdict(args).items()))

    # ALGO LOGIC: unsupervised training on fresh samples of the env
    sampler = ObservationSampler(args.env_id, seed=args.sampler_seed, **env_kwargs)
    solver = WCGCN(edge_threshold=args.edge_threshold, max_neighbors=args.max_neighbors, lr=args.lr,
                   lr_final=args.lr_final, batch_size=args.batch_size, val_size=args.val_size,
                   val_every=args.val_every)
    solver.meta.update({"env_id": args.env_id, "env_kwargs": env_kwargs,
                        "command": shlex.join(["python", "examples/train_wcgcn.py", *sys.argv[1:]])})

    class Report(Callback):
        """One line per validation; the best weights so far also go to OUT.partial, so that an interrupted
        run leaves them on disk (the checkpoint's own meta is written by fit at the end)."""

        def on_validation(self, step, logs):
            print(f"step {step}: loss {logs['loss']:.4f} val/WMMSE {logs['val_ratio']:.4f} "
                  f"(best {logs['best_val_ratio']:.4f} at step {logs['best_step']})", flush=True)
            if logs["best_step"] == step:
                solver.meta.update({"steps": step, "val_ratio_to_wmmse": logs["val_ratio"]})
                solver.save(args.out + ".partial")

    hist = solver.fit(sampler, steps=args.steps, seed=args.seed, progress=True, callback=Report())
    print(f"trained {len(hist['step'])} steps in {hist['wall_time']:.0f} s ({hist['cpu_time']:.0f} s CPU); best validation ratio "
          f"{hist['best_val_ratio']:.4f} at step {hist['best_step']}")

    if args.eval_samples > 0:
        ev = evaluate(solver, ObservationSampler(args.env_id, seed=args.sampler_seed + 1000, **env_kwargs),
                      args.eval_samples, args.eval_chunk)
        solver.meta["eval"] = ev
        print(json.dumps(ev, indent=1))
    path = solver.save(args.out)
    Path(args.out + ".partial").unlink(missing_ok=True)
    print(f"saved {path}")
