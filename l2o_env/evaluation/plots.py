"""Paper-style figures of an :class:`~l2o_env.evaluation.EvaluationResult` (matplotlib, Agg canvas).

- With a sweep: the ratio to the reference (ratio of mean weighted sum rates; ``metric="ratio"``, the
  default) or the mean weighted sum rate itself (``metric="wsr"``) against the swept knob, one line per
  solver with 95 % error bars; the reference is the dashed line at 1.0 of the ratio plot (as in the
  generalization plots of Chowdhury et al. 2021, Sec. IV-E, and Shen et al. 2021, Tables I-III). A speed
  axis shows the fading correlation rho beside each speed.
- Without a sweep: the empirical CDF of the per-slot sum rate of every solver (Sun et al. 2018,
  Fig. 7), or with ``metric`` one bar per solver with its 95 % error bar.
- With several seeds the points are the means over the seeds and the error bars their Student-t 95 %
  intervals over the seeds (the rows' ``*_ci95``); the CDF pools the slots of every seed.

With aged or noisy CSI the genie row (``"wmmse (perfect CSI)"``, the true channel) is marked "genie" in
the legend and tick labels.

The figure is drawn on its own ``FigureCanvasAgg``; pyplot and the global backend are never touched,
so plotting from a notebook or a GUI session changes nothing there.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_result", "plot_sweep", "plot_cdf", "plot_bars", "METRICS"]

#: ``metric`` -> (row column, its 95 % half-width column, y-axis label template)
METRICS = {
    "ratio": ("ratio_to_reference", "ratio_ci95", "ratio to {ref} (mean weighted sum rate)"),
    "wsr": ("mean_wsr", "wsr_ci95", "mean weighted sum rate (bit/s/Hz)"),
}


def _label(result, solver: str, sep: str = " ") -> str:
    """``solver`` as the legend shows it: ``(reference)``, ``(genie reference)`` or ``(genie)`` appended."""
    ref = result.config.get("reference", "wmmse")
    genie = (result.config.get("genie") or {}).get("label")
    if solver == ref:
        return f"{solver}{sep}({'genie reference' if solver == genie else 'reference'})"
    return f"{solver}{sep}(genie)" if solver == genie else solver


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.6, 4.4), dpi=150)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _title(result) -> str:
    cfg = result.config
    kw = ", ".join(f"{k}={v}" for k, v in _shown_kwargs(cfg).items())
    n = int(cfg.get("seeds") or 1)
    if n > 1:
        return (f"{cfg['env_id']}{f' ({kw})' if kw else ''}\n{cfg['slots']} slots per point and seed, seeds "
                f"{cfg['seed']}..{cfg['seed'] + n - 1}: mean over {n} seeds, 95 % Student-t interval")
    return f"{cfg['env_id']}{f' ({kw})' if kw else ''}\n{cfg['slots']} slots per point, seed {cfg['seed']}"


def _shown_kwargs(cfg) -> dict:
    """The scenario's defaults overridden by the user's keywords, without the swept knob."""
    knob = (cfg.get("sweep") or {}).get("knob")
    merged = {**(cfg.get("scenario_defaults") or {}), **(cfg.get("env_kwargs") or {})}
    return {k: v for k, v in merged.items() if k != knob}


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _column(result, name: str, solver: str) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in result.column(name, solver)], dtype=float)


def plot_sweep(result, ax, metric: str = "ratio") -> None:
    """``metric`` (see :data:`METRICS`) against the swept knob on ``ax``, with 95 % error bars."""
    sweep = result.config["sweep"]
    ref = result.config.get("reference", "wmmse")
    values = result.sweep_values
    rho = {}
    if sweep["knob"] == "speed":
        for r in result.rows:
            if r.get("fading_correlation") is not None and math.isfinite(r["fading_correlation"]):
                rho[repr(r["sweep_value"])] = r["fading_correlation"]

    def tick(v) -> str:
        text = "i.i.d." if v is None else f"{v:g}" if isinstance(v, (int, float)) else str(v)
        return f"{text}\nrho={rho[repr(v)]:.2f}" if repr(v) in rho else text

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
        ax.set_xticklabels([tick(v) for v in values])
        ax.xaxis.set_minor_locator(NullLocator())  # only the swept values are labelled, not 3x10^0
    else:  # e.g. speed=None (i.i.d.) among numbers: categorical axis
        x = np.arange(len(values), dtype=float)
        ax.set_xticks(x)
        ax.set_xticklabels([tick(v) for v in values])
    column, ci, ylabel = METRICS[metric]
    if metric == "ratio":
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1.2, label=_label(result, ref))
    markers = "osD^v<>pX*h"
    shown = [s for s in result.solvers if not (metric == "ratio" and s == ref)]
    for i, solver in enumerate(shown):
        style = {"color": "black", "linestyle": "--"} if solver == ref else {}
        ax.errorbar(x, _column(result, column, solver), yerr=_column(result, ci, solver), marker=markers[i % len(markers)],
                    linewidth=1.5, capsize=3, label=_label(result, solver), **style)
    unit = sweep.get("unit", "")
    label = sweep.get("label", sweep["knob"])
    ax.set_xlabel((f"{label} ({unit})" if unit and unit != "count" else label)
                  + ("; rho = slot-to-slot fading correlation" if rho else ""))
    ax.set_ylabel(ylabel.format(ref=ref))
    ax.grid(True, alpha=0.3)
    # outside the axes: inside, it would sit on the reference line or on the curves near 1.0
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0.0)


def plot_bars(result, ax, metric: str = "wsr") -> None:
    """One bar per solver with its 95 % error bar (no sweep)."""
    column, ci, ylabel = METRICS[metric]
    ref = result.config.get("reference", "wmmse")
    solvers = result.solvers
    y = np.asarray([np.nan if result.row(s)[column] is None else result.row(s)[column] for s in solvers], dtype=float)
    err = np.asarray([np.nan if result.row(s)[ci] is None else result.row(s)[ci] for s in solvers], dtype=float)
    x = np.arange(len(solvers))
    colors = ["0.3" if s == ref else f"C{i}" for i, s in enumerate(solvers)]
    ax.bar(x, y, yerr=np.nan_to_num(err), capsize=4, color=colors)
    ax.set_xticks(x)
    ax.set_xticklabels([_label(result, s, "\n") for s in solvers], fontsize=8)
    if metric == "ratio":
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1.0)
    ax.set_ylabel(ylabel.format(ref=ref))
    ax.grid(True, axis="y", alpha=0.3)


def plot_cdf(result, ax) -> None:
    """Empirical CDF of the per-slot sum rate of every solver on ``ax`` (Sun et al. Fig. 7)."""
    ref = result.config.get("reference", "wmmse")
    for solver in result.solvers:
        if (solver, None) not in result.per_slot_sum_rate:  # the solver failed (see the table's note)
            continue
        rates = np.sort(result.per_slot_sum_rate[(solver, None)])
        prob = np.arange(1, len(rates) + 1) / len(rates)
        ratio = result.row(solver)["ratio_to_reference"]
        label = _label(result, solver) if solver == ref else f"{_label(result, solver)} ({100 * ratio:.1f}% of {ref})"
        style = {"color": "black", "linestyle": "--"} if solver == ref else {}
        ax.step(rates, prob, where="post", linewidth=1.5, label=label, **style)
    ax.set_xlabel("sum rate per slot (bit/s/Hz)")
    ax.set_ylabel("cumulative probability")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def plot_result(result, path: str | os.PathLike, metric: str | None = None) -> Path:
    """Write the figure of ``result`` to ``path`` (PNG unless the suffix names another format).

    ``metric``: ``"ratio"`` or ``"wsr"`` (:data:`METRICS`); ``None`` draws the ratio against a swept
    knob, or the sum-rate CDF when nothing is swept."""
    from l2o_env.validation import choice

    choice("plot", "metric", metric, (*METRICS, None))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = _figure()
    if result.config.get("sweep"):
        plot_sweep(result, ax, metric or "ratio")
    elif metric is None:
        plot_cdf(result, ax)
    else:
        plot_bars(result, ax, metric)
    ax.set_title(_title(result), fontsize=9)
    fig.tight_layout()
    from l2o_env.atomic import atomic_path

    with atomic_path(path) as tmp:  # a temporary file renamed over path once complete
        fig.savefig(tmp, format=path.suffix[1:] or fig.canvas.get_default_filetype())
    return path
