"""A learned solver against WMMSE truncated to the same wall-clock time (quality at equal time, CPU).

The claim checked: a learned solver's weighted sum rate is above that of WMMSE stopped when the learned
solver's time budget runs out. For one learned solver (``--solver``, loaded with ``--pretrained TAG`` or
``--checkpoint PATH``) on fresh samples of the scenario it was trained on (its ``meta["env_id"]`` /
``meta["env_kwargs"]``, or ``--env``/``--env-kwargs``; sampler seed ``--seed``, training used 0):

1. time per decision of the learned solver and of ``solvers.make("wmmse")`` (defaults: full-power / matched
   filter start, tol 1e-3, at most 100 iterations) at B = 1 (median over ``--latency-samples`` single
   observations) and at B = ``--batch`` (best of ``--repeats`` calls), the calls interleaved so that load
   from other processes hits every side alike;
2. for each of those B, the largest ``n`` such that ``truncated_wmmse(iterations=n)`` takes no longer than
   the learned solver on the same observations: every candidate ``n`` is timed, interleaved with the learned
   solver (doubling ``n`` until it is slower, then bisection), and the answer is confirmed by one more
   interleaved measurement of the learned solver, WMMSE, ``n`` and ``n + 1`` (the numbers printed);
   ``n = 0`` means one WMMSE iteration already takes longer than the learned solver;
3. the weighted sum rate, on ``--samples`` fresh observations, of the learned solver, WMMSE (default), WMMSE
   run to convergence (``--converged``) and WMMSE truncated at each ``n`` found; ratios to the converged
   WMMSE (and to the default one).

Every solver goes through the same public call, ``Solver.act_batch`` (observation checks, conversion, the
solve, the feasibility clip). Any learned solver of either problem family works (beamforming:
``unfolded_wmmse``, ``wcgcn``, ...; power control: ``uwmmse``, ``mlp``, ...): the truncated WMMSE and the
reference are the family's (``solvers.make`` dispatches on the observation). ``--threads`` torch threads
(default 1), ``OMP_WAIT_POLICY=PASSIVE``.

    python benchmarks/equal_time.py --solver unfolded_wmmse --pretrained snr20
    python benchmarks/equal_time.py --solver uwmmse --pretrained true
    python benchmarks/equal_time.py --solver structured_net --pretrained small-low --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.data import ObservationSampler  # noqa: E402
from l2o_env.problems import problem_of_obs  # noqa: E402
from l2o_env.evaluation import parse_kwargs as parse_kv  # KEY=VALUE,... as `l2o` parses it  # noqa: E402


def pretrained_value(text: str | None):
    """``--pretrained`` as ``solvers.make`` wants it: ``True`` for true/default/yes/1, else the tag."""
    if text is None:
        return None
    return True if text.strip().lower() in ("true", "default", "yes", "1") else text.strip()


# --- timing ------------------------------------------------------------------------------------------
def _timed(fn, obs) -> float:
    t = time.perf_counter()
    fn(obs)
    return time.perf_counter() - t


def _slice(obs, start: int, stop: int) -> dict:
    return {k: v[start:stop] for k, v in obs.items()}


class Timer:
    """Seconds of one call of each of several functions on the same observations, the calls interleaved.

    ``b == 1``: the median over ``latency_samples`` single observations (one call each); ``b > 1``: the best
    of ``repeats`` calls on the first ``b`` observations (a shared machine only ever slows a run down)."""

    def __init__(self, obs, b: int, latency_samples: int = 200, repeats: int = 3):
        self.b = b
        if b == 1:
            self.inputs = [_slice(obs, i, i + 1) for i in range(latency_samples)]
            self.how = f"median of {latency_samples}"
        else:
            self.inputs = [_slice(obs, 0, b)] * repeats
            self.how = f"best of {repeats}"
        self.warm = _slice(obs, 0, min(2, b))

    def __call__(self, fns) -> list[float]:
        for fn in fns:
            fn(self.warm)  # warm-up
        times = np.array([[_timed(fn, o) for fn in fns] for o in self.inputs])
        agg = np.median(times, axis=0) if self.b == 1 else np.min(times, axis=0)
        return [float(t) for t in agg]


def equal_time_iterations(learned_fn, timer: Timer, max_iterations: int, log=None) -> dict:
    """The largest ``n <= max_iterations`` whose ``truncated_wmmse(iterations=n)`` is measured no slower than
    ``learned_fn`` on ``timer``'s observations (0 when one iteration is already slower).

    Each candidate is timed interleaved with the learned solver (their ratio is what is compared, so a load
    change between candidates does not bias the answer): ``n = 1, 2, 4, ...`` until one is slower, then
    bisection between the last that fitted and the first that did not. Returns ``{"n", "trials"}`` with every
    measurement ``(n, learned s, truncated s)``."""
    trials = []
    makers = {}

    def fits(n: int) -> bool:
        solver = makers.setdefault(n, solvers.make("truncated_wmmse", iterations=n))
        t_learned, t_n = timer([learned_fn, solver.act_batch])
        trials.append((n, t_learned, t_n))
        if log:
            log(f"  B = {timer.b}: truncated_wmmse({n}) {1e6 * t_n:.1f} us vs learned {1e6 * t_learned:.1f} us")
        return t_n <= t_learned

    if not fits(1):
        return {"n": 0, "trials": trials}
    lo, hi = 1, 2
    while hi <= max_iterations and fits(hi):
        lo, hi = hi, 2 * hi
    if hi > max_iterations:
        if lo == max_iterations or fits(max_iterations):
            return {"n": max_iterations, "trials": trials}
        hi = max_iterations
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return {"n": lo, "trials": trials}


def confirm(learned_fn, wmmse_fn, timer: Timer, n: int, rounds: int = 4) -> dict:
    """One interleaved measurement of the learned solver, WMMSE, ``truncated_wmmse(n)`` and ``(n + 1)``: the
    reported numbers. When it contradicts the search (``n`` slower than the learned solver, or ``n + 1`` no
    slower), ``n`` moves by one and the measurement is repeated, at most ``rounds`` times in all; ``settled``
    says whether the last measurement agrees."""
    seen = set()
    for _ in range(rounds):
        seen.add(n)
        fns = [learned_fn, wmmse_fn] + [solvers.make("truncated_wmmse", iterations=m).act_batch
                                        for m in (n, n + 1) if m >= 1]
        t = timer(fns)
        out = {"learned": t[0], "wmmse": t[1], "n": n,
               "truncated_n": t[2] if n >= 1 else None, "truncated_n_plus_1": t[-1]}
        if n >= 1 and out["truncated_n"] > out["learned"]:
            step = -1
        elif out["truncated_n_plus_1"] <= out["learned"]:
            step = 1
        else:
            return {**out, "settled": True}
        if n + step in seen:  # back and forth: the two are too close to tell apart; keep the smaller
            n = min(n, n + step)
            break
        n += step
    t = timer([learned_fn, wmmse_fn] + [solvers.make("truncated_wmmse", iterations=m).act_batch
                                        for m in (n, n + 1) if m >= 1])
    return {"learned": t[0], "wmmse": t[1], "n": n, "truncated_n": t[2] if n >= 1 else None,
            "truncated_n_plus_1": t[-1], "settled": False}


# --- quality -----------------------------------------------------------------------------------------
def mean_wsr(solver, obs) -> float:
    """Mean weighted sum rate of ``solver.act_batch(obs)`` scored by the observation's problem family."""
    problem = problem_of_obs(obs)
    batch = problem.check_obs(obs, batched=True, who="equal_time")
    return float(problem.weighted_sum_rate(batch, solver.act_batch(obs)).mean())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--solver", required=True, help="registry name of the learned solver, e.g. unfolded_wmmse")
    p.add_argument("--pretrained", default=None, help="shipped checkpoint: true (the default one) or a tag")
    p.add_argument("--checkpoint", default=None, help="checkpoint path (instead of --pretrained)")
    p.add_argument("--solver-kwargs", default="", help="more solvers.make keywords, KEY=VALUE,...")
    p.add_argument("--env", default=None, help="env ID (default: the checkpoint's meta['env_id'])")
    p.add_argument("--env-kwargs", default=None, help="env keywords KEY=VALUE,... (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=2024, help="seed of the fresh samples (training used 0)")
    p.add_argument("--samples", type=int, default=2000, help="fresh samples of the quality comparison")
    p.add_argument("--batch", type=int, default=1000, help="the large batch size B (best of --repeats)")
    p.add_argument("--repeats", type=int, default=3, help="calls per measurement at the large B")
    p.add_argument("--latency-samples", type=int, default=200, help="single observations timed at B = 1")
    p.add_argument("--max-iterations", type=int, default=256, help="largest truncation searched")
    p.add_argument("--converged", default="max_iter=2000,tol=1e-7",
                   help="wmmse keywords of the converged reference of the ratios")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--quiet", action="store_true", help="do not print every search step")
    args = p.parse_args(argv)
    if args.pretrained is not None and args.checkpoint is not None:
        p.error("pass --pretrained or --checkpoint, not both")
    for flag in ("samples", "batch", "repeats", "latency_samples", "max_iterations", "threads"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1")
    torch.set_num_threads(args.threads)

    kwargs = parse_kv(args.solver_kwargs)
    if args.pretrained is not None:
        kwargs["pretrained"] = pretrained_value(args.pretrained)
    if args.checkpoint is not None:
        kwargs["checkpoint"] = args.checkpoint
    learned = solvers.make(args.solver, **kwargs)
    meta = getattr(learned, "meta", {}) or {}
    env_id = args.env or meta.get("env_id")
    if not env_id:
        p.error(f"{args.solver}: no env_id in the checkpoint's meta; pass --env")
    if args.env_kwargs is not None:
        env_kwargs = parse_kv(args.env_kwargs)
    else:
        env_kwargs = dict(meta.get("env_kwargs") or {}) if env_id == meta.get("env_id") else {}
    scenario = f"{env_id}({','.join(f'{k}={v}' for k, v in env_kwargs.items())})"
    label = args.solver + (f" ({'default' if kwargs.get('pretrained') is True else kwargs['pretrained']})"
                           if "pretrained" in kwargs else f" ({args.checkpoint})" if args.checkpoint else "")

    n_obs = max(args.samples, args.batch, args.latency_samples)
    obs = ObservationSampler(env_id, seed=args.seed, **env_kwargs)(n_obs)
    wmmse = solvers.make("wmmse")
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    load_before = os.getloadavg()[0]
    print(f"{command}\n{datetime.datetime.now().isoformat(timespec='seconds')}; torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {load_before:.1f} on {os.cpu_count()} cores; {label} on {scenario}, "
          f"sampler seed {args.seed}\n")

    timing = {}
    for b in (1, args.batch):
        timer = Timer(obs, b, args.latency_samples, args.repeats)
        search = equal_time_iterations(learned.act_batch, timer, args.max_iterations, log)
        timing[b] = {**confirm(learned.act_batch, wmmse.act_batch, timer, search["n"]), "how": timer.how,
                     "search": search["trials"]}
        if search["n"] != timing[b]["n"]:
            timing[b]["searched_n"] = search["n"]

    quality_obs = _slice(obs, 0, args.samples)
    converged = solvers.make("wmmse", **parse_kv(args.converged))
    wsr = {"converged": mean_wsr(converged, quality_obs), "wmmse": mean_wsr(wmmse, quality_obs),
           "learned": mean_wsr(learned, quality_obs)}
    for n in sorted({max(t["n"], 1) for t in timing.values()}):
        wsr[f"truncated_{n}"] = mean_wsr(solvers.make("truncated_wmmse", iterations=n), quality_obs)

    def us(seconds, b):
        return "-" if seconds is None else f"{1e6 * seconds / b:.1f}"

    print("| solver (checkpoint) | scenario | B | timing | learned us/decision | WMMSE us/decision | "
          "n: truncated WMMSE within the learned time | truncated n us/decision | truncated n+1 us/decision |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b, t in timing.items():
        print(f"| {label} | {scenario} | {b} | {t['how']} | {us(t['learned'], b)} | {us(t['wmmse'], b)} | {t['n']} | "
              f"{us(t['truncated_n'], b)} | {us(t['truncated_n_plus_1'], b)} |")
    ref = wsr["converged"]
    print(f"\nWeighted sum rate on {args.samples} fresh samples (seed {args.seed}); ratios to WMMSE "
          f"({args.converged}) and to WMMSE (default)\n")
    print("| solver | WSR | ratio to converged WMMSE | ratio to default WMMSE |")
    print("|---|---|---|---|")
    names = {"converged": f"wmmse ({args.converged})", "wmmse": "wmmse (default)", "learned": label}
    for key, value in wsr.items():
        name = names.get(key) or f"truncated_wmmse (iterations={key.split('_')[1]})"
        print(f"| {name} | {value:.4f} | {100 * value / ref:.2f} % | {100 * value / wsr['wmmse']:.2f} % |")
    verdicts = {}
    for b, t in timing.items():
        n = t["n"]
        if n >= 1:
            verdict = "yes" if wsr["learned"] > wsr[f"truncated_{n}"] else "no"
        elif wsr["learned"] > wsr["truncated_1"]:  # WMMSE's sum rate never decreases over its iterations
            verdict = "yes (not one WMMSE iteration fits in its time, and it beats even one iteration)"
        else:
            verdict = ("undecided (not one WMMSE iteration fits in its time; one iteration beats it, "
                       "WMMSE's starting point is not scored here)")
        if not t["settled"]:
            verdict += "; timing not settled: n and n + 1 measured too close to the learned solver to tell"
        verdicts[b] = verdict
        print(f"\nB = {b}: does {label} beat WMMSE stopped at its time budget ({n} iteration(s))? {verdict}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    result = {"command": command, "solver": label, "env_id": env_id, "env_kwargs": env_kwargs, "seed": args.seed,
              "threads": args.threads, "load_before": load_before, "load_after": os.getloadavg()[0],
              "timing": {str(b): t for b, t in timing.items()}, "wsr": wsr, "beats_equal_time_wmmse":
              {str(b): v for b, v in verdicts.items()}}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
