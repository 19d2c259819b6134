"""The ``l2o`` command: list scenarios and solvers, evaluate solvers, train a learned solver.

Examples::

    l2o list
    l2o eval --env PowerControl-IMAC-v0 --solvers wmmse,truncated_wmmse,max_power,random_power \\
        --slots 1000 --seed 0 --out results/imac.json --plot results/imac.png
    l2o eval --env PowerControl-AdHoc-v0 --solvers truncated_wmmse,max_power --sweep density=0.5,1,2,5
    l2o eval --env PowerControl-IC-v0 --solvers a=truncated_wmmse,b=truncated_wmmse \\
        --solver-kwargs a.iterations=2,b.iterations=8
    l2o eval --rerun results/imac.json                # the same table again, from the saved config
    l2o eval --env PowerControl-IC-v0 --solvers wmmse,max_power --sweep num_links=5,10,20 --seeds 5 \
        --backend ray --ray-num-cpus 4                # 15 Ray tasks; means over 5 seeds with t intervals
    l2o train mlp --env PowerControl-IC-v0 --env-kwargs num_links=10 --steps 2000 --out runs/mlp.pt
    l2o eval --env PowerControl-IC-v0 --solvers mlp --solver-kwargs mlp.checkpoint=runs/mlp.pt

Keyword values (``--env-kwargs``, ``--solver-kwargs``, ``--sweep``) parse as int, float, bool
(``true``/``false``), ``none`` and ``A:B`` tuples of floats (``pair_distance=10:50`` -> ``(10.0, 50.0)``);
anything else stays a string (see :mod:`l2o_env.evaluation.parsing`).

Mistakes (unknown env, solver or flag, bad keyword, malformed ``--sweep``, unwritable path) end with one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main"]

TRAIN_EVAL_SAMPLES = 1000


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (status 2) instead of the usage block."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _UsageError(Exception):
    """A user mistake found by the CLI itself (exit 2)."""


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="l2o", description="Benchmark learning-to-optimize power control: list, eval, train.")
    sub = p.add_subparsers(dest="command", metavar="{list,eval,train}", parser_class=_Parser)
    sub.required = True

    sub.add_parser("list", help="env IDs and solvers with one-line descriptions",
                   description="List the registered env IDs and solvers, one line each.")

    e = sub.add_parser("eval", help="evaluate solvers on the identical channel sequence",
                       description="Run every solver on the same channels and print a table of mean weighted sum "
                                   "rate and ratio to the reference (with 95%% confidence intervals), served "
                                   "fraction, Jain's fairness index, time per slot and clipping. Exit status 1 "
                                   "when a requested solver failed (the table and files are still written).",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Values parse as int/float/bool/none; A:B is a tuple of floats (pair_distance=10:50).")
    e.add_argument("--env", help="env ID, e.g. PowerControl-IMAC-v0 (see `l2o list`)")
    e.add_argument("--solvers", help="comma-separated registry names; LABEL=NAME to list one solver twice "
                                     "(the reference is added when missing)")
    e.add_argument("--reference", help="the solver every ratio is taken to: a listed label or a registry name, "
                                       "LABEL=NAME to label it (default wmmse; e.g. wmmse_best_of, or wmmse with "
                                       "--solver-kwargs wmmse.max_iter=500,wmmse.tol=1e-6 for a converged WMMSE); "
                                       "with csi_delay/csi_error the default is the genie row 'wmmse (perfect "
                                       "CSI)', WMMSE on the true channel")
    e.add_argument("--slots", type=int, help="slots per solver and sweep point (default 1000)")
    e.add_argument("--seed", type=int, help="env seed; every solver sees the same channels (default 0)")
    e.add_argument("--seeds", type=int, metavar="N",
                   help="run N seeds, --seed, --seed+1, ..., --seed+N-1 (default 1), each a whole evaluation: the "
                        "table shows means over the seeds with 95%% Student-t intervals over them; --out keeps the "
                        "per-seed rows (JSON seed_rows, CSV column seed)")
    e.add_argument("--sweep", help="one knob and its values: speed=0,3,30 (m/s) | density=0.5,1,2 | num_links=10,20 "
                                   "| csi_error=0,0.1,0.3 | csi_delay=0,1,2")
    e.add_argument("--env-kwargs", help="gym.make keywords, e.g. num_cells=3,num_links=12")
    e.add_argument("--solver-kwargs", help="SOLVER.KEY=VALUE,..., e.g. truncated_wmmse.iterations=2")
    e.add_argument("--episode-length", type=int, help="steps per episode (default 1 for i.i.d. slots, "
                                                      "10 when a speed is set); slots = episodes x steps")
    e.add_argument("--out", help="results JSON path (the CSV is written next to it with the same stem)")
    e.add_argument("--plot", help="figure path (PNG): ratio to the reference vs the swept knob, or the sum-rate "
                                  "CDF without a sweep")
    e.add_argument("--metric", choices=("ratio", "wsr"), help="what --plot draws with 95%% error bars: ratio to "
                                                              "the reference or mean weighted sum rate (default: "
                                                              "ratio with a sweep, the sum-rate CDF without)")
    e.add_argument("--backend", choices=("serial", "ray"), help="where the sweep points run: serial (default, this "
                                                                "process) or ray (one Ray task per point and seed; "
                                                                'pip install "l2o-env[ray]"; registry solvers only, '
                                                                "checkpoint paths must exist on the workers)")
    e.add_argument("--address", help="with --backend ray: the Ray cluster to join (HOST:PORT of `ray start --head`, "
                                     "or auto); default: start a local Ray on this machine")
    e.add_argument("--ray-num-cpus", type=int, metavar="N", help="with --backend ray and no --address: CPUs of the "
                                                                 "local Ray, i.e. tasks at once (default: every core)")
    e.add_argument("--rerun", metavar="JSON", help="run again the configuration saved in JSON (a results "
                                                    "file); --slots, --seed, --seeds, --episode-length may change it")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")

    t = sub.add_parser("train", help="train a learned solver and save its checkpoint",
                       description="Train a learned solver (mlp, uwmmse, wcgcn, ...) on observations of an env, "
                                   "save it, and print its ratio to WMMSE on fresh samples.")
    t.add_argument("solver", help="registry name of a solver with fit(), e.g. mlp, uwmmse, wcgcn")
    t.add_argument("--env", required=True, help="env ID whose observations to train on")
    t.add_argument("--env-kwargs", help="gym.make keywords, e.g. num_links=20")
    t.add_argument("--solver-kwargs", help="KEY=VALUE,... for the solver's constructor (e.g. hidden=64); "
                                           "SOLVER.KEY=VALUE also works")
    t.add_argument("--steps", type=int, help="training steps (default: the solver's own)")
    t.add_argument("--seed", type=int, default=0, help="seed of the data sampler and of the training (default 0)")
    t.add_argument("--out", help="checkpoint path (default runs/{env}__{solver}__{seed}.pt)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


# --- helpers ------------------------------------------------------------------------------------------
def _check_writable(path: str, flag: str, suffixes: Sequence[str] | None = None) -> Path:
    """Make ``path``'s folder and check we can write there, before any long run starts."""
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise _UsageError(f"{flag} {path!r}: the file name must end in {' or '.join(suffixes)}")
    if p.exists() and p.is_dir():
        raise _UsageError(f"{flag} {path!r} is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"{flag} {path!r}: cannot create the folder {str(p.parent)!r} ({exc.strerror or exc})") from None
    target = p if p.exists() else p.parent
    if not os.access(target, os.W_OK):
        raise _UsageError(f"{flag} {path!r}: not writable")
    return p


def _plot_suffixes() -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return sorted(f".{s}" for s in FigureCanvasAgg.get_supported_filetypes())


def _parse_solvers(text: str | None) -> dict[str, str]:
    from l2o_env.evaluation import ConfigError

    if not text or not text.strip():
        raise ConfigError("--solvers: give at least one solver, e.g. --solvers wmmse,max_power (see `l2o list`)")
    out: dict[str, str] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        label, sep, name = item.partition("=")
        label, name = (label.strip(), name.strip()) if sep else (item, item)
        if not label or not name:
            raise ConfigError(f"--solvers: expected NAME or LABEL=NAME, got {item!r}")
        if label in out:
            raise ConfigError(f"--solvers: {label!r} is listed twice; use LABEL=NAME to tell copies apart")
        out[label] = name
    return out


# --- subcommands --------------------------------------------------------------------------------------
def _cmd_list(args) -> int:
    import solvers
    from solvers.registry import describe, problems_of

    from l2o_env.evaluation import KNOBS
    from l2o_env.problems import PROBLEMS

    try:
        from l2o_env.scenarios import SCENARIOS

        envs = [(s.env_id, s.description, s.problem) for s in SCENARIOS.values()]
    except ImportError as exc:  # pragma: no cover - scenarios is part of the package
        envs = [("(scenarios unavailable)", f"{type(exc).__name__}: {exc}", "")]
    names = solvers.available()
    rows = []
    for name in names:
        try:
            rows.append((name, describe(name) or "(no description)", problems_of(name)))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            first = str(exc).splitlines()[0] if str(exc) else ""
            rows.append((name, f"(cannot be imported: {type(exc).__name__}: {first})", frozenset()))
    width = max(len(r[0]) for r in envs + rows) + 2
    families = list(PROBLEMS) + sorted({p for *_, p in envs if p and p not in PROBLEMS})
    for fam in families:
        title = {"power": "power control"}.get(fam, fam)
        print(f"Problem {fam!r} ({title}); reference solver: {PROBLEMS[fam].reference_solver if fam in PROBLEMS else '?'}")
        print("  Environments (gym.make ID):")
        for n, d, p in envs:
            if p == fam:
                print(f"    {n.ljust(width)}{d}")
        print("  Solvers (solvers.make name):")
        for n, d, probs in rows:
            if fam in probs:
                print(f"    {n.ljust(width)}{d}")
        print()
    broken = [(n, d) for n, d, probs in rows if not probs]
    if broken:
        print("Solvers that cannot be imported:")
        for n, d in broken:
            print(f"    {n.ljust(width)}{d}")
        print()
    shipped = _shipped_rows(names)
    if shipped:
        print("Shipped checkpoints (--solver-kwargs NAME.pretrained=TAG; pretrained=true picks the one trained "
              "on the evaluated env):")
        tw = max(len(f"{n} {t}") for n, t, _ in shipped) + 2
        for n, t, d in shipped:
            print(f"  {f'{n} {t}'.ljust(tw)}trained on {d}")
    print("\nSweep knobs (--sweep KNOB=V1,V2,...):")
    for knob, info in KNOBS.items():
        print(f"  {knob.ljust(width)}{info['label']} ({info['unit']})")
    return 0


def _shipped_rows(names) -> list[tuple[str, str, str]]:
    """(solver, tag, training env) of every shipped checkpoint of the learned solvers among ``names``."""
    from l2o_env.evaluation.harness import describe_env

    try:
        from solvers.learned import shipped_checkpoints
    except ImportError:  # pragma: no cover - part of the package
        return []
    out = []
    for name in names:
        try:
            entries = shipped_checkpoints(name)
        except Exception:  # noqa: BLE001 - a broken checkpoint must not hide the list
            continue
        for e in entries:
            where = ("an unrecorded scenario" if not e.get("env_id")
                     else describe_env(e["env_id"], e.get("env_kwargs") or {}))
            out.append((name, e["tag"], where))
    return out


def _backend(args):
    """The backend of ``l2o eval`` (``--backend``, ``--address``, ``--ray-num-cpus``)."""
    ray_flags = [f for f, v in (("--address", args.address), ("--ray-num-cpus", args.ray_num_cpus)) if v is not None]
    if args.backend != "ray":
        if ray_flags:
            raise _UsageError(f"{' and '.join(ray_flags)} configure the Ray backend; add --backend ray")
        return "serial"
    if args.address is not None and args.ray_num_cpus is not None:
        raise _UsageError(f"--ray-num-cpus sizes the local Ray that --backend ray starts; a cluster (--address "
                          f"{args.address}) has the CPUs its nodes were started with: drop --ray-num-cpus")
    from l2o_env.evaluation.ray_backend import RayBackend

    return RayBackend(address=args.address, num_cpus=args.ray_num_cpus)


def _cmd_eval(args) -> int:
    from l2o_env.evaluation import ConfigError, evaluate, parse_kwargs, parse_solver_kwargs, parse_sweep, rerun

    out = _check_writable(args.out, "--out", [".json"]) if args.out else None
    plot = _check_writable(args.plot, "--plot", _plot_suffixes()) if args.plot else None
    if args.metric and plot is None:
        raise _UsageError(f"--metric {args.metric} chooses what --plot draws; give --plot PATH.png too")
    progress = not args.no_progress
    for flag in ("slots", "seed", "seeds", "episode_length", "ray_num_cpus"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "seed" else 1):
            raise _UsageError(f"--{flag.replace('_', '-')} must be >= {0 if flag == 'seed' else 1}, got {value}")
    backend = _backend(args)
    if args.rerun:
        if not Path(args.rerun).is_file():
            raise _UsageError(f"--rerun {args.rerun!r}: no such file")
        clash = [f"--{f.replace('_', '-')}" for f in ("env", "solvers", "sweep", "env_kwargs", "solver_kwargs",
                                                      "reference") if getattr(args, f) is not None]
        if clash:
            raise _UsageError(f"--rerun takes the setup from {args.rerun!r}; drop {', '.join(clash)} "
                              "(only --slots, --seed, --seeds and --episode-length can change it)")
        overrides = {f: getattr(args, f) for f in ("slots", "seed", "seeds", "episode_length")
                     if getattr(args, f) is not None}
        try:
            result = rerun(args.rerun, progress=progress, backend=backend, **overrides)
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"--rerun {args.rerun!r}: {exc}") from exc
    else:
        if not args.env:
            raise _UsageError("--env is required (e.g. --env PowerControl-IC-v0; see `l2o list`)")
        result = evaluate(_parse_solvers(args.solvers), args.env, parse_kwargs(args.env_kwargs),
                          slots=1000 if args.slots is None else args.slots,
                          seed=0 if args.seed is None else args.seed, sweep=parse_sweep(args.sweep),
                          solver_kwargs=parse_solver_kwargs(args.solver_kwargs),
                          reference=args.reference, episode_length=args.episode_length,
                          progress=progress, backend=backend, seeds=1 if args.seeds is None else args.seeds)
    # files first: a closed stdout (`| head`) must not cost the results
    written = list(result.save(out)) if out is not None else []
    if plot is not None:
        written.append(result.plot(plot, metric=args.metric))
    print(result.table())
    cfg = result.config
    if cfg.get("reference_genie"):
        print(f"({cfg['reference']} is the genie row, added because the CSI is aged or noisy: "
              f"{cfg['reference_name']} on the true current channel, the reference of the ratio; --reference "
              "changes it)")
    elif cfg.get("reference_added"):
        print(f"({cfg['reference']} was not among --solvers: it was added as the reference of the ratio)")
    for notice in cfg.get("notices", []):
        print(f"l2o eval: {notice['level']}: {notice['text']}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    failed = sorted({r["solver"] for r in result.rows if str(r.get("note", "")).startswith("failed")})
    if failed:
        print(f"l2o eval: error: solver(s) {', '.join(failed)} failed (see the note column); the other rows "
              "are valid", file=sys.stderr)
        return 1
    return 0


def _cmd_train(args) -> int:
    import solvers
    from l2o_env.evaluation import ConfigError, parse_kwargs

    env_kwargs = parse_kwargs(args.env_kwargs)
    skw = parse_kwargs(args.solver_kwargs, flag="--solver-kwargs")
    # accept both KEY=V and SOLVER.KEY=V (the eval syntax)
    prefix = f"{args.solver}."
    skw = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in skw.items()}
    if any("." in k for k in skw):
        raise ConfigError(f"--solver-kwargs: keys {[k for k in skw if '.' in k]} name another solver than {args.solver!r}")
    if args.steps is not None and args.steps < 1:
        raise _UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.seed < 0:
        raise _UsageError(f"--seed must be >= 0, got {args.seed}")
    try:
        solver = solvers.make(args.solver, **skw)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise ConfigError(f"solver {args.solver!r}: {exc}") from exc
    # an RL policy (ppo, sac, td3) trains by stepping the env, and SB3 saves zips
    rl = getattr(solver, "trains_on_env", False)
    if rl and args.steps is None:
        raise _UsageError(f"--steps is required for the RL solver {args.solver!r} (env steps, e.g. --steps 200000)")
    out = args.out or f"runs/{args.env}__{args.solver}__{args.seed}.{'zip' if rl else 'pt'}"
    out = _check_writable(out, "--out")
    if not callable(getattr(solver, "fit", None)):
        raise ConfigError(f"solver {args.solver!r} ({type(solver).__name__}) has no fit(): it is not trainable; "
                          "train a learned solver such as mlp, uwmmse or wcgcn")
    try:
        from l2o_env.data import ObservationSampler

        # an RL solver trains on the env itself, so proportional-fair weights (which the sampler refuses:
        # they depend on an episode's rates) are allowed; its closing check then draws random weights
        sample_kwargs = dict(env_kwargs)
        if rl and sample_kwargs.get("weights") == "proportional_fair":
            sample_kwargs["weights"] = "random"
        sampler = ObservationSampler(args.env, seed=args.seed, **sample_kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{args.env}: {exc}") from exc

    # a TRAINED solver built for another scenario (a loaded MLP's fixed K) fails here in one line, not
    # after training; a fresh one is sized by fit itself. The probe has its own sampler so that the
    # training data are what they would be without it.
    if getattr(solver, "is_trained", False) and not getattr(solver, "random_init", False):
        try:
            solver.act_batch(ObservationSampler(args.env, seed=args.seed, **sample_kwargs)(2))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"solver {args.solver!r} cannot act on {args.env} observations: {exc}") from exc
    fit_kwargs: dict[str, Any] = {"seed": args.seed, "progress": not args.no_progress}
    if args.steps is not None:
        fit_kwargs["steps"] = args.steps
    if rl:  # trained by stepping the env; its own tqdm bar (SB3's needs `rich`, not a dependency)
        history = None
        try:
            solver.fit(args.env, steps=args.steps, seed=args.seed, progress=not args.no_progress, **env_kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"solver {args.solver!r} cannot train on {args.env}: {exc}") from exc
    else:
        history = solver.fit(sampler, **fit_kwargs)
    if isinstance(getattr(solver, "meta", None), dict):  # the command that reproduces the checkpoint
        solver.meta["command"] = "l2o " + shlex.join(getattr(args, "argv", []))
    out = solver.save(out) or out

    # samples drawn after training are ones the solver never saw (same topology when the env fixes one);
    # scored as `l2o eval` scores them: the problem's weighted sum rate, the ratio of means to the
    # problem's reference solver with its 95 % interval over the paired samples
    from l2o_env.evaluation.metrics import ratio_ci
    from l2o_env.problems import get_problem
    from l2o_env.scenarios import get_scenario

    # with aged or noisy CSI (as `l2o eval` does) the solver acts on the observation, both are scored on the
    # true channel, and the reference is the genie: the reference solver on the true channel
    problem = get_problem(get_scenario(args.env).problem)
    reference = problem.reference_solver
    if sampler.config.csi_delay > 0 or sampler.config.csi_error > 0:
        obs, truth = sampler(TRAIN_EVAL_SAMPLES, with_truth=True)
        reference = f"{reference} (perfect CSI)"
    else:
        obs = truth = sampler(TRAIN_EVAL_SAMPLES)
    mine = problem.weighted_sum_rate(truth, solver.act_batch(obs))
    ref = problem.weighted_sum_rate(truth, solvers.make(problem.reference_solver).act_batch(truth))
    ratio, half = ratio_ci(mine, ref)
    kw = ",".join(f"{k}={v}" for k, v in env_kwargs.items())
    print(f"{args.solver} on {args.env}{f'({kw})' if kw else ''}: ratio to {reference} "
          f"{100 * ratio:.2f}% +/- {100 * half:.2f} on {TRAIN_EVAL_SAMPLES} fresh samples "
          f"(mean WSR {mine.mean():.4f} vs {ref.mean():.4f} bit/s/Hz)"
          + (" with random weights (proportional-fair ones need an episode: l2o eval)"
             if sample_kwargs.get("weights") != env_kwargs.get("weights") else ""))
    if isinstance(history, dict) and history.get("step") is not None:
        print(f"training: {len(history['step'])} steps, best validation ratio {history.get('best_val_ratio', float('nan')):.4f} "
              f"at step {history.get('best_step')}, {history.get('wall_time', float('nan')):.1f} s")
    print(f"saved {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``l2o`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `l2o train` records its command in the checkpoint
    prog = f"l2o {args.command}"
    from l2o_env.evaluation import ConfigError

    try:
        return {"list": _cmd_list, "eval": _cmd_eval, "train": _cmd_train}[args.command](args)
    except (ConfigError, _UsageError) as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `l2o eval ... | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 141
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
