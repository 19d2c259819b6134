"""What the evaluation table reports, computed from per-unit values, with 95 % confidence intervals.

A *unit* is one independent observation of a solver's performance: a slot when slots are independent
(``episode_length == 1``), an episode otherwise (slots within an episode are correlated through mobility,
warm starts and proportional-fair weights, so they are averaged first and the episodes are the units).
Every mean in the table is a mean over units, and its interval is the normal-approximation 95 %
interval ``mean +/- 1.96 s / sqrt(n)`` (``s`` the sample standard deviation over the ``n`` units).

- ``mean_wsr``, ``mean_sum_rate``: weighted and unweighted sum rate (bit/s/Hz).
- ``ratio_to_reference``: ``mean(x) / mean(y)``, the ratio of means the papers report, with ``y`` the
  reference solver's units on the same channels (common random numbers). Its interval comes from the
  paired units by the delta method: ``d_u = (x_u - r y_u) / mean(y)``, half-width ``1.96 sd(d) / sqrt(n)``.
- ``served_fraction``: the fraction of links whose rate (averaged over the unit) exceeds
  ``served_rate`` (default :data:`SERVED_RATE` bit/s/Hz): how many links a solver actually serves.
  WMMSE and on/off solvers switch links off, so a percentile of the link rates would report numbers
  like 1e-228; this fraction says the same thing in a form a reader can use.
- ``jain_index``: Jain's fairness index of the link rates in a unit,
  ``(sum_k r_k)^2 / (K sum_k r_k^2)``, between ``1/K`` (one link takes everything) and 1 (equal rates);
  a unit where every rate is 0 counts as 0 (nobody is served).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Z95", "SERVED_RATE", "mean_ci", "ratio_ci", "served_fraction", "jain_index"]

#: two-sided 95 % quantile of the standard normal
Z95 = 1.959963984540054
#: bit/s/Hz: a link whose (unit-averaged) rate is above this counts as served
SERVED_RATE = 1e-2


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean of ``values (n,)`` and the half-width of its 95 % interval (NaN when ``n < 2``)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    half = Z95 * float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    return mean, half


def ratio_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ratio of means ``mean(x) / mean(y)`` of paired units and the half-width of its 95 % interval.

    NaN when ``mean(y) <= 0`` (no meaningful ratio) or the units do not pair up."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or x.size != y.size:
        return float("nan"), float("nan")
    my = float(y.mean())
    if not my > 0.0:
        return float("nan"), float("nan")
    r = float(x.mean()) / my
    if x.size < 2:
        return r, float("nan")
    d = (x - r * y) / my
    return r, Z95 * float(d.std(ddof=1)) / math.sqrt(x.size)


def served_fraction(rates: np.ndarray, threshold: float = SERVED_RATE) -> np.ndarray:
    """Per unit: the fraction of links of ``rates (n, K)`` above ``threshold`` bit/s/Hz -> ``(n,)``."""
    return (np.asarray(rates) > threshold).mean(axis=-1)


def jain_index(rates: np.ndarray) -> np.ndarray:
    """Per unit: Jain's fairness index of ``rates (n, K)`` -> ``(n,)`` in ``[1/K, 1]`` (0 when all are 0)."""
    r = np.asarray(rates, dtype=np.float64)
    total = r.sum(axis=-1)
    squares = (r * r).sum(axis=-1)
    k = r.shape[-1]
    out = np.zeros(r.shape[:-1])
    np.divide(total * total, k * squares, out=out, where=squares > 0)
    return out
