"""Train the unfolded WMMSE (Pellaco et al. 2020) on the MISO downlink, save it, evaluate it.

Paper: L. Pellaco, M. Bengtsson, J. Jaldén, "Deep unfolding of the weighted MMSE beamforming algorithm",
arXiv:2006.08448, 2020.

One file, top to bottom (CleanRL style): ``Args``, the sampler, training (loss (14), Adam 1e-3, batches of
100), evaluation on fresh samples (sampler seed ``--eval-seed``): the weighted sum rates of WMMSE with its
defaults, of WMMSE run to convergence (``--converged``, the denominator of every ratio), of WMMSE truncated
at ``--truncated`` iterations (default: ``num_layers``), of ``pgd_wmmse`` (the same network with step
sizes 1) and of the trained network; and the trained network's margin over each truncated WMMSE, paired
over the same samples, with its 95 % interval.

    # the shipped checkpoints (10 dB is the env's default SNR)
    python examples/train_unfolded_wmmse.py --steps 15000 --no-progress --out solvers/checkpoints/unfolded_wmmse.pt
    python examples/train_unfolded_wmmse.py --env-kwargs snr_db=5 --steps 8000 --threads 1 --no-progress \
        --out solvers/checkpoints/unfolded_wmmse-snr5.pt
    python examples/train_unfolded_wmmse.py --env-kwargs snr_db=20 --steps 8000 --threads 1 --no-progress \
        --out solvers/checkpoints/unfolded_wmmse-snr20.pt

    # evaluate a checkpoint without training (its scenario from its meta), beside WMMSE truncated at 2 and 4
    python examples/train_unfolded_wmmse.py --checkpoint solvers/checkpoints/unfolded_wmmse-snr20.pt --truncated 2,4

Training times and the measured ratios are in ``benchmarks/RESULTS.md``. The exact command is stored in the
checkpoint's ``meta["command"]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no spinning OpenMP threads

import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import get_problem  # noqa: E402
from solvers.unfolded_wmmse import UnfoldedWMMSE  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402


@dataclass
class Args:
    env_id: str = "Beamforming-MISO-v0"
    """scenario (a beamforming env ID)"""
    env_kwargs: str = ""
    """env keyword arguments, KEY=VALUE,... (e.g. snr_db=20)"""
    solver_kwargs: str = ""
    """UnfoldedWMMSEConfig fields, KEY=VALUE,... (e.g. num_layers=4,pgd_steps=4)"""
    steps: int | None = None
    """gradient steps (default: the config's `steps`)"""
    seed: int = 0
    """seed of the training sampler and of torch"""
    eval_seed: int = 1_000_003
    """seed of the evaluation sampler (fresh samples)"""
    eval_samples: int = 2_000
    """samples of the final evaluation"""
    threads: int = 4
    """torch CPU threads"""
    out: str = ""
    """checkpoint path (default runs/{env}__unfolded_wmmse__{seed}__{time}.pt)"""
    progress: bool = True
    """tqdm progress bar on stderr"""
    checkpoint: str = ""
    """evaluate this checkpoint instead of training one (scenario from its meta unless --env-kwargs is given)"""
    truncated: str = ""
    """iterations of the truncated WMMSE rows, comma-separated (default: the network's num_layers)"""
    converged: str = "max_iter=2000,tol=1e-7"
    """wmmse keyword arguments of the converged reference (the denominator of the ratios)"""


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
        net = UnfoldedWMMSE.load(args.checkpoint)
        if not args.env_kwargs and net.meta.get("env_id") == args.env_id:
            env_kwargs = dict(net.meta.get("env_kwargs") or {})
        print(f"loaded {args.checkpoint} (L = {net.num_layers}, K = {net.pgd_steps}), trained by: "
              f"{net.meta.get('command')}")
    else:
        sampler = ObservationSampler(args.env_id, seed=args.seed, **env_kwargs)
        net = UnfoldedWMMSE(**parse_kv(args.solver_kwargs))
        hist = net.fit(sampler, steps=args.steps, seed=args.seed, progress=args.progress)
        net.meta["command"] = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
        out = args.out or f"runs/{args.env_id}__unfolded_wmmse__{args.seed}__{int(time.time())}.pt"
        net.save(out)
        print(f"saved {out}: best validation ratio {hist['best_val_ratio']:.4f} at step {hist['best_step']}, "
              f"{hist['wall_time']:.0f} s")
    print("step sizes gamma (layers x PGD steps):\n", net.step_sizes.round(4))

    # evaluation on fresh samples
    problem = get_problem("beamforming")
    obs = ObservationSampler(args.env_id, seed=args.eval_seed, **env_kwargs)(args.eval_samples)
    iterations = [int(n) for n in args.truncated.split(",") if n.strip()] or [net.num_layers]
    converged = parse_kv(args.converged)
    rows = {
        "wmmse (default)": solvers.make("wmmse"),
        f"wmmse ({args.converged})": solvers.make("wmmse", **converged),
        **{f"truncated_wmmse (iterations={n})": solvers.make("truncated_wmmse", iterations=n) for n in iterations},
        "pgd_wmmse": solvers.make("pgd_wmmse", num_layers=net.num_layers, pgd_steps=net.pgd_steps),
        "unfolded_wmmse": net,
    }
    per_sample = {name: problem.weighted_sum_rate(obs, s.act_batch(obs)) for name, s in rows.items()}
    wsr = {name: float(value.mean()) for name, value in per_sample.items()}
    ref, default = wsr[f"wmmse ({args.converged})"], wsr["wmmse (default)"]
    shown = ",".join(f"{k}={v}" for k, v in env_kwargs.items())
    print(f"{args.eval_samples} fresh samples of {args.env_id}({shown}), sampler seed {args.eval_seed}:")
    for name, value in wsr.items():
        print(f"  {name:40s} WSR {value:.4f} bit/s/Hz   ratio to converged WMMSE {value / ref:.4f}"
              f"   to default WMMSE {value / default:.4f}")
    for n in iterations:  # paired over the same samples
        diff = per_sample["unfolded_wmmse"] - per_sample[f"truncated_wmmse (iterations={n})"]
        half = 1.96 * diff.std(ddof=1) / len(diff) ** 0.5
        print(f"  unfolded_wmmse - truncated_wmmse ({n}): {diff.mean():+.4f} +/- {half:.4f} bit/s/Hz (95 %), "
              f"unfolded ahead on {(diff > 0).mean():.1%} of the samples")
    return wsr


if __name__ == "__main__":
    main()
