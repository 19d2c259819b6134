"""Regenerate WCGCN's rows of the targets table (benchmarks/RESULTS.md) from the shipped checkpoints.

For each scenario: the ratio of mean weighted sum rates to OUR WMMSE (``solvers.learned.wmmse_reference``:
full-power start, 100 iterations, tol 1e-3) on fresh samples (sampler seed 2024, never used in training),
and the time per decision of WCGCN and of WMMSE on the same batches, both wall-clock and CPU time
(``time.process_time``: on a shared machine the CPU time estimates what a dedicated core gives). At K = 1000 WMMSE costs
~K^2 per iteration per sample, so that row uses fewer samples (``--samples-large``, default 200), and
it adds the latency of ONE decision (``act`` on a single observation, the <= 50 ms target). The K <= 50
rows also give the ratio to WMMSE from a random start (``v0 = sqrt(pmax) U[0, 1]``, 100 iterations), the
paper's baseline (Sec. V-A).

    python benchmarks/learned_wcgcn.py                 # all rows, 10,000 samples where K <= 50
    python benchmarks/learned_wcgcn.py --samples 2000 --samples-large 50 --rows d2d50 ic10
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (spinning idle threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402
from solvers.learned import wmmse_reference  # noqa: E402
from solvers.wmmse_core import wmmse_run  # noqa: E402
from solvers.wcgcn import WCGCN  # noqa: E402

# row -> (checkpoint tag, env id, env kwargs, large-scale row?)
ROWS = {
    "d2d50": (True, "PowerControl-D2D-v0", {"num_links": 50}, False),
    # the paper's Table II setting (weights U[0, 1]), with the checkpoint trained on random weights
    "d2d50-random-weights": ("d2d-random", "PowerControl-D2D-v0", {"num_links": 50, "weights": "random"}, False),
    "d2d1000": (True, "PowerControl-D2D-v0", {"num_links": 1000, "density": 0.05}, True),
    "ic10": ("ic10", "PowerControl-IC-v0", {"num_links": 10, "snr_db": 10.0}, False),
}


def random_start_wsr(obs, rng) -> np.ndarray:
    """WSR of WMMSE started from random amplitudes ``sqrt(pmax) U[0, 1]`` (the paper's baseline, Sec. V-A)."""
    t = {k: torch.as_tensor(obs[k], dtype=torch.float64) for k in ("gain", "noise", "pmax", "weight")}
    v0 = t["pmax"].sqrt() * torch.as_tensor(rng.random(t["pmax"].shape))
    power, _ = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], v0=v0)
    return weighted_sum_rate(obs["gain"], power.numpy(), obs["noise"], obs["weight"])


def run_row(tag, env_id, kwargs, samples, chunk, seed=2024, random_start=True) -> dict:
    solver = WCGCN(pretrained=tag)
    sampler = ObservationSampler(env_id, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    rand_ref = []
    mine, ref, done = [], [], 0
    t_mine = np.zeros(2)  # (wall, cpu) seconds
    t_ref = np.zeros(2)
    first = None
    while done < samples:
        obs = sampler(min(chunk, samples - done))
        first = first or {k: v[0] for k, v in obs.items()}
        t0 = np.array([time.perf_counter(), time.process_time()])
        power = solver.act_batch(obs)
        t1 = np.array([time.perf_counter(), time.process_time()])
        _, wsr_ref = wmmse_reference(obs)
        t2 = np.array([time.perf_counter(), time.process_time()])
        mine.append(weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"]))
        ref.append(wsr_ref)
        if random_start:
            rand_ref.append(random_start_wsr(obs, rng))
        t_mine, t_ref, done = t_mine + t1 - t0, t_ref + t2 - t1, done + len(power)
    mine, ref = np.concatenate(mine), np.concatenate(ref)
    solver.act(first)  # warm-up
    lat = []
    for _ in range(10):
        t0 = np.array([time.perf_counter(), time.process_time()])
        solver.act(first)
        lat.append(np.array([time.perf_counter(), time.process_time()]) - t0)
    lat = np.median(np.array(lat), axis=0)
    ratio_random = float(mine.mean() / np.concatenate(rand_ref).mean()) if rand_ref else float("nan")
    return {"samples": done, "ratio": float(mine.mean() / ref.mean()), "ratio_random_start": ratio_random,
            "wsr": float(mine.mean()),
            "wsr_wmmse": float(ref.mean()),
            "ms_per_decision_batched_wall_cpu": (1e3 * t_mine / done).tolist(),
            "wmmse_ms_per_decision_batched_wall_cpu": (1e3 * t_ref / done).tolist(),
            "ms_single_decision_median_wall_cpu": (1e3 * lat).tolist()}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--samples", type=int, default=10_000, help="samples of the K <= 50 rows")
    p.add_argument("--samples-large", type=int, default=200, help="samples of the K = 1000 row")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# load average before: {os.getloadavg()[0]:.1f}; torch threads {a.threads}")
    print("| row | samples | WCGCN / WMMSE | WCGCN / WMMSE (random start) | WSR WCGCN | WSR WMMSE | WCGCN ms/decision, batched (wall / CPU) "
          "| WMMSE ms/decision (wall / CPU) | time ratio (CPU) | WCGCN ms, one decision (wall / CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in a.rows:
        tag, env_id, kwargs, large = ROWS[name]
        r = run_row(tag, env_id, kwargs, a.samples_large if large else a.samples, 10 if large else 1000,
                    random_start=not large)
        mw, mc = r["ms_per_decision_batched_wall_cpu"]
        ww, wc = r["wmmse_ms_per_decision_batched_wall_cpu"]
        lw, lc = r["ms_single_decision_median_wall_cpu"]
        print(f"| {name} | {r['samples']} | {100 * r['ratio']:.2f} % | {100 * r['ratio_random_start']:.2f} % | {r['wsr']:.3f} | {r['wsr_wmmse']:.3f} | "
              f"{mw:.3f} / {mc:.3f} | {ww:.2f} / {wc:.2f} | {100 * mc / wc:.2f} % | {lw:.1f} / {lc:.1f} |", flush=True)
        print("<!-- " + json.dumps({name: r}) + " -->", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.1f}")
