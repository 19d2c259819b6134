"""The unfolded WMMSE of Pellaco et al. 2020 (solvers/unfolded_wmmse.py) and its untrained twin pgd_wmmse:
shapes, feasibility, the PGD gradient, the layers, training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from l2o_env.data import ObservationSampler
from l2o_env.problems import get_problem
from l2o_env.evaluation.spec import explicit_kwargs
from solvers.learned import select_pretrained, shipped_checkpoints, to_torch
from solvers.unfolded_wmmse import PGDWMMSE, UnfoldedWMMSE, pgd_gradient_terms
from solvers.wmmse_mimo_core import beamforming_tensors, mimo_uw_update, mimo_wmmse_prepare

BF = get_problem("beamforming")
ENV = "Beamforming-MISO-v0"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the conftest fixture)."""


def miso(batch=8, seed=0, **kw):
    return ObservationSampler(ENV, seed=seed, **kw)(batch)


def total_power(v):
    return (v ** 2).sum(axis=(1, 2, 3, 4))


def test_registered_and_defaults():
    assert {"unfolded_wmmse", "pgd_wmmse"} <= set(solvers.available(problem="beamforming"))
    assert "unfolded_wmmse" not in solvers.available(problem="power")
    net = solvers.make("unfolded_wmmse")
    assert net.num_layers == 4 and net.pgd_steps == 4 and net.batch_size == 100 and net.config.lr == 1e-3
    np.testing.assert_array_equal(net.step_sizes, np.ones((4, 4)))
    assert not net.is_trained and solvers.make("pgd_wmmse").is_trained


@pytest.mark.parametrize("snr_db", [0, 10, 20])
def test_shapes_and_feasibility(snr_db):
    obs = miso(batch=16, snr_db=snr_db)
    for net in (PGDWMMSE(), UnfoldedWMMSE(random_init=True, num_layers=2, pgd_steps=3)):
        v = net.act_batch(obs)
        assert v.shape == (16, 4, 4, 1, 2) and v.dtype == np.float64 and np.all(np.isfinite(v))
        assert np.all(total_power(v) <= obs["pmax"][:, 0] * (1 + 1e-9))
        assert np.all(BF.project(obs, v)[1] == 0)
        one = net.act({k: x[0] for k, x in obs.items()})
        np.testing.assert_allclose(one, v[0], rtol=1e-5, atol=1e-6)


def test_gradient_is_the_papers():
    """2 (A v_i - alpha_i w_i u_i h_i) with h_i = H_i^H, A = sum_i alpha_i w_i |u_i|^2 h_i h_i^H, and it is the
    gradient (w.r.t. conj(v)) of the weighted MSE sum that the v-update minimises."""
    obs = miso(batch=3, seed=4)
    obs["weight"] = np.random.default_rng(0).uniform(0.2, 1.0, obs["weight"].shape)
    t = beamforming_tensors(obs)
    ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
    v = torch.randn(3, 4, 4, 1, dtype=torch.complex128)
    u, w, _ = mimo_uw_update(ch, t["noise"], v)
    a_link, b = pgd_gradient_terms(ch, t["weight"], u, w)
    h = t["channel"][:, :, 0, 0, :].conj()  # (B, K, M): the paper's column h_i
    uu, ww, al = u[..., 0, 0], w[..., 0, 0].real, t["weight"]
    a_ref = torch.einsum("bk,bkm,bkn->bmn", al * ww * uu.abs() ** 2, h, h.conj())
    torch.testing.assert_close(a_link[:, 0], a_ref)
    torch.testing.assert_close(b[..., 0], (al * ww * uu)[..., None] * h)

    vr = torch.view_as_real(v).clone().requires_grad_(True)
    vc = torch.view_as_complex(vr)
    hv = torch.einsum("bkm,bjm->bkj", t["channel"][:, :, 0, 0, :], vc[..., 0])  # H_k v_j
    err = (1 - uu.conj() * torch.diagonal(hv, dim1=1, dim2=2)).abs() ** 2 \
        + (uu.abs() ** 2)[..., None].mul((hv.abs() ** 2) * (1 - torch.eye(4, dtype=torch.float64))).sum(-1) \
        + uu.abs() ** 2 * t["noise"]
    (al * ww * err).sum().backward()
    grad = torch.view_as_complex(vr.grad)  # d/d Re + i d/d Im = 2 d/d conj(v)
    torch.testing.assert_close(grad, 2.0 * (a_link @ v - b))


