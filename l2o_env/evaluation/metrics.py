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

Several seeds (``evaluate(..., seeds=n)``): each seed is a whole evaluation, and the table reports the mean
over the ``n`` seeds of each seed's value with the Student-t 95 % interval over seeds,
``mean +/- t_{0.975, n-1} s / sqrt(n)`` (``s`` the sample standard deviation of the per-seed values;
:func:`mean_t_ci`, :func:`t_quantile`): the seeds are few, so the normal quantile would be too narrow.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Z95", "SERVED_RATE", "mean_ci", "ratio_ci", "served_fraction", "jain_index", "t_quantile", "mean_t_ci"]

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


def _t_two_sided(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.3-4: a finite
    series in ``cos(theta)``, ``theta = atan(t / sqrt(df))``; exact for integer ``df``)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)), last power cos^(df-2)
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2.0 / math.pi * (theta + (s * math.cos(theta) * total if df > 1 else 0.0))
    term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...), last power cos^(df-2)
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` (integer >= 1) degrees of freedom: the
    ``t`` with ``P(|T| <= t) = level`` (``t_quantile(2) = 4.3027``, ``t_quantile(9) = 2.2622``; tends to
    :data:`Z95` as ``df`` grows). Bisection on the exact distribution function, to machine precision."""
    from l2o_env.validation import integer, real

    df = integer("t_quantile", "df", df, minimum=1)
    level = real("t_quantile", "level", level, at_least=0.0)
    if not level < 1.0:
        raise ValueError(f"t_quantile: level must be in [0, 1), got {level!r}")
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < level:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_two_sided(mid, df) < level:
            lo = mid
        else:
            hi = mid
    return hi


def mean_t_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean of ``values (n,)`` (one per seed) and the half-width of its Student-t 95 % interval,
    ``t_quantile(n - 1) * s / sqrt(n)`` (NaN when ``n < 2``; NaN values give NaN)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    half = t_quantile(n - 1) * float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    return mean, half
