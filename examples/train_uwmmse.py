"""Train UWMMSE (Chowdhury et al. 2021) unsupervised on ad hoc networks, save it, evaluate it.

Paper: A. Chowdhury, G. Verma, C. Rao, A. Swami, S. Segarra, "Unfolding WMMSE Using Graph Neural Networks
for Efficient Power Allocation", IEEE Trans. Wireless Commun. 20(9):6004-6017, 2021,
doi:10.1109/TWC.2021.3071480, arXiv:2009.10812.

One file, top to bottom (CleanRL style): ``Args``, the scenario samplers (one fixed topology, or the
robust variant of Sec. IV-E with a random density factor per batch), training, evaluation on fresh
samples (ratio of means to WMMSE, the density table against truncated WMMSE, time per decision).

    # the shipped default checkpoint: robust, random layouts, paper density factor d ~ U[0.5, 5] per batch
    python examples/train_uwmmse.py --topology random --factors 0.5,5 \
        --solver-kwargs lr=0.01,input_transform=log1p --out solvers/checkpoints/uwmmse.pt
    # Table I setting: one fixed layout (layout_seed 0, the env default), trained and tested on its fading
    python examples/train_uwmmse.py --topology fixed --factors '' --solver-kwargs lr=0.01 \
        --out solvers/checkpoints/uwmmse-fixed.pt
    # the paper's own hyper-parameters: --solver-kwargs '' (lr 1e-3, linear input); any config field:
    # --solver-kwargs lr=3e-3,node_features=weight,input_scale=none,aggregate=both

Each run takes ~9 min for 10,000 steps on one loaded CPU core (lr 1e-2: the paper's 1e-3 needs far more
steps than 10,000 to reach WMMSE; the authors' code runs up to 20 x 10,000).

Density: the paper's factor ``d`` moves transmitters to ``t_i / d``; the env's ``density`` is an area
factor dividing coordinates by ``sqrt(density)``, so ``density = d ** 2`` (``--factors`` takes ``d``).
The exact command is stored in the checkpoint's ``meta["command"]``.
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

from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402
from solvers.learned import to_torch, wmmse_reference  # noqa: E402
from solvers.uwmmse import UWMMSE  # noqa: E402
from solvers.wmmse_core import wmmse_run  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402


@dataclass
class Args:
    env_id: str = "PowerControl-AdHoc-v0"
    """scenario (an ad hoc or any power-control env ID)"""
    env_kwargs: str = "num_links=20"
    """env keyword arguments, KEY=VALUE,... (density is set by --factors when given)"""
    topology: str = "random"
    """ad hoc topology: fixed (one layout, from the env's layout_seed, default 0, e.g. --env-kwargs
    num_links=20,layout_seed=3; Sec. IV) or random (a new layout per sample)"""
    factors: str = "0.5,5"
    """robust training (Sec. IV-E): paper density factor d ~ U[lo, hi] per batch, density = d^2; "" = off"""
    solver_kwargs: str = ""
    """UWMMSEConfig fields, KEY=VALUE,... (Python literals)"""
    steps: int | None = None
    """gradient steps (default: the config's `steps`, 10,000)"""
    seed: int = 0
    """seed of the training sampler (fading, weights; not the fixed layout: layout_seed) and of torch"""
    eval_seed: int = 1_000_003
    """seed of the evaluation samplers (random topology; fixed: the training sampler's later draws)"""
    eval_samples: int = 10_000
    """samples of the final evaluation at density factor 1 (the papers use 10,000)"""
    eval_factors: str = "0.5,0.75,1,1.5,2,3,4,5"
    """density factors d of the generalisation table (random topology); "" skips it"""
    table_samples: int = 2_000
    """samples per density factor in the table"""
    threads: int = 1
    """torch CPU threads (the machine is shared)"""
    out: str = ""
    """checkpoint path (default runs/{env}__uwmmse__{seed}__{time}.pt)"""
    progress: bool = True
    """tqdm progress bar on stderr"""


def parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


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


class DensityFactorSampler:
    """Sec. IV-E's robust training data: every call draws one paper density factor ``d ~ U[lo, hi]``
    and returns a batch of independent random layouts at env ``density = base * d^2`` (fresh fading).

    Args:
        env_id: the env ID (ad hoc).
        seed: seed of the factor draws and of the per-batch samplers.
        factor_range: ``(lo, hi)`` of the paper's factor ``d`` (Sec. IV-E: 0.5, 5).
        **env_kwargs: the env's keyword arguments (``density`` multiplies, default 1).
    """

    def __init__(self, env_id: str, seed: int, factor_range: tuple[float, float], **env_kwargs):
        lo, hi = factor_range
        if not 0 < lo <= hi:
            raise ValueError(f"DensityFactorSampler: factor_range must satisfy 0 < lo <= hi, got {factor_range!r}")
        self.env_id, self.factor_range = env_id, (float(lo), float(hi))
        self.base_density = float(env_kwargs.pop("density", 1.0))
        self.env_kwargs = {**env_kwargs, "topology": "random"}
        self._rng = np.random.default_rng(seed)
        ObservationSampler(env_id, seed=0, density=self.base_density, **self.env_kwargs)  # validate early

    def at(self, factor: float, seed: int) -> ObservationSampler:
        """The plain sampler of one density factor (random layouts at ``density = base * factor^2``)."""
        return ObservationSampler(self.env_id, seed=seed, density=self.base_density * factor ** 2, **self.env_kwargs)

    def __call__(self, batch: int) -> dict:
        factor = self._rng.uniform(*self.factor_range)
        return self.at(factor, int(self._rng.integers(2 ** 31)))(batch)


def concat(batches: list[dict]) -> dict:
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def truncated_wsr(obs: dict, iterations: int = 4) -> np.ndarray:
    """WSR of WMMSE stopped after ``iterations`` (Tr-WMMSE of Sec. IV), from full power."""
    t = to_torch({k: obs[k] for k in ("gain", "noise", "pmax", "weight")}, dtype=torch.float64)
    power, _ = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], max_iter=iterations, tol=0.0)
    return weighted_sum_rate(obs["gain"], power.numpy(), obs["noise"], obs["weight"])


