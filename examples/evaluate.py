"""Evaluate solvers on one scenario and across a sweep, from Python (what ``l2o eval`` does).

Run:  python examples/evaluate.py            (about 10-20 s on 2 CPU cores)

1. The Sun et al. IMAC setting (3 cells, 12 users): every solver on the same 1000 channel draws; the
   table reports the ratio to WMMSE as a ratio of means, as the papers do; the figure is the CDF of
   the per-slot sum rate (Sun et al., Fig. 7).
2. A mobility sweep: the same solvers at 0, 3 and 30 m/s (episodes of 10 correlated slots); the
   figure is the ratio to WMMSE against speed.
3. Your own policy: any object with ``act(obs)`` (one observation) or ``act_batch(obs)`` (a batch) can
   sit next to the registry's solvers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l2o_env.evaluation import evaluate


@dataclass
class Args:
    env_id: str = "PowerControl-IMAC-v0"
    """the scenario (see `l2o list`)"""
    slots: int = 1000
    """decisions per solver and sweep point"""
    seed: int = 0
    """env seed: every solver sees the same channels"""
    out_dir: Path = Path("results")
    """where the JSON, CSV and PNG files go"""


class HalfPower:
    """A user policy with only ``act``: every transmitter at half its budget."""

    name = "half_power"

    def act(self, obs):
        return 0.5 * np.asarray(obs["pmax"], dtype=np.float64)


def main(args: Args = Args()) -> None:
    solvers = ["wmmse", "truncated_wmmse", "max_power", "random_power"]

    # 1. one setting: CDF of the per-slot sum rate
    res = evaluate(solvers + [HalfPower()], args.env_id, {"num_cells": 3, "num_links": 12},
                   slots=args.slots, seed=args.seed, solver_kwargs={"truncated_wmmse": {"iterations": 4}},
                   progress=True)
    print(res.table(), "\n")
    res.save(args.out_dir / "imac.json")
    res.plot(args.out_dir / "imac_cdf.png")

    # 2. a mobility sweep: ratio to WMMSE against the user speed
    sweep = evaluate(solvers, args.env_id, {"num_cells": 3, "num_links": 12}, slots=args.slots // 2,
                     seed=args.seed, sweep={"speed": [0.0, 3.0, 30.0]}, progress=True)
    print(sweep.table())
    sweep.save(args.out_dir / "imac_speed.json")
    sweep.plot(args.out_dir / "imac_speed.png")
    print(f"\nwrote {args.out_dir}/imac.{{json,csv}}, imac_cdf.png, imac_speed.{{json,csv,png}}")


if __name__ == "__main__":
    main()
