"""WMMSE speed: one batched call on 10,000 Gaussian-IC samples versus a per-sample loop of the same code.

Setting of H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training
Deep Neural Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412 (Sec. V-A and Table I): h ~ CN(0, 1), Pmax = 1,
sigma^2 = 1, full-power start, stop when the sum rate changes by < 1e-3 or after 100 iterations;
Table I's CPU times for 10,000 samples: C 0.355 / 1.937 / 5.103 s, Python 17.98 / 59.41 / 122.91 s
for K = 10 / 20 / 30.

Both paths run ``solvers.make("wmmse")`` (validation, numpy <-> torch, ``wmmse_core.wmmse_run``):
``act_batch`` on all samples at once, and ``act`` called once per sample. The loop runs on the first
``--loop-samples`` samples (default 500) and its time is scaled to ``--samples`` (it is linear in
the number of samples: every call is independent). The batched time is the median of ``--repeats``
runs. Both paths' sum rates on the common samples are checked to agree.

    python benchmarks/wmmse_speed.py                      # K = 10, 20, 30; 2 torch threads, then 1
    python benchmarks/wmmse_speed.py --write              # also update benchmarks/RESULTS.md
    python benchmarks/wmmse_speed.py --threads 1 --k 10

Other jobs on the machine slow both paths: the script prints the 1-minute load average before and
after, and the results are only comparable when it is well below the number of cores. With more
torch threads than free cores, torch's threads wait for each other on every small operation: on a
busy machine one thread can be many times faster than two, hence both are measured by default.
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting (the default) stall torch's multi-thread runs whenever another
# process holds one of the cores: measured here, WMMSE K = 10 with 2 threads took 4.0 s instead of 0.11 s
# next to one busy process. PASSIVE makes waiting threads sleep. Must be set before torch is imported;
# an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402

SUN_C = {10: 0.355, 20: 1.937, 30: 5.103}  # s per 10,000 samples, Table I of Sun et al. 2018
SUN_PYTHON = {10: 17.98, 20: 59.41, 30: 122.91}
SUN_WSR = {10: 2.817, 20: 3.654, 30: 4.150}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## WMMSE speed"


def gaussian_ic(k: int, samples: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((samples, k, k)) + 1j * rng.standard_normal((samples, k, k))) / np.sqrt(2.0)
    ones = np.ones((samples, k))
    return {"gain": np.abs(h) ** 2, "weight": ones, "noise": ones, "pmax": ones}


def measure(k: int, samples: int, loop_samples: int, repeats: int, seed: int, device: str) -> dict:
    obs = gaussian_ic(k, samples, seed)
    solver = solvers.make("wmmse", device=device)
    solver.act_batch({key: v[:10] for key, v in obs.items()})  # warm-up (imports, allocator)
    times, cpu_times = [], []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        batched = solver.act_batch(obs)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    iters = solver.last_iterations
    n_loop = min(loop_samples, samples)
    singles = [{key: v[i] for key, v in obs.items()} for i in range(n_loop)]
    t0 = time.perf_counter()
    looped = np.stack([solver.act(s) for s in singles])
    loop_time = (time.perf_counter() - t0) * samples / n_loop
    rate_b = weighted_sum_rate(obs["gain"], batched, obs["noise"])
    rate_l = weighted_sum_rate(obs["gain"][:n_loop], looped, obs["noise"][:n_loop])
    if not np.allclose(rate_b[:n_loop], rate_l, rtol=1e-9, atol=1e-12):
        raise RuntimeError(f"K={k}: batched and looped WMMSE disagree (max diff "
                           f"{np.abs(rate_b[:n_loop] - rate_l).max():.3g})")
    batch_time = statistics.median(times)
    return {"k": k, "batch": batch_time, "batch_all": times, "cpu": statistics.median(cpu_times),
            "loop": loop_time, "n_loop": n_loop,
            "ratio": loop_time / batch_time, "wsr": float(rate_b.mean()), "iters": float(iters.mean()),
            "max_iters": int(iters.max())}


def markdown(rows: list[dict], args, load_before, load_after) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        SECTION,
        "",
        f"`python benchmarks/wmmse_speed.py --samples {args.samples} --loop-samples {args.loop_samples} "
        f"--threads {' '.join(map(str, args.threads))}` ({time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} "
        f"cores, {cpu}, torch {torch.__version__}, device {args.device}, float64, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}). "
        f"Gaussian IC of Sun et al. Table I (Pmax = 1, sigma^2 = 1), WMMSE from full power, tol 1e-3, at most "
        f"100 iterations, {args.samples:,} samples. Batched: one `act_batch` call, median of {args.repeats}. "
        f"Loop: `act` per sample on the first {rows[0]['n_loop']} samples, time scaled to {args.samples:,} "
        f"(extrapolated). CPU time: process time of the batched call (all threads). 1-minute load average "
        f"{load_before:.2f} before, {load_after:.2f} after.",
        "",
        "| K | torch threads | batched (s) | batched CPU time (s) | per-sample loop (s, extrap.) | loop / batched "
        "| Sun C (s, 10,000 samples) | Sun Python (s) | mean WSR (Sun) | mean / max iterations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = r["k"]
        lines.append(f"| {k} | {r['threads']} | {r['batch']:.3f} | {r['cpu']:.3f} | {r['loop']:.1f} | {r['ratio']:.0f}x | {SUN_C.get(k, '-')} | "
                     f"{SUN_PYTHON.get(k, '-')} | {r['wsr']:.3f} ({SUN_WSR.get(k, '-')}) | "
                     f"{r['iters']:.1f} / {r['max_iters']} |")
    if load_before > 0.5 * (os.cpu_count() or 1):
        lines += ["", f"**The machine was busy** (load {load_before:.1f} on {os.cpu_count()} cores): every time above is "
                  "inflated, the multi-thread rows most (torch's threads wait for each other on every small "
                  "operation when one of them is descheduled, worst without OMP_WAIT_POLICY=PASSIVE). The CPU-time "
                  "column is closer to what a quiet machine gives; rerun when `uptime` shows a low load."]
    lines.append("")
    lines.append("Targets (2 cores): batched >= 20x faster than the loop at K = 10; batched at or below Sun et al.'s "
                 "C times for 10,000 samples.")
    for threads in sorted({r["threads"] for r in rows}, reverse=True):
        mine = [r for r in rows if r["threads"] == threads]
        ratio = [f"K={r['k']}: {r['ratio']:.0f}x {'met' if r['ratio'] >= 20 else 'NOT met'}" for r in mine if r["k"] == 10]
        vs_c = [f"K={r['k']}: {r['batch']:.3f} s wall {'<=' if r['batch'] <= SUN_C[r['k']] else '>'} {SUN_C[r['k']]} s "
                f"({'met' if r['batch'] <= SUN_C[r['k']] else 'NOT met'}; CPU time {r['cpu']:.3f} s)"
                for r in mine if r["k"] in SUN_C and args.samples == 10_000]
        lines.append(f"- {threads} torch thread(s): ratio {'; '.join(ratio) or '-'}; vs C {'; '.join(vs_c) or '-'}.")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace this script's section of RESULTS.md (or append it), leaving every other section alone."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("\n" + old[nxt + 1:] if nxt >= 0 else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[10, 20, 30], help="numbers of links")
    parser.add_argument("--samples", type=int, default=10_000, help="samples per K (Sun et al.: 10,000)")
    parser.add_argument("--loop-samples", type=int, default=500, help="samples the per-sample loop runs on")
    parser.add_argument("--repeats", type=int, default=3, help="batched runs; the median is reported")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch intra-op thread counts to run")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help=f"update the '{SECTION}' section of {RESULTS.name}")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for threads, k in [(t, k) for t in args.threads for k in args.k]:
        torch.set_num_threads(threads)
        r = measure(k, args.samples, args.loop_samples, args.repeats, args.seed + k, args.device)
        r["threads"] = threads
        runs = ", ".join(f"{t:.3f}" for t in r["batch_all"])
        print(f"K={k:3d}, {threads} thread(s): batched {r['batch']:.3f} s wall, {r['cpu']:.3f} s CPU (runs {runs}), "
              f"loop {r['loop']:.1f} s (extrapolated from {r['n_loop']}), ratio {r['ratio']:.0f}x, "
              f"Sun C {SUN_C.get(k, '-')} s; mean WSR {r['wsr']:.4f}", flush=True)
        rows.append(r)
    load_after = os.getloadavg()[0]
    text = markdown(rows, args, load_before, load_after)
    print()
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote the '{SECTION}' section of {RESULTS}")


if __name__ == "__main__":
    main()
