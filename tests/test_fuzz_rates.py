"""Property-based fuzzing of the rate formulas (``l2o_env/rates.py``) and the feasibility projections
(``Problem.project``, the env's ``project_precoders``) (issue 16, robustness), with hypothesis.

- ``link_rates`` / ``weighted_sum_rate`` (numpy) and ``link_rates_torch`` on gains, powers and noise over the
  whole float32 range (1e-45..3.4e38, zeros, one link; the values an env observation can hold): finite rates
  >= 0 that the numpy and torch twins agree on; beyond float32 (gains x powers above 1e308, where the SINR
  itself overflows float64): still finite, from the logarithms; 1,000 links.
- ``mimo_link_rates`` (numpy and torch) on channels and precoders over the float32 range, with rank-deficient
  interference and noise down to 1e-45 W: finite rates >= 0, equal to ``link_rates`` when Nr = Nt = d = 1.
- ``Problem.project``: any action (NaN, inf, negative, up to 1e300) lands finite on the feasible set; powers
  are clipped entry by entry; precoders keep their direction (each transmitter's scaled by one factor in
  [0, 1], NaN/inf entries zeroed first) and use at most their budget; the counts are what changed.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from l2o_env.problems import get_problem  # noqa: E402
from l2o_env.rates import (link_rates, link_rates_torch, mimo_link_rates, mimo_link_rates_torch,  # noqa: E402
                           weighted_sum_rate)

SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
F32_MAX = float(np.finfo(np.float32).max)
F32_MIN = float(np.float32(1e-45))
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _magnitudes(rng, shape, lo, hi, zeros):
    """``10^U(lo, hi)`` entries with a fraction ``zeros`` of exact zeros."""
    x = 10.0 ** rng.uniform(lo, hi, shape)
    return np.where(rng.random(shape) < zeros, 0.0, x)


@st.composite
def power_problems(draw, lo=-45.0, hi=38.5):
    """``(gain (B, K, K), power (B, K), noise (B, K), weight (B, K))`` with magnitudes in ``10^[lo, hi]``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b, k = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    span = sorted([draw(st.floats(lo, hi)), draw(st.floats(lo, hi))])
    zeros = draw(st.sampled_from([0.0, 0.3, 1.0]))
    gain = _magnitudes(rng, (b, k, k), *span, zeros)
    power = _magnitudes(rng, (b, k), *sorted([draw(st.floats(lo, hi)), draw(st.floats(lo, hi))]),
                        draw(st.sampled_from([0.0, 0.5])))
    noise = np.full((b, k), draw(st.sampled_from([F32_MIN, 1e-30, 1.0, 1e20]))) if draw(st.booleans()) \
        else _magnitudes(rng, (b, k), max(lo, -45.0), min(hi, 38.5), 0.0)
    weight = _magnitudes(rng, (b, k), -10, 38.5, 0.3)
    return gain, power, noise, weight


@settings(max_examples=60 * SCALE, **_SETTINGS)
@given(problem=power_problems())
def test_link_rates_finite_on_the_float32_range_and_twins_agree(problem):
    import torch

    gain, power, noise, weight = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rates = link_rates(gain, power, noise)
        wsr = weighted_sum_rate(gain, power, noise, weight)
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0.0)
    assert np.all(np.isfinite(wsr))
    twin = link_rates_torch(torch.as_tensor(gain), torch.as_tensor(power), torch.as_tensor(noise)).numpy()
    np.testing.assert_allclose(twin, rates, rtol=1e-9, atol=1e-12)
    # a link without power or without a direct gain carries nothing
    direct = np.diagonal(gain, axis1=-2, axis2=-1)
    assert np.all(rates[(power == 0) | (direct == 0)] == 0.0)


@settings(max_examples=30 * SCALE, **_SETTINGS)
@given(problem=power_problems(lo=-300.0, hi=300.0))
def test_link_rates_stay_finite_beyond_float32(problem):
    gain, power, noise, _ = problem
    noise = np.maximum(noise, 1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (numpy warns about the overflow it recovers from)
        rates = link_rates(gain, power, noise)
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0.0)
    # SINR >= 0 beyond float64: the rate is log2 of the SINR, from its logarithm (at most ~4,000 bit/s/Hz)
    assert np.all(rates < 4100.0)