def evaluate(solver: UWMMSE, obs: dict) -> dict:
    """Ratio of means to WMMSE and to truncated WMMSE (4), time per decision against WMMSE's, same batch."""
    t = time.perf_counter()
    _, ref = wmmse_reference(obs)
    t_wmmse = time.perf_counter() - t
    solver.act_batch({k: v[:8] for k, v in obs.items()})  # warm-up outside the timing
    t = time.perf_counter()
    power = solver.act_batch(obs)
    t_mine = time.perf_counter() - t
    wsr = weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"])
    trunc = truncated_wsr(obs)
    return {"samples": len(wsr), "wsr": float(wsr.mean()), "wmmse_wsr": float(ref.mean()),
            "ratio": float(wsr.mean() / ref.mean()), "truncated_ratio": float(trunc.mean() / ref.mean()),
            "time_s": t_mine, "wmmse_time_s": t_wmmse, "time_fraction": t_mine / t_wmmse}


def density_table(solver: UWMMSE, sampler: DensityFactorSampler, factors: list[float], samples: int,
                  seed: int) -> list[dict]:
    """Sec. IV-E / Fig. 6(a, b): ratio to WMMSE of UWMMSE and truncated WMMSE per density factor."""
    rows = []
    for i, d in enumerate(factors):
        obs = sampler.at(d, seed + i)(samples)
        res = evaluate(solver, obs)
        rows.append({"factor": d, "density": d * d, **{k: res[k] for k in ("wsr", "wmmse_wsr", "ratio", "truncated_ratio")}})
    return rows


