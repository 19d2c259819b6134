"""Time the README's main command, ``l2o eval`` on the IMAC with four solvers and 1000 slots.

Target (issue 5): well under a minute on 2 cores, output folder created when missing. The command runs
in a fresh subprocess (so torch's import is counted, as a user would see it) ``--repeats`` times; the
script reports the best and worst wall-clock time and the child's CPU time (user + system), which is
what a dedicated machine would need when the shared one is busy.

    python benchmarks/eval_readme.py                  # prints a markdown table row per run
    python benchmarks/eval_readme.py --repeats 1
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["eval", "--env", "PowerControl-IMAC-v0", "--solvers", "wmmse,truncated_wmmse,max_power,random_power",
           "--slots", "1000", "--seed", "0", "--no-progress"]


def run_once(out_dir: Path) -> tuple[float, float]:
    """Wall seconds and child CPU seconds of one run of the README command into ``out_dir``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "l2o_env.cli", *COMMAND, "--out", str(out_dir / "imac.json"),
                           "--plot", str(out_dir / "imac.png")], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"l2o eval failed ({proc.returncode}): {proc.stderr.strip()}")
    for name in ("imac.json", "imac.csv", "imac.png"):
        if not (out_dir / name).stat().st_size:
            raise SystemExit(f"{name} is empty")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            wall, cpu = run_once(Path(tmp) / f"run{i}" / "results")  # a missing folder every time
            walls.append(wall)
            cpus.append(cpu)
    load = os.getloadavg()[0]
    print("| command | runs | wall best / worst (s) | CPU best (s) | load avg | target |")
    print("|---|---|---|---|---|---|")
    print(f"| `l2o {' '.join(COMMAND[:-1])} --out results/imac.json --plot results/imac.png` | {len(walls)} | "
          f"{min(walls):.1f} / {max(walls):.1f} | {min(cpus):.1f} | {load:.1f} | < 60 s on 2 cores |")


if __name__ == "__main__":
    main()
