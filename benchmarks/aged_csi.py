"""Aged and noisy channel state (issue 14): what each power-control solver keeps of perfect-CSI WMMSE, and a
per-slot bound on what any decision from the observation can keep.

Three parts, on ``PowerControl-IC-v0`` (K = 10), ``PowerControl-AdHoc-v0`` (K = 20, fixed topology) and
``PowerControl-D2D-v0`` (K = 50), every env at its defaults otherwise:

1. ``speed`` sweep (0 -> 30 m/s, 1 ms slots, ``csi_delay=1``) and ``csi_error`` sweep (0 -> 0.5, no delay,
   no mobility: ``speed`` unset, so slots are independent), through the evaluation harness
   (:func:`l2o_env.evaluation.evaluate`, ``--slots`` slots per point, seed ``--seed``): every solver's ratio
   of mean weighted sum rates to the harness's genie row ``wmmse (perfect CSI)``.
2. At every sweep point, on ``--sweep-episodes`` x 10 slots of its own (episodes as the harness runs them,
   see 3), the per-slot bound (below) beside perfect-CSI WMMSE: the ``bound`` curve of the figure.
3. The bound table at 30 m/s, 1 ms slots, ``csi_delay=1`` (rho = 0.51): ``--episodes`` episodes x 10 slots
   (``BatchSim`` of the env's own config, stepped as the env steps; its first slot is what
   ``ObservationSampler(env_id, seed, **kw)(B, with_truth=True)`` returns); on these same observations
   every solver, WMMSE on the conditional mean gain (genie large scale), the bound, and the bound's optimiser
   on perfect CSI and on the aged observation taken as true (how much of the bound's margin is optimisation:
   WMMSE's default stopping rule ends a few % short on AdHoc / D2D); ratios of means to perfect-CSI WMMSE
   with delta-method 95 % intervals over episodes; the share of WMMSE's aging loss each row recovers. Also
   on the IC at 10 dB (``ic-10db``), the SNR WCGCN's perfect-CSI ``ic10`` checkpoint was trained at. The bound's
   stability in the number of draws M is checked on the first ``--check-slots`` slots of every episode.

The per-slot bound (:func:`best_per_slot`; "best per-slot decision"): for each observation, draw ``M``
samples of the true current gain matrix from its conditional distribution given the observation, and
maximise the sample average of the weighted sum rate over the powers ``p in [0, pmax]^K``: SAA-WMMSE (the
WMMSE block-coordinate ascent on the average over the draws: the u/w updates per draw, one closed-form
v-update for the common powers, monotone in the SAA objective) from several starts (full power, WMMSE on
the observation, the predictive baseline's powers, WMMSE on the conditional-mean gains), then projected
gradient ascent (Adam on ``p / pmax``, clipped to [0, 1]) from each; the start whose result has the best
average WSR on a second, independent set of ``M`` draws is the decision. That decision is then scored on the
TRUE channel, like every row: the number is the achievable rate of a decision that used only the
observation and the conditional model. It is a lower estimate of the best per-slot expected WSR (local
search, finite M); its in-sample value (the SAA objective on the draws it was chosen on) is reported too and
is optimistic.

The conditional model (exact for these envs, DESIGN.md "Channel-state information"): every gain is
``g = L |f|^2`` with ``f ~ CN(0, 1)`` Gauss-Markov (``rho = J0(2 pi f_d T)``) and the estimate's fading
``a = sqrt(1 - e^2) f_(t-d) + e z``, so ``f_t | a ~ CN(c a, 1 - c^2)``, ``c = rho^d sqrt(1 - e^2)``; the
observed gain gives ``|a| = sqrt(g_hat / L_obs)`` and, the noise being circular, ``|f_t|^2`` depends on ``a``
only through ``|a|``: a draw is ``L_true |c |a| + sqrt(1 - c^2) w|^2``, ``w ~ CN(0, 1)``, independently per
entry. The bound is GENIE-AIDED in the model: it knows ``rho``, ``d``, ``e`` (as ``wmmse_predictive`` does)
and, unlike any solver, the large-scale gains: ``L_obs`` of the observed slot (the channel model's
``large_scale`` at the observation's positions, with the layout's shadowing) and ``L_true`` of the current
slot (at the true current positions: 3 cm further at 30 m/s in 1 ms). It uses only the newest observation
(with ``csi_error = 0`` the Gauss-Markov fading makes older gains irrelevant given it; with independent
slots nothing else is relevant either).

    nice -n 10 python benchmarks/aged_csi.py                        # everything (~10 min, loaded 2 cores)
    python benchmarks/aged_csi.py --quick                            # smoke run (~1.5 min)
    python benchmarks/aged_csi.py --parts bound --envs d2d --extra d2d:wcgcn:d2d-aged
    python benchmarks/aged_csi.py --parts bound --envs adhoc --extra adhoc:uwmmse:runs/aged/x.pt

Checkpoints ``solvers/checkpoints/<name>-<tag>.pt`` whose tag contains ``aged`` and which were trained on the
env are added as rows automatically (``--no-auto-aged`` turns that off); ``--extra ENV:NAME:TAG_OR_PATH``
adds any other (a ``.pt`` path is loaded with ``checkpoint=``). Results: ``--out`` (default
``runs/aged_csi/``): ``results.json``, the harness's JSON/CSV per sweep, the figure ``aged_csi.png``
(``--figure`` copies it elsewhere too). 1 torch thread (``--threads``), ``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import solvers  # noqa: E402
from l2o_env.channels.base import complex_normal  # noqa: E402
from l2o_env.envs.core import BatchSim, parse_config  # noqa: E402
from l2o_env.rates import weighted_sum_rate  # noqa: E402
from solvers.wmmse_core import wmmse_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: env key -> (env ID, env kwargs (the env defaults), learned rows: label -> (name, kwargs))
ENVS = {
    "ic": ("PowerControl-IC-v0", {"num_links": 10}, {
        "wcgcn (ic10)": ("wcgcn", {"pretrained": "ic10"}),
        "mlp (ic10)": ("mlp", {"pretrained": "ic10"}),
    }),
    "adhoc": ("PowerControl-AdHoc-v0", {"num_links": 20}, {
        "uwmmse (fixed)": ("uwmmse", {"pretrained": "fixed"}),
    }),
    "d2d": ("PowerControl-D2D-v0", {"num_links": 50}, {
        "wcgcn": ("wcgcn", {"pretrained": "default"}),
    }),
    # the IC at the SNR WCGCN's perfect-CSI ic10 checkpoint was trained at (the env default is 0 dB): bound table only
    "ic-10db": ("PowerControl-IC-v0", {"num_links": 10, "snr_db": 10.0}, {
        "wcgcn (ic10)": ("wcgcn", {"pretrained": "ic10"}),
    }),
}
LEARNED_NAMES = ("uwmmse", "wcgcn", "mlp")
#: the aged setting of the bound table (rho = J0(2 pi 30 m/s 2.4 GHz / c x 1 ms) = 0.51)
AGED = {"speed": 30.0, "slot_duration": 0.001, "csi_delay": 1}
SPEEDS = (0.0, 3.0, 10.0, 20.0, 30.0)
ERRORS = (0.0, 0.1, 0.2, 0.3, 0.5)
EPISODE_LENGTH = 10  # the harness's MOBILE_EPISODE_LENGTH
GENIE = "wmmse (perfect CSI)"
COND_MEAN = "wmmse on E[g | obs] (genie L)"
BOUND = "bound: best per-slot (SAA)"
#: the bound's optimiser with perfect CSI (on the truth) and on the aged observation taken as the truth (c = 1)
OPT_PERFECT = "same optimiser on perfect CSI"
OPT_AGED = "same optimiser on the aged obs. (c = 1)"
#: gain entries (b x M x K x K) per chunk of observations in the bound (16 MB in float64)
CHUNK_ENTRIES = 1 << 21


# ================================================================================================
# The per-slot bound
# ================================================================================================
def correlation(config) -> float:
    """c = rho^d sqrt(1 - e^2): correlation of the observed and the current normalised fading coefficient."""
    d, e = config.csi_delay, config.csi_error
    rho = 0.0 if config.fading_correlation is None else config.fading_correlation
    return (1.0 if d == 0 else rho**d) * math.sqrt(1.0 - e * e)


def conditional_gains(gain_obs, large_obs, large_true, c, draws, rng) -> np.ndarray:
    """``draws`` samples ``(B, M, K, K)`` of the true current gains given the observed ``gain_obs (B, K, K)``:
    ``L_true |c |a| + sqrt(1 - c^2) w|^2``, ``|a| = sqrt(g_hat / L_obs)``, ``w ~ CN(0, 1)`` (module docstring).
    ``large_obs`` / ``large_true`` broadcast against ``(B, K, K)``. With ``c = 1`` every draw is
    ``L_true g_hat / L_obs`` (the observation itself when the two large scales agree)."""
    gain_obs = np.asarray(gain_obs, dtype=np.float64)
    large_obs = np.broadcast_to(np.asarray(large_obs, dtype=np.float64), gain_obs.shape)
    large_true = np.broadcast_to(np.asarray(large_true, dtype=np.float64), gain_obs.shape)
    power = np.maximum(gain_obs, 0.0) / large_obs  # |a|^2
    if c == 1.0:
        return np.broadcast_to((large_true * power)[:, None], (gain_obs.shape[0], draws, *gain_obs.shape[1:])).copy()
    amp = np.sqrt(power)[:, None]  # (B, 1, K, K)
    f = complex_normal(rng, (gain_obs.shape[0], draws, *gain_obs.shape[1:]))
    f *= math.sqrt(max(0.0, 1.0 - c * c))
    f += c * amp
    return large_true[:, None] * (f.real**2 + f.imag**2)


def _pieces(draws: torch.Tensor):
    """Cross gains (zero diagonal) ``(b, M, K, K)`` and direct gains ``(b, M, K)`` of the draws."""
    k = draws.shape[-1]
    direct = torch.diagonal(draws, dim1=-2, dim2=-1).contiguous()
    cross = draws * (1.0 - torch.eye(k, dtype=draws.dtype))
    return cross, direct


def saa_wsr(cross, direct, noise, weight, power) -> torch.Tensor:
    """Average over the draws of the weighted sum rate of ``power (b, S, K)`` (S candidates per observation):
    ``(b, S)``. ``cross (b, M, K, K)``, ``direct (b, M, K)``, ``noise`` / ``weight`` ``(b, K)``. Differentiable."""
    b, m, k, _ = cross.shape
    interf = (cross.reshape(b, m * k, k) @ power.transpose(1, 2)).reshape(b, m, k, -1).permute(0, 3, 1, 2)
    sinr = direct[:, None] * power[:, :, None] / (noise[:, None, None] + interf)  # (b, S, M, K)
    return (weight[:, None, None] * torch.log2(1.0 + sinr)).sum(-1).mean(-1)


@torch.no_grad()
def saa_wmmse(cross, direct, noise, pmax, weight, power, iterations) -> torch.Tensor:
    """WMMSE on the sample average: per draw m the MMSE receiver ``u_km`` and weight ``w_km = 1 + SINR_km``,
    then the common amplitudes ``v_k = [sum_m a_k w_km u_km sqrt(g_kk,m) / sum_m sum_j a_j w_jm u_jm^2
    g_jk,m]_0^sqrt(pmax_k)`` (the exact maximiser of the WMMSE surrogate summed over the draws, so the SAA
    objective never decreases). ``power (b, S, K)`` are the starts; returns the powers after
    ``iterations`` updates."""
    b, m, k, _ = cross.shape
    amp = direct.sqrt()[:, None]  # (b, 1, M, K)
    vmax = pmax.sqrt()[:, None]  # (b, 1, K)
    flat = cross.reshape(b, m * k, k)
    v = power.clamp_min(0.0).sqrt()
    a = weight[:, None, None]
    for _ in range(iterations):
        p = v * v
        interf = (flat @ p.transpose(1, 2)).reshape(b, m, k, -1).permute(0, 3, 1, 2)  # (b, S, M, K)
        signal = direct[:, None] * p[:, :, None]
        rest = noise[:, None, None] + interf
        w = 1.0 + signal / rest
        u = amp * v[:, :, None] / (rest + signal)
        num = (a * w * u * amp).sum(2)  # (b, S, K)
        coeff = a * w * u * u  # (b, S, M, K)
        den = (coeff.reshape(b, -1, m * k) @ flat) + (coeff * direct[:, None]).sum(2)  # (b, S, K)
        v = torch.minimum((num / den.clamp_min(torch.finfo(v.dtype).tiny)).clamp_min(0.0), vmax)
    return v * v


def projected_ascent(cross, direct, noise, pmax, weight, power, steps, lr=0.02) -> torch.Tensor:
    """Projected gradient ascent (Adam on ``x = p / pmax``, clipped to [0, 1] after every step) of
    :func:`saa_wsr` from ``power (b, S, K)``; returns the best iterate per candidate (never worse than the
    start)."""
    x = (power / pmax[:, None]).clamp(0.0, 1.0).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    with torch.no_grad():
        best = x.detach().clone()
        best_val = saa_wsr(cross, direct, noise, weight, best * pmax[:, None])
    for _ in range(steps):
        opt.zero_grad()
        val = saa_wsr(cross, direct, noise, weight, x * pmax[:, None])
        (-val.sum()).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
            now = saa_wsr(cross, direct, noise, weight, x * pmax[:, None])
            better = now > best_val
            best[better] = x[better]
            best_val = torch.where(better, now, best_val)
    return best * pmax[:, None]


def best_per_slot(obs, large_obs, large_true, c, starts, draws, rng, wmmse_iterations=100, ascent_steps=100,
                  chunk_entries=CHUNK_ENTRIES):
    """The bound's decision for every observation: powers ``(B, K)`` and their in-sample SAA value ``(B,)``.

    ``obs``: power-control observations (``gain``, ``noise``, ``pmax``, ``weight``, batch first);
    ``large_obs`` / ``large_true``: large-scale gains of the observed and the current slot (broadcast to
    ``(B, K, K)``); ``c``: :func:`correlation`; ``starts``: list of ``(B, K)`` start powers; ``draws``: M; ``rng``:
    a ``np.random.Generator`` for the draws (two independent sets: one to optimise on, one to choose the
    start with). Runs in chunks of observations (``chunk_entries`` gain entries each)."""
    gain = np.asarray(obs["gain"], dtype=np.float64)
    n, k = gain.shape[0], gain.shape[-1]
    large_obs = np.broadcast_to(np.asarray(large_obs, dtype=np.float64), gain.shape)
    large_true = np.broadcast_to(np.asarray(large_true, dtype=np.float64), gain.shape)
    start = torch.as_tensor(np.stack([np.asarray(s, dtype=np.float64) for s in starts], axis=1))  # (B, S, K)
    t = {key: torch.as_tensor(np.asarray(obs[key], dtype=np.float64)) for key in ("noise", "pmax", "weight")}
    chunk = max(1, chunk_entries // (draws * k * k))
    out, value = np.empty((n, k)), np.empty(n)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        fit = torch.as_tensor(conditional_gains(gain[sl], large_obs[sl], large_true[sl], c, draws, rng))
        check = torch.as_tensor(conditional_gains(gain[sl], large_obs[sl], large_true[sl], c, draws, rng))
        noise, pmax, weight = t["noise"][sl], t["pmax"][sl], t["weight"][sl]
        cross, direct = _pieces(fit)
        cand = saa_wmmse(cross, direct, noise, pmax, weight, start[sl], wmmse_iterations)
        if ascent_steps:
            cand = projected_ascent(cross, direct, noise, pmax, weight, cand, ascent_steps).detach()
        with torch.no_grad():
            in_sample = saa_wsr(cross, direct, noise, weight, cand)
            held_out = saa_wsr(*_pieces(check), noise, weight, cand)
        pick = held_out.argmax(dim=1)
        rows = torch.arange(pick.shape[0])
        out[sl] = cand[rows, pick].numpy()
        value[sl] = in_sample[rows, pick].numpy()
    return out, value


# ================================================================================================
# Rows
# ================================================================================================
def aged_rows(env_key: str, auto: bool, extra: list[str]) -> dict[str, tuple[str, dict]]:
    """Rows of aged-CSI-trained checkpoints for ``env_key``: the shipped ones whose tag contains ``aged`` and
    which were trained on the env (``auto``), then ``--extra ENV:NAME:TAG_OR_PATH`` entries for this env."""
    from solvers.learned import shipped_checkpoints

    env_id = ENVS[env_key][0]
    rows = {}
    if auto:
        for name in LEARNED_NAMES:
            for entry in shipped_checkpoints(name):
                if "aged" in entry["tag"] and entry["env_id"] == env_id:
                    rows[f"{name} ({entry['tag']})"] = (name, {"pretrained": entry["tag"]})
    for item in extra:
        key, name, what = item.split(":", 2)
        if key != env_key:
            continue
        if what.endswith(".pt"):
            rows[f"{name} ({Path(what).stem})"] = (name, {"checkpoint": what})
        else:
            rows[f"{name} ({what})"] = (name, {"pretrained": what})
    return rows


def solver_rows(env_key: str, aged: dict, seed: int) -> dict[str, tuple[str, dict]]:
    """Every harness row but the genie (which the harness adds): classical, learned, aged-trained."""
    return {"wmmse": ("wmmse", {}), "wmmse_predictive": ("wmmse_predictive", {}),
            **ENVS[env_key][2], **aged,
            "max_power": ("max_power", {}), "random_power": ("random_power", {"seed": seed})}


# ================================================================================================
# Episodes of our own: every row, WMMSE on the conditional mean, and the bound on the same observations
# ================================================================================================
def large_scales(config, sim, obs):
    """The genie's large-scale gains: of the observed slot (the model's ``large_scale`` at the observation's
    positions, with the layout's shadowing) and of the current slot (the true layout)."""
    model = config.model
    true = model.large_scale(sim.layout)
    if config.has_geometry and config.csi_delay > 0:
        return model.large_scale(dataclasses.replace(sim.layout, tx_pos=obs["tx_pos"], rx_pos=obs["rx_pos"])), true
    return true, true


