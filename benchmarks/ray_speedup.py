"""Serial against Ray: the same 16 sweep points (4 sizes x 4 densities, WMMSE) on both backends.

    python benchmarks/ray_speedup.py                 # 2 Ray workers, 1000 slots per point
    python benchmarks/ray_speedup.py --workers 4 --slots 2000

The 16 point tasks (``PowerControl-AdHoc-v0``, ``topology=random``, ``num_links`` 10/20/30/40 x ``density``
0.5/1/2/4, WMMSE as the only solver; ``runner.make_tasks`` of four density sweeps) go through
``SerialBackend().map`` and ``RayBackend(num_cpus=workers).map``: the backends' own wall-clock time on
identical work, whose numbers must agree bit for bit (checked). Rows:

- serial, torch's default threads (every core: what ``l2o eval`` does without ``--backend ray``);
- serial, 1 torch thread (what one Ray worker runs with);
- Ray, warm: workers already started (a second evaluation in the same process, or a running cluster);
- Ray, cold: ``ray.init`` plus the first map (starting the local Ray and its workers), once per process.

The machine may be shared: the load average (1, 5, 15 min) before and after is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import time

import l2o_env  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
from l2o_env.evaluation import RayBackend, SerialBackend, build_spec
from l2o_env.evaluation.runner import make_tasks

ENV = "PowerControl-AdHoc-v0"
SIZES = (10, 20, 30, 40)
DENSITIES = (0.5, 1.0, 2.0, 4.0)


def tasks_of(slots: int, seed: int) -> list:
    """The 16 point tasks: one density sweep per size."""
    out = []
    for k in SIZES:
        spec, _, _ = build_spec(["wmmse"], ENV, {"num_links": k, "topology": "random"}, slots=slots, seed=seed,
                                sweep={"density": list(DENSITIES)})
        out += make_tasks(spec)
    return out


def timed(backend, tasks) -> tuple[float, list]:
    t0 = time.perf_counter()
    results = backend.map(tasks)
    return time.perf_counter() - t0, results


def wsr(results) -> list[float]:
    return [r.summaries["wmmse"]["mean_wsr"] for r in results]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (tasks at once)")
    p.add_argument("--slots", type=int, default=1000, help="slots per sweep point")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import ray
    import torch

    tasks = tasks_of(args.slots, args.seed)
    load_before = os.getloadavg()
    threads = torch.get_num_threads()
    serial_s, serial = timed(SerialBackend(), tasks)
    torch.set_num_threads(1)
    one_s, one = timed(SerialBackend(), tasks)
    torch.set_num_threads(threads)

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    backend = RayBackend()
    backend.map(tasks_of(8, args.seed + 1)[: args.workers])  # starts the workers
    cold_s = time.perf_counter() - t0
    warm_s, distributed = timed(backend, tasks)
    ray.shutdown()
    load_after = os.getloadavg()

    assert wsr(distributed) == wsr(serial) == wsr(one), "the backends disagree"
    print(f"{len(tasks)} tasks: {ENV}(topology=random), num_links {SIZES} x density {DENSITIES}, wmmse, "
          f"{args.slots} slots per point, seed {args.seed}; {os.cpu_count()} cores; the backends agree bit for bit")
    print(f"load average before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}\n")
    print("| run | wall-clock (s) | speed-up vs serial |")
    print("|---|---|---|")
    print(f"| serial, torch {threads} threads (default) | {serial_s:.1f} | 1.00x |")
    print(f"| serial, torch 1 thread | {one_s:.1f} | {serial_s / one_s:.2f}x |")
    print(f"| Ray, {args.workers} workers x 1 thread, warm | {warm_s:.1f} | {serial_s / warm_s:.2f}x |")
    print(f"| Ray start (ray.init + first tasks), once per process | {cold_s:.1f} | |")
    print(f"| Ray, {args.workers} workers, cold (start + map) | {cold_s + warm_s:.1f} | "
          f"{serial_s / (cold_s + warm_s):.2f}x |")


if __name__ == "__main__":
    main()
