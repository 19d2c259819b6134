"""Tests of solvers/mlp.py (Sun et al.'s supervised MLP). Default run: a few seconds; the checkpoint
targets (>= 97 % of WMMSE on 10,000 fresh samples) are marked slow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import solvers
from solvers.learned import to_torch, wmmse_reference
from solvers.mlp import MLPConfig, MLPSolver

K = 4
N = 2


def ic_sampler(k=K, seed=0):
    """Gaussian IC observations (Sun Sec. V-A): gain = |CN(0,1)|^2, Pmax = sigma^2 = 1."""
    rng = np.random.default_rng(seed)

    def sample(b):
        z = rng.standard_normal((b, k, k, 2))
        ones = np.ones((b, k))
        return {"gain": 0.5 * (z**2).sum(-1), "weight": ones, "noise": ones.copy(), "pmax": ones.copy()}

    return sample


def imac_like_sampler(n=N, k=K, seed=0):
    """IMAC-shaped observations independent of the IMAC model: users split evenly over n cells,
    ``gain[i, j] = bs_gain[cell(i), j]`` with log-normal bs gains spanning decades."""
    rng = np.random.default_rng(seed)
    cell = np.arange(k) * n // k

    def sample(b):
        bs = 10 ** rng.normal(0.0, 1.5, (b, n, k))
        ones = np.ones((b, k))
        return {"gain": bs[:, cell, :], "bs_gain": bs, "weight": ones, "noise": ones.copy(), "pmax": ones.copy()}

    return sample


def small(**kw):
    base = dict(num_links=K, num_bs=0, hidden=(16, 16), pool_size=500, batch_size=100, val_size=200,
                eval_every=10, label_chunk=300)
    base.update(kw)
    return MLPSolver(**base)


def test_registry_builds_mlp():
    assert isinstance(solvers.make("mlp", num_links=K, num_bs=0), MLPSolver)


@pytest.mark.parametrize("round_output", [False, True])
def test_shapes_and_feasibility_ic(round_output):
    sol = small(round_output=round_output)
    obs = ic_sampler()(7)
    obs["pmax"] = np.full((7, K), 2.5)
    p = sol.act_batch(obs)
    assert p.shape == (7, K) and p.dtype == np.float64
    assert np.all(p >= 0) and np.all(p <= 2.5)
    if round_output:
        assert set(np.unique(p)) <= {0.0, 2.5}
    one = {k: v[0] for k, v in obs.items()}
    np.testing.assert_allclose(sol.act(one), p[0], rtol=1e-5, atol=1e-7)


def test_shapes_imac_bs_gain_input():
    sol = MLPSolver(num_links=K, num_bs=N, hidden=(8,))
    assert sol.config.resolved_input == "bs_gain" and sol.config.input_size == N * K
    p = sol.act_batch(imac_like_sampler()(5))
    assert p.shape == (5, K) and np.all((p >= 0) & (p <= 1))


def test_paper_input_is_raw_magnitude_at_unit_snr():
    sol = small()
    obs = ic_sampler()(3)
    x = sol.features(to_torch(obs, dtype=torch.float64))
    np.testing.assert_allclose(x.numpy(), np.sqrt(obs["gain"]).reshape(3, -1), rtol=1e-12)
    logx = small(transform="log").features(to_torch(obs, dtype=torch.float64))
    np.testing.assert_allclose(logx.numpy(), np.log10(np.sqrt(obs["gain"])).reshape(3, -1), rtol=1e-9, atol=1e-12)


def test_output_is_clipped_eq16():
    sol = small()
    with torch.no_grad():
        sol.model.layers[-1].bias.copy_(torch.tensor([-5.0, 0.3, 5.0, 0.7]))
        sol.model.layers[-1].weight.zero_()
    obs = ic_sampler()(2)
    obs["pmax"] = np.full((2, K), 3.0)
    np.testing.assert_allclose(sol.act_batch(obs), np.tile([0.0, 0.9, 3.0, 2.1], (2, 1)), rtol=1e-6)


def test_truncated_normal_init_over_sqrt_fan_in():
    sol = MLPSolver(num_links=10, num_bs=0)
    for lin in sol.model.layers:
        scaled = lin.weight.detach() * math.sqrt(lin.in_features)
        assert float(scaled.abs().max()) <= 2.0 + 1e-6
        assert 0.7 < float(scaled.std()) < 1.0  # a N(0,1) truncated at +-2 has std 0.88
    assert [lin.out_features for lin in sol.model.layers] == [200, 200, 200, 10]
    assert sol.model.layers[0].in_features == 100


def test_wrong_size_and_missing_bs_gain_raise():
    sol = small()
    with pytest.raises(ValueError, match="K = 4"):
        sol.act_batch(ic_sampler(k=5)(2))
    imac = MLPSolver(num_links=K, num_bs=N, hidden=(8,))
    with pytest.raises(ValueError, match="bs_gain"):
        imac.act_batch(ic_sampler()(2))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        imac.act_batch(imac_like_sampler(n=3)(2))


@pytest.mark.parametrize("bad", [dict(input="foo"), dict(transform="sqrt"), dict(hidden=()), dict(lr=-1.0),
                                 dict(num_links=0), dict(input="bs_gain", num_bs=0), dict(rms_alpha=1.0)])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        MLPConfig(**bad)
    with pytest.raises(TypeError, match="allowed keyword"):
        MLPSolver(nonsense=1)


def test_save_load_round_trip_identical(tmp_path):
    sol = small(transform="log", round_output=False)
    sol.meta["note"] = "x"
    path = sol.save(tmp_path / "m.pt")
    back = MLPSolver.load(path)
    assert back.config == sol.config and back.meta["note"] == "x"
    obs = ic_sampler(seed=3)(50)
    np.testing.assert_array_equal(back.act_batch(obs), sol.act_batch(obs))
    again = MLPSolver(checkpoint=path)
    np.testing.assert_array_equal(again.act_batch(obs), sol.act_batch(obs))


def test_corrupt_and_mismatched_files_raise(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        MLPSolver.load(bad)
    path = small().save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["solver"] = "uwmmse"
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="'uwmmse' model"):
        MLPSolver.load(tmp_path / "other.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["num_links"] = 5  # weights of a K = 4 net under a K = 5 config
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="do not match"):
        MLPSolver.load(tmp_path / "mismatch.pt")


def test_few_steps_reduce_validation_mse():
    sol = small()
    val = ic_sampler(seed=5)(200)
    x = sol.features(to_torch(val))
    y = torch.as_tensor(wmmse_reference(val)[0], dtype=torch.float32)
    torch.manual_seed(0)
    sol.model.reset_parameters()
    with torch.no_grad():
        before = float(torch.mean((sol.forward_normalised(x) - y) ** 2))
    hist = sol.fit(ic_sampler(seed=1), steps=60, seed=0, progress=False, validation=val)
    assert hist["val_mse"][-1] < 0.8 * before
    assert len(hist["step"]) == 6 and hist["best_ratio"] == max(hist["val_ratio"])
    assert sol.meta["steps"] == 60 and sol.meta["val_ratio"] == hist["best_ratio"]
    # the kept weights are the best-ratio ones
    assert sol.ratio_to_wmmse(val) == pytest.approx(hist["best_ratio"], rel=1e-9)


def test_fit_is_seeded_and_adapts_an_untrained_model():
    a = small(num_links=3)
    ha = a.fit(ic_sampler(k=K, seed=1), steps=20, seed=7, progress=False)
    assert a.config.num_links == K
    b = small(num_links=K)
    hb = b.fit(ic_sampler(k=K, seed=1), steps=20, seed=7, progress=False)
    assert ha["val_mse"] == hb["val_mse"]
    with pytest.raises(ValueError, match="trained for K = 4"):
        a.fit(ic_sampler(k=5), steps=1, progress=False)


def test_callback_can_stop_training():
    sol = small()
    seen = []
    hist = sol.fit(ic_sampler(), steps=100, progress=False, callback=lambda s, r: seen.append(s) or True)
    assert seen == [10] and hist["step"] == [10]