def conditional_mean_gain(gain_obs, large_obs, large_true, c):
    """``E[g_true | g_hat] = L_true (c^2 g_hat / L_obs + 1 - c^2)`` (the genie's large scale)."""
    return large_true * (c * c * np.asarray(gain_obs) / large_obs + (1.0 - c * c))


def run_episodes(env_id, env_kwargs, rows, episodes, seed, draws=64, bound=True, perfect_bound=False,
                 draw_seed=None, length=EPISODE_LENGTH, wmmse_iterations=100, ascent_steps=100,
                 draws_check=(), check_slots=0):
    """``episodes`` episodes of ``length`` slots of ``env_id(**env_kwargs)`` (one ``BatchSim``, reset once with
    ``np.random.default_rng(seed)``, stepped as the env steps); every row of ``rows`` (``label -> (name,
    kwargs)``; ``wmmse_predictive`` gets rho, d, e from the config, stateful solvers are reset at the episode
    start) acts on the observation, the genie WMMSE on the truth, :data:`COND_MEAN` on the conditional mean
    gain, and (``bound``) :func:`best_per_slot` with ``draws`` draws; ``perfect_bound``: the same optimiser on
    the true channel and on the observation taken as true (``c = 1``, one draw; :data:`OPT_PERFECT`,
    :data:`OPT_AGED`). All scored on the true channel. ``draws_check``: M values whose
    bound is also computed on the first ``check_slots`` slots of every episode.

    Returns ``{"wsr": {label: (episodes, length) array}, "in_sample": ..., "draws_check": {M: (episodes,
    check_slots)}, "rho": ..., "c": ..., "seconds": {label: s}}``."""
    config = parse_config(env_id, **env_kwargs)
    sim = BatchSim(config, episodes)
    rng = np.random.default_rng(seed)
    draw_rng = np.random.default_rng(seed + 1 if draw_seed is None else draw_seed)
    sim.reset(rng)
    c = correlation(config)
    built = {}
    for label, (name, kwargs) in rows.items():
        kw = dict(kwargs)
        if name == "wmmse_predictive":
            kw.setdefault("rho", config.fading_correlation if config.fading_correlation is not None else 0.0)
            kw.setdefault("csi_delay", config.csi_delay)
            kw.setdefault("csi_error", config.csi_error)
        built[label] = solvers.make(name, **kw)
        built[label].reset()
    genie = solvers.make("wmmse")
    cond = solvers.make("wmmse")
    labels = [GENIE, *built, COND_MEAN, *([BOUND] if bound else []),
              *([OPT_PERFECT, OPT_AGED] if perfect_bound else [])]
    wsr = {label: np.zeros((episodes, length)) for label in labels}
    in_sample = np.full((episodes, length), np.nan)
    checks = {m: np.zeros((episodes, check_slots)) for m in draws_check}
    seconds = dict.fromkeys(labels, 0.0)

    def score(label, truth, power, t):
        wsr[label][:, t] = weighted_sum_rate(truth["gain"], power, truth["noise"], truth["weight"])

    for t in range(length):
        obs = {k: v.astype(np.float64) for k, v in sim.observation().items()}
        truth = {k: v.astype(np.float64) for k, v in sim.true_observation().items()}
        actions = {}
        for label, solver in [(GENIE, genie), *built.items()]:
            t0 = time.perf_counter()
            actions[label] = solver.act_batch(truth if label == GENIE else obs)
            seconds[label] += time.perf_counter() - t0
            score(label, truth, actions[label], t)
        large_obs, large_true = large_scales(config, sim, obs)
        mean_gain = conditional_mean_gain(obs["gain"], large_obs, large_true, c)
        actions[COND_MEAN] = cond.act_batch({**obs, "gain": mean_gain})
        score(COND_MEAN, truth, actions[COND_MEAN], t)
        starts = [obs["pmax"], actions["wmmse"], actions["wmmse_predictive"], actions[COND_MEAN]]
        if bound:
            t0 = time.perf_counter()
            power, value = best_per_slot(obs, large_obs, large_true, c, starts, draws, draw_rng,
                                         wmmse_iterations=wmmse_iterations, ascent_steps=ascent_steps)
            seconds[BOUND] += time.perf_counter() - t0
            score(BOUND, truth, power, t)
            in_sample[:, t] = value
        if perfect_bound:
            for label, seen, start in ((OPT_PERFECT, truth, actions[GENIE]), (OPT_AGED, obs, actions["wmmse"])):
                t0 = time.perf_counter()
                power, _ = best_per_slot(seen, 1.0, 1.0, 1.0, [seen["pmax"], start], 1, draw_rng,
                                         wmmse_iterations=wmmse_iterations, ascent_steps=ascent_steps)
                seconds[label] += time.perf_counter() - t0
                score(label, truth, power, t)
        if t < check_slots:
            for m in draws_check:
                power, _ = best_per_slot(obs, large_obs, large_true, c, starts, m, draw_rng,
                                         wmmse_iterations=wmmse_iterations, ascent_steps=ascent_steps)
                checks[m][:, t] = weighted_sum_rate(truth["gain"], power, truth["noise"], truth["weight"])
        sim.advance(rng, None)
    return {"wsr": wsr, "in_sample": in_sample, "draws_check": checks, "rho": config.fading_correlation, "c": c,
            "seconds": seconds}