def test_initial_step_sizes_equal_pgd_wmmse():
    obs = miso(batch=10, seed=2)
    learned = UnfoldedWMMSE(random_init=True)
    np.testing.assert_array_equal(learned.act_batch(obs), PGDWMMSE().act_batch(obs))
    assert not PGDWMMSE().model.gamma.requires_grad
    with pytest.raises(ValueError, match="nothing to learn"):
        PGDWMMSE().fit(ObservationSampler(ENV, seed=0), steps=1, progress=False)


def test_forward_layers_last_is_forward():
    net = UnfoldedWMMSE(random_init=True, num_layers=3, pgd_steps=2)
    t = to_torch(miso(batch=5), dtype=net.dtype)
    layers = net.forward_layers(t)
    assert len(layers) == 3 and all(x.shape == (5, 4, 4, 1, 2) for x in layers)
    torch.testing.assert_close(layers[-1], net.forward(t))


def test_a_few_training_steps_lower_the_loss():
    sampler = ObservationSampler(ENV, seed=0)
    net = UnfoldedWMMSE(num_layers=2, pgd_steps=2, lr=0.05, batch_size=50, val_size=50, val_every=10)
    test = net.observation_tensors(ObservationSampler(ENV, seed=7)(200), "test")
    with torch.no_grad():
        before = float(UnfoldedWMMSE(num_layers=2, pgd_steps=2, random_init=True).loss(test))
    hist = net.fit(sampler, steps=20, seed=0, progress=False)
    with torch.no_grad():
        after = float(net.loss(test))
    assert after < before - 0.5  # bit/s/Hz summed over 2 layers
    assert len(hist["loss"]) == 20 and net.meta["env_id"] == ENV and net.meta["steps"] == 20
    assert not np.allclose(net.step_sizes, 1.0)


def test_save_load_round_trip(tmp_path):
    obs = miso(batch=6)
    net = UnfoldedWMMSE(random_init=True, num_layers=3)
    with torch.no_grad():
        net.model.gamma.mul_(0.3)
    net.meta["note"] = "x"
    back = UnfoldedWMMSE.load(net.save(tmp_path / "u.pt"))
    assert back.config == net.config and back.meta["note"] == "x" and back.num_layers == 3 and back.is_trained
    np.testing.assert_array_equal(back.act_batch(obs), net.act_batch(obs))
    again = UnfoldedWMMSE(checkpoint=tmp_path / "u.pt")
    np.testing.assert_array_equal(again.act_batch(obs), net.act_batch(obs))


