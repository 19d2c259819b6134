"""Train the supervised MLP of Sun et al. 2018 (Sec. IV) on WMMSE labels, save it, evaluate it.

Paper: H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training Deep
Neural Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412.

One file, top to bottom (CleanRL style): ``Args``, the scenario sampler, training, evaluation on fresh
samples (ratio of means to WMMSE, with and without the paper's 0/1 rounding, and the time per
decision against WMMSE's on the same batch).

    # the shipped checkpoints (solvers/checkpoints/), ~10 min each on 2 CPU cores:
    python examples/train_mlp.py --env-id PowerControl-IMAC-v0 --out solvers/checkpoints/mlp.pt --preset imac
    python examples/train_mlp.py --env-id PowerControl-IC-v0 --env-kwargs num_links=10 \\
        --out solvers/checkpoints/mlp-ic10.pt --preset ic
    # the paper's own settings for any run: --preset paper (raw magnitudes, fixed 1e6 pool ...)
    # any config field: --solver-kwargs hidden=(200,80,80),transform=log

The exact command is stored in the checkpoint's ``meta["command"]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

# before torch loads: idle OpenMP threads that spin slow every other process on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402
from solvers.learned import wmmse_reference  # noqa: E402
from solvers.mlp import MLPSolver  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402

# Solver settings of the shipped checkpoints; "paper" is Sun et al.'s setup as far as it is stated.
PRESETS = {
    "paper": {},
    # Gaussian IC: log magnitudes, batches of 250 (4x the updates per CPU second; 10 min at batch 1000
    # reached 95.6 % rounded), fresh WMMSE-labelled pools of 100k samples, 2 epochs each.
    "ic": dict(transform="log", round_output=True, batch_size=250, steps=40_000, pool_size=100_000,
               pool_epochs=2, eval_every=1000, lr_patience=2),
    # IMAC: log magnitudes (they span ~8 decades), smaller batches and a faster learning-rate decay to
    # fit the 10-minute budget; fresh WMMSE-labelled pools of 100k samples, 2 epochs each.
    "imac": dict(transform="log", round_output=True, batch_size=500, steps=12_000, pool_size=100_000,
                 pool_epochs=2, label_chunk=25_000, eval_every=500, lr_patience=1),
}


@dataclass
class Args:
    env_id: str = "PowerControl-IMAC-v0"
    """scenario to train on (an env ID of `l2o list`)"""
    env_kwargs: str = ""
    """env keyword arguments, KEY=VALUE,... (e.g. num_links=10)"""
    preset: str = "paper"
    """solver settings: paper | ic | imac (see PRESETS); --solver-kwargs override them"""
    solver_kwargs: str = ""
    """MLPSolver config fields, KEY=VALUE,... (Python literals, e.g. hidden=(200,80,80),lr=1e-3)"""
    steps: int | None = None
    """gradient steps (default: the config's `steps`)"""
    seed: int = 0
    """seed of the training sampler and of torch"""
    eval_seed: int = 1_000_003
    """seed of the evaluation sampler (fresh samples, never seen in training)"""
    eval_samples: int = 10_000
    """samples of the final evaluation (the papers use 10,000)"""
    threads: int = 1
    """torch CPU threads (the machine is shared)"""
    out: str = ""
    """checkpoint path (default runs/{env}__mlp__{seed}__{time}.pt)"""
    progress: bool = True
    """tqdm progress bar on stderr"""


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


def command_of(args: Args) -> str:
    """The command line that reproduces ``args`` (non-default fields only), stored in the checkpoint."""
    parts = ["python examples/train_mlp.py"]
    for f in dataclasses.fields(Args):
        val = getattr(args, f.name)
        if val == f.default or f.name == "progress":
            continue
        parts += ["--" + f.name.replace("_", "-"), shlex.quote(str(val))]
    return " ".join(parts)


def evaluate(solver: MLPSolver, obs: dict) -> dict:
    """Ratio of means to WMMSE (rounded and not) and the time per decision against WMMSE's, same batch."""
    t = time.perf_counter()
    _, ref = wmmse_reference(obs)
    t_wmmse = time.perf_counter() - t
    out = {"wmmse_wsr": float(ref.mean()), "wmmse_s": t_wmmse}
    keep = solver.config.round_output
    for rounded in (False, True):
        solver.config.round_output = rounded
        solver.act_batch({k: v[:10] for k, v in obs.items()})  # warm-up outside the timing
        t = time.perf_counter()
        power = solver.act_batch(obs)
        dt = time.perf_counter() - t
        wsr = weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"])
        tag = "rounded" if rounded else "raw"
        out[f"ratio_{tag}"] = float(wsr.mean() / ref.mean())
        out[f"time_{tag}_s"] = dt
    solver.config.round_output = keep
    out["time_fraction"] = out[f"time_{'rounded' if keep else 'raw'}_s"] / t_wmmse
    return out


def main(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    env_kwargs = parse_kv(args.env_kwargs)
    if args.preset not in PRESETS:
        raise SystemExit(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    cfg = {**PRESETS[args.preset], **parse_kv(args.solver_kwargs)}
    run_name = f"{args.env_id}__mlp__{args.seed}__{int(time.time())}"
    out = Path(args.out or f"runs/{run_name}.pt")

    # ALGO LOGIC: a fresh MLP sized to the scenario by fit, trained on WMMSE labels of fresh samples
    sampler = ObservationSampler(args.env_id, seed=args.seed, **env_kwargs)
    solver = MLPSolver(**cfg)
    hist = solver.fit(sampler, steps=args.steps, seed=args.seed, progress=args.progress)
    print("config (sized to the scenario by fit):", json.dumps(dataclasses.asdict(solver.config)))
    solver.meta.update(env_id=args.env_id, env_kwargs=env_kwargs, preset=args.preset,
                       command=command_of(args))

    # evaluation on samples the model never saw
    obs = ObservationSampler(args.env_id, seed=args.eval_seed, **env_kwargs)(args.eval_samples)
    res = evaluate(solver, obs)
    solver.meta.update(test_ratio_raw=res["ratio_raw"], test_ratio_rounded=res["ratio_rounded"],
                       test_samples=args.eval_samples, test_seed=args.eval_seed)
    solver.save(out)
    print(f"trained {len(hist['step'])} steps in {hist['wall_time']:.0f} s (WMMSE labels {hist['label_time']:.0f} s), "
          f"best validation ratio {hist['best_val_ratio']:.4f} at step {hist['best_step']}"
          + (f" (stopped early: {hist['stop_reason']})" if hist["stopped_early"] else ""))
    print(f"test on {args.eval_samples} fresh samples: WMMSE {res['wmmse_wsr']:.4f} bit/s/Hz; MLP "
          f"{100 * res['ratio_raw']:.2f} % (raw), {100 * res['ratio_rounded']:.2f} % (rounded at pmax/2); "
          f"time {res['time_fraction'] * 100:.2f} % of WMMSE's ({res['wmmse_s']:.2f} s for the batch)")
    print(f"saved {out}")
    return {"history": hist, "test": res}


if __name__ == "__main__":
    main(parse_args())
