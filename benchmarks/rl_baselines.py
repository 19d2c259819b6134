"""RL baselines against WMMSE and the learned solvers (issue 15): PPO, SAC and TD3, centralized and per-link.

For every scenario (``ic10``: ``PowerControl-IC-v0`` with K = 10; ``imac``: ``PowerControl-IMAC-v0`` at its
defaults, 3 cells x 12 users) and setting (``perfect``: independent slots, ``speed=None``; ``aged10`` /
``aged30``: ``csi_delay=1`` with 1 ms slots at 10 / 30 m/s; ``pf``: ``weights="proportional_fair"``,
independent slots), every algorithm x formulation is trained with the same budget (``--steps`` env slots,
summed over ``--num-envs`` networks; :meth:`solvers.rl.RLSolver.fit`), saved under ``--out``, then everything
is scored by the evaluation harness (:func:`l2o_env.evaluation.evaluate`, ``--slots`` slots, seed
``--eval-seed``): ratio of mean weighted sum rates to the harness reference (WMMSE; with aged CSI the genie
row ``wmmse (perfect CSI)``, WMMSE on the true channel). For ``pf`` the harness runs episodes of
``--pf-slots`` slots (the weights evolve within one), and the long-run proportional-fair utility
``sum_i log(mean_t r_i)`` (bit/s/Hz inside the log) is also measured over ``--pf-episodes`` episodes of
``--pf-slots`` slots, every solver acting on the weights its own past rates produced.

Hyper-parameters: :data:`HYPER` (the same for every scenario and setting; the discount is the solvers'
default, 0, or ``--gamma``). A trained model is reused when its zip exists (delete
it or pass ``--retrain``).

    OMP_NUM_THREADS=1 python benchmarks/rl_baselines.py --steps 20000 --jobs 2
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads must not spin

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SCENARIOS = {
    "ic10": ("PowerControl-IC-v0", {"num_links": 10}),
    "imac": ("PowerControl-IMAC-v0", {}),
}
SETTINGS = {
    "perfect": {},
    "aged10": {"speed": 10.0, "slot_duration": 0.001, "csi_delay": 1},
    "aged30": {"speed": 30.0, "slot_duration": 0.001, "csi_delay": 1},
    "pf": {"weights": "proportional_fair"},
}
#: SB3 keywords per algorithm and formulation (SB3's defaults otherwise). Off-policy learners: 64 x 64 nets
#: (SB3's 256 x 256 / 400 x 300 cost ~10x the CPU time per update here), 2 gradient steps per vector step,
#: and SAC's entropy coefficient starting at 0.01 (at SB3's 1.0 the entropy bonus swamps per-slot rewards of
#: ~0.1-1 bit/s/Hz: per-link SAC stayed at max-power level, 49.8 % of WMMSE after 10k slots).
_OFF_POLICY = {"gradient_steps": 2, "batch_size": 256, "policy_kwargs": {"net_arch": [64, 64]}}
HYPER = {
    ("ppo", "centralized"): {"n_steps": 256, "batch_size": 64},
    ("ppo", "per_link"): {"n_steps": 16, "batch_size": 256},
    ("sac", "centralized"): {**_OFF_POLICY, "ent_coef": "auto_0.01"},
    ("sac", "per_link"): {**_OFF_POLICY, "ent_coef": "auto_0.01"},
    ("td3", "centralized"): dict(_OFF_POLICY),
    ("td3", "per_link"): dict(_OFF_POLICY),
}
ALGORITHMS = ("ppo", "sac", "td3")
FORMULATIONS = ("centralized", "per_link")


def learned_rows(scenario: str, setting: str) -> dict:
    """The shipped learned solvers that were trained on this scenario (label -> (name, kwargs))."""
    if scenario == "ic10":
        rows = {"mlp (ic10)": ("mlp", {"pretrained": "ic10"})}
        if setting.startswith("aged"):
            rows["wcgcn (ic10-aged)"] = ("wcgcn", {"pretrained": "ic10-aged"})
        return rows
    return {"mlp": ("mlp", {"pretrained": True})}


def model_path(out: Path, scenario: str, setting: str, alg: str, form: str) -> Path:
    return out / f"{scenario}-{setting}-{alg}-{form}.zip"


def train_one(out: Path, scenario: str, setting: str, alg: str, form: str, steps: int, num_envs: int, seed: int,
              gamma: float | None = None) -> dict:
    import torch

    import solvers

    torch.set_num_threads(1)
    env_id, kw = SCENARIOS[scenario]
    kw = {**kw, **SETTINGS[setting]}
    t0 = time.perf_counter()
    solver = solvers.make(alg, formulation=form, gamma=gamma, **HYPER[(alg, form)])
    solver.fit(env_id, steps=steps, seed=seed, num_envs=num_envs, **kw)
    solver.meta["train_seconds"] = round(time.perf_counter() - t0, 1)
    path = solver.save(model_path(out, scenario, setting, alg, form))
    return {"path": str(path), "seconds": solver.meta["train_seconds"], "eval": solver.meta.get("eval")}


def pf_utility(solver_specs: dict, env_id: str, kw: dict, episodes: int, slots: int, seed: int) -> dict:
    """Long-run proportional-fair utility per solver: mean over episodes of sum_i log(mean_t r_i)."""
    import gymnasium as gym

    import solvers

    out = {}
    for label, (name, skw) in solver_specs.items():
        solver = solvers.make(name, **skw)
        env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="vector_entry_point",
                           max_episode_steps=slots, **kw)
        obs, _ = env.reset(seed=seed)
        total = None
        for _ in range(slots):
            obs, _, _, _, info = env.step(solver.act_batch({k: np.asarray(v, np.float64) for k, v in obs.items()}))
            total = info["rates"] if total is None else total + info["rates"]
        env.close()
        u = np.log(np.maximum(total / slots, 1e-12)).sum(axis=-1)
        out[label] = (float(u.mean()), float(1.96 * u.std(ddof=1) / np.sqrt(len(u))))
    return out


def evaluate_one(out: Path, scenario: str, setting: str, slots: int, seed: int, pf_episodes: int, pf_slots: int,
                 algorithms, formulations) -> dict:
    import torch

    from l2o_env.evaluation import evaluate

    torch.set_num_threads(1)
    env_id, kw = SCENARIOS[scenario]
    kw = {**kw, **SETTINGS[setting]}
    specs = {"wmmse": ("wmmse", {}), "max_power": ("max_power", {}), "random_power": ("random_power", {})}
    if setting.startswith("aged"):
        specs["wmmse_predictive"] = ("wmmse_predictive", {})
    specs.update(learned_rows(scenario, setting))
    for alg in algorithms:
        for form in formulations:
            p = model_path(out, scenario, setting, alg, form)
            if p.exists():
                specs[f"{alg} ({form})"] = (alg, {"path": str(p)})
    # proportional-fair weights evolve within an episode: episodes of pf_slots slots (else one slot each)
    res = evaluate(specs, env_id, kw, slots=slots, seed=seed, episode_length=pf_slots if setting == "pf" else None)
    rows = {r["solver"]: {"wsr": r["mean_wsr"], "ratio": r["ratio_to_reference"], "ci": r.get("ratio_ci95"),
                          "ms": r.get("ms_per_slot")} for r in res.rows}
    result = {"reference": res.config.get("reference"), "rows": rows}
    if setting == "pf":
        result["pf_utility"] = pf_utility(specs, env_id, kw, pf_episodes, pf_slots, seed)
    return result


def markdown(results: dict, steps: int) -> str:
    lines = []
    for scenario in SCENARIOS:
        cols = [s for s in SETTINGS if (scenario, s) in results]
        if not cols:
            continue
        env_id, kw = SCENARIOS[scenario]
        labels: list[str] = []
        for s in cols:
            labels += [lab for lab in results[(scenario, s)]["rows"] if lab not in labels]
        lines += [f"**{env_id}** {kw or '(defaults)'}: % of the reference (WMMSE; aged CSI: WMMSE on the true channel), "
                  f"RL trained {steps:,} slots each", "",
                  "| solver | " + " | ".join(cols) + (" | PF utility |" if "pf" in cols else " |"),
                  "|---" * (len(cols) + 1 + ("pf" in cols)) + "|"]
        for lab in labels:
            cells = []
            for s in cols:
                r = results[(scenario, s)]["rows"].get(lab)
                cells.append("" if r is None else f"{100 * r['ratio']:.2f} +/- {100 * (r['ci'] or 0):.2f}")
            if "pf" in cols:
                u = results[(scenario, "pf")].get("pf_utility", {}).get(lab)
                cells.append("" if u is None else f"{u[0]:.3f} +/- {u[1]:.3f}")
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20_000, help="env slots per RL training run")
    ap.add_argument("--num-envs", type=int, default=8, help="networks stepped together in training")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--gamma", type=float, default=None, help="discount of every RL run (default: the solvers', 0)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--formulations", default=",".join(FORMULATIONS))
    ap.add_argument("--slots", type=int, default=2000, help="evaluation slots per solver and setting")
    ap.add_argument("--eval-seed", type=int, default=1)
    ap.add_argument("--pf-episodes", type=int, default=100)
    ap.add_argument("--pf-slots", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1, help="training runs in parallel (processes)")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--out", default="runs/rl_baselines")
    ap.add_argument("--only-train", nargs=4, metavar=("SCENARIO", "SETTING", "ALG", "FORM"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only_train:  # a child process of --jobs
        print(json.dumps(train_one(out, *args.only_train, args.steps, args.num_envs, args.seed, args.gamma)))
        return 0
    scenarios, settings = args.scenarios.split(","), args.settings.split(",")
    algorithms, formulations = args.algorithms.split(","), args.formulations.split(",")
    todo = [(sc, st, a, f) for sc in scenarios for st in settings for a in algorithms for f in formulations
            if args.retrain or not model_path(out, sc, st, a, f).exists()]
    running: list[tuple[tuple, subprocess.Popen]] = []
    log = out / "train_log.jsonl"
    while todo or running:
        while todo and len(running) < args.jobs:
            job = todo.pop(0)
            cmd = [sys.executable, __file__, "--only-train", *job, "--steps", str(args.steps), "--num-envs",
                   str(args.num_envs), "--seed", str(args.seed), "--out", str(out)]
            if args.gamma is not None:
                cmd += ["--gamma", str(args.gamma)]
            running.append((job, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)))
        for job, proc in list(running):
            if proc.poll() is not None:
                running.remove((job, proc))
                text = proc.stdout.read().strip().splitlines()
                rec = {"job": job, "rc": proc.returncode, **(json.loads(text[-1]) if proc.returncode == 0 and text else {})}
                print(json.dumps(rec), flush=True)
                with log.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
        time.sleep(1.0)
    results = {}
    for sc in scenarios:
        for st in settings:
            t0 = time.perf_counter()
            results[(sc, st)] = evaluate_one(out, sc, st, args.slots, args.eval_seed, args.pf_episodes, args.pf_slots,
                                             algorithms, formulations)
            print(f"evaluated {sc}/{st} in {time.perf_counter() - t0:.0f} s", flush=True)
    (out / "results.json").write_text(json.dumps({f"{k[0]}/{k[1]}": v for k, v in results.items()}, indent=1))
    print(markdown(results, args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
