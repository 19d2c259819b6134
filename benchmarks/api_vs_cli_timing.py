"""Does ``time_per_slot_s`` depend on how the library was started? CLI vs Python API vs torch imported first.

Each variant runs in a fresh interpreter (the OpenMP wait policy is fixed when torch loads) and evaluates
WMMSE on the same slots; the script prints the median ms/slot over ``--repeats`` runs of each. With
``--load N``, N busy-loop processes occupy the cores meanwhile (a shared machine: the case where idle
OpenMP threads that spin steal the cores a solver needs). The busy loops end with the script.

    python benchmarks/api_vs_cli_timing.py --load 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVAL = ("evaluate(['wmmse'], '{env}', {{}}, slots={slots}, seed=0).row('wmmse')['time_per_slot_s']")


def _api(torch_first: bool, env: str, slots: int) -> str:
    head = "import torch\n" if torch_first else ""
    return (f"{head}import warnings; warnings.simplefilter('ignore')\n"
            "from l2o_env.evaluation import evaluate\n"
            f"print({EVAL.format(env=env, slots=slots)})\n")


def _run(variant: str, env: str, slots: int, policy: str | None) -> float:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        environ["OMP_WAIT_POLICY"] = policy
    if variant == "cli":
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            subprocess.run([sys.executable, "-m", "l2o_env.cli", "eval", "--env", env, "--solvers", "wmmse",
                            "--slots", str(slots), "--no-progress", "--out", str(out)],
                           check=True, capture_output=True, env=environ)
            row = json.loads(out.read_text())["rows"][0]
            return 1e3 * row["time_per_slot_s"]
    proc = subprocess.run([sys.executable, "-c", _api(variant == "api, torch first", env, slots)], check=True,
                          capture_output=True, text=True, env=environ)
    return 1e3 * float(proc.stdout.split()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="PowerControl-IMAC-v0")
    p.add_argument("--slots", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--load", type=int, default=0, help="busy-loop processes running meanwhile")
    args = p.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 900: pass"])
            for _ in range(args.load)]
    try:
        time.sleep(0.5 if busy else 0.0)
        variants = [("cli", None), ("api", None), ("api, torch first", None), ("api, torch first", "PASSIVE")]
        print(f"{args.env}, WMMSE, {args.slots} slots, {args.load} busy process(es); median of {args.repeats} runs")
        for variant, policy in variants:
            times = [_run(variant, args.env, args.slots, policy) for _ in range(args.repeats)]
            label = f"{variant}" + (f" (OMP_WAIT_POLICY={policy} in the environment)" if policy else "")
            print(f"  {label:<58} {statistics.median(times):8.4f} ms/slot   runs: "
                  + ", ".join(f"{t:.4f}" for t in times))
    finally:
        for b in busy:
            b.kill()


if __name__ == "__main__":
    main()
