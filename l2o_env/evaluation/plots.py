"""Paper-style figures of an :class:`~l2o_env.evaluation.EvaluationResult` (matplotlib, Agg canvas).

- With a sweep: the ratio to WMMSE (ratio of mean weighted sum rates) against the swept knob, one line
  per solver, WMMSE as the dashed line at 1.0 (as in the generalization plots of Chowdhury et al.,
  002, Sec. IV-E, and Shen et al., 003, Tables I-III).
- Without: the empirical CDF of the per-slot sum rate of every solver (Sun et al., 000, Fig. 7).

The figure is drawn on its own ``FigureCanvasAgg``; pyplot and the global backend are never touched,
so plotting from a notebook or a GUI session changes nothing there.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_result", "plot_sweep", "plot_cdf"]


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.6, 4.4), dpi=150)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _title(result) -> str:
    cfg = result.config
    kw = ", ".join(f"{k}={v}" for k, v in _shown_kwargs(cfg).items())
    return f"{cfg['env_id']}{f' ({kw})' if kw else ''}\n{cfg['slots']} slots per point, seed {cfg['seed']}"


def _shown_kwargs(cfg) -> dict:
    """The scenario's defaults overridden by the user's keywords, without the swept knob."""
    knob = (cfg.get("sweep") or {}).get("knob")
    merged = {**(cfg.get("scenario_defaults") or {}), **(cfg.get("env_kwargs") or {})}
    return {k: v for k, v in merged.items() if k != knob}


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def plot_sweep(result, ax) -> None:
    """Ratio to WMMSE against the swept knob on ``ax``."""
    sweep = result.config["sweep"]
    values = result.sweep_values
    if _numeric(values):
        x = np.asarray(values, dtype=float)
        positive = x[x > 0]
        if len(positive) and x.min() >= 0 and x.max() / positive.min() >= 10:
            # speeds such as 0, 3, 30 m/s: linear near 0, logarithmic above the smallest positive value
            if x.min() == 0:
                ax.set_xscale("symlog", linthresh=float(positive.min()))
            else:
                ax.set_xscale("log")
        from matplotlib.ticker import NullLocator

        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:g}" for v in x])
        ax.xaxis.set_minor_locator(NullLocator())  # only the swept values are labelled, not 3x10^0
    else:  # e.g. speed=None (i.i.d.) among numbers: categorical axis
        x = np.arange(len(values), dtype=float)
        ax.set_xticks(x)
        ax.set_xticklabels(["i.i.d." if v is None else str(v) for v in values])
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1.2, label="WMMSE (reference)")
    markers = "osD^v<>pX*h"
    for i, solver in enumerate(s for s in result.solvers if s != result.config.get("reference", "wmmse")):
        ratio = np.asarray([np.nan if r is None else r for r in result.column("ratio_to_wmmse", solver)], dtype=float)
        ax.plot(x, ratio, marker=markers[i % len(markers)], linewidth=1.5, label=solver)
    unit = sweep.get("unit", "")
    label = sweep.get("label", sweep["knob"])
    ax.set_xlabel(f"{label} ({unit})" if unit and unit != "count" else label)
    ax.set_ylabel("ratio to WMMSE (mean weighted sum rate)")
    ax.grid(True, alpha=0.3)
    # outside the axes: inside, it would sit on the WMMSE line or on the curves near 1.0
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0.0)


def plot_cdf(result, ax) -> None:
    """Empirical CDF of the per-slot sum rate of every solver on ``ax`` (Sun et al. Fig. 7)."""
    ref = result.config.get("reference", "wmmse")
    for solver in result.solvers:
        if (solver, None) not in result.per_slot_sum_rate:  # the solver failed (see the table's note)
            continue
        rates = np.sort(result.per_slot_sum_rate[(solver, None)])
        prob = np.arange(1, len(rates) + 1) / len(rates)
        ratio = result.row(solver)["ratio_to_wmmse"]
        label = f"{solver} (reference)" if solver == ref else f"{solver} ({100 * ratio:.1f}% of WMMSE)"
        style = {"color": "black", "linestyle": "--"} if solver == ref else {}
        ax.step(rates, prob, where="post", linewidth=1.5, label=label, **style)
    ax.set_xlabel("sum rate per slot (bit/s/Hz)")
    ax.set_ylabel("cumulative probability")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def plot_result(result, path: str | os.PathLike) -> Path:
    """Write the figure of ``result`` to ``path`` (PNG unless the suffix names another format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = _figure()
    if result.config.get("sweep"):
        plot_sweep(result, ax)
    else:
        plot_cdf(result, ax)
    ax.set_title(_title(result), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path