def test_link_rates_of_an_overflowing_sinr_are_its_logarithm():
    """A signal of 1e300 W over 1e-300 W: SINR 1e600 (inf in float64), rate log2(1e600) = 1993.2 bit/s/Hz,
    also when the interference overflows float64 (a NaN = inf / inf before)."""
    gain = np.array([[1e300, 0.0], [1e300, 1e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rates = link_rates(gain, np.array([1.0, 1e10]), np.array([1e-300, 1.0]))
    np.testing.assert_allclose(rates, [600 * np.log2(10.0), np.log2(1.0 + 1e10)], rtol=1e-12)


def test_a_thousand_links():
    rng = np.random.default_rng(0)
    gain = rng.exponential(size=(1000, 1000)) * 10.0 ** rng.uniform(-20, 20, (1000, 1000))
    power = rng.random(1000)
    rates = link_rates(gain, power, np.full(1000, 1e-30))
    assert rates.shape == (1000,) and np.all(np.isfinite(rates)) and np.all(rates >= 0)


# --- multi-antenna rates ----------------------------------------------------------------------------
@st.composite
def mimo_problems(draw):
    """``(channel (B, K, T, Nr, Nt) complex, tx_of_link (K,), precoder (B, K, Nt, d) complex, noise (B, K))``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b, k = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    t, nr, nt = draw(st.integers(1, k)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d = draw(st.integers(1, nr))
    tx = np.sort(rng.integers(0, t, size=k))
    amp = 10.0 ** draw(st.floats(-20.0, 19.0))  # |h| up to 1e19: |h|^2 within float32
    channel = amp * (rng.standard_normal((b, k, t, nr, nt)) + 1j * rng.standard_normal((b, k, t, nr, nt)))
    if draw(st.booleans()):  # rank-deficient: every receive antenna sees the same combination
        channel[..., :, :] = channel[..., :1, :]
    vamp = 10.0 ** draw(st.floats(-22.0, 19.0))
    precoder = vamp * (rng.standard_normal((b, k, nt, d)) + 1j * rng.standard_normal((b, k, nt, d)))
    precoder[rng.random((b, k)) < draw(st.sampled_from([0.0, 0.5]))] = 0.0
    noise = np.full((b, k), draw(st.sampled_from([F32_MIN, 1e-30, 1.0, 1e20, F32_MAX])))
    return channel, tx, precoder, noise


@settings(max_examples=60 * SCALE, **_SETTINGS)
@given(problem=mimo_problems())
def test_mimo_rates_finite_and_twins_agree(problem):
    import torch

    channel, tx, precoder, noise = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rates = mimo_link_rates(channel, tx, precoder, noise)
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0.0)
    twin = mimo_link_rates_torch(torch.as_tensor(channel), torch.as_tensor(tx), torch.as_tensor(precoder),
                                 torch.as_tensor(noise)).numpy()
    assert np.all(np.isfinite(twin)) and np.all(twin >= 0.0)
    # the twins agree where the problem is well conditioned: J = C + sigma^2 I resolves the noise (tr C below
    # 1e8 sigma^2) and the SINRs are below 1e12; beyond, both are finite but carry the rounding of J^-1
    tr_c = _interference_trace(channel, tx, precoder)
    fine = (tr_c < 1e8 * noise) & (rates < 40.0)
    np.testing.assert_allclose(twin[fine], rates[fine], rtol=1e-6, atol=1e-6)


def _interference_trace(channel, tx, precoder):
    """``tr(sum_{j != k} H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H)`` for every link ``(B, K)``."""
    b, k = channel.shape[:2]
    out = np.zeros((b, k))
    for i in range(k):
        for j in range(k):
            if j != i:
                r = channel[:, i, tx[j]] @ precoder[:, j]
                out[:, i] += (np.abs(r) ** 2).sum(axis=(-2, -1))
    return out


@settings(max_examples=30 * SCALE, **_SETTINGS)
@given(problem=power_problems(lo=-20.0, hi=20.0))
def test_mimo_rates_with_one_antenna_are_the_scalar_rates(problem):
    gain, power, noise, _ = problem
    rng = np.random.default_rng(0)
    phase = np.exp(2j * np.pi * rng.random(gain.shape))
    channel = (np.sqrt(gain) * phase)[..., None, None]  # (B, K, K, 1, 1): T = K, one transmitter per link
    precoder = np.sqrt(power)[..., None, None] + 0j
    k = gain.shape[-1]
    rates = mimo_link_rates(channel, np.arange(k), precoder, noise)
    np.testing.assert_allclose(rates, link_rates(gain, power, noise), rtol=1e-9, atol=1e-12)


# --- projections ------------------------------------------------------------------------------------
@st.composite
def any_actions(draw, shape):
    """Finite entries up to 1e300 in magnitude, negative ones, and NaN / inf / -inf entries."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low = draw(st.sampled_from([-45.0, -320.0]))  # (down to subnormal entries)
    action = rng.standard_normal(shape) * 10.0 ** rng.uniform(low, draw(st.floats(-20.0, 300.0)), shape)
    bad = rng.random(shape) < draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    action[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
    return action


_BUDGETS = st.sampled_from([0.0, F32_MIN, 1e-20, 1.0, 1e20, F32_MAX])


@settings(max_examples=60 * SCALE, **_SETTINGS)
@given(data=st.data())
def test_power_projection_clips_every_entry(data):
    b, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    pmax = np.array(data.draw(st.lists(_BUDGETS, min_size=b * k, max_size=b * k))).reshape(b, k)
    obs = {"gain": np.ones((b, k, k)), "weight": np.ones((b, k)), "noise": np.ones((b, k)), "pmax": pmax}
    action = data.draw(any_actions((b, k)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out, changed = get_problem("power").project(obs, action)
    assert np.all(np.isfinite(out)) and np.all(out >= 0.0) and np.all(out <= pmax)
    finite = np.isfinite(action)
    want = np.where(finite, np.clip(np.where(finite, action, 0.0), 0.0, pmax), 0.0)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(changed, (out != np.where(finite, action, np.nan)).sum(-1))


def _transmitter_power(v, tx, t):
    """``sum_{k: t(k) = t} ||V_k||^2`` without overflow: as ``m^2 * sum (V / m)^2``, ``m`` the largest entry."""
    m = np.abs(v).max(axis=(-3, -2, -1), initial=0.0)
    safe = np.where(m > 0, m, 1.0)
    unit = ((v / safe[..., None, None, None]) ** 2).sum(axis=(-3, -2, -1))
    with np.errstate(over="ignore"):
        per_link = unit * safe * safe
    return np.stack([per_link[..., tx == j].sum(-1) for j in range(t)], axis=-1)


@settings(max_examples=60 * SCALE, **_SETTINGS)
@given(data=st.data())
def test_precoder_projection_keeps_directions_and_budgets(data):
    b, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    t, nt, d = data.draw(st.integers(1, k)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    tx = np.sort(np.random.default_rng(k).integers(0, t, size=k))
    pmax = np.array(data.draw(st.lists(_BUDGETS, min_size=b * t, max_size=b * t))).reshape(b, t)
    obs = {"channel": np.ones((b, k, t, d, nt, 2)), "tx_of_link": np.tile(tx.astype(float), (b, 1)),
           "weight": np.ones((b, k)), "noise": np.ones((b, k)), "pmax": pmax}
    action = data.draw(any_actions((b, k, nt, d, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out, changed = get_problem("beamforming").project(obs, action)
    assert out.shape == action.shape and np.all(np.isfinite(out))
    used = _transmitter_power(out, tx, t)
    assert np.all(used <= pmax), (used, pmax)
    # one factor in [0, 1] per transmitter, applied to the action with its non-finite entries zeroed
    base = np.where(np.isfinite(action), action, 0.0)
    before = _transmitter_power(base, tx, t)
    over = before > pmax
    for bi in range(b):
        for j in range(t):
            links = tx == j
            got, ref = out[bi, links], base[bi, links]
            if not over[bi, j]:
                np.testing.assert_array_equal(got, ref)
                continue
            if pmax[bi, j] == 0:
                assert np.all(got == 0.0)
                continue
            peak = np.abs(ref).max()
            factor = np.abs(got).max() / peak  # > 0: the direction is kept (no overflow to zero)
            assert 0.0 < factor <= 1.0
            np.testing.assert_allclose(got / peak, factor * ref / peak, rtol=1e-9, atol=1e-300)
    want = over.sum(-1) + (~np.isfinite(action)).reshape(b, -1).sum(-1)
    np.testing.assert_array_equal(changed, want)
