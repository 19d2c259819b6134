"""The MIMO rate (l2o_env.rates.mimo_link_rates and its torch twin) and the beamforming Problem:
single-antenna reduction, the H-vs-H^H convention, numpy == torch, projection onto the budgets, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l2o_env.problems import BEAMFORMING, PROBLEMS, get_problem, problem_of_obs
from l2o_env.problems.beamforming import as_complex, as_real, check_beamforming_obs, project_precoders
from l2o_env.rates import link_rates, mimo_link_rates, mimo_link_rates_torch, mimo_weighted_sum_rate


def cn(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def random_obs(b=3, k=6, t=2, nr=2, nt=4, seed=0):
    """A batched beamforming observation (float64) and random precoders: t transmitters, k/t links each."""
    rng = np.random.default_rng(seed)
    tx = np.repeat(np.arange(t), k // t).astype(np.float64)
    obs = {
        "channel": as_real(cn(rng, (b, k, t, nr, nt)) * rng.exponential(size=(b, k, t, 1, 1))),
        "tx_of_link": np.tile(tx, (b, 1)),
        "weight": rng.random((b, k)),
        "noise": rng.random((b, k)) + 0.05,
        "pmax": rng.random((b, t)) * 3 + 0.5,
    }
    return obs, as_real(cn(rng, (b, k, nt, nr)))


# --- the formula ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [False, True], ids=["one-tx-per-link", "shared-transmitters"])
def test_single_antenna_reduces_to_the_scalar_rate(shared):
    rng = np.random.default_rng(1)
    b, k = 5, 7
    t = 3 if shared else k
    tx = rng.integers(0, t, k) if shared else np.arange(k)
    h = cn(rng, (b, k, t, 1, 1)) * np.sqrt(rng.exponential(size=(b, k, t, 1, 1)) * 10.0)
    v = cn(rng, (b, k, 1, 1)) * 2.0
    noise = rng.random((b, k)) + 0.01
    gain = np.abs(h[:, :, tx, 0, 0]) ** 2  # gain[i, j] = |h from the transmitter of link j to receiver i|^2
    power = np.abs(v[..., 0, 0]) ** 2
    np.testing.assert_allclose(mimo_link_rates(h, tx, v, noise), link_rates(gain, power, noise), rtol=1e-12, atol=1e-14)
    weight = rng.random((b, k))
    np.testing.assert_allclose(mimo_weighted_sum_rate(h, tx, v, noise, weight),
                               (weight * link_rates(gain, power, noise)).sum(-1), rtol=1e-12)


def test_channel_multiplies_the_precoder_not_its_conjugate_transpose():
    # two links, own transmitters, Nr = Nt = d = 2, noise 1; link 0 sends on antenna 1 only, link 1 on
    # antenna 2 only. Received at receiver 0: signal a = H00[:, 0] = (1, 0), interference b = H01[:, 1] = (i, 1):
    # J = I + b b^H = [[2, i], [-i, 2]], a^H J^-1 a = 2/3, so r_0 = log2(5/3). With H^H instead of H the
    # signal would be H00^H[:, 0] = (1, 2): another number.
    h = np.zeros((2, 2, 2, 2), dtype=complex)
    h[0, 0] = [[1, 2], [0, 0]]
    h[0, 1] = [[0, 1j], [0, 1]]
    h[1, 1] = [[3, 0], [0, 0.5]]
    h[1, 0] = [[0, 0], [0, 0]]
    v = np.zeros((2, 2, 2), dtype=complex)
    v[0] = [[1, 0], [0, 0]]
    v[1] = [[0, 0], [0, 1]]
    r = mimo_link_rates(h, np.arange(2), v, np.ones(2))
    assert r[0] == pytest.approx(np.log2(5.0 / 3.0), rel=1e-12)
    assert r[1] == pytest.approx(np.log2(1.0 + 0.25), rel=1e-12)  # |H11 V1|: (0, 0.5), no interference
    # and the determinant form of the docstring, by hand
    s0 = h[0, 0] @ v[0]
    j0 = np.eye(2) + (h[0, 1] @ v[1]) @ (h[0, 1] @ v[1]).conj().T
    assert r[0] == pytest.approx(np.log2(np.linalg.det(np.eye(2) + s0 @ s0.conj().T @ np.linalg.inv(j0)).real), rel=1e-12)
    hh = np.conj(np.swapaxes(h, -1, -2))
    assert not np.isclose(mimo_link_rates(hh, np.arange(2), v, np.ones(2))[0], r[0])


def test_numpy_and_torch_agree_and_torch_is_differentiable():
    obs, a = random_obs(b=4, k=6, t=2, nr=2, nt=4, seed=3)
    want = BEAMFORMING.rates(obs, a)
    assert want.shape == (4, 6) and np.all(want >= 0)
    action = torch.tensor(a, requires_grad=True)
    got = BEAMFORMING.rates_torch(obs, action)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-12)
    (obs_w := torch.tensor(obs["weight"]))
    (-(obs_w * got).sum()).backward()
    assert torch.isfinite(action.grad).all() and action.grad.abs().sum() > 0
    # the gradient is the derivative of the numpy rate (central difference on one entry)
    eps, idx = 1e-6, (1, 2, 3, 0, 1)
    up, down = a.copy(), a.copy()
    up[idx] += eps
    down[idx] -= eps
    fd = -((obs["weight"] * (BEAMFORMING.rates(obs, up) - BEAMFORMING.rates(obs, down))).sum()) / (2 * eps)
    assert action.grad[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-8)
    # per-sample transmitter maps and float32 tensors
    tx = np.array([[0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 1, 0], [0, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 0]], dtype=float)
    mixed = {**obs, "tx_of_link": tx}
    np.testing.assert_allclose(BEAMFORMING.rates_torch(mixed, torch.tensor(a)).numpy(), BEAMFORMING.rates(mixed, a), rtol=1e-10)
    for i in range(4):
        one = mimo_link_rates(as_complex(obs["channel"][i]), tx[i].astype(int), as_complex(a[i]), obs["noise"][i])
        np.testing.assert_allclose(BEAMFORMING.rates(mixed, a)[i], one, rtol=1e-12)
    f32 = BEAMFORMING.rates_torch(obs, torch.tensor(a, dtype=torch.float32))
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(f32.numpy(), want, rtol=1e-3, atol=1e-4)
    z = mimo_link_rates_torch(torch.tensor(as_complex(obs["channel"])), torch.tensor([0, 0, 0, 1, 1, 1]),
                              torch.tensor(as_complex(a)), torch.tensor(obs["noise"]))
    np.testing.assert_allclose(z.numpy(), want, rtol=1e-10)


def test_zero_precoders_give_zero_rates_and_more_power_more_rate_alone():
    obs, a = random_obs(seed=4)
    np.testing.assert_array_equal(BEAMFORMING.rates(obs, BEAMFORMING.zero_action(obs)), 0.0)
    solo = {**obs, "channel": obs["channel"][:, :1, :1], "tx_of_link": obs["tx_of_link"][:, :1], "weight": obs["weight"][:, :1],
            "noise": obs["noise"][:, :1], "pmax": obs["pmax"][:, :1]}
    r1 = BEAMFORMING.rates(solo, a[:, :1])
    r2 = BEAMFORMING.rates(solo, 2 * a[:, :1])
    assert np.all(r2 > r1)


# --- the Problem ----------------------------------------------------------------------------------------
def test_the_family_is_registered():
    assert PROBLEMS["beamforming"] is BEAMFORMING is get_problem("beamforming")
    assert BEAMFORMING.obs_keys == ("channel", "tx_of_link", "weight", "noise", "pmax")
    assert BEAMFORMING.reference_solver == "wmmse"
    obs, a = random_obs()
    assert problem_of_obs(obs) is BEAMFORMING
    assert BEAMFORMING.action_shape(obs) == a.shape == (3, 6, 4, 2, 2)
    assert BEAMFORMING.zero_action(obs).shape == a.shape and BEAMFORMING.batch_size(obs) == 3
    np.testing.assert_allclose(BEAMFORMING.weighted_sum_rate(obs, a), (obs["weight"] * BEAMFORMING.rates(obs, a)).sum(-1))


def used_power(v, tx, t):
    per_link = (v**2).sum(axis=(-3, -2, -1))
    return np.stack([per_link[..., tx == i].sum(-1) for i in range(t)], axis=-1)


def test_projection_scales_over_budget_transmitters_exactly_onto_their_budget():
    obs, _ = random_obs(b=2, k=6, t=3, nr=1, nt=2, seed=5)
    tx = obs["tx_of_link"][0].astype(int)
    pmax = obs["pmax"]
    rng = np.random.default_rng(0)
    v = rng.standard_normal((2, 6, 2, 1, 2))
    # sample 0: transmitter 0 at 4x its budget, 1 just under it, 2 at half; sample 1: every one at 1.5x
    target = np.array([[4.0, 0.999, 0.5], [1.5, 1.5, 1.5]]) * pmax
    v *= np.sqrt(target / used_power(v, tx, 3))[np.arange(2)[:, None], tx][..., None, None, None]
    got, changed = BEAMFORMING.project(obs, v)
    used = used_power(got, tx, 3)
    np.testing.assert_allclose(used[0, 0], pmax[0, 0], rtol=1e-11)
    assert used[0, 0] <= pmax[0, 0] and np.all(used <= pmax)
    np.testing.assert_array_equal(got[0][tx != 0], v[0][tx != 0])  # under budget: untouched
    np.testing.assert_allclose(used[1], pmax[1], rtol=1e-11)
    assert changed.dtype == np.int64 and changed.tolist() == [1, 3]
    # the direction of every precoder is kept
    ratio = got[0][tx == 0] / v[0][tx == 0]
    np.testing.assert_allclose(ratio, ratio.flat[0])
    # the caller's array is never written; non-finite entries become 0 and are counted
    bad = v.copy()
    bad[1, 0, 0, 0, 0] = np.nan
    bad[1, 5, 1, 0, 1] = np.inf
    fixed, n = BEAMFORMING.project(obs, bad)
    assert np.isnan(bad[1, 0, 0, 0, 0]) and np.all(np.isfinite(fixed)) and fixed[1, 0, 0, 0, 0] == 0
    assert n[1] >= 2 and np.all(used_power(fixed, tx, 3) <= pmax)
    # within the tolerance: scaled, not counted
    near = v.copy()
    near *= np.sqrt(pmax * (1 + 1e-9) / used_power(v, tx, 3))[np.arange(2)[:, None], tx][..., None, None, None]
    scaled, n = BEAMFORMING.project(obs, near, tol=1e-6)
    assert n.tolist() == [0, 0] and np.all(used_power(scaled, tx, 3) <= pmax)
    with pytest.raises(ValueError, match="shape"):
        BEAMFORMING.project(obs, v[:, :5])
    with pytest.raises(ValueError, match="dtype"):
        BEAMFORMING.project(obs, v.astype(complex))


def test_project_precoders_with_one_budget_for_a_batch():
    # the env's call: one (T,) budget and one (K,) map for every sample
    v = np.ones((4, 3, 2, 1, 2))
    out, n = project_precoders(v.copy(), np.array([2.0, 100.0]), np.array([0, 0, 1]))
    np.testing.assert_allclose(used_power(out, np.array([0, 0, 1]), 2), [[2.0, 4.0]] * 4, rtol=1e-11)
    assert n.tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(
    "change, err, match",
    [
        (lambda o: o.pop("tx_of_link"), ValueError, r"missing key\(s\) \['tx_of_link'\]"),
        (lambda o: o.update(channel=as_complex(o["channel"])), TypeError, "must be real.*np.stack"),
        (lambda o: o.update(channel=o["channel"][..., 0]), ValueError, r"channel.*\(B, K, T, Nr, Nt, 2\)"),
        (lambda o: o.update(pmax=o["pmax"][:, :1]), ValueError, r"pmax.*\(B, 2\).*one per transmitter"),
        (lambda o: o.update(tx_of_link=o["tx_of_link"] + 0.5), ValueError, "transmitter indices 0 .. 1"),
        (lambda o: o.update(tx_of_link=o["tx_of_link"] * 2), ValueError, "transmitter indices"),
        (lambda o: o["noise"].__setitem__((0, 1), 0.0), ValueError, "noise.*> 0"),
        (lambda o: o["channel"].__setitem__((1, 0, 0, 0, 0, 0), np.nan), ValueError, "channel.*NaN"),
        (lambda o: o.update(weight="x"), TypeError, "numeric"),
    ],
    ids=["missing", "complex", "no-pairs", "pmax-shape", "fractional-tx", "tx-out-of-range", "noise-0", "nan", "text"],
)
def test_check_obs_names_the_problem(change, err, match):
    obs, _ = random_obs()
    change(obs)
    with pytest.raises(err, match=match):
        BEAMFORMING.check_obs(obs, batched=True, who="T")


def test_check_obs_batches_one_network_and_broadcasts_scalars():
    obs, _ = random_obs(b=1)
    one = {key: val[0] for key, val in obs.items()}
    one["noise"], one["pmax"] = 0.5, 2.0
    out = check_beamforming_obs(one, batched=False)
    assert out["channel"].shape == (1, 6, 2, 2, 4, 2) and out["noise"].shape == (1, 6) and out["pmax"].shape == (1, 2)
    assert set(out) == set(BEAMFORMING.obs_keys) and all(v.dtype == np.float64 for v in out.values())
    with pytest.raises(ValueError, match=r"tx_of_link.*\(6,\)"):
        check_beamforming_obs({**one, "tx_of_link": 0.0}, batched=False)


def test_problem_of_obs_names_the_missing_keys_of_the_meant_family():
    obs, _ = random_obs()
    del obs["noise"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['noise'\] of a 'beamforming' observation \(it has 'channel'\)"):
        problem_of_obs(obs)
    power_like = {"gain": np.ones((1, 2, 2)), "weight": np.ones((1, 2)), "pmax": np.ones((1, 2))}
    with pytest.raises(ValueError, match=r"missing key\(s\) \['noise'\] of a 'power' observation.*'beamforming' needs"):
        problem_of_obs(power_like)