def ratio_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ratio of means ``mean(x) / mean(y)`` over paired units and its delta-method 95 % half-width."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    r = x.mean() / y.mean()
    n = x.size
    half = 1.96 * np.std(x - r * y, ddof=1) / (math.sqrt(n) * abs(y.mean())) if n > 1 else float("nan")
    return float(r), float(half)


def summarise(res) -> dict:
    """Per label: mean WSR and the ratio to the genie (units: episodes, each the mean of its slots)."""
    ref = res["wsr"][GENIE].mean(axis=1)
    out = {}
    for label, w in res["wsr"].items():
        r, half = ratio_ci(w.mean(axis=1), ref)
        out[label] = {"mean_wsr": float(w.mean()), "ratio": r, "ratio_ci95": half}
    if not np.isnan(res["in_sample"]).all():
        out[BOUND]["in_sample_ratio"] = float(np.nanmean(res["in_sample"]) / res["wsr"][GENIE].mean())
    return out


# ================================================================================================
# The harness sweeps
# ================================================================================================
SWEEPS = {
    # knob -> (fixed env kwargs, values)
    "speed": ({"slot_duration": 0.001, "csi_delay": 1}, SPEEDS),
    "csi_error": ({}, ERRORS),
}


def harness_sweep(env_key, knob, values, rows, slots, seed, out_dir):
    """``evaluate`` of every row at every value of ``knob``; returns ``{label: [row dicts in sweep order]}``."""
    from l2o_env.evaluation import evaluate

    env_id, base, _ = ENVS[env_key]
    fixed, _ = SWEEPS[knob]
    result = evaluate(dict(rows), env_id, {**base, **fixed}, slots=slots, seed=seed, sweep={knob: list(values)})
    result.save(out_dir / f"sweep_{env_key}_{knob}.json")
    table = {}
    for r in result.rows:
        table.setdefault(r["solver"], []).append(
            {"value": r["sweep_value"], "rho": r.get("fading_correlation"), "mean_wsr": r["mean_wsr"],
             "ratio": r["ratio_to_reference"], "ratio_ci95": r.get("ratio_ci95"), "slots": r["slots"],
             "note": r["note"]})
    return table, result.config.get("episodes"), result.config.get("episode_length")


