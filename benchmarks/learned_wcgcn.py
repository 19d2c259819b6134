"""Regenerate WCGCN's rows of the targets table (benchmarks/RESULTS.md) from the shipped checkpoints.

For each scenario: the ratio of mean weighted sum rates to OUR WMMSE (``solvers.learned.wmmse_reference``:
full-power start, 100 iterations, tol 1e-3) on fresh samples (sampler seed 2024, never used in training),
and the CPU time per decision of WCGCN and of WMMSE on the same batches. At K = 1000 WMMSE costs
~K^2 per iteration per sample, so that row uses fewer samples (``--samples-large``, default 200), and
it adds the latency of ONE decision (``act`` on a single observation, the <= 50 ms target).

    python benchmarks/learned_wcgcn.py                 # all rows, 10,000 samples where K <= 50
    python benchmarks/learned_wcgcn.py --samples 2000 --samples-large 50 --rows d2d50 ic10
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from l2o_env.data import ObservationSampler
from l2o_env.rates import weighted_sum_rate
from solvers.learned import wmmse_reference
from solvers.wcgcn import WCGCN

# row -> (checkpoint tag, env id, env kwargs, large-scale row?)
ROWS = {
    "d2d50": (True, "PowerControl-D2D-v0", {"num_links": 50}, False),
    "d2d50-random-weights": (True, "PowerControl-D2D-v0", {"num_links": 50, "weights": "random"}, False),
    "d2d1000": (True, "PowerControl-D2D-v0", {"num_links": 1000, "density": 0.05}, True),
    "ic10": ("ic10", "PowerControl-IC-v0", {"num_links": 10, "snr_db": 10.0}, False),
}


def run_row(tag, env_id, kwargs, samples, chunk, seed=2024) -> dict:
    solver = WCGCN(pretrained=tag)
    sampler = ObservationSampler(env_id, seed=seed, **kwargs)
    mine, ref, t_mine, t_ref, done = [], [], 0.0, 0.0, 0
    first = None
    while done < samples:
        obs = sampler(min(chunk, samples - done))
        first = first or {k: v[0] for k, v in obs.items()}
        t0 = time.perf_counter()
        power = solver.act_batch(obs)
        t1 = time.perf_counter()
        _, wsr_ref = wmmse_reference(obs)
        t2 = time.perf_counter()
        mine.append(weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"]))
        ref.append(wsr_ref)
        t_mine, t_ref, done = t_mine + t1 - t0, t_ref + t2 - t1, done + len(power)
    mine, ref = np.concatenate(mine), np.concatenate(ref)
    solver.act(first)  # warm-up
    lat = []
    for _ in range(10):
        t0 = time.perf_counter()
        solver.act(first)
        lat.append(time.perf_counter() - t0)
    return {"samples": done, "ratio": float(mine.mean() / ref.mean()), "wsr": float(mine.mean()),
            "wsr_wmmse": float(ref.mean()), "ms_per_decision_batched": 1e3 * t_mine / done,
            "wmmse_ms_per_decision_batched": 1e3 * t_ref / done, "ms_single_decision_median": 1e3 * float(np.median(lat))}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--samples", type=int, default=10_000, help="samples of the K <= 50 rows")
    p.add_argument("--samples-large", type=int, default=200, help="samples of the K = 1000 row")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# load average before: {os.getloadavg()[0]:.1f}; torch threads {a.threads}")
    print("| row | samples | WCGCN / WMMSE | WSR WCGCN | WSR WMMSE | WCGCN ms/decision (batched) | WMMSE ms/decision "
          "| time ratio | WCGCN ms, one decision |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in a.rows:
        tag, env_id, kwargs, large = ROWS[name]
        r = run_row(tag, env_id, kwargs, a.samples_large if large else a.samples, 10 if large else 1000)
        print(f"| {name} | {r['samples']} | {100 * r['ratio']:.2f} % | {r['wsr']:.3f} | {r['wsr_wmmse']:.3f} | "
              f"{r['ms_per_decision_batched']:.3f} | {r['wmmse_ms_per_decision_batched']:.2f} | "
              f"{100 * r['ms_per_decision_batched'] / r['wmmse_ms_per_decision_batched']:.2f} % | "
              f"{r['ms_single_decision_median']:.1f} |", flush=True)
        print("<!-- " + json.dumps({name: r}) + " -->", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.1f}")