def main(args: Args) -> dict:
    torch.set_num_threads(args.threads)
    env_kwargs = parse_kv(args.env_kwargs)
    factors = parse_floats(args.factors)
    cfg = parse_kv(args.solver_kwargs)
    run_name = f"{args.env_id}__uwmmse__{args.seed}__{int(time.time())}"
    out = Path(args.out or f"runs/{run_name}.pt")
    torch.manual_seed(args.seed)  # the GCN initialisation

    # ALGO LOGIC: samplers of the scenario, a fixed validation batch, unsupervised training
    if factors:
        if args.topology != "random" or len(factors) != 2:
            raise SystemExit("--factors lo,hi needs --topology random (Sec. IV-E draws new layouts per batch)")
        sampler = DensityFactorSampler(args.env_id, args.seed, tuple(factors), **env_kwargs)
        # validation spans the factor range (one fixed batch per factor), disjoint seeds from training
        val_factors = np.linspace(factors[0], factors[1], 5)
        per = max(1, UWMMSE.Config(**cfg).val_size // len(val_factors))
        validation = concat([sampler.at(d, 10_000 + i)(per) for i, d in enumerate(val_factors)])
    else:
        sampler = ObservationSampler(args.env_id, seed=args.seed, topology=args.topology, **env_kwargs)
        validation = None  # drawn by fit from the sampler (same layout when fixed, fresh fading)
    solver = UWMMSE(**cfg)
    print("config:", json.dumps(dataclasses.asdict(solver.config)))
    def log(step: int, logs: dict) -> None:  # one line per validation when there is no progress bar
        if not args.progress:
            print(f"step {step}: loss {logs['loss']:.3f}, validation ratio to WMMSE {logs['val_ratio']:.4f} "
                  f"(best {logs['best_val_ratio']:.4f} at step {logs['best_step']})", flush=True)

    hist = solver.fit(sampler, steps=args.steps, seed=args.seed, progress=args.progress, validation=validation,
                      callback=log)
    solver.meta.update(
        env_id=args.env_id, env_kwargs={**env_kwargs, "topology": args.topology, **(
            {"layout_seed": sampler.config.layout_seed} if args.topology == "fixed" else {})},
        density_factors=factors or None,
        command="python examples/train_uwmmse.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))

    # evaluation on samples the model never saw: density factor 1 (the fixed layout when fixed)
    if args.topology == "fixed" and not factors:
        # same layout; the training stream goes on, so these fading draws were never trained on
        eval_sampler = sampler
    else:
        eval_sampler = ObservationSampler(args.env_id, seed=args.eval_seed, topology="random", **env_kwargs)
    res = evaluate(solver, eval_sampler(args.eval_samples))
    solver.meta["eval"] = {k: float(v) for k, v in res.items()}
    table = []
    if args.eval_factors and args.topology == "random":
        table = density_table(solver, DensityFactorSampler(args.env_id, 0, (1, 1), **env_kwargs),
                              parse_floats(args.eval_factors), args.table_samples, args.eval_seed)
        solver.meta["density_table"] = table
    solver.save(out)

    print(f"saved {out}  ({out.stat().st_size / 1024:.1f} KiB); best validation ratio {hist['best_val_ratio']:.4f} "
          f"at step {hist['best_step']} of {len(hist['step'])}, {hist['wall_time']:.0f} s"
          + (f" (stopped early: {hist['stop_reason']}; {hist['skipped_steps']} non-finite batches skipped)"
             if hist["stopped_early"] else f" ({hist['skipped_steps']} non-finite batches skipped)"))
    print(f"eval ({res['samples']} fresh samples): UWMMSE {res['wsr']:.3f} / WMMSE {res['wmmse_wsr']:.3f} = "
          f"{100 * res['ratio']:.2f} % (truncated WMMSE (4): {100 * res['truncated_ratio']:.2f} %); time per batch "
          f"{res['time_s'] * 1e3:.1f} ms vs WMMSE {res['wmmse_time_s'] * 1e3:.1f} ms ({100 * res['time_fraction']:.1f} %)")
    if table:
        print("| factor d | density d^2 | UWMMSE % of WMMSE | truncated WMMSE (4) % | WMMSE WSR |")
        print("|---|---|---|---|---|")
        for r in table:
            print(f"| {r['factor']:g} | {r['density']:g} | {100 * r['ratio']:.2f} | {100 * r['truncated_ratio']:.2f} "
                  f"| {r['wmmse_wsr']:.2f} |")
    return {"history": hist, "eval": res, "density_table": table, "path": str(out)}


if __name__ == "__main__":
    main(parse_args())