def sweep_bound(env_key, knob, values, episodes, draws, seed):
    """The bound (and the genie) at every sweep value, on episodes of our own (:func:`run_episodes`)."""
    env_id, base, _ = ENVS[env_key]
    fixed, _ = SWEEPS[knob]
    out = []
    for i, value in enumerate(values):
        kwargs = {**base, **fixed, knob: value}
        mobile = kwargs.get("speed") is not None
        res = run_episodes(env_id, kwargs, {"wmmse": ("wmmse", {}), "wmmse_predictive": ("wmmse_predictive", {})},
                           episodes if mobile else episodes * EPISODE_LENGTH, seed + 1000 * i, draws=draws,
                           length=EPISODE_LENGTH if mobile else 1)
        s = summarise(res)
        out.append({"value": value, "rho": res["rho"], "c": res["c"], "obs": int(res["wsr"][GENIE].size),
                    **{label: s[label] for label in (BOUND, COND_MEAN, "wmmse", "wmmse_predictive")},
                    "genie_mean_wsr": s[GENIE]["mean_wsr"], "bound_seconds": res["seconds"][BOUND]})
    return out


# ================================================================================================
# Text and figure
# ================================================================================================
def cell(text: str) -> str:
    """``text`` for a markdown table cell (a ``|`` escaped)."""
    return text.replace("|", "\\|")


