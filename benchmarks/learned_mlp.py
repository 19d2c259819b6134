"""The MLP rows of the learned-solver targets table, from the shipped checkpoints (Sun et al. 2018).

Paper: H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training Deep
Neural Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412.

For each shipped checkpoint (``solvers/checkpoints/mlp.pt`` = PowerControl-IMAC-v0 (N, K) = (3, 12),
``mlp-ic10.pt`` = PowerControl-IC-v0 K = 10): draws ``--samples`` fresh observations of its training
scenario (sampler seed ``--seed``, never the training seed 0), and reports

- the ratio of means of the weighted sum rate to OUR WMMSE (``solvers.learned.wmmse_reference``: full
  power start, 100 iterations, tol 1e-3), with the raw outputs and with the paper's 0/1 rounding;
- the time of one ``act_batch`` call on the whole batch against WMMSE's on the same batch (CPU,
  ``--threads`` torch threads, best of 3 each), and the fraction (target <= 5 %);
- the latency of one decision (a batch of one observation, median over 200) of both.

Targets: >= 97 % of WMMSE for both (paper: 98.33 % IC K = 10, Table I; 98.30 % IMAC (3, 12), Table II).

    python benchmarks/learned_mlp.py                 # 10,000 samples each, markdown table on stdout
    python benchmarks/learned_mlp.py --samples 2000  # quicker
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (spinning idle threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402
from solvers.learned import wmmse_reference  # noqa: E402
from solvers.mlp import MLPSolver  # noqa: E402

TARGET = 0.97
LATENCY_SAMPLES = 200
PAPER = {"PowerControl-IMAC-v0": 0.9830, "PowerControl-IC-v0": 0.9833}


def row(tag: str, samples: int, seed: int) -> str:
    solver = MLPSolver(pretrained=True if tag == "default" else tag)
    env_id, env_kwargs = solver.meta["env_id"], solver.meta.get("env_kwargs", {})
    obs = ObservationSampler(env_id, seed=seed, **env_kwargs)(samples)
    t_wmmse = np.inf
    for _ in range(3):  # best of 3 for both sides: the machine is shared
        t = time.perf_counter()
        _, ref = wmmse_reference(obs)
        t_wmmse = min(t_wmmse, time.perf_counter() - t)
    ratios, times = {}, {}
    for rounded in (False, True):
        solver.config.round_output = rounded
        solver.act_batch({k: v[:10] for k, v in obs.items()})
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            power = solver.act_batch(obs)
            best = min(best, time.perf_counter() - t)
        times[rounded] = best
        ratios[rounded] = weighted_sum_rate(obs["gain"], power, obs["noise"], obs["weight"]).mean() / ref.mean()
    # latency of ONE decision (a batch of one), median over `LATENCY_SAMPLES` observations
    one = [{k: v[i:i + 1] for k, v in obs.items()} for i in range(LATENCY_SAMPLES)]
    lat_mlp = np.median([_timed(solver.act_batch, o) for o in one])
    lat_wmmse = np.median([_timed(wmmse_reference, o) for o in one])
    kw = ",".join(f"{k}={v}" for k, v in env_kwargs.items())
    ok = "yes" if max(ratios.values()) >= TARGET else "NO"
    return (f"| mlp ({tag}) | {env_id}{f'({kw})' if kw else ''} | {ref.mean():.3f} | {100 * ratios[False]:.2f} % | "
            f"{100 * ratios[True]:.2f} % | {100 * PAPER.get(env_id, float('nan')):.2f} % | {ok} | "
            f"{1e3 * times[True]:.1f} ms | {t_wmmse:.2f} s | {100 * times[True] / t_wmmse:.2f} % | "
            f"{1e6 * lat_mlp:.0f} us | {1e6 * lat_wmmse:.0f} us | {100 * lat_mlp / lat_wmmse:.2f} % |")


def _timed(fn, obs) -> float:
    t = time.perf_counter()
    fn(obs)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000, help="fresh evaluation samples per checkpoint")
    p.add_argument("--seed", type=int, default=2024, help="seed of the evaluation sampler (training used 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.samples} fresh samples per row, seed {args.seed}, {args.threads} torch thread(s), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| solver | scenario | WMMSE WSR | MLP raw | MLP rounded | paper | >= 97 % | MLP time (batch) "
          "| WMMSE time (batch) | time ratio | MLP one decision | WMMSE one decision | latency ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for tag in MLPSolver.shipped():
        print(row(tag, args.samples, args.seed), flush=True)


if __name__ == "__main__":
    main()
