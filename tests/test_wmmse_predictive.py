"""``wmmse_predictive``: WMMSE on the MMSE prediction of the current channel from aged / noisy CSI (issue 14)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import solvers
from l2o_env.data import ObservationSampler
from l2o_env.evaluation import evaluate
from solvers.wmmse_predictive import WMMSEPredictive

IC = "PowerControl-IC-v0"
AGED = {"speed": 30.0, "slot_duration": 1e-3, "csi_delay": 1}  # rho = 0.507


def _obs(env_id, n=6, seed=0, **kw):
    return ObservationSampler(env_id, seed=seed, **kw)(n)


@pytest.mark.parametrize("env_id, kw", [(IC, {"num_links": 5}), ("PowerControl-D2D-v0", {"num_links": 8}),
                                        ("Beamforming-MISO-v0", {}), ("Beamforming-IBC-v0", {})])
def test_with_perfect_csi_it_is_wmmse(env_id, kw):
    obs = _obs(env_id, **kw)
    plain = solvers.make("wmmse").act_batch(obs)
    for pred in (solvers.make("wmmse_predictive"), WMMSEPredictive(rho=0.3), WMMSEPredictive(rho=1.0, csi_delay=2)):
        np.testing.assert_array_equal(pred.act_batch(obs), plain)
        np.testing.assert_array_equal(pred.act_batch(obs), plain)  # the memory does not enter when c = 1


def test_the_prediction_is_the_conditional_mean_of_the_gain():
    obs = _obs("PowerControl-AdHoc-v0", n=4, csi_history=4, **AGED)
    rho, e = 0.6, 0.3
    c2 = rho**4 * (1 - e * e)  # csi_delay 2
    pred = WMMSEPredictive(rho=rho, csi_delay=2, csi_error=e, large_scale="history")
    assert math.isclose(pred.correlation**2, c2)
    expected = c2 * obs["gain"] + (1 - c2) * obs["gain_history"].mean(axis=1)
    want = solvers.make("wmmse").act_batch({**obs, "gain": expected})
    np.testing.assert_allclose(pred.act_batch(obs), want, rtol=1e-12)
    # without a history, "history" is WMMSE on the observation (its only estimate of the large scale)
    one = {k: v for k, v in obs.items() if k != "gain_history"}
    np.testing.assert_allclose(pred.act_batch(one), solvers.make("wmmse").act_batch(one), rtol=1e-12)


def test_the_memory_averages_the_slots_seen_since_reset():
    a, b = _obs(IC, n=3, seed=1, num_links=4), _obs(IC, n=3, seed=2, num_links=4)
    pred = WMMSEPredictive(rho=0.5, csi_delay=1)
    c2 = 0.25
    wmmse = solvers.make("wmmse")
    np.testing.assert_allclose(pred.act_batch(a), wmmse.act_batch(a))  # one slot seen: L = the observation
    mean = (a["gain"] + b["gain"]) / 2
    np.testing.assert_allclose(pred.act_batch(b), wmmse.act_batch({**b, "gain": c2 * b["gain"] + (1 - c2) * mean}))
    pred.reset()
    np.testing.assert_allclose(pred.act_batch(b), wmmse.act_batch(b))
    # a new batch shape restarts the memory; a history seeds it
    pred.act_batch({k: v[:2] for k, v in a.items()})
    np.testing.assert_allclose(pred.act_batch(a), wmmse.act_batch(a))
    h = _obs(IC, n=3, seed=3, num_links=4, csi_history=3, **AGED)
    fresh = WMMSEPredictive(rho=0.5, csi_delay=1)
    seeded = c2 * h["gain"] + (1 - c2) * h["gain_history"].mean(axis=1)
    np.testing.assert_allclose(fresh.act_batch(h), wmmse.act_batch({**h, "gain": seeded}))
    # after `window` slots the average is exponential
    short = WMMSEPredictive(rho=0.5, csi_delay=1, window=1)
    short.act_batch(a)
    np.testing.assert_allclose(short.act_batch(b), wmmse.act_batch(b))


def test_options_are_checked():
    with pytest.raises(ValueError, match="csi_delay=1 needs rho"):
        WMMSEPredictive(csi_delay=1)
    for bad, match in [({"rho": 1.5}, "rho must be in"), ({"csi_error": 1.2}, "csi_error must be in"),
                       ({"csi_delay": -1}, "csi_delay must be an integer"), ({"large_scale": "known"}, "large_scale"),
                       ({"window": 0}, "window"), ({"passes": -1}, "passes"), ({"max_iter": 0}, "max_iter")]:
        with pytest.raises(ValueError, match=match):
            WMMSEPredictive(**bad)
    assert WMMSEPredictive.from_env == {"rho": "fading_correlation", "csi_delay": "csi_delay",
                                        "csi_error": "csi_error"}
    assert "wmmse_predictive" in solvers.available(problem="power")
    assert "wmmse_predictive" in solvers.available(problem="beamforming")


def test_beamforming_counts_the_predicted_interference_as_noise():
    obs = _obs("Beamforming-IBC-v0", n=3, **AGED)
    pred = WMMSEPredictive(rho=0.5, csi_delay=1, passes=0)
    scaled = solvers.make("wmmse").act_batch({**obs, "channel": 0.5 * obs["channel"]})
    np.testing.assert_allclose(pred.act_batch(obs), scaled, rtol=1e-9, atol=1e-12)
    more = WMMSEPredictive(rho=0.5, csi_delay=1).act_batch(obs)
    assert more.shape == scaled.shape and np.isfinite(more).all() and not np.allclose(more, scaled)


@pytest.mark.parametrize("env_id", ["PowerControl-D2D-v0", "PowerControl-AdHoc-v0"])
def test_it_beats_wmmse_on_aged_csi(env_id):
    """30 m/s, 1 ms slots, csi_delay=1 (rho 0.51), 300 slots scored on the true channel: measured
    D2D 92.1 -> 94.3 %, AdHoc 91.5 -> 92.7 % of WMMSE with perfect CSI."""
    res = evaluate(["wmmse", "wmmse_predictive"], env_id, AGED, slots=300, seed=0)
    aged, pred = res.row("wmmse"), res.row("wmmse_predictive")
    assert res.config["reference"] == "wmmse (perfect CSI)"
    assert pred["mean_wsr"] > aged["mean_wsr"]
    assert pred["ratio_to_reference"] - aged["ratio_to_reference"] > 0.005
    assert pred["ratio_to_reference"] < 1.0