def pct(r, half=None) -> str:
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "n/a"
    return f"{100 * r:.1f}" + ("" if half is None or math.isnan(half) else f" +/- {100 * half:.1f}")


def sweep_markdown(env_key, knob, table, bound_rows, values) -> str:
    env_id = ENVS[env_key][0]
    genie_rows = table[GENIE]
    head = []
    for v, g in zip(values, genie_rows):
        head.append(f"{v:g} m/s (rho {g['rho']:.2f})" if knob == "speed" else f"e = {v:g}")
    what = "speed (1 ms slots, csi_delay=1)" if knob == "speed" else "csi_error (no delay, independent slots)"
    lines = [f"**{env_id}**, {what}"
             f": % of `wmmse (perfect CSI)` (+/- 95 %)", "",
             "| solver | " + " | ".join(head) + " |", "|---|" + "---|" * len(values)]
    for label, rs in table.items():
        if label == GENIE:
            cells = [f"100 ({r['mean_wsr']:.3g} bit/s/Hz)" for r in rs]
        else:
            cells = [pct(r["ratio"], r["ratio_ci95"]) for r in rs]
        lines.append(f"| {cell(label)} | " + " | ".join(cells) + " |")
    if bound_rows:
        for label in (COND_MEAN, BOUND):
            lines.append(f"| *{cell(label)}* ({bound_rows[0]['obs']} obs. of its own) | "
                         + " | ".join(pct(b[label]["ratio"], b[label]["ratio_ci95"]) for b in bound_rows) + " |")
    return "\n".join(lines)