def test_corrupt_and_mismatched_files_fail_clearly(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        UnfoldedWMMSE.load(bad)
    with pytest.raises(FileNotFoundError):
        UnfoldedWMMSE.load(tmp_path / "missing.pt")
    path = PGDWMMSE().save(tmp_path / "pgd.pt")
    with pytest.raises(ValueError, match="holds a 'pgd_wmmse' model"):
        UnfoldedWMMSE.load(path)


def test_untrained_model_refuses_to_act():
    with pytest.raises(ValueError, match="neither loaded nor trained"):
        UnfoldedWMMSE().act_batch(miso(batch=1))


def test_power_observation_is_refused():
    with pytest.raises(ValueError, match="channel"):
        PGDWMMSE().act_batch(ObservationSampler("PowerControl-IC-v0", seed=0, num_links=3)(1))


def test_shipped_checkpoint_beats_its_untrained_twin():
    net = solvers.make("unfolded_wmmse", pretrained=True)
    assert net.trained_on == (ENV, {}) and isinstance(net.meta["command"], str)
    assert net.num_layers == 4 and net.pgd_steps == 4
    obs = miso(batch=200, seed=11)
    learned = BF.weighted_sum_rate(obs, net.act_batch(obs)).mean()
    fixed = BF.weighted_sum_rate(obs, PGDWMMSE().act_batch(obs)).mean()
    reference = BF.weighted_sum_rate(obs, solvers.make("wmmse").act_batch(obs)).mean()
    assert learned > 1.5 * fixed and learned > 0.95 * reference  # measured 0.98 of WMMSE, pgd_wmmse 0.42


# --- the shipped checkpoints at 5 / 10 / 20 dB ----------------------------------------------------------
SHIPPED_SNR = {"snr5": 5, "default": 10, "snr20": 20}


def test_shipped_checkpoints_record_their_snr():
    entries = {e["tag"]: e for e in shipped_checkpoints("unfolded_wmmse")}
    assert set(SHIPPED_SNR) <= set(entries)
    assert entries["default"]["env_kwargs"] == {}  # the env's default SNR, 10 dB
    for tag in ("snr5", "snr20"):
        e = entries[tag]
        assert e["env_id"] == ENV and e["env_kwargs"] == {"snr_db": SHIPPED_SNR[tag]}
        assert e["config"]["num_layers"] == 4 and e["config"]["pgd_steps"] == 4
        assert f"--env-kwargs snr_db={SHIPPED_SNR[tag]}" in e["command"]


@pytest.mark.parametrize("snr_db,tag", [(5, "snr5"), (5.0, "snr5"), (10, "default"), (20, "snr20")])
def test_pretrained_true_picks_the_checkpoint_of_the_snr(snr_db, tag):
    """What `l2o eval --solver-kwargs unfolded_wmmse.pretrained=true` loads (the harness normalises both sides
    with explicit_kwargs), and the same selection without a normaliser."""
    resolved = {"num_users": 4, "num_antennas": 4, "snr_db": snr_db}
    assert select_pretrained("unfolded_wmmse", ENV, resolved, normalise=explicit_kwargs)["tag"] == tag
    assert select_pretrained("unfolded_wmmse", ENV, {"snr_db": snr_db})["tag"] == tag
    assert select_pretrained("unfolded_wmmse", ENV, {})["tag"] == "default"


@pytest.mark.slow
@pytest.mark.parametrize("tag,bound", [("snr5", 0.98), ("default", 0.97), ("snr20", 0.83)])
def test_shipped_checkpoint_ratio_at_its_snr(tag, bound):
    """Each shipped checkpoint on 300 fresh samples of its SNR (sampler seed 2718, not a training seed): ratio
    of mean WSR to WMMSE (default config) above a bound a little under the measured ratio (benchmarks/RESULTS.md,
    "Unfolded WMMSE": 0.989 / 0.980 / 0.855 on these samples), well above pgd_wmmse; at 5 dB also above WMMSE
    truncated at 4 iterations (by 0.038 bit/s/Hz, 95 % interval +/- 0.008; at 10 dB the margin is inside the
    noise of 300 samples, at 20 dB truncated WMMSE is ahead, so neither is asserted)."""
    net = solvers.make("unfolded_wmmse", pretrained=True if tag == "default" else tag)
    obs = miso(batch=300, seed=2718, snr_db=SHIPPED_SNR[tag])

    def wsr(solver):
        return BF.weighted_sum_rate(obs, solver.act_batch(obs)).mean()

    learned, reference = wsr(net), wsr(solvers.make("wmmse"))
    assert learned / reference > bound
    assert learned > 1.5 * wsr(PGDWMMSE())
    if tag == "snr5":
        assert learned > wsr(solvers.make("truncated_wmmse", iterations=4)) + 0.02
