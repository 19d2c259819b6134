"""Train the unfolded WMMSE (Pellaco et al. 2020) on the MISO downlink, save it, evaluate it.

Paper: L. Pellaco, M. Bengtsson, J. Jaldén, "Deep unfolding of the weighted MMSE beamforming algorithm",
arXiv:2006.08448, 2020.

One file, top to bottom (CleanRL style): ``Args``, the sampler, training (loss (14), Adam 1e-3, batches of
100), evaluation on fresh samples: ratio of means to converged WMMSE, and the weighted sum rates of
WMMSE truncated at ``num_layers`` iterations and of ``pgd_wmmse`` (the same network with step sizes 1).

    # the shipped checkpoint
    python examples/train_unfolded_wmmse.py --steps 15000 --no-progress --out solvers/checkpoints/unfolded_wmmse.pt

It takes ~9 min on two loaded CPU cores; on 2,000 fresh samples at 10 dB: 0.979 of converged WMMSE,
WMMSE truncated at 4 iterations 0.976, pgd_wmmse (step sizes 1) 0.418.

The exact command is stored in the checkpoint's ``meta["command"]``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass

import torch

import solvers
from l2o_env.data import ObservationSampler
from l2o_env.problems import get_problem
from solvers.unfolded_wmmse import UnfoldedWMMSE


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


def parse_kv(text: str) -> dict:
    """``"a=1,b=x"`` -> ``{"a": 1, "b": "x"}`` (values as Python literals where they parse)."""
    out = {}
    for item in filter(str.strip, text.split(",")):
        key, sep, val = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(val.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = val.strip()
    return out


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
    rows = {
        "wmmse (converged)": solvers.make("wmmse"),
        f"truncated_wmmse (iterations={net.num_layers})": solvers.make("truncated_wmmse", iterations=net.num_layers),
        "pgd_wmmse": solvers.make("pgd_wmmse", num_layers=net.num_layers, pgd_steps=net.pgd_steps),
        "unfolded_wmmse": net,
    }
    wsr = {name: float(problem.weighted_sum_rate(obs, s.act_batch(obs)).mean()) for name, s in rows.items()}
    ref = wsr["wmmse (converged)"]
    print(f"{args.eval_samples} fresh samples of {args.env_id}({args.env_kwargs}):")
    for name, value in wsr.items():
        print(f"  {name:34s} WSR {value:.4f} bit/s/Hz   ratio to WMMSE {value / ref:.4f}")
    return wsr


if __name__ == "__main__":
    main()