def bound_markdown(env_key, summary, res_meta, aged) -> str:
    env_id = ENVS[env_key][0]
    s = summary
    aged_loss = 1.0 - s["wmmse"]["ratio"]
    lines = [f"**{env_name(env_key)}**, 30 m/s, 1 ms, csi_delay=1: rho = {res_meta['rho']:.3f}, "
             f"c^2 = {res_meta['c'] ** 2:.3f}; {res_meta['obs']} observations ({res_meta['episodes']} episodes x "
             f"{EPISODE_LENGTH}); bound with M = {res_meta['draws']} draws", "",
             "| row | mean WSR (bit/s/Hz) | % of perfect-CSI WMMSE | share of WMMSE's aging loss recovered |",
             "|---|---|---|---|"]
    for label, v in s.items():
        rec = ("" if label in (GENIE, "wmmse") or aged_loss <= 0
               else f"{100 * (v['ratio'] - s['wmmse']['ratio']) / aged_loss:.0f} %")
        name = f"**{cell(label)}**" if label == BOUND else cell(label)
        lines.append(f"| {name} | {v['mean_wsr']:.4g} | {pct(v['ratio'], v['ratio_ci95'])} | {rec} |")
    if "in_sample_ratio" in s.get(BOUND, {}):
        lines.append(f"| bound, in-sample SAA value (optimistic) | | {pct(s[BOUND]['in_sample_ratio'])} | |")
    return "\n".join(lines)


def env_name(env_key) -> str:
    env_id, kwargs, _ = ENVS[env_key]
    extra = ", ".join(f"{k}={v:g}" for k, v in kwargs.items() if k != "num_links")
    return f"{env_id} (K = {kwargs['num_links']}{', ' + extra if extra else ''})"


def summary_markdown(all_bounds) -> str:
    lines = ["| env | rho | wmmse on aged CSI | wmmse_predictive | WMMSE on E[g\\|obs] (genie L) | "
             "best learned (label) | "
             "max_power | bound's optimiser on the aged obs. | **bound** | bound's optimiser on perfect CSI |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for env_key, b in all_bounds.items():
        s = b["summary"]
        learned = {k: v for k, v in s.items() if k.split(" ")[0] in LEARNED_NAMES}
        best = max(learned, key=lambda k: learned[k]["ratio"]) if learned else None
        lines.append(f"| {env_name(env_key)} | {b['rho']:.2f} | {pct(s['wmmse']['ratio'], s['wmmse']['ratio_ci95'])} | "
                     f"{pct(s['wmmse_predictive']['ratio'], s['wmmse_predictive']['ratio_ci95'])} | "
                     f"{pct(s[COND_MEAN]['ratio'], s[COND_MEAN]['ratio_ci95'])} | "
                     + (f"{pct(learned[best]['ratio'], learned[best]['ratio_ci95'])} ({best})" if best else "n/a")
                     + f" | {pct(s['max_power']['ratio'])} | {pct(s[OPT_AGED]['ratio'], s[OPT_AGED]['ratio_ci95'])} | "
                     f"**{pct(s[BOUND]['ratio'], s[BOUND]['ratio_ci95'])}** | "
                     f"{pct(s[OPT_PERFECT]['ratio'], s[OPT_PERFECT]['ratio_ci95'])} |")
    return "\n".join(lines)


def draws_markdown(all_bounds) -> str:
    lines, ms = [], None
    for env_key, b in all_bounds.items():
        if not b.get("draws_check"):
            continue
        ms = [m for m in b["draws_check"] if m != "main"]
        cells = [f"{pct(b['draws_check'][m]['ratio'])} ({100 * b['draws_check'][m]['diff_to_main']:+.1f} +/- "
                 f"{100 * b['draws_check'][m]['diff_ci95']:.1f})" for m in ms]
        main = b["draws_check"]["main"]
        lines.append(f"| {env_name(env_key)} | {b['draws_check_obs']} | " + " | ".join(cells)
                     + f" | {pct(main['ratio'], main['ratio_ci95'])} (M = {b['draws']}) |")
    if not lines:
        return ""
    return "\n".join(["| env | obs. | " + " | ".join(f"M = {m} (minus main, paired)" for m in ms) + " | main bound |",
                      "|---|---|" + "---|" * (len(ms) + 1), *lines])


def figure(path, sweeps, bounds_by_point):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(k for k, _ in sweeps))
    knobs = [k for k in SWEEPS if any(kk == k for _, kk in sweeps)]
    fig, axes = plt.subplots(len(knobs), len(envs), figsize=(4.6 * len(envs), 3.6 * len(knobs)), squeeze=False)
    for i, knob in enumerate(knobs):
        for j, env_key in enumerate(envs):
            ax = axes[i][j]
            table = sweeps.get((env_key, knob))
            if table is None:
                ax.axis("off")
                continue
            for label, rs in table.items():
                xs = [r["value"] for r in rs]
                ys = [100 * r["ratio"] for r in rs]
                err = [100 * (r["ratio_ci95"] or 0.0) for r in rs]
                style = {"ls": ":", "color": "k", "lw": 1} if label == GENIE else {"marker": "o", "ms": 3}
                ax.errorbar(xs, ys, yerr=err, label=label, capsize=2, **style)
            b = bounds_by_point.get((env_key, knob))
            if b:
                ax.errorbar([r["value"] for r in b], [100 * r[BOUND]["ratio"] for r in b],
                            yerr=[100 * r[BOUND]["ratio_ci95"] for r in b], color="k", ls="--", marker="s", ms=4,
                            capsize=2, label="bound (best per-slot, SAA)")
            ax.set_title(f"{ENVS[env_key][0]}", fontsize=9)
            ax.set_xlabel("speed (m/s), 1 ms slots, csi_delay=1" if knob == "speed" else "csi_error e (no delay)")
            ax.set_ylabel("% of WMMSE with perfect CSI")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ================================================================================================
# main
# ================================================================================================
def checkpoint_files() -> dict:
    """``{file name: first 12 hex digits of its sha256}`` of every shipped learned checkpoint this script may load."""
    import hashlib

    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for name in LEARNED_NAMES for path in sorted((ROOT / "solvers" / "checkpoints").glob(f"{name}*.pt"))}


def per_env(text: str, cast=int) -> dict:
    """``"ic=512,adhoc=64"`` -> ``{"ic": 512, "adhoc": 64}``; a bare number applies to every env."""
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, val = item.partition("=")
        if sep:
            out[key] = cast(val)
        else:
            out.update(dict.fromkeys(ENVS, cast(key)))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["ic", "adhoc", "d2d"], choices=list(ENVS), help="envs of the sweeps")
    p.add_argument("--bound-envs", nargs="+", default=list(ENVS), choices=list(ENVS), help="envs of the bound table")
    p.add_argument("--parts", nargs="+", default=["sweep", "bound"], choices=["sweep", "bound"])
    p.add_argument("--slots", type=int, default=500, help="harness slots per sweep point (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=30, help="bound table: episodes x 10 slots (default 30)")
    p.add_argument("--draws", default="ic=512,adhoc=64,d2d=64,ic-10db=512", help="bound table: M per env")
    p.add_argument("--sweep-episodes", type=int, default=6,
                   help="bound at each sweep point: episodes x 10 slots (x 10 single slots without a speed)")
    p.add_argument("--sweep-draws", default="ic=256,adhoc=32,d2d=32,ic-10db=256",
                   help="bound at the sweep points: M per env")
    p.add_argument("--no-sweep-bound", action="store_true", help="skip the bound at the sweep points")
    p.add_argument("--draws-check", default="16,64,256", help="M values of the stability check ('' to skip)")
    p.add_argument("--check-slots", type=int, default=2, help="the check's slots per episode (default 2)")
    p.add_argument("--extra", action="append", default=[], metavar="ENV:NAME:TAG_OR_PATH")
    p.add_argument("--no-auto-aged", action="store_true", help="do not add the shipped *aged* checkpoints")
    p.add_argument("--out", default=str(ROOT / "runs" / "aged_csi"))
    p.add_argument("--figure", action="append", default=[], help="also copy the figure here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: few slots, episodes and draws")
    args = p.parse_args(argv)
    if args.quick:
        args.slots, args.episodes, args.sweep_episodes = 40, 3, 1
        args.draws, args.sweep_draws, args.draws_check, args.check_slots = "8", "8", "4,8", 1
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    draws, sweep_draws = per_env(args.draws), per_env(args.sweep_draws)
    check_ms = [int(m) for m in filter(None, args.draws_check.split(","))]
    started = datetime.datetime.now().astimezone()
    load = [os.getloadavg()]
    t_start = time.time()
    shown = argv if argv is not None else sys.argv[1:]
    record = {"command": "python " + shlex.join([os.path.relpath(__file__, ROOT), *shown]),
              "started": started.isoformat(timespec="seconds"), "machine": platform.platform(),
              "cpus": os.cpu_count(), "torch_threads": args.threads, "args": vars(args), "sweeps": {},
              "sweep_bounds": {}, "checkpoints_at_start": checkpoint_files(),
              "bounds": {}}
    text = []
    sweeps, bounds_by_point = {}, {}
    for env_key in [k for k in ENVS if k in args.envs or k in args.bound_envs]:
        aged = aged_rows(env_key, not args.no_auto_aged, args.extra)
        rows = solver_rows(env_key, aged, args.seed)
        record.setdefault("rows", {})[env_key] = {k: [n, kw] for k, (n, kw) in rows.items()}
        if "sweep" in args.parts and env_key in args.envs:
            for knob, (_, values) in SWEEPS.items():
                t0 = time.time()
                table, episodes, length = harness_sweep(env_key, knob, values, rows, args.slots, args.seed, out_dir)
                sweeps[(env_key, knob)] = table
                t1 = time.time()
                b = [] if args.no_sweep_bound else sweep_bound(env_key, knob, values, args.sweep_episodes,
                                                               sweep_draws[env_key], args.seed)
                bounds_by_point[(env_key, knob)] = b
                record["sweeps"][f"{env_key}/{knob}"] = {"rows": table, "episodes": episodes, "episode_length": length,
                                                         "seconds": t1 - t0}
                record["sweep_bounds"][f"{env_key}/{knob}"] = {"points": b, "draws": sweep_draws[env_key],
                                                               "seconds": time.time() - t1}
                md = sweep_markdown(env_key, knob, table, b, values)
                print(md + f"\n\n({t1 - t0:.0f} s harness, {time.time() - t1:.0f} s bound)\n", flush=True)
                text.append(md)
                load.append(os.getloadavg())
        if "bound" in args.parts and env_key in args.bound_envs:
            env_id, base, _ = ENVS[env_key]
            t0 = time.time()
            res = run_episodes(env_id, {**base, **AGED}, {k: v for k, v in rows.items()}, args.episodes, args.seed + 7,
                               draws=draws[env_key], perfect_bound=True, draws_check=check_ms,
                               check_slots=args.check_slots)
            summary = summarise(res)
            ref_check = res["wsr"][GENIE][:, : args.check_slots].mean(axis=1)
            main_check = res["wsr"][BOUND][:, : args.check_slots].mean(axis=1)
            check = {}
            for m, v in res["draws_check"].items():
                diff = (v.mean(axis=1) - main_check) / ref_check.mean()  # paired, per episode
                half = 1.96 * diff.std(ddof=1) / math.sqrt(diff.size) if diff.size > 1 else float("nan")
                check[m] = {**dict(zip(("ratio", "ratio_ci95"), ratio_ci(v.mean(axis=1), ref_check))),
                            "diff_to_main": float(diff.mean()), "diff_ci95": float(half)}
            if check:  # the main bound on the same slots, for comparison
                check["main"] = dict(zip(("ratio", "ratio_ci95"), ratio_ci(main_check, ref_check)))
            meta = {"rho": res["rho"], "c": res["c"], "obs": int(res["wsr"][GENIE].size), "episodes": args.episodes,
                    "draws": draws[env_key]}
            record["bounds"][env_key] = {**meta, "summary": summary, "draws_check": check,
                                         "draws_check_obs": args.episodes * args.check_slots,
                                         "seconds": {**res["seconds"], "total": time.time() - t0},
                                         "per_episode_wsr": {k: v.mean(axis=1).tolist() for k, v in res["wsr"].items()}}
            md = bound_markdown(env_key, summary, meta, aged)
            print(md + f"\n\n({time.time() - t0:.0f} s)\n", flush=True)
            text.append(md)
            load.append(os.getloadavg())
    if record["bounds"]:
        md = summary_markdown(record["bounds"])
        dm = draws_markdown(record["bounds"])
        print("Summary at 30 m/s, 1 ms slots, csi_delay=1 (% of perfect-CSI WMMSE, +/- 95 %):\n\n" + md + "\n")
        if dm:
            print("Stability of the bound in the number of draws M:\n\n" + dm + "\n")
        text += [md, dm]
    if sweeps:
        fig = figure(out_dir / "aged_csi.png", sweeps, bounds_by_point)
        for extra in args.figure:
            Path(extra).write_bytes(Path(fig).read_bytes())
        record["figure"] = str(fig)
    record["checkpoints_at_end"] = checkpoint_files()
    changed = sorted(k for k in set(record["checkpoints_at_start"]) | set(record["checkpoints_at_end"])
                     if record["checkpoints_at_start"].get(k) != record["checkpoints_at_end"].get(k))
    record["checkpoints_changed_during_run"] = changed
    if changed:
        print(f"WARNING: checkpoints changed during the run (rows may mix versions): {', '.join(changed)}")
    record["seconds"] = time.time() - t_start
    record["load_average"] = load
    record["markdown"] = "\n\n".join(text)
    (out_dir / "results.json").write_text(json.dumps(record, indent=1, default=str))
    print(f"total {record['seconds']:.0f} s; load average {load[0][0]:.1f} -> {load[-1][0]:.1f}; "
          f"results in {out_dir / 'results.json'}")
    return record


if __name__ == "__main__":
    main()
